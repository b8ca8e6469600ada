//! Which linked users an incremental cycle can leave alone before anything else is loaded:
//! the ones whose desired fingerprint equals the hash their link recorded at the last push.
//!
//! The caller uses it twice over: the store decodes the pushed attributes of the other links
//! only, and the desired users found unchanged may have their attributes dropped before
//! planning (`PlanInput::unchanged` tells the planner not to look at them). On a million users
//! that is most of the memory of a cycle.
//!
//! A reference (the manager) counts as unchanged only when it names a desired, linked user:
//! then the planner resolves it to the same target id the link recorded. A reference to anyone
//! else (a user this plan deprovisions or deletes, or one not provisioned) leaves the user to
//! the planner's full comparison.

use crate::links::{LinkIndex, Linked};
use foldhash::HashSet;
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use rayon::prelude::*;
use scimsync_model::{
    AttrValue, Attrs, DesiredUser, Link, PushedHashes, RecordKey, RecordStamp, SourceId,
    fingerprint_matches,
};
use std::borrow::Cow;
use std::hash::BuildHasher;

/// The outcome of [`unchanged`], aligned with the slices it was computed from: each unchanged
/// desired user's link and each link's unchanged user, by position, and the index of the
/// links it was computed against (the planner takes its live links from it rather than look
/// each user up again).
///
/// A source id desired more than once is never proved unchanged, so each proved user is its
/// source id's only record: the planner finds it through its link, not among all the others.
#[derive(Clone, Debug, Default)]
pub struct Unchanged {
    /// Four bytes a user: a position beyond `u32::MAX` is simply not proved unchanged.
    desired: Vec<Option<u32>>,
    links: Vec<Option<u32>>,
    index: LinkIndex,
}

impl Unchanged {
    /// Whether `desired[index]` (of the slice given to [`unchanged`]) is unchanged.
    pub fn desired(&self, index: usize) -> bool {
        self.link_of(index).is_some()
    }

    /// Whether `links[index]` belongs to an unchanged user.
    pub fn link(&self, index: usize) -> bool {
        self.desired_of(index).is_some()
    }

    /// How many users are unchanged.
    pub fn count(&self) -> usize {
        self.desired.iter().filter(|u| u.is_some()).count()
    }

    /// The position of the live link of `desired[index]`, if that user is unchanged.
    pub(crate) fn link_of(&self, index: usize) -> Option<usize> {
        position(self.desired.get(index).copied().flatten()?)
    }

    /// The position of the unchanged desired user `links[index]` belongs to.
    pub(crate) fn desired_of(&self, index: usize) -> Option<usize> {
        position(self.links.get(index).copied().flatten()?)
    }

    /// Whether this was computed for `desired` and `links` (same lengths): the planner
    /// ignores it otherwise.
    pub(crate) fn fits(&self, desired: &[DesiredUser], links: &[Link]) -> bool {
        self.desired.len() == desired.len()
            && self.links.len() == links.len()
            && self.index.fits(links)
    }

    /// The live links this was settled against.
    pub(crate) fn index(&self) -> &LinkIndex {
        &self.index
    }

    /// Its index over `links`, if it was built over them.
    pub(crate) fn linked<'a>(&'a self, links: &'a [Link]) -> Option<Linked<'a>> {
        Linked::new(links, &self.index)
    }
}

fn position(at: u32) -> Option<usize> {
    usize::try_from(at).ok()
}

/// The links the planner will take as live, indexed by source id: the first per source id and
/// per target id (a later one is ignored with a diagnostic), so the two agree on who is linked.
/// Built once over the heads of an incremental cycle: mapping reads each user's pushed
/// fingerprint from it ([`PushedHashes`]), [`unchanged`] its link, and the planner keeps its
/// index through [`Unchanged`].
pub struct LiveLinks<'a> {
    links: &'a [Link],
    index: LinkIndex,
    /// Aligned with `links` (or empty): each link's record stamp.
    stamps: &'a [Option<RecordStamp>],
    /// The links with a record stamp, by the stamp's key: positions in `links` (a million of
    /// them, so four bytes each; the keys stay in `stamps`). Whether the link is live is
    /// `stamped`'s to check.
    by_record: HashTable<u32>,
    hasher: RandomState,
}

impl<'a> LiveLinks<'a> {
    pub fn new(links: &'a [Link]) -> Self {
        Self::with_stamps(links, &[])
    }

