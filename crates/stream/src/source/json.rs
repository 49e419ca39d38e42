//! A JSON object's top-level fields, read without building a
//! `serde_json::Value` tree: strings are borrowed from the message bytes
//! unless they hold escapes, numbers are read straight to `f64`, nested
//! values are skipped. Decoding is most of the consumer thread's work, and
//! a `Value` tree costs an allocation per field and per key.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::decode::{FieldValue, Fields};

/// The fields of one JSON object, in message order.
#[derive(Debug, Default)]
pub struct JsonFields<'a> {
    fields: Vec<(Cow<'a, str>, Scalar<'a>)>,
}

#[derive(Debug)]
enum Scalar<'a> {
    Text(Cow<'a, str>),
    Number(f64),
    Null,
    Nested,
}

/// Why a payload is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("{0}")]
    Syntax(String),
    #[error("not a JSON object")]
    NotAnObject,
}

impl<'a> JsonFields<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<JsonFields<'a>, JsonError> {
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(JsonError::NotAnObject);
        }
        serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))
    }
}

impl Fields for JsonFields<'_> {
    fn get(&self, name: &str) -> Option<FieldValue<'_>> {
        // Later duplicates win, as in serde_json's own map.
        let (_, value) = self.fields.iter().rev().find(|(k, _)| k == name)?;
        Some(match value {
            Scalar::Text(s) => FieldValue::Text(s),
            Scalar::Number(n) => FieldValue::Number(*n),
            Scalar::Null => FieldValue::Null,
            Scalar::Nested => FieldValue::Text("<nested value>"),
        })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonFields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = JsonFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<JsonFields<'de>, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    let value = map.next_value::<Scalar<'de>>()?;
                    fields.push((key, value));
                }
                Ok(JsonFields { fields })
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// A string, borrowed when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Owned(s.to_owned())))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(n as f64))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(f64::from(u8::from(b))))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Scalar<'de>, S::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Scalar<'de>, M::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scalars_and_refuses_what_is_not_an_object() {
        let fields = JsonFields::parse(
            br#"{"a": 1.5, "b": "x\ty", "c": null, "d": true, "e": [1, {"f": 2}], "g": -3}"#,
        )
        .unwrap();
        assert!(matches!(fields.get("a"), Some(FieldValue::Number(n)) if n == 1.5));
        assert!(matches!(fields.get("b"), Some(FieldValue::Text("x\ty"))));
        assert!(matches!(fields.get("c"), Some(FieldValue::Null)));
        assert!(matches!(fields.get("d"), Some(FieldValue::Number(n)) if n == 1.0));
        assert!(matches!(
            fields.get("e"),
            Some(FieldValue::Text("<nested value>"))
        ));
        assert!(matches!(fields.get("g"), Some(FieldValue::Number(n)) if n == -3.0));
        assert!(fields.get("missing").is_none());

        assert_eq!(
            JsonFields::parse(b"[1, 2]").unwrap_err(),
            JsonError::NotAnObject
        );
        assert_eq!(JsonFields::parse(b"3").unwrap_err(), JsonError::NotAnObject);
        assert!(matches!(
            JsonFields::parse(b"{\"a\": "),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(
            JsonFields::parse(b"{} trailing"),
            Err(JsonError::Syntax(_))
        ));
    }
}
