//! The guard's decision, as a pure function: the losses of a plan, what is known of the
//! snapshot, the policy, the stored approval and the time in; which losses go and which are
//! held, and why, out. No store, no clock, no IO: the cycle and `plan` feed it the same facts
//! and get the same answer, and the tests below drive it directly.
//!
//! The rules, each holding the losses it is about:
//! - **empty directory**: the snapshot has no user, or every record is invalid;
//! - **invalid records**: more than `policy.max_invalid` of the records are invalid;
//! - **shrink**: the snapshot has more than `policy.max_shrink` fewer users than the last
//!   snapshot a cycle acted on;
//! - **unmatched names**: a `[scope] groups` entry matching no directory group (every loss),
//!   an `[roles] admin_groups` or `[roles.admin_roles]` entry (admin demotions), a `[groups]
//!   sync` entry (group deletes), a `[teams]` entry naming no synced group (team
//!   unassignments);
//! - **max_deprovisions**: the plan's losses together exceed `policy.max_deprovisions`.
//!
//! An approval releases only losses it names. The first four kinds of rule judge the whole
//! set they hold: an approval releases it only if it names every loss of it, so an approval
//! given for ten leavers never lets an empty or truncated export through. Over
//! `max_deprovisions`, the approved losses go and every other one is held.

use crate::config::Threshold;
use scimsync_model::{Approval, Loss, LossCounts, LossId, LossKind};
use std::collections::HashSet;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The policy's limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_deprovisions: Threshold,
    pub max_shrink: Threshold,
    pub max_invalid: Threshold,
}

/// What is known of this cycle's snapshot and of the store, besides the plan.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Linked users: the base of a percentage `max_deprovisions`.
    pub managed: usize,
    /// Records read, valid or not.
    pub directory_users: usize,
    pub invalid: usize,
    /// The user count of the last snapshot a cycle acted on without holding.
    pub last_good_users: Option<usize>,
    /// `[scope] groups`, `[roles] admin_groups` and `[groups] sync` entries matching no
    /// directory group, as written.
    pub unmatched_scope: Vec<String>,
    pub unmatched_admin: Vec<String>,
    pub unmatched_sync: Vec<String>,
    /// `[teams]` entries naming no synced directory group.
    pub unmatched_teams: Vec<String>,
}

/// A rule of the guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    EmptyDirectory,
    MaxInvalid,
    MaxShrink,
    UnmatchedScope,
    UnmatchedAdmin,
    UnmatchedSync,
    UnmatchedTeams,
    MaxDeprovisions,
}

/// One rule that held something.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reason {
    pub rule: Rule,
    pub message: String,
    /// How many losses this rule held (a loss may be held by several rules).
    pub held: usize,
}

/// What became of the stored approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalUse {
    None,
    /// Past its `expires_at` (or unreadable): ignored.
    Expired,
    /// Valid; `released` of this plan's losses go because of it.
    Valid {
        released: usize,
    },
}

/// The guard's answer.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The losses that go.
    allowed: HashSet<LossId>,
    /// The losses held, in plan order.
    pub held: Vec<Loss>,
    pub reasons: Vec<Reason>,
    pub approval: ApprovalUse,
    /// Set when more than `policy.max_invalid` of the records are invalid, whether or not
    /// anything was held: the cycle must not end as a success.
    pub invalid_over: Option<String>,
}

impl Decision {
    pub fn allows(&self, id: &LossId) -> bool {
        self.allowed.contains(id)
    }

    pub fn held_counts(&self) -> LossCounts {
        LossCounts::of(&self.held)
    }

    /// One line: "held 44 deactivations: the directory snapshot is empty …; …".
    pub fn summary(&self) -> String {
        let why: Vec<&str> = self.reasons.iter().map(|r| r.message.as_str()).collect();
        format!("held {}: {}", self.held_counts(), why.join("; "))
    }
}

