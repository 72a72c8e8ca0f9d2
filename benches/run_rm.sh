#!/bin/sh
# The container lifecycle's speed, side by side: `docker run -d -p 127.0.0.1::80 IMAGE sleep
# 1000` and `docker rm -f` through Docker's CLI against each daemon named, N times in turn
# (interleaved, so a load on the machine weighs on every daemon alike); prints each one's
# median and 90th percentile in milliseconds.
#
# usage: benches/run_rm.sh N IMAGE NAME=unix:///path/to.sock [NAME=unix:///other.sock ...]
# e.g.   benches/run_rm.sh 30 bb dockerd=unix:///tmp/dref/docker.sock cproxy=unix:///tmp/d/s.sock
# The image must be in every daemon; the containers made are removed.
set -eu
n=$1 image=$2; shift 2
docker=${DOCKER:-docker}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
i=0
while [ "$i" -lt "$n" ]; do
  for target in "$@"; do
    name=${target%%=*} host=${target#*=}
    t=$(date +%s%N)
    id=$("$docker" -H "$host" run -d -p 127.0.0.1::80 "$image" sleep 1000)
    ms "$t" >> "$out/$name.run"
    t=$(date +%s%N)
    "$docker" -H "$host" rm -f "$id" > /dev/null
    ms "$t" >> "$out/$name.rm"
  done
  i=$((i + 1))
done
pick() { sort -n "$1" | awk -v q="$2" '{v[NR]=$1} END {i=int(NR*q+0.5); if (i<1) i=1; print v[i]}'; }
printf '%-10s %12s %12s %12s %12s\n' daemon "run median" "run p90" "rm median" "rm p90"
for target in "$@"; do
  name=${target%%=*}
  printf '%-10s %12s %12s %12s %12s\n' "$name" "$(pick "$out/$name.run" 0.5)" \
    "$(pick "$out/$name.run" 0.9)" "$(pick "$out/$name.rm" 0.5)" "$(pick "$out/$name.rm" 0.9)"
done
