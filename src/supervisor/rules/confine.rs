//! Docker's confinement rules, without the system calls: the capability set a container gets
//! from `--cap-add`, `--cap-drop` and `--privileged` (moby's `caps.TweakCapabilities`), and
//! what `--security-opt` asks for. The container's init applies the result.

use std::fmt;

/// Linux capabilities by number, as `capabilities(7)` names them (without `CAP_`).
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default set (moby's `oci/caps.DefaultCapabilities`): `0xa80425fb`.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A set of capabilities, bit N for capability N.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    /// Docker's default set.
    pub fn docker_default() -> CapSet {
        DOCKER_DEFAULT.iter().filter_map(|n| number(n)).fold(CapSet(0), CapSet::with)
    }

    /// Every capability up to `last` (the kernel's `cap_last_cap`).
    pub fn all(last: u8) -> CapSet {
        let last = last.min(63);
        CapSet(if last == 63 { u64::MAX } else { (1u64 << (last + 1)) - 1 })
    }

    /// This set with capability `n`.
    pub fn with(self, n: u8) -> CapSet {
        CapSet(self.0 | (1 << n))
    }

    /// This set without capability `n`.
    pub fn without(self, n: u8) -> CapSet {
        CapSet(self.0 & !(1 << n))
    }

    /// True if capability `n` is in the set.
    pub fn has(self, n: u8) -> bool {
        n < 64 && self.0 & (1 << n) != 0
    }

    /// The capabilities' names, `CAP_` first, by number.
    pub fn names(self) -> Vec<String> {
        (0u8..64)
            .filter(|&n| self.has(n))
            .map(|n| match NAMES.get(usize::from(n)) {
                Some(name) => format!("CAP_{name}"),
                None => format!("CAP_{n}"),
            })
            .collect()
    }
}

impl fmt::Display for CapSet {
    /// As `/proc/PID/status` shows it (`00000000a80425fb`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The number of a capability named without `CAP_` (upper case).
pub fn number(name: &str) -> Option<u8> {
    NAMES.iter().position(|n| *n == name).and_then(|i| u8::try_from(i).ok())
}

/// One value of `--cap-add`/`--cap-drop`: `ALL` or a capability's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CapValue {
    All,
    One(u8),
}

/// moby's `NormalizeLegacyCapabilities`: case does not matter, `CAP_` is optional, `ALL` is
/// every one; anything else is `unknown capability: "CAP_FOO"`.
fn parse_value(value: &str) -> Result<CapValue, String> {
    let upper = value.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(CapValue::All);
    }
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    number(bare).map(CapValue::One).ok_or_else(|| format!("unknown capability: \"CAP_{bare}\""))
}

/// Checks `--cap-add` and `--cap-drop` values as dockerd does at create, in its words
/// (`invalid CapAdd: unknown capability: "CAP_FOO"`).
pub fn check(cap_add: &[String], cap_drop: &[String]) -> Result<(), String> {
    for (values, which) in [(cap_add, "CapAdd"), (cap_drop, "CapDrop")] {
        for v in values {
            parse_value(v).map_err(|e| format!("invalid {which}: {e}"))?;
        }
    }
    Ok(())
}

/// The container's capabilities (moby's `TweakCapabilities`): every one with `privileged`;
/// else Docker's default set (every one if `ALL` is added, none if `ALL` is dropped), less
/// the dropped, plus the added. `last` is the kernel's last capability. Values are checked
/// with [`check`] first; unknown ones are skipped here.
pub fn effective(cap_add: &[String], cap_drop: &[String], privileged: bool, last: u8) -> CapSet {
    let all = CapSet::all(last);
    if privileged {
        return all;
    }
    let adds: Vec<CapValue> = cap_add.iter().filter_map(|v| parse_value(v).ok()).collect();
    let drops: Vec<CapValue> = cap_drop.iter().filter_map(|v| parse_value(v).ok()).collect();
    let mut set = if adds.contains(&CapValue::All) {
        all
    } else if drops.contains(&CapValue::All) {
        CapSet(0)
    } else {
        CapSet::docker_default()
    };
    for d in &drops {
        if let CapValue::One(n) = d {
            set = set.without(*n);
        }
    }
    for a in &adds {
        if let CapValue::One(n) = a
            && *n <= last
        {
            set = set.with(*n);
        }
    }
    set
}

/// The seccomp filter a container gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default profile.
    Default,
    /// `seccomp=unconfined` (and `--privileged`): none.
    Unconfined,
    /// `seccomp=PROFILE`: a profile in Docker's JSON, sent whole by the client.
    Profile(String),
}

/// What `--security-opt` values (and `--privileged`) ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityOpts {
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
}

