//! The plan: typed operations in execution order. Produced by `scimsync-plan`, printed by `plan`,
//! executed by `scimsync-executor`.

use crate::{
    AttrValue, Attrs, GroupDeleteReason, GroupSkipReason, Member, ScimId, SourceId, TeamAction,
    TeamRef, paths,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One attribute change in an update: `old` → `new`. `new: None` removes the attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub old: Option<AttrValue>,
    pub new: Option<AttrValue>,
}

/// Why a managed user is being deprovisioned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeprovisionReason {
    /// Removed from every scope group.
    Unassigned,
    /// Excluded by a scoping rule.
    Filtered { rule: String },
    /// SUSPENDED in the directory.
    Suspended,
    /// Gone from the directory, or state DELETED.
    Deleted,
    /// A deactivated user whose `policy.delete_after` grace period has passed.
    GraceExpired,
}

impl fmt::Display for DeprovisionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeprovisionReason::Unassigned => f.write_str("unassigned from every scope group"),
            DeprovisionReason::Filtered { rule } => write!(f, "out of scope by rule {rule}"),
            DeprovisionReason::Suspended => f.write_str("suspended in the directory"),
            DeprovisionReason::Deleted => f.write_str("deleted from the directory"),
            DeprovisionReason::GraceExpired => {
                f.write_str("deactivated longer than policy.delete_after")
            }
        }
    }
}

/// Why the planner decided not to touch a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// Suspended in the directory and never provisioned: nothing to deactivate.
    InactiveNotProvisioned,
    /// A target user with this userName is already linked to another directory user.
    UserNameTakenByLinked { other: SourceId },
    /// Two directory users map to the same target user.
    DuplicateUserName { other: SourceId },
    /// Out of scope, but `policy.on_unassign = "ignore"`.
    PolicyIgnore,
    /// The target freezes this attribute while the user is deactivated (Miro: userName, roles).
    FrozenWhileInactive { path: String },
    /// The record is invalid and was left out (field named).
    Invalid { field: String, message: String },
    /// The target answered 404 to a create of this userName: a guest or external user holds it
    /// (Miro hides those from SCIM). Never retried until the user becomes visible in the target.
    TargetGuest,
    /// A guest or external user of the target is a member of a synced group: adding them
    /// would make them an internal user with a paid licence (Miro: Full), so they are not.
    GuestNotAdded { group: String },
    /// The licence (`userType`) would change in a way the target refuses over SCIM (Miro: a
    /// PATCH only upgrades, to Full): not sent; the rest of the user's update still goes.
    LicenceNotUpgrade {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// `None`: the licence would be removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// The licence a change may go to.
        upgrades_to: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::InactiveNotProvisioned => {
                f.write_str("suspended in the directory and not provisioned")
            }
            SkipReason::UserNameTakenByLinked { other } => {
                write!(f, "userName already belongs to the user linked to {other}")
            }
            SkipReason::DuplicateUserName { other } => {
                write!(f, "same userName as directory user {other}")
            }
            SkipReason::PolicyIgnore => f.write_str("out of scope; policy.on_unassign = ignore"),
            SkipReason::FrozenWhileInactive { path } => {
                write!(f, "{path} cannot change while the user is deactivated")
            }
            SkipReason::Invalid { field, message } => write!(f, "invalid {field}: {message}"),
            SkipReason::TargetGuest => f.write_str(
                "a guest or external user of the target holds this email (404 on create); not retried",
            ),
            SkipReason::GuestNotAdded { group } => write!(
                f,
                "a guest or external user of the target: adding them to {group} would make them \
                 an internal user with a paid licence; not added"
            ),
            SkipReason::LicenceNotUpgrade {
                from,
                to,
                upgrades_to,
            } => {
                let show = |v: &Option<String>, none: &str| {
                    v.as_deref()
                        .map_or_else(|| none.to_owned(), |v| format!("{v:?}"))
                };
                write!(
                    f,
                    "userType {} -> {} not sent: the target only upgrades a licence (to \
                     {upgrades_to:?}) over SCIM; change it in its admin console",
                    show(from, "(unknown)"),
                    show(to, "(none)")
                )
            }
        }
    }
}

