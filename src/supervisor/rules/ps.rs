//! `docker ps`'s filters and formats, as Docker 20.10 has them (pure).
//!
//! Filters are applied by the daemon, as dockerd does (`GET /containers/json?filters=…`), so API
//! users get them too: [`Filters`] is Docker's `filters.Args` (the same key twice ORs, different
//! keys AND) and [`select`] is `daemon/list.go`'s walk over the containers, newest first.
//! Formats are the client's (`cli/command/formatter/container.go`): [`fields`] is a container as
//! its `ContainerContext` shows it, [`write()`] runs a `--format` (with `table`'s header and
//! tabwriter columns) through the template engine `inspect -f` uses.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::supervisor::client::{TemplateOptions, render_template_with, template_actions};
use crate::supervisor::rules::format;

/// `--filter` values by key (Docker's `filters.Args`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, BTreeSet<String>>);

/// Docker's words for a `--filter` without `=`.
pub const BAD_FORMAT: &str = "bad format of filter (expected name=value)";

impl Filters {
    /// Adds one `--filter KEY=VALUE` as Docker's client reads it (`filters.ParseFlag`): the key
    /// lower-cased, both sides trimmed, an empty argument ignored.
    pub fn add_flag(&mut self, arg: &str) -> Result<(), &'static str> {
        if arg.is_empty() {
            return Ok(());
        }
        let (key, value) = arg.split_once('=').ok_or(BAD_FORMAT)?;
        self.add(key.trim().to_lowercase(), value.trim().to_string());
        Ok(())
    }

    /// Adds a value for a key.
    pub fn add(&mut self, key: String, value: String) {
        self.0.entry(key).or_default().insert(value);
    }

    /// The values given for `key`.
    pub fn get(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.get(key).into_iter().flatten().map(String::as_str)
    }

    /// Whether `key` was given.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// No filter at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The query's `filters` value in Docker's map form: `{"name":{"web":true}}`.
    pub fn to_json(&self) -> String {
        let map: Map<String, Value> = self
            .0
            .iter()
            .map(|(k, vs)| {
                (k.clone(), Value::Object(vs.iter().map(|v| (v.clone(), json!(true))).collect()))
            })
            .collect();
        Value::Object(map).to_string()
    }

    /// Reads a `filters` query value: the map form, or the legacy list form
    /// (`{"name":["web"]}`), as dockerd's `filters.FromJSON` (which tries the one, then the
    /// other, for the whole value). Read into maps and lists rather than `serde_json::Value`,
    /// whose reader takes an object keyed `$serde_json::private::RawValue` for something else.
    pub fn from_json(text: &str) -> Result<Filters, String> {
        let mut out = Filters::default();
        if text.is_empty() {
            return Ok(out);
        }
        type MapForm = BTreeMap<String, BTreeMap<String, bool>>;
        type ListForm = BTreeMap<String, Vec<String>>;
        let as_map = serde_json::from_str::<MapForm>(text);
        let map = match as_map {
            Ok(map) => map,
            Err(e) => match serde_json::from_str::<ListForm>(text) {
                Ok(list) => list
                    .into_iter()
                    .map(|(k, vs)| (k, vs.into_iter().map(|v| (v, true)).collect()))
                    .collect(),
                Err(_) => return Err(format!("invalid filter: {e}")),
            },
        };
        for (key, values) in map {
            out.0.entry(key.clone()).or_default();
            values.into_iter().filter(|(_, on)| *on).for_each(|(v, _)| out.add(key.clone(), v));
        }
        Ok(out)
    }

    /// `filters.Match`: no value for `key` (or an empty set), a value equal to `source`, or a value that is a
    /// regexp found in `source` (Go's regexp syntax; a value that does not compile is skipped).
    fn matches(&self, key: &str, source: &str) -> bool {
        let Some(values) = self.0.get(key).filter(|v| !v.is_empty()) else { return true };
        values
            .iter()
            .any(|v| v == source || regex_lite::Regex::new(v).is_ok_and(|re| re.is_match(source)))
    }

    /// `filters.ExactMatch`: no value for `key`, or one equal to `source`.
    fn exact(&self, key: &str, source: &str) -> bool {
        self.0.get(key).is_none_or(|values| values.is_empty() || values.contains(source))
    }
}