/// Parses `--security-opt` values as dockerd 20.10 does (`parseSecurityOpt`): `KEY=VALUE` or
/// `KEY:VALUE`, and a bare `no-new-privileges`; `label` and `apparmor` are taken and have
/// no effect here (no SELinux or AppArmor). Docker's words for the rest.
pub fn security_opts(values: &[String], privileged: bool) -> Result<SecurityOpts, String> {
    let mut opts = SecurityOpts {
        seccomp: if privileged { Seccomp::Unconfined } else { Seccomp::Default },
        no_new_privileges: false,
    };
    for value in values {
        if value == "no-new-privileges" {
            opts.no_new_privileges = true;
            continue;
        }
        if value == "disable" {
            continue; // label=disable's old spelling.
        }
        let split = value.find(['=', ':']).map(|at| (&value[..at], &value[at + 1..]));
        let Some((key, v)) = split.filter(|(_, v)| !v.is_empty()) else {
            return Err(format!("invalid --security-opt 1: {value:?}"));
        };
        match key {
            "label" | "apparmor" => {}
            "seccomp" if !privileged => {
                opts.seccomp = match v {
                    "unconfined" => Seccomp::Unconfined,
                    profile => Seccomp::Profile(profile.to_string()),
                }
            }
            "seccomp" => {}
            "no-new-privileges" => {
                opts.no_new_privileges = match v {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(format!("invalid --security-opt 2: {value:?}"));
                    }
                }
            }
            _ => return Err(format!("invalid --security-opt 2: {value:?}")),
        }
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn docker_default_is_dockers_mask() {
        assert_eq!(CapSet::docker_default().to_string(), "00000000a80425fb");
        assert_eq!(CapSet::docker_default().names().len(), 14);
    }

    #[test]
    fn tweaks_as_moby() {
        let set = |add: &[&str], drop: &[&str], p| effective(&strings(add), &strings(drop), p, 40);
        assert_eq!(set(&[], &[], false), CapSet::docker_default());
        assert_eq!(set(&[], &[], true).to_string(), "000001ffffffffff");
        assert_eq!(set(&["all"], &[], false).to_string(), "000001ffffffffff");
        // Docker 20.10 knows 38 (its callers pass 37): `ALL` is 0x3fffffffff there.
        assert_eq!(effective(&strings(&["ALL"]), &[], false, 37).to_string(), "0000003fffffffff");
        assert_eq!(set(&["NET_ADMIN"], &["ALL"], false), CapSet(1 << 12));
        assert_eq!(set(&[], &["chown"], false).0, CapSet::docker_default().0 & !1);
        assert_eq!(set(&["cap_sys_admin"], &[], false).0, CapSet::docker_default().0 | 1 << 21);
        assert_eq!(set(&["ALL"], &["CAP_CHOWN"], false).to_string(), "000001fffffffffe");
        // A capability the kernel does not have is not added.
        let old = effective(&strings(&["CHECKPOINT_RESTORE"]), &[], false, 39);
        assert_eq!(old, CapSet::docker_default());
    }

    #[test]
    fn refuses_unknown_capabilities_in_dockers_words() {
        assert_eq!(
            check(&strings(&["FOO"]), &[]).unwrap_err(),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        assert_eq!(
            check(&[], &strings(&["cap_bar"])).unwrap_err(),
            "invalid CapDrop: unknown capability: \"CAP_BAR\""
        );
        assert!(check(&strings(&["all", "Net_Admin", "CAP_SYS_TIME"]), &[]).is_ok());
    }

    #[test]
    fn security_opts_as_dockerd() {
        let parse = |v: &[&str], p| security_opts(&strings(v), p);
        assert_eq!(parse(&[], false).unwrap().seccomp, Seccomp::Default);
        assert_eq!(parse(&[], true).unwrap().seccomp, Seccomp::Unconfined);
        assert_eq!(parse(&["seccomp=unconfined"], false).unwrap().seccomp, Seccomp::Unconfined);
        assert_eq!(parse(&["seccomp:unconfined"], false).unwrap().seccomp, Seccomp::Unconfined);
        assert_eq!(
            parse(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"], false).unwrap().seccomp,
            Seccomp::Profile("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}".into())
        );
        assert!(parse(&["no-new-privileges"], false).unwrap().no_new_privileges);
        assert!(parse(&["no-new-privileges:true"], false).unwrap().no_new_privileges);
        assert!(!parse(&["no-new-privileges=false"], false).unwrap().no_new_privileges);
        assert!(parse(&["label=disable", "apparmor=unconfined"], false).is_ok());
        assert_eq!(parse(&["foo"], false).unwrap_err(), "invalid --security-opt 1: \"foo\"");
        assert_eq!(
            parse(&["foo=bar"], false).unwrap_err(),
            "invalid --security-opt 2: \"foo=bar\""
        );
        assert!(parse(&["no-new-privileges=maybe"], false).is_err());
    }
}
