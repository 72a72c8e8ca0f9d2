//! Request bodies read as dockerd reads them, refused in its words. dockerd decodes a body with
//! Go's `json.Decoder`: the first JSON value is taken and what follows it is ignored, and a body
//! that is not what the handler wants is answered with Go's `encoding/json` messages
//! (`invalid character 'x' looking for beginning of value`, `unexpected EOF`, `json: cannot
//! unmarshal number into Go struct field NetworkCreateRequest.Name of type string`). The JSON is
//! parsed by serde_json; this module only says its errors as Go does, from the error's category,
//! position and the byte found there, and the field a type error is in.
//!
//! A `null` is read as Go reads it: a field whose value is `null` is left alone (serde would
//! refuse it for a field that is not an `Option`). A key names a field in any case, as in Go
//! (`{"image":"bb"}`; [`super::go_value`]).
//!
//! A `null` element of an array is the element type's zero value, as Go makes it (in the create
//! body's `Cmd`, `Env` and `Entrypoint`, which serde reads through its own buffer, by their
//! types' own decoders: `api::types`'s `strings` and `str_slice`).
//!
//! Where they still differ: a nested field is named after its parent field, where Go names the Go
//! type that holds it (the same in Docker's types but for a few, e.g. `EndpointIPAMConfig`);
//! an error inside a literal (`tru`) or an escape is said as one at the start of a value.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// How an endpoint reads its body, as the dockerd handler it stands for does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// `httputils.ReadJSON` (networks, volumes, exec): an empty body is `got EOF while reading
    /// request body`, and every refusal is a 400.
    ReadJson,
    /// `runconfig`'s decoders (`containers/create`, `update`): an empty body is `EOF`, and a
    /// refusal is a 500 (dockerd does not mark them as the client's).
    Runconfig,
}

/// A body refused: Go's words, and whether dockerd counts it as the client's fault (400) or
/// not (500).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// What dockerd says (`{"message": …}`).
    pub message: String,
    /// A 400 (the client's fault), else a 500.
    pub client_error: bool,
}

/// Whether a `Content-Type` names JSON as dockerd's `httputils.CheckForJSON` decides it: Go's
/// `mime.ParseMediaType` must read it without error (parameters are `; key=value`, a token or
/// a quoted string each, no key twice in any case, one trailing `;` allowed) and its media type must be `application/json`, in any case.
pub fn is_json_media_type(content_type: &str) -> bool {
    let (media, mut rest) =
        content_type.split_at(content_type.find(';').unwrap_or(content_type.len()));
    if !media.trim().eq_ignore_ascii_case("application/json") {
        return false;
    }
    let mut seen: Vec<String> = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return true;
        }
        let Some((key, after)) = media_param(rest) else {
            // Only a lone trailing `;` is not an error.
            return rest.trim() == ";";
        };
        if seen.contains(&key) {
            return false;
        }
        seen.push(key);
        rest = after;
    }
}

/// One `; key=value` of a media type (Go's `consumeMediaParam`): the key in lower case and
/// what follows the value.
fn media_param(v: &str) -> Option<(String, &str)> {
    let rest = v.trim_start().strip_prefix(';')?.trim_start();
    let (key, rest) = token(rest);
    if key.is_empty() {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let (value, after) = match rest.strip_prefix('"') {
        Some(quoted) => {
            let mut escaped = false;
            let end = quoted.char_indices().find_map(|(i, c)| {
                let close = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                close.then_some(i)
            })?;
            rest.split_at(end + 2)
        }
        None => token(rest),
    };
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), after))
}

/// The longest prefix of RFC 1521 token characters, and the rest (Go's `consumeToken`).
fn token(v: &str) -> (&str, &str) {
    let end = v
        .find(|c: char| !c.is_ascii_graphic() || "()<>@,;:\\\"/[]?=".contains(c))
        .unwrap_or(v.len());
    v.split_at(end)
}