/// One operation of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// POST a new user (after a lookup proves none exists).
    Create {
        source_id: SourceId,
        user_name: String,
        attrs: Attrs,
    },
    /// Link an existing target user matched by userName (case-insensitively). Any differences
    /// follow as an `Update` in the same plan.
    Adopt {
        source_id: SourceId,
        target_id: ScimId,
        user_name: String,
    },
    /// PATCH only the changed attributes. A change of `active` to true is a reactivation; a
    /// change of `userName` is an email change.
    Update {
        source_id: SourceId,
        target_id: ScimId,
        user_name: String,
        changes: Vec<Change>,
    },
    /// PATCH active=false.
    Deactivate {
        source_id: SourceId,
        target_id: ScimId,
        user_name: String,
        reason: DeprovisionReason,
    },
    /// DELETE the user (policy says so); the link goes with it.
    Delete {
        source_id: SourceId,
        target_id: ScimId,
        user_name: String,
        reason: DeprovisionReason,
    },
    /// Nothing is sent; recorded so `plan` and the events say why.
    Skip {
        source_id: SourceId,
        user_name: String,
        reason: SkipReason,
    },
    /// Link a directory group to the target group matched by displayName (no request).
    GroupAdopt {
        source_id: SourceId,
        target_id: ScimId,
        display_name: String,
    },
    /// POST /Groups (user_group model or generic SPs only), with `members` in the body where
    /// the target takes members on create; otherwise they follow in `GroupMembers`.
    GroupCreate {
        source_id: SourceId,
        display_name: String,
        /// Members sent in the POST (`target_id` `None` for a user created in the same plan).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        members: Vec<Member>,
    },
    /// PATCH replace displayName of a linked group.
    GroupRename {
        source_id: SourceId,
        target_id: ScimId,
        old: String,
        display_name: String,
    },
    /// PATCH add/remove only the changed members. `target_id` is `None` for a group created in
    /// the same plan. Adds are sent before removes. With `renamed_from`, the same PATCH also
    /// replaces the displayName (`display_name` is the new name): one request per group.
    GroupMembers {
        source_id: SourceId,
        target_id: Option<ScimId>,
        display_name: String,
        add: Vec<Member>,
        remove: Vec<Member>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        renamed_from: Option<String>,
    },
    /// DELETE /Groups/{id} (user_group model or generic SPs only); the group link goes with it.
    GroupDelete {
        source_id: SourceId,
        target_id: ScimId,
        display_name: String,
        #[serde(default)]
        reason: GroupDeleteReason,
    },
    /// Nothing is sent for this group; the event says why.
    GroupSkip {
        source_id: SourceId,
        display_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_id: Option<ScimId>,
        reason: GroupSkipReason,
    },
    /// A group's user group assigned to a Miro team, taken off one, adopted as assigned, or
    /// why not (`[teams]`; Miro's REST API, not SCIM).
    TeamAssignment {
        /// The directory group.
        source_id: SourceId,
        /// The group's user group; `None` when it is created in the same plan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<ScimId>,
        display_name: String,
        team: TeamRef,
        action: TeamAction,
    },
}

/// The kind of an operation, as counted and printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Create,
    Adopt,
    Update,
    Reactivate,
    Deactivate,
    Delete,
    Skip,
    /// A group membership change.
    Members,
    /// A group's user group assigned to a team.
    Assign,
    /// A group's user group taken off a team.
    Unassign,
}

impl OpKind {
    /// The terraform-style marker `plan` prints.
    pub fn symbol(self) -> char {
        match self {
            OpKind::Create => '+',
            OpKind::Adopt => '=',
            OpKind::Update | OpKind::Reactivate => '~',
            OpKind::Deactivate => '-',
            OpKind::Delete => 'x',
            OpKind::Skip => '!',
            OpKind::Members => '~',
            OpKind::Assign => '+',
            OpKind::Unassign => '-',
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Adopt => "adopt",
            OpKind::Update => "update",
            OpKind::Reactivate => "reactivate",
            OpKind::Deactivate => "deactivate",
            OpKind::Delete => "delete",
            OpKind::Skip => "skip",
            OpKind::Members => "members",
            OpKind::Assign => "assign",
            OpKind::Unassign => "unassign",
        }
    }

