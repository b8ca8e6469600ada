//! Losses: the changes of a plan that take access away, as the deletion guard counts, holds and
//! approves them. A deactivation is the obvious one; a team membership removed, a group
//! deleted, an admin demoted or a licence lowered take access away just as surely, so the guard
//! sees them all through this one type.
//!
//! Each loss has an identity ([`LossId`]) that an approval names: an approval is a set of
//! identities, and a later cycle applies a loss only if its identity is in the set.

use crate::{AttrValue, Change, Op, Plan, RunId, ScimId, SourceId, TeamAction, paths};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// The kinds of access-removing change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// A user set `active = false`.
    Deactivate,
    /// A user deleted.
    Delete,
    /// A user removed from a group (a Miro team or user group) while keeping their account.
    MemberRemove,
    /// A group deleted from the target.
    GroupDelete,
    /// A user's organisation role lowered from admin.
    AdminDemotion,
    /// A user's licence (`userType`) changed to anything but an upgrade.
    LicenceChange,
    /// A group's user group taken off a Miro team: every member loses the team.
    TeamUnassign,
}

impl LossKind {
    pub const ALL: [LossKind; 7] = [
        LossKind::Deactivate,
        LossKind::Delete,
        LossKind::MemberRemove,
        LossKind::GroupDelete,
        LossKind::AdminDemotion,
        LossKind::LicenceChange,
        LossKind::TeamUnassign,
    ];

    /// The stored and printed name (same as the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            LossKind::Deactivate => "deactivate",
            LossKind::Delete => "delete",
            LossKind::MemberRemove => "member_remove",
            LossKind::GroupDelete => "group_delete",
            LossKind::AdminDemotion => "admin_demotion",
            LossKind::LicenceChange => "licence_change",
            LossKind::TeamUnassign => "team_unassign",
        }
    }

    /// `n` of this kind, in words: "3 deactivations", "1 membership removal".
    pub fn count_phrase(self, n: usize) -> String {
        let (one, many) = match self {
            LossKind::Deactivate => ("deactivation", "deactivations"),
            LossKind::Delete => ("user delete", "user deletes"),
            LossKind::MemberRemove => ("membership removal", "membership removals"),
            LossKind::GroupDelete => ("group delete", "group deletes"),
            LossKind::AdminDemotion => ("admin demotion", "admin demotions"),
            LossKind::LicenceChange => ("licence change", "licence changes"),
            LossKind::TeamUnassign => ("team unassignment", "team unassignments"),
        };
        format!("{n} {}", if n == 1 { one } else { many })
    }
}

impl fmt::Display for LossKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of one loss: what an approval names. It holds the target resource too, so an
/// approval given for one account never follows a source id to another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LossId {
    pub kind: LossKind,
    /// The user losing access (for a group delete, the group).
    pub source_id: SourceId,
    /// The group a membership removal is from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<SourceId>,
    /// The target user (or group) the change is sent to; for a team unassignment, the team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<ScimId>,
}

impl LossId {
    /// A canonical text form, one line: the key a store keeps and a digest covers.
    pub fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| format!("{self:?}"))
    }
}