/// The first JSON value of `body` as `T`; `root` is the Go type dockerd decodes into, with its
/// package (`types.NetworkCreateRequest`).
pub fn decode<T: DeserializeOwned>(body: &[u8], root: &str, reader: Reader) -> Result<T, Refused> {
    let refused = |message: String| Refused { message, client_error: reader == Reader::ReadJson };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(refused(match reader {
            Reader::ReadJson => "got EOF while reading request body".into(),
            Reader::Runconfig => "EOF".into(),
        }));
    }
    // Go reads a string's invalid UTF-8 as U+FFFD; serde_json would refuse it.
    let lossy = String::from_utf8_lossy(body);
    let body = lossy.as_bytes();
    // The first value's syntax and extent; what follows it is not read (Go's Decoder).
    let mut values =
        serde_json::Deserializer::from_slice(body).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            // Skipping a string places some errors past the byte Go names; reading it does not.
            let mut read =
                serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>();
            let e = match read.next() {
                Some(Err(at)) => at,
                _ => e,
            };
            return Err(refused(syntax_words(body, &e)));
        }
        None => return Err(refused("EOF".into())),
    }
    let first = &body[..values.byte_offset()];
    // Every body dockerd reads is a Go struct: `null` leaves it empty, and anything but an
    // object is refused (serde would take an array as the fields in order).
    let kind = match first.trim_ascii_start().first() {
        Some(b'{') => None,
        Some(b'n') => return serde_json::from_slice(b"{}").map_err(|e| refused(e.to_string())),
        Some(b'[') => Some("array"),
        Some(b'"') => Some("string"),
        Some(b't' | b'f') => Some("bool"),
        _ => Some("number"),
    };
    if let Some(kind) = kind {
        return Err(refused(format!("json: cannot unmarshal {kind} into Go value of type {root}")));
    }
    // Read through a `Value`, whose keys name fields in any case as Go's do (`go_value`).
    let value = match serde_json::from_slice::<Value>(first) {
        Ok(value) => value,
        Err(e) => return Err(refused(type_words(&e, root, &[]))),
    };
    without_refused_nulls::<T>(value)
        .map_err(|(value, e)| refused(refusal_words::<T>(&value, &e, root)))
}

/// `value` as `T`, read as Go reads it where serde would refuse a `null`: Go leaves a field
/// alone when its value is `null` (the zero value, in a fresh struct), serde refuses it for a
/// field that is not an `Option`. Each `null` refused this way is taken out of its object (an
/// absent field, which is what Go makes of it) and the value read again (an array's `null`
/// element is its type's zero value already, [`super::go_value`]). On a refusal, the value as
/// last read and serde's error.
fn without_refused_nulls<T: DeserializeOwned>(
    mut value: Value,
) -> Result<T, (Value, serde_json::Error)> {
    loop {
        let e = match super::go_value::read::<T>(&value) {
            Ok(t) => return Ok(t),
            Err(e) => e,
        };
        let message = e.to_string();
        if !message.starts_with("invalid type: null") {
            return Err((value, e));
        }
        let steps = locate::<T>(&value, &message);
        // Each turn takes one `null` out, so the loop ends.
        if !take_null(&mut value, &steps) {
            return Err((value, e));
        }
    }
}

/// Removes the `null` at `steps` from the object holding it; false if there is none there.
fn take_null(value: &mut Value, steps: &[Step]) -> bool {
    let Some((Step::Key(last), parents)) = steps.split_last() else { return false };
    let mut at = value;
    for step in parents {
        let next = match (step, at) {
            (Step::Key(k), Value::Object(entries)) => entries.get_mut(k),
            (Step::Index(i), Value::Array(elements)) => elements.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return false };
        at = next;
    }
    match at {
        Value::Object(entries) if entries.get(last).is_some_and(Value::is_null) => {
            entries.remove(last).is_some()
        }
        _ => false,
    }
}

/// Go's words for an object `T` refused with `e`, the field found from the object's value.
fn refusal_words<T: DeserializeOwned>(value: &Value, e: &serde_json::Error, root: &str) -> String {
    let path: Vec<String> = locate::<T>(value, &e.to_string())
        .into_iter()
        .filter_map(|step| match step {
            Step::Key(key) => Some(key),
            // Go's path has no index.
            Step::Index(_) => None,
        })
        // Go's path names only struct fields; Docker's start with a capital, map keys (labels,
        // options) need not.
        .filter(|key| key.starts_with(|c: char| c.is_ascii_uppercase()))
        .collect();
    type_words(e, root, &path)
}