    pub fn parse(s: &str) -> Option<OpKind> {
        [
            OpKind::Create,
            OpKind::Adopt,
            OpKind::Update,
            OpKind::Reactivate,
            OpKind::Deactivate,
            OpKind::Delete,
            OpKind::Skip,
            OpKind::Members,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Execution phases. Operations of a later phase start only after every operation of the earlier
/// phases has finished, so creates precede memberships and deprovisions come last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Provision,
    Update,
    /// Group membership PATCHes: after every create and update, before deprovisions.
    Membership,
    Deprovision,
    Delete,
    Report,
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Create { .. } => OpKind::Create,
            Op::Adopt { .. } => OpKind::Adopt,
            Op::Update { changes, .. } => {
                let reactivates = changes
                    .iter()
                    .any(|c| c.path == paths::ACTIVE && c.new == Some(AttrValue::text("true")));
                if reactivates {
                    OpKind::Reactivate
                } else {
                    OpKind::Update
                }
            }
            Op::Deactivate { .. } => OpKind::Deactivate,
            Op::Delete { .. } | Op::GroupDelete { .. } => OpKind::Delete,
            Op::Skip { .. } | Op::GroupSkip { .. } => OpKind::Skip,
            Op::GroupAdopt { .. } => OpKind::Adopt,
            Op::GroupCreate { .. } => OpKind::Create,
            Op::GroupRename { .. } => OpKind::Update,
            Op::GroupMembers { .. } => OpKind::Members,
            Op::TeamAssignment { action, .. } => match action {
                TeamAction::Assign => OpKind::Assign,
                TeamAction::Unassign => OpKind::Unassign,
                TeamAction::Adopt => OpKind::Adopt,
                TeamAction::Skip { .. } => OpKind::Skip,
            },
        }
    }

    pub fn phase(&self) -> Phase {
        match self {
            Op::Create { .. } | Op::Adopt { .. } => Phase::Provision,
            Op::GroupAdopt { .. } | Op::GroupCreate { .. } => Phase::Provision,
            Op::Update { .. } | Op::GroupRename { .. } => Phase::Update,
            Op::GroupMembers { .. } => Phase::Membership,
            Op::Deactivate { .. } => Phase::Deprovision,
            Op::Delete { .. } | Op::GroupDelete { .. } => Phase::Delete,
            Op::Skip { .. } | Op::GroupSkip { .. } => Phase::Report,
            // After the group is created and filled; an unassignment takes access away, so
            // it goes with the other removals.
            Op::TeamAssignment { action, .. } => match action {
                TeamAction::Assign | TeamAction::Adopt => Phase::Membership,
                TeamAction::Unassign => Phase::Deprovision,
                TeamAction::Skip { .. } => Phase::Report,
            },
        }
    }

    pub fn source_id(&self) -> &SourceId {
        match self {
            Op::Create { source_id, .. }
            | Op::Adopt { source_id, .. }
            | Op::Update { source_id, .. }
            | Op::Deactivate { source_id, .. }
            | Op::Delete { source_id, .. }
            | Op::Skip { source_id, .. }
            | Op::GroupAdopt { source_id, .. }
            | Op::GroupCreate { source_id, .. }
            | Op::GroupRename { source_id, .. }
            | Op::GroupMembers { source_id, .. }
            | Op::GroupDelete { source_id, .. }
            | Op::GroupSkip { source_id, .. }
            | Op::TeamAssignment { source_id, .. } => source_id,
        }
    }

    /// The userName of a user op; the displayName of a group op.
    pub fn user_name(&self) -> &str {
        match self {
            Op::GroupAdopt { display_name, .. }
            | Op::GroupCreate { display_name, .. }
            | Op::GroupRename { display_name, .. }
            | Op::GroupMembers { display_name, .. }
            | Op::GroupDelete { display_name, .. }
            | Op::GroupSkip { display_name, .. }
            | Op::TeamAssignment { display_name, .. } => display_name,
            Op::Create { user_name, .. }
            | Op::Adopt { user_name, .. }
            | Op::Update { user_name, .. }
            | Op::Deactivate { user_name, .. }
            | Op::Delete { user_name, .. }
            | Op::Skip { user_name, .. } => user_name,
        }
    }