/// A refused filter: the HTTP status and Docker's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// 400 for Docker's `InvalidParameter` errors, 404 for an unknown `before`/`since`
    /// container, 500 for the rest (as dockerd answers them).
    pub status: u16,
    /// Docker's message.
    pub message: String,
}

fn refuse(status: u16, message: String) -> FilterError {
    FilterError { status, message }
}

/// The keys dockerd accepts (`acceptedPsFilterTags`).
pub const ACCEPTED: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "expose",
    "health",
    "id",
    "is-task",
    "isolation",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// Docker's container states (`container.IsValidStateString`).
const STATES: &[&str] =
    &["paused", "restarting", "removing", "running", "dead", "created", "exited"];

/// One container as the filters see it.
#[derive(Clone, Debug, Default)]
pub struct Candidate {
    /// Full ID.
    pub id: String,
    /// Its names without the leading `/`: its own first, then the names links give it
    /// (`web/db`).
    pub names: Vec<String>,
    /// `running`, `restarting`, `exited`, `created`.
    pub state: String,
    /// The last exit code.
    pub exit_code: i64,
    /// Whether it has ever started (Docker's `StartedAt` is not zero).
    pub started: bool,
    /// The program (the IMAGE column).
    pub image: String,
    /// The networks it is on: (name, ID).
    pub networks: Vec<(String, String)>,
    /// Container ports it publishes (`HostConfig.PortBindings`), as `80/tcp`.
    pub port_bindings: BTreeSet<String>,
    /// Container ports it exposes, published ones included (`Config.ExposedPorts`).
    pub exposed: BTreeSet<String>,
    /// Bind mounts: (host path, container path).
    pub mounts: Vec<(String, String)>,
}

impl Candidate {
    fn running(&self) -> bool {
        // Docker's `Running` is true while restarting too.
        matches!(self.state.as_str(), "running" | "restarting")
    }
}

/// `GET /containers/json`'s options.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `all=1`.
    pub all: bool,
    /// `limit=N` (`-l` is 1): the N newest, stopped ones included.
    pub limit: usize,
    /// `filters=…`.
    pub filters: Filters,
}

/// Reads `publish`/`expose` values (dockerd's `portOp`): `80`, `80/udp`, `8000-8002/tcp`.
fn port_filter(key: &str, values: &BTreeSet<String>) -> Result<BTreeSet<String>, FilterError> {
    let mut out = BTreeSet::new();
    for value in values {
        if value.contains(':') {
            return Err(refuse(500, format!("filter for '{key}' should not contain ':': {value}")));
        }
        let fail =
            |e: String| refuse(500, format!("error while looking up for {key} {value}: {e}"));
        // nat.SplitProtoPort
        let parts: Vec<&str> = value.split('/').collect();
        let (proto, port) = if value.is_empty() || parts[0].is_empty() {
            ("", "")
        } else if parts.len() == 1 || parts[1].is_empty() {
            ("tcp", parts[0])
        } else {
            (parts[1], parts[0])
        };
        // nat.ParsePortRange
        let parse = |p: &str| {
            p.parse::<u16>().map_err(|_| {
                fail(format!(
                    "strconv.ParseUint: parsing {}: {}",
                    format::go_quote(p),
                    uint_error(p)
                ))
            })
        };
        if port.is_empty() {
            return Err(fail("Empty string specified for ports.".into()));
        }
        let (start, end) = match port.split_once('-') {
            None => (parse(port)?, parse(port)?),
            Some((a, b)) => {
                let b = b.split('-').next().unwrap_or(b);
                let (a, b) = (parse(a)?, parse(b)?);
                if b < a {
                    return Err(fail(format!("Invalid range specified for the Port: {port}")));
                }
                (a, b)
            }
        };
        for p in start..=end {
            out.insert(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

/// Why Go's `strconv.ParseUint(s, 10, 16)` refused `s`.
fn uint_error(s: &str) -> &'static str {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        "value out of range"
    } else {
        "invalid syntax"
    }
}

/// The container `before=`/`since=` names: a full ID or a name (dockerd's `idOrNameFilter`).
fn by_id_or_name<'a>(
    candidates: &'a [Candidate],
    value: &str,
) -> Result<&'a Candidate, FilterError> {
    if let Some(c) = candidates.iter().find(|c| c.id == value) {
        return Ok(c);
    }
    let name = value.trim_start_matches('/');
    let found: Vec<&Candidate> =
        candidates.iter().filter(|c| c.names.iter().any(|n| n == name)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(refuse(404, format!("No such container: {value}"))),
    }
}

