//! An image's config, the JSON whose sha256 is the image's ID: OCI's image config with
//! Docker's fields beside it (moby's `image.Image`), read from archives and written by
//! `import`; and `import --change`, the Dockerfile instructions that set its defaults
//! (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `STOPSIGNAL`, `USER`, `VOLUME`,
//! `WORKDIR`), read and applied as Docker's builder does. Pure: no I/O.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::supervisor::api::types::{Empty, ImageRunConfig};

/// `rootfs`: the layers' diff IDs (sha256 of each uncompressed layer tar), bottom first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `sha256:…`, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One step of how the image was made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// The instruction.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// `Imported from -`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Whether the step made no layer.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The image config: OCI's fields and Docker's (`comment`, `container_config`,
/// `docker_version`), keys in the order Docker writes them (sorted).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    /// `amd64`, …
    pub architecture: String,
    /// `MAINTAINER`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// `import -m`, or `Imported from -`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// A container's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ImageRunConfig>,
    /// The container a commit was made from.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// That container's config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ImageRunConfig>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The Docker version that made it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    /// How it was made, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// `linux`.
    pub os: String,
    /// The OS's version.
    #[serde(rename = "os.version", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// Its layers.
    pub rootfs: RootFs,
    /// `v8`, …
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl ImageConfig {
    /// Reads a config and checks what the store relies on: a `layers` rootfs whose diff IDs
    /// are sha256 digests, and no more non-empty history steps than layers.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, String> {
        let c: ImageConfig =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid image config: {e}"))?;
        if c.rootfs.kind != "layers" {
            return Err(format!(
                "invalid image config: rootfs type {:?}, expected \"layers\"",
                c.rootfs.kind
            ));
        }
        for d in &c.rootfs.diff_ids {
            if !is_sha256(d) {
                return Err(format!("invalid image config: diff ID {d:?} is not a sha256 digest"));
            }
        }
        if c.history.iter().filter(|h| !h.empty_layer).count() > c.rootfs.diff_ids.len() {
            return Err("too many non-empty layers in History section".into());
        }
        Ok(c)
    }

    /// The config `docker import` writes: one layer, the platform, `comment` and a history
    /// step saying so, the defaults `--change` set.
    pub fn imported(
        diff_id: &str,
        comment: &str,
        run: ImageRunConfig,
        created: SystemTime,
    ) -> ImageConfig {
        let created = go_time(created);
        ImageConfig {
            architecture: go_arch().to_string(),
            comment: comment.to_string(),
            config: Some(run),
            created: Some(created.clone()),
            history: vec![History {
                created: Some(created),
                comment: comment.to_string(),
                ..History::default()
            }],
            os: "linux".into(),
            rootfs: RootFs { kind: "layers".into(), diff_ids: vec![diff_id.to_string()] },
            ..ImageConfig::default()
        }
    }

    /// The config `docker commit` writes (moby's `NewChildImage`): the parent's layers and
    /// history, then the container's layer `diff_id` (left out, its step `empty_layer`, when
    /// the container changed nothing: [`EMPTY_LAYER`]), a step whose `created_by` is the
    /// container's command joined by spaces, the author and comment, the container and its
    /// config, the merged `config`; the platform the parent's.
    pub fn committed(parent: &ImageConfig, commit: Commit, created: SystemTime) -> ImageConfig {
        let created = go_time(created);
        let empty = commit.diff_id == EMPTY_LAYER;
        let mut rootfs = parent.rootfs.clone();
        rootfs.kind = "layers".into();
        if !empty {
            rootfs.diff_ids.push(commit.diff_id);
        }
        let mut history = parent.history.clone();
        history.push(History {
            created: Some(created.clone()),
            created_by: commit.container_config.cmd.clone().unwrap_or_default().join(" "),
            author: commit.author.clone(),
            comment: commit.comment.clone(),
            empty_layer: empty,
        });
        ImageConfig {
            architecture: match parent.architecture.as_str() {
                "" => go_arch().to_string(),
                a => a.to_string(),
            },
            // The comment is the step's alone, as moby's `NewChildImage` writes it; inspect
            // shows the last step's.
            author: commit.author,
            comment: String::new(),
            config: Some(commit.config),
            container: commit.container,
            container_config: Some(commit.container_config),
            created: Some(created),
            docker_version: env!("CARGO_PKG_VERSION").to_string(),
            history,
            os: "linux".into(),
            os_version: parent.os_version.clone(),
            rootfs,
            variant: parent.variant.clone(),
        }
    }

    /// The JSON to store: its sha256 is the image's ID.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `created` as a time (the epoch if absent or unreadable).
    pub fn created_time(&self) -> SystemTime {
        self.created.as_deref().and_then(parse_go_time).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// The diff ID of an empty layer tar (1024 zero bytes): moby's `DigestSHA256EmptyTar`.
pub const EMPTY_LAYER: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// What a commit puts in the new image's config beside its parent's (moby's `ChildConfig`).
#[derive(Clone, Debug, Default)]
pub struct Commit {
    /// The container's ID.
    pub container: String,
    /// The container's config as it was (`container_config`).
    pub container_config: ImageRunConfig,
    /// The new image's defaults: [`merge`]d already.
    pub config: ImageRunConfig,
    /// `-a`.
    pub author: String,
    /// `-m`.
    pub comment: String,
    /// The diff ID of the container's layer.
    pub diff_id: String,
}

/// moby's `merge` (`daemon/commit.go`): what `user` (the request's config, or the
/// container's, with the changes applied) leaves unset is taken from `container`; ports,
/// environment (by key), labels and volumes are unions, the request's first; the container's
/// `Cmd` only when `user` has neither `Entrypoint` nor `Cmd`. Labels end as a map, empty or
/// not.
pub fn merge(user: &mut ImageRunConfig, container: &ImageRunConfig) {
    if user.user.is_empty() {
        user.user = container.user.clone();
    }
    match (&mut user.exposed_ports, &container.exposed_ports) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for p in theirs.keys() {
                mine.entry(p.clone()).or_default();
            }
        }
        (mine, theirs) if mine.as_ref().is_none_or(|m| m.is_empty()) => mine.clone_from(theirs),
        _ => {}
    }
    match &mut user.env {
        Some(mine) if !mine.is_empty() => {
            let key = |e: &str| e.split('=').next().unwrap_or_default().to_string();
            for e in container.env.iter().flatten() {
                if !mine.iter().any(|m| key(m) == key(e)) {
                    mine.push(e.clone());
                }
            }
        }
        mine => mine.clone_from(&container.env),
    }
    let labels = user.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in container.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd.clone_from(&container.cmd);
            user.args_escaped = container.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint.clone_from(&container.entrypoint);
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck.clone_from(&container.healthcheck);
    }
    if user.working_dir.is_empty() {
        user.working_dir.clone_from(&container.working_dir);
    }
    match &mut user.volumes {
        Some(mine) if !mine.is_empty() => {
            for (k, v) in container.volumes.iter().flatten() {
                mine.insert(k.clone(), *v);
            }
        }
        mine => mine.clone_from(&container.volumes),
    }
    if user.stop_signal.is_empty() {
        user.stop_signal.clone_from(&container.stop_signal);
    }
}

