//! The serde seeds and visitors of the document, its users and its groups, shared by the
//! streaming parser and the fast path.

use super::found::{Found, record_error};
use super::keys::{DocKey, GroupKey, Keys, UserKey, UserKeySeed};
use super::values::{AttrSeed, Scalar, take_id};
use scimsync_model::{AttrKey, CompactString, Snapshot, SourceGroup, SourceId, SourceUser};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

pub(super) struct DocSeed<'a> {
    pub(super) found: &'a mut Option<Found>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_> {
    type Value = Snapshot;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Snapshot, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_> {
    type Value = Snapshot;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a snapshot object {\"users\": [...], \"groups\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Snapshot, A::Error> {
        let mut users = None;
        let mut groups = None;
        while let Some(key) = map.next_key::<DocKey>()? {
            match key {
                DocKey::Users if users.is_some() => {
                    return Err(de::Error::custom("the key `users` appears twice"));
                }
                DocKey::Users => {
                    users = Some(map.next_value_seed(UsersSeed {
                        found: &mut *self.found,
                    })?);
                }
                DocKey::Groups if groups.is_some() => {
                    return Err(de::Error::custom("the key `groups` appears twice"));
                }
                DocKey::Groups => {
                    groups = Some(map.next_value_seed(OptionalGroupsSeed {
                        found: &mut *self.found,
                    })?);
                }
                // Exports carry metadata (export time, tenant); it is not ours to judge.
                DocKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let users = users.ok_or_else(|| de::Error::missing_field("users"))?;
        Ok(Snapshot {
            users,
            groups: groups.unwrap_or_default(),
        })
    }
}

struct UsersSeed<'a> {
    found: &'a mut Option<Found>,
}

impl<'de> DeserializeSeed<'de> for UsersSeed<'_> {
    type Value = Vec<SourceUser>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for UsersSeed<'_> {
    type Value = Vec<SourceUser>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of user objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut keys = Keys::default();
        let mut users = Vec::new();
        let mut index = 0;
        while let Some(user) = seq.next_element_seed(UserSeed {
            found: &mut *self.found,
            keys: &mut keys,
            index,
            nesting: usize::MAX,
        })? {
            users.push(user);
            index += 1;
        }
        Ok(users)
    }
}

pub(super) struct UserSeed<'a> {
    pub(super) found: &'a mut Option<Found>,
    pub(super) keys: &'a mut Keys,
    pub(super) index: usize,
    /// See `AttrSeed::nesting`.
    pub(super) nesting: usize,
}

impl<'de> DeserializeSeed<'de> for UserSeed<'_> {
    type Value = SourceUser;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<SourceUser, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for UserSeed<'_> {
    type Value = SourceUser;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "users[{}] to be an object", self.index)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SourceUser, A::Error> {
        let index = self.index;
        let record = || format!("users[{index}]");
        let mut id = None;
        // Collected and turned into the map at the end: one sort of a dozen entries is cheaper
        // than a tree insert for each, and the repeat check below compares interned pointers.
        let mut attrs: Vec<(AttrKey, CompactString)> = Vec::with_capacity(self.keys.last.len());
        // Keys whose value was null or empty: not kept, but a second occurrence is still a duplicate.
        let mut blank_keys: Vec<AttrKey> = Vec::new();
        loop {
            let slot = attrs.len() + blank_keys.len();
            let Some(key) = map.next_key_seed(UserKeySeed {
                keys: &mut *self.keys,
                slot,
            })?
            else {
                break;
            };
            match key {
                UserKey::Id => {
                    let value = map.next_value::<Scalar>()?;
                    if id.is_some() {
                        // Two values for one attribute: which one the directory means is a guess.
                        return Err(record_error(
                            self.found,
                            record(),
                            "id",
                            "appears twice in the record".to_owned(),
                        ));
                    }
                    id = Some(take_id(value, self.found, record, || "id".to_owned())?);
                }
                UserKey::Attr(key) => {
                    let value = map.next_value_seed(AttrSeed {
                        nesting: self.nesting,
                    })?;
                    // Keys of one read are interned: the same name is the same allocation.
                    let same = |seen: &AttrKey| std::ptr::eq(seen.as_str(), key.as_str());
                    if attrs.iter().any(|(seen, _)| same(seen)) || blank_keys.iter().any(same) {
                        return Err(record_error(
                            self.found,
                            record(),
                            &key,
                            "appears twice in the record".to_owned(),
                        ));
                    }
                    match value {
                        Some(text) => attrs.push((key, text)),
                        None => blank_keys.push(key),
                    }
                }
            }
        }
        let Some(id) = id else {
            return Err(record_error(
                self.found,
                record(),
                "id",
                "is missing".to_owned(),
            ));
        };
        Ok(SourceUser {
            id: SourceId(id),
            attrs: self.keys.sorted(attrs),
        })
    }
}