/// Decides which of `losses` go.
pub fn decide(
    losses: &[Loss],
    facts: &Facts,
    limits: &Limits,
    approval: Option<&Approval>,
    now: OffsetDateTime,
) -> Decision {
    let approval_state = match approval {
        None => ApprovalUse::None,
        Some(a) => match OffsetDateTime::parse(&a.expires_at, &Rfc3339) {
            Ok(expires) if expires > now => ApprovalUse::Valid { released: 0 },
            _ => ApprovalUse::Expired,
        },
    };
    let approved: HashSet<&LossId> = match (&approval_state, approval) {
        (ApprovalUse::Valid { .. }, Some(a)) => a.losses.iter().map(|l| &l.id).collect(),
        _ => HashSet::new(),
    };
    let invalid_over = invalid_over(facts, limits);
    let all: Vec<&Loss> = losses.iter().collect();
    // Rules over a whole set: released only by an approval that names all of it.
    let mut whole: Vec<(Rule, String, Vec<&Loss>)> = Vec::new();
    let valid = facts.directory_users.saturating_sub(facts.invalid);
    if facts.directory_users == 0 {
        whole.push((
            Rule::EmptyDirectory,
            format!(
                "the directory snapshot is empty but {} users are managed",
                facts.managed
            ),
            all.clone(),
        ));
    } else if valid == 0 {
        whole.push((
            Rule::EmptyDirectory,
            format!(
                "every one of the {} directory records is invalid: as good as an empty directory",
                facts.directory_users
            ),
            all.clone(),
        ));
    }
    if let Some(message) = &invalid_over {
        whole.push((Rule::MaxInvalid, message.clone(), all.clone()));
    }
    if let Some(last_good) = facts.last_good_users {
        let shrink = last_good.saturating_sub(facts.directory_users);
        if shrink > limits.max_shrink.limit(last_good) {
            whole.push((
                Rule::MaxShrink,
                format!(
                    "the directory snapshot shrank from {last_good} to {} users, more than \
                     policy.max_shrink = {}",
                    facts.directory_users, limits.max_shrink
                ),
                all.clone(),
            ));
        }
    }
    let names = |list: &[String]| list.join(", ");
    if !facts.unmatched_scope.is_empty() {
        whole.push((
            Rule::UnmatchedScope,
            format!(
                "[scope] groups entry {} matches no directory group, so who is in scope is not \
                 what sync.toml says",
                names(&facts.unmatched_scope)
            ),
            all.clone(),
        ));
    }
    if !facts.unmatched_admin.is_empty() {
        whole.push((
            Rule::UnmatchedAdmin,
            format!(
                "[roles] entry {} matches no directory group, so its members would lose their \
                 admin role",
                names(&facts.unmatched_admin)
            ),
            of_kind(&all, LossKind::AdminDemotion),
        ));
    }
    if !facts.unmatched_sync.is_empty() {
        whole.push((
            Rule::UnmatchedSync,
            format!(
                "[groups] sync entry {} matches no directory group (a renamed group?), so its \
                 group would be deleted",
                names(&facts.unmatched_sync)
            ),
            of_kind(&all, LossKind::GroupDelete),
        ));
    }
    if !facts.unmatched_teams.is_empty() {
        whole.push((
            Rule::UnmatchedTeams,
            format!(
                "[teams] entry {} names no synced directory group (a renamed group?), so its \
                 user group would be taken off its teams",
                names(&facts.unmatched_teams)
            ),
            of_kind(&all, LossKind::TeamUnassign),
        ));
    }

    let mut held: HashSet<&LossId> = HashSet::new();
    let mut reasons = Vec::new();
    for (rule, message, set) in whole {
        if set.is_empty() || set.iter().all(|l| approved.contains(&l.id)) {
            continue;
        }
        let counts = LossCounts::of(set.iter().copied());
        held.extend(set.iter().map(|l| &l.id));
        reasons.push(Reason {
            rule,
            message: format!("{message} ({counts} held)"),
            held: set.len(),
        });
    }

    // Over max_deprovisions: whatever the approval does not name waits.
    let limit = limits.max_deprovisions.limit(facts.managed);
    if losses.len() > limit {
        let unapproved: Vec<&Loss> = all
            .iter()
            .copied()
            .filter(|l| !approved.contains(&l.id))
            .collect();
        if !unapproved.is_empty() {
            let counts = LossCounts::of(losses);
            held.extend(unapproved.iter().map(|l| &l.id));
            reasons.push(Reason {
                rule: Rule::MaxDeprovisions,
                message: format!(
                    "{} access-removing changes ({counts}) exceed policy.max_deprovisions = {} \
                     ({limit} of {} managed users){}",
                    losses.len(),
                    limits.max_deprovisions,
                    facts.managed,
                    if unapproved.len() < losses.len() {
                        format!("; {} of them not approved", unapproved.len())
                    } else {
                        String::new()
                    }
                ),
                held: unapproved.len(),
            });
        }
    }

    let held_losses: Vec<Loss> = losses
        .iter()
        .filter(|l| held.contains(&l.id))
        .cloned()
        .collect();
    let allowed: HashSet<LossId> = losses
        .iter()
        .filter(|l| !held.contains(&l.id))
        .map(|l| l.id.clone())
        .collect();
    let approval_state = match approval_state {
        ApprovalUse::Valid { .. } => ApprovalUse::Valid {
            released: losses
                .iter()
                .filter(|l| allowed.contains(&l.id) && approved.contains(&l.id))
                .count(),
        },
        other => other,
    };
    Decision {
        allowed,
        held: held_losses,
        reasons,
        approval: approval_state,
        invalid_over,
    }
}