/// Whether `d` is `sha256:` and 64 lowercase hex digits.
pub fn is_sha256(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(crate::supervisor::image::reference::is_full_id)
}

/// Go's `GOARCH` name of this machine.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// A time as Go's `RFC3339Nano` writes it (trailing zeros of the fraction dropped).
pub fn go_time(t: SystemTime) -> String {
    crate::supervisor::rules::format::go_rfc3339_nano(t)
}

/// Reads an RFC 3339 time, with an offset or `Z`.
pub fn parse_go_time(s: &str) -> Option<SystemTime> {
    if s.ends_with('Z') {
        return crate::supervisor::rules::format::parse_rfc3339(s);
    }
    // `+HH:MM` or `-HH:MM`: read as UTC, then shift.
    let (body, sign, off) = match s.len().checked_sub(6).and_then(|i| s.get(i..).map(|o| (i, o))) {
        Some((i, o)) if (o.starts_with('+') || o.starts_with('-')) && o.as_bytes()[3] == b':' => {
            (&s[..i], o.starts_with('-'), &o[1..])
        }
        _ => return None,
    };
    let (h, m) = off.split_once(':')?;
    let secs = h.parse::<u64>().ok()? * 3600 + m.parse::<u64>().ok()? * 60;
    let t = crate::supervisor::rules::format::parse_rfc3339(&format!("{body}Z"))?;
    let d = std::time::Duration::from_secs(secs);
    if sign { t.checked_add(d) } else { t.checked_sub(d) }
}