/// Which of `candidates` (newest first) `GET /containers/json` lists, by index, as dockerd
/// 20.10's `foldFilter` and `includeContainerInList` decide; Docker's errors for bad filters.
/// `label` never matches (containers have no labels here), `ancestor` compares with the
/// program (the IMAGE column: there are no images), `health` sees every container as `none`
/// (no health checks), `isolation` as `default`, `is-task` as not a task.
pub fn select(opts: &ListOptions, candidates: &[Candidate]) -> Result<Vec<usize>, FilterError> {
    let f = &opts.filters;
    if let Some(key) = f.0.keys().find(|k| !ACCEPTED.contains(&k.as_str())) {
        return Err(refuse(400, format!("invalid filter '{key}'")));
    }
    let mut exited = Vec::new();
    for v in f.get("exited") {
        match v.parse::<i64>() {
            Ok(code) => exited.push(code),
            Err(_) => {
                let why = if v.trim_start_matches(['+', '-']).bytes().all(|b| b.is_ascii_digit())
                    && v.len() > 1
                {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                return Err(refuse(
                    500,
                    format!("strconv.Atoi: parsing {}: {why}", format::go_quote(v)),
                ));
            }
        }
    }
    let mut all = opts.all;
    for v in f.get("status") {
        if !STATES.contains(&v) {
            return Err(refuse(400, format!("Invalid filter 'status={v}'")));
        }
        all = true;
    }
    let task = if f.contains("is-task") {
        if f.exact("is-task", "true") {
            Some(true)
        } else if f.exact("is-task", "false") {
            Some(false)
        } else {
            let given: Vec<&str> = f.get("is-task").collect();
            return Err(refuse(400, format!("Invalid filter 'is-task=[{}]'", given.join(" "))));
        }
    } else {
        None
    };
    for v in f.get("health") {
        if !["starting", "healthy", "unhealthy", "none"].contains(&v) {
            return Err(refuse(400, format!("Unrecognised filter value for health: {v}")));
        }
    }
    let mut before = None;
    for v in f.get("before") {
        before = Some(by_id_or_name(candidates, v)?.id.clone());
    }
    let mut since = None;
    for v in f.get("since") {
        since = Some(by_id_or_name(candidates, v)?.id.clone());
    }
    let empty = BTreeSet::new();
    let publish = port_filter("publish", f.0.get("publish").unwrap_or(&empty))?;
    let expose = port_filter("expose", f.0.get("expose").unwrap_or(&empty))?;
    // The `id` fast path (`filterByNameIDMatches`): each value names the one container whose
    // ID it is an unambiguous prefix of, or none.
    let ids: Option<BTreeSet<&str>> = f.0.get("id").map(|values| {
        values
            .iter()
            .filter_map(|v| {
                let mut found =
                    candidates.iter().filter(|c| !v.is_empty() && c.id.starts_with(v.as_str()));
                match (found.next(), found.next()) {
                    (Some(c), None) => Some(c.id.as_str()),
                    _ => None,
                }
            })
            .collect()
    });

    let mut out = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        if let Some(b) = &before {
            if *b == c.id {
                before = None;
            }
            continue;
        }
        if since.as_deref() == Some(c.id.as_str()) {
            break;
        }
        if !c.running() && !all && opts.limit == 0 {
            continue;
        }
        let name = c.names.first().map(String::as_str).unwrap_or_default();
        if !f.matches("name", &format!("/{name}")) && !f.matches("name", name) {
            continue;
        }
        if ids.as_ref().is_some_and(|ids| !ids.contains(c.id.as_str())) || !f.matches("id", &c.id) {
            continue;
        }
        if task == Some(true)
            || f.get("label").next().is_some()
            || !f.matches("isolation", "default")
        {
            continue;
        }
        if opts.limit > 0 && out.len() == opts.limit {
            break;
        }
        if !exited.is_empty()
            && !exited.iter().any(|code| *code == c.exit_code && !c.running() && c.started)
        {
            continue;
        }
        if !f.matches("status", &c.state) || !f.exact("health", "none") {
            continue;
        }
        if f.contains("volume")
            && !f.get("volume").any(|v| c.mounts.iter().any(|(src, dst)| v == src || v == dst))
        {
            continue;
        }
        if f.contains("ancestor") && !f.get("ancestor").any(|a| a == c.image) {
            continue;
        }
        if f.contains("network")
            && !f.get("network").any(|v| {
                c.networks.iter().any(|(n, _)| n == v)
                    || c.networks.iter().any(|(_, id)| id.starts_with(v))
            })
        {
            continue;
        }
        if !publish.is_empty() && publish.is_disjoint(&c.port_bindings) {
            continue;
        }
        if !expose.is_empty() && expose.is_disjoint(&c.exposed) {
            continue;
        }
        out.push(i);
    }
    Ok(out)
}

