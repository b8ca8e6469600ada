//! The JSON snapshot reader: `{"users": [...], "groups": [...]}`, streamed record by record.
//!
//! Users are deserialized straight into `SourceUser`s (no `serde_json::Value` tree of the whole
//! file), so a million-user export costs one copy of the data in memory.

use crate::SourceError;
use crate::integrity::{self, Problem};
use crate::utf8::Utf8Reader;
use scimsync_model::{Snapshot, SourceGroup, SourceId, SourceUser};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a JSON snapshot file. All or nothing: any error means no snapshot.
pub fn read_json(path: &Path) -> Result<Snapshot, SourceError> {
    let origin = path.display().to_string();
    let file = File::open(path).map_err(|source| SourceError::Io {
        origin: origin.clone(),
        source,
    })?;
    // The UTF-8 check sits under the buffer so it sees large chunks, not serde_json's byte reads.
    let mut reader = BufReader::with_capacity(1 << 18, Utf8Reader::new(file));
    let mut de = serde_json::Deserializer::from_reader(&mut reader);
    let mut found = None;
    let parsed = parse(&mut de, &mut found);
    match parsed {
        Ok(snapshot) => finish(snapshot, origin),
        Err(err) => {
            if let Some(bad) = reader.get_ref().bad() {
                return Err(SourceError::InvalidUtf8 {
                    origin,
                    offset: bad.offset,
                    at_end: bad.at_end,
                });
            }
            Err(convert(err, origin, found))
        }
    }
}

/// Parses a JSON snapshot held in memory; `origin` names it in errors.
pub fn parse_json(bytes: &[u8], origin: &str) -> Result<Snapshot, SourceError> {
    let origin = origin.to_owned();
    let (bytes, skipped) = match bytes.strip_prefix(BOM) {
        Some(rest) => (rest, BOM.len()),
        None => (bytes, 0),
    };
    let text = std::str::from_utf8(bytes).map_err(|e| SourceError::InvalidUtf8 {
        origin: origin.clone(),
        offset: (skipped + e.valid_up_to()) as u64,
        at_end: e.error_len().is_none(),
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let mut found = None;
    match parse(&mut de, &mut found) {
        Ok(snapshot) => finish(snapshot, origin),
        Err(err) => Err(convert(err, origin, found)),
    }
}

fn parse<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    found: &mut Option<Found>,
) -> Result<Snapshot, serde_json::Error> {
    let snapshot = DocSeed { found }.deserialize(&mut *de)?;
    de.end()?;
    Ok(snapshot)
}

fn finish(snapshot: Snapshot, origin: String) -> Result<Snapshot, SourceError> {
    match integrity::check(&snapshot) {
        Ok(()) => Ok(snapshot),
        Err(Problem::DuplicateUserId { first, second }) => Err(SourceError::DuplicateUserId {
            id: snapshot.users[second].id.0.clone(),
            origin,
            first: format!("users[{first}]"),
            second: format!("users[{second}]"),
        }),
        Err(Problem::DuplicateGroupId { first, second }) => Err(SourceError::DuplicateGroupId {
            id: snapshot.groups[second].id.0.clone(),
            origin,
            first: format!("groups[{first}]"),
            second: format!("groups[{second}]"),
        }),
        Err(Problem::UnknownMember { group, member }) => {
            let g = &snapshot.groups[group];
            Err(SourceError::UnknownMember {
                origin,
                group: g.id.0.clone(),
                name: g.name.clone(),
                member: g.members[member].0.clone(),
                at: format!("groups[{group}].members[{member}]"),
            })
        }
    }
}

fn convert(err: serde_json::Error, origin: String, found: Option<Found>) -> SourceError {
    let (line, column) = (err.line(), err.column());
    if let Some(found) = found {
        return SourceError::BadRecord {
            origin,
            record: format!("{} (near line {line}, column {column})", found.record),
            field: found.field,
            message: found.message,
        };
    }
    match err.classify() {
        serde_json::error::Category::Io => SourceError::Io {
            origin,
            source: err.into(),
        },
        serde_json::error::Category::Eof => SourceError::Truncated {
            origin,
            line,
            column,
        },
        serde_json::error::Category::Syntax | serde_json::error::Category::Data => {
            let full = err.to_string();
            let suffix = format!(" at line {line} column {column}");
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            SourceError::MalformedJson {
                origin,
                line,
                column,
                message,
            }
        }
    }
}

/// A record-level problem noticed while streaming. serde's error type cannot carry it, so the
/// visitor parks it here and fails with a plain message; `convert` prefers it.
#[derive(Debug)]
struct Found {
    record: String,
    field: String,
    message: String,
}

fn record_error<E: de::Error>(
    found: &mut Option<Found>,
    record: String,
    field: &str,
    message: String,
) -> E {
    let error = E::custom(format!("{record}: field `{field}`: {message}"));
    *found = Some(Found {
        record,
        field: field.to_owned(),
        message,
    });
    error
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required id: a string with something in it. Whitespace-only ids are refused, as they are
/// almost always an export bug and would be invisible in every message.
fn take_id<E: de::Error>(
    value: Value,
    found: &mut Option<Found>,
    record: impl Fn() -> String,
    field: &str,
) -> Result<String, E> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::String(s) if s.is_empty() => {
            Err(record_error(found, record(), field, "is empty".to_owned()))
        }
        Value::String(_) => Err(record_error(found, record(), field, "is blank".to_owned())),
        other => Err(record_error(
            found,
            record(),
            field,
            format!("is {}, not a string", describe(&other)),
        )),
    }
}