/// The instructions `import --change` takes (Docker 20.10's commit commands, and
/// `STOPSIGNAL`, which later Dockers take too).
const CHANGE_COMMANDS: &[&str] =
    &["cmd", "entrypoint", "env", "expose", "label", "stopsignal", "user", "volume", "workdir"];

/// Applies `import --change` instructions to `config`, in order, as Docker's
/// `BuildFromConfig`: the Dockerfile's syntax (JSON or shell form, `KEY=VALUE` pairs with
/// quotes, `$VAR` from the `ENV`s before), Docker's words for what it refuses.
pub fn apply_changes(config: &mut ImageRunConfig, changes: &[String]) -> Result<(), String> {
    let text = changes.join("\n");
    let mut cmd_set = false;
    for line in logical_lines(&text) {
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (line.as_str(), ""),
        };
        let name = word.to_ascii_lowercase();
        if !CHANGE_COMMANDS.contains(&name.as_str()) {
            return Err(format!("{name} is not a valid change command"));
        }
        let upper = name.to_ascii_uppercase();
        let env = config.env.clone().unwrap_or_default();
        match name.as_str() {
            "cmd" => {
                config.cmd = Some(command_form(rest));
                cmd_set = true;
            }
            "entrypoint" => {
                config.entrypoint = Some(command_form(rest));
                if !cmd_set {
                    config.cmd = None;
                }
            }
            "env" => {
                for (k, v) in name_values(rest, &upper, &env)? {
                    let vars = config.env.get_or_insert_with(Vec::new);
                    let entry = format!("{k}={v}");
                    match vars.iter_mut().find(|e| e.split('=').next() == Some(k.as_str())) {
                        Some(e) => *e = entry,
                        None => vars.push(entry),
                    }
                }
            }
            "label" => {
                for (k, v) in name_values(rest, &upper, &env)? {
                    config.labels.get_or_insert_with(BTreeMap::new).insert(k, v);
                }
            }
            "expose" => {
                let words = expanded_words(rest, &env)?;
                if words.is_empty() {
                    return Err("EXPOSE requires at least one argument".into());
                }
                for w in words {
                    for port in expose_ports(&w)? {
                        config
                            .exposed_ports
                            .get_or_insert_with(BTreeMap::new)
                            .insert(port, Empty {});
                    }
                }
            }
            "volume" => {
                let list = match json_list(rest) {
                    Some(l) => l,
                    None => expanded_words(rest, &env)?,
                };
                if list.is_empty() {
                    return Err("VOLUME requires at least one argument".into());
                }
                for v in list {
                    if v.is_empty() {
                        return Err("VOLUME specified can not be an empty string".into());
                    }
                    config.volumes.get_or_insert_with(BTreeMap::new).insert(v, Empty {});
                }
            }
            "user" | "workdir" | "stopsignal" => {
                if rest.is_empty() {
                    return Err(format!("{upper} requires exactly one argument"));
                }
                let value = process_word(rest, &env)?;
                match name.as_str() {
                    "user" => config.user = value,
                    "workdir" => config.working_dir = workdir(&config.working_dir, &value)?,
                    _ => {
                        crate::supervisor::rules::signal::parse(&value)?;
                        config.stop_signal = value;
                    }
                }
            }
            _ => unreachable!("checked against CHANGE_COMMANDS"),
        }
    }
    Ok(())
}

/// The Dockerfile's lines: a `\` at a line's end continues it, `#` lines are comments,
/// blank lines are skipped.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line.trim_end());
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// A JSON list of strings (`["a", "b"]`), if `rest` is one.
fn json_list(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str(rest).ok()
}

/// `CMD`/`ENTRYPOINT`: the JSON (exec) form as it is, anything else run by `/bin/sh -c`.
fn command_form(rest: &str) -> Vec<String> {
    json_list(rest)
        .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string(), rest.to_string()])
}

/// `WORKDIR`: an absolute path as given, a relative one under the current directory.
fn workdir(current: &str, requested: &str) -> Result<String, String> {
    if requested.is_empty() {
        return Err("cannot normalize nothing".into());
    }
    if requested.starts_with('/') {
        return Ok(requested.to_string());
    }
    Ok(clean_path(&format!("/{current}/{requested}")))
}

