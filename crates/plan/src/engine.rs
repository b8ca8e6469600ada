//! The planning pass: index, classify, deprovision, reconcile, order.

use crate::classify::{Fate, classify, names};
use crate::deprovision::deprovision;
use crate::diff::attr_changes;
use crate::groups::UserTargets;
use crate::index::{TargetIndex, TargetRef, same_user_name};
use crate::input::{Diagnostic, PlanInput, PlanOutput};
use crate::order::{NewUser, order};
use crate::policy::Policy;
use crate::proof::as_pushed;
use crate::refs::Resolver;
use foldhash::HashSet;
use rayon::prelude::*;
use scimsync_model::{
    AttrValue, Attrs, Change, DeprovisionReason, DesiredUser, Op, Plan, SkipReason, SourceId, paths,
};
use std::borrow::Cow;

/// Plans the operations that bring the target to the desired state. Pure and deterministic:
/// the same input gives the same output, byte for byte.
pub fn plan(input: &PlanInput<'_>, policy: &Policy) -> PlanOutput {
    let held: HashSet<&SourceId> = input.held.iter().collect();
    let guests: HashSet<_> = input.guests.iter().map(|g| crate::index::fold(g)).collect();
    let proved = input.proved();
    // The target's index and the desired users' names are independent: one core each.
    let ((index, mut diagnostics), (names, named)) = rayon::join(
        || {
            let mut diagnostics = Vec::new();
            let index = TargetIndex::build(
                input.target,
                input.links,
                input.desired,
                proved,
                &mut diagnostics,
            );
            (index, diagnostics)
        },
        || {
            let mut diagnostics = Vec::new();
            let proved = proved.and_then(|p| Some((p.linked(input.links)?, p)));
            (
                names(input.desired, &held, proved, &mut diagnostics),
                diagnostics,
            )
        },
    );
    diagnostics.extend(named);
    let classified = classify(input.desired, names, &held, &guests, &index, proved);

    let mut ops = Vec::new();
    // Before reconciling: a reference to a user this plan deletes must not be sent.
    let deleted = deprovision(
        input,
        &held,
        &classified,
        &index,
        policy,
        &mut ops,
        &mut diagnostics,
    );
    let resolver = Resolver {
        classified: &classified,
        index: &index,
        deleted: &deleted,
    };
    let mut reconciler = Reconciler {
        index: &index,
        policy,
        ops,
        diagnostics,
    };
    let mut creates = Vec::new();

    // Resolving references and the incremental fast path's fingerprint are the per-user part
    // of planning, independent of one another: done on all cores first, consumed in order.
    let complete = input.target.complete;
    let mut resolved = classified
        .users
        .par_iter()
        .enumerate()
        .map(|(at, (user, fate))| {
            if matches!(fate, Fate::Linked(_)) && proved.is_some_and(|u| u.desired(at)) {
                // Proved unchanged before planning; its attributes may be gone.
                return None;
            }
            let pushed = match fate {
                Fate::Linked(live) => Some(live.link),
                Fate::Adopt(_) | Fate::Create => None,
                _ => return None,
            };
            let mut diagnostics = Vec::new();
            let attrs = resolver.resolve(&user.source_id, &user.attrs, &mut diagnostics);
            // The link records what was last pushed and acknowledged; on an incremental
            // cycle the target view is the links, so the state it recorded is the target's.
            let unchanged = !complete
                && pushed.is_some_and(|link| {
                    let attrs = attrs.iter().map(|(path, value)| (path.as_str(), value));
                    as_pushed(link, &user.user_name, user.active, attrs)
                });
            if unchanged && diagnostics.is_empty() {
                // The common case on an incremental cycle: nothing to keep (a word per user).
                return None;
            }
            Some(Box::new(Resolved {
                attrs,
                diagnostics,
                unchanged,
            }))
        })
        .collect::<Vec<_>>()
        .into_iter();

    for (user, fate) in &classified.users {
        // `None` for a resolving fate means an unchanged linked user with nothing to report.
        let resolved = resolved.next().flatten().map(|boxed| {
            let Resolved {
                attrs,
                diagnostics,
                unchanged,
            } = *boxed;
            reconciler.diagnostics.extend(diagnostics);
            (attrs, unchanged)
        });
        let skip = |reason| Op::Skip {
            source_id: user.source_id.clone(),
            user_name: user.user_name.clone(),
            reason,
        };
        match fate {
            Fate::Held | Fate::SecondRecord => {}
            Fate::Duplicate { other } => reconciler.ops.push(skip(SkipReason::DuplicateUserName {
                other: (*other).clone(),
            })),
            Fate::Taken { other } => reconciler.ops.push(skip(SkipReason::UserNameTakenByLinked {
                other: (*other).clone(),
            })),
            Fate::Guest => reconciler.ops.push(skip(SkipReason::TargetGuest)),
            Fate::InactiveNotProvisioned => {
                reconciler
                    .ops
                    .push(skip(SkipReason::InactiveNotProvisioned));
            }
            Fate::Linked(live) => {
                let Some((attrs, false)) = resolved else {
                    continue;
                };
                reconciler.reconcile(user, &attrs, live.target, Some(&live.link.attrs));
            }
            Fate::Adopt(target) => {
                let Some((attrs, _)) = resolved else {
                    continue;
                };
                reconciler.ops.push(Op::Adopt {
                    source_id: user.source_id.clone(),
                    target_id: target.id().clone(),
                    user_name: target.user_name().to_owned(),
                });
                // Nothing was pushed to an adopted user yet, so nothing of it is removed.
                reconciler.reconcile(user, &attrs, *target, None);
            }
            Fate::Create => {
                let Some((attrs, _)) = resolved else {
                    continue;
                };
                creates.push(NewUser {
                    source_id: user.source_id.clone(),
                    user_name: user.user_name.clone(),
                    attrs: without_reserved(attrs.into_owned()),
                });
            }
        }
    }

    let Reconciler {
        ops,
        mut diagnostics,
        ..
    } = reconciler;
    let ops = order(ops, creates, &mut diagnostics);
    diagnostics.sort();
    PlanOutput {
        plan: Plan { ops },
        diagnostics,
    }
}

