//! Decides, for each desired user, how it relates to the target: already linked, adoptable by
//! userName, to be created, or skipped (and why). Everything else in the plan follows from this.

use crate::Proof;
use crate::index::{LiveLink, TargetIndex, TargetRef, fold};
use crate::input::Diagnostic;
use crate::links::Linked;
use foldhash::{HashMap, HashMapExt, HashSet};
use rayon::prelude::*;
use scimsync_model::{DesiredUser, SourceId};
use std::borrow::Cow;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Fate<'a> {
    /// Invalid in the directory: the planner acts as if it had never seen the record.
    Held,
    /// A second record with a source id already seen; the first one is planned.
    SecondRecord,
    /// Another desired user with a smaller source id has the same userName.
    Duplicate {
        other: &'a SourceId,
    },
    /// Suspended and nowhere on the target.
    InactiveNotProvisioned,
    /// The target refused this userName as a guest's before.
    Guest,
    /// The target user with this userName belongs to another directory user.
    Taken {
        other: &'a SourceId,
    },
    Linked(LiveLink<'a>),
    Adopt(TargetRef<'a>),
    Create,
}

pub(crate) struct Classified<'a> {
    pub users: Vec<(&'a DesiredUser, Fate<'a>)>,
    by_source: BySource<'a>,
}

impl<'a> Classified<'a> {
    pub fn contains(&self, source_id: &SourceId) -> bool {
        self.by_source.first(source_id).is_some()
    }

    pub fn fate(&self, source_id: &SourceId) -> Option<Fate<'a>> {
        let at = self.by_source.first(source_id)?;
        self.users.get(at).map(|(_, fate)| *fate)
    }
}

/// Who owns what among the desired users: the first record of each source id, and the winner
/// of each userName. Independent of the target, so it is built while the target is indexed.
pub(crate) struct Names<'a> {
    by_source: BySource<'a>,
    first_record: Vec<bool>,
    owners: Owners<'a>,
}

/// Where the first record of each source id is among the desired users.
struct BySource<'a> {
    /// The users not proved unchanged (every user, without a proof).
    others: HashMap<&'a SourceId, usize>,
    /// The proof, with the links it names: a proved user is its source id's only record,
    /// found through its link.
    proved: Option<(Linked<'a>, &'a Proof)>,
}

impl BySource<'_> {
    fn first(&self, source_id: &SourceId) -> Option<usize> {
        if let Some(at) = self.others.get(source_id) {
            return Some(*at);
        }
        let (linked, proof) = self.proved?;
        proof.desired_of(linked.live(source_id.as_str())?)
    }
}

/// Who wins each userName (among first records not held: the smallest source id).
enum Owners<'a> {
    /// By folded userName.
    ByName(HashMap<Cow<'a, str>, &'a SourceId>),
    /// By position: when the desired users come sorted by userName then source id with every
    /// userName already folded (as mapping hands them over), the users sharing a name are
    /// adjacent and the winner is the first of them that can win. No map of a million names.
    ByPosition(Vec<Option<&'a SourceId>>),
}

impl<'a> Owners<'a> {
    fn owner(&self, at: usize, user: &DesiredUser) -> Option<&'a SourceId> {
        match self {
            Owners::ByName(owners) => owners.get(fold(&user.user_name).as_ref()).copied(),
            Owners::ByPosition(owners) => owners.get(at).copied().flatten(),
        }
    }
}

/// When `desired` is sorted by userName then source id with every userName folded already
/// (equal folded names are then adjacent): for each user, whether it has the userName of the
/// user before it. One pass over the names, on all cores.
fn name_runs(desired: &[DesiredUser]) -> Option<Vec<bool>> {
    (0..desired.len())
        .into_par_iter()
        .map(|at| {
            let user = &desired[at];
            if matches!(fold(&user.user_name), Cow::Owned(_)) {
                return None;
            }
            let Some(before) = at.checked_sub(1).and_then(|b| desired.get(b)) else {
                return Some(false);
            };
            let order = (before.user_name.as_str(), &before.source_id)
                .cmp(&(user.user_name.as_str(), &user.source_id));
            (order != std::cmp::Ordering::Greater).then(|| before.user_name == user.user_name)
        })
        .collect()
}

pub(crate) fn names<'a>(
    desired: &'a [DesiredUser],
    held: &HashSet<&SourceId>,
    proved: Option<(Linked<'a>, &'a Proof)>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Names<'a> {
    let is_proved = |at: usize| proved.is_some_and(|(_, proof)| proof.desired(at));
    let mut others: HashMap<&'a SourceId, usize> =
        HashMap::with_capacity(if proved.is_some() { 0 } else { desired.len() });
    let mut first_record = Vec::with_capacity(desired.len());
    for (at, user) in desired.iter().enumerate() {
        // A proved user's source id is desired once: its record is the first.
        let first = is_proved(at) || *others.entry(&user.source_id).or_insert(at) == at;
        if !first {
            diagnostics.push(Diagnostic::new(
                &user.source_id,
                "id",
                "the directory lists this id twice; only the first record is planned",
            ));
        }
        first_record.push(first);
    }

    // The smallest source id wins a userName, so the winner does not depend on input order.
    let can_win: Vec<bool> = desired
        .iter()
        .zip(&first_record)
        .map(|(user, first)| *first && !held.contains(&user.source_id))
        .collect();
    let owners = match name_runs(desired) {
        Some(runs) => owners_by_position(desired, &can_win, &runs),
        None => owners_by_name(desired, &can_win),
    };
    Names {
        by_source: BySource { others, proved },
        first_record,
        owners,
    }
}

