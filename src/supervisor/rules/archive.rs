//! `docker cp` and `docker export`, the pure part: Go's path rules as moby's `pkg/archive` and
//! the container's `ResolvePath` apply them (trailing `/` and `/.`, what a tar's entries are
//! named after), the docker CLI's copy decisions (`PrepareArchiveCopy`), Go's `os.FileMode`
//! bits, and the `X-Docker-Container-Path-Stat` header (Go's JSON, base64), both ways.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::supervisor::rules::format::go_json_string;

/// The header a path's stat travels in.
pub const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Go's `filepath.Clean` (Unix): `.` and `..` and repeated `/` resolved lexically; `""` is
/// `.`; `..` at the root stays at the root.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Split`: everything up to and with the last `/`, and the rest.
pub fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Go's `filepath.Base`: the last element, trailing slashes dropped (`/` for the root, `.`
/// for `""`).
pub fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    split(trimmed).1.to_string()
}

/// Go's `filepath.Dir`: all but the last element, cleaned.
pub fn dir(path: &str) -> String {
    clean(split(path).0)
}

/// moby's `specifiesCurrentDir`: the path's last element is `.`.
pub fn specifies_current_dir(path: &str) -> bool {
    base(path) == "."
}

/// moby's `PreserveTrailingDotOrSeparator`: `cleaned` with the trailing `/.` or `/` that
/// `original` had.
pub fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if !specifies_current_dir(&out) && specifies_current_dir(original) {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    }
    if !out.ends_with('/') && original.ends_with('/') {
        out.push('/');
    }
    out
}

/// A container path as dockerd's `ResolvePath` splits it: the absolute path (trailing `/` or
/// `/.` kept), the directory whose links are followed in the container's root, and the last
/// element, which is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    /// `/` joined with the path, cleaned, its trailing `/` or `/.` kept.
    pub abs: String,
    /// The directory part of `abs` (links in it are followed).
    pub dir: String,
    /// The last element of `abs` (`""` after a trailing `/`).
    pub base: String,
}

/// Splits `path` (as the API's `path` gives it) as dockerd does.
pub fn resolve(path: &str) -> Resolve {
    let abs = preserve_trailing(&clean(&format!("/{path}")), path);
    let (d, b) = split(&abs);
    Resolve { dir: d.to_string(), base: b.to_string(), abs: abs.clone() }
}

/// The stat's `name`: the last element of the absolute path (`/` for the root, `.` for `/.`).
pub fn stat_name(abs: &str) -> String {
    base(abs)
}

/// What the entries of `GET …/archive` are named after: `base(abs)` (`.` for `dir/.`), and
/// nothing for the root, whose entries are `/`, `/bin/`, … (moby's `RebaseNames` with `/`).
pub fn rebase_name(abs: &str) -> String {
    match base(abs).as_str() {
        "/" => String::new(),
        b => b.to_string(),
    }
}

/// moby's `canonicalTarName`: a directory's name ends in `/`.
pub fn tar_name(name: &str, is_dir: bool) -> String {
    if is_dir && !name.ends_with('/') { format!("{name}/") } else { name.to_string() }
}

/// The docker CLI's `SplitPathDirEntry`: the parent and the last element, `dir/.` kept whole.
pub fn split_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned))
}

/// The docker CLI's `assertsDirectory`: a path ending in `/` or `/.`.
pub fn asserts_directory(path: &str) -> bool {
    path.ends_with('/') || specifies_current_dir(path)
}

/// What the docker CLI knows of a copy's source or destination (`archive.CopyInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyInfo {
    /// The path.
    pub path: String,
    /// It exists.
    pub exists: bool,
    /// It is a directory.
    pub is_dir: bool,
    /// The name a followed link's content takes (`cp -L`).
    pub rebase_name: String,
}

/// How the source's tar is extracted (`PrepareArchiveCopy`): into `dir`, its entries renamed
/// from `from` to `to` when `Some`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The directory to extract into.
    pub dir: String,
    /// The rename of the entries' first element.
    pub rebase: Option<(String, String)>,
}

/// The docker CLI's words when a copy cannot go ahead.
pub const CANNOT_COPY_DIR: &str = "cannot copy directory";
/// See [`CANNOT_COPY_DIR`].
pub const DIR_NOT_EXISTS: &str = "no such directory";

/// The docker CLI's `PrepareArchiveCopy`.
pub fn prepare_copy(src: &CopyInfo, dst: &CopyInfo) -> Result<Prepared, &'static str> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, mut src_base) = split_dir_entry(&src.path);
    if !src.rebase_name.is_empty() {
        src_base = src.rebase_name.clone();
    }
    let renamed = Prepared { dir: dst_dir, rebase: Some((src_base, dst_base)) };
    match () {
        () if dst.exists && dst.is_dir => Ok(Prepared { dir: dst.path.clone(), rebase: None }),
        () if dst.exists && src.is_dir => Err(CANNOT_COPY_DIR),
        () if dst.exists || src.is_dir => Ok(renamed),
        () if asserts_directory(&dst.path) => Err(DIR_NOT_EXISTS),
        () => Ok(renamed),
    }
}

