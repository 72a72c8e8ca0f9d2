//! Seccomp filters as Docker 20.10 sets them: its default profile ([`Profile::docker_default`])
//! and the JSON profiles of `--security-opt seccomp=PROFILE.json` ([`Profile::from_json`]), both
//! compiled by [`compile`] into one classic-BPF program for the native architecture, which
//! [`apply`] installs in a forked child right before it execs the container's process.
//!
//! What dockerd and runc do, and so what this does:
//! - a profile's rule counts only when its `includes` hold and its `excludes` do not: `caps`
//!   against the container's capabilities (all of the listed ones for `includes`, any for
//!   `excludes`), `arches` against the machine's (`amd64`, `arm64`), `minKernel` against the
//!   running kernel. So with Docker's default, `ptrace` is allowed on kernels from 4.8 on (as
//!   Docker does there), and a container with `CAP_SYS_ADMIN` may `mount`, `unshare`, `clone`
//!   with namespace flags and `clone3`;
//! - a syscall name this architecture does not have is skipped, as libseccomp skips it;
//! - a rule whose action is the default action is dropped (runc does; libseccomp refuses it);
//! - a rule's `args` must all hold (AND), except that when two of them compare the same argument
//!   each becomes a rule of its own (OR), as runc does;
//! - `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` return `errnoRet` (`defaultErrnoRet` for the default
//!   action), EPERM without one; `SCMP_ACT_KILL` kills the thread, as libseccomp's does;
//! - arguments compare as 64-bit values, as libseccomp compares them on 64-bit machines.
//!
//! Where this differs, it says so:
//! - rules of one syscall are tried in the profile's order and the first that matches decides;
//!   libseccomp orders conflicting rules of one syscall (different actions) its own way. Docker's
//!   default has no such conflict;
//! - only the native ABI is filtered: a syscall made through another one (i386's `int 0x80`,
//!   x32, arm32 on arm64), which Docker filters with that ABI's numbers, kills the process, so
//!   that no ABI slips past the filter;
//! - `architectures` and `archMap` are checked (not both) but change nothing, since only the
//!   native ABI is filtered;
//! - `defaultErrnoRet` is honoured (Docker 20.10 ignores it and returns EPERM; later Dockers
//!   honour it); a profile without `defaultAction` is refused (Docker runs such a profile without
//!   `syscalls` unconfined: `--security-opt seccomp=unconfined` says that);
//! - `SCMP_ACT_NOTIFY` is refused: it needs a listener that Docker's profiles cannot name.
//!
//! Docker 20.10 has no `CAP_BPF` or `CAP_PERFMON` rules (later Dockers do): `bpf` and
//! `perf_event_open` need `CAP_SYS_ADMIN` here too.
//!
//! The BPF is seccompiler's where it can be: each rule's argument comparisons (64-bit values
//! compared as two 32-bit words, long jumps) are its [`SeccompRule`]s. Its [`SeccompFilter`]
//! gives every rule of a filter the same action, and Docker's profiles give each rule its own
//! (`clone3` answers ENOSYS beside rules that allow; a JSON profile can mix any), so the
//! dispatch on the syscall number around those rules is ours, laid out as seccompiler lays its
//! own: for each syscall, a chain of rule blocks `[JA 1, JA past-block, conditions…, RET action]`
//! whose second jumps skip to the next syscall.
//!
//! [`SeccompFilter`]: seccompiler::SeccompFilter

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule, sock_filter,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A seccomp profile in Docker's JSON form (`--security-opt seccomp=PROFILE.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// What a syscall that no rule matches gets.
    pub default_action: Action,
    /// The errno of an `SCMP_ACT_ERRNO` or `SCMP_ACT_TRACE` default action (EPERM without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// The old form of the architectures (`SCMP_ARCH_X86_64`, …); not with `arch_map`.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// Each architecture with its sub-architectures; not with `architectures`.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    /// The rules, in order.
    #[serde(default, deserialize_with = "null_default")]
    pub syscalls: Vec<Rule>,
}

/// An architecture of a profile's `archMap` with those that run on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchMap {
    /// `SCMP_ARCH_X86_64`, `SCMP_ARCH_AARCH64`, …
    pub architecture: String,
    /// `SCMP_ARCH_X86`, `SCMP_ARCH_X32`, …
    #[serde(rename = "subArchitectures", default, deserialize_with = "null_default")]
    pub sub_architectures: Vec<String>,
}

/// One entry of a profile's `syscalls`: an action for some syscalls, maybe only for some of
/// their arguments, maybe only for some capabilities, architectures or kernels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// One syscall's name (the old form); not with `names`.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The syscalls' names.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// What these syscalls get when the arguments match.
    pub action: Action,
    /// The errno of `SCMP_ACT_ERRNO` or `SCMP_ACT_TRACE` (EPERM without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Comparisons of the arguments that must all hold (none: any arguments).
    #[serde(default, deserialize_with = "null_default")]
    pub args: Vec<Arg>,
    /// Free text.
    #[serde(default, deserialize_with = "null_default")]
    pub comment: String,
    /// The rule counts only where all of these hold.
    #[serde(default, deserialize_with = "null_default")]
    pub includes: Filter,
    /// The rule does not count where any of these holds.
    #[serde(default, deserialize_with = "null_default")]
    pub excludes: Filter,
}

/// A comparison of one syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Which argument, 0 to 5.
    #[serde(default)]
    pub index: u32,
    /// The value compared with (the mask for `SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value: u64,
    /// The value the masked argument must equal, for `SCMP_CMP_MASKED_EQ`.
    #[serde(default)]
    pub value_two: u64,
    /// The comparison.
    pub op: Op,
}

/// When a rule counts: the capabilities, architectures and kernel it is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capability names (`CAP_SYS_ADMIN`), matched against the container's.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    /// Go's architecture names (`amd64`, `arm64`, `x86`, `x32`, `arm`, `s390x`, …).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    /// A kernel version (`"4.8"` in JSON): the running one is this or newer.
    #[serde(default, with = "min_kernel", skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<(u32, u32)>,
}

/// A seccomp action, with libseccomp's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Kills the thread (libseccomp's `SCMP_ACT_KILL` is its `SCMP_ACT_KILL_THREAD`).
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    /// Kills the thread.
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    /// Kills the process.
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    /// Sends SIGSYS.
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    /// Fails the syscall with an errno.
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    /// Hands the syscall to a ptrace tracer (fails it with an errno without one).
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    /// Lets the syscall run.
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    /// Lets the syscall run and logs it.
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
}

/// A comparison of an argument, with libseccomp's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The argument is not `value`.
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    /// The argument is below `value`.
    #[serde(rename = "SCMP_CMP_LT")]
    LessThan,
    /// The argument is `value` or below.
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    /// The argument is `value`.
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    /// The argument is `value` or above.
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterOrEqual,
    /// The argument is above `value`.
    #[serde(rename = "SCMP_CMP_GT")]
    GreaterThan,
    /// The argument masked with `value` is `value_two`.
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// `null` reads as the empty value, as Go reads it.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `minKernel` as Docker writes it: `"<kernel>.<major>"`, each at most 255, not `"0.0"`; `""`
/// is none.
mod min_kernel {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<(u32, u32)>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some((kernel, major)) => s.serialize_str(&format!("{kernel}.{major}")),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(u32, u32)>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        if text.is_empty() {
            return Ok(None);
        }
        parse(&text).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid kernel version: {text:?}, expected \"<kernel>.<major>\""
            ))
        })
    }

    fn parse(text: &str) -> Option<(u32, u32)> {
        let (kernel, major) = text.split_once('.')?;
        let number =
            |s: &str| s.parse::<u8>().ok().filter(|_| s.bytes().all(|b| b.is_ascii_digit()));
        let version = (u32::from(number(kernel)?), u32::from(number(major)?));
        (version != (0, 0)).then_some(version)
    }
}

