//! Groups on either side of the diff: desired (directory groups in sync scope), target (SCIM
//! Groups: Miro teams or user groups), and the link the store keeps between them.

use crate::{ScimId, SourceId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a SCIM Group is in the target (SPEC `[target] group_model`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupModel {
    /// Miro's legacy model: a group is a team; listed, read and PATCHed, never created or
    /// deleted through SCIM. For orgs Miro has not migrated yet.
    Team,
    /// Miro since 2026 (and any RFC 7644 SP): a group is a user group, created and deleted
    /// too, and assigned to teams through Miro's REST API (`[teams]`).
    #[default]
    UserGroup,
}

impl GroupModel {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupModel::Team => "team",
            GroupModel::UserGroup => "user_group",
        }
    }

    pub fn parse(s: &str) -> Option<GroupModel> {
        [GroupModel::Team, GroupModel::UserGroup]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// How a directory group's name matches a target group's displayName at first link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameMatch {
    /// Miro links by identical name.
    #[default]
    Exact,
    CaseInsensitive,
}

impl NameMatch {
    /// The key two names must share to match.
    pub fn key(self, name: &str) -> String {
        match self {
            NameMatch::Exact => name.to_owned(),
            NameMatch::CaseInsensitive => name.to_lowercase(),
        }
    }
}

/// A directory group as the target should hold it. `members` are the in-scope, active directory
/// users of the group, sorted and without duplicates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredGroup {
    pub source_id: SourceId,
    pub display_name: String,
    pub members: Vec<SourceId>,
}

/// A group as the target holds it. `members` is `None` when only listed (`attributes=id,
/// displayName`), not read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub id: ScimId,
    pub display_name: String,
    pub members: Option<Vec<ScimId>>,
}

/// What the planner knows of the target's groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub groups: Vec<TargetGroup>,
    /// true when `groups` is a full listing: a linked id missing from it is gone.
    pub complete: bool,
}

/// The store's record that a directory group is managed as a target group, with the members
/// scimsync last saw there (sorted target ids), so an unchanged group needs no read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLink {
    pub source_id: SourceId,
    pub target_id: ScimId,
    pub display_name: String,
    pub members: Vec<ScimId>,
}

/// One member in a membership op. `target_id` is `None` when the user is created in the same
/// cycle: the executor resolves it from its working link map.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    pub source_id: SourceId,
    pub user_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<ScimId>,
}

/// Why the planner will not create, link or delete a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GroupSkipReason {
    /// `group_model = "team"`: no team has this name, and teams cannot be created over SCIM.
    NoMatchingTeam,
    /// `group_model = "team"`: the directory group is gone, and teams cannot be deleted over
    /// SCIM; the link is dropped and the team left as it is.
    TeamNotDeletable,
    /// Another directory group is already linked to the target group with this name.
    NameTakenByLinked { other: SourceId },
    /// Several target groups match the name; linking one would be a guess.
    Ambiguous { count: usize },
    /// Two directory groups in scope have the same name.
    DuplicateName { other: SourceId },
    /// `group_model = "team"`: the directory group is still there but no longer synced
    /// (`[groups] sync`), and teams cannot be deleted over SCIM; the link is dropped and the
    /// team left as it is.
    TeamNoLongerSynced,
    /// The name is longer than the target keeps (Miro truncates a user group's name at 60
    /// characters, so it would never match again): not created, linked or renamed.
    NameTooLong { chars: usize, max: usize },
}

impl fmt::Display for GroupSkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupSkipReason::NoMatchingTeam => f.write_str(
                "no Miro team has this name and group_model = \"team\" cannot create one; \
                 create the team in Miro first",
            ),
            GroupSkipReason::TeamNotDeletable => f.write_str(
                "the directory group is gone, but group_model = \"team\" cannot delete a team; \
                 the team is left as it is and no longer managed",
            ),
            GroupSkipReason::NameTakenByLinked { other } => {
                write!(
                    f,
                    "the target group with this name is linked to directory group {other}"
                )
            }
            GroupSkipReason::Ambiguous { count } => {
                write!(f, "{count} target groups have this name; none is linked")
            }
            GroupSkipReason::DuplicateName { other } => {
                write!(f, "same name as directory group {other}")
            }
            GroupSkipReason::TeamNoLongerSynced => f.write_str(
                "no longer synced ([groups] sync does not select it), but group_model = \"team\" \
                 cannot delete a team; the team is left as it is and no longer managed",
            ),
            GroupSkipReason::NameTooLong { chars, max } => write!(
                f,
                "the name is {chars} characters, over the target's limit of {max} (it would be \
                 truncated and never match again); rename the directory group"
            ),
        }
    }
}

impl GroupSkipReason {
    /// Whether the skip is of a delete (reported as `group_delete_provision`).
    pub fn is_delete(&self) -> bool {
        matches!(
            self,
            GroupSkipReason::TeamNotDeletable | GroupSkipReason::TeamNoLongerSynced
        )
    }
}

/// Why a linked group is deleted from the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupDeleteReason {
    /// The directory no longer has the group.
    #[default]
    GoneFromDirectory,
    /// The directory still has the group, but `[groups] sync` no longer selects it (by name
    /// or id): a directory rename under a name-based selection looks like this.
    NoLongerSynced,
}

impl fmt::Display for GroupDeleteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupDeleteReason::GoneFromDirectory => "gone from the directory",
            GroupDeleteReason::NoLongerSynced => {
                "no longer synced: the directory group is still there, but [groups] sync does not select it"
            }
        })
    }
}
