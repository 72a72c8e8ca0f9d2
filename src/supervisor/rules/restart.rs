//! Restart policies (`run --restart no|always|unless-stopped|on-failure[:N]`) as Docker 20.10
//! has them: the flag's parsing with Docker's error words, the pure decision taken when a
//! container's process exits or the daemon starts, Docker's back-off between restarts, and the
//! `ps` STATUS text of each state.
//!
//! Where the behaviour comes from: 3e-restart-policies.txt and 3e-dockerd-restart.txt
//! (dockerd 20.10.24), and moby 20.10's `restartmanager` (the back-off: 100 ms, doubled at each
//! exit, at most a minute, back to 100 ms after a run of 10 s or more) and `daemon/kill.go`
//! (`stop` and `kill` through the API cancel any restart, whatever the policy: `always_kill` in
//! the transcript stays `Exited (137)` with RestartCount 0, while a process killed from inside
//! the container is restarted). Where the issue text is silent or differs, Docker followed:
//!
//! - `always` comes back when the daemon starts even after an explicit `stop` (`al_stopped`);
//!   `unless-stopped` does not (`us_stopped`); `on-failure` comes back if its last exit was
//!   non-zero and retries are left, which includes being killed by the daemon's own shutdown
//!   (`of_running`);
//! - the retry limit counts restarts since the last explicit start: `on-failure:3` runs four
//!   times in all (the transcript's events: start/die four times, RestartCount 3).

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::supervisor::rules::format::human_duration;

/// When a container's process is started again after it exits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    /// Never (`no`, the default).
    #[default]
    No,
    /// After every exit, unless stopped through the API; and when the daemon starts.
    Always,
    /// As `Always`, but not when the daemon starts if it had been stopped through the API.
    UnlessStopped,
    /// After a non-zero exit only, at most `max_retries` times (0: no limit).
    OnFailure {
        /// Docker's `MaximumRetryCount`; 0 means unlimited.
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// Parses a `--restart` value as Docker's client and daemon do together: `no`, `always`,
    /// `unless-stopped`, `on-failure`, `on-failure:N`; an empty value means `no`.
    pub fn parse(value: &str) -> Result<RestartPolicy, PolicyError> {
        let mut parts = value.split(':');
        let name = parts.next().unwrap_or_default();
        let count = parts.next();
        if parts.next().is_some() {
            return Err(PolicyError::Format);
        }
        // The client reads the count as a Go int before the daemon looks at the name.
        let count: i64 = match count {
            None => 0,
            Some(c) => crate::supervisor::rules::format::go_atoi(c)
                .map_err(|_| PolicyError::CountNotInteger)?,
        };
        match name {
            "no" | "always" | "unless-stopped" if count != 0 => {
                Err(PolicyError::CountNotAllowed { policy: name.to_string() })
            }
            "no" | "" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" if count < 0 => Err(PolicyError::CountNegative),
            "on-failure" => Ok(RestartPolicy::OnFailure {
                max_retries: u32::try_from(count).unwrap_or(u32::MAX),
            }),
            _ => Err(PolicyError::Invalid { policy: name.to_string() }),
        }
    }

    /// Docker's `Name`: `no`, `always`, `unless-stopped`, `on-failure`.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }

    /// Docker's `MaximumRetryCount` (0 for all but a limited `on-failure`).
    pub fn maximum_retry_count(self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max_retries } => max_retries,
            _ => 0,
        }
    }

    /// `--rm` with a policy other than `no` is refused, as by Docker's client.
    pub fn check_auto_remove(self, auto_remove: bool) -> Result<(), PolicyError> {
        if auto_remove && self != RestartPolicy::No {
            return Err(PolicyError::ConflictsWithRm);
        }
        Ok(())
    }
}

/// The value `--restart` takes back: `no`, `always`, `on-failure`, `on-failure:3`.
impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::OnFailure { max_retries } if *max_retries > 0 => {
                write!(f, "on-failure:{max_retries}")
            }
            other => f.write_str(other.name()),
        }
    }
}

/// `HostConfig.RestartPolicy` as the API and `inspect` carry it:
/// `{"Name":"on-failure","MaximumRetryCount":3}`.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "MaximumRetryCount", default)]
    maximum_retry_count: i64,
}