/// Docker 20.10's default capabilities (a container's without `--cap-add`, `--cap-drop` or
/// `--privileged`): the `caps` that [`compile`] gets for most containers.
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The errno of an `SCMP_ACT_ERRNO` or `SCMP_ACT_TRACE` without one.
const EPERM: u32 = libc::EPERM as u32;

impl Profile {
    /// Reads a profile in Docker's JSON form. The error is the reason, to follow Docker's
    /// `opening seccomp profile (PATH) failed: `.
    pub fn from_json(json: &[u8]) -> Result<Profile, String> {
        let profile: Profile = serde_json::from_slice(json)
            .map_err(|e| format!("decoding seccomp profile failed: {e}"))?;
        profile.validate()?;
        Ok(profile)
    }

    /// Refuses what Docker or runc would refuse, and what seccomp cannot do.
    fn validate(&self) -> Result<(), String> {
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err("'architectures' and 'archMap' were specified in the seccomp profile, \
                        use either 'architectures' or 'archMap'"
                .to_string());
        }
        check_errno(self.default_errno_ret, "defaultErrnoRet")?;
        for rule in &self.syscalls {
            if !rule.name.is_empty() && !rule.names.is_empty() {
                return Err("'name' and 'names' were specified in the seccomp profile, use \
                            either 'name' or 'names'"
                    .to_string());
            }
            check_errno(rule.errno_ret, "errnoRet")?;
            if let Some(arg) = rule.args.iter().find(|a| a.index > 5) {
                return Err(format!(
                    "argument index {} of {:?} is out of range: a syscall has 6 (0 to 5)",
                    arg.index,
                    rule.names()
                ));
            }
        }
        Ok(())
    }

    /// Docker 20.10's default profile (moby's `profiles/seccomp/default.json` as of v20.10.27),
    /// every architecture's rules included: [`compile`] keeps those of this machine.
    pub fn docker_default() -> Profile {
        let mut syscalls = vec![
            rule(Action::Allow, DOCKER_ALLOWED),
            Rule {
                includes: Filter { min_kernel: Some((4, 8)), ..Filter::default() },
                ..rule(Action::Allow, &["ptrace"])
            },
        ];
        // The personas Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and
        // 0xffffffff, which only asks for the current one.
        for persona in [0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff] {
            syscalls.push(Rule {
                args: vec![Arg { index: 0, value: persona, value_two: 0, op: Op::Equal }],
                ..rule(Action::Allow, &["personality"])
            });
        }
        let on = |arches: &[&str]| Filter { arches: strings(arches), ..Filter::default() };
        let with = |cap: &str| Filter { caps: vec![cap.to_string()], ..Filter::default() };
        let arch_rules: [(&[&str], &[&str]); 5] = [
            (&["sync_file_range2"], &["ppc64le"]),
            (
                &[
                    "arm_fadvise64_64",
                    "arm_sync_file_range",
                    "sync_file_range2",
                    "breakpoint",
                    "cacheflush",
                    "set_tls",
                ],
                &["arm", "arm64"],
            ),
            (&["arch_prctl"], &["amd64", "x32"]),
            (&["modify_ldt"], &["amd64", "x32", "x86"]),
            (
                &["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
                &["s390", "s390x"],
            ),
        ];
        for (names, arches) in arch_rules {
            syscalls.push(Rule { includes: on(arches), ..rule(Action::Allow, names) });
        }
        syscalls.push(Rule {
            includes: with("CAP_DAC_READ_SEARCH"),
            ..rule(Action::Allow, &["open_by_handle_at"])
        });
        syscalls.push(Rule { includes: with("CAP_SYS_ADMIN"), ..rule(Action::Allow, SYS_ADMIN) });
        // Without CAP_SYS_ADMIN, `clone` only when its flags ask for no new namespace; s390 has
        // the flags second.
        let no_namespaces =
            |index| Arg { index, value: NAMESPACE_FLAGS, value_two: 0, op: Op::MaskedEqual };
        syscalls.push(Rule {
            args: vec![no_namespaces(0)],
            excludes: Filter {
                caps: strings(&["CAP_SYS_ADMIN"]),
                arches: strings(&["s390", "s390x"]),
                min_kernel: None,
            },
            ..rule(Action::Allow, &["clone"])
        });
        syscalls.push(Rule {
            args: vec![no_namespaces(1)],
            comment: "s390 parameter ordering for clone is different".to_string(),
            includes: on(&["s390", "s390x"]),
            excludes: with("CAP_SYS_ADMIN"),
            ..rule(Action::Allow, &["clone"])
        });
        // `clone3` passes its flags in memory, where seccomp cannot look: ENOSYS, so that C
        // libraries fall back to `clone`.
        syscalls.push(Rule {
            errno_ret: Some(libc::ENOSYS as u32),
            excludes: with("CAP_SYS_ADMIN"),
            ..rule(Action::Errno, &["clone3"])
        });
        for (cap, names) in CAP_RULES {
            syscalls.push(Rule { includes: with(cap), ..rule(Action::Allow, names) });
        }
        let arch_map = [
            ("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"][..]),
            ("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"]),
            ("SCMP_ARCH_MIPS64", &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"]),
            ("SCMP_ARCH_MIPS64N32", &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"]),
            ("SCMP_ARCH_MIPSEL64", &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"]),
            ("SCMP_ARCH_MIPSEL64N32", &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"]),
            ("SCMP_ARCH_S390X", &["SCMP_ARCH_S390"]),
        ]
        .into_iter()
        .map(|(arch, subs)| ArchMap {
            architecture: arch.to_string(),
            sub_architectures: strings(subs),
        })
        .collect();
        Profile {
            default_action: Action::Errno,
            default_errno_ret: None,
            architectures: Vec::new(),
            arch_map,
            syscalls,
        }
    }
}

fn check_errno(errno: Option<u32>, field: &str) -> Result<(), String> {
    match errno {
        Some(e) if e > 0xffff => Err(format!("{field} {e} does not fit seccomp's 16 bits")),
        _ => Ok(()),
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A rule with `action` for `names`, any arguments, everywhere.
fn rule(action: Action, names: &[&str]) -> Rule {
    Rule {
        name: String::new(),
        names: strings(names),
        action,
        errno_ret: None,
        args: Vec::new(),
        comment: String::new(),
        includes: Filter::default(),
        excludes: Filter::default(),
    }
}

impl Rule {
    /// `names`, or `name` in the old form.
    fn names(&self) -> Vec<&str> {
        if self.name.is_empty() {
            self.names.iter().map(String::as_str).collect()
        } else {
            vec![self.name.as_str()]
        }
    }

    /// Whether the rule counts for a container with `caps` on this machine, as dockerd decides.
    fn applies(&self, caps: &[&str], kernel: (u32, u32)) -> bool {
        let has = |cap: &String| caps.contains(&cap.as_str());
        let native =
            |arches: &Vec<String>| NATIVE.is_some_and(|n| arches.iter().any(|a| a == n.go_name));
        let excluded = (!self.excludes.arches.is_empty() && native(&self.excludes.arches))
            || self.excludes.caps.iter().any(has)
            || self.excludes.min_kernel.is_some_and(|min| kernel >= min);
        let included = (self.includes.arches.is_empty() || native(&self.includes.arches))
            && self.includes.caps.iter().all(has)
            && self.includes.min_kernel.is_none_or(|min| kernel >= min);
        included && !excluded
    }
}

impl Action {
    /// The filter's return value: the action and its data.
    fn ret(self, errno: Option<u32>) -> u32 {
        let data = errno.unwrap_or(EPERM) & libc::SECCOMP_RET_DATA;
        match self {
            Action::Kill | Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Errno => libc::SECCOMP_RET_ERRNO | data,
            Action::Trace => libc::SECCOMP_RET_TRACE | data,
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Log => libc::SECCOMP_RET_LOG,
        }
    }
}

/// When a rule's syscalls match, as seccompiler's rules (any of them).
enum Match {
    /// Whatever the arguments.
    Always,
    /// When one of these rules holds (none: never).
    Rules(Vec<SeccompRule>),
}

/// One syscall's rules in order: when they match, and what they return then. A rule after one
/// that always matches is never reached and is left out.
#[derive(Default)]
struct Chain {
    conditional: Vec<(SeccompRule, u32)>,
    always: Option<u32>,
}

/// A rule's `args` as runc adds them: all in one rule, or one rule each when two compare the
/// same argument.
fn conditions(args: &[Arg]) -> Result<Match, String> {
    if args.is_empty() {
        return Ok(Match::Always);
    }
    let mut seen = [false; 6];
    let mut shared = false;
    for arg in args {
        let slot = seen.get_mut(arg.index as usize).ok_or("argument index out of range")?;
        shared |= std::mem::replace(slot, true);
    }
    let groups: Vec<&[Arg]> = if shared { args.chunks(1).collect() } else { vec![args] };
    let mut rules = Vec::new();
    'groups: for group in groups {
        let mut conds = Vec::with_capacity(group.len());
        for arg in group {
            let (op, value) = match arg.op {
                Op::NotEqual => (SeccompCmpOp::Ne, arg.value),
                Op::LessThan => (SeccompCmpOp::Lt, arg.value),
                Op::LessOrEqual => (SeccompCmpOp::Le, arg.value),
                Op::Equal => (SeccompCmpOp::Eq, arg.value),
                Op::GreaterOrEqual => (SeccompCmpOp::Ge, arg.value),
                Op::GreaterThan => (SeccompCmpOp::Gt, arg.value),
                // A masked argument never has bits outside the mask; seccompiler would mask
                // the expected value too and match where libseccomp never does.
                Op::MaskedEqual if arg.value_two & !arg.value != 0 => continue 'groups,
                Op::MaskedEqual => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
            };
            let index = u8::try_from(arg.index).map_err(|_| "argument index out of range")?;
            let cond = SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
                .map_err(|e| e.to_string())?;
            conds.push(cond);
        }
        rules.push(SeccompRule::new(conds).map_err(|e| e.to_string())?);
    }
    Ok(Match::Rules(rules))
}

/// The classic-BPF program for `profile` in a container with the capabilities `caps`
/// (`CAP_SYS_ADMIN`, … as in Docker's bounding set) on a kernel `kernel` (major, minor: see
/// [`kernel_version`]). Compile before forking: [`apply`] then only hands it to the kernel.
pub fn compile(profile: &Profile, caps: &[&str], kernel: (u32, u32)) -> Result<BpfProgram, String> {
    profile.validate()?;
    let native = NATIVE.ok_or("seccomp profiles are built for x86_64 and aarch64 only")?;
    let default = profile.default_action.ret(profile.default_errno_ret);
    let mut chains: BTreeMap<u32, Chain> = BTreeMap::new();
    // What the chains will take at the least (a syscall 2 instructions, a rule with arguments
    // 5), so that a profile that cannot fit stops here rather than after building it all.
    let mut least = 0;
    for rule in profile.syscalls.iter().filter(|r| r.applies(caps, kernel)) {
        let ret = rule.action.ret(rule.errno_ret);
        if ret == default {
            continue;
        }
        let when = conditions(&rule.args)?;
        for nr in rule.names().into_iter().filter_map(syscall_number) {
            let chain = chains.entry(nr).or_insert_with(|| {
                least += 2;
                Chain::default()
            });
            if chain.always.is_some() {
                continue;
            }
            match &when {
                Match::Always => chain.always = Some(ret),
                Match::Rules(rules) => {
                    chain.conditional.extend(rules.iter().map(|r| (r.clone(), ret)));
                    least += 5 * rules.len();
                }
            }
            if least > BPF_MAXINSNS {
                return Err(too_long(least));
            }
        }
    }

    let mut prog = vec![
        load(SECCOMP_DATA_ARCH),
        jump(libc::BPF_JEQ, native.audit_arch, 1, 0),
        ret(libc::SECCOMP_RET_KILL_PROCESS),
        load(SECCOMP_DATA_NR),
    ];
    if let Some(foreign) = native.foreign_nr {
        prog.push(jump(libc::BPF_JGE, foreign, 0, 1));
        prog.push(ret(libc::SECCOMP_RET_KILL_PROCESS));
    }
    for (nr, Chain { conditional, always }) in chains {
        let fallback = always.unwrap_or(default);
        // Not this syscall: skip one instruction, onto the first block's jump past itself (or
        // past the one return).
        prog.push(jump(libc::BPF_JEQ, nr, 0, 1));
        for (rule, action) in conditional {
            prog.extend(BpfProgram::from(rule));
            prog.push(ret(action));
        }
        prog.push(ret(fallback));
    }
    prog.push(ret(default));
    if prog.len() > BPF_MAXINSNS {
        return Err(too_long(prog.len()));
    }
    Ok(prog)
}

/// The most instructions the kernel takes in a filter.
const BPF_MAXINSNS: usize = libc::BPF_MAXINSNS as usize;

fn too_long(instructions: usize) -> String {
    format!(
        "the seccomp profile makes {instructions} BPF instructions or more, more than the \
         kernel's {BPF_MAXINSNS}"
    )
}

/// Installs `prog` on the calling thread (and what it execs and forks). The caller has set
/// `no_new_privs` (`prctl(PR_SET_NO_NEW_PRIVS, 1)`) or holds `CAP_SYS_ADMIN`, as runc does.
///
/// It allocates nothing and makes one syscall, so a forked child of a threaded process may
/// call it between fork and exec.
pub fn apply(prog: &[sock_filter]) -> io::Result<()> {
    let len = u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fprog =
        libc::sock_fprog { len, filter: prog.as_ptr().cast::<libc::sock_filter>().cast_mut() };
    // SAFETY: `fprog` points at `len` instructions of `prog`, laid out as the kernel's (checked
    // below), which the kernel copies before it returns; it writes none of them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

// seccompiler's instruction is the kernel's.
const _: () = {
    assert!(size_of::<sock_filter>() == size_of::<libc::sock_filter>());
    assert!(align_of::<sock_filter>() == align_of::<libc::sock_filter>());
};

/// The running kernel's version (4, 8 for `4.8.0-1-amd64`), for `minKernel`.
pub fn kernel_version() -> io::Result<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
    parse_release(&release).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("kernel release {release:?}"))
    })
}

