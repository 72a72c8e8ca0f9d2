//! Docker `-p` specs: parsing (what `cproxy forward -p` and the control socket's `add` pay per
//! spec) and showing one again (`Display`, as `list` and error messages do).
//!
//! Run with `cargo bench --bench spec_parse` (add `-- --quick` for a rough figure in seconds).

mod common;

use std::hint::black_box;

use cproxy::spec::PortSpec;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// One of each shape: a bare container port, everything given, IPv6 with ranges, and an empty
/// host port (the form `cproxy forward` is used with most).
const SPECS: [&str; 4] =
    ["80", "127.0.0.1:8080:80/tcp", "[::1]:8000-8010:80-90/udp", "127.0.0.1::5000"];

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for spec in SPECS {
        group.bench_with_input(BenchmarkId::from_parameter(spec), spec, |b, spec| {
            b.iter(|| PortSpec::parse(black_box(spec)))
        });
    }
    group.finish();
}

fn display(c: &mut Criterion) {
    let mut group = c.benchmark_group("display");
    for spec in SPECS {
        let parsed = PortSpec::parse(spec).expect("the benchmark's specs are valid");
        group.bench_with_input(BenchmarkId::from_parameter(spec), &parsed, |b, parsed| {
            b.iter(|| black_box(parsed).to_string())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::short_runs();
    targets = parse, display
}
criterion_main!(benches);