fn of_kind<'a>(losses: &[&'a Loss], kind: LossKind) -> Vec<&'a Loss> {
    losses
        .iter()
        .copied()
        .filter(|l| l.id.kind == kind)
        .collect()
}

/// The message when more than `policy.max_invalid` of the records are invalid.
fn invalid_over(facts: &Facts, limits: &Limits) -> Option<String> {
    let limit = limits.max_invalid.limit(facts.directory_users);
    (facts.invalid > limit).then(|| {
        format!(
            "{} of the {} directory records are invalid, more than policy.max_invalid = {}",
            facts.invalid, facts.directory_users, limits.max_invalid
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use scimsync_model::{
        AttrValue, Attrs, Change, DeprovisionReason, GroupDeleteReason, LossRules, Member, Op,
        Plan, ScimId, SourceId, paths,
    };
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    fn limits() -> Limits {
        Limits {
            max_deprovisions: Threshold::Percent(10.0),
            max_shrink: Threshold::Percent(20.0),
            max_invalid: Threshold::Percent(10.0),
        }
    }

    fn facts(managed: usize, directory_users: usize) -> Facts {
        Facts {
            managed,
            directory_users,
            last_good_users: Some(directory_users),
            ..Facts::default()
        }
    }

    fn deactivate(i: usize) -> Op {
        Op::Deactivate {
            source_id: SourceId::new(format!("u{i}")),
            target_id: ScimId::new(format!("t{i}")),
            user_name: format!("u{i}@x.com"),
            reason: DeprovisionReason::Unassigned,
        }
    }

    fn leavers(range: std::ops::Range<usize>) -> Plan {
        Plan {
            ops: range.map(deactivate).collect(),
        }
    }

    fn approval_of(losses: &[Loss], expires: OffsetDateTime) -> Approval {
        Approval {
            hold_run: None,
            digest: scimsync_model::loss_digest(losses.iter().map(|l| &l.id)),
            approved_at: scimsync_store::rfc3339(NOW),
            approved_by: "alice".into(),
            expires_at: scimsync_store::rfc3339(expires),
            losses: losses.to_vec(),
        }
    }

    fn losses(plan: &Plan) -> Vec<Loss> {
        plan.losses(&LossRules::miro())
    }

    #[test]
    fn under_the_threshold_everything_goes_without_an_approval() {
        let l = losses(&leavers(0..4));
        let d = decide(&l, &facts(44, 44), &limits(), None, NOW);
        assert!(d.held.is_empty());
        assert!(l.iter().all(|l| d.allows(&l.id)));
    }

    /// The hole the issue found: a stray approval (nothing was held) never lets an empty
    /// export through. Here even an approval naming every loss of a different set cannot.
    #[test]
    fn an_empty_directory_holds_everything_an_approval_does_not_name_whole() {
        let all = losses(&leavers(0..44));
        let approval = approval_of(&all[..10], NOW + time::Duration::hours(1));
        let d = decide(&all, &facts(44, 0), &limits(), Some(&approval), NOW);
        assert_eq!(d.held.len(), 44);
        assert_eq!(d.reasons[0].rule, Rule::EmptyDirectory);
        assert!(d.summary().contains("empty"), "{}", d.summary());
        // Approved exactly (after a hold that listed all 44), it goes.
        let approval = approval_of(&all, NOW + time::Duration::hours(1));
        let d = decide(&all, &facts(44, 0), &limits(), Some(&approval), NOW);
        assert!(d.held.is_empty());
        assert_eq!(d.approval, ApprovalUse::Valid { released: 44 });
    }

    /// Approve 10 held leavers, then read a snapshot truncated to 10 users: the 30 new ones
    /// are held, and with them the 10 (the snapshot shrank: the approval was for another set).
    #[test]
    fn an_approval_for_ten_does_not_release_a_truncated_snapshots_forty() {
        let ten = losses(&leavers(0..10));
        let forty = losses(&leavers(0..40));
        let approval = approval_of(&ten, NOW + time::Duration::hours(1));
        let mut f = facts(50, 10);
        f.last_good_users = Some(50);
        let d = decide(&forty, &f, &limits(), Some(&approval), NOW);
        assert_eq!(d.held.len(), 40);
        assert!(d.reasons.iter().any(|r| r.rule == Rule::MaxShrink));
        // Without the shrink (the snapshot is whole), only the approved ten go.
        let d = decide(&forty, &facts(50, 50), &limits(), Some(&approval), NOW);
        assert_eq!(d.held.len(), 30);
        assert!(ten.iter().all(|l| d.allows(&l.id)));
        assert_eq!(d.reasons[0].rule, Rule::MaxDeprovisions);
    }

    #[test]
    fn an_expired_approval_releases_nothing() {
        let all = losses(&leavers(0..10));
        let approval = approval_of(&all, NOW - time::Duration::seconds(1));
        let d = decide(&all, &facts(50, 50), &limits(), Some(&approval), NOW);
        assert_eq!(d.approval, ApprovalUse::Expired);
        assert_eq!(d.held.len(), 10);
    }

    #[test]
    fn too_many_invalid_records_hold_everything_and_flag_the_cycle() {
        let all = losses(&leavers(0..2));
        let mut f = facts(50, 50);
        f.invalid = 6;
        let d = decide(&all, &f, &limits(), None, NOW);
        assert_eq!(d.held.len(), 2);
        assert!(d.invalid_over.as_deref().unwrap().contains("6 of the 50"));
        // Flagged even with nothing to hold.
        assert!(decide(&[], &f, &limits(), None, NOW).invalid_over.is_some());
        // Every record invalid is the empty-directory rule too.
        f.invalid = 50;
        let d = decide(&all, &f, &limits(), None, NOW);
        assert!(d.reasons.iter().any(|r| r.rule == Rule::EmptyDirectory));
    }

    #[test]
    fn an_unmatched_admin_group_holds_demotions_only() {
        let mut plan = leavers(0..1);
        plan.ops.push(Op::Update {
            source_id: SourceId::new("a1"),
            target_id: ScimId::new("ta1"),
            user_name: "a1@x.com".into(),
            changes: vec![Change {
                path: paths::ROLE.into(),
                old: Some(AttrValue::text(paths::ADMIN_ROLE)),
                new: Some(AttrValue::text(paths::USER_ROLE)),
            }],
        });
        let l = losses(&plan);
        let mut f = facts(50, 50);
        f.unmatched_admin = vec!["\"Miro Admin\"".into()];
        let d = decide(&l, &f, &limits(), None, NOW);
        assert_eq!(d.held.len(), 1);
        assert_eq!(d.held[0].id.kind, LossKind::AdminDemotion);
        assert!(d.allows(&l[0].id), "the leaver goes");
    }

    // -----------------------------------------------------------------------------------------
    // The property: no loss outside an approved set is applied when a threshold is exceeded.

    #[derive(Clone, Debug)]
    enum UserOp {
        None,
        Deactivate,
        Delete,
        Demote,
        Rename,
    }

    fn user_op() -> impl Strategy<Value = UserOp> {
        prop_oneof![
            Just(UserOp::None),
            Just(UserOp::Deactivate),
            Just(UserOp::Delete),
            Just(UserOp::Demote),
            Just(UserOp::Rename),
        ]
    }

    fn build_plan(users: &[UserOp], groups: &[(Vec<usize>, Vec<usize>)], deletes: usize) -> Plan {
        let mut ops = vec![Op::Create {
            source_id: SourceId::new("new"),
            user_name: "new@x.com".into(),
            attrs: Attrs::new(),
        }];
        let id = |i: usize| SourceId::new(format!("u{i}"));
        let target = |i: usize| ScimId::new(format!("t{i}"));
        for (i, op) in users.iter().enumerate() {
            let update = |changes| Op::Update {
                source_id: id(i),
                target_id: target(i),
                user_name: format!("u{i}@x.com"),
                changes,
            };
            let rename = Change {
                path: paths::DISPLAY_NAME.into(),
                old: Some(AttrValue::text("A")),
                new: Some(AttrValue::text("B")),
            };
            match op {
                UserOp::None => {}
                UserOp::Deactivate => ops.push(deactivate(i)),
                UserOp::Delete => ops.push(Op::Delete {
                    source_id: id(i),
                    target_id: target(i),
                    user_name: format!("u{i}@x.com"),
                    reason: DeprovisionReason::Deleted,
                }),
                UserOp::Demote => ops.push(update(vec![
                    rename,
                    Change {
                        path: paths::ROLE.into(),
                        old: Some(AttrValue::text(paths::ADMIN_ROLE)),
                        new: Some(AttrValue::text(paths::USER_ROLE)),
                    },
                ])),
                UserOp::Rename => ops.push(update(vec![rename])),
            }
        }
        let member = |i: usize| Member {
            source_id: id(i),
            user_name: format!("u{i}@x.com"),
            target_id: Some(target(i)),
        };
        for (g, (add, remove)) in groups.iter().enumerate() {
            if add.is_empty() && remove.is_empty() {
                continue;
            }
            ops.push(Op::GroupMembers {
                source_id: SourceId::new(format!("g{g}")),
                target_id: Some(ScimId::new(format!("tg{g}"))),
                display_name: format!("Group {g}"),
                add: add.iter().map(|&i| member(i)).collect(),
                remove: remove.iter().map(|&i| member(i)).collect(),
                renamed_from: None,
            });
        }
        for g in 0..deletes {
            ops.push(Op::GroupDelete {
                source_id: SourceId::new(format!("gd{g}")),
                target_id: ScimId::new(format!("tgd{g}")),
                display_name: format!("Gone {g}"),
                reason: GroupDeleteReason::GoneFromDirectory,
            });
        }
        Plan { ops }
    }

    /// What must survive any hold: the create, every add, every non-loss change.
    fn kept(plan: &Plan) -> (usize, usize, usize) {
        let mut creates = 0;
        let mut adds = 0;
        let mut renames = 0;
        for op in &plan.ops {
            match op {
                Op::Create { .. } => creates += 1,
                Op::GroupMembers { add, .. } => adds += add.len(),
                Op::Update { changes, .. } => {
                    renames += changes
                        .iter()
                        .filter(|c| c.path == paths::DISPLAY_NAME)
                        .count()
                }
                _ => {}
            }
        }
        (creates, adds, renames)
    }

    fn threshold() -> impl Strategy<Value = Threshold> {
        prop_oneof![
            (0usize..12).prop_map(Threshold::Count),
            (0u8..60).prop_map(|p| Threshold::Percent(f64::from(p))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn no_loss_outside_an_approved_set_goes_when_a_threshold_is_exceeded(
            users in proptest::collection::vec(user_op(), 0..16),
            groups in proptest::collection::vec(
                (
                    proptest::collection::btree_set(0usize..16, 0..4),
                    proptest::collection::btree_set(0usize..16, 0..6),
                ),
                0..3,
            ),
            deletes in 0usize..3,
            managed in 0usize..40,
            directory_users in 0usize..40,
            invalid_share in 0usize..=100,
            last_good in proptest::option::of(0usize..60),
            unmatched in (any::<bool>(), any::<bool>(), any::<bool>()),
            limits in (threshold(), threshold(), threshold()),
            approve in proptest::collection::vec(any::<bool>(), 40),
            expired in any::<bool>(),
        ) {
            let groups: Vec<(Vec<usize>, Vec<usize>)> = groups
                .into_iter()
                .map(|(a, r)| (a.into_iter().collect(), r.into_iter().collect()))
                .collect();
            let mut plan = build_plan(&users, &groups, deletes);
            let before = kept(&plan);
            let rules = LossRules::miro();
            let losses = plan.losses(&rules);
            let limits = Limits {
                max_deprovisions: limits.0,
                max_shrink: limits.1,
                max_invalid: limits.2,
            };
            let facts = Facts {
                managed,
                directory_users,
                invalid: directory_users * invalid_share / 100,
                last_good_users: last_good,
                unmatched_scope: if unmatched.0 { vec!["x".into()] } else { vec![] },
                unmatched_admin: if unmatched.1 { vec!["y".into()] } else { vec![] },
                unmatched_sync: if unmatched.2 { vec!["z".into()] } else { vec![] },
                unmatched_teams: vec![],
            };
            let approved: Vec<Loss> = losses
                .iter()
                .zip(&approve)
                .filter(|(_, a)| **a)
                .map(|(l, _)| l.clone())
                .collect();
            let expires = if expired { NOW - time::Duration::minutes(1) } else { NOW + time::Duration::hours(1) };
            let approval = approval_of(&approved, expires);
            let decision = decide(&losses, &facts, &limits, Some(&approval), NOW);
            plan.retain_losses(&rules, |id| decision.allows(id));
            let applied = plan.losses(&rules);

            // What goes is exactly what the decision allows, and the rest is held.
            let applied_ids: HashSet<&LossId> = applied.iter().map(|l| &l.id).collect();
            let held_ids: HashSet<&LossId> = decision.held.iter().map(|l| &l.id).collect();
            prop_assert_eq!(applied_ids.len() + held_ids.len(), losses.len());
            prop_assert!(applied_ids.is_disjoint(&held_ids));
            prop_assert!(losses.iter().all(|l| decision.allows(&l.id) == applied_ids.contains(&l.id)));
            // A hold never costs a create, an add or an ordinary change.
            prop_assert_eq!(kept(&plan), before);

            // The thresholds, worked out here on their own.
            let valid_approval: HashSet<&LossId> = if expired {
                HashSet::new()
            } else {
                approved.iter().map(|l| &l.id).collect()
            };
            let over_count = losses.len() > limits.max_deprovisions.limit(managed);
            let empty = directory_users == 0 || facts.invalid == directory_users;
            let too_invalid = facts.invalid > limits.max_invalid.limit(directory_users);
            let shrunk = last_good.is_some_and(|g| g.saturating_sub(directory_users) > limits.max_shrink.limit(g));
            let whole_rule = empty || too_invalid || shrunk || unmatched.0;
            if over_count || whole_rule {
                for loss in &applied {
                    prop_assert!(
                        valid_approval.contains(&loss.id),
                        "{} applied over a threshold without approval", loss
                    );
                }
            }
            if whole_rule && !applied.is_empty() {
                // Released only by an approval that names the whole set.
                prop_assert!(losses.iter().all(|l| valid_approval.contains(&l.id)));
            }
            if unmatched.1 {
                let demotions = losses.iter().filter(|l| l.id.kind == LossKind::AdminDemotion);
                let all_approved = losses
                    .iter()
                    .filter(|l| l.id.kind == LossKind::AdminDemotion)
                    .all(|l| valid_approval.contains(&l.id));
                if !all_approved {
                    for d in demotions {
                        prop_assert!(!applied_ids.contains(&d.id));
                    }
                }
            }
        }
    }
}