/// The docker CLI's `RebaseArchiveEntries` for one name: the first `from` replaced by `to`.
pub fn rebase_entry(name: &str, from: &str, to: &str) -> String {
    name.replacen(from, to, 1)
}

/// Go's `os.FileMode` bits.
pub mod mode {
    /// A directory.
    pub const DIR: u32 = 1 << 31;
    /// A symbolic link.
    pub const SYMLINK: u32 = 1 << 27;
    /// A device.
    pub const DEVICE: u32 = 1 << 26;
    /// A fifo.
    pub const NAMED_PIPE: u32 = 1 << 25;
    /// A socket.
    pub const SOCKET: u32 = 1 << 24;
    /// Set-uid.
    pub const SETUID: u32 = 1 << 23;
    /// Set-gid.
    pub const SETGID: u32 = 1 << 22;
    /// A character device (with [`DEVICE`]).
    pub const CHAR_DEVICE: u32 = 1 << 21;
    /// Sticky.
    pub const STICKY: u32 = 1 << 20;
}

/// A `st_mode` as Go's `os.FileMode` (what the stat header's `mode` holds).
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & 0o170000 {
        0o060000 => mode::DEVICE,
        0o020000 => mode::DEVICE | mode::CHAR_DEVICE,
        0o040000 => mode::DIR,
        0o010000 => mode::NAMED_PIPE,
        0o120000 => mode::SYMLINK,
        0o140000 => mode::SOCKET,
        _ => 0,
    };
    for (bit, go) in [(0o4000, mode::SETUID), (0o2000, mode::SETGID), (0o1000, mode::STICKY)] {
        if st_mode & bit != 0 {
            m |= go;
        }
    }
    m
}

/// `types.ContainerPathStat`: what `HEAD …/archive` says of a path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathStat {
    /// The last element of the path.
    pub name: String,
    /// Its size (a link's: its target's length).
    pub size: i64,
    /// Go's `os.FileMode`.
    pub mode: u32,
    /// Its modification time, RFC 3339 with nanoseconds as Go writes them (UTC).
    pub mtime: String,
    /// A link's target, resolved in the container's root (absolute).
    pub link_target: String,
}

/// Go's `time.Time` as its JSON has it (RFC 3339, trailing zeros of the nanoseconds dropped),
/// in UTC.
pub fn go_time(secs: i64, nanos: u32) -> String {
    let t = std::time::UNIX_EPOCH
        + std::time::Duration::new(u64::try_from(secs).unwrap_or(0), nanos.min(999_999_999));
    crate::supervisor::rules::format::go_rfc3339_nano(t)
}

impl PathStat {
    /// Go's JSON of it, field for field as dockerd marshals it.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"name\":");
        go_json_string(&self.name, &mut out);
        out.push_str(&format!(",\"size\":{},\"mode\":{},\"mtime\":", self.size, self.mode));
        go_json_string(&self.mtime, &mut out);
        out.push_str(",\"linkTarget\":");
        go_json_string(&self.link_target, &mut out);
        out.push('}');
        out
    }

    /// The `X-Docker-Container-Path-Stat` header's value.
    pub fn header(&self) -> String {
        STANDARD.encode(self.to_json())
    }

    /// Reads the header back (the client's side): `None` if it is no base64 of the JSON.
    pub fn from_header(value: &str) -> Option<PathStat> {
        let json = STANDARD.decode(value.trim()).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&json).ok()?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        Some(PathStat {
            name: text("name"),
            size: v.get("size").and_then(serde_json::Value::as_i64).unwrap_or(0),
            mode: v
                .get("mode")
                .and_then(serde_json::Value::as_u64)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(0),
            mtime: text("mtime"),
            link_target: text("linkTarget"),
        })
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.mode & mode::DIR != 0
    }

    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & mode::SYMLINK != 0
    }
}

/// The docker CLI's `ValidateOutputPathFileMode`: what a copy cannot write to.
pub fn output_mode_error(mode: u32) -> Option<&'static str> {
    match () {
        () if mode & mode::DEVICE != 0 => Some("got a device"),
        () if mode & mode::SOCKET != 0 => Some("got a socket"),
        () if mode & mode::NAMED_PIPE != 0 => Some("got a named pipe"),
        () if mode & mode::SYMLINK != 0 => Some("got a symlink"),
        () => None,
    }
}

/// dockerd's words for a path that is not there (`containerFileNotFound`).
pub fn not_found(path: &str, container: &str) -> String {
    format!("Could not find the file {path} in container {container}")
}

