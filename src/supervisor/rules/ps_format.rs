//! `docker ps`'s formats, as the 20.10 client has them (`cli/command/formatter/container.go`),
//! pure: [`fields`] is a container as its `ContainerContext` shows it, [`check`] is what the
//! client refuses before asking, and [`write()`] runs a `--format` (with `table`'s header and
//! tabwriter columns, or `raw`) through the template engine `inspect -f` uses.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::supervisor::api::types::ContainerSummary;
use crate::supervisor::rules::format;
use crate::supervisor::rules::template::{
    TemplateOptions, position, render_template_with, template_actions,
};

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

/// A container as Docker's `ContainerContext` shows it to a `--format`: every field a string
/// as Docker prints it, by the names the format uses, plus `Label`, the labels map for
/// `{{.Label "k"}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Fields {
    /// `ID`: the ID, its first 12 digits unless `--no-trunc`.
    #[serde(rename = "ID")]
    pub id: String,
    /// The program, or `<no image>`.
    pub image: String,
    /// The command line, Go-quoted (cut at 20 characters unless `--no-trunc`).
    pub command: String,
    /// `CreatedAt`: Go's `time.Time.String()`.
    pub created_at: String,
    /// `RunningFor`: `7 seconds ago`.
    pub running_for: String,
    /// The PORTS column.
    pub ports: String,
    /// `running`, `exited`, ….
    pub state: String,
    /// Docker's STATUS text.
    pub status: String,
    /// `0B`.
    pub size: String,
    /// The names, comma-separated (only the own one unless `--no-trunc`).
    pub names: String,
    /// `k=v` labels, sorted, comma-separated.
    pub labels: String,
    /// The labels map behind `{{.Label "k"}}`.
    pub label: BTreeMap<String, String>,
    /// The mounts' names or sources, comma-separated.
    pub mounts: String,
    /// How many of the mounts are local volumes.
    pub local_volumes: String,
    /// The networks, sorted, comma-separated.
    pub networks: String,
}

impl Fields {
    /// As a value for the template engine.
    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The header row's words for each field (`NewContainerContext`).
fn header() -> Fields {
    let word = str::to_string;
    Fields {
        id: word("CONTAINER ID"),
        image: word("IMAGE"),
        command: word("COMMAND"),
        created_at: word("CREATED AT"),
        running_for: word("CREATED"),
        ports: word("PORTS"),
        state: word("STATE"),
        status: word("STATUS"),
        size: word("SIZE"),
        names: word("NAMES"),
        labels: word("LABELS"),
        label: BTreeMap::new(),
        mounts: word("MOUNTS"),
        local_volumes: word("LOCAL VOLUMES"),
        networks: word("NETWORKS"),
    }
}

/// Docker's `stringid.TruncateID`.
use crate::supervisor::image::store::short_id;

/// One container of `GET /containers/json` as `ContainerContext` shows it (`trunc` unless
/// `--no-trunc`); its labels are always empty here.
///
/// `Size` is `0B`: a container here has no writable layer of its own (Docker shows `0B` too
/// unless asked for sizes). `CreatedAt` is in UTC (Go prints the client's local zone).
/// `Networks` is sorted (Go's map order is random).
pub fn fields(c: &ContainerSummary, trunc: bool, now: SystemTime) -> Fields {
    let mut names: Vec<String> =
        c.names.iter().map(|n| n.strip_prefix('/').unwrap_or(n).to_string()).collect();
    if trunc && let Some(own) = names.iter().find(|n| !n.contains('/')) {
        names = vec![own.clone()];
    }
    let command = if trunc { format::ellipsis(&c.command, 20) } else { c.command.clone() };
    let created = UNIX_EPOCH + Duration::from_secs(u64::try_from(c.created).unwrap_or(0));
    let mut label_list: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    label_list.sort();
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let name = if m.name.is_empty() { &m.source } else { &m.name };
            if trunc { format::ellipsis(name, 15) } else { name.clone() }
        })
        .collect();
    let local = c.mounts.iter().filter(|m| m.driver == "local").count();
    let networks: Vec<&str> = c.network_settings.networks.keys().map(String::as_str).collect();
    let since = now.duration_since(created).unwrap_or_default();
    Fields {
        id: if trunc { short_id(&c.id) } else { c.id.clone() },
        image: match c.image.as_str() {
            "" => "<no image>".to_string(),
            // The docker CLI shortens an image ID shown for a name that is gone.
            i if trunc && !c.image_id.is_empty() && i == c.image_id => short_id(i),
            i => i.to_string(),
        },
        command: format::go_quote(&command),
        created_at: created_at(created),
        running_for: format!("{} ago", format::human_duration(since)),
        ports: format::displayable_ports(&c.ports),
        state: c.state.to_string(),
        status: c.status.clone(),
        size: "0B".to_string(),
        names: names.join(","),
        labels: label_list.join(","),
        label: c.labels.clone(),
        mounts: mounts.join(","),
        local_volumes: local.to_string(),
        networks: networks.join(","),
    }
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

