//! Request/response latency: one persistent connection, a 64-byte message out, the same 64
//! bytes back, one at a time; the distribution of round trips.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use crate::backend::ECHO;
use crate::load::{self, LoadError, Window};
use crate::stats::percentile;

/// Size of each message.
pub const MESSAGE: usize = 64;

/// Most round trips one run records, whatever its duration.
const MAX_SAMPLES: usize = 5_000_000;

/// Round-trip percentiles of one run, in µs.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Round trips counted.
    pub samples: usize,
}

/// Runs round trips to `target` for `window`.
pub fn run(target: SocketAddr, window: Window) -> Result<Latency, LoadError> {
    let mut c = load::connect(target)?;
    let out = [ECHO; MESSAGE];
    let mut back = [0u8; MESSAGE];
    let (start, end) = window.starting_now();
    let mut samples: Vec<u64> = Vec::with_capacity(1 << 20);
    loop {
        let t0 = Instant::now();
        if t0 >= end || samples.len() >= MAX_SAMPLES || load::interrupted() {
            break;
        }
        c.write_all(&out).map_err(|e| LoadError::io("cannot write to", target, &e))?;
        c.read_exact(&mut back).map_err(|e| LoadError::io("no echo from", target, &e))?;
        let t1 = Instant::now();
        if back != out {
            return Err(LoadError(format!("wrong bytes echoed through {target}")));
        }
        if t0 >= start {
            samples.push((t1 - t0).as_nanos() as u64);
        }
    }
    samples.sort_unstable();
    let us = |q| percentile(&samples, q).map(|ns| ns as f64 / 1000.0);
    match (us(0.5), us(0.99), us(0.999)) {
        (Some(p50_us), Some(p99_us), Some(p999_us)) => {
            Ok(Latency { p50_us, p99_us, p999_us, samples: samples.len() })
        }
        _ => Err(LoadError(format!("no round trip completed through {target}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::Backends;

    #[test]
    fn direct_round_trips_give_ordered_percentiles() {
        let b = Backends::start(2).unwrap();
        let w = Window { warmup: Duration::from_millis(20), duration: Duration::from_millis(200) };
        let r = run(b.tcp, w).unwrap();
        assert!(r.samples > 0);
        assert!(0.0 < r.p50_us && r.p50_us <= r.p99_us && r.p99_us <= r.p999_us);
    }
}
