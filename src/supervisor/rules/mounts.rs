//! A container's mounts as Docker reads them, without touching the disk: `-v` values
//! (`HostConfig.Binds`, moby's Linux `ParseMountRaw`), `--mount` values (`HostConfig.Mounts`,
//! checked as moby's `ValidateMountConfig`), `--tmpfs` (`HostConfig.Tmpfs`), `--volumes-from`
//! and the local driver's volume names, each refusal in Docker's words.

use serde::{Deserialize, Serialize};

/// What a mount is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A host path.
    #[default]
    Bind,
    /// A volume of the local driver (named, or anonymous when its name is empty).
    Volume,
    /// A tmpfs.
    Tmpfs,
}

impl Kind {
    /// Docker's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Volume => "volume",
            Kind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount a container asks for, parsed and checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Bind, volume or tmpfs.
    pub kind: Kind,
    /// A bind's host path, a volume's name (empty: anonymous); nothing for a tmpfs.
    pub source: String,
    /// The path inside the container.
    pub destination: String,
    /// Read-only.
    pub read_only: bool,
    /// `Mode` as `inspect` shows it (`z` for a named `-v` volume, `ro`, `nocopy`, …).
    pub mode: String,
    /// A volume that is not filled with the image's content there when empty.
    pub nocopy: bool,
    /// A bind's propagation (`rprivate` unless given).
    pub propagation: String,
    /// A tmpfs's mount options (`size=1024k,mode=1770`).
    pub tmpfs_options: String,
}

/// moby's `errInvalidSpec`.
fn invalid_spec(spec: &str) -> String {
    format!("invalid volume specification: '{spec}'")
}

const PROPAGATIONS: [&str; 6] = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

/// The parts of a `-v` mode (`ro,z`), in moby's `ValidMountMode` rules: at most one of
/// `ro`/`rw`, one label (`z`/`Z`), one propagation, one `nocopy`.
struct Mode {
    read_only: bool,
    nocopy: bool,
    propagation: Option<String>,
}