/// `ps`'s output for `containers` (the daemon's summaries) in `format` (as
/// [`effective_format`] gives it): each container through the template and a line end;
/// `table …` with the header row first and the whole through Go's tabwriter (min width 10,
/// padding 3); `raw` as Docker's `raw` format.
pub fn write(
    format: &str,
    containers: &[ContainerSummary],
    trunc: bool,
    now: SystemTime,
) -> String {
    let items: Vec<Fields> = containers.iter().map(|c| fields(c, trunc, now)).collect();
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
        out.push_str(&render_template_with(&body, &header().to_value(), &head));
        out.push('\n');
    }
    for item in &items {
        out.push_str(&render_template_with(&body, &item.to_value(), &opts));
        out.push('\n');
    }
    if table { format::tabwrite(&out, 10, 3) } else { out }
}

/// Docker's `raw` format for one container.
fn raw(f: &Fields) -> String {
    let pad = |s: &str| if s.is_empty() { String::new() } else { format!(" {s}") };
    format!(
        "container_id: {}\nimage: {}\ncommand: {}\ncreated_at: {}\nstate:{}\nstatus:{}\nnames: {}\nlabels:{}\nports:{}\n\n",
        f.id,
        f.image,
        f.command,
        f.created_at,
        pad(&f.state),
        pad(&f.status),
        f.names,
        pad(&f.labels),
        pad(&f.ports)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> ContainerSummary {
        serde_json::from_str(
            r#"{"Id": "f5fb10552c73ae39a727e3e275a3b9648f9988ebf7729f85729b36794d7eef14",
                "Names": ["/db", "/web/db"], "Image": "sleep", "Command": "sleep 3600 --and-more-words",
                "Created": 1795000000, "State": "running", "Status": "Up 5 seconds",
                "Ports": [{"IP": "0.0.0.0", "PrivatePort": 5000, "PublicPort": 32768, "Type": "tcp"}],
                "Labels": {}, "Mounts": [{"Type": "bind", "Source": "/srv/some/long/path", "Destination": "/mnt"}],
                "NetworkSettings": {"Networks": {"my-bridge": {}, "bridge": {}}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn fields_read_as_dockers_container_context() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_000_007);
        let f = fields(&summary(), true, now);
        assert_eq!(f.id, "f5fb10552c73");
        assert_eq!(f.names, "db");
        assert_eq!(f.command, "\"sleep 3600 --and-mo…\"");
        assert_eq!(f.created_at, "2026-11-18 11:06:40 +0000 UTC");
        assert_eq!(f.running_for, "7 seconds ago");
        assert_eq!(f.ports, "0.0.0.0:32768->5000/tcp");
        assert_eq!(f.mounts, "/srv/some/long…");
        assert_eq!(f.networks, "bridge,my-bridge");
        let full = fields(&summary(), false, now);
        assert_eq!(full.names, "db,web/db");
        assert_eq!(full.mounts, "/srv/some/long/path");
    }

    #[test]
    fn the_fields_are_the_ones_check_knows() {
        let Value::Object(header) = header().to_value() else { panic!("not an object") };
        let names: Vec<&str> =
            header.keys().map(String::as_str).filter(|k| *k != "Label").collect();
        assert_eq!(names, FIELDS);
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
}
