//! Execution order: adopts, then creates with every referenced user created before the users
//! that refer to it, then everything else by phase and userName.

use crate::input::Diagnostic;
use foldhash::HashMap;
use scimsync_model::{AttrKey, AttrValue, Attrs, Op, SourceId};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// How a diagnostic says a reference cut from a create is sent later (tests look for it).
pub(crate) const SET_NEXT_CYCLE: &str = "set by update on the next cycle";

/// A user the plan creates, before it becomes an `Op::Create`.
pub(crate) struct NewUser {
    pub source_id: SourceId,
    pub user_name: String,
    pub attrs: Attrs,
}

fn by_name_then_source(a: &Op, b: &Op) -> std::cmp::Ordering {
    (a.phase(), a.user_name(), a.source_id()).cmp(&(b.phase(), b.user_name(), b.source_id()))
}

pub(crate) fn order(
    ops: Vec<Op>,
    creates: Vec<NewUser>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Op> {
    let (mut adopts, mut rest): (Vec<Op>, Vec<Op>) = ops
        .into_iter()
        .partition(|op| matches!(op, Op::Adopt { .. }));
    adopts.sort_by(by_name_then_source);
    rest.sort_by(by_name_then_source);
    let mut ordered = adopts;
    ordered.reserve(creates.len() + rest.len());
    ordered.extend(topological(creates, diagnostics));
    ordered.extend(rest);
    ordered
}

/// Kahn's algorithm with ties broken by (userName, source id). A reference cycle (or a user
/// referring to itself) cannot be created in one pass: the smallest waiting user is created
/// without its references to users not yet created, and the next cycle sets them by update.
fn topological(mut creates: Vec<NewUser>, diagnostics: &mut Vec<Diagnostic>) -> Vec<Op> {
    let n = creates.len();
    let mut rank_order: Vec<usize> = (0..n).collect();
    rank_order.sort_by(|&a, &b| {
        (&creates[a].user_name, &creates[a].source_id)
            .cmp(&(&creates[b].user_name, &creates[b].source_id))
    });
    let mut rank = vec![0; n];
    for (r, &i) in rank_order.iter().enumerate() {
        rank[i] = r;
    }

    let mut waits_on = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    // (path, referenced create) per create, kept to cut a cycle without another search.
    let mut refs: Vec<Vec<(AttrKey, usize)>> = vec![Vec::new(); n];
    {
        let at: HashMap<&SourceId, usize> = creates
            .iter()
            .enumerate()
            .map(|(i, c)| (&c.source_id, i))
            .collect();
        for (i, create) in creates.iter().enumerate() {
            for (path, value) in &create.attrs {
                let AttrValue::Ref { user } = value else {
                    continue;
                };
                let Some(&j) = at.get(user) else { continue };
                waits_on[i] += 1;
                dependents[j].push(i);
                refs[i].push((path.clone(), j));
            }
        }
    }

    let mut waiting: BTreeSet<usize> = (0..n).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..n)
        .filter(|&i| waits_on[i] == 0)
        .map(|i| Reverse(rank[i]))
        .collect();
    let mut created = vec![false; n];
    let mut sequence = Vec::with_capacity(n);
    while !waiting.is_empty() {
        let next = match ready.pop() {
            Some(Reverse(r)) => rank_order[r],
            None => {
                let Some(&r) = waiting.first() else { break };
                let i = rank_order[r];
                break_cycle(&mut creates[i], &refs[i], &created, diagnostics);
                i
            }
        };
        waiting.remove(&rank[next]);
        created[next] = true;
        sequence.push(next);
        for &d in &dependents[next] {
            if created[d] {
                continue;
            }
            waits_on[d] = waits_on[d].saturating_sub(1);
            if waits_on[d] == 0 {
                ready.push(Reverse(rank[d]));
            }
        }
    }

    let mut slots: Vec<Option<NewUser>> = creates.into_iter().map(Some).collect();
    sequence
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .map(|c| Op::Create {
            source_id: c.source_id,
            user_name: c.user_name,
            attrs: c.attrs,
        })
        .collect()
}

/// Drops from `create` every reference to a user not yet created (itself included).
fn break_cycle(
    create: &mut NewUser,
    refs: &[(AttrKey, usize)],
    created: &[bool],
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (path, j) in refs {
        if created.get(*j).copied().unwrap_or(true) {
            continue;
        }
        if let Some(AttrValue::Ref { user }) = create.attrs.remove(path) {
            diagnostics.push(Diagnostic::new(
                &create.source_id,
                path.as_str(),
                format!(
                    "refers to directory user {user}, created in this plan after this user \
                     (a reference cycle); {SET_NEXT_CYCLE}"
                ),
            ));
        }
    }
}

/// Places group ops among the ordered user ops: by phase (a stable sort, so the user order
/// within a phase stands), and within the membership phase the groups with adds before those
/// that only remove, so a user moving between groups is added before being removed.
pub(crate) fn merge_groups(mut ops: Vec<Op>, mut groups: Vec<Op>) -> Vec<Op> {
    groups.sort_by(|a, b| {
        let key = |op: &Op| {
            let only_removes = matches!(op, Op::GroupMembers { add, .. } if add.is_empty());
            (
                only_removes,
                op.user_name().to_owned(),
                op.source_id().clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    ops.extend(groups);
    ops.sort_by_key(Op::phase);
    ops
}
