//! Directory groups → desired groups: which groups are synced (`[groups] sync`, else the
//! `[scope] groups`), and their members among the users being provisioned.

use crate::{Mapped, ScopeConfig};
use foldhash::HashSet;
use rayon::prelude::*;
use scimsync_model::{DesiredGroup, NameMatch, Snapshot, SourceGroup, SourceId};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// `[groups]`: which directory groups become target groups, and how names match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsConfig {
    /// Directory groups to sync, by exact name or by id. Absent: the `[scope] groups`. Neither
    /// set: no group is synced (a team per directory group is rarely what an admin wants).
    #[serde(default)]
    pub sync: Option<Vec<GroupSelector>>,
    /// How a directory group's name matches a target group's displayName at first link.
    #[serde(default, rename = "match")]
    pub name_match: NameMatch,
}

/// One `[groups] sync` entry: a directory group by its exact name (`"Engineering"`), or by its
/// directory id (`{ id = "…" }`), which keeps selecting the group when the directory renames
/// it, so the rename reaches the target as a rename.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum GroupSelector {
    Name(String),
    Id { id: String },
}

impl GroupSelector {
    pub fn selects(&self, group: &SourceGroup) -> bool {
        match self {
            GroupSelector::Name(name) => &group.name == name,
            GroupSelector::Id { id } => group.id.as_str() == id,
        }
    }
}

impl From<String> for GroupSelector {
    fn from(name: String) -> Self {
        GroupSelector::Name(name)
    }
}

impl fmt::Display for GroupSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupSelector::Name(name) => write!(f, "{name:?}"),
            GroupSelector::Id { id } => write!(f, "{{ id = {id:?} }}"),
        }
    }
}

impl<'de> Deserialize<'de> for GroupSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SelectorVisitor;
        impl<'de> Visitor<'de> for SelectorVisitor {
            type Value = GroupSelector;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a directory group name, or { id = \"…\" } for a group by its id")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GroupSelector, E> {
                Ok(GroupSelector::Name(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GroupSelector, A::Error> {
                let mut id = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "id" if id.is_none() => id = Some(map.next_value::<String>()?),
                        "id" => return Err(de::Error::duplicate_field("id")),
                        other => return Err(de::Error::unknown_field(other, &["id"])),
                    }
                }
                id.map(|id| GroupSelector::Id { id })
                    .ok_or_else(|| de::Error::missing_field("id"))
            }
        }
        d.deserialize_any(SelectorVisitor)
    }
}

/// Which directory groups are synced: `[groups] sync`, else the `[scope] groups` by name.
/// Sets, so ten thousand selectors over ten thousand groups stay one lookup each.
struct Synced<'a> {
    names: HashSet<&'a str>,
    ids: HashSet<&'a str>,
}

impl<'a> Synced<'a> {
    fn of(config: &'a GroupsConfig, scope: &'a ScopeConfig) -> Option<Synced<'a>> {
        let mut synced = Synced {
            names: HashSet::default(),
            ids: HashSet::default(),
        };
        match (&config.sync, &scope.groups) {
            (Some(sync), _) => {
                for selector in sync {
                    match selector {
                        GroupSelector::Name(name) => synced.names.insert(name.as_str()),
                        GroupSelector::Id { id } => synced.ids.insert(id.as_str()),
                    };
                }
            }
            (None, Some(names)) => synced.names.extend(names.iter().map(String::as_str)),
            (None, None) => return None,
        }
        Some(synced)
    }

    fn selects(&self, group: &SourceGroup) -> bool {
        self.names.contains(group.name.as_str()) || self.ids.contains(group.id.as_str())
    }
}

/// The synced directory groups, each with its members that are provisioned and active (adding a
/// deactivated user to a Miro team reactivates them, so suspended users are never added).
/// Sorted by source id; members sorted and unique.
pub fn desired_groups(
    snapshot: &Snapshot,
    config: &GroupsConfig,
    scope: &ScopeConfig,
    mapped: &Mapped,
) -> Vec<DesiredGroup> {
    let Some(synced) = Synced::of(config, scope) else {
        return Vec::new();
    };
    // Sized up front: grown by doubling, a million ids would be rehashed over and over.
    let mut active: HashSet<&str> =
        HashSet::with_capacity_and_hasher(mapped.desired.len(), Default::default());
    active.extend(
        mapped
            .desired
            .iter()
            .filter(|u| u.active)
            .map(|u| u.source_id.as_str()),
    );
    // Each group on its own: ten thousand teams of a million members spread over the cores.
    let mut groups: Vec<DesiredGroup> = snapshot
        .groups
        .par_iter()
        .filter(|g| synced.selects(g))
        .map(|g| {
            let mut members: Vec<SourceId> = g
                .members
                .iter()
                .filter(|m| active.contains(m.as_str()))
                .cloned()
                .collect();
            members.sort_unstable();
            members.dedup();
            DesiredGroup {
                source_id: g.id.clone(),
                display_name: g.name.clone(),
                members,
            }
        })
        .collect();
    groups.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    groups
}