fn owners_by_name<'a>(desired: &'a [DesiredUser], can_win: &[bool]) -> Owners<'a> {
    let mut owner_of_name: HashMap<Cow<'a, str>, &'a SourceId> =
        HashMap::with_capacity(desired.len());
    for (user, _) in desired.iter().zip(can_win).filter(|(_, can)| **can) {
        owner_of_name
            .entry(fold(&user.user_name))
            .and_modify(|owner| {
                if user.source_id < **owner {
                    *owner = &user.source_id;
                }
            })
            .or_insert(&user.source_id);
    }
    Owners::ByName(owner_of_name)
}

/// For `desired` as `name_runs` requires, and its `runs`.
fn owners_by_position<'a>(
    desired: &'a [DesiredUser],
    can_win: &[bool],
    runs: &[bool],
) -> Owners<'a> {
    let mut owners = vec![None; desired.len()];
    let mut start = 0;
    while start < desired.len() {
        let end = start
            + 1
            + runs
                .get(start + 1..)
                .unwrap_or_default()
                .iter()
                .take_while(|same| **same)
                .count();
        // Sorted by source id within the name: the first that can win is the smallest.
        let winner = (start..end)
            .find(|&at| can_win.get(at).copied().unwrap_or(false))
            .and_then(|at| desired.get(at))
            .map(|user| &user.source_id);
        if let Some(run) = owners.get_mut(start..end) {
            run.fill(winner);
        }
        start = end;
    }
    Owners::ByPosition(owners)
}

/// Each desired user's fate, on all cores (the lookups are independent).
pub(crate) fn classify<'a>(
    desired: &'a [DesiredUser],
    names: Names<'a>,
    held: &HashSet<&SourceId>,
    guests: &HashSet<Cow<'_, str>>,
    index: &TargetIndex<'a>,
    proved: Option<&Proof>,
) -> Classified<'a> {
    let Names {
        by_source,
        first_record,
        owners,
    } = names;
    let users = desired
        .par_iter()
        .zip(first_record)
        .enumerate()
        .map(|(at, (user, first))| {
            let fate = if !first {
                Fate::SecondRecord
            } else if held.contains(&user.source_id) {
                Fate::Held
            } else {
                // A user proved unchanged names its live link: no look-up by source id.
                let live = proved
                    .and_then(|p| p.link_of(at))
                    .and_then(|link| index.live_link_at(link));
                fate_of(user, owners.owner(at, user), live, guests, index)
            };
            (user, fate)
        })
        .collect();
    Classified { users, by_source }
}

/// `live`: the user's live link when already known.
fn fate_of<'a>(
    user: &'a DesiredUser,
    owner: Option<&'a SourceId>,
    live: Option<LiveLink<'a>>,
    guests: &HashSet<Cow<'_, str>>,
    index: &TargetIndex<'a>,
) -> Fate<'a> {
    match owner {
        Some(owner) if owner != &user.source_id => return Fate::Duplicate { other: owner },
        _ => {}
    }
    if let Some(live) = live.or_else(|| index.live_link(&user.source_id)) {
        return Fate::Linked(live);
    }
    match index.by_name(&user.user_name) {
        Some(found) => match index.owner(found.id()) {
            Some(other) => Fate::Taken { other },
            None => Fate::Adopt(*found),
        },
        None if guests.contains(fold(&user.user_name).as_ref()) => Fate::Guest,
        None if user.active => Fate::Create,
        None => Fate::InactiveNotProvisioned,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use scimsync_model::Attrs;

    proptest! {
        /// Owners by position (mapping's sorted, folded userNames) are owners by name.
        #[test]
        fn owners_by_position_are_owners_by_name(
            users in proptest::collection::vec((0u8..4, 0u8..6, any::<bool>()), 0..24),
        ) {
            let mut desired: Vec<DesiredUser> = users
                .iter()
                .map(|(name, id, _)| DesiredUser {
                    source_id: SourceId::new(format!("s{id}")),
                    user_name: format!("n{name}@x.com"),
                    active: true,
                    attrs: Attrs::new(),
                })
                .collect();
            desired.sort_by(|a, b| (&a.user_name, &a.source_id).cmp(&(&b.user_name, &b.source_id)));
            let runs = name_runs(&desired);
            prop_assert!(runs.is_some());
            let can_win: Vec<bool> = users.iter().map(|(_, _, can)| *can).collect();
            let by_name = owners_by_name(&desired, &can_win);
            let by_position = owners_by_position(&desired, &can_win, &runs.unwrap_or_default());
            for (at, user) in desired.iter().enumerate() {
                if can_win[at] {
                    prop_assert_eq!(by_position.owner(at, user), by_name.owner(at, user));
                }
            }
        }
    }

    #[test]
    fn unsorted_or_unfolded_names_are_owned_by_name() {
        let user = |id: &str, name: &str| DesiredUser {
            source_id: SourceId::new(id),
            user_name: name.to_owned(),
            active: true,
            attrs: Attrs::new(),
        };
        assert_eq!(
            name_runs(&[user("a", "x"), user("b", "x"), user("a", "y")]),
            Some(vec![false, true, false])
        );
        assert_eq!(name_runs(&[user("b", "x"), user("a", "x")]), None);
        assert_eq!(name_runs(&[user("a", "X"), user("b", "x")]), None);
        assert_eq!(name_runs(&[user("a", "x"), user("b", "X")]), None);
    }
}