/// `6.1.0-13-amd64`, `3.12-rc5`, `4.8` → (major, minor).
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().splitn(3, |c: char| !c.is_ascii_digit());
    let kernel = parts.next()?.parse().ok()?;
    let major = parts.next()?.parse().ok()?;
    Some((kernel, major))
}

/// Runs `prog` as the kernel would for syscall `nr` with `args` on this machine's ABI, and
/// returns its answer (`SECCOMP_RET_*` with data): what the tests and the fuzz target check
/// compiled programs with. A program the kernel would refuse (a jump out of it, an instruction
/// a seccomp filter may not have, an end without a return) is an error.
pub fn evaluate(prog: &[sock_filter], nr: u32, args: [u64; 6]) -> Result<u32, String> {
    let arch = NATIVE.map_or(0, |n| n.audit_arch);
    run(prog, arch, nr, args)
}

/// [`evaluate`] for any ABI.
fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> Result<u32, String> {
    // `struct seccomp_data` in 32-bit words (little-endian: the low word first): nr, arch, the
    // instruction pointer, then the arguments.
    let mut data = [0u32; 16];
    data[0] = nr;
    data[1] = arch;
    for (i, arg) in args.iter().enumerate() {
        data[4 + 2 * i] = *arg as u32;
        data[5 + 2 * i] = (*arg >> 32) as u32;
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let Some(insn) = prog.get(pc) else {
            return Err(format!("the program runs off its end at {pc}"));
        };
        let code = u32::from(insn.code);
        pc += 1;
        match code {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                let k = insn.k as usize;
                if !k.is_multiple_of(4) || k >= 64 {
                    return Err(format!("a load at offset {k}, outside seccomp_data"));
                }
                acc = data[k / 4];
            }
            c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => acc &= insn.k,
            c if c == libc::BPF_RET | libc::BPF_K => return Ok(insn.k),
            c if c == libc::BPF_JMP | libc::BPF_JA => pc += insn.k as usize,
            c if c & 0x07 == libc::BPF_JMP && c & 0x08 == libc::BPF_K => {
                let taken = match c & 0xf0 {
                    op if op == libc::BPF_JEQ => acc == insn.k,
                    op if op == libc::BPF_JGT => acc > insn.k,
                    op if op == libc::BPF_JGE => acc >= insn.k,
                    op if op == libc::BPF_JSET => acc & insn.k != 0,
                    _ => return Err(format!("instruction {code:#x} at {}", pc - 1)),
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            _ => return Err(format!("instruction {code:#x} at {}", pc - 1)),
        }
        if pc >= prog.len() {
            return Err(format!(
                "the program goes on at {pc}, past its {} instructions",
                prog.len()
            ));
        }
    }
}

fn load(offset: u32) -> sock_filter {
    sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: offset,
    }
}

