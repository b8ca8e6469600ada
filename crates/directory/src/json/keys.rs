//! Object keys: the document's, a group record's, and a user record's interned attribute names.

use scimsync_model::{AttrKey, CompactString, KeyInterner, SourceAttrs};
use serde::de::{self, Deserialize, DeserializeSeed, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// Attribute names for one read: one shared allocation per distinct name.
#[derive(Default)]
pub(super) struct Keys {
    interner: KeyInterner,
    /// The previous record's attribute names by position. An export lists the same names in the
    /// same order in every record, so this answers most look-ups without hashing.
    pub(super) last: Vec<AttrKey>,
    /// The names of the last record sorted, as they arrived (interned: compared by address),
    /// and the order that sorts them: the next record with the same names in the same order
    /// is sorted without comparing a string.
    arrived: Vec<usize>,
    sorting: Vec<usize>,
}

impl Keys {
    fn get(&mut self, slot: usize, name: &str) -> AttrKey {
        if let Some(key) = self.last.get(slot).filter(|key| key.as_str() == name) {
            return key.clone();
        }
        let key = self.interner.intern(name);
        match self.last.get_mut(slot) {
            Some(last) => *last = key.clone(),
            None => self.last.push(key.clone()),
        }
        key
    }

    /// A record's attributes (names interned here, each once) as `SourceAttrs`.
    pub(super) fn sorted(&mut self, attrs: Vec<(AttrKey, CompactString)>) -> SourceAttrs {
        let same = attrs.len() == self.arrived.len()
            && attrs
                .iter()
                .zip(&self.arrived)
                .all(|((key, _), seen)| address(key) == *seen);
        if !same {
            self.arrived.clear();
            self.arrived
                .extend(attrs.iter().map(|(key, _)| address(key)));
            self.sorting.clear();
            self.sorting.extend(0..attrs.len());
            self.sorting.sort_by(|&a, &b| attrs[a].0.cmp(&attrs[b].0));
        }
        // Sized exactly: a million records are held at once.
        let mut sorted = Vec::with_capacity(attrs.len());
        let mut slots: Vec<Option<(AttrKey, CompactString)>> =
            attrs.into_iter().map(Some).collect();
        sorted.extend(
            self.sorting
                .iter()
                .filter_map(|&at| slots.get_mut(at).and_then(Option::take)),
        );
        SourceAttrs::from_sorted_unique(sorted)
    }
}

/// Where an interned name lives: equal for the same name within one read.
fn address(key: &AttrKey) -> usize {
    key.as_str().as_ptr() as usize
}

/// Deserializes an object key into `Self` without allocating it.
trait KeyOf: Sized {
    fn of(name: &str) -> Self;
}

struct KeyVisitor<K>(PhantomData<K>);

impl<'de, K: KeyOf> Visitor<'de> for KeyVisitor<K> {
    type Value = K;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
        Ok(K::of(v))
    }
}

/// The document's keys.
pub(super) enum DocKey {
    Users,
    Groups,
    Other,
}

impl KeyOf for DocKey {
    fn of(name: &str) -> Self {
        match name {
            "users" => DocKey::Users,
            "groups" => DocKey::Groups,
            _ => DocKey::Other,
        }
    }
}

impl<'de> Deserialize<'de> for DocKey {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor(PhantomData))
    }
}

/// A group record's keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum GroupKey {
    Id,
    Name,
    Members,
    Other,
}

impl KeyOf for GroupKey {
    fn of(name: &str) -> Self {
        match name {
            "id" => GroupKey::Id,
            "name" => GroupKey::Name,
            "members" => GroupKey::Members,
            _ => GroupKey::Other,
        }
    }
}

impl<'de> Deserialize<'de> for GroupKey {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor(PhantomData))
    }
}

/// A user record's key: its id, or an interned attribute name.
pub(super) enum UserKey {
    Id,
    Attr(AttrKey),
}

pub(super) struct UserKeySeed<'a> {
    pub(super) keys: &'a mut Keys,
    /// How many attribute names the record has had so far.
    pub(super) slot: usize,
}

impl<'de> DeserializeSeed<'de> for UserKeySeed<'_> {
    type Value = UserKey;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<UserKey, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for UserKeySeed<'_> {
    type Value = UserKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<UserKey, E> {
        Ok(if v == "id" {
            UserKey::Id
        } else {
            UserKey::Attr(self.keys.get(self.slot, v))
        })
    }
}
