//! A container's environment, as Docker builds it for the container's command and for `exec`:
//! `PATH`, `HOSTNAME` and `HOME` first, then the variables given, a later one replacing an
//! earlier one of the same name. Pure.

/// `PATH` in a container that does not set its own (Docker's default for Linux images).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment of a process in a container whose hostname is `hostname`: `PATH`
/// ([`DEFAULT_PATH`]), `HOSTNAME` and `HOME=/root`, then each `KEY=VALUE` of `given` in order
/// (a bare `KEY` is set empty), a key given again taking the place of the earlier one at the
/// end.
pub fn container_env(
    hostname: &str,
    given: impl IntoIterator<Item = String>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOSTNAME".to_string(), hostname.to_string()),
        ("HOME".to_string(), "/root".to_string()),
    ];
    for kv in given {
        let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(env: &[(String, String)]) -> Vec<String> {
        env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn path_hostname_and_home_come_first() {
        assert_eq!(
            pairs(&container_env("web", [])),
            [format!("PATH={DEFAULT_PATH}"), "HOSTNAME=web".into(), "HOME=/root".into()]
        );
    }

    #[test]
    fn a_key_given_again_replaces_the_earlier_one_at_the_end() {
        let given = ["A=1", "HOME=/srv", "B=x=y", "A=2", "BARE"].map(String::from);
        assert_eq!(
            pairs(&container_env("h", given)),
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=h".into(),
                "HOME=/srv".into(),
                "B=x=y".into(),
                "A=2".into(),
                "BARE=".into(),
            ]
        );
    }
}