pub(super) struct OptionalGroupsSeed<'a> {
    pub(super) found: &'a mut Option<Found>,
}

impl<'de> DeserializeSeed<'de> for OptionalGroupsSeed<'_> {
    type Value = Vec<SourceGroup>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalGroupsSeed<'_> {
    type Value = Vec<SourceGroup>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of group objects")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut groups = Vec::new();
        let mut index = 0;
        while let Some(group) = seq.next_element_seed(GroupSeed {
            found: &mut *self.found,
            index,
        })? {
            groups.push(group);
            index += 1;
        }
        Ok(groups)
    }
}

pub(super) struct GroupSeed<'a> {
    pub(super) found: &'a mut Option<Found>,
    pub(super) index: usize,
}

impl<'de> DeserializeSeed<'de> for GroupSeed<'_> {
    type Value = SourceGroup;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<SourceGroup, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for GroupSeed<'_> {
    type Value = SourceGroup;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "groups[{}] to be an object", self.index)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SourceGroup, A::Error> {
        let index = self.index;
        let record = || format!("groups[{index}]");
        let mut id = None;
        let mut name = None;
        let mut members = None;
        while let Some(key) = map.next_key::<GroupKey>()? {
            let (seen, field) = match key {
                GroupKey::Id => (id.is_some(), "id"),
                GroupKey::Name => (name.is_some(), "name"),
                GroupKey::Members => (members.is_some(), "members"),
                GroupKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if seen {
                return Err(record_error(
                    self.found,
                    record(),
                    field,
                    "appears twice in the record".to_owned(),
                ));
            }
            match key {
                GroupKey::Id => {
                    id = Some(take_id(map.next_value()?, self.found, record, || {
                        "id".to_owned()
                    })?);
                }
                GroupKey::Name => match map.next_value::<Scalar>()? {
                    Scalar::Text(s) => name = Some(s),
                    Scalar::Not(kind) => {
                        return Err(record_error(
                            self.found,
                            record(),
                            "name",
                            format!("is {kind}, not a string"),
                        ));
                    }
                },
                _ => {
                    members = Some(map.next_value_seed(MembersSeed {
                        found: &mut *self.found,
                        group: index,
                    })?);
                }
            }
        }
        let Some(id) = id else {
            return Err(record_error(
                self.found,
                record(),
                "id",
                "is missing".to_owned(),
            ));
        };
        let Some(name) = name else {
            return Err(record_error(
                self.found,
                record(),
                "name",
                "is missing".to_owned(),
            ));
        };
        Ok(SourceGroup {
            id: SourceId(id),
            name,
            members: members.unwrap_or_default(),
            unresolved: Vec::new(),
        })
    }
}

struct MembersSeed<'a> {
    found: &'a mut Option<Found>,
    group: usize,
}

impl<'de> DeserializeSeed<'de> for MembersSeed<'_> {
    type Value = Vec<SourceId>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for MembersSeed<'_> {
    type Value = Vec<SourceId>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "groups[{}].members to be an array of user ids",
            self.group
        )
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let group = self.group;
        let mut members = Vec::new();
        while let Some(value) = seq.next_element::<Scalar>()? {
            let at = members.len();
            let id = take_id(
                value,
                self.found,
                || format!("groups[{group}]"),
                || format!("members[{at}]"),
            )?;
            members.push(SourceId(id));
        }
        Ok(members)
    }
}
