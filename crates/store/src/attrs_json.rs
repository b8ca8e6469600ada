//! Decoding the `attrs` JSON column fast. The model's `AttrValue` is `#[serde(untagged)]`, which
//! buffers every value and tries each variant in turn: about 2 µs a link, the larger part of
//! loading a million links. This visitor reads the same JSON directly. Anything it does not
//! recognise goes to the model's own deserializer, so the model stays the definition of the
//! format.

use scimsync_model::{AttrValue, Attrs, SourceId};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

pub(crate) fn decode(json: &str) -> Result<Attrs, serde_json::Error> {
    match serde_json::from_str::<FastAttrs>(json) {
        Ok(FastAttrs(attrs)) => Ok(attrs),
        Err(_) => serde_json::from_str(json),
    }
}

struct FastAttrs(Attrs);

impl<'de> de::Deserialize<'de> for FastAttrs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AttrsVisitor)
    }
}

struct AttrsVisitor;

impl<'de> Visitor<'de> for AttrsVisitor {
    type Value = FastAttrs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of attribute path to value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastAttrs, A::Error> {
        let mut attrs = Attrs::new();
        while let Some(path) = map.next_key::<String>()? {
            let FastValue(value) = map.next_value()?;
            attrs.insert(path, value);
        }
        Ok(FastAttrs(attrs))
    }
}

struct FastValue(AttrValue);

impl<'de> de::Deserialize<'de> for FastValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = FastValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or {\"user\": source id}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<FastValue, E> {
        Ok(FastValue(AttrValue::Text(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<FastValue, E> {
        Ok(FastValue(AttrValue::Text(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastValue, A::Error> {
        let mut user = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "user" {
                user = Some(map.next_value::<String>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let user = user.ok_or_else(|| de::Error::missing_field("user"))?;
        Ok(FastValue(AttrValue::Ref {
            user: SourceId(user),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Attrs {
        let mut attrs = Attrs::new();
        attrs.insert(
            "displayName".into(),
            AttrValue::text("Zoë \"Z\" O'Neil\n\u{1F680}\\"),
        );
        attrs.insert("title".into(), AttrValue::text(""));
        attrs.insert(
            "manager.value".into(),
            AttrValue::Ref {
                user: SourceId::new("u\"9"),
            },
        );
        attrs
    }

    #[test]
    fn decodes_what_the_model_encodes() {
        let attrs = sample();
        let json = serde_json::to_string(&attrs).unwrap();
        let fast = serde_json::from_str::<FastAttrs>(&json).unwrap().0;
        assert_eq!(fast, attrs);
        assert_eq!(decode(&json).unwrap(), attrs);
        assert_eq!(decode("{}").unwrap(), Attrs::new());
    }

    #[test]
    fn agrees_with_the_model_on_odd_input() {
        for json in [
            r#"{"m": {"user": "u1", "extra": [1, 2]}}"#,
            r#"{"m": {"other": "u1"}}"#,
            r#"{"m": 5}"#,
            r#"[]"#,
        ] {
            let model = serde_json::from_str::<Attrs>(json).ok();
            assert_eq!(decode(json).ok(), model, "{json}");
        }
    }
}