    /// `stamps` is aligned with `links` (or empty): the record each was last proved equal to.
    pub fn with_stamps(links: &'a [Link], stamps: &'a [Option<RecordStamp>]) -> Self {
        let stamps = if stamps.len() == links.len() {
            stamps
        } else {
            &[]
        };
        // The stamps' index does not depend on which links are live (`stamped` checks that):
        // it is built on another core.
        let hasher = RandomState::default();
        let key_at = |at: &u32| stamp_at(stamps, *at).map(|stamp| stamp.key);
        let (index, by_record) = rayon::join(
            || LinkIndex::new(links),
            || {
                let stamped = stamps.iter().filter(|s| s.is_some()).count();
                let mut by_record: HashTable<u32> = HashTable::with_capacity(stamped);
                for (at, stamp) in stamps.iter().enumerate() {
                    let (Some(stamp), Ok(at)) = (stamp, u32::try_from(at)) else {
                        continue;
                    };
                    // The first link with a key keeps it (a key names one record, so one
                    // source id: a later one is that source's ignored second link).
                    let entry = by_record.entry(
                        hasher.hash_one(stamp.key),
                        |i| key_at(i) == Some(stamp.key),
                        |i| key_at(i).map_or(0, |key| hasher.hash_one(key)),
                    );
                    if let hashbrown::hash_table::Entry::Vacant(slot) = entry {
                        slot.insert(at);
                    }
                }
                by_record
            },
        );
        LiveLinks {
            links,
            index,
            stamps,
            by_record,
            hasher,
        }
    }

    fn linked(&self) -> Linked<'_> {
        Linked::built_over(self.links, &self.index)
    }

    /// The live link stamped with this record key, and its stamp. A key is a digest of a
    /// record that holds its source id, so it names one link; if it names a link that is not
    /// live, the record is not recognised.
    pub fn stamped(&self, key: &RecordKey) -> Option<(usize, &'a Link, RecordStamp)> {
        let at = self
            .by_record
            .find(self.hasher.hash_one(key), |at| {
                stamp_at(self.stamps, *at).is_some_and(|stamp| stamp.key == *key)
            })
            .copied()?;
        let stamp = stamp_at(self.stamps, at)?;
        let at = usize::try_from(at).ok()?;
        let link = self.links.get(at)?;
        self.linked().is_live(at).then_some((at, link, stamp))
    }

    /// The live link of `source_id`.
    pub fn link(&self, source_id: &str) -> Option<&'a Link> {
        self.links.get(self.index(source_id)?)
    }

    /// The links this indexes.
    pub fn links(&self) -> &'a [Link] {
        self.links
    }

    /// The position in [`Self::links`] of `source_id`'s live link.
    pub fn index(&self, source_id: &str) -> Option<usize> {
        self.linked().live(source_id)
    }
}

fn stamp_at(stamps: &[Option<RecordStamp>], at: u32) -> Option<RecordStamp> {
    usize::try_from(at)
        .ok()
        .and_then(|at| stamps.get(at))
        .copied()
        .flatten()
}

impl PushedHashes for LiveLinks<'_> {
    fn pushed_hash(&self, source_id: &str) -> Option<&str> {
        self.link(source_id).map(|link| link.hash.as_str())
    }

    fn pushed_link(&self, source_id: &str) -> Option<(&str, Option<usize>)> {
        let at = self.index(source_id)?;
        Some((self.links.get(at)?.hash.as_str(), Some(at)))
    }
}

/// The desired users no link names (live or not): the ones an incremental cycle looks up on
/// the target by userName. With a proof computed for these desired users and links, a proved
/// user is linked without a look-up and the others are looked up in its index: no set of a
/// million source ids.
pub fn unlinked<'a>(
    desired: &'a [DesiredUser],
    links: &[Link],
    proof: Option<&Unchanged>,
) -> Vec<&'a DesiredUser> {
    let proved = proof
        .filter(|proof| proof.fits(desired, links))
        .and_then(|proof| Some((proof, proof.linked(links)?)));
    match proved {
        Some((proof, linked)) => desired
            .par_iter()
            .enumerate()
            .filter(|(at, user)| {
                !proof.desired(*at) && linked.first(user.source_id.as_str()).is_none()
            })
            .map(|(_, user)| user)
            .collect(),
        None => {
            let linked: HashSet<&str> = links.iter().map(|l| l.source_id.as_str()).collect();
            desired
                .iter()
                .filter(|user| !linked.contains(user.source_id.as_str()))
                .collect()
        }
    }
}

/// Of the stamps mapping proposes (desired user position, stamp: users mapped unchanged from a
/// parsed record), the ones worth storing, by link position: the user's live link must have
/// the userName and active flag mapping gave it (a recognised record is rebuilt from those),
/// and must not hold that very stamp already (`stored`, aligned with the links).
pub fn stamps_to_store(
    desired: &[DesiredUser],
    stamps: &[(usize, RecordStamp)],
    live: &LiveLinks<'_>,
    stored: &[Option<RecordStamp>],
) -> Vec<(usize, RecordStamp)> {
    stamps
        .iter()
        .filter_map(|&(at, stamp)| {
            let user = desired.get(at)?;
            let index = live.index(user.source_id.as_str())?;
            let link = &live.links()[index];
            let fits = link.user_name == user.user_name && link.active == user.active;
            let fresh = stored.get(index).copied().flatten() != Some(stamp);
            (fits && fresh).then_some((index, stamp))
        })
        .collect()
}