impl Serialize for RestartPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire { name: self.name().into(), maximum_retry_count: self.maximum_retry_count().into() }
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RestartPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RestartPolicy, D::Error> {
        let wire = Wire::deserialize(d)?;
        let value = if wire.maximum_retry_count == 0 {
            wire.name
        } else {
            format!("{}:{}", wire.name, wire.maximum_retry_count)
        };
        RestartPolicy::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// A `--restart` value that cannot be used; the text is Docker's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// More than one `:`.
    Format,
    /// The count after `:` is not an integer (the client's check).
    CountNotInteger,
    /// A count with `no`, `always` or `unless-stopped`.
    CountNotAllowed {
        /// The policy's name.
        policy: String,
    },
    /// `on-failure:-1`.
    CountNegative,
    /// A name that is no policy.
    Invalid {
        /// The name as given.
        policy: String,
    },
    /// `--rm` with a policy (the client's check).
    ConflictsWithRm,
}

impl PolicyError {
    /// True if Docker's client refuses the value itself; the others come back as "Error
    /// response from daemon: …".
    pub fn is_client_side(&self) -> bool {
        matches!(
            self,
            PolicyError::CountNotInteger | PolicyError::Format | PolicyError::ConflictsWithRm
        )
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Format => f.write_str("invalid restart policy format"),
            PolicyError::CountNotInteger => f.write_str("maximum retry count must be an integer"),
            PolicyError::CountNotAllowed { policy } => {
                write!(f, "maximum retry count cannot be used with restart policy '{policy}'")
            }
            PolicyError::CountNegative => f.write_str("maximum retry count cannot be negative"),
            PolicyError::Invalid { policy } => write!(f, "invalid restart policy '{policy}'"),
            PolicyError::ConflictsWithRm => f.write_str("Conflicting options: --restart and --rm"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The first delay between an exit and the restart.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest delay: doubling stops here.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long starts the back-off over.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// The back-off a container carries from one exit to the next (Docker's restart manager's
/// `timeout`). A new one, or one after an explicit start, begins at [`FIRST_DELAY`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    /// The delay given at the last exit; zero before the first.
    last: Duration,
}

impl Backoff {
    /// The delay for this exit, after a run of `ran_for`: 100 ms at first and after a run of
    /// 10 s or more, else twice the last one, at most a minute. Advanced at every exit, restart
    /// or not, as Docker's is.
    fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER {
            self.last = Duration::ZERO;
        }
        self.last = if self.last.is_zero() { FIRST_DELAY } else { (self.last * 2).min(MAX_DELAY) };
        self.last
    }
}

/// What happened when a container's process exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The exit code (128 + N for a signal N, as Docker reports it).
    pub code: i32,
    /// How long the process ran.
    pub ran_for: Duration,
    /// Restarts since the container was last started explicitly (Docker's `RestartCount`).
    pub restart_count: u32,
    /// The container was stopped or killed through the API (`stop`, `kill`, `rm -f`, `restart`).
    pub stopped_by_user: bool,
    /// The daemon is shutting down.
    pub daemon_stopping: bool,
}

/// What the daemon does about an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Mark the container `restarting`, add one to its RestartCount, and start it again after
    /// this delay (unless it is stopped meanwhile).
    RestartAfter(Duration),
    /// Mark it `exited` (and remove it if `--rm`).
    Stay,
}

/// Decides what follows an exit under `policy`, advancing `backoff`.
pub fn on_exit(policy: RestartPolicy, backoff: &mut Backoff, exit: Exit) -> Decision {
    if policy == RestartPolicy::No {
        return Decision::Stay;
    }
    let delay = backoff.next(exit.ran_for);
    // Docker cancels the restart manager on stop/kill through the API and on shutdown.
    if exit.stopped_by_user || exit.daemon_stopping {
        return Decision::Stay;
    }
    let restart = match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max_retries } => {
            exit.code != 0 && (max_retries == 0 || exit.restart_count < max_retries)
        }
    };
    if restart { Decision::RestartAfter(delay) } else { Decision::Stay }
}

