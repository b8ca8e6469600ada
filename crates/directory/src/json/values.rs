//! Field values: required strings and ids, and attributes as the snapshot keeps them.

use super::found::{Found, record_error};
use scimsync_model::CompactString;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::fmt;

/// A value where a string is required: the string, or what stood there instead, in words.
pub(super) enum Scalar {
    Text(String),
    Not(&'static str),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Not("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Not("null"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Not("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scalar, E> {
        Ok(Scalar::Not("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Scalar, E> {
        Ok(Scalar::Not("a number"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        // As `Value` holds it: a float with no JSON number is null.
        Ok(Scalar::Not(if Number::from_f64(v).is_some() {
            "a number"
        } else {
            "null"
        }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
        // Built as a `Value` and dropped, not skipped: `Value` refuses what skipping would let
        // through (a number out of range), and the error must stay what it was.
        Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(Scalar::Not("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Scalar::Not("an object"))
    }
}

/// A required id: a string with something in it. Whitespace-only ids are refused, as they are
/// almost always an export bug and would be invisible in every message.
pub(super) fn take_id<E: de::Error>(
    value: Scalar,
    found: &mut Option<Found>,
    record: impl Fn() -> String,
    field: impl Fn() -> String,
) -> Result<String, E> {
    // Both names are built only for an error: a group's members are millions of ids.
    match value {
        Scalar::Text(s) if !s.trim().is_empty() => Ok(s),
        Scalar::Text(s) if s.is_empty() => Err(record_error(
            found,
            record(),
            &field(),
            "is empty".to_owned(),
        )),
        Scalar::Text(_) => Err(record_error(
            found,
            record(),
            &field(),
            "is blank".to_owned(),
        )),
        Scalar::Not(kind) => Err(record_error(
            found,
            record(),
            &field(),
            format!("is {kind}, not a string"),
        )),
    }
}

/// An attribute as the snapshot keeps it: a string; `None` for null and empty. Booleans and
/// numbers are rendered as a `Value` renders them, nested arrays and objects as their JSON text.
pub(super) struct AttrSeed {
    /// The deepest nested array or object accepted in the value; deeper fails. Only the fast
    /// path sets one (`IN_PLACE_NESTING`), to give up where its recursion budget and the
    /// streaming parser's could disagree.
    pub(super) nesting: usize,
}

impl AttrSeed {
    fn nested<E: de::Error>(&self, value: Value) -> Result<Option<CompactString>, E> {
        if depth(&value) > self.nesting {
            return Err(E::custom("nested too deep to parse in place"));
        }
        Ok(Some(value.to_string().into()))
    }
}

/// How deep arrays and objects nest in `value`: 0 for a scalar.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl<'de> DeserializeSeed<'de> for AttrSeed {
    type Value = Option<CompactString>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttrSeed {
    type Value = Option<CompactString>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((!v.is_empty()).then(|| CompactString::new(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok((!v.is_empty()).then(|| CompactString::from(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(if v { "true" } else { "false" }.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(CompactString::from(Number::from(v).to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(CompactString::from(Number::from(v).to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // A float with no JSON number would be a null `Value`: absent.
        Ok(Number::from_f64(v).map(|n| n.to_string().into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.nested(Value::deserialize(SeqAccessDeserializer::new(seq))?)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.nested(Value::deserialize(MapAccessDeserializer::new(map))?)
    }
}
