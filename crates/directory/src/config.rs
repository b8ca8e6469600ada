//! The `[scope]`, `[roles]` and `[mapping]` sections of sync.toml.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `[scope]`: which directory users are provisioned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    /// Users who are members of a group whose `name` equals one of these, exactly
    /// (case-sensitive, no trimming: directory group names are unique as written). Absent: every
    /// user. Members are direct members only: groups do not nest. An empty list puts nobody in
    /// scope (every user unassigned; the deletion guard is what stops that becoming a purge).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

/// `[roles]`: the target organisation role of each provisioned user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    /// Members of a group with one of these names (matched exactly, like scope groups) are
    /// admins; everyone else is a plain user.
    #[serde(default)]
    pub admin_groups: Vec<String>,
}

/// Which directory's attribute names the mapping starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// JumpCloud's names: `email`, `firstname`, `lastname`, `state`, … (SPEC.md).
    #[default]
    Jumpcloud,
    /// Microsoft Entra's names: `userPrincipalName`, `givenName`, `surname`, `accountEnabled`, …
    Entra,
}

impl Preset {
    /// The source attributes the email is read from, in order of preference.
    pub fn email_attrs(self) -> &'static [&'static str] {
        match self {
            Preset::Jumpcloud => &["email"],
            Preset::Entra => &["userPrincipalName", "mail"],
        }
    }
}

/// `[mapping]`: a preset, and overrides `"scim.path" = "source attribute"` (or `"=literal"` for
/// a constant, or `""` to stop sending the path). TOML dotted keys (`name.givenName = "x"`) are
/// read as the dotted path they spell. Checked by [`crate::Mapping::compile`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MappingConfig {
    pub preset: Preset,
    #[serde(flatten)]
    pub overrides: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for MappingConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MappingVisitor)
    }
}

struct MappingVisitor;

impl<'de> Visitor<'de> for MappingVisitor {
    type Value = MappingConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [mapping] table: preset = \"jumpcloud\" | \"entra\", and \"scim.path\" = \"source attribute\" entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MappingConfig, A::Error> {
        let mut config = MappingConfig::default();
        let mut preset_seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "preset" {
                if preset_seen {
                    return Err(de::Error::duplicate_field("preset"));
                }
                preset_seen = true;
                config.preset = map.next_value()?;
                continue;
            }
            let entry: Entry = map.next_value()?;
            entry.flatten_into(key, &mut config.overrides)?;
        }
        Ok(config)
    }
}

/// A mapping value, or a table of them when TOML split a dotted key.
enum Entry {
    Text(String),
    Table(Vec<(String, Entry)>),
}

impl Entry {
    fn flatten_into<E: de::Error>(
        self,
        path: String,
        out: &mut BTreeMap<String, String>,
    ) -> Result<(), E> {
        match self {
            Entry::Text(text) => {
                if out.contains_key(&path) {
                    return Err(E::custom(format!("\"{path}\" is mapped twice")));
                }
                out.insert(path, text);
                Ok(())
            }
            Entry::Table(entries) => {
                for (key, entry) in entries {
                    entry.flatten_into(format!("{path}.{key}"), out)?;
                }
                Ok(())
            }
        }
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a source attribute name or \"=literal\" (a string)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
        Ok(Entry::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Entry, E> {
        Ok(Entry::Text(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, entry)) = map.next_entry::<String, Entry>()? {
            entries.push((key, entry));
        }
        Ok(Entry::Table(entries))
    }
}
