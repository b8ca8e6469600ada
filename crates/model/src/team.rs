//! Team assignment (Miro's user-group model): a synced directory group's user group assigned
//! to Miro teams. Not SCIM: Miro's REST API does it (`/v2/orgs/{org_id}/teams/{team_id}/groups`),
//! with a credential of its own. `[teams]` in sync.toml says which teams each group belongs to.

use crate::{ScimId, SourceId, TeamId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A Miro team as the REST API lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
}

/// The store's record that scimsync assigned a directory group's user group to a team: the
/// only assignments it ever takes away again (one made by hand in Miro is never touched).
/// `team_name` is the name sync.toml gave when it was made, so a team renamed in Miro keeps
/// its assignment instead of losing it to a name that no longer matches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TeamLink {
    /// The directory group.
    pub group: SourceId,
    pub team_id: TeamId,
    pub team_name: String,
}

/// What the planner knows of Miro's teams this cycle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamView {
    /// Every team of the org, when listed this cycle.
    pub teams: Vec<Team>,
    /// For each team read this cycle, the user groups assigned to it.
    pub assigned: BTreeMap<TeamId, Vec<ScimId>>,
    /// Whether `teams` and `assigned` were read this cycle. An incremental cycle whose team
    /// links already say everything `[teams]` asks reads nothing: the links are trusted.
    pub complete: bool,
}

/// The team an assignment op is about: sync.toml's name, and the team's id when it is known.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TeamRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<TeamId>,
    pub name: String,
}

impl fmt::Display for TeamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "team {:?} ({id})", self.name),
            None => write!(f, "team {:?}", self.name),
        }
    }
}

/// What a team-assignment op does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamAction {
    /// `POST /v2/orgs/{org}/teams/{team}/groups`: the group's members get the team.
    Assign,
    /// `DELETE /v2/orgs/{org}/teams/{team}/groups/{group}`: they lose it (a loss the deletion
    /// guard counts).
    Unassign,
    /// Already assigned in Miro (by hand, or by a request whose answer was lost): recorded as
    /// scimsync's, no request.
    Adopt,
    /// Nothing is sent; the reason says why.
    Skip { reason: TeamSkipReason },
}

/// Why a team assignment is not made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TeamSkipReason {
    /// No REST credential: sync.toml has no `[target.rest]`, or its token cannot be read.
    NoRestAccess { why: String },
    /// No Miro team has this name.
    NoSuchTeam,
    /// Several Miro teams have this name; assigning one would be a guess.
    Ambiguous { count: usize },
    /// The group itself is not in Miro (skipped: see its own line).
    GroupNotInTarget,
}

impl fmt::Display for TeamSkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TeamSkipReason::NoRestAccess { why } => write!(
                f,
                "nothing sent: team assignment goes through Miro's REST API, and {why}"
            ),
            TeamSkipReason::NoSuchTeam => f.write_str(
                "no Miro team has this name (scimsync never creates teams: create it in Miro, \
                 or fix the name under [teams])",
            ),
            TeamSkipReason::Ambiguous { count } => {
                write!(f, "{count} Miro teams have this name; none is assigned")
            }
            TeamSkipReason::GroupNotInTarget => {
                f.write_str("the group is not in Miro (see the group's own line)")
            }
        }
    }
}