/// Go's `path.Clean` for an absolute path.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `EXPOSE`'s `PORT[-END][/PROTO]`, one key per port (`7000-7001` is two).
fn expose_ports(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.rsplit_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("Invalid containerPort: {ports}");
    let parse = |s: &str| s.parse::<u16>().ok().filter(|_| !s.is_empty());
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (parse(a).ok_or_else(bad)?, parse(b).ok_or_else(bad)?),
        None => {
            let p = parse(ports).ok_or_else(bad)?;
            (p, p)
        }
    };
    if end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `ENV`/`LABEL`: `KEY=VALUE …` (quotes and `$VAR` processed), or the old `KEY VALUE` form.
fn name_values(
    rest: &str,
    instruction: &str,
    env: &[String],
) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest);
    let Some(first) = words.first() else {
        return Err(format!("{instruction} requires at least one argument"));
    };
    if !first.contains('=') {
        let Some((k, v)) = rest.split_once(char::is_whitespace) else {
            return Err(format!("{instruction} must have two arguments"));
        };
        return Ok(vec![(process_word(k, env)?, process_word(v.trim_start(), env)?)]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ));
        };
        let key = process_word(k, env)?;
        if key.is_empty() {
            return Err(format!("{instruction} names can not be blank"));
        }
        out.push((key, process_word(v, env)?));
    }
    Ok(out)
}

