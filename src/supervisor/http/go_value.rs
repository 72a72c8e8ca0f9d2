//! A parsed JSON body read into a type as Go's `encoding/json` reads it into a struct: a key
//! names the field it spells exactly, else the one it spells in another case (`{"image":"bb"}`
//! is `Image`, as dockerd takes it). serde
//! matches keys exactly and ignores the rest, so a client writing `image` would have its field
//! dropped without a word.
//!
//! [`GoValue`] is a `serde` deserializer over a [`serde_json::Value`] that does this for every
//! struct at every depth (serde tells a deserializer a struct's field names), and otherwise
//! reads the value as serde_json's own does. A struct serde reads as a map (one with a part
//! `flatten`ed in: the create and update bodies, `HostConfig`) is known by what its visitor
//! expects, and its keys matched against the keys its default serializes to.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Value};

/// A JSON value to read as Go reads it.
#[derive(Clone, Copy)]
pub struct GoValue<'a>(pub &'a Value);

/// Reads `value` as `T`, keys matched to fields as Go matches them.
pub fn read<T: de::DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(GoValue(value))
}

/// The field a key names among `fields`: the one it spells, else the first it spells in
/// another case (Go's `EqualFold`, for the ASCII names Docker's types have); else the key.
fn field_of<'k>(key: &'k str, fields: &'k [&'k str]) -> &'k str {
    if fields.contains(&key) {
        return key;
    }
    fields.iter().find(|f| f.eq_ignore_ascii_case(key)).copied().unwrap_or(key)
}

impl<'de> de::Deserializer<'de> for GoValue<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(elements) => visitor.visit_seq(Elements(elements.iter())),
            Value::Object(entries) => {
                let entries: Vec<(&str, &Value)> =
                    entries.iter().map(|(k, v)| (k.as_str(), v)).collect();
                visitor.visit_map(Entries { entries: entries.into_iter(), value: None })
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Object(entries) = self.0 else {
            return self.0.deserialize_struct(name, fields, visitor);
        };
        let kept = matched(entries, fields);
        visitor.visit_map(Entries { entries: kept.into_iter(), value: None })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    /// A map, or a struct with a `flatten`ed part, which serde reads as a map: the latter's
    /// keys are matched to the names it has, as a struct's.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let expecting = Expecting(&visitor).to_string();
        match (self.0, expecting.strip_prefix("struct ").and_then(flattened)) {
            (Value::Object(entries), Some(fields)) => visitor
                .visit_map(Entries { entries: matched(entries, fields).into_iter(), value: None }),
            _ => self.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct identifier ignored_any
    }
}

/// What a visitor expects, as text (`struct HostConfig`, `a map`).
struct Expecting<'a, V>(&'a V);

impl<'de, V: Visitor<'de>> std::fmt::Display for Expecting<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.expecting(f)
    }
}

/// The names of the API's structs that serde reads as maps (a part `flatten`ed in), their
/// parts' included: the keys their default serializes to (each made once).
fn flattened(name: &str) -> Option<&'static [&'static str]> {
    use crate::supervisor::api::types::{
        ContainerCreateRequest, ContainerUpdateRequest, HostConfig,
    };
    use std::sync::OnceLock;
    // The keys a default serializes to, with those it leaves out when empty.
    fn keys<T: serde::Serialize + Default>(skipped: &[&'static str]) -> &'static [&'static str] {
        let Ok(Value::Object(entries)) = serde_json::to_value(T::default()) else { return &[] };
        let mut names: Vec<&'static str> =
            entries.keys().map(|k| &*Box::leak(k.clone().into_boxed_str())).collect();
        names.extend(skipped);
        Box::leak(names.into_boxed_slice())
    }
    const HOST_SKIPPED: &[&str] = &["PortSpecs", "SourceIpTransparent", "Rootfs", "LogConfig"];
    static CREATE: OnceLock<&'static [&'static str]> = OnceLock::new();
    static HOST: OnceLock<&'static [&'static str]> = OnceLock::new();
    static UPDATE: OnceLock<&'static [&'static str]> = OnceLock::new();
    match name {
        "ContainerCreateRequest" => {
            Some(CREATE.get_or_init(|| keys::<ContainerCreateRequest>(&[])))
        }
        "HostConfig" => Some(HOST.get_or_init(|| keys::<HostConfig>(HOST_SKIPPED))),
        "ContainerUpdateRequest" => {
            Some(UPDATE.get_or_init(|| keys::<ContainerUpdateRequest>(&[])))
        }
        _ => None,
    }
}

/// An object's entries, each key as the field it names among `fields`. Of two naming one
/// field, Go keeps the later in the body; the parsed value no longer has their order, so the
/// one spelled exactly is kept (else the first in byte order).
fn matched<'a>(
    entries: &'a serde_json::Map<String, Value>,
    fields: &'a [&'a str],
) -> Vec<(&'a str, &'a Value)> {
    let named: Vec<(&str, &str, &Value)> =
        entries.iter().map(|(k, v)| (k.as_str(), field_of(k, fields), v)).collect();
    named
        .iter()
        .enumerate()
        .filter(|&(i, &(key, field, _))| {
            let rival = |&(_, other, _): &(&str, &str, &Value)| other == field;
            key == field
                || (!named.iter().any(|n| rival(n) && n.0 == field)
                    && !named[..i].iter().any(rival))
        })
        .map(|(_, &(_, field, value))| (field, value))
        .collect()
}