/// A desired user's attributes as they can be sent, and what resolving them had to report.
struct Resolved<'x> {
    attrs: Cow<'x, Attrs>,
    diagnostics: Vec<Diagnostic>,
    /// Linked, on an incremental cycle, and the fingerprint equals the link's hash.
    unchanged: bool,
}

/// `plan`, then the group ops that follow it (links, renames, membership diffs, deletes).
pub fn plan_with_groups(
    input: &PlanInput<'_>,
    groups: &crate::groups::GroupPlanInput<'_>,
    policy: &Policy,
) -> PlanOutput {
    // The group side takes the user links as the user plan does: through the index the
    // cycle proved its unchanged users against, or else its own, built on a second core.
    let shared = input
        .proved()
        .map(crate::Proof::index)
        .filter(|_| std::ptr::eq(input.links, groups.user_links));
    let (mut output, targets) = match shared {
        Some(index) => (
            plan(input, policy),
            UserTargets::with_index(groups.user_links, Cow::Borrowed(index)),
        ),
        None => rayon::join(
            || plan(input, policy),
            || UserTargets::new(groups.user_links),
        ),
    };
    let group_ops = crate::groups::plan_groups_with(groups, targets, &output.plan);
    let ops = std::mem::take(&mut output.plan.ops);
    output.plan.ops = crate::order::merge_groups(ops, group_ops);
    output
}

/// userName and active travel in their own fields; a mapping that also put them in `attrs`
/// must not send them twice.
fn without_reserved(mut attrs: Attrs) -> Attrs {
    attrs.remove(paths::USER_NAME);
    attrs.remove(paths::ACTIVE);
    attrs
}

struct Reconciler<'i, 'a> {
    index: &'i TargetIndex<'a>,
    policy: &'i Policy,
    ops: Vec<Op>,
    diagnostics: Vec<Diagnostic>,
}

impl Reconciler<'_, '_> {
    /// The ops that bring an existing target user to the desired user. `pushed` is what
    /// scimsync sent before (the link's attributes), the only attributes it may remove.
    fn reconcile(
        &mut self,
        user: &DesiredUser,
        attrs: &Attrs,
        target: TargetRef<'_>,
        pushed: Option<&Attrs>,
    ) {
        if !user.active {
            // A suspended user only loses access; its attributes wait for reactivation, when
            // the target no longer freezes them.
            if target.active() {
                self.ops.push(Op::Deactivate {
                    source_id: user.source_id.clone(),
                    target_id: target.id().clone(),
                    user_name: user.user_name.clone(),
                    reason: DeprovisionReason::Suspended,
                });
            }
            return;
        }

        let mut changes = Vec::new();
        // First in the PATCH: the target refuses userName and role changes to inactive users.
        if !target.active() {
            changes.push(Change {
                path: paths::ACTIVE.to_owned(),
                old: Some(AttrValue::text("false")),
                new: Some(AttrValue::text("true")),
            });
        }
        if !same_user_name(&user.user_name, target.user_name()) && self.user_name_free(user, target)
        {
            changes.push(Change {
                path: paths::USER_NAME.to_owned(),
                old: Some(AttrValue::text(target.user_name())),
                new: Some(AttrValue::text(user.user_name.as_str())),
            });
        }
        changes.extend(attr_changes(
            attrs,
            target.attrs(),
            pushed,
            &self.policy.create_only,
        ));
        if !changes.is_empty() {
            self.ops.push(Op::Update {
                source_id: user.source_id.clone(),
                target_id: target.id().clone(),
                user_name: user.user_name.clone(),
                changes,
            });
        }
    }

    /// Whether the email change of `user` can be sent: the target would answer 400 "not
    /// unique" if another of its users holds the new userName. When one does, the rest of
    /// the update still goes and the rename waits, reported, until the name is free.
    fn user_name_free(&mut self, user: &DesiredUser, target: TargetRef<'_>) -> bool {
        let Some(holder) = self.index.by_name(&user.user_name) else {
            return true;
        };
        if holder.id() == target.id() {
            return true;
        }
        match self.index.owner(holder.id()) {
            Some(other) => self.ops.push(Op::Skip {
                source_id: user.source_id.clone(),
                user_name: user.user_name.clone(),
                reason: SkipReason::UserNameTakenByLinked {
                    other: other.clone(),
                },
            }),
            None => self.diagnostics.push(Diagnostic::new(
                &user.source_id,
                paths::USER_NAME,
                format!(
                    "target user {} (not managed by scimsync) already has userName {}; the email \
                     change waits until it is renamed or removed",
                    holder.id(),
                    holder.user_name()
                ),
            )),
        }
        false
    }
}
