//! Request bodies read as dockerd reads them, refused in its words. dockerd decodes a body with
//! Go's `json.Decoder`: the first JSON value is taken and what follows it is ignored, and a body
//! that is not what the handler wants is answered with Go's `encoding/json` messages
//! (`invalid character 'x' looking for beginning of value`, `unexpected EOF`, `json: cannot
//! unmarshal number into Go struct field NetworkCreateRequest.Name of type string`). The JSON is
//! parsed by serde_json; this module only says its errors as Go does, from the error's category,
//! position and the byte found there, and the field a type error is in.
//!
//! Where they still differ: serde refuses `null` for a field that is not optional, where Go
//! leaves the field alone; a nested field is named after its parent field, where Go names the Go
//! type that holds it (the same in Docker's types but for a few, e.g. `EndpointIPAMConfig`);
//! an error inside a literal (`tru`) or an escape is said as one at the start of a value.

use serde::de::DeserializeOwned;

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
    serde_json::from_slice::<T>(first).map_err(|e| refused(refusal_words::<T>(first, &e, root)))
}

/// Go's words for an object `T` refused with `e`, the field found from the object's value.
fn refusal_words<T: DeserializeOwned>(object: &[u8], e: &serde_json::Error, root: &str) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(object) else {
        return type_words(e, root, &[]);
    };
    let Err(e) = T::deserialize(&value) else {
        return type_words(e, root, &[]);
    };
    let path: Vec<String> = locate::<T>(&value, &e.to_string())
        .into_iter()
        // Go's path names only struct fields; Docker's start with a capital, map keys (labels,
        // options) need not.
        .filter(|key| key.starts_with(|c: char| c.is_ascii_uppercase()))
        .collect();
    type_words(&e, root, &path)
}

/// The keys down to the value whose type `T` refused (with the words `message`): each level's
/// entries (an object's, or an array's elements) are tried alone, nested as found so far, until
/// the refusal is reproduced; an array's index is not part of the path, as in Go's. Found this
/// way rather than from the deserializer, which loses the path inside `#[serde(flatten)]`
/// fields (most of Docker's create body).
fn locate<T: DeserializeOwned>(value: &serde_json::Value, message: &str) -> Vec<String> {
    use serde_json::Value;
    // Each step down: an object's key, or `None` for an array's element.
    let mut steps: Vec<Option<String>> = Vec::new();
    let refuses = |steps: &[Option<String>], step: Option<&str>, inner: &Value| {
        let wrap = |step: Option<&str>, v: Value| match step {
            Some(key) => serde_json::json!({ key: v }),
            None => Value::Array(vec![v]),
        };
        let mut probe = wrap(step, inner.clone());
        for parent in steps.iter().rev() {
            probe = wrap(parent.as_deref(), probe);
        }
        T::deserialize(&probe).is_err_and(|e| e.to_string() == message)
    };
    let mut at = value;
    loop {
        let found = match at {
            Value::Object(entries) => entries
                .iter()
                .find(|(key, inner)| refuses(&steps, Some(key), inner))
                .map(|(key, inner)| (Some(key.clone()), inner)),
            Value::Array(elements) => elements
                .iter()
                .find(|inner| refuses(&steps, None, inner))
                .map(|inner| (None, inner)),
            _ => None,
        };
        let Some((step, inner)) = found else { break };
        steps.push(step);
        at = inner;
    }
    steps.into_iter().flatten().collect()
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