/// The fields of Docker's `ContainerContext`, by the names `--format` uses.
pub const FIELDS: &[&str] = &[
    "Command",
    "CreatedAt",
    "ID",
    "Image",
    "Labels",
    "LocalVolumes",
    "Mounts",
    "Names",
    "Networks",
    "Ports",
    "RunningFor",
    "Size",
    "State",
    "Status",
];

/// The header row's words for each field (`NewContainerContext`).
fn header() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
        "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
        "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Label": {},
    })
}

/// Docker's `stringid.TruncateID`.
fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// One container of `GET /containers/json` as `ContainerContext` shows it: every field a
/// string, as Docker prints them (`trunc` unless `--no-trunc`), plus `Label`, the labels map
/// for `{{.Label "k"}}` (always empty: containers have no labels here).
///
/// `Size` is `0B`: a container here has no writable layer of its own (Docker shows `0B` too
/// unless asked for sizes). `CreatedAt` is in UTC (Go prints the client's local zone).
/// `Networks` is sorted (Go's map order is random).
pub fn fields(v: &Value, trunc: bool, now: SystemTime) -> Value {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let id = s("Id");
    let mut names: Vec<String> = v["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .collect();
    if trunc && let Some(own) = names.iter().find(|n| !n.contains('/')) {
        names = vec![own.clone()];
    }
    let command = s("Command");
    let command = if trunc { format::ellipsis(&command, 20) } else { command };
    let created = UNIX_EPOCH + Duration::from_secs(v["Created"].as_u64().unwrap_or(0));
    let ports: Vec<format::Port> = serde_json::from_value(v["Ports"].clone()).unwrap_or_default();
    let labels = v["Labels"].as_object().cloned().unwrap_or_default();
    let mut label_list: Vec<String> =
        labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
    label_list.sort();
    let mounts: Vec<String> = v["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["Name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or_default();
            if trunc { format::ellipsis(name, 15) } else { name.to_string() }
        })
        .collect();
    let local =
        v["Mounts"].as_array().into_iter().flatten().filter(|m| m["Driver"] == "local").count();
    let networks: Vec<String> = v["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let image = s("Image");
    json!({
        "ID": if trunc { short_id(&id) } else { id },
        "Image": if image.is_empty() { "<no image>".to_string() } else { image },
        "Command": format::go_quote(&command),
        "CreatedAt": created_at(created),
        "RunningFor": format!("{} ago", format::human_duration(now.duration_since(created).unwrap_or_default())),
        "Ports": format::displayable_ports(&ports),
        "State": s("State"),
        "Status": s("Status"),
        "Size": "0B",
        "Names": names.join(","),
        "Labels": label_list.join(","),
        "Label": labels,
        "Mounts": mounts.join(","),
        "LocalVolumes": local.to_string(),
        "Networks": networks.join(","),
    })
}

/// Go's `time.Time.String()` for a whole second in UTC: `2026-11-25 07:40:00 +0000 UTC`.
fn created_at(t: SystemTime) -> String {
    let text = format::rfc3339(t);
    let (date, time) = text.split_once('T').unwrap_or((&text, ""));
    format!("{date} {} +0000 UTC", time.get(..8).unwrap_or(time))
}

/// `docker ps`'s default format.
pub const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// The format `ps` runs (`NewContainerFormat`): none given is `table`; `-q` turns `table` into
/// the IDs alone, and a template of one's own wins over `-q` (20.10 says nothing about it).
pub fn effective_format(format: Option<&str>, quiet: bool) -> String {
    match (format.unwrap_or("table"), quiet) {
        ("table", true) => "{{.ID}}".into(),
        ("table", false) => DEFAULT_TABLE.into(),
        ("raw", true) => "container_id: {{.ID}}".into(),
        (f, _) => f.to_string(),
    }
}

/// What the client checks before asking the daemon (`buildContainerListOptions` parses the
/// template and runs it once): Docker's words for a template that does not parse or names a
/// field a container does not have; cproxy's for what its engine does not do.
pub fn check(template: &str) -> Result<(), String> {
    let actions = template_actions(template)
        .map_err(|e| format!("failed to parse template: template: :{e}"))?;
    for (offset, action) in actions {
        let (line, _) = position(template, offset);
        let words: Vec<&str> = action.split_whitespace().collect();
        match words.as_slice() {
            [] => {
                return Err(format!(
                    "failed to parse template: template: :{line}: missing value for command"
                ));
            }
            ["json", "."] | ["."] => {}
            ["json", field] | [field] if field.starts_with('.') => {
                let name = &field[1..];
                if FIELDS.contains(&name) {
                    continue;
                }
                let first = name.split('.').next().unwrap_or_default();
                if FIELDS.contains(&first) {
                    return Err(format!("template field {field} is not supported by cproxy ps"));
                }
                let (line, col) = position(template, offset + action.find(field).unwrap_or(0));
                return Err(format!(
                    "failed to execute template: template: :{line}:{col}: executing \"\" at <{field}>: \
                     can't evaluate field {first} in type *formatter.ContainerContext"
                ));
            }
            [".Label", arg] if arg.len() >= 2 && arg.starts_with('"') && arg.ends_with('"') => {}
            [word, ..]
                if !word.starts_with('.') && !word.starts_with('$') && !GO_WORDS.contains(word) =>
            {
                return Err(format!(
                    "failed to parse template: template: :{line}: function \"{word}\" not defined"
                ));
            }
            _ => {
                return Err(format!(
                    "template action {{{{{action}}}}} is not supported by cproxy ps"
                ));
            }
        }
    }
    Ok(())
}

/// What Go's templates or Docker's template functions know but cproxy's engine does not do.
const GO_WORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery", "call", "split", "join", "title", "lower", "upper",
    "pad", "truncate", "nil", "true", "false",
];