fn jump(op: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code: (libc::BPF_JMP | op | libc::BPF_K) as u16, jt, jf, k }
}

fn ret(k: u32) -> sock_filter {
    sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k }
}

/// Offsets in `struct seccomp_data`.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

/// The flags of the namespaces `clone` may not make without `CAP_SYS_ADMIN`.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The ABI that filters are built for.
#[derive(Clone, Copy)]
struct Native {
    /// `AUDIT_ARCH_*`: `seccomp_data.arch` of its syscalls.
    audit_arch: u32,
    /// Go's name, as in a rule's `arches`.
    go_name: &'static str,
    /// Syscall numbers from this on are another ABI's under the same `arch` (x32's).
    foreign_nr: Option<u32>,
}

#[cfg(target_arch = "x86_64")]
const NATIVE: Option<Native> = Some(Native {
    audit_arch: 0xc000_003e, // AUDIT_ARCH_X86_64: EM_X86_64 | 64-bit | little-endian
    go_name: "amd64",
    foreign_nr: Some(0x4000_0000), // __X32_SYSCALL_BIT
});

#[cfg(target_arch = "aarch64")]
const NATIVE: Option<Native> = Some(Native {
    audit_arch: 0xc000_00b7, // AUDIT_ARCH_AARCH64: EM_AARCH64 | 64-bit | little-endian
    go_name: "arm64",
    foreign_nr: None,
});

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE: Option<Native> = None;

/// The number of syscall `name` on this machine's ABI, if it has it.
fn syscall_number(name: &str) -> Option<u32> {
    SYSCALLS
        .iter()
        .chain(MORE_SYSCALLS)
        .find(|(sys, _)| sys.strip_prefix("SYS_") == Some(name))
        .and_then(|&(_, nr)| u32::try_from(nr).ok())
}

/// `(stringify!(SYS_x), libc::SYS_x)` for each.
macro_rules! syscalls {
    ($($sys:ident),* $(,)?) => { &[$((stringify!($sys), libc::$sys as i64)),*] };
}