/// Flags the linked desired users whose fingerprint, with references resolved through the
/// links, equals their link's hash. `mapped` (aligned with `desired`, or empty) is mapping's
/// answer against the [`LiveLinks`]' hashes for every user without a reference: a flagged user's
/// attributes are gone and it is taken as it is, an unflagged one changed. `matched` (aligned
/// likewise, or empty) is where mapping found each flagged user's live link
/// ([`PushedHashes::pushed_link`]): that user is not looked up again. Pure, linear, and spread
/// over the cores.
pub fn unchanged(
    desired: &[DesiredUser],
    live: LiveLinks<'_>,
    mapped: &[bool],
    matched: &[Option<u32>],
) -> Unchanged {
    let links = live.links();
    let mapped = if mapped.len() == desired.len() {
        mapped
    } else {
        &[]
    };
    let matched = if matched.len() == mapped.len() {
        matched
    } else {
        &[]
    };
    // Only a user with a reference mapping did not settle is resolved here; the set of desired
    // users it may reference is built only if there is one (a million entries otherwise).
    let needs_resolving = |at: usize, user: &DesiredUser| {
        !mapped.get(at).copied().unwrap_or(false) && has_ref(&user.attrs)
    };
    let wanted: Option<HashSet<&str>> = desired
        .iter()
        .enumerate()
        .any(|(at, user)| needs_resolving(at, user))
        .then(|| desired.iter().map(|u| u.source_id.as_str()).collect());
    let resolvable = |user: &SourceId| -> Option<&Link> {
        if !wanted.as_ref().is_some_and(|w| w.contains(user.as_str())) {
            return None;
        }
        live.link(user.as_str())
    };
    // Each user's live link, and whether the user is unchanged.
    let found: Vec<(Option<u32>, bool)> = desired
        .par_iter()
        .enumerate()
        .map(|(at, user)| {
            if mapped.get(at) == Some(&true)
                && let Some(&Some(link)) = matched.get(at)
                && position(link).is_some_and(|link| live.linked().is_live(link))
            {
                return (Some(link), true);
            }
            let Some(index) = live.index(user.source_id.as_str()) else {
                return (None, false);
            };
            let unchanged = match mapped.get(at) {
                // Mapping already compared every user without a reference: its answer stands.
                Some(true) => true,
                Some(false) if !has_ref(&user.attrs) => false,
                _ => resolve_through_links(&user.attrs, &resolvable).is_some_and(|attrs| {
                    fingerprint_matches(&user.user_name, user.active, &attrs, &links[index].hash)
                }),
            };
            (u32::try_from(index).ok(), unchanged)
        })
        .collect();
    let LiveLinks { index, .. } = live;
    // Who names each link: a link two desired users name is a source id desired twice, and
    // neither is proved.
    let mut claims = vec![Claim::Nobody; links.len()];
    for (at, (link, unchanged)) in found.iter().enumerate() {
        let Some(claim) = link
            .and_then(position)
            .and_then(|link| claims.get_mut(link))
        else {
            continue;
        };
        *claim = match (*claim, *unchanged, u32::try_from(at)) {
            (Claim::Nobody, true, Ok(at)) => Claim::Unchanged(at),
            (Claim::Nobody, _, _) => Claim::Changed,
            _ => Claim::Twice,
        };
    }
    let links: Vec<Option<u32>> = claims
        .into_iter()
        .map(|claim| match claim {
            Claim::Unchanged(at) => Some(at),
            _ => None,
        })
        .collect();
    let desired = found
        .into_iter()
        .enumerate()
        .map(|(at, (link, _))| {
            let user = links.get(position(link?)?).copied().flatten()?;
            (position(user) == Some(at)).then_some(link).flatten()
        })
        .collect();
    Unchanged {
        desired,
        links,
        index,
    }
}

/// Who names a link, as `unchanged` finds it.
#[derive(Clone, Copy)]
enum Claim {
    Nobody,
    /// One desired user, unchanged, at this position.
    Unchanged(u32),
    /// One desired user, changed.
    Changed,
    /// More than one.
    Twice,
}

/// The attributes with each reference replaced by the referenced user's linked target id;
/// `None` when a reference is not `resolvable` (then the user is not provably unchanged).
fn resolve_through_links<'x, 'l>(
    attrs: &'x Attrs,
    resolvable: &impl Fn(&SourceId) -> Option<&'l Link>,
) -> Option<Cow<'x, Attrs>> {
    if !has_ref(attrs) {
        return Some(Cow::Borrowed(attrs));
    }
    let mut resolved = Attrs::new();
    for (path, value) in attrs {
        let value = match value {
            AttrValue::Ref { user } => AttrValue::Text(resolvable(user)?.target_id.as_str().into()),
            text => text.clone(),
        };
        resolved.insert(path.clone(), value);
    }
    Some(Cow::Owned(resolved))
}

fn has_ref(attrs: &Attrs) -> bool {
    attrs.values().any(|v| matches!(v, AttrValue::Ref { .. }))
}
