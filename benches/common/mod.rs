//! What the criterion benches share: short runs, since what they measure takes nanoseconds and
//! the machines they run on are shared (the numbers are noisy either way).

use std::time::Duration;

use criterion::Criterion;

/// Half a second of warm-up and two seconds of measurement per benchmark.
pub fn short_runs() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