/// An element of an array: as [`GoValue`], but a `null` is the element type's zero value
/// (`["a", null]` is `["a", ""]` for a list of strings), as Go makes it; serde would refuse it.
#[derive(Clone, Copy)]
struct Element<'a>(&'a Value);

macro_rules! zero_if_null {
    ($($method:ident => $visit:ident($zero:expr)),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                match self.0 {
                    Value::Null => visitor.$visit($zero),
                    value => GoValue(value).$method(visitor),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Element<'de> {
    type Error = Error;

    zero_if_null! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0), deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0), deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0), deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0), deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0), deserialize_f64 => visit_f64(0.0),
        deserialize_str => visit_str(""), deserialize_string => visit_str(""),
        deserialize_seq => visit_seq(Elements([].iter())),
        deserialize_map => visit_map(Entries { entries: std::iter::empty(), value: None }),
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_map(Entries { entries: std::iter::empty(), value: None }),
            value => GoValue(value).deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        GoValue(self.0).deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        GoValue(self.0).deserialize_option(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        GoValue(self.0).deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        GoValue(self.0).deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

/// An array's elements, each read as Go reads it.
struct Elements<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Elements<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|v| seed.deserialize(Element(v))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// An object's entries, each value read as Go reads it.
struct Entries<'a, I: Iterator<Item = (&'a str, &'a Value)>> {
    entries: I,
    value: Option<&'a Value>,
}

impl<'de, I: Iterator<Item = (&'de str, &'de Value)>> MapAccess<'de> for Entries<'de, I> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.value = Some(value);
        let key = de::value::BorrowedStrDeserializer::<'de, Error>::new(key);
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value =
            self.value.take().ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(GoValue(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    struct Inner {
        memory: i64,
        cap_add: Option<Vec<String>>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    struct Outer {
        image: String,
        cmd: Vec<String>,
        host_config: Option<Inner>,
        labels: std::collections::BTreeMap<String, String>,
    }

    fn go(text: &str) -> Result<Outer, String> {
        read::<Outer>(&serde_json::from_str(text).unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_name_fields_in_any_case_as_go_reads_them() {
        let o = go(r#"{"image":"bb","CMD":["true"],"hostconfig":{"memory":5,"capADD":["X"]}}"#)
            .unwrap();
        assert_eq!(o.image, "bb");
        assert_eq!(o.cmd, ["true"]);
        assert_eq!(o.host_config, Some(Inner { memory: 5, cap_add: Some(vec!["X".into()]) }));
    }

    #[test]
    fn a_map_s_keys_are_kept_as_written() {
        let o = go(r#"{"Labels":{"image":"x","Image":"y"}}"#).unwrap();
        assert_eq!(o.labels.len(), 2);
        assert_eq!(o.labels["image"], "x");
    }

    #[test]
    fn of_two_keys_naming_a_field_the_exact_one_wins_and_serde_s_errors_stay() {
        assert_eq!(go(r#"{"Image":"a","image":"b"}"#).unwrap().image, "a");
        assert_eq!(go(r#"{"image":"a","Image":"b"}"#).unwrap().image, "b");
        assert_eq!(go(r#"{"image":"a","IMAGE":"b"}"#).unwrap().image, "b");
        assert_eq!(
            go(r#"{"Image":5}"#).unwrap_err(),
            "invalid type: integer `5`, expected a string"
        );
        assert!(go(r#"{"HostConfig":{"Memory":"x"}}"#).is_err());
        assert_eq!(go(r#"{"HostConfig":null}"#).unwrap().host_config, None);
    }

    #[test]
    fn a_create_body_s_flattened_parts_take_any_case_too() {
        use crate::supervisor::api::types::ContainerCreateRequest;
        let body = r#"{"image":"bb","cmd":["echo","hi"],"LABELS":{"a":"b"},
            "hostconfig":{"memory":1048576,"logconfig":{"type":"none"},"NETWORKMODE":"host"}}"#;
        let req: ContainerCreateRequest = read(&serde_json::from_str(body).unwrap()).unwrap();
        assert_eq!(req.config.image, "bb");
        assert_eq!(req.config.cmd, ["echo", "hi"]);
        assert_eq!(req.config.labels.unwrap()["a"], "b");
        assert_eq!(req.host_config.resources.memory, 1 << 20);
        assert_eq!(req.host_config.network_mode, "host");
        assert_eq!(req.host_config.log_config.unwrap().kind, "none");
    }

    #[test]
    fn a_null_element_is_its_type_s_zero_value() {
        #[derive(Debug, Default, Deserialize, PartialEq)]
        #[serde(rename_all = "PascalCase", default)]
        struct Lists {
            cmd: Vec<String>,
            ports: Vec<u16>,
            flags: Vec<bool>,
            inners: Vec<Inner>,
            maybe: Vec<Option<String>>,
        }
        let v = serde_json::json!({
            "Cmd": ["a", null], "Ports": [null, 80], "Flags": [null],
            "Inners": [null, {"Memory": 1}], "Maybe": [null]
        });
        let l: Lists = read(&v).unwrap();
        assert_eq!(l.cmd, ["a", ""]);
        assert_eq!(l.ports, [0, 80]);
        assert_eq!(l.flags, [false]);
        assert_eq!(l.inners, [Inner::default(), Inner { memory: 1, cap_add: None }]);
        assert_eq!(l.maybe, [None]);
    }
}
