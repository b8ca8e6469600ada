//! Whole-snapshot checks every reader runs before handing a snapshot out: ids unique, every
//! group member a known user. Readers say where the offending records are; this module only
//! finds them.

use foldhash::{HashMap, HashMapExt};
use rayon::prelude::*;
use scimsync_model::Snapshot;
use std::collections::hash_map::Entry;

/// The first integrity problem found, by record positions in the snapshot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    DuplicateUserId { first: usize, second: usize },
    DuplicateGroupId { first: usize, second: usize },
    UnknownMember { group: usize, member: usize },
}

pub(crate) fn check(snapshot: &Snapshot) -> Result<(), Problem> {
    let mut users: HashMap<&str, usize> = HashMap::with_capacity(snapshot.users.len());
    for (index, user) in snapshot.users.iter().enumerate() {
        match users.entry(user.id.as_str()) {
            Entry::Occupied(first) => {
                return Err(Problem::DuplicateUserId {
                    first: *first.get(),
                    second: index,
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
        }
    }
    let mut groups: HashMap<&str, usize> = HashMap::with_capacity(snapshot.groups.len());
    let mut duplicate_group = None;
    for (index, group) in snapshot.groups.iter().enumerate() {
        if let Some(&first) = groups.get(group.id.as_str()) {
            duplicate_group = Some(Problem::DuplicateGroupId {
                first,
                second: index,
            });
            break;
        }
        groups.insert(group.id.as_str(), index);
    }
    // A million memberships to look up, each on its own: on all cores. Only groups before the
    // duplicate count, so the problem reported is the first in file order either way.
    let checked = match &duplicate_group {
        Some(Problem::DuplicateGroupId { second, .. }) => &snapshot.groups[..*second],
        _ => &snapshot.groups[..],
    };
    let unknown = checked
        .par_iter()
        .enumerate()
        .find_map_first(|(index, group)| {
            let member = group
                .members
                .iter()
                .position(|m| !users.contains_key(m.as_str()))?;
            Some(Problem::UnknownMember {
                group: index,
                member,
            })
        });
    match unknown.or(duplicate_group) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_model::{SourceAttrs, SourceGroup, SourceId, SourceUser};

    fn snapshot(groups: &[(&str, &[&str])]) -> Snapshot {
        Snapshot {
            users: ["u1", "u2"]
                .iter()
                .map(|id| SourceUser {
                    id: SourceId::new(*id),
                    attrs: SourceAttrs::new(),
                })
                .collect(),
            groups: groups
                .iter()
                .map(|(id, members)| SourceGroup {
                    id: SourceId::new(*id),
                    name: (*id).to_owned(),
                    members: members.iter().map(|m| SourceId::new(*m)).collect(),
                    unresolved: Vec::new(),
                })
                .collect(),
        }
    }

    /// The problem reported is the first in file order, whichever kind it is, although the
    /// memberships are checked on all cores.
    #[test]
    fn the_first_problem_in_file_order_is_reported() {
        let unknown_first = snapshot(&[
            ("g0", &["u1"]),
            ("g1", &["u2", "nobody"]),
            ("g2", &["ghost"]),
            ("g0", &[]),
        ]);
        assert_eq!(
            check(&unknown_first),
            Err(Problem::UnknownMember {
                group: 1,
                member: 1
            })
        );
        let duplicate_first = snapshot(&[("g0", &["u1"]), ("g0", &["nobody"]), ("g2", &["x"])]);
        assert_eq!(
            check(&duplicate_first),
            Err(Problem::DuplicateGroupId {
                first: 0,
                second: 1
            })
        );
        assert_eq!(
            check(&snapshot(&[("g0", &["u1", "u2"]), ("g1", &[])])),
            Ok(())
        );
    }
}