/// The query's `path` as dockerd's `ArchiveFormValues` takes it: an empty one is refused in
/// its words (sic).
pub fn path_param(path: Option<&str>) -> Result<&str, &'static str> {
    path.filter(|p| !p.is_empty()).ok_or("bad parameter: pathcannot be empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_go_cleans_and_splits_them() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("/../a//b/./c/.."), "/a/b");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(base("/"), "/");
        assert_eq!(base("/d/."), ".");
        assert_eq!(base("/l/"), "l");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("b"), ".");
    }

    #[test]
    fn resolve_keeps_a_trailing_slash_or_dot_as_dockerd() {
        let r = resolve("/dir/.");
        assert_eq!((r.abs.as_str(), r.dir.as_str(), r.base.as_str()), ("/dir/.", "/dir/", "."));
        let r = resolve("/link/");
        assert_eq!((r.abs.as_str(), r.dir.as_str(), r.base.as_str()), ("/link/", "/link/", ""));
        let r = resolve("relative/x");
        assert_eq!((r.abs.as_str(), r.base.as_str()), ("/relative/x", "x"));
        assert_eq!(resolve("../../../tmp/escaped").abs, "/tmp/escaped");
        assert_eq!(resolve("/").abs, "/");
        assert_eq!(stat_name("/d/s/.."), "..");
        assert_eq!(stat_name(&resolve("/d/s/..").abs), "d");
        assert_eq!(rebase_name("/"), "");
        assert_eq!(rebase_name("/dir/."), ".");
        assert_eq!(tar_name("", true), "/");
    }

    #[test]
    fn the_clis_copy_decisions() {
        let file = CopyInfo { path: "/dir/a".into(), exists: true, ..CopyInfo::default() };
        let dir =
            CopyInfo { path: "/dir".into(), exists: true, is_dir: true, ..Default::default() };
        let missing = |p: &str| CopyInfo { path: p.into(), ..CopyInfo::default() };
        let existing_file = CopyInfo { path: "out4".into(), exists: true, ..CopyInfo::default() };
        let existing_dir =
            CopyInfo { path: "out3".into(), exists: true, is_dir: true, ..Default::default() };
        assert_eq!(
            prepare_copy(&dir, &existing_dir).unwrap(),
            Prepared { dir: "out3".into(), rebase: None }
        );
        assert_eq!(prepare_copy(&dir, &existing_file), Err(CANNOT_COPY_DIR));
        assert_eq!(
            prepare_copy(&dir, &missing("out1")).unwrap(),
            Prepared { dir: ".".into(), rebase: Some(("dir".into(), "out1".into())) }
        );
        assert_eq!(prepare_copy(&file, &missing("x/")), Err(DIR_NOT_EXISTS));
        assert_eq!(
            prepare_copy(&file, &missing("/tmp/renamed")).unwrap(),
            Prepared { dir: "/tmp".into(), rebase: Some(("a".into(), "renamed".into())) }
        );
        let dot =
            CopyInfo { path: "src/.".into(), exists: true, is_dir: true, ..Default::default() };
        assert_eq!(
            prepare_copy(&dot, &missing("/tmp/new")).unwrap(),
            Prepared { dir: "/tmp".into(), rebase: Some((".".into(), "new".into())) }
        );
        assert_eq!(rebase_entry("./sub/g", ".", "new"), "new/sub/g");
    }

    #[test]
    fn the_stat_header_as_dockerd_writes_it() {
        // Recorded: tests/fixtures/docker-20.10-archive/api.txt.
        let s = PathStat {
            name: "hostname".into(),
            size: 13,
            mode: go_file_mode(0o100644),
            mtime: go_time(1_796_594_146, 524_376_996),
            link_target: String::new(),
        };
        assert_eq!(
            s.header(),
            "eyJuYW1lIjoiaG9zdG5hbWUiLCJzaXplIjoxMywibW9kZSI6NDIwLCJtdGltZSI6IjIwMjYtMTItMDZUMjE6\
             NTU6NDYuNTI0Mzc2OTk2WiIsImxpbmtUYXJnZXQiOiIifQ=="
        );
        assert_eq!(PathStat::from_header(&s.header()), Some(s));
        assert_eq!(go_file_mode(0o104755), 8_389_101);
        assert_eq!(go_file_mode(0o41777), 2_148_532_735);
        assert_eq!(go_file_mode(0o120777), 134_218_239);
        assert_eq!(go_file_mode(0o10644), 33_554_852);
        assert_eq!(go_time(946_684_800, 0), "2000-01-01T00:00:00Z");
        assert_eq!(go_time(946_684_800, 500_000_000), "2000-01-01T00:00:00.5Z");
        let odd = PathStat { name: "a<b>&\"\n\u{1}".into(), ..PathStat::default() };
        assert!(odd.to_json().starts_with(r#"{"name":"a\u003cb\u003e\u0026\"\n\u0001""#));
        assert_eq!(PathStat::from_header("%%%"), None);
        assert_eq!(path_param(Some("")), Err("bad parameter: pathcannot be empty"));
    }
}
