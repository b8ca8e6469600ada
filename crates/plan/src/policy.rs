//! What the admin decided about users who leave scope, and what the target profile says about
//! attributes it treats specially.

use std::collections::BTreeSet;

/// What happens to a managed user who is no longer assigned (or filtered out by a scoping rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnassign {
    /// PATCH active=false: the account and its boards survive, the licence is freed.
    #[default]
    Deactivate,
    /// DELETE the target user.
    Delete,
    /// Leave the target user as it is; the plan reports a skip.
    Ignore,
}

/// What happens to a managed user who is gone from the directory or in state DELETED.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDelete {
    /// PATCH active=false.
    #[default]
    Deactivate,
    /// DELETE the target user.
    Delete,
}

/// Everything the planner needs besides the two states it compares.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub on_unassign: OnUnassign,
    pub on_delete: OnDelete,
    /// Sent on create, never compared (Miro derives them from displayName): name.givenName,
    /// name.familyName.
    pub create_only: BTreeSet<String>,
    /// Attributes the target freezes while a user is deactivated (Miro: userName,
    /// roles[primary eq true].value, userType).
    ///
    /// The planner never sends attribute changes to a user who stays deactivated (a suspended
    /// user gets a Deactivate and nothing else, and a reactivation puts `active` first in its
    /// PATCH), so no plan can hit the freeze today; the set is carried so that a future op that
    /// updates inactive users filters these paths with `SkipReason::FrozenWhileInactive`.
    pub frozen_while_inactive: BTreeSet<String>,
    /// `policy.delete_after`: a user the policy deletes is deactivated first and deleted only
    /// once listed in `PlanInput::grace_expired` (the caller, who has a clock, decides).
    pub deactivate_first: bool,
    /// The target's licence attribute, where a change may only go one way (Miro: `userType`,
    /// upgraded to Full and never lowered over SCIM). `None`: no such rule.
    pub licence: Option<LicencePolicy>,
}

/// What a licence change may be (see `Policy::licence`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicencePolicy {
    pub path: String,
    /// The one value a change may go to (compared case-insensitively).
    pub upgrades_to: String,
}

impl LicencePolicy {
    /// Whether the change of the licence from `from` (unknown: `None`) to `to` (removed:
    /// `None`) may be sent: only an upgrade, or no change at all.
    pub(crate) fn allows(&self, from: Option<&str>, to: Option<&str>) -> bool {
        match to {
            Some(to) => {
                to.trim().eq_ignore_ascii_case(&self.upgrades_to)
                    || from.is_some_and(|from| from.trim().eq_ignore_ascii_case(to.trim()))
            }
            None => false,
        }
    }
}