/// Words split at unquoted white space, quotes and escapes kept (the Dockerfile parser's
/// `parseWords`).
fn split_words(rest: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, '\\') => {
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                word.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                word.push(c);
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The words of `rest`, each processed ([`process_word`]).
fn expanded_words(rest: &str, env: &[String]) -> Result<Vec<String>, String> {
    split_words(rest).iter().map(|w| process_word(w, env)).collect()
}

/// The Dockerfile's `ProcessWord`: quotes removed (nothing expands in single quotes), `\`
/// escapes, `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alternative}` from `env`.
pub fn process_word(word: &str, env: &[String]) -> Result<String, String> {
    process_nested(word, env, 0)
}

/// How deep `${A:-${B:-…}}` may nest.
const MAX_NESTING: usize = 16;

fn process_nested(word: &str, env: &[String], depth: usize) -> Result<String, String> {
    if depth > MAX_NESTING {
        return Err("substitutions nested too deeply".into());
    }
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let lookup = |name: &str| {
        env.iter().rev().find_map(|e| e.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
    };
    let mut in_double = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' if !in_double => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    out.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                i += 1;
            }
            '"' => {
                in_double = !in_double;
                i += 1;
            }
            '\\' => {
                i += 1;
                if let Some(&n) = chars.get(i) {
                    // In double quotes only `"`, `$`, `\` and a newline are escaped.
                    if in_double && !matches!(n, '"' | '$' | '\\' | '\n') {
                        out.push('\\');
                    }
                    out.push(n);
                    i += 1;
                }
            }
            '$' => {
                i += 1;
                let (value, next) = dollar(&chars, i, &lookup, env, depth)?;
                out.push_str(&value);
                i = next;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    if in_double {
        return Err("unexpected end of statement while looking for matching double-quote".into());
    }
    Ok(out)
}

/// A `$` reference starting at `chars[i]` (after the `$`): its value and where reading goes on.
fn dollar(
    chars: &[char],
    mut i: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    env: &[String],
    depth: usize,
) -> Result<(String, usize), String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if chars.get(i) != Some(&'{') {
        let start = i;
        while i < chars.len() && is_name(chars[i]) {
            i += 1;
        }
        if start == i {
            return Ok(("$".to_string(), i));
        }
        let name: String = chars[start..i].iter().collect();
        return Ok((lookup(&name).unwrap_or_default(), i));
    }
    i += 1;
    let start = i;
    while i < chars.len() && is_name(chars[i]) {
        i += 1;
    }
    let name: String = chars[start..i].iter().collect();
    match chars.get(i) {
        Some('}') => Ok((lookup(&name).unwrap_or_default(), i + 1)),
        Some(':') => {
            let modifier = chars.get(i + 1).copied();
            let mut braces = 1;
            let mut j = i + 2;
            while j < chars.len() {
                match chars[j] {
                    '{' => braces += 1,
                    '}' => {
                        braces -= 1;
                        if braces == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err("syntax error: missing '}'".into());
            }
            let word: String = chars[(i + 2).min(j)..j].iter().collect();
            let value = lookup(&name).filter(|v| !v.is_empty());
            let out = match modifier {
                Some('-') => match value {
                    Some(v) => v,
                    None => process_nested(&word, env, depth + 1)?,
                },
                Some('+') => match value {
                    Some(_) => process_nested(&word, env, depth + 1)?,
                    None => String::new(),
                },
                Some(m) => return Err(format!("unsupported modifier ({m}) in substitution")),
                None => return Err("syntax error: missing '}'".into()),
            };
            Ok((out, j + 1))
        }
        _ => Err(format!("missing ':' in substitution: {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(changes: &[&str]) -> Result<ImageRunConfig, String> {
        let mut c = ImageRunConfig::default();
        apply_changes(&mut c, &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        Ok(c)
    }

    #[test]
    fn changes_set_what_dockers_import_sets() {
        // The same changes given to dockerd 20.10's `docker import` made this config.
        let c = changed(&[
            r#"CMD ["sh"]"#,
            r#"ENV A=1 B="x y""#,
            "ENV C $A-${B}",
            "EXPOSE 80 53/udp 7000-7001",
            "WORKDIR /srv",
            "WORKDIR sub",
            "USER nobody",
            r#"LABEL k=v "a b"=c"#,
            "ENTRYPOINT echo hi",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"Hostname":"","Domainname":"","User":"nobody","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"53/udp":{},"7000/tcp":{},"7001/tcp":{},"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1","B=x y","C=1-x y"],"Cmd":["sh"],"Image":"","Volumes":{"/data":{}},"WorkingDir":"/srv/sub","Entrypoint":["/bin/sh","-c","echo hi"],"OnBuild":null,"Labels":{"a b":"c","k":"v"},"StopSignal":"SIGINT"}"#
        );
    }

    #[test]
    fn entrypoint_clears_a_cmd_not_set_by_the_same_changes() {
        let c = changed(&[r#"ENTRYPOINT ["/bin/app"]"#]).unwrap();
        assert_eq!((c.entrypoint, c.cmd), (Some(vec!["/bin/app".to_string()]), None));
        let c = changed(&["ENV A=1", "ENV A=2 B=${A:-x}${C:-d}${A:+y}"]).unwrap();
        assert_eq!(c.env.unwrap(), ["A=2", "B=1dy"]);
        let c = changed(&["ENV X 'a $b' \"c\""]).unwrap();
        assert_eq!(c.env.unwrap(), ["X=a $b c"]);
        let c = changed(&["cmd echo \\\n  hi", "# a comment", "", "workdir /a/../b"]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.working_dir, "/a/../b");
    }

    #[test]
    fn commit_merges_as_moby_merges() {
        let container = ImageRunConfig {
            user: "me".into(),
            env: Some(vec!["FOO=bar".into(), "A=0".into()]),
            cmd: Some(vec!["sh".into()]),
            labels: Some(BTreeMap::from([("l".into(), "v".into()), ("k".into(), "c".into())])),
            working_dir: "/tmp".into(),
            volumes: Some(BTreeMap::from([("/data".into(), Empty {})])),
            exposed_ports: Some(BTreeMap::from([("80/tcp".into(), Empty {})])),
            stop_signal: "SIGINT".into(),
            ..ImageRunConfig::default()
        };
        // dockerd 20.10: body {"Cmd":["echo","body"],"Env":["A=1"],"Labels":{"k":"b"}},
        // changes `ENV B=2`, over a container with FOO=bar made this.
        let mut user = ImageRunConfig {
            cmd: Some(vec!["echo".into(), "body".into()]),
            env: Some(vec!["A=1".into()]),
            labels: Some(BTreeMap::from([("k".into(), "b".into())])),
            ..ImageRunConfig::default()
        };
        apply_changes(&mut user, &["ENV B=2".to_string()]).unwrap();
        merge(&mut user, &container);
        assert_eq!(user.env.as_deref().unwrap(), ["A=1", "B=2", "FOO=bar"]);
        assert_eq!(user.cmd.as_deref().unwrap(), ["echo", "body"]);
        assert_eq!(user.labels.as_ref().unwrap()["k"], "b");
        assert_eq!(user.labels.as_ref().unwrap()["l"], "v");
        assert_eq!((user.user.as_str(), user.working_dir.as_str()), ("me", "/tmp"));
        assert_eq!(
            (user.stop_signal.as_str(), user.volumes.as_ref().unwrap().len()),
            ("SIGINT", 1)
        );
        // An entrypoint of the changes keeps the container's command out.
        let mut user = ImageRunConfig::default();
        apply_changes(&mut user, &[r#"ENTRYPOINT ["/app"]"#.to_string()]).unwrap();
        merge(&mut user, &container);
        assert_eq!(user.cmd, None);
        // Nothing asked: the container's, labels a map even when empty.
        let mut user = ImageRunConfig::default();
        merge(&mut user, &ImageRunConfig::default());
        assert_eq!(user.labels, Some(BTreeMap::new()));
    }

    #[test]
    fn a_committed_config_follows_its_parent() {
        let parent = ImageConfig::imported(
            &format!("sha256:{}", "2".repeat(64)),
            "Imported from -",
            Default::default(),
            SystemTime::UNIX_EPOCH,
        );
        let commit = Commit {
            container: "c".repeat(64),
            container_config: ImageRunConfig {
                cmd: Some(vec!["sh".into(), "-c".into(), "echo hi".into()]),
                ..ImageRunConfig::default()
            },
            author: "me".into(),
            comment: "msg".into(),
            diff_id: format!("sha256:{}", "1".repeat(64)),
            ..Commit::default()
        };
        let c = ImageConfig::committed(&parent, commit.clone(), SystemTime::UNIX_EPOCH);
        assert_eq!(c.rootfs.diff_ids.len(), 2);
        let h = &c.history[1];
        assert_eq!(
            (h.created_by.as_str(), h.author.as_str(), h.comment.as_str()),
            ("sh -c echo hi", "me", "msg")
        );
        assert!(!h.empty_layer);
        let empty = Commit { diff_id: EMPTY_LAYER.into(), ..commit };
        let c = ImageConfig::committed(&parent, empty, SystemTime::UNIX_EPOCH);
        assert_eq!((c.rootfs.diff_ids.len(), c.history[1].empty_layer), (1, true));
        assert!(ImageConfig::parse(&c.to_bytes()).is_ok());
    }

    #[test]
    fn bad_changes_get_dockers_words() {
        for (change, want) in [
            ("RUN true", "run is not a valid change command"),
            ("FROM x", "from is not a valid change command"),
            ("USER", "USER requires exactly one argument"),
            ("WORKDIR", "WORKDIR requires exactly one argument"),
            ("EXPOSE", "EXPOSE requires at least one argument"),
            ("EXPOSE abc", "Invalid containerPort: abc"),
            ("EXPOSE 80/xyz", "invalid proto: xyz"),
            ("ENV", "ENV requires at least one argument"),
            ("ENV A", "ENV must have two arguments"),
            ("ENV A=1 B", "Syntax error - can't find = in \"B\". Must be of the form: name=value"),
            ("LABEL", "LABEL requires at least one argument"),
            ("STOPSIGNAL FOO", "Invalid signal: FOO"),
            ("ENV A=\"x", "unexpected end of statement while looking for matching double-quote"),
            ("ENV A=${B", "missing ':' in substitution: B"),
            (
                &format!("ENV A={}x{}", "${A:-".repeat(20), "}".repeat(20)),
                "substitutions nested too deeply",
            ),
        ] {
            assert_eq!(changed(&[change]).unwrap_err(), want, "{change}");
        }
    }

    #[test]
    fn configs_read_back_and_are_checked() {
        let c = ImageConfig::imported(
            &format!("sha256:{}", "a".repeat(64)),
            "Imported from -",
            ImageRunConfig::default(),
            SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1500),
        );
        let bytes = c.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"architecture":""#), "{text}");
        assert!(text.contains(r#""created":"1970-01-01T00:00:01.5Z","history":[{"created":"1970-01-01T00:00:01.5Z","comment":"Imported from -"}]"#), "{text}");
        assert_eq!(ImageConfig::parse(&bytes).unwrap(), c);
        assert_eq!(
            c.created_time(),
            SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1500)
        );
        assert!(ImageConfig::parse(b"{}").unwrap_err().contains("rootfs type"));
        assert!(ImageConfig::parse(br#"{"rootfs":{"type":"layers","diff_ids":["x"]}}"#).is_err());
        assert!(ImageConfig::parse(b"[").is_err());
        let t = parse_go_time("2020-01-01T02:00:00+02:00").unwrap();
        assert_eq!(go_time(t), "2020-01-01T00:00:00Z");
    }
}
