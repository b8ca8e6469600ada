//! What mapping tells the planner's proof of unchanged users on an incremental cycle, without
//! either knowing the other: the links are indexed on the planner's side
//! (`scimsync_plan::LiveLinks`), mapping asks that index about each user ([`PushedLinks`]) and
//! hands back what it answered ([`Claims`]), and the proof is settled from those answers.
//!
//! A link is named by a [`LinkHandle`], which only the index that issued it can open: mapping
//! carries handles, never positions, and a handle given to another index proves nothing.

use crate::{AttrKey, AttrValue, RecordStamp};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

/// One link of an index of links, named by that index for whoever must not look inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkHandle {
    issuer: NonZeroU32,
    at: u32,
}

/// The identity of one index of links: it issues handles to its links and opens only its own.
/// Every `new` issuer is distinct from every other of the process (ids wrap after 2³² of
/// them: a cycle builds one); a clone is the same index and opens the same handles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkIssuer {
    id: NonZeroU32,
}

impl LinkIssuer {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        loop {
            if let Some(id) = NonZeroU32::new(NEXT.fetch_add(1, Ordering::Relaxed)) {
                return LinkIssuer { id };
            }
        }
    }

    /// A handle to the link at position `at` of this index (`None` past `u32::MAX`).
    pub fn handle(&self, at: usize) -> Option<LinkHandle> {
        Some(LinkHandle {
            issuer: self.id,
            at: u32::try_from(at).ok()?,
        })
    }

    /// The position a handle of this index names; `None` for another index's handle.
    pub fn open(&self, handle: LinkHandle) -> Option<usize> {
        if handle.issuer != self.id {
            return None;
        }
        usize::try_from(handle.at).ok()
    }
}

impl Default for LinkIssuer {
    fn default() -> Self {
        Self::new()
    }
}

/// The links an incremental cycle loaded, as mapping consults them: the index decides whether
/// a user mapped to a given state is exactly as last pushed, and if so names the link, so
/// mapping can drop that user's attributes at once (on a million users, most of a cycle's
/// memory).
pub trait PushedLinks: Sync {
    /// A handle to `source_id`'s live link, if that link recorded exactly this state at the
    /// last push: `user_name`, `active` and `attrs` (in path order, one value a path). A state
    /// holding a reference to another user is never claimed: how a reference is sent depends
    /// on the other user's link, which only the proof settles.
    fn claim(
        &self,
        source_id: &str,
        user_name: &str,
        active: bool,
        attrs: &[(&AttrKey, AttrValue)],
    ) -> Option<LinkHandle>;
}

/// What mapping found against [`PushedLinks`]: the evidence the planner's proof of unchanged
/// users is settled from, handed over whole (`scimsync_plan::LiveLinks::settle` consumes it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Aligned with the desired users mapping returned it with: for each user mapped exactly
    /// as last pushed (its attributes dropped), the link the index named; `None` for the
    /// others.
    pub users: Vec<Option<LinkHandle>>,
    /// Users claimed from a record that was parsed (not recognised by its stamp): the record
    /// stamp their link can store, so the next cycle recognises the record unparsed.
    pub stamps: Vec<(LinkHandle, RecordStamp)>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_issuer_opens_its_own_handles_only() {
        let one = LinkIssuer::new();
        let other = LinkIssuer::new();
        let handle = one.handle(7).unwrap();
        assert_eq!(one.open(handle), Some(7));
        assert_eq!(one.clone().open(handle), Some(7));
        assert_eq!(other.open(handle), None);
        assert_ne!(other.handle(7), Some(handle));
        assert_eq!(std::mem::size_of::<Option<LinkHandle>>(), 8);
    }
}