/// One step down a JSON value: an object's key or an array's index.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The steps down to the value whose type `T` refused (with the words `message`): each level's
/// entries (an object's, or an array's elements) are tried alone, nested as found so far, until
/// the refusal is reproduced. Found this way rather than from the deserializer, which loses the
/// path inside `#[serde(flatten)]` fields (most of Docker's create body).
fn locate<T: DeserializeOwned>(value: &Value, message: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let refuses = |steps: &[Step], step: &Step, inner: &Value| {
        let wrap = |step: &Step, v: Value| match step {
            Step::Key(key) => serde_json::json!({ key: v }),
            // Alone, an element is the array's first.
            Step::Index(_) => Value::Array(vec![v]),
        };
        let mut probe = wrap(step, inner.clone());
        for parent in steps.iter().rev() {
            probe = wrap(parent, probe);
        }
        super::go_value::read::<T>(&probe).is_err_and(|e| e.to_string() == message)
    };
    let mut at = value;
    loop {
        let found = match at {
            Value::Object(entries) => entries
                .iter()
                .map(|(key, inner)| (Step::Key(key.clone()), inner))
                .find(|(step, inner)| refuses(&steps, step, inner)),
            Value::Array(elements) => elements
                .iter()
                .enumerate()
                .map(|(i, inner)| (Step::Index(i), inner))
                .find(|(step, inner)| refuses(&steps, step, inner)),
            _ => None,
        };
        let Some((step, inner)) = found else { break };
        steps.push(step);
        at = inner;
    }
    steps
}

/// Go's words for a body that is not JSON.
fn syntax_words(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "unexpected EOF".into();
    }
    let found = byte_at(body, e.line(), e.column());
    let text = e.to_string();
    let what = text.split(" at line ").next().unwrap_or_default();
    let Some(c) = found else { return "unexpected EOF".into() };
    let context = match what {
        "key must be a string" => "looking for beginning of object key string",
        "expected `:`" => "after object key",
        "expected `,` or `}`" => "after object key:value pair",
        "expected `,` or `]`" => "after array element",
        "trailing comma" if c == b'}' => "looking for beginning of object key string",
        w if w.starts_with("control character") => "in string literal",
        _ => "looking for beginning of value",
    };
    format!("invalid character {} {context}", quote_char(c))
}

/// The byte at serde_json's 1-based `line` and `column` (a column counts bytes).
fn byte_at(body: &[u8], line: usize, column: usize) -> Option<u8> {
    let start: usize =
        body.split(|b| *b == b'\n').take(line.saturating_sub(1)).map(|l| l.len() + 1).sum();
    body.get(start + column.checked_sub(1)?).copied()
}

/// A byte as Go's `encoding/json` quotes it in an error (`quoteChar`).
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".into(),
        b'"' => "'\"'".into(),
        b'\\' => r"'\\'".into(),
        b'\x07' => r"'\a'".into(),
        b'\x08' => r"'\b'".into(),
        b'\x0c' => r"'\f'".into(),
        b'\n' => r"'\n'".into(),
        b'\r' => r"'\r'".into(),
        b'\t' => r"'\t'".into(),
        b'\x0b' => r"'\v'".into(),
        0x20..=0x7e => format!("'{}'", c as char),
        _ => format!(r"'\x{c:02x}'"),
    }
}