/// Line (from 1) and Go's column (the byte offset in the line; on the first line the offset
/// itself) of `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = 1 + before.matches('\n').count();
    let col = match before.rfind('\n') {
        Some(nl) => offset - nl - 1,
        None => offset,
    };
    (line, col)
}

/// `ps`'s output for `containers` (the daemon's summaries) in `format` (as
/// [`effective_format`] gives it): each container through the template and a line end;
/// `table …` with the header row first and the whole through Go's tabwriter (min width 10,
/// padding 3); `raw` as Docker's `raw` format.
pub fn write(format: &str, containers: &[Value], trunc: bool, now: SystemTime) -> String {
    let items: Vec<Value> = containers.iter().map(|c| fields(c, trunc, now)).collect();
    if format == "raw" {
        return items.iter().map(raw).collect();
    }
    let table = format.starts_with("table");
    let body = if table { &format["table".len()..] } else { format };
    let body = body.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n");
    let opts = TemplateOptions { header: false, methods: &["Label"] };
    let mut out = String::new();
    if table {
        let head = TemplateOptions { header: true, methods: &["Label"] };
        out.push_str(&render_template_with(&body, &header(), &head));
        out.push('\n');
    }
    for item in &items {
        out.push_str(&render_template_with(&body, item, &opts));
        out.push('\n');
    }
    if table { tabwrite(&out, 10, 3) } else { out }
}

/// Docker's `raw` format for one container.
fn raw(v: &Value) -> String {
    let f = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let pad = |k: &str| if f(k).is_empty() { String::new() } else { format!(" {}", f(k)) };
    format!(
        "container_id: {}\nimage: {}\ncommand: {}\ncreated_at: {}\nstate:{}\nstatus:{}\nnames: {}\nlabels:{}\nports:{}\n\n",
        f("ID"),
        f("Image"),
        f("Command"),
        f("CreatedAt"),
        pad("State"),
        pad("Status"),
        f("Names"),
        pad("Labels"),
        pad("Ports")
    )
}