/// The syscalls libc names for x86_64 (with glibc and musl alike), in the kernel's order.
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
const SYSCALLS: &[(&str, i64)] = syscalls![
    SYS_read, SYS_write, SYS_open, SYS_close, SYS_stat, SYS_fstat, SYS_lstat, SYS_poll, SYS_lseek,
    SYS_mmap, SYS_mprotect, SYS_munmap, SYS_brk, SYS_rt_sigaction, SYS_rt_sigprocmask,
    SYS_rt_sigreturn, SYS_ioctl, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_access,
    SYS_pipe, SYS_select, SYS_sched_yield, SYS_mremap, SYS_msync, SYS_mincore, SYS_madvise,
    SYS_shmget, SYS_shmat, SYS_shmctl, SYS_dup, SYS_dup2, SYS_pause, SYS_nanosleep, SYS_getitimer,
    SYS_alarm, SYS_setitimer, SYS_getpid, SYS_sendfile, SYS_socket, SYS_connect, SYS_accept,
    SYS_sendto, SYS_recvfrom, SYS_sendmsg, SYS_recvmsg, SYS_shutdown, SYS_bind, SYS_listen,
    SYS_getsockname, SYS_getpeername, SYS_socketpair, SYS_setsockopt, SYS_getsockopt, SYS_clone,
    SYS_fork, SYS_vfork, SYS_execve, SYS_exit, SYS_wait4, SYS_kill, SYS_uname, SYS_semget,
    SYS_semop, SYS_semctl, SYS_shmdt, SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl, SYS_fcntl,
    SYS_flock, SYS_fsync, SYS_fdatasync, SYS_truncate, SYS_ftruncate, SYS_getdents, SYS_getcwd,
    SYS_chdir, SYS_fchdir, SYS_rename, SYS_mkdir, SYS_rmdir, SYS_creat, SYS_link, SYS_unlink,
    SYS_symlink, SYS_readlink, SYS_chmod, SYS_fchmod, SYS_chown, SYS_fchown, SYS_lchown, SYS_umask,
    SYS_gettimeofday, SYS_getrlimit, SYS_getrusage, SYS_sysinfo, SYS_times, SYS_ptrace, SYS_getuid,
    SYS_syslog, SYS_getgid, SYS_setuid, SYS_setgid, SYS_geteuid, SYS_getegid, SYS_setpgid,
    SYS_getppid, SYS_getpgrp, SYS_setsid, SYS_setreuid, SYS_setregid, SYS_getgroups, SYS_setgroups,
    SYS_setresuid, SYS_getresuid, SYS_setresgid, SYS_getresgid, SYS_getpgid, SYS_setfsuid,
    SYS_setfsgid, SYS_getsid, SYS_capget, SYS_capset, SYS_rt_sigpending, SYS_rt_sigtimedwait,
    SYS_rt_sigqueueinfo, SYS_rt_sigsuspend, SYS_sigaltstack, SYS_utime, SYS_mknod, SYS_uselib,
    SYS_personality, SYS_ustat, SYS_statfs, SYS_fstatfs, SYS_sysfs, SYS_getpriority,
    SYS_setpriority, SYS_sched_setparam, SYS_sched_getparam, SYS_sched_setscheduler,
    SYS_sched_getscheduler, SYS_sched_get_priority_max, SYS_sched_get_priority_min,
    SYS_sched_rr_get_interval, SYS_mlock, SYS_munlock, SYS_mlockall, SYS_munlockall, SYS_vhangup,
    SYS_modify_ldt, SYS_pivot_root, SYS__sysctl, SYS_prctl, SYS_arch_prctl, SYS_adjtimex,
    SYS_setrlimit, SYS_chroot, SYS_sync, SYS_acct, SYS_settimeofday, SYS_mount, SYS_umount2,
    SYS_swapon, SYS_swapoff, SYS_reboot, SYS_sethostname, SYS_setdomainname, SYS_iopl, SYS_ioperm,
    SYS_init_module, SYS_delete_module, SYS_quotactl, SYS_nfsservctl, SYS_getpmsg, SYS_putpmsg,
    SYS_afs_syscall, SYS_tuxcall, SYS_security, SYS_gettid, SYS_readahead, SYS_setxattr,
    SYS_lsetxattr, SYS_fsetxattr, SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr, SYS_listxattr,
    SYS_llistxattr, SYS_flistxattr, SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr, SYS_tkill,
    SYS_time, SYS_futex, SYS_sched_setaffinity, SYS_sched_getaffinity, SYS_set_thread_area,
    SYS_io_setup, SYS_io_destroy, SYS_io_getevents, SYS_io_submit, SYS_io_cancel,
    SYS_get_thread_area, SYS_lookup_dcookie, SYS_epoll_create, SYS_epoll_ctl_old,
    SYS_epoll_wait_old, SYS_remap_file_pages, SYS_getdents64, SYS_set_tid_address,
    SYS_restart_syscall, SYS_semtimedop, SYS_fadvise64, SYS_timer_create, SYS_timer_settime,
    SYS_timer_gettime, SYS_timer_getoverrun, SYS_timer_delete, SYS_clock_settime, SYS_clock_gettime,
    SYS_clock_getres, SYS_clock_nanosleep, SYS_exit_group, SYS_epoll_wait, SYS_epoll_ctl,
    SYS_tgkill, SYS_utimes, SYS_vserver, SYS_mbind, SYS_set_mempolicy, SYS_get_mempolicy,
    SYS_mq_open, SYS_mq_unlink, SYS_mq_timedsend, SYS_mq_timedreceive, SYS_mq_notify,
    SYS_mq_getsetattr, SYS_kexec_load, SYS_waitid, SYS_add_key, SYS_request_key, SYS_keyctl,
    SYS_ioprio_set, SYS_ioprio_get, SYS_inotify_init, SYS_inotify_add_watch, SYS_inotify_rm_watch,
    SYS_migrate_pages, SYS_openat, SYS_mkdirat, SYS_mknodat, SYS_fchownat, SYS_futimesat,
    SYS_newfstatat, SYS_unlinkat, SYS_renameat, SYS_linkat, SYS_symlinkat, SYS_readlinkat,
    SYS_fchmodat, SYS_faccessat, SYS_pselect6, SYS_ppoll, SYS_unshare, SYS_set_robust_list,
    SYS_get_robust_list, SYS_splice, SYS_tee, SYS_sync_file_range, SYS_vmsplice, SYS_move_pages,
    SYS_utimensat, SYS_epoll_pwait, SYS_signalfd, SYS_timerfd_create, SYS_eventfd, SYS_fallocate,
    SYS_timerfd_settime, SYS_timerfd_gettime, SYS_accept4, SYS_signalfd4, SYS_eventfd2,
    SYS_epoll_create1, SYS_dup3, SYS_pipe2, SYS_inotify_init1, SYS_preadv, SYS_pwritev,
    SYS_rt_tgsigqueueinfo, SYS_perf_event_open, SYS_recvmmsg, SYS_fanotify_init, SYS_fanotify_mark,
    SYS_prlimit64, SYS_name_to_handle_at, SYS_open_by_handle_at, SYS_clock_adjtime, SYS_syncfs,
    SYS_sendmmsg, SYS_setns, SYS_getcpu, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp,
    SYS_finit_module, SYS_sched_setattr, SYS_sched_getattr, SYS_renameat2, SYS_seccomp,
    SYS_getrandom, SYS_memfd_create, SYS_kexec_file_load, SYS_bpf, SYS_execveat, SYS_userfaultfd,
    SYS_membarrier, SYS_mlock2, SYS_copy_file_range, SYS_preadv2, SYS_pwritev2, SYS_pkey_mprotect,
    SYS_pkey_alloc, SYS_pkey_free, SYS_statx, SYS_rseq, SYS_pidfd_send_signal, SYS_io_uring_setup,
    SYS_io_uring_enter, SYS_io_uring_register, SYS_open_tree, SYS_move_mount, SYS_fsopen,
    SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_pidfd_open, SYS_clone3, SYS_close_range, SYS_openat2,
    SYS_pidfd_getfd, SYS_faccessat2, SYS_process_madvise, SYS_epoll_pwait2, SYS_mount_setattr,
    SYS_quotactl_fd, SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self,
    SYS_memfd_secret, SYS_process_mrelease, SYS_futex_waitv, SYS_set_mempolicy_home_node,
    SYS_fchmodat2, SYS_mseal,
];

/// The kernel's syscalls of x86_64 that libc names for musl only.
#[cfg(target_arch = "x86_64")]
const MORE_SYSCALLS: &[(&str, i64)] = &[("SYS_io_pgetevents", 333)];

