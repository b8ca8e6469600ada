//! Directory groups → desired groups: which groups are synced (`[groups] sync`, else the
//! `[scope] groups`), and their members among the users being provisioned.

use crate::{Mapped, ScopeConfig};
use foldhash::HashSet;
use rayon::prelude::*;
use scimsync_model::{DesiredGroup, NameMatch, Snapshot, SourceId};
use serde::{Deserialize, Serialize};

/// `[groups]`: which directory groups become target groups, and how names match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsConfig {
    /// Directory group names (exact) to sync. Absent: the `[scope] groups`. Neither set: no
    /// group is synced (a team per directory group is rarely what an admin wants).
    #[serde(default)]
    pub sync: Option<Vec<String>>,
    /// How a directory group's name matches a target group's displayName at first link.
    #[serde(default, rename = "match")]
    pub name_match: NameMatch,
}

impl GroupsConfig {
    /// The directory group names to sync, if any.
    pub fn names<'a>(&'a self, scope: &'a ScopeConfig) -> Option<&'a [String]> {
        self.sync.as_deref().or(scope.groups.as_deref())
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
    let Some(names) = config.names(scope) else {
        return Vec::new();
    };
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
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
        .filter(|g| wanted.contains(g.name.as_str()))
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
