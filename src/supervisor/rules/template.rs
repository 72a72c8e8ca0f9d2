//! The subset of Go's `text/template` that `inspect -f`, `network inspect -f` and `ps --format`
//! take, over a JSON value (a template is dynamic: it names fields at run time): `{{.A.B}}`,
//! `{{json .A.B}}`, `{{range .A}}…{{end}}` and `{{range $k, $v := .A}}…{{end}}`, with Go's
//! printing of values and Go's trim markers. Pure.

use serde_json::Value;

/// A Go template's subset: `{{.A.B}}`, `{{json .A.B}}`, and `{{range .A}}…{{end}}` or
/// `{{range $k, $v := .A}}…{{end}}` over a list or a map (keys sorted, as Go's), with `$k`,
/// `$v.B` and `.B` (the element) inside; anything else is kept as text.
pub fn render_template(template: &str, v: &Value) -> String {
    render_template_with(template, v, &TemplateOptions::default())
}

/// How [`render_template_with`] evaluates what plain fields do not say.
#[derive(Clone, Copy, Debug, Default)]
pub struct TemplateOptions<'a> {
    /// Docker's header functions (a `table` format's header row): `json` prints nothing.
    pub header: bool,
    /// Keys of dot that stand for Go methods taking one string argument: `{{.Label "k"}}` is
    /// the value at `k` of the map at `Label` (empty if none), and `{{json .}}` leaves them out,
    /// as Go's marshalling of a formatter context does.
    pub methods: &'a [&'a str],
}

/// [`render_template`] with `opts`.
pub fn render_template_with(template: &str, v: &Value, opts: &TemplateOptions) -> String {
    let (tokens, _) = scan(template);
    let tokens: Vec<Token> = tokens.into_iter().map(|(_, t)| t).collect();
    let mut out = String::new();
    render_tokens(&tokens, v, &[], opts, &mut out);
    out
}

/// The actions of a template, each as (byte offset of its trimmed text in `template`, the
/// text), or Go's parse error for an unclosed one (`1: unclosed action`, the line first).
pub fn template_actions(template: &str) -> Result<Vec<(usize, &str)>, String> {
    match scan(template) {
        (_, Some(start)) => {
            let line = 1 + template[..start].matches('\n').count();
            Err(format!("{line}: unclosed action"))
        }
        (tokens, None) => Ok(tokens
            .into_iter()
            .filter_map(|(at, t)| match t {
                Token::Action(a) => Some((at, a)),
                Token::Text(_) => None,
            })
            .collect()),
    }
}

/// Line (from 1) and Go's column (the byte offset in the line; on the first line the offset
/// itself) of `offset` in `text`.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = 1 + before.matches('\n').count();
    let col = match before.rfind('\n') {
        Some(nl) => offset - nl - 1,
        None => offset,
    };
    (line, col)
}

/// Splits a template into text and actions, each with the byte offset of its (trimmed) text;
/// Go's trim markers (`{{- ` and ` -}}`) trim the whitespace of the text beside them. An
/// unclosed `{{` ends the split, the rest kept as text, and its offset is returned.
fn scan(template: &str) -> (Vec<(usize, Token<'_>)>, Option<usize>) {
    let mut tokens = Vec::new();
    let mut at = 0;
    let mut trim_next = false;
    let text = |from: usize, to: usize, trim_start: bool, trim_end: bool| {
        let mut t = &template[from..to];
        if trim_start {
            t = t.trim_start();
        }
        if trim_end {
            t = t.trim_end();
        }
        Token::Text(t)
    };
    while let Some(start) = template[at..].find("{{").map(|s| s + at) {
        let Some(end) = template[start..].find("}}").map(|e| e + start) else {
            tokens.push((at, text(at, template.len(), trim_next, false)));
            return (tokens, Some(start));
        };
        let inner = &template[start + 2..end];
        let is_space = |c: Option<char>| c.is_some_and(|c| c.is_ascii_whitespace());
        let trim_left = inner.starts_with('-') && is_space(inner[1..].chars().next());
        let trim_right = inner.ends_with('-') && is_space(inner[..inner.len() - 1].chars().last());
        let mut action = inner;
        if trim_left {
            action = &action[1..];
        }
        if trim_right && !action.is_empty() {
            action = &action[..action.len() - 1];
        }
        tokens.push((at, text(at, start, trim_next, trim_left)));
        let lead = action.len() - action.trim_start().len();
        let offset = start + 2 + usize::from(trim_left) + lead;
        tokens.push((offset, Token::Action(action.trim())));
        trim_next = trim_right;
        at = end + 2;
    }
    tokens.push((at, text(at, template.len(), trim_next, false)));
    (tokens, None)
}

/// A piece of a template: text, or what is between `{{` and `}}`.
#[derive(Clone, Copy)]
enum Token<'a> {
    Text(&'a str),
    Action(&'a str),
}

/// The index of the `{{end}}` that closes a `range` whose body starts at `tokens[0]`.
fn matching_end(tokens: &[Token]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Action(a) if a.starts_with("range ") => depth += 1,
            Token::Action("end") if depth == 0 => return Some(i),
            Token::Action("end") => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The value a path names: `.A.B` from `dot`, `$v.A` or `$k` from the variables.
fn lookup_path<'a>(path: &str, dot: &'a Value, vars: &'a [(String, Value)]) -> Value {
    let (mut cur, fields) = match path.strip_prefix('$') {
        Some(var) => {
            let (name, fields) = var.split_once('.').unwrap_or((var, ""));
            match vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, value)) => (value, fields),
                None => return Value::Null,
            }
        }
        None => (dot, path.trim_start_matches('.')),
    };
    for field in fields.split('.').filter(|f| !f.is_empty()) {
        cur = &cur[field];
    }
    cur.clone()
}

