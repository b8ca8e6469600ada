//! The planning pass: index, classify, deprovision, reconcile, order.

use crate::classify::{Fate, classify, names};
use crate::deprovision::deprovision;
use crate::diff::attr_changes;
use crate::groups::UserTargets;
use crate::index::{LiveLink, TargetIndex, TargetRef, same_user_name};
use crate::input::{Diagnostic, PlanInput, PlanOutput};
use crate::order::{NewUser, order};
use crate::policy::Policy;
use crate::proof::as_pushed;
use crate::refs::Resolver;
use foldhash::HashSet;
use rayon::prelude::*;
use scimsync_model::{
    AttrValue, Attrs, Change, DeprovisionReason, DesiredUser, Link, Op, Plan, SkipReason, SourceId,
    fingerprint, paths,
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
    let mut relinks = Vec::new();
    // Before reconciling: a reference to a user this plan deletes must not be sent.
    let deleted = deprovision(
        input,
        &held,
        &classified,
        &index,
        policy,
        &mut ops,
        &mut diagnostics,
        &mut relinks,
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
            // Proved unchanged before planning (its attributes may be gone), unless the cycle
            // read it: what was read outranks any proof made from the link.
            if matches!(fate, Fate::Linked(live) if !matches!(live.target, TargetRef::User(_)))
                && proved.is_some_and(|u| u.desired(at))
            {
                return None;
            }
            let pushed = match fate {
                // A linked user the view holds was read this cycle (an uncertain user
                // verified): it is compared with what was read, never taken from its link.
                Fate::Linked(live) if matches!(live.target, TargetRef::User(_)) => None,
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
                let before = reconciler.ops.len();
                reconciler.reconcile(user, &attrs, live.target, Some(&live.link.attrs));
                if matches!(live.target, TargetRef::User(_)) {
                    relinks.extend(confirmed_link(
                        user,
                        &attrs,
                        live,
                        &reconciler.ops[before..],
                    ));
                }
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
    relinks.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    PlanOutput {
        plan: Plan { ops },
        diagnostics,
        relinks,
    }
}

/// The link of a user compared with a read of the target, as it stands once the ops planned
/// for it succeed; `None` when that is the link it has. The link is what scimsync pushed and
/// the target acknowledged: after this comparison, the target holds every desired attribute
/// (as compared), so the link becomes the desired state. Without this, a link left stale (a
/// write whose answer was lost, an edit in the target that happened to match) would make the
/// next incremental cycle, which trusts links, re-send what the target already holds.
///
/// An inactive user only has its activity confirmed: its attributes wait for reactivation
/// (the target freezes some), so the link keeps what was pushed. A userName change that could
/// not be planned (the name is taken) keeps the target's name, so it is retried.
fn confirmed_link(
    user: &DesiredUser,
    attrs: &Attrs,
    live: &LiveLink<'_>,
    planned: &[Op],
) -> Option<Link> {
    let link = live.link;
    let (user_name, active, attrs) = if user.active {
        let renamed = planned.iter().any(|op| match op {
            Op::Update { changes, .. } => changes.iter().any(|c| c.path == paths::USER_NAME),
            _ => false,
        });
        let user_name = if renamed || same_user_name(&user.user_name, live.target.user_name()) {
            user.user_name.as_str()
        } else {
            live.target.user_name()
        };
        (user_name, true, attrs.clone())
    } else {
        (live.target.user_name(), false, link.attrs.clone())
    };
    let hash = fingerprint(user_name, active, &attrs);
    (hash != link.hash || user_name != link.user_name || active != link.active).then(|| Link {
        source_id: link.source_id.clone(),
        target_id: link.target_id.clone(),
        user_name: user_name.to_owned(),
        active,
        attrs,
        hash,
    })
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
    // Suspended desired users are never added to a group, whatever it lists.
    let inactive: HashSet<&SourceId> = input
        .desired
        .iter()
        .filter(|u| !u.active)
        .map(|u| &u.source_id)
        .collect();
    let group_ops = crate::groups::plan_groups_with(groups, targets, &output.plan, &inactive);
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
        self.hold_back_licence(user, &mut changes);
        if !changes.is_empty() {
            self.ops.push(Op::Update {
                source_id: user.source_id.clone(),
                target_id: target.id().clone(),
                user_name: user.user_name.clone(),
                changes,
            });
        }
    }

    /// Takes out of `changes` a licence change the target refuses over SCIM (Miro: anything
    /// but an upgrade to Full), reported as a skip: the rest of the update still goes.
    fn hold_back_licence(&mut self, user: &DesiredUser, changes: &mut Vec<Change>) {
        let Some(licence) = &self.policy.licence else {
            return;
        };
        let Some(at) = changes.iter().position(|c| c.path == licence.path) else {
            return;
        };
        let text =
            |v: &Option<AttrValue>| v.as_ref().and_then(AttrValue::as_text).map(str::to_owned);
        let change = &changes[at];
        let (from, to) = (text(&change.old), text(&change.new));
        if licence.allows(from.as_deref(), to.as_deref()) {
            return;
        }
        changes.remove(at);
        self.ops.push(Op::Skip {
            source_id: user.source_id.clone(),
            user_name: user.user_name.clone(),
            reason: SkipReason::LicenceNotUpgrade {
                from,
                to,
                upgrades_to: licence.upgrades_to.clone(),
            },
        });
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
