//! A directory record's attributes: a handful of short strings per user, a million users.
//!
//! Kept as one sorted vector with values inline where short (`CompactString`): a record costs
//! one allocation instead of a tree's nodes and a string each, a lookup is a scan of a dozen
//! entries in one block, and dropping a record frees one block. Reading and mapping a million-user
//! snapshot spends most of its time building, searching and dropping these.

use crate::AttrKey;
use compact_str::CompactString;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Attribute name → value, sorted by name, one value a name. Serialized as a JSON object in
/// name order, as the `BTreeMap` it replaces was.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SourceAttrs(Vec<(AttrKey, CompactString)>);

impl SourceAttrs {
    pub fn new() -> Self {
        SourceAttrs(Vec::new())
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(key, _)| key.as_str().cmp(name))
    }

    /// Pairs already sorted by name, each name once: a reader that knows the order (the same
    /// names as the previous record, in the same order) skips the sort. Debug builds check.
    pub fn from_sorted_unique(pairs: Vec<(AttrKey, CompactString)>) -> Self {
        debug_assert!(
            pairs.windows(2).all(|w| w[0].0 < w[1].0),
            "not sorted and unique"
        );
        SourceAttrs(pairs)
    }

    /// The value of `name`, empty or not.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).map(|at| self.0[at].1.as_str())
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Where `name` is: a scan, front to back through one block. A record holds a dozen names
    /// of mostly different lengths (string equality compares lengths before bytes), and
    /// mapping asks for dozens a record: cheaper than a binary search's dependent string
    /// comparisons.
    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(key, _)| key.as_str() == name)
    }

    /// Sets `name`, replacing any value it had.
    pub fn insert(&mut self, name: AttrKey, value: impl Into<CompactString>) {
        let value = value.into();
        match self.find(name.as_str()) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<CompactString> {
        self.find(name).ok().map(|at| self.0.remove(at).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&AttrKey, &str)> {
        self.0.iter().map(|(key, value)| (key, value.as_str()))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &AttrKey> {
        self.0.iter().map(|(key, _)| key)
    }
}

/// Later pairs win over earlier ones with the same name, as inserting into a map would.
impl<V: Into<CompactString>> FromIterator<(AttrKey, V)> for SourceAttrs {
    fn from_iter<I: IntoIterator<Item = (AttrKey, V)>>(pairs: I) -> Self {
        let mut entries: Vec<(AttrKey, CompactString)> =
            pairs.into_iter().map(|(k, v)| (k, v.into())).collect();
        // Stable, so equal names stay in arrival order; in place, as readers call this once a
        // record.
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        SourceAttrs(entries)
    }
}

impl<'a> IntoIterator for &'a SourceAttrs {
    type Item = (&'a AttrKey, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (AttrKey, CompactString)>,
        fn(&'a (AttrKey, CompactString)) -> (&'a AttrKey, &'a str),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(key, value)| (key, value.as_str()))
    }
}

impl std::ops::Index<&str> for SourceAttrs {
    type Output = str;
    fn index(&self, name: &str) -> &str {
        match self.get(name) {
            Some(value) => value,
            None => panic!("no source attribute {name:?}"),
        }
    }
}

impl fmt::Debug for SourceAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for SourceAttrs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key.as_str(), value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SourceAttrs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = SourceAttrs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attribute names to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SourceAttrs, A::Error> {
                let mut pairs: Vec<(AttrKey, CompactString)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((key, value)) = map.next_entry::<AttrKey, CompactString>()? {
                    pairs.push((key, value));
                }
                Ok(pairs.into_iter().collect())
            }
        }
        d.deserialize_map(Pairs)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(name: &str) -> AttrKey {
        AttrKey::from(name)
    }

    #[test]
    fn collects_sorted_and_the_last_value_of_a_name_wins() {
        let attrs: SourceAttrs = [("b", "1"), ("a", "2"), ("b", "3")]
            .into_iter()
            .map(|(k, v)| (key(k), v))
            .collect();
        assert_eq!(
            attrs.iter().collect::<Vec<_>>(),
            [(&key("a"), "2"), (&key("b"), "3")]
        );
        assert_eq!(attrs.get("b"), Some("3"));
        assert_eq!(attrs.get("c"), None);
    }

    #[test]
    fn insert_and_remove_keep_the_order() {
        let mut attrs = SourceAttrs::new();
        for name in ["m", "c", "x", "a", "c"] {
            attrs.insert(key(name), name.to_uppercase());
        }
        assert_eq!(
            attrs.keys().map(AttrKey::as_str).collect::<Vec<_>>(),
            ["a", "c", "m", "x"]
        );
        assert_eq!(attrs.remove("m").as_deref(), Some("M"));
        assert_eq!(attrs.remove("m"), None);
        assert_eq!(attrs.len(), 3);
        assert_eq!(&attrs["x"], "X");
    }

    #[test]
    fn serializes_as_the_sorted_map_it_replaced() {
        let attrs: SourceAttrs = [("z", "1"), ("a", "\"2\"")]
            .into_iter()
            .map(|(k, v)| (key(k), v))
            .collect();
        let json = serde_json::to_string(&attrs).unwrap();
        let map: std::collections::BTreeMap<String, String> = [("z", "1"), ("a", "\"2\"")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(json, serde_json::to_string(&map).unwrap());
        let back: SourceAttrs = serde_json::from_str(&json).unwrap();
        assert_eq!(back, attrs);
    }
}
