//! Decides, for each desired user, how it relates to the target: already linked, adoptable by
//! userName, to be created, or skipped (and why). Everything else in the plan follows from this.

use crate::index::{LiveLink, TargetIndex, TargetRef, fold};
use crate::input::Diagnostic;
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
    by_source: HashMap<&'a SourceId, usize>,
}

impl<'a> Classified<'a> {
    pub fn contains(&self, source_id: &SourceId) -> bool {
        self.by_source.contains_key(source_id)
    }

    pub fn fate(&self, source_id: &SourceId) -> Option<Fate<'a>> {
        let at = *self.by_source.get(source_id)?;
        self.users.get(at).map(|(_, fate)| *fate)
    }
}

/// Who owns what among the desired users: the first record of each source id, and the winner
/// of each userName. Independent of the target, so it is built while the target is indexed.
pub(crate) struct Names<'a> {
    by_source: HashMap<&'a SourceId, usize>,
    first_record: Vec<bool>,
    owner_of_name: HashMap<Cow<'a, str>, &'a SourceId>,
}

pub(crate) fn names<'a>(
    desired: &'a [DesiredUser],
    held: &HashSet<&SourceId>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Names<'a> {
    let mut by_source: HashMap<&'a SourceId, usize> = HashMap::with_capacity(desired.len());
    let mut first_record = Vec::with_capacity(desired.len());
    for (at, user) in desired.iter().enumerate() {
        let first = *by_source.entry(&user.source_id).or_insert(at) == at;
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
    let mut owner_of_name: HashMap<Cow<'a, str>, &'a SourceId> =
        HashMap::with_capacity(desired.len());
    for (user, first) in desired.iter().zip(&first_record) {
        if !*first || held.contains(&user.source_id) {
            continue;
        }
        owner_of_name
            .entry(fold(&user.user_name))
            .and_modify(|owner| {
                if user.source_id < **owner {
                    *owner = &user.source_id;
                }
            })
            .or_insert(&user.source_id);
    }
    Names {
        by_source,
        first_record,
        owner_of_name,
    }
}

/// Each desired user's fate, on all cores (the lookups are independent).
pub(crate) fn classify<'a>(
    desired: &'a [DesiredUser],
    names: Names<'a>,
    held: &HashSet<&SourceId>,
    guests: &HashSet<Cow<'_, str>>,
    index: &TargetIndex<'a>,
) -> Classified<'a> {
    let Names {
        by_source,
        first_record,
        owner_of_name,
    } = names;
    let users = desired
        .par_iter()
        .zip(first_record)
        .map(|(user, first)| {
            let fate = if !first {
                Fate::SecondRecord
            } else if held.contains(&user.source_id) {
                Fate::Held
            } else {
                fate_of(user, &owner_of_name, guests, index)
            };
            (user, fate)
        })
        .collect();
    Classified { users, by_source }
}

fn fate_of<'a>(
    user: &'a DesiredUser,
    owner_of_name: &HashMap<Cow<'a, str>, &'a SourceId>,
    guests: &HashSet<Cow<'_, str>>,
    index: &TargetIndex<'a>,
) -> Fate<'a> {
    match owner_of_name.get(fold(&user.user_name).as_ref()) {
        Some(owner) if *owner != &user.source_id => return Fate::Duplicate { other: owner },
        _ => {}
    }
    if let Some(live) = index.live_link(&user.source_id) {
        return Fate::Linked(*live);
    }
    match index.by_name(&user.user_name) {
        Some(found) => match index.owner(found.id) {
            Some(other) => Fate::Taken { other },
            None => Fate::Adopt(*found),
        },
        None if guests.contains(fold(&user.user_name).as_ref()) => Fate::Guest,
        None if user.active => Fate::Create,
        None => Fate::InactiveNotProvisioned,
    }
}