/// Whether the daemon starts a stopped container when it starts itself (Docker's restore):
/// from the container's last exit code, its RestartCount, and whether it had been stopped
/// through the API. Such a start is an explicit one: RestartCount and back-off start over.
pub fn on_daemon_start(
    policy: RestartPolicy,
    last_exit_code: i32,
    restart_count: u32,
    stopped_by_user: bool,
) -> bool {
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always => true,
        RestartPolicy::UnlessStopped => !stopped_by_user,
        RestartPolicy::OnFailure { max_retries } => {
            last_exit_code != 0 && (max_retries == 0 || restart_count < max_retries)
        }
    }
}

/// A container's state, as far as `ps` STATUS shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Created, never started.
    Created,
    /// Its process runs.
    Running {
        /// When it started.
        started_at: SystemTime,
    },
    /// Exited, waiting out its back-off before a restart.
    Restarting {
        /// The code of the exit that led here.
        exit_code: i32,
        /// When it exited.
        finished_at: SystemTime,
    },
    /// Exited, not to be restarted.
    Exited {
        /// Its exit code.
        exit_code: i32,
        /// When it exited.
        finished_at: SystemTime,
    },
    /// Being removed.
    RemovalInProgress,
    /// Could not be removed.
    Dead,
}

/// `ps` STATUS at `now`: `Up 3 seconds`, `Restarting (1) 2 seconds ago`, `Exited (0) 5
/// seconds ago`, `Created`, with Docker's humanized durations ("Less than a second", "About a
/// minute", …). A time in the future counts as no time.
pub fn status(state: State, now: SystemTime) -> String {
    let since = |t: SystemTime| human_duration(now.duration_since(t).unwrap_or_default());
    match state {
        State::Created => "Created".into(),
        State::Running { started_at } => format!("Up {}", since(started_at)),
        State::Restarting { exit_code, finished_at } => {
            format!("Restarting ({exit_code}) {} ago", since(finished_at))
        }
        State::Exited { exit_code, finished_at } => {
            format!("Exited ({exit_code}) {} ago", since(finished_at))
        }
        State::RemovalInProgress => "Removal In Progress".into(),
        State::Dead => "Dead".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RestartPolicy::*;

    fn exit(code: i32, restart_count: u32) -> Exit {
        Exit {
            code,
            ran_for: Duration::from_millis(5),
            restart_count,
            stopped_by_user: false,
            daemon_stopping: false,
        }
    }

    #[test]
    fn policies_parse_as_docker_reads_them() {
        assert_eq!(RestartPolicy::parse("no"), Ok(No));
        assert_eq!(RestartPolicy::parse(""), Ok(No));
        assert_eq!(RestartPolicy::parse("always"), Ok(Always));
        assert_eq!(RestartPolicy::parse("always:0"), Ok(Always));
        assert_eq!(RestartPolicy::parse("unless-stopped"), Ok(UnlessStopped));
        assert_eq!(RestartPolicy::parse("on-failure"), Ok(OnFailure { max_retries: 0 }));
        assert_eq!(RestartPolicy::parse("on-failure:3"), Ok(OnFailure { max_retries: 3 }));
        assert_eq!(RestartPolicy::parse("on-failure:+03"), Ok(OnFailure { max_retries: 3 }));
    }

    #[test]
    fn bad_policies_fail_in_dockers_words() {
        // 3e-restart-policies.txt.
        let err = |v: &str| RestartPolicy::parse(v).unwrap_err().to_string();
        assert_eq!(err("foo"), "invalid restart policy 'foo'");
        assert_eq!(
            err("always:3"),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert_eq!(
            err("unless-stopped:2"),
            "maximum retry count cannot be used with restart policy 'unless-stopped'"
        );
        assert_eq!(err("on-failure:-1"), "maximum retry count cannot be negative");
        assert_eq!(err("on-failure:x"), "maximum retry count must be an integer");
        assert_eq!(err("on-failure:"), "maximum retry count must be an integer");
        assert_eq!(err("foo:x"), "maximum retry count must be an integer");
        assert_eq!(err("on-failure:1:2"), "invalid restart policy format");
        assert!(RestartPolicy::parse("on-failure:x").unwrap_err().is_client_side());
        assert!(!RestartPolicy::parse("always:3").unwrap_err().is_client_side());
        assert_eq!(
            Always.check_auto_remove(true).unwrap_err().to_string(),
            "Conflicting options: --restart and --rm"
        );
        assert_eq!(No.check_auto_remove(true), Ok(()));
        assert_eq!(Always.check_auto_remove(false), Ok(()));
    }

    #[test]
    fn policies_show_as_inspect_shows_them() {
        // 3e-restart-policies.txt: `{{json .HostConfig.RestartPolicy}}`.
        let json = |p: RestartPolicy| serde_json::to_string(&p).unwrap();
        assert_eq!(
            json(OnFailure { max_retries: 3 }),
            r#"{"Name":"on-failure","MaximumRetryCount":3}"#
        );
        assert_eq!(json(Always), r#"{"Name":"always","MaximumRetryCount":0}"#);
        assert_eq!(
            json(OnFailure { max_retries: 0 }),
            r#"{"Name":"on-failure","MaximumRetryCount":0}"#
        );
        for p in
            [No, Always, UnlessStopped, OnFailure { max_retries: 0 }, OnFailure { max_retries: 7 }]
        {
            assert_eq!(serde_json::from_str::<RestartPolicy>(&json(p)).unwrap(), p);
            assert_eq!(RestartPolicy::parse(&p.to_string()), Ok(p));
        }
    }

    #[test]
    fn no_never_restarts() {
        assert_eq!(on_exit(No, &mut Backoff::default(), exit(1, 0)), Decision::Stay);
    }

    #[test]
    fn always_restarts_after_any_exit() {
        let mut b = Backoff::default();
        assert_eq!(on_exit(Always, &mut b, exit(0, 0)), Decision::RestartAfter(FIRST_DELAY));
        assert!(matches!(on_exit(Always, &mut b, exit(1, 1)), Decision::RestartAfter(_)));
        assert!(matches!(on_exit(UnlessStopped, &mut b, exit(0, 2)), Decision::RestartAfter(_)));
    }

    #[test]
    fn on_failure_restarts_after_a_failure_only() {
        let mut b = Backoff::default();
        assert_eq!(on_exit(OnFailure { max_retries: 3 }, &mut b, exit(0, 0)), Decision::Stay);
        assert!(matches!(
            on_exit(OnFailure { max_retries: 0 }, &mut b, exit(2, 1000)),
            Decision::RestartAfter(_)
        ));
    }

    #[test]
    fn on_failure_3_runs_four_times_in_all() {
        // 3e-restart-policies.txt: onfail's events are start/die four times, RestartCount 3.
        let policy = OnFailure { max_retries: 3 };
        let mut b = Backoff::default();
        let mut count = 0;
        let mut runs = 1;
        while let Decision::RestartAfter(_) = on_exit(policy, &mut b, exit(1, count)) {
            count += 1;
            runs += 1;
        }
        assert_eq!((runs, count), (4, 3));
    }

    #[test]
    fn stop_or_kill_through_the_api_cancels_every_policy() {
        // 3e-restart-policies.txt: `docker kill always_kill` leaves it Exited (137), count 0.
        for policy in [Always, UnlessStopped, OnFailure { max_retries: 0 }] {
            let stopped = Exit { stopped_by_user: true, ..exit(137, 0) };
            assert_eq!(on_exit(policy, &mut Backoff::default(), stopped), Decision::Stay);
            let shutdown = Exit { daemon_stopping: true, ..exit(143, 0) };
            assert_eq!(on_exit(policy, &mut Backoff::default(), shutdown), Decision::Stay);
        }
        // Killed from inside the container (not through the API): restarted.
        assert!(matches!(
            on_exit(Always, &mut Backoff::default(), exit(137, 0)),
            Decision::RestartAfter(_)
        ));
    }

    #[test]
    fn the_delay_doubles_from_100ms_up_to_a_minute() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..12)
            .map(|n| match on_exit(Always, &mut b, exit(0, n)) {
                Decision::RestartAfter(d) => d.as_millis() as u64,
                Decision::Stay => 0,
            })
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]
        );
    }

    #[test]
    fn a_run_of_10_seconds_starts_the_back_off_over() {
        let mut b = Backoff::default();
        for n in 0..5 {
            on_exit(Always, &mut b, exit(0, n));
        }
        let long = Exit { ran_for: Duration::from_secs(10), ..exit(0, 5) };
        assert_eq!(on_exit(Always, &mut b, long), Decision::RestartAfter(FIRST_DELAY));
        let short = Exit { ran_for: Duration::from_millis(9_999), ..exit(0, 6) };
        assert_eq!(on_exit(Always, &mut b, short), Decision::RestartAfter(FIRST_DELAY * 2));
    }

    #[test]
    fn the_back_off_advances_even_when_nothing_restarts() {
        let mut b = Backoff::default();
        on_exit(OnFailure { max_retries: 0 }, &mut b, exit(0, 0));
        assert_eq!(on_exit(Always, &mut b, exit(0, 0)), Decision::RestartAfter(FIRST_DELAY * 2));
    }

    #[test]
    fn the_back_off_matches_the_always0_samples() {
        // 3e-restart-policies.txt: always0 (`exit 0`) reaches RestartCount 8 in about 19 s;
        // the delays 0.1+0.2+…+6.4 s add up to 12.7 s, and the next one is 12.8 s.
        let mut b = Backoff::default();
        let mut total = Duration::ZERO;
        for n in 0..7 {
            if let Decision::RestartAfter(d) = on_exit(Always, &mut b, exit(0, n)) {
                total += d;
            }
        }
        assert_eq!(total, Duration::from_millis(12_700));
    }

    #[test]
    fn the_daemon_start_brings_back_what_docker_brings_back() {
        // 3e-dockerd-restart.txt: after a dockerd restart, al_running, al_stopped, us_running
        // and of_running are up; us_stopped and no_running stay exited.
        assert!(on_daemon_start(Always, 137, 0, false)); // al_running
        assert!(on_daemon_start(Always, 137, 0, true)); // al_stopped
        assert!(on_daemon_start(UnlessStopped, 137, 0, false)); // us_running
        assert!(!on_daemon_start(UnlessStopped, 137, 0, true)); // us_stopped
        assert!(on_daemon_start(OnFailure { max_retries: 3 }, 137, 0, false)); // of_running
        assert!(!on_daemon_start(No, 137, 0, false)); // no_running
        // An on-failure container that exited cleanly or used up its retries stays down.
        assert!(!on_daemon_start(OnFailure { max_retries: 3 }, 0, 0, false));
        assert!(!on_daemon_start(OnFailure { max_retries: 3 }, 1, 3, false));
    }

    #[test]
    fn status_reads_as_docker_ps() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_563_027);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 3e-restart-policies.txt and 3c-links.txt lines.
        assert_eq!(status(State::Running { started_at: t0 }, at(300)), "Up Less than a second");
        assert_eq!(status(State::Running { started_at: t0 }, at(3_200)), "Up 3 seconds");
        assert_eq!(
            status(State::Restarting { exit_code: 1, finished_at: t0 }, at(2_500)),
            "Restarting (1) 2 seconds ago"
        );
        assert_eq!(
            status(State::Restarting { exit_code: 0, finished_at: t0 }, at(900)),
            "Restarting (0) Less than a second ago"
        );
        assert_eq!(
            status(State::Exited { exit_code: 0, finished_at: t0 }, at(5_000)),
            "Exited (0) 5 seconds ago"
        );
        assert_eq!(
            status(State::Exited { exit_code: 137, finished_at: t0 }, at(1_000)),
            "Exited (137) 1 second ago"
        );
        assert_eq!(status(State::Created, t0), "Created");
        assert_eq!(status(State::Running { started_at: at(5_000) }, t0), "Up Less than a second");
    }

    #[test]
    fn durations_are_humanized_as_go_units() {
        let t0 = SystemTime::UNIX_EPOCH;
        let up =
            |secs: u64| status(State::Running { started_at: t0 }, t0 + Duration::from_secs(secs));
        assert_eq!(up(59), "Up 59 seconds");
        assert_eq!(up(60), "Up About a minute");
        assert_eq!(up(119), "Up About a minute");
        assert_eq!(up(120), "Up 2 minutes");
        assert_eq!(up(3_599), "Up 59 minutes");
        assert_eq!(up(3_600), "Up About an hour");
        assert_eq!(up(5_399), "Up About an hour");
        assert_eq!(up(5_400), "Up 2 hours");
        assert_eq!(up(47 * 3_600), "Up 47 hours");
        assert_eq!(up(48 * 3_600), "Up 2 days");
        assert_eq!(up(14 * 86_400), "Up 2 weeks");
        assert_eq!(up(60 * 86_400), "Up 2 months");
        assert_eq!(up(730 * 86_400), "Up 2 years");
    }
}