    pub fn target_id(&self) -> Option<&ScimId> {
        match self {
            Op::Adopt { target_id, .. }
            | Op::Update { target_id, .. }
            | Op::Deactivate { target_id, .. }
            | Op::Delete { target_id, .. }
            | Op::GroupAdopt { target_id, .. }
            | Op::GroupRename { target_id, .. }
            | Op::GroupDelete { target_id, .. } => Some(target_id),
            Op::GroupMembers { target_id, .. } | Op::GroupSkip { target_id, .. } => {
                target_id.as_ref()
            }
            Op::TeamAssignment { group_id, .. } => group_id.as_ref(),
            Op::Create { .. } | Op::Skip { .. } | Op::GroupCreate { .. } => None,
        }
    }

    /// Whether executing this op writes to the target (adopt and skip do not).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Create { .. }
                | Op::Update { .. }
                | Op::Deactivate { .. }
                | Op::Delete { .. }
                | Op::GroupCreate { .. }
                | Op::GroupRename { .. }
                | Op::GroupMembers { .. }
                | Op::GroupDelete { .. }
                | Op::TeamAssignment {
                    action: TeamAction::Assign | TeamAction::Unassign,
                    ..
                }
        )
    }

    /// Whether this op is about a group rather than a user (team assignments included).
    pub fn is_group(&self) -> bool {
        matches!(
            self,
            Op::GroupAdopt { .. }
                | Op::GroupCreate { .. }
                | Op::GroupRename { .. }
                | Op::GroupMembers { .. }
                | Op::GroupDelete { .. }
                | Op::GroupSkip { .. }
                | Op::TeamAssignment { .. }
        )
    }

    /// Whether this op assigns a group to a team (Miro's REST API rather than SCIM).
    pub fn is_team(&self) -> bool {
        matches!(self, Op::TeamAssignment { .. })
    }

    fn is_team_skip(&self) -> bool {
        matches!(
            self,
            Op::TeamAssignment {
                action: TeamAction::Skip { .. },
                ..
            }
        )
    }

    /// Whether this op as a whole takes access away (a user deactivated or deleted, a group
    /// deleted). The deletion guard counts more than these: see [`Plan::losses`].
    pub fn is_deprovision(&self) -> bool {
        matches!(
            self,
            Op::Deactivate { .. } | Op::Delete { .. } | Op::GroupDelete { .. }
        )
    }
}

/// Counts of a plan's operations by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCounts {
    pub create: usize,
    pub adopt: usize,
    pub update: usize,
    pub reactivate: usize,
    pub deactivate: usize,
    pub delete: usize,
    pub skip: usize,
    /// Group membership changes (one per group).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub members: usize,
    /// Team assignments (one per group and team).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub assign: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unassign: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl PlanCounts {
    pub fn add(&mut self, kind: OpKind) {
        let slot = match kind {
            OpKind::Create => &mut self.create,
            OpKind::Adopt => &mut self.adopt,
            OpKind::Update => &mut self.update,
            OpKind::Reactivate => &mut self.reactivate,
            OpKind::Deactivate => &mut self.deactivate,
            OpKind::Delete => &mut self.delete,
            OpKind::Skip => &mut self.skip,
            OpKind::Members => &mut self.members,
            OpKind::Assign => &mut self.assign,
            OpKind::Unassign => &mut self.unassign,
        };
        *slot += 1;
    }
}

/// An ordered list of operations. Order is the execution order: by phase, then as the planner
/// placed them (creates topologically by manager, otherwise by userName).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub ops: Vec<Op>,
}

impl Plan {
    pub fn counts(&self) -> PlanCounts {
        let mut counts = PlanCounts::default();
        for op in &self.ops {
            counts.add(op.kind());
        }
        counts
    }

    /// True when executing the plan would send nothing and link nothing.
    pub fn is_empty(&self) -> bool {
        self.ops
            .iter()
            .all(|op| matches!(op, Op::Skip { .. } | Op::GroupSkip { .. }) || op.is_team_skip())
    }

    pub fn writes(&self) -> usize {
        self.ops.iter().filter(|op| op.is_write()).count()
    }

    pub fn deprovisions(&self) -> usize {
        self.ops.iter().filter(|op| op.is_deprovision()).count()
    }
}
