//! What sync.toml names that the directory does not have, and group members the directory
//! cannot resolve: each silently changes who is provisioned (a one-letter typo in `[scope]
//! groups` puts nobody in scope), so each is reported, and the deletion guard holds the
//! losses it could cause.

use crate::{GroupSelector, GroupsConfig, RolesConfig, ScopeConfig};
use foldhash::HashSet;
use scimsync_model::{SourceGroup, SourceId};
use serde::Serialize;
use std::fmt;

/// The sync.toml key a group name comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ConfigKey {
    #[serde(rename = "scope.groups")]
    ScopeGroups,
    #[serde(rename = "roles.admin_groups")]
    AdminGroups,
    #[serde(rename = "roles.admin_roles")]
    AdminRoles,
    #[serde(rename = "groups.sync")]
    GroupsSync,
}

impl ConfigKey {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKey::ScopeGroups => "[scope] groups",
            ConfigKey::AdminGroups => "[roles] admin_groups",
            ConfigKey::AdminRoles => "[roles.admin_roles]",
            ConfigKey::GroupsSync => "[groups] sync",
        }
    }
}

/// A sync.toml entry that matches no directory group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnmatchedName {
    pub key: ConfigKey,
    /// The entry as written: a name, or `{ id = "…" }`.
    pub entry: String,
    /// A directory group whose name differs only in case or surrounding spaces: the likely
    /// intended one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near: Option<String>,
}

impl fmt::Display for UnmatchedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entry {} matches no directory group",
            self.key.as_str(),
            self.entry
        )?;
        if let Some(near) = &self.near {
            write!(f, " (did you mean {near:?}? names match exactly)")?;
        }
        Ok(())
    }
}

/// A member of a group that sync.toml uses (scope, admin or synced) that resolves to no user
/// of the directory read: an LDAP member DN or memberUid with no user entry behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnresolvedMember {
    pub group_id: SourceId,
    pub group_name: String,
    /// The member value as the directory holds it.
    pub value: String,
}

impl fmt::Display for UnresolvedMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "group {:?} [{}]: member {:?} resolves to no directory user",
            self.group_name, self.group_id, self.value
        )
    }
}

/// What the directory's groups say about sync.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Findings {
    pub unmatched: Vec<UnmatchedName>,
    pub unresolved: Vec<UnresolvedMember>,
}

impl Findings {
    /// Whether an entry of `key` matches nothing.
    pub fn unmatched_in(&self, key: ConfigKey) -> bool {
        self.unmatched.iter().any(|u| u.key == key)
    }
}

/// The findings for the directory's `groups` under this configuration.
pub fn findings(
    groups: &[SourceGroup],
    scope: &ScopeConfig,
    roles: &RolesConfig,
    sync: &GroupsConfig,
) -> Findings {
    let names: HashSet<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let ids: HashSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let near = |name: &str| {
        let folded = name.trim().to_lowercase();
        groups
            .iter()
            .find(|g| g.name.trim().to_lowercase() == folded)
            .map(|g| g.name.clone())
    };
    let by_name = |key: ConfigKey, list: &[String]| -> Vec<UnmatchedName> {
        list.iter()
            .filter(|name| !names.contains(name.as_str()))
            .map(|name| UnmatchedName {
                key,
                entry: format!("{name:?}"),
                near: near(name),
            })
            .collect()
    };
    let mut unmatched = Vec::new();
    unmatched.extend(by_name(
        ConfigKey::ScopeGroups,
        scope.groups.as_deref().unwrap_or_default(),
    ));
    unmatched.extend(by_name(ConfigKey::AdminGroups, &roles.admin_groups));
    let role_groups: Vec<String> = roles.admin_roles.keys().cloned().collect();
    unmatched.extend(by_name(ConfigKey::AdminRoles, &role_groups));
    for selector in sync.sync.iter().flatten() {
        let found = match selector {
            GroupSelector::Name(name) => names.contains(name.as_str()),
            GroupSelector::Id { id } => ids.contains(id.as_str()),
        };
        if !found {
            // Only for an entry that matches nothing: `near` scans every directory group, and
            // a list of ten thousand synced teams must not cost ten thousand scans a cycle.
            let near = match selector {
                GroupSelector::Name(name) => near(name),
                GroupSelector::Id { .. } => None,
            };
            unmatched.push(UnmatchedName {
                key: ConfigKey::GroupsSync,
                entry: selector.to_string(),
                near,
            });
        }
    }

    // Only the groups sync.toml uses: a stray member of a group nobody reads changes nothing.
    let used = |g: &SourceGroup| {
        scope.groups.iter().flatten().any(|n| n == &g.name)
            || roles.admin_groups.iter().any(|n| n == &g.name)
            || roles.admin_roles.contains_key(&g.name)
            || match &sync.sync {
                Some(selectors) => selectors.iter().any(|s| s.selects(g)),
                None => false,
            }
    };
    let unresolved = groups
        .iter()
        .filter(|g| !g.unresolved.is_empty() && used(g))
        .flat_map(|g| {
            g.unresolved.iter().map(|value| UnresolvedMember {
                group_id: g.id.clone(),
                group_name: g.name.clone(),
                value: value.clone(),
            })
        })
        .collect();
    Findings {
        unmatched,
        unresolved,
    }
}
