//! Just enough JSON to write the results for machines: a value tree and its text.

use std::fmt::{self, Write};

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number; a non-finite one is written as `null`, which JSON has no number for.
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, keys in the order given.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// A number, or `null` for `None`.
    pub fn opt(n: Option<f64>) -> Json {
        n.map_or(Json::Null, Json::Num)
    }

    /// Writes `self` indented by `depth` levels of two spaces.
    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let pad = |f: &mut fmt::Formatter<'_>, d: usize| f.write_str(&"  ".repeat(d));
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Num(n) if !n.is_finite() => f.write_str("null"),
            Json::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => write!(f, "{}", *n as i64),
            Json::Num(n) => write!(f, "{n}"),
            Json::Str(s) => write_str(f, s),
            Json::Arr(items) if items.is_empty() => f.write_str("[]"),
            Json::Obj(pairs) if pairs.is_empty() => f.write_str("{}"),
            Json::Arr(items) => {
                f.write_str("[\n")?;
                for (i, item) in items.iter().enumerate() {
                    pad(f, depth + 1)?;
                    item.write(f, depth + 1)?;
                    f.write_str(if i + 1 < items.len() { ",\n" } else { "\n" })?;
                }
                pad(f, depth)?;
                f.write_char(']')
            }
            Json::Obj(pairs) => {
                f.write_str("{\n")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    pad(f, depth + 1)?;
                    write_str(f, k)?;
                    f.write_str(": ")?;
                    v.write(f, depth + 1)?;
                    f.write_str(if i + 1 < pairs.len() { ",\n" } else { "\n" })?;
                }
                pad(f, depth)?;
                f.write_char('}')
            }
        }
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

/// A JSON string literal.
fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(Json::str("a\"b\\c\nd\u{1}").to_string(), r#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn whole_numbers_have_no_fraction_and_non_finite_ones_are_null() {
        assert_eq!(Json::Num(3.0).to_string(), "3");
        assert_eq!(Json::Num(0.25).to_string(), "0.25");
        assert_eq!(Json::Num(f64::NAN).to_string(), "null");
        assert_eq!(Json::opt(None).to_string(), "null");
    }

    #[test]
    fn objects_keep_their_order_and_nest() {
        let v = Json::obj([("b", Json::Bool(true)), ("a", Json::Arr(vec![Json::Null]))]);
        assert_eq!(v.to_string(), "{\n  \"b\": true,\n  \"a\": [\n    null\n  ]\n}");
    }
}
