//! `cproxy cp` and `cproxy export`, as the docker CLI 20.10 does them over the same routes:
//! the container side's stat first, the local side's (`CopyInfoSourcePath`,
//! `CopyInfoDestinationPath`), the decision of where to extract and what to rename
//! ([`crate::supervisor::rules::archive::prepare_copy`]), then the tar, with the CLI's words.

use std::io::IsTerminal;
use std::path::Path;

use http_body_util::{BodyExt, StreamBody};
use hyper::Method;
use hyper::body::{Bytes, Frame};

use crate::supervisor::client::cli::{CpArgs, ExportArgs};
use crate::supervisor::client::transport::{Client, Failure, NO_BODY, Result, fail, go_error, q};
use crate::supervisor::os::archive::{ChunkWriter, Names, TarWriter, UntarOptions, untar};
use crate::supervisor::rules::archive::{
    self as rules, CopyInfo, PathStat, output_mode_error, prepare_copy, split_dir_entry,
};

/// The docker CLI's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an absolute path
/// or begins with `.` before its first `:`.
fn split_arg(arg: &str) -> (&str, &str) {
    if arg.starts_with('/') {
        return ("", arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (c, p),
        _ => ("", arg),
    }
}

/// `cproxy cp [-a] [-L] SRC DEST`.
pub(super) async fn cp(client: &Client, a: CpArgs) -> Result<u8> {
    if a.source.is_empty() {
        return Err(fail("source can not be empty", 1));
    }
    if a.destination.is_empty() {
        return Err(fail("destination can not be empty", 1));
    }
    let (src_c, src_p) = split_arg(&a.source);
    let (dst_c, dst_p) = split_arg(&a.destination);
    match (src_c.is_empty(), dst_c.is_empty()) {
        (false, true) => from_container(client, src_c, src_p, dst_p, a.follow_link).await?,
        (true, false) => {
            to_container(client, a.source.as_str(), dst_c, dst_p, a.archive, a.follow_link).await?
        }
        (false, false) => return Err(fail("copying between containers is not supported", 1)),
        (true, true) => return Err(fail("must specify at least one container source", 1)),
    }
    Ok(0)
}

/// The daemon's 404 in the CLI's words (`wrapResponseError`).
fn no_such(f: Failure, container: &str, path: &str) -> Failure {
    if f.status == 404 {
        return fail(format!("Error: No such container:path: {container}:{path}"), 1);
    }
    f
}

/// `HEAD …/archive?path=P`: the stat.
async fn stat(client: &Client, container: &str, path: &str) -> Result<PathStat> {
    let uri = format!("/containers/{}/archive?path={}", q(container), q(path));
    let resp =
        client.call(Method::HEAD, &uri, NO_BODY).await.map_err(|f| no_such(f, container, path))?;
    let header = resp.headers().get(rules::STAT_HEADER);
    header
        .and_then(|h| h.to_str().ok())
        .and_then(PathStat::from_header)
        .ok_or_else(|| fail("unable to decode container path stat header", 1))
}

/// The docker CLI's `ValidateOutputPath` (`what`: the words before, for `export`).
fn validate_output(path: &str) -> std::result::Result<(), String> {
    let d = rules::dir(&rules::clean(path));
    if d != "." && !Path::new(&d).exists() {
        return Err(format!("invalid output path: directory {d:?} does not exist"));
    }
    if let Ok(m) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        let mode = rules::go_file_mode(m.mode());
        if !m.is_dir()
            && !m.is_file()
            && let Some(why) = output_mode_error(mode)
        {
            return Err(format!(
                "invalid output path: {path:?} must be a directory or a regular file: {why}"
            ));
        }
    }
    Ok(())
}

/// An absolute local path, its trailing `/` or `/.` kept (`resolveLocalPath`).
fn absolute(path: &str) -> String {
    let cwd = std::env::current_dir().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    let joined = if path.starts_with('/') { path.to_string() } else { format!("{cwd}/{path}") };
    rules::preserve_trailing(&rules::clean(&joined), path)
}