fn parse_mode(mode: &str) -> Option<Mode> {
    let (mut rw, mut label, mut copy) = (0, 0, 0);
    let mut m = Mode { read_only: false, nocopy: false, propagation: None };
    for part in mode.split(',') {
        match part {
            "ro" | "rw" => {
                rw += 1;
                m.read_only = part == "ro";
            }
            "z" | "Z" => label += 1,
            "nocopy" => {
                copy += 1;
                m.nocopy = true;
            }
            p if PROPAGATIONS.contains(&p) => {
                if m.propagation.replace(p.to_string()).is_some() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    (rw <= 1 && label <= 1 && copy <= 1).then_some(m)
}

/// A `-v` value the daemon gets in `HostConfig.Binds` (`[SRC:]DST[:MODE]`), as moby's Linux
/// parser reads it: an absolute SRC binds a host path, another SRC names a volume.
pub fn parse_bind(spec: &str) -> Result<Spec, String> {
    let arr: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match arr.as_slice() {
        [""] => return Err(invalid_spec(spec)),
        [dst] => ("", *dst, ""),
        [a, b] if parse_mode(b).is_some() => ("", *a, *b),
        [src, dst] => (*src, *dst, ""),
        [src, dst, mode] => {
            if parse_mode(mode).is_none() {
                return Err(format!("invalid mode: {mode}"));
            }
            (*src, *dst, *mode)
        }
        _ => return Err(invalid_spec(spec)),
    };
    if destination.is_empty() {
        return Err(invalid_spec(spec));
    }
    let m =
        parse_mode(if mode.is_empty() { "rw" } else { mode }).ok_or_else(|| invalid_spec(spec))?;
    let kind = if source.starts_with('/') { Kind::Bind } else { Kind::Volume };
    let wrap = |e: String| format!("{}: {e}", invalid_spec(spec));
    if kind == Kind::Volume && m.propagation.is_some() {
        return Err(wrap(config_error(kind, "field BindOptions must not be specified")));
    }
    if kind == Kind::Bind && m.nocopy {
        return Err(wrap(config_error(kind, "field VolumeOptions must not be specified")));
    }
    if source.is_empty() && m.nocopy {
        return Err(invalid_spec(spec));
    }
    check_destination(kind, destination).map_err(wrap)?;
    let shown_mode = match (kind, mode) {
        (Kind::Volume, "") if !source.is_empty() => "z".to_string(),
        _ => mode.to_string(),
    };
    Ok(Spec {
        kind,
        source: source.to_string(),
        destination: clean(destination),
        read_only: m.read_only,
        mode: shown_mode,
        nocopy: m.nocopy,
        propagation: match kind {
            Kind::Bind => m.propagation.unwrap_or_else(|| "rprivate".into()),
            _ => String::new(),
        },
        tmpfs_options: String::new(),
    })
}

/// moby's `errMountConfig`.
fn config_error(kind: Kind, why: &str) -> String {
    config_error_named(kind.as_str(), why)
}

fn config_error_named(kind: &str, why: &str) -> String {
    format!("invalid mount config for type \"{kind}\": {why}")
}

/// A destination must be absolute and not `/`.
fn check_destination(kind: Kind, dst: &str) -> Result<(), String> {
    if !dst.starts_with('/') {
        return Err(config_error(
            kind,
            &format!("invalid mount path: '{dst}' mount path must be absolute"),
        ));
    }
    if clean(dst) == "/" {
        return Err(config_error(kind, "invalid specification: destination can't be '/'"));
    }
    Ok(())
}

/// Go's `filepath.Clean` for absolute paths: `.` and empty parts dropped, `..` resolved.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `HostConfig.Mounts[i]` (`mount.Mount`), as Docker's clients send it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ApiMount {
    /// `bind`, `volume`, `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// A host path or a volume's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The path inside.
    pub target: String,
    /// Read-only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// `consistency` (ignored on Linux).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    /// A bind's options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    /// A volume's options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    /// A tmpfs's options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

/// `mount.BindOptions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    /// `rprivate` and the others.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub propagation: String,
}

/// `mount.VolumeOptions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    /// `volume-nocopy`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
    /// `volume-label`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// `volume-driver` and `volume-opt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<DriverConfig>,
}

/// `mount.Driver`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverConfig {
    /// The driver (`local`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<std::collections::BTreeMap<String, String>>,
}

/// `mount.TmpfsOptions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    /// `tmpfs-size` in bytes (0: the kernel's default).
    #[serde(skip_serializing_if = "is_zero")]
    pub size_bytes: i64,
    /// `tmpfs-mode` (0: 1777).
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub mode: u32,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// A `--mount` the daemon got, checked as moby's `ValidateMountConfig`.
pub fn from_api(m: &ApiMount) -> Result<Spec, String> {
    let kind = match m.kind.as_str() {
        "bind" => Kind::Bind,
        "volume" => Kind::Volume,
        "tmpfs" => Kind::Tmpfs,
        other => return Err(config_error_named(other, "mount type unknown")),
    };
    if m.target.is_empty() {
        return Err(config_error(kind, "field Target must not be empty"));
    }
    check_destination(kind, &m.target)?;
    match kind {
        Kind::Bind => {
            if m.source.is_empty() {
                return Err(config_error(kind, "field Source must not be empty"));
            }
            if m.volume_options.is_some() {
                return Err(config_error(kind, "field VolumeOptions must not be specified"));
            }
            if m.tmpfs_options.is_some() {
                return Err(config_error(kind, "field TmpfsOptions must not be specified"));
            }
            if !m.source.starts_with('/') {
                return Err(config_error(
                    kind,
                    &format!("invalid mount path: '{}' mount path must be absolute", m.source),
                ));
            }
        }
        Kind::Volume => {
            if m.bind_options.is_some() {
                return Err(config_error(kind, "field BindOptions must not be specified"));
            }
            if m.tmpfs_options.is_some() {
                return Err(config_error(kind, "field TmpfsOptions must not be specified"));
            }
            if let Some(driver) = m.volume_options.as_ref().and_then(|v| v.driver_config.as_ref())
                && !driver.name.is_empty()
                && driver.name != "local"
            {
                return Err(format!(
                    "create {}: error looking up volume plugin {}: plugin \"{}\" not found",
                    m.source, driver.name, driver.name
                ));
            }
        }
        Kind::Tmpfs => {
            if !m.source.is_empty() {
                return Err(config_error(kind, "field Source must not be specified"));
            }
            if m.bind_options.is_some() {
                return Err(config_error(kind, "field BindOptions must not be specified"));
            }
            if m.volume_options.is_some() {
                return Err(config_error(kind, "field VolumeOptions must not be specified"));
            }
        }
    }
    let nocopy = m.volume_options.as_ref().is_some_and(|v| v.no_copy);
    Ok(Spec {
        kind,
        source: m.source.clone(),
        destination: clean(&m.target),
        read_only: m.read_only,
        mode: match kind {
            Kind::Volume => "z".into(),
            _ => String::new(),
        },
        nocopy,
        propagation: match kind {
            Kind::Bind => m
                .bind_options
                .as_ref()
                .map(|b| b.propagation.clone())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "rprivate".into()),
            _ => String::new(),
        },
        tmpfs_options: match (kind, &m.tmpfs_options) {
            (Kind::Tmpfs, Some(t)) => tmpfs_api_options(t),
            _ => String::new(),
        },
    })
}