/// An attribute as the snapshot keeps it: a string; `None` for null and empty.
fn attr_text(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        nested @ (Value::Array(_) | Value::Object(_)) => Some(nested.to_string()),
    }
}

struct DocSeed<'a> {
    found: &'a mut Option<Found>,
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
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "users" if users.is_some() => {
                    return Err(de::Error::custom("the key `users` appears twice"));
                }
                "users" => {
                    users = Some(map.next_value_seed(UsersSeed {
                        found: &mut *self.found,
                    })?);
                }
                "groups" if groups.is_some() => {
                    return Err(de::Error::custom("the key `groups` appears twice"));
                }
                "groups" => {
                    groups = Some(map.next_value_seed(OptionalGroupsSeed {
                        found: &mut *self.found,
                    })?);
                }
                // Exports carry metadata (export time, tenant); it is not ours to judge.
                _ => {
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
        let mut users = Vec::new();
        let mut index = 0;
        while let Some(user) = seq.next_element_seed(UserSeed {
            found: &mut *self.found,
            index,
        })? {
            users.push(user);
            index += 1;
        }
        Ok(users)
    }
}

struct UserSeed<'a> {
    found: &'a mut Option<Found>,
    index: usize,
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
        let mut attrs = BTreeMap::new();
        // Keys whose value was null or empty: not kept, but a second occurrence is still a duplicate.
        let mut blank_keys: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            let seen = if key == "id" {
                id.is_some()
            } else {
                attrs.contains_key(&key) || blank_keys.contains(&key)
            };
            if seen {
                // Two values for one attribute: which one the directory means is a guess.
                return Err(record_error(
                    self.found,
                    record(),
                    &key,
                    "appears twice in the record".to_owned(),
                ));
            }
            if key == "id" {
                id = Some(take_id(value, self.found, record, "id")?);
            } else {
                match attr_text(value) {
                    Some(text) => {
                        attrs.insert(key, text);
                    }
                    None => blank_keys.push(key),
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
            attrs,
        })
    }
}

struct OptionalGroupsSeed<'a> {
    found: &'a mut Option<Found>,
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

struct GroupSeed<'a> {
    found: &'a mut Option<Found>,
    index: usize,
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
        while let Some(key) = map.next_key::<String>()? {
            let seen = match key.as_str() {
                "id" => id.is_some(),
                "name" => name.is_some(),
                "members" => members.is_some(),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if seen {
                return Err(record_error(
                    self.found,
                    record(),
                    &key,
                    "appears twice in the record".to_owned(),
                ));
            }
            match key.as_str() {
                "id" => id = Some(take_id(map.next_value()?, self.found, record, "id")?),
                "name" => match map.next_value::<Value>()? {
                    Value::String(s) => name = Some(s),
                    other => {
                        return Err(record_error(
                            self.found,
                            record(),
                            "name",
                            format!("is {}, not a string", describe(&other)),
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
        while let Some(value) = seq.next_element::<Value>()? {
            let at = members.len();
            let field = format!("members[{at}]");
            let id = take_id(value, self.found, || format!("groups[{group}]"), &field)?;
            members.push(SourceId(id));
        }
        Ok(members)
    }
}