async fn from_container(
    client: &Client,
    container: &str,
    src: &str,
    dst: &str,
    follow: bool,
) -> Result<()> {
    let dst = if dst == "-" { dst.to_string() } else { absolute(dst) };
    validate_output(&dst).map_err(|e| fail(e, 1))?;
    let mut src_path = src.to_string();
    let mut rebase_name = String::new();
    if follow
        && let Ok(s) = stat(client, container, src).await
        && s.is_symlink()
    {
        let mut target = s.link_target.clone();
        if !target.starts_with('/') {
            target = rules::clean(&format!("{}/{target}", split_dir_entry(src).0));
        }
        // The CLI's `GetRebaseName`.
        if rules::specifies_current_dir(src) && !rules::specifies_current_dir(&target) {
            target.push_str("/.");
        }
        if src.ends_with('/') && !target.ends_with('/') {
            target.push('/');
        }
        if rules::base(src) != rules::base(&target) {
            rebase_name = rules::base(src);
        }
        src_path = target;
    }
    let uri = format!("/containers/{}/archive?path={}", q(container), q(&src_path));
    let resp = client
        .call(Method::GET, &uri, NO_BODY)
        .await
        .map_err(|f| no_such(f, container, &src_path))?;
    let header = resp.headers().get(rules::STAT_HEADER);
    let s =
        header.and_then(|h| h.to_str().ok()).and_then(PathStat::from_header).unwrap_or_default();
    if dst == "-" {
        return super::image::download(resp, None, "error").await;
    }
    let src_info = CopyInfo {
        path: src_path.clone(),
        exists: true,
        is_dir: s.is_dir(),
        rebase_name: rebase_name.clone(),
    };
    let mut pre_rebase = None;
    if !rebase_name.is_empty() {
        pre_rebase = Some((split_dir_entry(&src_path).1, rebase_name));
    }
    let dst_info = destination_info(&dst)?;
    let prepared = prepare_copy(&src_info, &dst_info).map_err(|e| fail(e, 1))?;
    // Both renames are of the first element: the CLI's two passes are one.
    let rebase = match (pre_rebase, prepared.rebase) {
        (Some((from, _)), Some((_, to))) => Some((from, to)),
        (Some(r), None) | (None, Some(r)) => Some(r),
        (None, None) => None,
    };
    let opts =
        UntarOptions { no_lchown: true, no_overwrite_dir_non_dir: true, chown: None, rebase };
    let stream = resp.into_body().into_data_stream();
    let stream = futures_util::TryStreamExt::map_err(stream, std::io::Error::other);
    let mut reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let dir = prepared.dir;
    tokio::task::spawn_blocking(move || untar(&mut reader, Path::new(&dir), opts))
        .await
        .map_err(|e| fail(e.to_string(), 1))?
        .map_err(|e| fail(e, 1))
}

/// The docker CLI's `CopyInfoDestinationPath` on the local side.
fn destination_info(path: &str) -> Result<CopyInfo> {
    let mut path = path.to_string();
    let mut meta = std::fs::symlink_metadata(&path);
    let mut n = 0;
    while let Ok(m) = &meta {
        if !m.file_type().is_symlink() {
            break;
        }
        n += 1;
        if n > 11 {
            return Err(fail(format!("too many symlinks in {path}"), 1));
        }
        let target = std::fs::read_link(&path).map_err(|e| fail(e.to_string(), 1))?;
        let target = target.to_string_lossy().into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            rules::clean(&format!("{}/{target}", split_dir_entry(&path).0))
        };
        meta = std::fs::symlink_metadata(&path);
    }
    match meta {
        Ok(m) => Ok(CopyInfo { path, exists: true, is_dir: m.is_dir(), ..CopyInfo::default() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = split_dir_entry(&path).0;
            match std::fs::metadata(&parent) {
                Ok(m) if m.is_dir() => Ok(CopyInfo { path, ..CopyInfo::default() }),
                Ok(_) => Err(fail("not a directory", 1)),
                Err(e) => Err(fail(format!("stat {parent}: {}", go_error(&e)), 1)),
            }
        }
        Err(e) => Err(fail(format!("lstat {path}: {}", go_error(&e)), 1)),
    }
}

