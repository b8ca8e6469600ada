//! Managed users the directory no longer wants on the target: deactivated, deleted or left
//! alone, as the policy says.

use crate::classify::Classified;
use crate::index::{LiveLink, TargetIndex, TargetRef};
use crate::input::{Diagnostic, PlanInput};
use crate::policy::{OnDelete, OnUnassign, Policy};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rayon::prelude::*;
use scimsync_model::{
    DeprovisionReason, Link, Op, OutOfScopeReason, SkipReason, SourceId, fingerprint,
};

/// Pushes the deprovisioning ops and returns the sources whose target users this plan deletes.
/// A departed user read this cycle that needs no op (already inactive, or left alone) has its
/// link confirmed as read, in `relinks`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn deprovision<'a>(
    input: &PlanInput<'a>,
    held: &HashSet<&SourceId>,
    classified: &Classified<'a>,
    index: &TargetIndex<'a>,
    policy: &Policy,
    ops: &mut Vec<Op>,
    diagnostics: &mut Vec<Diagnostic>,
    relinks: &mut Vec<Link>,
) -> HashSet<&'a SourceId> {
    if input.target.complete {
        report_dead_links(input.links, held, classified, index, diagnostics);
    }
    let mut why_out: HashMap<&SourceId, &OutOfScopeReason> =
        HashMap::with_capacity(input.out_of_scope.len());
    for entry in input.out_of_scope {
        why_out.entry(&entry.source_id).or_insert(&entry.reason);
    }

    let grace_expired: HashSet<&SourceId> = input.grace_expired.iter().collect();
    let mut deleted = HashSet::new();
    // Only live links: a linked user already gone from a complete view has nothing to take away.
    // Finding the few departed among a million linked users is the cost: on all cores.
    let departed_source =
        |source_id: &SourceId| !held.contains(source_id) && !classified.contains(source_id);
    let departed: Vec<_> = match input.proved() {
        // A link of a user proved unchanged belongs to a desired user: only the others are
        // looked up (each live link once: the one its source's index entry names).
        Some(unchanged) => input
            .links
            .par_iter()
            .enumerate()
            .filter(|(at, _)| !unchanged.link(*at))
            .filter_map(|(at, _)| index.live_link_at(at))
            .filter(|live| departed_source(&live.link.source_id))
            .collect(),
        None => index
            .par_live_links()
            .filter(|live| departed_source(&live.link.source_id))
            .collect(),
    };
    for live in departed {
        let source_id = &live.link.source_id;
        let target = live.target;
        let (remove, reason) = match why_out.get(source_id) {
            Some(OutOfScopeReason::Unassigned) => {
                (policy.on_unassign, DeprovisionReason::Unassigned)
            }
            Some(OutOfScopeReason::Filtered { rule }) => (
                policy.on_unassign,
                DeprovisionReason::Filtered { rule: rule.clone() },
            ),
            Some(OutOfScopeReason::Deleted) | None => (
                match policy.on_delete {
                    OnDelete::Deactivate => OnUnassign::Deactivate,
                    OnDelete::Delete => OnUnassign::Delete,
                },
                DeprovisionReason::Deleted,
            ),
        };
        let op = match remove {
            OnUnassign::Deactivate if !target.active() => {
                relinks.extend(as_read(&live));
                continue;
            }
            OnUnassign::Deactivate => Op::Deactivate {
                source_id: source_id.clone(),
                target_id: target.id().clone(),
                user_name: target.user_name().to_owned(),
                reason,
            },
            // Deactivate now, delete after the grace period: the account and its boards stay
            // recoverable for a while after a mistaken unassignment.
            OnUnassign::Delete if policy.deactivate_first && target.active() => Op::Deactivate {
                source_id: source_id.clone(),
                target_id: target.id().clone(),
                user_name: target.user_name().to_owned(),
                reason,
            },
            OnUnassign::Delete if policy.deactivate_first && !grace_expired.contains(source_id) => {
                relinks.extend(as_read(&live));
                continue;
            }
            OnUnassign::Delete => {
                let reason = if policy.deactivate_first {
                    DeprovisionReason::GraceExpired
                } else {
                    reason
                };
                deleted.insert(source_id);
                Op::Delete {
                    source_id: source_id.clone(),
                    target_id: target.id().clone(),
                    user_name: target.user_name().to_owned(),
                    reason,
                }
            }
            OnUnassign::Ignore => {
                relinks.extend(as_read(&live));
                Op::Skip {
                    source_id: source_id.clone(),
                    user_name: target.user_name().to_owned(),
                    reason: SkipReason::PolicyIgnore,
                }
            }
        };
        ops.push(op);
    }
    deleted
}

/// The link of a departed user read this cycle, with the userName and activity it was read
/// with (its pushed attributes kept: nothing is sent to it); `None` when the link says as
/// much already, or the user was not read.
fn as_read(live: &LiveLink<'_>) -> Option<Link> {
    if !matches!(live.target, TargetRef::User(_)) {
        return None;
    }
    let link = live.link;
    let (user_name, active) = (live.target.user_name(), live.target.active());
    let hash = fingerprint(user_name, active, &link.attrs);
    (hash != link.hash || user_name != link.user_name || active != link.active).then(|| Link {
        source_id: link.source_id.clone(),
        target_id: link.target_id.clone(),
        user_name: user_name.to_owned(),
        active,
        attrs: link.attrs.clone(),
        hash,
    })
}

/// A full read shows a linked user of a departed directory user is already gone: nothing to
/// deprovision, but the store should drop the link, or the next incremental cycle would trust it.
fn report_dead_links(
    links: &[Link],
    held: &HashSet<&SourceId>,
    classified: &Classified<'_>,
    index: &TargetIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for link in links {
        let source_id = &link.source_id;
        if index.has_target(&link.target_id)
            || held.contains(source_id)
            || classified.contains(source_id)
        {
            continue;
        }
        diagnostics.push(Diagnostic::new(
            source_id,
            "link",
            format!(
                "linked target user {} is gone from the target; nothing to deprovision, the \
                 link is stale",
                link.target_id
            ),
        ));
    }
}