/// One access-removing change of a plan, with what a person needs to recognise it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loss {
    pub id: LossId,
    /// The user's userName (for a group delete, the group's displayName).
    pub name: String,
    /// The group's displayName, for a membership removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// Why, in words: the deprovision reason, the role or licence change.
    pub detail: String,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} [{}]", self.id.kind, self.name, self.id.source_id)?;
        if let Some(group) = &self.group_name {
            write!(f, " from {group}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Counts of losses by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LossCounts(pub BTreeMap<LossKind, usize>);

impl LossCounts {
    pub fn of<'a>(losses: impl IntoIterator<Item = &'a Loss>) -> LossCounts {
        let mut counts = BTreeMap::new();
        for loss in losses {
            *counts.entry(loss.id.kind).or_insert(0) += 1;
        }
        LossCounts(counts)
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    pub fn get(&self, kind: LossKind) -> usize {
        self.0.get(&kind).copied().unwrap_or(0)
    }
}

impl fmt::Display for LossCounts {
    /// "44 deactivations, 12 membership removals"; "nothing" when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(kind, n)| kind.count_phrase(*n))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// A digest of a set of losses: SHA-256 over their sorted keys, in hex. Order-free, so the
/// same set always has the same digest; what `approve-deletes --digest` checks.
pub fn loss_digest<'a>(ids: impl IntoIterator<Item = &'a LossId>) -> String {
    let mut keys: Vec<String> = ids.into_iter().map(LossId::key).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut hasher = Sha256::new();
    for key in &keys {
        hasher.update(key.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// What the deletion guard held in the last cycle it held: the losses it kept back and why.
/// Stored with the hold; `approve-deletes` approves exactly these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldSet {
    /// The run that held them (`None` for a hold recorded outside a run).
    pub run_id: Option<RunId>,
    /// RFC 3339, UTC.
    pub held_at: String,
    /// Each rule that held something, in words.
    pub reasons: Vec<String>,
    pub losses: Vec<Loss>,
}

impl HeldSet {
    pub fn digest(&self) -> String {
        loss_digest(self.losses.iter().map(|l| &l.id))
    }

    pub fn counts(&self) -> LossCounts {
        LossCounts::of(&self.losses)
    }
}

/// An approval of a held set: the losses a later cycle may apply although a rule would hold
/// them, until they are applied or the approval expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The run whose hold was approved.
    pub hold_run: Option<RunId>,
    /// The digest of the held set as approved.
    pub digest: String,
    /// RFC 3339, UTC.
    pub approved_at: String,
    /// The operating-system user who ran `approve-deletes`.
    pub approved_by: String,
    /// RFC 3339, UTC: after this the approval is ignored.
    pub expires_at: String,
    /// What remains of the approved set (applied losses leave it).
    pub losses: Vec<Loss>,
}

/// What counts as a loss beyond the ops that always do (deactivate, delete, membership
/// removal, group delete, admin demotion): target-specific rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LossRules {
    /// The attribute that carries the licence, when the target's licences can be lowered by a
    /// mapping (Miro: `userType`). A change of it to anything but `upgrades_to` is a loss.
    pub licence_path: Option<String>,
    /// The licence value a change to is an upgrade, never a loss (Miro: `Full`, compared
    /// case-insensitively).
    pub upgrades_to: Option<String>,
}

impl LossRules {
    /// Miro's: the licence is `userType`, and `Full` is the top of it.
    pub fn miro() -> LossRules {
        LossRules {
            licence_path: Some(paths::USER_TYPE.to_owned()),
            upgrades_to: Some("Full".to_owned()),
        }
    }

    /// Whether an update's `change` lowers the user's role or licence, and how.
    fn change_loss(&self, change: &Change) -> Option<LossKind> {
        fn text(v: &Option<AttrValue>) -> Option<&str> {
            v.as_ref().and_then(AttrValue::as_text).map(str::trim)
        }
        if change.path == paths::ROLE {
            // Only a known admin losing the role: an unknown old value (a partial link) is
            // re-sent as desired and proves nothing.
            let was_admin = text(&change.old) == Some(paths::ADMIN_ROLE);
            let stays_admin = text(&change.new) == Some(paths::ADMIN_ROLE);
            return (was_admin && !stays_admin).then_some(LossKind::AdminDemotion);
        }
        if paths::is_admin_role(&change.path) {
            // An admin role (Content Admin, User Admin, …) the user holds and loses.
            return (change.old.is_some() && change.new.is_none())
                .then_some(LossKind::AdminDemotion);
        }
        if self.licence_path.as_deref() == Some(change.path.as_str()) {
            let old = text(&change.old)?;
            let new = text(&change.new);
            let upgrade = match (new, self.upgrades_to.as_deref()) {
                (Some(new), Some(top)) => new.eq_ignore_ascii_case(top),
                _ => false,
            };
            let same = new.is_some_and(|new| new == old);
            return (!upgrade && !same).then_some(LossKind::LicenceChange);
        }
        None
    }
}

/// Where a loss sits in a plan: the part of an op that carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// The whole op (deactivate, delete, group delete).
    Op,
    /// One member of a membership op's `remove`.
    Removal(usize),
    /// One change of an update.
    Change(usize),
}

/// One loss-carrying part of an op, and the loss that governs it. A part of a user who is
/// deprovisioned in the same plan (their removal from a team, say) is folded into that
/// deprovision: it is neither listed nor counted apart, and it goes or waits with it.
struct Governed {
    part: Part,
    governor: LossId,
    /// `None` when folded into another loss.
    own: Option<Loss>,
}

impl Plan {
    /// Every access-removing change of the plan, in plan order. A user deprovisioned in the
    /// plan is one loss, whatever else the plan takes from them.
    pub fn losses(&self, rules: &LossRules) -> Vec<Loss> {
        let deprovisions = self.deprovision_ids();
        self.ops
            .iter()
            .flat_map(|op| governed(op, rules, &deprovisions))
            .filter_map(|g| g.own)
            .collect()
    }

    /// Drops from the plan every loss `allowed` refuses: whole deprovision and group-delete
    /// ops, single members of a membership op's removals, single changes of an update. What
    /// else an op does (a membership op's adds, an update's other changes) stays; an op left
    /// with nothing to do goes. Returns the losses dropped.
    pub fn retain_losses(
        &mut self,
        rules: &LossRules,
        allowed: impl Fn(&LossId) -> bool,
    ) -> Vec<Loss> {
        let deprovisions = self.deprovision_ids();
        let mut dropped = Vec::new();
        let mut ops = Vec::with_capacity(self.ops.len());
        for mut op in std::mem::take(&mut self.ops) {
            let mut refused_removals = Vec::new();
            let mut refused_changes = Vec::new();
            let mut refused_op = false;
            for g in governed(&op, rules, &deprovisions) {
                if allowed(&g.governor) {
                    continue;
                }
                dropped.extend(g.own);
                match g.part {
                    Part::Op => refused_op = true,
                    Part::Removal(i) => refused_removals.push(i),
                    Part::Change(i) => refused_changes.push(i),
                }
            }
            if refused_op {
                continue;
            }
            let keep = match &mut op {
                Op::GroupMembers {
                    add,
                    remove,
                    renamed_from,
                    ..
                } if !refused_removals.is_empty() => {
                    let mut at = 0;
                    remove.retain(|_| {
                        at += 1;
                        !refused_removals.contains(&(at - 1))
                    });
                    // A rename riding in the PATCH still goes when its removals are held.
                    !add.is_empty() || !remove.is_empty() || renamed_from.is_some()
                }
                Op::Update { changes, .. } if !refused_changes.is_empty() => {
                    let mut at = 0;
                    changes.retain(|_| {
                        at += 1;
                        !refused_changes.contains(&(at - 1))
                    });
                    !changes.is_empty()
                }
                _ => true,
            };
            if keep {
                ops.push(op);
            }
        }
        self.ops = ops;
        dropped
    }

    /// For each op (by position) that carries a loss, the loss that governs each part of it: a
    /// loss is done when every op it governs a part of has succeeded.
    pub fn governing_losses(&self, rules: &LossRules) -> Vec<(usize, LossId)> {
        let deprovisions = self.deprovision_ids();
        self.ops
            .iter()
            .enumerate()
            .flat_map(|(at, op)| {
                governed(op, rules, &deprovisions)
                    .into_iter()
                    .map(move |g| (at, g.governor))
            })
            .collect()
    }

    /// The loss id of each user the plan deactivates or deletes (the first such op).
    fn deprovision_ids(&self) -> HashMap<SourceId, LossId> {
        let mut ids = HashMap::new();
        for op in &self.ops {
            if let Some(id) = deprovision_id(op) {
                ids.entry(op.source_id().clone()).or_insert(id);
            }
        }
        ids
    }
}

fn deprovision_id(op: &Op) -> Option<LossId> {
    let (kind, source_id, target_id) = match op {
        Op::Deactivate {
            source_id,
            target_id,
            ..
        } => (LossKind::Deactivate, source_id, target_id),
        Op::Delete {
            source_id,
            target_id,
            ..
        } => (LossKind::Delete, source_id, target_id),
        _ => return None,
    };
    Some(LossId {
        kind,
        source_id: source_id.clone(),
        group: None,
        target_id: Some(target_id.clone()),
    })
}

/// A loss that is a whole op (a group delete, a team unassignment), governing itself.
fn whole_op(id: LossId, name: &str, detail: String) -> Governed {
    Governed {
        part: Part::Op,
        governor: id.clone(),
        own: Some(Loss {
            id,
            name: name.to_owned(),
            group_name: None,
            detail,
        }),
    }
}

/// The loss-carrying parts of `op`.
fn governed(op: &Op, rules: &LossRules, deprovisions: &HashMap<SourceId, LossId>) -> Vec<Governed> {
    let mut out = Vec::new();
    // A part of a user deprovisioned in this plan goes with that deprovision.
    let folded_or = |user: &SourceId, own: Loss| match deprovisions.get(user) {
        Some(governor) if governor != &own.id => (governor.clone(), None),
        _ => (own.id.clone(), Some(own)),
    };
    match op {
        Op::Deactivate {
            user_name, reason, ..
        }
        | Op::Delete {
            user_name, reason, ..
        } => {
            if let Some(id) = deprovision_id(op) {
                out.push(Governed {
                    part: Part::Op,
                    governor: id.clone(),
                    own: Some(Loss {
                        id,
                        name: user_name.clone(),
                        group_name: None,
                        detail: reason.to_string(),
                    }),
                });
            }
        }
        Op::GroupDelete {
            source_id,
            target_id,
            display_name,
            reason,
        } => {
            let id = LossId {
                kind: LossKind::GroupDelete,
                source_id: source_id.clone(),
                group: None,
                target_id: Some(target_id.clone()),
            };
            out.push(whole_op(id, display_name, reason.to_string()));
        }
        Op::GroupMembers {
            source_id,
            display_name,
            remove,
            ..
        } => {
            for (at, member) in remove.iter().enumerate() {
                let own = Loss {
                    id: LossId {
                        kind: LossKind::MemberRemove,
                        source_id: member.source_id.clone(),
                        group: Some(source_id.clone()),
                        target_id: member.target_id.clone(),
                    },
                    name: member.user_name.clone(),
                    group_name: Some(display_name.clone()),
                    detail: format!("removed from {display_name}"),
                };
                let (governor, own) = folded_or(&member.source_id, own);
                out.push(Governed {
                    part: Part::Removal(at),
                    governor,
                    own,
                });
            }
        }
        Op::Update {
            source_id,
            target_id,
            user_name,
            changes,
        } => {
            for (at, change) in changes.iter().enumerate() {
                let Some(kind) = rules.change_loss(change) else {
                    continue;
                };
                let show = |v: &Option<AttrValue>| {
                    v.as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| "(none)".to_owned())
                };
                let own = Loss {
                    id: LossId {
                        kind,
                        source_id: source_id.clone(),
                        group: None,
                        target_id: Some(target_id.clone()),
                    },
                    name: user_name.clone(),
                    group_name: None,
                    detail: format!(
                        "{}: {} -> {}",
                        change.path,
                        show(&change.old),
                        show(&change.new)
                    ),
                };
                let (governor, own) = folded_or(source_id, own);
                out.push(Governed {
                    part: Part::Change(at),
                    governor,
                    own,
                });
            }
        }
        Op::TeamAssignment {
            source_id,
            display_name,
            team,
            action: TeamAction::Unassign,
            ..
        } => {
            // The directory group and the team: an approval names the assignment, whichever
            // user group the group is linked to.
            let id = LossId {
                kind: LossKind::TeamUnassign,
                source_id: source_id.clone(),
                group: None,
                target_id: team.id.as_ref().map(|t| ScimId::new(t.as_str())),
            };
            let detail = format!("taken off {team}: its members lose the team");
            out.push(whole_op(id, display_name, detail));
        }
        Op::Create { .. }
        | Op::Adopt { .. }
        | Op::Skip { .. }
        | Op::GroupAdopt { .. }
        | Op::GroupCreate { .. }
        | Op::GroupRename { .. }
        | Op::GroupSkip { .. }
        | Op::TeamAssignment { .. } => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeprovisionReason, GroupDeleteReason, Member};

    fn member(s: &str) -> Member {
        Member {
            source_id: SourceId::new(s),
            user_name: format!("{s}@x.com"),
            target_id: Some(ScimId::new(format!("t{s}"))),
        }
    }
    fn deactivate(s: &str) -> Op {
        Op::Deactivate {
            source_id: SourceId::new(s),
            target_id: ScimId::new(format!("t{s}")),
            user_name: format!("{s}@x.com"),
            reason: DeprovisionReason::Unassigned,
        }
    }
    fn members(add: &[&str], remove: &[&str]) -> Op {
        Op::GroupMembers {
            source_id: SourceId::new("g1"),
            target_id: Some(ScimId::new("tg1")),
            display_name: "Engineering".into(),
            add: add.iter().map(|s| member(s)).collect(),
            remove: remove.iter().map(|s| member(s)).collect(),
            renamed_from: None,
        }
    }
    fn change(path: &str, old: Option<&str>, new: Option<&str>) -> Change {
        Change {
            path: path.into(),
            old: old.map(AttrValue::text),
            new: new.map(AttrValue::text),
        }
    }
    fn update(s: &str, changes: Vec<Change>) -> Op {
        Op::Update {
            source_id: SourceId::new(s),
            target_id: ScimId::new(format!("t{s}")),
            user_name: format!("{s}@x.com"),
            changes,
        }
    }
    /// An update that moves the user to Ops and takes their admin role.
    fn move_and_demote(s: &str) -> Op {
        update(
            s,
            vec![
                change(paths::DEPARTMENT, Some("Eng"), Some("Ops")),
                change(paths::ROLE, Some(paths::ADMIN_ROLE), Some(paths::USER_ROLE)),
            ],
        )
    }
    fn kinds(losses: &[Loss]) -> Vec<(LossKind, String)> {
        losses
            .iter()
            .map(|l| (l.id.kind, l.id.source_id.to_string()))
            .collect()
    }

    #[test]
    fn every_access_removing_change_is_a_loss() {
        let plan = Plan {
            ops: vec![
                move_and_demote("u1"),
                update(
                    "u2",
                    vec![change(paths::USER_TYPE, Some("Full"), Some("Free"))],
                ),
                members(&["u9"], &["u3"]),
                deactivate("u4"),
                Op::GroupDelete {
                    source_id: SourceId::new("g2"),
                    target_id: ScimId::new("tg2"),
                    display_name: "Design".into(),
                    reason: GroupDeleteReason::NoLongerSynced,
                },
            ],
        };
        let losses = plan.losses(&LossRules::miro());
        assert_eq!(
            kinds(&losses),
            vec![
                (LossKind::AdminDemotion, "u1".into()),
                (LossKind::LicenceChange, "u2".into()),
                (LossKind::MemberRemove, "u3".into()),
                (LossKind::Deactivate, "u4".into()),
                (LossKind::GroupDelete, "g2".into()),
            ]
        );
        // Without a licence rule (a generic target), userType is just an attribute.
        assert_eq!(plan.losses(&LossRules::default()).len(), 4);
        assert_eq!(
            LossCounts::of(&losses).to_string(),
            "1 deactivation, 1 membership removal, 1 group delete, 1 admin demotion, 1 licence change"
        );
    }

    #[test]
    fn promotions_upgrades_and_unknown_old_roles_are_not_losses() {
        let plan = Plan {
            ops: vec![
                update(
                    "u1",
                    vec![
                        change(paths::ROLE, Some(paths::USER_ROLE), Some(paths::ADMIN_ROLE)),
                        change(paths::USER_TYPE, Some("Free"), Some("full")),
                    ],
                ),
                update(
                    "u2",
                    vec![change(paths::ROLE, None, Some(paths::USER_ROLE))],
                ),
            ],
        };
        assert!(plan.losses(&LossRules::miro()).is_empty());
    }

    #[test]
    fn a_leavers_team_removals_fold_into_their_deactivation() {
        let mut plan = Plan {
            ops: vec![members(&[], &["u1", "u2"]), deactivate("u1")],
        };
        let losses = plan.losses(&LossRules::miro());
        assert_eq!(
            kinds(&losses),
            vec![
                (LossKind::MemberRemove, "u2".into()),
                (LossKind::Deactivate, "u1".into())
            ]
        );
        // Refusing the deactivation keeps u1 in the team too; u2's removal is its own.
        let dropped = plan.retain_losses(&LossRules::miro(), |id| id.kind != LossKind::Deactivate);
        assert_eq!(kinds(&dropped), vec![(LossKind::Deactivate, "u1".into())]);
        let Op::GroupMembers { remove, .. } = &plan.ops[0] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            remove
                .iter()
                .map(|m| m.source_id.as_str())
                .collect::<Vec<_>>(),
            ["u2"]
        );
    }

    #[test]
    fn a_held_cycle_keeps_adds_and_other_changes() {
        let mut plan = Plan {
            ops: vec![
                members(&["u9"], &["u3"]),
                members(&[], &["u4"]),
                move_and_demote("u1"),
                update(
                    "u2",
                    vec![change(
                        paths::ROLE,
                        Some(paths::ADMIN_ROLE),
                        Some(paths::USER_ROLE),
                    )],
                ),
                deactivate("u5"),
            ],
        };
        let dropped = plan.retain_losses(&LossRules::miro(), |_| false);
        assert_eq!(dropped.len(), 5);
        assert_eq!(plan.losses(&LossRules::miro()), vec![]);
        assert_eq!(plan.ops.len(), 2, "{plan:?}");
        assert!(
            matches!(&plan.ops[0], Op::GroupMembers { add, remove, .. } if add.len() == 1 && remove.is_empty())
        );
        assert!(
            matches!(&plan.ops[1], Op::Update { changes, .. } if changes.len() == 1 && changes[0].path == paths::DEPARTMENT)
        );
    }

    #[test]
    fn a_held_removal_keeps_the_rename_riding_in_its_patch() {
        let mut renamed = members(&[], &["u3"]);
        if let Op::GroupMembers { renamed_from, .. } = &mut renamed {
            *renamed_from = Some("Engineering (old)".into());
        }
        let mut plan = Plan { ops: vec![renamed] };
        let dropped = plan.retain_losses(&LossRules::miro(), |_| false);
        assert_eq!(dropped.len(), 1);
        assert!(
            matches!(&plan.ops[..], [Op::GroupMembers { add, remove, renamed_from: Some(_), .. }] if add.is_empty() && remove.is_empty()),
            "{plan:?}"
        );
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_team_unassignment_and_an_admin_role_removed_are_losses() {
        use crate::{TeamId, TeamRef};
        let team_op = |action| Op::TeamAssignment {
            source_id: SourceId::new("g1"),
            group_id: Some(ScimId::new("tg1")),
            display_name: "Engineering".into(),
            team: TeamRef {
                id: Some(TeamId::new("t9")),
                name: "Product".into(),
            },
            action,
        };
        let content = paths::admin_role("Content Admin");
        let plan = Plan {
            ops: vec![
                team_op(TeamAction::Assign),
                team_op(TeamAction::Unassign),
                update(
                    "u1",
                    vec![
                        change(&content, Some("organization_admin_role"), None),
                        change(
                            &paths::admin_role("User Admin"),
                            None,
                            Some("organization_admin_role"),
                        ),
                    ],
                ),
            ],
        };
        let losses = plan.losses(&LossRules::miro());
        assert_eq!(
            kinds(&losses),
            vec![
                (LossKind::TeamUnassign, "g1".into()),
                (LossKind::AdminDemotion, "u1".into()),
            ]
        );
        assert_eq!(losses[0].id.target_id, Some(ScimId::new("t9")));
        // Held, the unassignment goes and the role grant stays.
        let mut held = plan.clone();
        held.retain_losses(&LossRules::miro(), |_| false);
        assert_eq!(held.ops.len(), 2, "{held:?}");
        assert!(
            matches!(&held.ops[1], Op::Update { changes, .. } if changes.len() == 1 && changes[0].new.is_some())
        );
        // The ops survive a saved plan.
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
    }

    #[test]
    fn ids_name_the_target_so_an_approval_does_not_follow_a_relink() {
        let a = Plan {
            ops: vec![deactivate("u1")],
        }
        .losses(&LossRules::default());
        let mut relinked = deactivate("u1");
        if let Op::Deactivate { target_id, .. } = &mut relinked {
            *target_id = ScimId::new("other");
        }
        let b = Plan {
            ops: vec![relinked],
        }
        .losses(&LossRules::default());
        assert_ne!(a[0].id, b[0].id);
        assert_ne!(a[0].id.key(), b[0].id.key());
    }
}
