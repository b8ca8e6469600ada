//! Whole-snapshot checks every reader runs before handing a snapshot out: ids unique, every
//! group member a known user. Readers say where the offending records are; this module only
//! finds them.

use foldhash::{HashMap, HashMapExt};
use scimsync_model::Snapshot;

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
        if let Some(&first) = users.get(user.id.as_str()) {
            return Err(Problem::DuplicateUserId {
                first,
                second: index,
            });
        }
        users.insert(user.id.as_str(), index);
    }
    let mut groups: HashMap<&str, usize> = HashMap::with_capacity(snapshot.groups.len());
    for (index, group) in snapshot.groups.iter().enumerate() {
        if let Some(&first) = groups.get(group.id.as_str()) {
            return Err(Problem::DuplicateGroupId {
                first,
                second: index,
            });
        }
        groups.insert(group.id.as_str(), index);
        if let Some(member) = group
            .members
            .iter()
            .position(|m| !users.contains_key(m.as_str()))
        {
            return Err(Problem::UnknownMember {
                group: index,
                member,
            });
        }
    }
    Ok(())
}