/// `TmpfsOptions` as mount options, as moby's `ConvertTmpfsOptions` writes them.
fn tmpfs_api_options(t: &TmpfsOptions) -> String {
    let mut out = Vec::new();
    if t.size_bytes > 0 {
        // The kernel reads kilobytes; moby rounds down to whole ones and says so as `k`.
        out.push(format!("size={}k", t.size_bytes / 1024));
    }
    if t.mode != 0 {
        out.push(format!("mode={:o}", t.mode));
    }
    out.join(",")
}

/// The options `--tmpfs` passes on to the kernel (moby's `ValidateTmpfsMountDestination`
/// and `ParseTmpfsOptions`): flag words Docker knows, `key=value` data as given.
pub fn tmpfs(destination: &str, options: &str) -> Result<Spec, String> {
    if !destination.starts_with('/') {
        return Err(format!("invalid mount path: '{destination}' mount path must be absolute"));
    }
    if clean(destination) == "/" {
        return Err("destination can't be '/'".into());
    }
    Ok(Spec {
        kind: Kind::Tmpfs,
        destination: clean(destination),
        tmpfs_options: options.to_string(),
        ..Spec::default()
    })
}

/// Mount flag words `--tmpfs` takes (moby's `flags` table of `mount.ParseOptions`).
const TMPFS_FLAGS: [&str; 24] = [
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "bind",
    "rbind",
    "relatime",
    "norelatime",
    "strictatime",
];

/// A `--tmpfs` options string split into the flag words and the data the kernel gets; a
/// word Docker does not know is refused at start, as runc does (`invalid tmpfs option`).
pub fn tmpfs_flags(options: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut flags = Vec::new();
    let mut data = Vec::new();
    for o in options.split(',').filter(|o| !o.is_empty()) {
        if o.contains('=') {
            let (k, _) = o.split_once('=').unwrap_or_default();
            if TMPFS_FLAGS.contains(&k) {
                return Err(format!("invalid tmpfs option [\"{o}\"]"));
            }
            data.push(o.to_string());
        } else if TMPFS_FLAGS.contains(&o) {
            flags.push(o.to_string());
        } else {
            return Err(format!("invalid tmpfs option [\"{o}\"]"));
        }
    }
    Ok((flags, data))
}

/// A `--volumes-from CONTAINER[:ro|rw]` value: the container and the mode, if one is given.
pub fn parse_volumes_from(spec: &str) -> Result<(&str, Option<bool>), String> {
    if spec.is_empty() {
        return Err("volumes-from specification cannot be an empty string".into());
    }
    match spec.split_once(':') {
        None => Ok((spec, None)),
        Some((name, mode)) => match parse_mode(mode) {
            Some(m) if m.propagation.is_none() && !m.nocopy => {
                Ok((name, mode.split(',').any(|p| p == "ro" || p == "rw").then_some(m.read_only)))
            }
            _ => Err(format!("invalid mode: {mode}")),
        },
    }
}

