//! Decoding the `attrs` JSON column fast. The model's `AttrValue` is `#[serde(untagged)]`, which
//! buffers every value and tries each variant in turn: about 2 µs a link, the larger part of
//! loading a million links. This visitor reads the same JSON directly. Anything it does not
//! recognise goes to the model's own deserializer, so the model stays the definition of the
//! format.

use scimsync_model::{AttrValue, Attrs, KeyInterner, SourceId};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Decodes one link's attributes; `paths` shares path allocations across the links of a load.
pub(crate) fn decode(json: &str, paths: &mut KeyInterner) -> Result<Attrs, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    match AttrsSeed(paths)
        .deserialize(&mut de)
        .and_then(|attrs| de.end().map(|()| attrs))
    {
        Ok(attrs) => Ok(attrs),
        Err(_) => serde_json::from_str(json),
    }
}

struct AttrsSeed<'p>(&'p mut KeyInterner);

impl<'de> DeserializeSeed<'de> for AttrsSeed<'_> {
    type Value = Attrs;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Attrs, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AttrsSeed<'_> {
    type Value = Attrs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of attribute path to value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attrs, A::Error> {
        let mut attrs = Attrs::new();
        while let Some(path) = map.next_key::<Cow<'de, str>>()? {
            let FastValue(value) = map.next_value()?;
            attrs.insert(self.0.intern(&path), value);
        }
        Ok(attrs)
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
        Ok(FastValue(AttrValue::Text(v.into())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<FastValue, E> {
        Ok(FastValue(AttrValue::Text(v.into())))
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
        let mut paths = KeyInterner::default();
        let mut de = serde_json::Deserializer::from_str(&json);
        let fast = AttrsSeed(&mut paths).deserialize(&mut de).unwrap();
        assert_eq!(fast, attrs);
        assert_eq!(decode(&json, &mut paths).unwrap(), attrs);
        assert_eq!(decode("{}", &mut paths).unwrap(), Attrs::new());
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
            let decoded = decode(json, &mut KeyInterner::default()).ok();
            assert_eq!(decoded, model, "{json}");
        }
    }
}