/// Go's `text/tabwriter` with space padding and no flags: a cell ends at a tab; each column
/// block (consecutive lines that have a cell in that column) is as wide as its widest cell
/// plus `padding`, at least `min_width`; the text after a line's last tab is not a cell.
pub fn tabwrite(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<Vec<usize>> = vec![Vec::new(); lines.len()];
    fn block(
        lines: &[Vec<&str>],
        widths: &mut [Vec<usize>],
        column: usize,
        from: usize,
        to: usize,
        min: usize,
        pad: usize,
    ) {
        let mut i = from;
        while i < to {
            if column + 1 >= lines[i].len() {
                i += 1;
                continue;
            }
            let start = i;
            let mut width = min;
            while i < to && column + 1 < lines[i].len() {
                width = width.max(lines[i][column].chars().count() + pad);
                i += 1;
            }
            for w in &mut widths[start..i] {
                w.push(width);
            }
            block(lines, widths, column + 1, start, i, min, pad);
        }
    }
    block(&lines, &mut widths, 0, 0, lines.len(), min_width, padding);
    let mut out = String::with_capacity(text.len());
    for (n, (cells, widths)) in lines.iter().zip(&widths).enumerate() {
        for (j, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j) {
                out.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.chars().count())));
            }
        }
        if n + 1 < lines.len() {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, id: &str, state: &str, exit: i64) -> Candidate {
        Candidate {
            id: id.into(),
            names: vec![name.into()],
            state: state.into(),
            exit_code: exit,
            started: state != "created",
            image: "sleep".into(),
            networks: vec![("bridge".into(), "b0a2cf04aa74".into())],
            ..Candidate::default()
        }
    }

    fn pick(filters: &[&str], all: bool, cs: &[Candidate]) -> Result<Vec<String>, FilterError> {
        let mut f = Filters::default();
        for a in filters {
            f.add_flag(a).unwrap();
        }
        let opts = ListOptions { all, limit: 0, filters: f };
        Ok(select(&opts, cs)?.into_iter().map(|i| cs[i].names[0].clone()).collect())
    }

    fn set() -> Vec<Candidate> {
        let mut web = candidate("web", "aaa111", "running", 0);
        web.port_bindings.insert("80/tcp".into());
        web.exposed.insert("80/tcp".into());
        web.networks.push(("my-bridge".into(), "f00d".into()));
        let mut db = candidate("db", "aab222", "exited", 3);
        db.names.push("web/db".into());
        db.exposed.insert("5432/tcp".into());
        let myweb = candidate("myweb", "bbb333", "restarting", 1);
        let fresh = candidate("fresh", "ccc444", "created", 0);
        vec![web, db, myweb, fresh]
    }

    #[test]
    fn flags_parse_as_dockers_client() {
        let mut f = Filters::default();
        f.add_flag(" Name = web ").unwrap();
        f.add_flag("name=db").unwrap();
        f.add_flag("").unwrap();
        assert_eq!(f.add_flag("foo"), Err(BAD_FORMAT));
        assert_eq!(f.to_json(), r#"{"name":{"db":true,"web":true}}"#);
        assert_eq!(Filters::from_json(&f.to_json()).unwrap(), f);
        assert_eq!(Filters::from_json(r#"{"name":["web","db"]}"#).unwrap(), f);
        assert!(Filters::from_json("[1]").is_err());
        assert!(Filters::from_json("{").is_err());
        assert!(Filters::from_json(r#"{"name":[1]}"#).is_err());
        // serde_json's Value reads an object keyed so as something else (found by fuzzing).
        let mut odd = Filters::default();
        odd.add_flag("name=$serde_json::private::RawValue").unwrap();
        assert_eq!(Filters::from_json(&odd.to_json()).unwrap(), odd);
    }

    #[test]
    fn name_is_a_regexp_on_the_own_name_and_keys_and_or_as_docker() {
        let cs = set();
        assert_eq!(pick(&["name=web"], true, &cs).unwrap(), ["web", "myweb"]);
        assert_eq!(pick(&["name=^web$"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["name=^/web"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["name=web", "name=db"], true, &cs).unwrap(), ["web", "db", "myweb"]);
        assert_eq!(pick(&["name=web", "status=running"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["name=("], true, &cs).unwrap(), Vec::<String>::new());
        assert_eq!(
            pick(&["name=web"], false, &cs).unwrap(),
            ["web", "myweb"],
            "restarting is running"
        );
    }

    #[test]
    fn id_is_an_unambiguous_prefix() {
        let cs = set();
        assert_eq!(pick(&["id=aaa"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["id=aa"], true, &cs).unwrap(), Vec::<String>::new());
        assert_eq!(pick(&["id=aaa", "id=bbb333"], true, &cs).unwrap(), ["web", "myweb"]);
        assert_eq!(pick(&["id=a.a"], true, &cs).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn status_exited_network_ports() {
        let cs = set();
        assert_eq!(pick(&["status=exited"], false, &cs).unwrap(), ["db"], "status implies -a");
        assert_eq!(
            pick(&["status=created", "status=restarting"], false, &cs).unwrap(),
            ["myweb", "fresh"]
        );
        assert_eq!(pick(&["exited=3"], true, &cs).unwrap(), ["db"]);
        assert_eq!(
            pick(&["exited=0"], true, &cs).unwrap(),
            Vec::<String>::new(),
            "created never ran"
        );
        assert_eq!(pick(&["exited=3"], false, &cs).unwrap(), Vec::<String>::new());
        assert_eq!(pick(&["network=my-bridge"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["network=b0a2"], true, &cs).unwrap(), ["web", "db", "myweb", "fresh"]);
        assert_eq!(pick(&["publish=80"], true, &cs).unwrap(), ["web"]);
        assert_eq!(pick(&["publish=80/udp"], true, &cs).unwrap(), Vec::<String>::new());
        assert_eq!(pick(&["expose=5000-6000/tcp"], true, &cs).unwrap(), ["db"]);
        assert_eq!(pick(&["label=a=b"], true, &cs).unwrap(), Vec::<String>::new());
        assert_eq!(pick(&["health=none", "is-task=false"], true, &cs).unwrap().len(), 4);
        assert_eq!(pick(&["before=db"], true, &cs).unwrap(), ["myweb", "fresh"]);
        assert_eq!(pick(&["since=myweb"], true, &cs).unwrap(), ["web", "db"]);
        assert_eq!(pick(&["ancestor=sleep", "name=fresh"], true, &cs).unwrap(), ["fresh"]);
    }

    #[test]
    fn bad_filters_get_dockers_words() {
        let cs = set();
        let err = |f: &[&str]| pick(f, false, &cs).unwrap_err();
        assert_eq!(err(&["foo=1"]), refuse(400, "invalid filter 'foo'".into()));
        assert_eq!(err(&["status=up"]), refuse(400, "Invalid filter 'status=up'".into()));
        assert_eq!(err(&["exited=x"]).message, "strconv.Atoi: parsing \"x\": invalid syntax");
        assert_eq!(err(&["is-task=maybe"]).message, "Invalid filter 'is-task=[maybe]'");
        assert_eq!(err(&["health=ok"]).message, "Unrecognised filter value for health: ok");
        assert_eq!(err(&["before=nope"]), refuse(404, "No such container: nope".into()));
        assert_eq!(
            err(&["publish=80:80"]).message,
            "filter for 'publish' should not contain ':': 80:80"
        );
        assert_eq!(
            err(&["expose=x/tcp"]).message,
            "error while looking up for expose x/tcp: strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err(&["publish=9-8"]).message,
            "error while looking up for publish 9-8: Invalid range specified for the Port: 9-8"
        );
    }

    #[test]
    fn limit_counts_what_the_filters_keep() {
        let cs = set();
        let mut f = Filters::default();
        f.add_flag("name=web").unwrap();
        let opts = ListOptions { all: false, limit: 1, filters: f };
        assert_eq!(select(&opts, &cs).unwrap(), [0]);
        let opts = ListOptions { all: false, limit: 1, filters: Filters::default() };
        assert_eq!(select(&opts, &cs[1..]).unwrap(), [0], "-l shows a stopped one");
    }

    fn summary() -> Value {
        json!({"Id": "f5fb10552c73ae39a727e3e275a3b9648f9988ebf7729f85729b36794d7eef14",
               "Names": ["/db", "/web/db"], "Image": "sleep", "Command": "sleep 3600 --and-more-words",
               "Created": 1_795_000_000u64, "State": "running", "Status": "Up 5 seconds",
               "Ports": [{"IP": "0.0.0.0", "PrivatePort": 5000, "PublicPort": 32768, "Type": "tcp"}],
               "Labels": {}, "Mounts": [{"Type": "bind", "Source": "/srv/some/long/path", "Destination": "/mnt"}],
               "NetworkSettings": {"Networks": {"my-bridge": {}, "bridge": {}}}})
    }

    #[test]
    fn fields_read_as_dockers_container_context() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_000_007);
        let v = fields(&summary(), true, now);
        assert_eq!(v["ID"], "f5fb10552c73");
        assert_eq!(v["Names"], "db");
        assert_eq!(v["Command"], "\"sleep 3600 --and-mo…\"");
        assert_eq!(v["CreatedAt"], "2026-11-18 11:06:40 +0000 UTC");
        assert_eq!(v["RunningFor"], "7 seconds ago");
        assert_eq!(v["Ports"], "0.0.0.0:32768->5000/tcp");
        assert_eq!(v["Mounts"], "/srv/some/long…");
        assert_eq!(v["Networks"], "bridge,my-bridge");
        let full = fields(&summary(), false, now);
        assert_eq!(full["Names"], "db,web/db");
        assert_eq!(full["Mounts"], "/srv/some/long/path");
    }

    #[test]
    fn formats_tables_and_json_as_docker() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_000_007);
        let list = [summary()];
        assert_eq!(write("{{.Names}}\\t{{.Status}}", &list, true, now), "db\tUp 5 seconds\n");
        assert_eq!(
            write("table {{.Names}}\\t{{.Status}}\\t{{.Label \"x\"}}", &list, true, now),
            "NAMES     STATUS         \ndb        Up 5 seconds   \n"
        );
        assert_eq!(write("table {{.ID}}", &[], true, now), "CONTAINER ID\n");
        assert_eq!(
            write("{{json .}}", &list, true, now),
            "{\"Command\":\"\\\"sleep 3600 --and-mo…\\\"\",\"CreatedAt\":\"2026-11-18 11:06:40 +0000 UTC\",\
             \"ID\":\"f5fb10552c73\",\"Image\":\"sleep\",\"Labels\":\"\",\"LocalVolumes\":\"0\",\
             \"Mounts\":\"/srv/some/long…\",\"Names\":\"db\",\"Networks\":\"bridge,my-bridge\",\
             \"Ports\":\"0.0.0.0:32768->5000/tcp\",\"RunningFor\":\"7 seconds ago\",\"Size\":\"0B\",\
             \"State\":\"running\",\"Status\":\"Up 5 seconds\"}\n"
        );
        assert_eq!(write("{{json .Names}}", &list, true, now), "\"db\"\n");
        assert_eq!(write("table {{json .Names}}", &list, true, now), "\n\"db\"\n");
        assert_eq!(write(&effective_format(None, true), &list, true, now), "f5fb10552c73\n");
        assert_eq!(write(&effective_format(Some("{{.Names}}"), true), &list, true, now), "db\n");
        assert!(
            write("raw", &list, true, now)
                .starts_with("container_id: f5fb10552c73\nimage: sleep\n")
        );
    }

    #[test]
    fn templates_are_checked_as_docker_does_before_asking() {
        assert_eq!(check("{{.Names}}\\t{{ .Status }} {{json .}} {{.Label \"a\"}}"), Ok(()));
        assert_eq!(
            check("{{.Foo}}"),
            Err("failed to execute template: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext".into())
        );
        assert_eq!(
            check("table {{.Names}} {{ json .Nope}}"),
            Err("failed to execute template: template: :1:25: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext".into())
        );
        assert_eq!(
            check("{{.Names"),
            Err("failed to parse template: template: :1: unclosed action".into())
        );
        assert_eq!(
            check("{{foo .Names}}"),
            Err("failed to parse template: template: :1: function \"foo\" not defined".into())
        );
        assert!(check("{{if .Names}}x{{end}}").unwrap_err().contains("not supported"));
    }

    #[test]
    fn tabwriter_blocks_columns_as_go() {
        assert_eq!(tabwrite("a\tb\nlonger cell\tc\n", 10, 3), "a             b\nlonger cell   c\n");
        // A line without a tab ends the block.
        assert_eq!(tabwrite("a\tb\nplain\nccc\td\n", 4, 1), "a   b\nplain\nccc d\n");
        assert_eq!(tabwrite("sidecar\t\t\n", 10, 3), "sidecar             \n");
    }
}