/// The local driver's rule for a volume's name (moby's `validateName`), in its words.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    if name.len() == 1 {
        return Err(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        );
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !first_ok || !rest_ok {
        return Err(format!(
            "\"{name}\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        ));
    }
    Ok(())
}

/// How the docker CLI sorts a `-v` value: with a source it goes to `HostConfig.Binds`, a bare
/// path (or what has no source) to `Config.Volumes`, as an anonymous volume. A one-letter
/// first part is a Windows drive to the CLI's parser, so `x:y` is one path.
pub fn is_bind_value(value: &str) -> bool {
    match value.split_once(':') {
        Some((src, _)) => !src.is_empty() && src.len() != 1,
        None => false,
    }
}

/// A `--mount` value as the docker CLI reads it (`opts.MountOpt`): `key=value` fields,
/// comma-separated; the reason in its words (`target is required`, …).
pub fn parse_mount_flag(value: &str) -> Result<ApiMount, String> {
    if value.is_empty() {
        return Err("EOF".into());
    }
    let mut m = ApiMount { kind: "volume".into(), ..ApiMount::default() };
    let (mut volume_only, mut bind_only, mut tmpfs_only) = (false, false, false);
    let bool_of = |key: &str, v: &str| {
        crate::supervisor::rules::format::go_parse_bool(v)
            .map_err(|_| format!("invalid value for {key}: {v}"))
    };
    for field in value.split(',') {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let val = match (key.as_str(), val) {
            ("readonly" | "ro", None) => {
                m.read_only = true;
                continue;
            }
            ("volume-nocopy", None) => {
                m.volume_options.get_or_insert_with(Default::default).no_copy = true;
                volume_only = true;
                continue;
            }
            (_, None) => return Err(format!("invalid field '{field}' must be a key=value pair")),
            (_, Some(v)) => v,
        };
        match key.as_str() {
            "type" => m.kind = val.to_string(),
            "source" | "src" => m.source = val.to_string(),
            "target" | "dst" | "destination" => m.target = val.to_string(),
            "readonly" | "ro" => m.read_only = bool_of(&key, val)?,
            "consistency" => m.consistency = val.to_string(),
            "bind-propagation" => {
                bind_only = true;
                m.bind_options.get_or_insert_with(Default::default).propagation = val.into();
            }
            "volume-nocopy" => {
                volume_only = true;
                m.volume_options.get_or_insert_with(Default::default).no_copy = bool_of(&key, val)?;
            }
            "volume-label" => {
                volume_only = true;
                let (k, v) = val.split_once('=').unwrap_or((val, ""));
                m.volume_options
                    .get_or_insert_with(Default::default)
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert(k.into(), v.into());
            }
            "volume-driver" => {
                volume_only = true;
                m.volume_options
                    .get_or_insert_with(Default::default)
                    .driver_config
                    .get_or_insert_with(Default::default)
                    .name = val.into();
            }
            "volume-opt" => {
                volume_only = true;
                let (k, v) = val.split_once('=').unwrap_or((val, ""));
                m.volume_options
                    .get_or_insert_with(Default::default)
                    .driver_config
                    .get_or_insert_with(Default::default)
                    .options
                    .get_or_insert_with(Default::default)
                    .insert(k.into(), v.into());
            }
            "tmpfs-size" => {
                tmpfs_only = true;
                m.tmpfs_options.get_or_insert_with(Default::default).size_bytes =
                    ram_in_bytes(val).map_err(|_| format!("invalid value for {key}: {val}"))?;
            }
            "tmpfs-mode" => {
                tmpfs_only = true;
                m.tmpfs_options.get_or_insert_with(Default::default).mode =
                    u32::from_str_radix(val, 8)
                        .map_err(|_| format!("invalid value for {key}: {val}"))?;
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if m.target.is_empty() {
        return Err("target is required".into());
    }
    for (only, kind) in [(volume_only, "volume"), (bind_only, "bind"), (tmpfs_only, "tmpfs")] {
        if only && m.kind != kind {
            return Err(format!("cannot mix '{kind}-*' options with mount type '{}'", m.kind));
        }
    }
    Ok(m)
}

/// A size as Docker's `units.RAMInBytes` reads it: a number, then `b`, `k`, `m`, `g`, `t` or
/// `p` (powers of 1024, any case, an optional `i` and `b`).
pub fn ram_in_bytes(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{text}'");
    let t = text.trim_end_matches(['b', 'B']);
    let t = t.trim_end_matches(['i', 'I']);
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], Some(c.to_ascii_lowercase())),
        _ => (t, None),
    };
    let num = num.trim_end();
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let shift = match unit {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        Some(_) => return Err(bad()),
    };
    Ok((n * (1u64 << shift) as f64) as i64)
}

/// `HostConfig.Ulimits[i]` (`units.Ulimit`): `-1` is unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    /// `nofile`, `nproc`, … (go-units' names).
    pub name: String,
    /// The hard limit.
    pub hard: i64,
    /// The soft limit.
    pub soft: i64,
}