async fn to_container(
    client: &Client,
    src: &str,
    container: &str,
    dst: &str,
    copy_uid_gid: bool,
    follow: bool,
) -> Result<()> {
    let mut dst_info = CopyInfo { path: dst.to_string(), ..CopyInfo::default() };
    let mut st = stat(client, container, dst).await;
    if let Ok(s) = &st
        && s.is_symlink()
    {
        let mut target = s.link_target.clone();
        if !target.starts_with('/') {
            target = rules::clean(&format!("{}/{target}", split_dir_entry(dst).0));
        }
        dst_info.path = target.clone();
        st = stat(client, container, &target).await;
    }
    if let Ok(s) = &st {
        if let Some(why) = output_mode_error(s.mode) {
            return Err(fail(
                format!(
                    "destination \"{container}:{dst}\" must be a directory or a regular file: {why}"
                ),
                1,
            ));
        }
        dst_info.exists = true;
        dst_info.is_dir = s.is_dir();
    }
    let (body, resolved) = if src == "-" {
        if !dst_info.is_dir {
            return Err(fail(format!("destination \"{container}:{dst}\" must be a directory"), 1));
        }
        let (mut out, chunks) = ChunkWriter::channel();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = std::io::copy(&mut std::io::stdin().lock(), &mut out)
                .and_then(|_| std::io::Write::flush(&mut out))
            {
                out.fail(e);
            }
        });
        (chunks, dst_info.path.clone())
    } else {
        let src_info = source_info(src, follow)?;
        let prepared = prepare_copy(&src_info, &dst_info).map_err(|e| fail(e, 1))?;
        let (source_dir, source_base) = split_dir_entry(&src_info.path);
        let top = match (&prepared.rebase, src_info.rebase_name.as_str()) {
            (Some((_, to)), _) => to.clone(),
            (None, "") => source_base.clone(),
            (None, name) => name.to_string(),
        };
        let walk = Path::new(&source_dir).join(&source_base);
        let (out, chunks) = ChunkWriter::channel();
        tokio::task::spawn_blocking(move || {
            let mut out = out;
            let mut w = TarWriter::new(&mut out, Names::read());
            let r = w.add_tree(&walk, &top, false).and_then(|()| w.finish().map(drop));
            if let Err(e) = r.and_then(|()| std::io::Write::flush(&mut out)) {
                out.fail(e);
            }
        });
        (chunks, prepared.dir)
    };
    let stream = futures_util::stream::unfold(body, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(|v| Frame::data(Bytes::from(v))), rx))
    });
    let body = StreamBody::new(stream).boxed();
    let mut uri = format!(
        "/containers/{}/archive?path={}&noOverwriteDirNonDir=true",
        q(container),
        q(&resolved)
    );
    if copy_uid_gid {
        uri.push_str("&copyUIDGID=true");
    }
    client
        .send(Method::PUT, &uri, "text/plain", body)
        .await
        .map_err(|f| no_such(f, container, &resolved))?;
    Ok(())
}

/// The docker CLI's `CopyInfoSourcePath` (`ResolveHostSourcePath`).
fn source_info(path: &str, follow: bool) -> Result<CopyInfo> {
    let lstat_err = |p: &str, e: std::io::Error| fail(format!("lstat {p}: {}", go_error(&e)), 1);
    let (resolved, rebase_name) = if follow {
        let real = std::fs::canonicalize(path).map_err(|e| lstat_err(path, e))?;
        let mut r = real.to_string_lossy().into_owned();
        if rules::specifies_current_dir(path) && !rules::specifies_current_dir(&r) {
            r.push_str("/.");
        }
        if path.ends_with('/') && !r.ends_with('/') {
            r.push('/');
        }
        let name =
            if rules::base(path) != rules::base(&r) { rules::base(path) } else { String::new() };
        (r, name)
    } else {
        let (d, b) = rules::split(path);
        let d = if d.is_empty() { "." } else { d };
        let real = std::fs::canonicalize(d).map_err(|e| lstat_err(path, e))?;
        let r = format!("{}/{b}", real.to_string_lossy().trim_end_matches('/'));
        let name = if path.ends_with('/') && rules::base(path) != rules::base(&r) {
            rules::base(path)
        } else {
            String::new()
        };
        (r, name)
    };
    let m = std::fs::symlink_metadata(&resolved).map_err(|e| lstat_err(&resolved, e))?;
    Ok(CopyInfo { path: resolved, exists: true, is_dir: m.is_dir(), rebase_name })
}

/// `cproxy export [-o FILE] CONTAINER`.
pub(super) async fn export(client: &Client, a: ExportArgs) -> Result<u8> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(fail(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
            1,
        ));
    }
    if let Some(o) = &a.output {
        validate_output(&o.to_string_lossy())
            .map_err(|e| fail(format!("failed to export container: {e}"), 1))?;
    }
    let uri = format!("/containers/{}/export", q(&a.container));
    let resp = client.call(Method::GET, &uri, NO_BODY).await?;
    super::image::download(resp, a.output.as_deref(), "failed to export container").await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_as_the_clis() {
        assert_eq!(split_arg("c1:/etc"), ("c1", "/etc"));
        assert_eq!(split_arg("/abs:path"), ("", "/abs:path"));
        assert_eq!(split_arg("./a:b"), ("", "./a:b"));
        assert_eq!(split_arg("file"), ("", "file"));
        assert_eq!(split_arg("-"), ("", "-"));
    }
}