fn render_tokens(
    tokens: &[Token],
    dot: &Value,
    vars: &[(String, Value)],
    opts: &TemplateOptions,
    out: &mut String,
) {
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i] {
            Token::Text(t) => out.push_str(t),
            Token::Action(a) => {
                if let Some(spec) = a.strip_prefix("range ") {
                    let body = &tokens[i + 1..];
                    let Some(end) = matching_end(body) else { return };
                    let (names, path) = match spec.split_once(":=") {
                        Some((names, path)) => {
                            let names: Vec<String> = names
                                .split(',')
                                .map(|n| n.trim().trim_start_matches('$').to_string())
                                .collect();
                            (names, path.trim())
                        }
                        None => (Vec::new(), spec.trim()),
                    };
                    let items: Vec<(Value, Value)> = match lookup_path(path, dot, vars) {
                        Value::Array(list) => {
                            list.into_iter().enumerate().map(|(k, v)| (Value::from(k), v)).collect()
                        }
                        Value::Object(map) => {
                            let mut entries: Vec<_> = map.into_iter().collect();
                            entries.sort_by(|a, b| a.0.cmp(&b.0));
                            entries.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                        }
                        _ => Vec::new(),
                    };
                    for (k, v) in items {
                        let mut inner = vars.to_vec();
                        match names.as_slice() {
                            [value] => inner.push((value.clone(), v.clone())),
                            [key, value] => {
                                inner.push((key.clone(), k));
                                inner.push((value.clone(), v.clone()));
                            }
                            _ => {}
                        }
                        render_tokens(&body[..end], &v, &inner, opts, out);
                    }
                    i += end + 2;
                    continue;
                }
                if let Some(p) = a.strip_prefix("json ") {
                    if !opts.header {
                        let mut value = lookup_path(p.trim(), dot, vars);
                        if p.trim() == "."
                            && let Value::Object(map) = &mut value
                        {
                            opts.methods.iter().for_each(|m| drop(map.remove(*m)));
                        }
                        out.push_str(&value.to_string());
                    }
                } else if let Some((path, arg)) = a.split_once(char::is_whitespace)
                    && let Some(key) =
                        arg.trim().strip_prefix('"').and_then(|k| k.strip_suffix('"'))
                    && opts.methods.contains(&path.trim_start_matches('.'))
                {
                    // A method with one argument: `{{.Label "k"}}`.
                    out.push_str(lookup_path(path, dot, vars)[key].as_str().unwrap_or_default());
                } else {
                    out.push_str(&go_print(&lookup_path(a, dot, vars)));
                }
            }
        }
        i += 1;
    }
}

/// How Go's template prints a value: strings bare, maps as `map[k:v]`, lists as `[a b]`.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> =
                keys.iter().map(|k| format!("{k}:{}", go_print(&m[*k]))).collect();
            format!("map[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn templates_take_fields_and_json() {
        let v = value(
            r#"{"Id": "abc", "State": {"Pid": 42, "Status": "running"},
                "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}}"#,
        );
        assert_eq!(
            render_template("{{.Id}} {{.State.Status}} {{.State.Pid}}", &v),
            "abc running 42"
        );
        assert_eq!(
            render_template("{{json .NetworkSettings.Ports}}", &v),
            r#"{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}"#
        );
    }

    #[test]
    fn templates_range_over_lists_and_maps_as_go_does() {
        let net = value(
            r#"{"Name": "my-bridge", "Driver": "bridge",
                "IPAM": {"Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}}"#,
        );
        assert_eq!(
            render_template(
                "{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} gw={{.Gateway}}{{end}}",
                &net
            ),
            "my-bridge bridge 172.18.0.0/16 gw=172.18.0.1"
        );
        let c = value(
            r#"{"NetworkSettings": {"IPAddress": "", "Networks": {
                "b": {"IPAddress": "10.0.0.2", "Aliases": ["x", "y"]},
                "a": {"IPAddress": "10.0.1.2", "Aliases": null}}}}"#,
        );
        assert_eq!(
            render_template(
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} aliases={{$v.Aliases}};{{end}} legacyIP={{.NetworkSettings.IPAddress}}",
                &c
            ),
            "a=10.0.1.2 aliases=<no value>;b=10.0.0.2 aliases=[x y]; legacyIP="
        );
        assert_eq!(render_template("{{range .Nope}}x{{end}}!", &c), "!");
        assert_eq!(render_template("{{range .X}}unclosed", &c), "");
        assert_eq!(render_template("a {{- .NetworkSettings.IPAddress -}} \n b", &c), "ab");
        assert_eq!(render_template("{{.Nope", &c), "{{.Nope");
    }
}