/// The limits `--ulimit` names (go-units' `ulimitNameMapping`).
pub const ULIMITS: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// A `--ulimit NAME=SOFT[:HARD]` value, as go-units' `ParseUlimit` reads it.
pub fn parse_ulimit(value: &str) -> Result<Ulimit, String> {
    let (name, limits) =
        value.split_once('=').ok_or_else(|| format!("invalid ulimit argument: {value}"))?;
    if !ULIMITS.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let number = |t: &str| t.parse::<i64>().map_err(|_| format!("invalid ulimit value: {t}"));
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (number(s)?, number(h)?),
        None => {
            let n = number(limits)?;
            (n, n)
        }
    };
    if hard != -1 && (soft > hard || soft == -1) {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit { name: name.to_string(), hard, soft })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_read_as_mobys_linux_parser() {
        let b = parse_bind("/src:/dst").unwrap();
        assert_eq!(
            (b.kind, b.source.as_str(), b.destination.as_str()),
            (Kind::Bind, "/src", "/dst")
        );
        assert_eq!((b.mode.as_str(), b.propagation.as_str(), b.read_only), ("", "rprivate", false));
        let v = parse_bind("name:/x:ro").unwrap();
        assert_eq!((v.kind, v.mode.as_str(), v.read_only), (Kind::Volume, "ro", true));
        assert_eq!(parse_bind("name:/x").unwrap().mode, "z");
        assert_eq!(parse_bind("nv5:/n5:nocopy").unwrap().mode, "nocopy");
        let anon = parse_bind("/data").unwrap();
        assert_eq!((anon.kind, anon.source.as_str()), (Kind::Volume, ""));
        assert_eq!(parse_bind("/x/../y").unwrap().destination, "/y");
        for (spec, want) in [
            ("/a:/b:bogus", "invalid mode: bogus"),
            ("/a:/b:c:d", "invalid volume specification: '/a:/b:c:d'"),
            ("mv1:/x:rw,ro", "invalid mode: rw,ro"),
            ("mv1:", "invalid volume specification: 'mv1:'"),
            ("/data:nocopy", "invalid volume specification: '/data:nocopy'"),
            (
                "mv1:/",
                "invalid volume specification: 'mv1:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
            ),
            (
                "mv1:/x:rprivate",
                "invalid volume specification: 'mv1:/x:rprivate': invalid mount config for type \"volume\": field BindOptions must not be specified",
            ),
            (
                "/tmp/dvol:/data:nocopy",
                "invalid volume specification: '/tmp/dvol:/data:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified",
            ),
            (
                "/tmp/reftest:relative",
                "invalid volume specification: '/tmp/reftest:relative': invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute",
            ),
        ] {
            assert_eq!(parse_bind(spec).unwrap_err(), want, "{spec}");
        }
    }

    #[test]
    fn mounts_are_checked_as_mobys_validate_mount_config() {
        let m = |kind: &str, source: &str, target: &str| ApiMount {
            kind: kind.into(),
            source: source.into(),
            target: target.into(),
            ..ApiMount::default()
        };
        assert_eq!(
            from_api(&m("bogus", "", "/x")).unwrap_err(),
            "invalid mount config for type \"bogus\": mount type unknown"
        );
        assert_eq!(
            from_api(&m("tmpfs", "x", "/t")).unwrap_err(),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        assert_eq!(
            from_api(&m("bind", "", "/t")).unwrap_err(),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            from_api(&m("volume", "v", "relative")).unwrap_err(),
            "invalid mount config for type \"volume\": invalid mount path: 'relative' mount path must be absolute"
        );
        let mut t = m("tmpfs", "", "/t");
        t.tmpfs_options = Some(TmpfsOptions { size_bytes: 1048576, mode: 0o1770 });
        assert_eq!(from_api(&t).unwrap().tmpfs_options, "size=1024k,mode=1770");
        assert_eq!(from_api(&m("volume", "mv1", "/a")).unwrap().mode, "z");
    }

    #[test]
    fn names_tmpfs_and_volumes_from_in_dockers_words() {
        assert!(check_volume_name("a..b").is_ok());
        assert!(check_volume_name("x.y_z-1").is_ok());
        assert!(check_volume_name("../x").unwrap_err().starts_with("\"../x\" includes invalid"));
        assert!(check_volume_name("v").unwrap_err().starts_with("volume name is too short"));
        for bad in ["a/b", "a b", "_x", ".x", "-x", ""] {
            assert!(check_volume_name(bad).is_err(), "{bad}");
        }
        assert_eq!(tmpfs_flags("size=1m,mode=1777,noexec").unwrap().1, ["size=1m", "mode=1777"]);
        assert_eq!(tmpfs_flags("bogus").unwrap_err(), "invalid tmpfs option [\"bogus\"]");
        assert_eq!(
            tmpfs_flags("noexec=false").unwrap_err(),
            "invalid tmpfs option [\"noexec=false\"]"
        );
        assert_eq!(
            tmpfs("relative", "").unwrap_err(),
            "invalid mount path: 'relative' mount path must be absolute"
        );
        assert_eq!(parse_volumes_from("db:ro").unwrap(), ("db", Some(true)));
        assert_eq!(parse_volumes_from("db").unwrap(), ("db", None));
        assert_eq!(parse_volumes_from("db:bogus").unwrap_err(), "invalid mode: bogus");
        assert!(parse_volumes_from("").is_err());
        assert!(is_bind_value("/a:/b") && is_bind_value("name:/b"));
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (1024, 2048));
        assert_eq!(parse_ulimit("core=-1").unwrap().hard, -1);
        assert_eq!(parse_ulimit("bogus=1").unwrap_err(), "invalid ulimit type: bogus");
        assert!(parse_ulimit("nofile=2:1").unwrap_err().starts_with("ulimit soft limit"));
        assert_eq!(ram_in_bytes("1m"), Ok(1 << 20));
        assert_eq!(ram_in_bytes("65536"), Ok(65536));
        assert_eq!(ram_in_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(ram_in_bytes("abc").unwrap_err(), "invalid size: 'abc'");
        let m = parse_mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(m.tmpfs_options, Some(TmpfsOptions { size_bytes: 1 << 20, mode: 0o1770 }));
        let m = parse_mount_flag("type=volume,src=mv1,dst=/a,readonly").unwrap();
        assert!(m.read_only && m.source == "mv1");
        for (v, want) in [
            ("type=volume,source=v", "target is required"),
            ("type=bind,bogus=1,target=/x", "unexpected key 'bogus' in 'bogus=1'"),
            ("type=bind,bogus,target=/x", "invalid field 'bogus' must be a key=value pair"),
            (
                "type=bind,source=/a,target=/x,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            ("type=volume,target=/x,readonly=maybe", "invalid value for readonly: maybe"),
            ("type=tmpfs,target=/t,tmpfs-size=1x", "invalid value for tmpfs-size: 1x"),
            ("", "EOF"),
        ] {
            assert_eq!(parse_mount_flag(v).unwrap_err(), want, "{v}");
        }
        assert!(!is_bind_value("/data") && !is_bind_value(":/x") && !is_bind_value("x:y"));
    }
}