/// The syscalls libc names for aarch64 (with glibc and musl alike), in the kernel's order.
#[cfg(target_arch = "aarch64")]
#[rustfmt::skip]
const SYSCALLS: &[(&str, i64)] = syscalls![
    SYS_io_setup, SYS_io_destroy, SYS_io_submit, SYS_io_cancel, SYS_io_getevents, SYS_setxattr,
    SYS_lsetxattr, SYS_fsetxattr, SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr, SYS_listxattr,
    SYS_llistxattr, SYS_flistxattr, SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr, SYS_getcwd,
    SYS_lookup_dcookie, SYS_eventfd2, SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_dup,
    SYS_dup3, SYS_fcntl, SYS_inotify_init1, SYS_inotify_add_watch, SYS_inotify_rm_watch, SYS_ioctl,
    SYS_ioprio_set, SYS_ioprio_get, SYS_flock, SYS_mknodat, SYS_mkdirat, SYS_unlinkat,
    SYS_symlinkat, SYS_linkat, SYS_umount2, SYS_mount, SYS_pivot_root, SYS_nfsservctl, SYS_statfs,
    SYS_fstatfs, SYS_truncate, SYS_ftruncate, SYS_fallocate, SYS_faccessat, SYS_chdir, SYS_fchdir,
    SYS_chroot, SYS_fchmod, SYS_fchmodat, SYS_fchownat, SYS_fchown, SYS_openat, SYS_close,
    SYS_vhangup, SYS_pipe2, SYS_quotactl, SYS_getdents64, SYS_lseek, SYS_read, SYS_write, SYS_readv,
    SYS_writev, SYS_pread64, SYS_pwrite64, SYS_preadv, SYS_pwritev, SYS_sendfile, SYS_pselect6,
    SYS_ppoll, SYS_signalfd4, SYS_vmsplice, SYS_splice, SYS_tee, SYS_readlinkat, SYS_newfstatat,
    SYS_fstat, SYS_sync, SYS_fsync, SYS_fdatasync, SYS_timerfd_create, SYS_timerfd_settime,
    SYS_timerfd_gettime, SYS_utimensat, SYS_acct, SYS_capget, SYS_capset, SYS_personality, SYS_exit,
    SYS_exit_group, SYS_waitid, SYS_set_tid_address, SYS_unshare, SYS_futex, SYS_set_robust_list,
    SYS_get_robust_list, SYS_nanosleep, SYS_getitimer, SYS_setitimer, SYS_kexec_load,
    SYS_init_module, SYS_delete_module, SYS_timer_create, SYS_timer_gettime, SYS_timer_getoverrun,
    SYS_timer_settime, SYS_timer_delete, SYS_clock_settime, SYS_clock_gettime, SYS_clock_getres,
    SYS_clock_nanosleep, SYS_syslog, SYS_ptrace, SYS_sched_setparam, SYS_sched_setscheduler,
    SYS_sched_getscheduler, SYS_sched_getparam, SYS_sched_setaffinity, SYS_sched_getaffinity,
    SYS_sched_yield, SYS_sched_get_priority_max, SYS_sched_get_priority_min,
    SYS_sched_rr_get_interval, SYS_restart_syscall, SYS_kill, SYS_tkill, SYS_tgkill,
    SYS_sigaltstack, SYS_rt_sigsuspend, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigpending,
    SYS_rt_sigtimedwait, SYS_rt_sigqueueinfo, SYS_rt_sigreturn, SYS_setpriority, SYS_getpriority,
    SYS_reboot, SYS_setregid, SYS_setgid, SYS_setreuid, SYS_setuid, SYS_setresuid, SYS_getresuid,
    SYS_setresgid, SYS_getresgid, SYS_setfsuid, SYS_setfsgid, SYS_times, SYS_setpgid, SYS_getpgid,
    SYS_getsid, SYS_setsid, SYS_getgroups, SYS_setgroups, SYS_uname, SYS_sethostname,
    SYS_setdomainname, SYS_getrusage, SYS_umask, SYS_prctl, SYS_getcpu, SYS_gettimeofday,
    SYS_settimeofday, SYS_adjtimex, SYS_getpid, SYS_getppid, SYS_getuid, SYS_geteuid, SYS_getgid,
    SYS_getegid, SYS_gettid, SYS_sysinfo, SYS_mq_open, SYS_mq_unlink, SYS_mq_timedsend,
    SYS_mq_timedreceive, SYS_mq_notify, SYS_mq_getsetattr, SYS_msgget, SYS_msgctl, SYS_msgrcv,
    SYS_msgsnd, SYS_semget, SYS_semctl, SYS_semtimedop, SYS_semop, SYS_shmget, SYS_shmctl,
    SYS_shmat, SYS_shmdt, SYS_socket, SYS_socketpair, SYS_bind, SYS_listen, SYS_accept, SYS_connect,
    SYS_getsockname, SYS_getpeername, SYS_sendto, SYS_recvfrom, SYS_setsockopt, SYS_getsockopt,
    SYS_shutdown, SYS_sendmsg, SYS_recvmsg, SYS_readahead, SYS_brk, SYS_munmap, SYS_mremap,
    SYS_add_key, SYS_request_key, SYS_keyctl, SYS_clone, SYS_execve, SYS_mmap, SYS_fadvise64,
    SYS_swapon, SYS_swapoff, SYS_mprotect, SYS_msync, SYS_mlock, SYS_munlock, SYS_mlockall,
    SYS_munlockall, SYS_mincore, SYS_madvise, SYS_remap_file_pages, SYS_mbind, SYS_get_mempolicy,
    SYS_set_mempolicy, SYS_migrate_pages, SYS_move_pages, SYS_rt_tgsigqueueinfo,
    SYS_perf_event_open, SYS_accept4, SYS_recvmmsg, SYS_wait4, SYS_prlimit64, SYS_fanotify_init,
    SYS_fanotify_mark, SYS_name_to_handle_at, SYS_open_by_handle_at, SYS_clock_adjtime, SYS_syncfs,
    SYS_setns, SYS_sendmmsg, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp,
    SYS_finit_module, SYS_sched_setattr, SYS_sched_getattr, SYS_renameat2, SYS_seccomp,
    SYS_getrandom, SYS_memfd_create, SYS_bpf, SYS_execveat, SYS_userfaultfd, SYS_membarrier,
    SYS_mlock2, SYS_copy_file_range, SYS_preadv2, SYS_pwritev2, SYS_pkey_mprotect, SYS_pkey_alloc,
    SYS_pkey_free, SYS_statx, SYS_rseq, SYS_pidfd_send_signal, SYS_io_uring_setup,
    SYS_io_uring_enter, SYS_io_uring_register, SYS_open_tree, SYS_move_mount, SYS_fsopen,
    SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_pidfd_open, SYS_clone3, SYS_close_range, SYS_openat2,
    SYS_pidfd_getfd, SYS_faccessat2, SYS_process_madvise, SYS_epoll_pwait2, SYS_mount_setattr,
    SYS_quotactl_fd, SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self,
    SYS_memfd_secret, SYS_process_mrelease, SYS_futex_waitv, SYS_set_mempolicy_home_node, SYS_mseal,
];

/// The kernel's syscalls of aarch64 that libc names for one of glibc and musl only.
#[cfg(target_arch = "aarch64")]
const MORE_SYSCALLS: &[(&str, i64)] = &[
    ("SYS_renameat", 38),
    ("SYS_sync_file_range", 84),
    ("SYS_getrlimit", 163),
    ("SYS_setrlimit", 164),
    ("SYS_io_pgetevents", 292),
    ("SYS_kexec_file_load", 294),
];

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYSCALLS: &[(&str, i64)] = &[];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const MORE_SYSCALLS: &[(&str, i64)] = &[];

/// What Docker 20.10 allows every container, whatever its capabilities (names of every
/// architecture: each keeps those it has).
#[rustfmt::skip]
const DOCKER_ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
    "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
    "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
    "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr",
    "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
    "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
    "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "poll", "ppoll", "ppoll_time64", "prctl", "pread64",
    "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
    "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
    "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
    "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl",
    "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
    "sigreturn", "socket", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs",
    "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo",
    "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
    "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
];

/// What Docker allows with `CAP_SYS_ADMIN` besides: namespaces, mounts, and the rest.
#[rustfmt::skip]
const SYS_ADMIN: &[&str] = &[
    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
    "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
    "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
    "umount2", "unshare",
];