/// Go's words for JSON of the wrong shape: `json: cannot unmarshal KIND into Go struct field
/// STRUCT.PATH of type TYPE`, or `… into Go value of type TYPE` at the top.
fn type_words(e: &serde_json::Error, root: &str, path: &[String]) -> String {
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or_default();
    let parsed = text
        .strip_prefix("invalid type: ")
        .or_else(|| text.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "));
    let Some((found, expected)) = parsed else {
        // A missing field, an unknown variant: serde's words, no Go equivalent.
        return text.to_string();
    };
    let kind = go_kind(found);
    let ty = go_type(expected);
    match path.split_last() {
        None => format!("json: cannot unmarshal {kind} into Go value of type {root}"),
        Some((_, parents)) => {
            let holder = parents
                .last()
                .map_or_else(|| root.rsplit('.').next().unwrap_or(root).to_string(), Clone::clone);
            format!(
                "json: cannot unmarshal {kind} into Go struct field {holder}.{} of type {ty}",
                path.join(".")
            )
        }
    }
}

/// serde's description of the value found, as Go names its JSON kind (`number 1.5` for a
/// number that an integer cannot hold, as Go says it).
fn go_kind(found: &str) -> String {
    let literal = || found.split('`').nth(1).unwrap_or_default().to_string();
    if found.starts_with("integer") {
        if found.contains('-') { format!("number {}", literal()) } else { "number".into() }
    } else if found.starts_with("floating point") {
        format!("number {}", literal())
    } else if found.starts_with("string") {
        "string".into()
    } else if found.starts_with("boolean") {
        "bool".into()
    } else if found.starts_with("sequence") {
        "array".into()
    } else if found.starts_with("map") {
        "object".into()
    } else {
        found.to_string()
    }
}

/// serde's description of the type wanted, as Go names the field's type.
fn go_type(expected: &str) -> String {
    match expected {
        "a string" | "a borrowed string" => "string".into(),
        "a boolean" => "bool".into(),
        "i8" | "i16" | "i32" | "i64" => format!("int{}", &expected[1..]),
        "u8" | "u16" | "u32" | "u64" => format!("uint{}", &expected[1..]),
        "f32" | "f64" => format!("float{}", &expected[1..]),
        "a sequence" => "[]string".into(),
        "a map" => "map[string]string".into(),
        other => other.strip_prefix("struct ").unwrap_or(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::*;

    /// Shaped as the create body: most fields in a flattened struct, limits flattened again
    /// inside the host settings.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Create {
        #[serde(flatten)]
        config: Config,
        host_config: Option<Host>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Config {
        image: Option<String>,
        labels: Option<HashMap<String, String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Host {
        #[serde(flatten)]
        resources: Resources,
        privileged: Option<bool>,
        devices: Option<Vec<Device>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Device {
        path_on_host: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Resources {
        memory: Option<i64>,
        cpu_shares: Option<u64>,
    }

    const ROOT: &str = "runconfig.ContainerConfigWrapper";

    fn words(body: &str, reader: Reader) -> Refused {
        decode::<Create>(body.as_bytes(), ROOT, reader).unwrap_err()
    }

    /// Each case as dockerd 20.10.24 answered it here (tests/fixtures/docker-20.10-errors).
    #[test]
    fn refusals_are_gos_words() {
        let cases = [
            ("{bad", "invalid character 'b' looking for beginning of object key string"),
            ("xx", "invalid character 'x' looking for beginning of value"),
            (
                "{\"Image\":\"x\",}",
                "invalid character '}' looking for beginning of object key string",
            ),
            ("{\"Image\" 1}", "invalid character '1' after object key"),
            ("{\"Image\":\"x\" \"y\"}", "invalid character '\"' after object key:value pair"),
            (
                "{\"Labels\":{\"a\":\"b\"},\"Image\":[1 2]}",
                "invalid character '2' after array element",
            ),
            ("{\"Image\":\"a\u{1}\"}", "invalid character '\\x01' in string literal"),
            ("{\"Image\": ", "unexpected EOF"),
            ("{\"Image\":\"a", "unexpected EOF"),
            (
                "{\"Image\":5}",
                "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Image of type string",
            ),
            (
                "{\"Image\":true}",
                "json: cannot unmarshal bool into Go struct field ContainerConfigWrapper.Image of type string",
            ),
            (
                "{\"Image\":{}}",
                "json: cannot unmarshal object into Go struct field ContainerConfigWrapper.Image of type string",
            ),
            (
                "[1]",
                "json: cannot unmarshal array into Go value of type runconfig.ContainerConfigWrapper",
            ),
            (
                "{\"HostConfig\":{\"Memory\":\"a\"}}",
                "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64",
            ),
            (
                "{\"HostConfig\":{\"Memory\":1.5}}",
                "json: cannot unmarshal number 1.5 into Go struct field HostConfig.HostConfig.Memory of type int64",
            ),
            (
                "{\"HostConfig\":{\"CpuShares\":-1}}",
                "json: cannot unmarshal number -1 into Go struct field HostConfig.HostConfig.CpuShares of type uint64",
            ),
            (
                "{\"Image\":\"x\",\"HostConfig\":{\"Privileged\":1}}",
                "json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Privileged of type bool",
            ),
            (
                "{\"HostConfig\":{\"Devices\":[{},{\"PathOnHost\":1}]}}",
                "json: cannot unmarshal number into Go struct field Devices.HostConfig.Devices.PathOnHost of type string",
            ),
            (
                "{\"Labels\":{\"a\":5}}",
                "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Labels of type string",
            ),
        ];
        for (body, want) in cases {
            let got = words(body, Reader::Runconfig);
            assert_eq!(got.message, want, "{body}");
            assert!(!got.client_error, "create's refusals are dockerd's 500s");
        }
    }

    #[test]
    fn an_empty_body_and_trailing_bytes_as_gos_decoder_sees_them() {
        assert_eq!(words("", Reader::Runconfig).message, "EOF");
        let c: Create = decode(b"null", ROOT, Reader::Runconfig).unwrap();
        assert!(c.config.image.is_none(), "null leaves the struct empty");
        let empty = words(" \n", Reader::ReadJson);
        assert_eq!(empty.message, "got EOF while reading request body");
        assert!(empty.client_error);
        // A string's invalid UTF-8 is read as U+FFFD, as Go reads it.
        let c: Create = decode(b"{\"Image\":\"a\xffb\"}", ROOT, Reader::Runconfig).unwrap();
        assert_eq!(c.config.image.as_deref(), Some("a\u{fffd}b"));
        // The first value is taken; what follows is never read.
        let c: Create = decode(b"{\"Image\":\"x\"} trailing", ROOT, Reader::Runconfig).unwrap();
        assert_eq!(c.config.image.as_deref(), Some("x"));
    }

    /// Fields that are not `Option`s, as most of Docker's types have them.
    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "PascalCase", default)]
    struct Plain {
        name: String,
        cmd: Vec<String>,
        host_config: PlainHost,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "PascalCase", default)]
    struct PlainHost {
        memory: i64,
        binds: Vec<String>,
    }

    #[test]
    fn a_null_leaves_a_field_alone_as_in_go() {
        let body = br#"{"Name":null,"Cmd":["a"],"HostConfig":{"Memory":null,"Binds":null}}"#;
        let p: Plain = decode(body, ROOT, Reader::Runconfig).unwrap();
        assert_eq!((p.name.as_str(), p.cmd, p.host_config.memory), ("", vec!["a".into()], 0));
        let p: Plain =
            decode(br#"{"HostConfig":null,"Name":"n"}"#, ROOT, Reader::Runconfig).unwrap();
        assert_eq!(p.name, "n");
        // Another refusal is still said, with its field.
        let e = decode::<Plain>(
            br#"{"Name":null,"HostConfig":{"Memory":"x"}}"#,
            ROOT,
            Reader::Runconfig,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64"
        );
        // A null element of a list of strings is "", as Go reads it.
        let p = decode::<Plain>(br#"{"Cmd":["a",null]}"#, ROOT, Reader::Runconfig).unwrap();
        assert_eq!(p.cmd, ["a", ""]);
    }

    /// Every field of Docker's create body may be `null`, at every depth.
    #[test]
    fn the_create_body_takes_null_anywhere() {
        use crate::supervisor::api::types::ContainerCreateRequest;
        fn nulls(v: &mut Value, leaves_only: bool) {
            if let Value::Object(entries) = v {
                for inner in entries.values_mut() {
                    match inner {
                        Value::Object(_) if leaves_only => nulls(inner, leaves_only),
                        _ => *inner = Value::Null,
                    }
                }
            }
        }
        let full = serde_json::to_value(ContainerCreateRequest::default()).unwrap();
        let mut serde_refuses = 0;
        for leaves_only in [false, true] {
            let mut body = full.clone();
            nulls(&mut body, leaves_only);
            let text = body.to_string();
            serde_refuses +=
                usize::from(serde_json::from_str::<ContainerCreateRequest>(&text).is_err());
            let got = decode::<ContainerCreateRequest>(text.as_bytes(), ROOT, Reader::Runconfig);
            assert!(got.is_ok(), "{text}: {:?}", got.err());
        }
        assert!(serde_refuses > 0, "serde alone takes every null: nothing to test");
        // A port set's value: Go's struct{} takes null and any object, and keeps the key.
        let body = br#"{"Image":"x","ExposedPorts":{"80/tcp":null,"81/udp":{"a":1}},"Volumes":{"/v":null}}"#;
        let c: ContainerCreateRequest = decode(body, ROOT, Reader::Runconfig).unwrap();
        let ports: Vec<&String> = c.config.exposed_ports.iter().flatten().map(|(k, _)| k).collect();
        assert_eq!(ports, ["80/tcp", "81/udp"]);
        assert_eq!(c.config.volumes.map(|v| v.len()), Some(1));
    }

    /// `Cmd` and `Entrypoint` are Docker's `strslice` (one string, or a list), `Env` a
    /// `[]string`; a `null` element of any is `""`. As dockerd 20.10.24 read each here.
    #[test]
    fn command_lists_as_dockerd_reads_them() {
        use crate::supervisor::api::types::ContainerCreateRequest;
        let read = |body: &str| -> (Vec<String>, Option<Vec<String>>, Option<Vec<String>>) {
            let c: ContainerCreateRequest =
                decode(body.as_bytes(), ROOT, Reader::Runconfig).unwrap();
            (c.config.cmd, c.config.entrypoint, c.config.env)
        };
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(read(r#"{"Cmd":"echo hi","Entrypoint":"sh"}"#).0, strings(&["echo hi"]));
        assert_eq!(read(r#"{"Cmd":"echo hi","Entrypoint":"sh"}"#).1, Some(strings(&["sh"])));
        let (cmd, entrypoint, env) =
            read(r#"{"Cmd":["echo",null,"x"],"Entrypoint":[null],"Env":["A=1",null]}"#);
        assert_eq!(cmd, strings(&["echo", "", "x"]));
        assert_eq!(entrypoint, Some(strings(&[""])));
        assert_eq!(env, Some(strings(&["A=1", ""])));
        assert_eq!(read(r#"{"Cmd":null,"Entrypoint":null,"Env":null}"#), (vec![], None, None));
        for (body, words) in [
            (
                r#"{"Cmd":["a",5]}"#,
                "array into Go struct field ContainerConfigWrapper.Cmd of type string",
            ),
            (
                r#"{"Entrypoint":{}}"#,
                "object into Go struct field ContainerConfigWrapper.Entrypoint of type string",
            ),
            (
                r#"{"Env":"A=1"}"#,
                "string into Go struct field ContainerConfigWrapper.Env of type []string",
            ),
        ] {
            let refused =
                decode::<ContainerCreateRequest>(body.as_bytes(), ROOT, Reader::Runconfig);
            assert_eq!(refused.unwrap_err().message, format!("json: cannot unmarshal {words}"));
        }
    }

    /// Each as dockerd 20.10.24 took or refused it here.
    #[test]
    fn json_media_types_as_dockerd_checks_them() {
        let taken = [
            "application/json",
            "Application/JSON",
            "application/json;",
            "application/json; charset=utf-8",
            "application/json ; charset=\"utf-8\"",
            "application/json; charset=utf-8;",
            "application/json;charset=utf-8 ; ",
            "application/json; a=\"x\\\"y\"",
        ];
        let refused = [
            "",
            "text/plain",
            "application/jsonx",
            "bogus;;",
            "application/json;;",
            "application/json; charset",
            "application/json; a=1; a=2",
            "application/json; a=1; a=1",
            "application/json; A=1; a=2",
            "application/json/x",
            "application/json x",
            "application/json; a=\"b",
            "application/json; a=b c",
            "application/json; a=",
        ];
        for t in taken {
            assert!(is_json_media_type(t), "{t}");
        }
        for t in refused {
            assert!(!is_json_media_type(t), "{t}");
        }
    }

    #[test]
    fn bytes_are_quoted_as_go_quotes_them() {
        assert_eq!(quote_char(b'\''), r"'\''");
        assert_eq!(quote_char(b'"'), "'\"'");
        assert_eq!(quote_char(b'\t'), r"'\t'");
        assert_eq!(quote_char(0x7f), r"'\x7f'");
        assert_eq!(quote_char(0xc3), r"'\xc3'");
        assert_eq!(byte_at(b"{\n  x", 2, 3), Some(b'x'));
        assert_eq!(byte_at(b"{", 1, 9), None);
    }
}