/// What Docker allows with one more capability, in its order.
const CAP_RULES: [(&str, &[&str]); 10] = [
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy"]),
    ("CAP_SYSLOG", &["syslog"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_CAPS: &[&str] = DOCKER_DEFAULT_CAPS;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const DENY: u32 = libc::SECCOMP_RET_ERRNO | EPERM;
    const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

    fn nr(name: &str) -> u32 {
        syscall_number(name).unwrap_or_else(|| panic!("no syscall {name}"))
    }

    fn with_caps(extra: &[&'static str]) -> Vec<&'static str> {
        DOCKER_CAPS.iter().chain(extra).copied().collect()
    }

    /// What `prog` answers for syscall `name` with its first argument `arg0`.
    fn decide(prog: &[sock_filter], name: &str, arg0: u64) -> u32 {
        evaluate(prog, nr(name), [arg0, 0, 0, 0, 0, 0]).unwrap()
    }

    #[test]
    fn the_default_profile_allows_what_docker_allows_and_nothing_else() {
        let prog = compile(&Profile::docker_default(), DOCKER_CAPS, (6, 1)).unwrap();
        assert!((300..1200).contains(&prog.len()), "{} instructions", prog.len());
        let mut allowed: Vec<&str> = DOCKER_ALLOWED.to_vec();
        allowed.extend(["ptrace", "chroot", "personality", "clone"]);
        #[cfg(target_arch = "x86_64")]
        allowed.extend(["arch_prctl", "modify_ldt"]);
        for (sys, number) in SYSCALLS.iter().chain(MORE_SYSCALLS) {
            let name = &sys[4..];
            let answer = evaluate(&prog, *number as u32, [0; 6]).unwrap();
            let expected = match name {
                "clone3" => libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
                _ if allowed.contains(&name) => ALLOW,
                _ => DENY,
            };
            assert_eq!(answer, expected, "{name}");
        }
        assert_eq!(evaluate(&prog, 999, [0; 6]), Ok(DENY), "a number no syscall has");
    }

    #[test]
    fn capabilities_kernels_and_arguments_decide_as_docker_does() {
        let default = Profile::docker_default();
        let prog = compile(&default, DOCKER_CAPS, (6, 1)).unwrap();
        let admin = compile(&default, &with_caps(&["CAP_SYS_ADMIN"]), (6, 1)).unwrap();
        for name in ["mount", "umount2", "unshare", "setns", "bpf", "sethostname", "keyctl"] {
            assert_eq!(decide(&prog, name, 0), DENY, "{name}");
        }
        for name in ["mount", "umount2", "unshare", "setns", "bpf", "sethostname", "clone3"] {
            assert_eq!(decide(&admin, name, 0), ALLOW, "{name} with CAP_SYS_ADMIN");
        }
        assert_eq!(decide(&admin, "keyctl", 0), DENY);

        // clone: no namespace flag without CAP_SYS_ADMIN; clone3 is ENOSYS.
        let sigchld = libc::SIGCHLD as u64;
        assert_eq!(decide(&prog, "clone", sigchld), ALLOW);
        assert_eq!(decide(&prog, "clone", 0x1200011), ALLOW, "glibc's fork");
        for flag in
            [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET, libc::CLONE_NEWCGROUP]
        {
            assert_eq!(decide(&prog, "clone", sigchld | flag as u64), DENY, "{flag:#x}");
            assert_eq!(decide(&admin, "clone", sigchld | flag as u64), ALLOW, "{flag:#x}");
        }
        assert_eq!(decide(&prog, "clone3", 0), libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);

        // personality: the five values only, compared on 64 bits.
        for persona in [0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(decide(&prog, "personality", persona), ALLOW, "{persona:#x}");
        }
        for persona in [0x0040000, 0x1_0000_0000, u64::MAX] {
            assert_eq!(decide(&prog, "personality", persona), DENY, "{persona:#x}");
        }

        // ptrace: from kernel 4.8 on, or with CAP_SYS_PTRACE.
        let old = compile(&default, DOCKER_CAPS, (4, 4)).unwrap();
        assert_eq!(decide(&old, "ptrace", 0), DENY);
        assert_eq!(decide(&compile(&default, DOCKER_CAPS, (4, 8)).unwrap(), "ptrace", 0), ALLOW);
        let tracer = compile(&default, &with_caps(&["CAP_SYS_PTRACE"]), (4, 4)).unwrap();
        for name in ["ptrace", "kcmp", "process_vm_readv", "pidfd_getfd"] {
            assert_eq!(decide(&tracer, name, 0), ALLOW, "{name}");
            assert_eq!(decide(&old, name, 0), DENY, "{name}");
        }

        // One capability, its syscalls.
        for (cap, names) in CAP_RULES {
            let with = compile(&default, &[cap], (6, 1)).unwrap();
            let without = compile(&default, &[], (6, 1)).unwrap();
            for name in names.iter().filter(|n| syscall_number(n).is_some()) {
                assert_eq!(decide(&with, name, 0), ALLOW, "{name} with {cap}");
                if *name != "ptrace" {
                    assert_eq!(decide(&without, name, 0), DENY, "{name} without {cap}");
                }
            }
        }
    }

    #[test]
    fn other_abis_are_killed() {
        let prog = compile(&Profile::docker_default(), DOCKER_CAPS, (6, 1)).unwrap();
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        assert_eq!(run(&prog, AUDIT_ARCH_I386, 20, [0; 6]), Ok(KILL));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(evaluate(&prog, 0x4000_0000 | nr("getpid"), [0; 6]), Ok(KILL), "x32");
    }

    #[test]
    fn the_default_profile_reads_back_from_its_json() {
        let default = Profile::docker_default();
        let json = serde_json::to_vec_pretty(&default).unwrap();
        let back = Profile::from_json(&json).unwrap();
        assert_eq!(back, default);
        assert_eq!(compile(&back, DOCKER_CAPS, (6, 1)), compile(&default, DOCKER_CAPS, (6, 1)));
    }

    /// moby's own file, which is not ours to ship: `SECCOMP_DOCKER_DEFAULT_JSON=path/to/
    /// profiles/seccomp/default.json` (v20.10.27) `cargo test --lib -- --ignored seccomp`.
    #[test]
    #[ignore = "needs moby's default.json of v20.10.27 in SECCOMP_DOCKER_DEFAULT_JSON"]
    fn dockers_own_default_json_is_the_default_profile() {
        let path = std::env::var("SECCOMP_DOCKER_DEFAULT_JSON").unwrap();
        let docker = Profile::from_json(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(docker, Profile::docker_default());
    }

    /// A profile that allows everything but `dup`, on which it has `rules`.
    fn on_dup(rules: serde_json::Value) -> Profile {
        let json = serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules });
        Profile::from_json(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn each_comparison_holds_where_it_should_on_64_bits() {
        let values = [0, 1, 9, 10, 11, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_000a, u64::MAX];
        type Holds = fn(u64, u64) -> bool;
        let ops: [(&str, Holds); 6] = [
            ("SCMP_CMP_NE", |a, v| a != v),
            ("SCMP_CMP_LT", |a, v| a < v),
            ("SCMP_CMP_LE", |a, v| a <= v),
            ("SCMP_CMP_EQ", |a, v| a == v),
            ("SCMP_CMP_GE", |a, v| a >= v),
            ("SCMP_CMP_GT", |a, v| a > v),
        ];
        for (op, holds) in ops {
            for value in [10, 0x1_0000_000a] {
                let profile = on_dup(serde_json::json!([{
                    "names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
                    "args": [{ "index": 2, "value": value, "op": op }]
                }]));
                let prog = compile(&profile, &[], (6, 1)).unwrap();
                for arg in values {
                    let answer = evaluate(&prog, nr("dup"), [0, 0, arg, 0, 0, 0]).unwrap();
                    let expected =
                        if holds(arg, value) { libc::SECCOMP_RET_ERRNO | 7 } else { ALLOW };
                    assert_eq!(answer, expected, "{arg:#x} {op} {value:#x}");
                }
            }
        }
        let profile = on_dup(serde_json::json!([{
            "names": ["dup"], "action": "SCMP_ACT_TRAP",
            "args": [{ "index": 5, "value": 0xff00_0000_00f0_u64, "valueTwo": 0x1200_0000_0030_u64,
                       "op": "SCMP_CMP_MASKED_EQ" }]
        }]));
        let prog = compile(&profile, &[], (6, 1)).unwrap();
        let dup = |arg5| evaluate(&prog, nr("dup"), [0, 0, 0, 0, 0, arg5]).unwrap();
        assert_eq!(dup(0x1200_0000_0030), libc::SECCOMP_RET_TRAP);
        assert_eq!(dup(0x12ab_cdef_ff3f), libc::SECCOMP_RET_TRAP);
        assert_eq!(dup(0x1300_0000_0030), ALLOW);
        assert_eq!(dup(0x1200_0000_0020), ALLOW);
    }

    #[test]
    fn arguments_combine_as_runc_combines_them() {
        // Different arguments: all of them. The same argument twice: either.
        let profile = on_dup(serde_json::json!([
            { "names": ["dup"], "action": "SCMP_ACT_ERRNO", "args": [
                { "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                { "index": 1, "value": 2, "op": "SCMP_CMP_EQ" } ] },
            { "names": ["dup2"], "action": "SCMP_ACT_KILL", "args": [
                { "index": 0, "value": 5, "op": "SCMP_CMP_LE" },
                { "index": 0, "value": 10, "op": "SCMP_CMP_GE" } ] },
            { "names": ["dup3"], "action": "SCMP_ACT_LOG", "args": [
                { "index": 0, "value": 0xf, "valueTwo": 0x10, "op": "SCMP_CMP_MASKED_EQ" } ] },
        ]));
        let prog = compile(&profile, &[], (6, 1)).unwrap();
        let at = |name, a0, a1| evaluate(&prog, nr(name), [a0, a1, 0, 0, 0, 0]).unwrap();
        assert_eq!(at("dup", 1, 2), DENY);
        assert_eq!(at("dup", 1, 3), ALLOW);
        assert_eq!(at("dup", 0, 2), ALLOW);
        if syscall_number("dup2").is_some() {
            assert_eq!(at("dup2", 3, 0), libc::SECCOMP_RET_KILL_THREAD);
            assert_eq!(at("dup2", 12, 0), libc::SECCOMP_RET_KILL_THREAD);
            assert_eq!(at("dup2", 7, 0), ALLOW);
        }
        // A masked value with bits outside its mask never matches, as in libseccomp.
        assert_eq!(at("dup3", 0x10, 0), ALLOW);
        assert_eq!(at("dup3", 0, 0), ALLOW);
    }

    #[test]
    fn rules_of_one_syscall_are_tried_in_order_and_the_default_action_is_not_a_rule() {
        let profile = Profile::from_json(
            br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"name": "dup", "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                 "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
                {"names": ["dup", "getpid"], "action": "SCMP_ACT_ALLOW", "args": null},
                {"names": ["dup"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["gettid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["no_such_syscall", "umask"], "action": "SCMP_ACT_TRACE"}
            ]}"#,
        )
        .unwrap();
        let prog = compile(&profile, &[], (6, 1)).unwrap();
        assert_eq!(decide(&prog, "dup", 3), libc::SECCOMP_RET_ERRNO | 9);
        assert_eq!(decide(&prog, "dup", 4), ALLOW);
        assert_eq!(decide(&prog, "getpid", 0), ALLOW);
        assert_eq!(decide(&prog, "getppid", 0), DENY);
        assert_eq!(decide(&prog, "gettid", 0), DENY);
        assert_eq!(decide(&prog, "umask", 0), libc::SECCOMP_RET_TRACE | EPERM);
        assert_eq!(decide(&prog, "getuid", 0), DENY);

        let errno = Profile::from_json(
            br#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": []}"#,
        )
        .unwrap();
        let prog = compile(&errno, &[], (6, 1)).unwrap();
        assert_eq!(decide(&prog, "getuid", 0), libc::SECCOMP_RET_ERRNO | 38);
    }

    #[test]
    fn long_chains_jump_far_and_too_long_a_program_is_an_error() {
        let personas: Vec<serde_json::Value> = (0..400u64)
            .map(|p| {
                serde_json::json!({ "names": ["personality"], "action": "SCMP_ACT_ERRNO",
                "args": [{ "index": 0, "value": p * 3, "op": "SCMP_CMP_EQ" }] })
            })
            .collect();
        let profile = on_dup(serde_json::Value::Array(personas));
        let prog = compile(&profile, &[], (6, 1)).unwrap();
        assert!(prog.len() > 2000, "{}", prog.len());
        for p in [0, 3, 597, 1197, 1198, 1200, 5] {
            let expected = if p % 3 == 0 && p < 1200 { DENY } else { ALLOW };
            assert_eq!(decide(&prog, "personality", p), expected, "{p}");
        }
        assert_eq!(decide(&prog, "getpid", 0), ALLOW);

        let many: Vec<serde_json::Value> = (0..1000u64)
            .map(|p| {
                serde_json::json!({ "names": ["personality"], "action": "SCMP_ACT_ERRNO",
                "args": [{ "index": 0, "value": p, "op": "SCMP_CMP_EQ" }] })
            })
            .collect();
        let err = compile(&on_dup(serde_json::Value::Array(many)), &[], (6, 1)).unwrap_err();
        assert!(err.contains("more than the kernel's 4096"), "{err}");
    }

    #[test]
    fn bad_profiles_are_refused_in_words() {
        let cases: [(&str, &str); 12] = [
            ("not json", "decoding seccomp profile failed"),
            ("{}", "missing field `defaultAction`"),
            (r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#, "unknown variant `SCMP_ACT_NOTIFY`"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["dup"],
                   "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_LIKE"}]}]}"#,
                "unknown variant `SCMP_CMP_LIKE`",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["dup"],
                   "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]}"#,
                "argument index 6",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["dup"],
                   "action": "SCMP_ACT_ERRNO", "args": [{"index": -1, "op": "SCMP_CMP_EQ"}]}]}"#,
                "invalid value",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "dup",
                   "names": ["dup2"], "action": "SCMP_ACT_ERRNO"}]}"#,
                "use either 'name' or 'names'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                   "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
                "use either 'architectures' or 'archMap'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["dup"],
                   "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "0.0"}}]}"#,
                "invalid kernel version",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["dup"],
                   "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "4.300"}}]}"#,
                "invalid kernel version",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["dup"],
                   "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}]}"#,
                "errnoRet 65536 does not fit",
            ),
            (r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["dup"]}]}"#, "action"),
        ];
        for (json, expected) in cases {
            let err = Profile::from_json(json.as_bytes()).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
        let ok = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["dup"],
            "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": ""}, "excludes": null,
            "unknownField": 1}]}"#;
        assert!(Profile::from_json(ok.as_bytes()).is_ok());
    }

    #[test]
    fn kernel_releases_read_as_docker_reads_them() {
        assert_eq!(parse_release("6.18.44-fc-v1272\n"), Some((6, 18)));
        assert_eq!(parse_release("3.12-rc5"), Some((3, 12)));
        assert_eq!(parse_release("4.8"), Some((4, 8)));
        assert_eq!(parse_release("4"), None);
        assert_eq!(parse_release("x.1"), None);
        let running = kernel_version().unwrap();
        assert!(running >= (3, 0), "{running:?}");
    }

    #[test]
    fn a_broken_program_is_an_error_not_an_answer() {
        assert!(evaluate(&[], 0, [0; 6]).is_err());
        assert!(evaluate(&[jump(libc::BPF_JEQ, 0, 5, 5)], 0, [0; 6]).is_err());
        assert!(evaluate(&[load(64), ret(ALLOW)], 0, [0; 6]).is_err());
        assert!(evaluate(&[load(0)], 0, [0; 6]).is_err());
    }
}
