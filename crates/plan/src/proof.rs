//! The proof of unchanged users: which linked users an incremental cycle can leave alone, known
//! before anything else is loaded. A user is unchanged when its desired state is exactly what
//! its live link recorded at the last push ([`as_pushed`], the one rule, wherever it is asked).
//!
//! It is built in two steps over one index of the links. [`LiveLinks`] indexes the link heads
//! as they load; the reader asks it which records carry their link's stamp, and mapping asks it
//! about every other user ([`PushedLinks`]), so a user mapped exactly as last pushed keeps no
//! attributes. Both answers are [`LinkHandle`]s, which mapping hands back as [`Claims`]. Then
//! [`LiveLinks::settle`] turns the index and the claims into the [`Proof`]: it opens each
//! handle, settles the users mapping could not (those whose manager reference resolves through
//! the links), refuses a source id desired twice, and keeps the index, so the planner and the
//! group side take their live links from it instead of indexing a million links again.
//!
//! The caller uses the proof twice over: the store decodes the pushed attributes of the other
//! links only, and the planner (`PlanInput::unchanged`) takes the proved users as they are,
//! without their attributes. On a million users that is most of the memory of a cycle.
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
    AttrKey, AttrValue, Attrs, Claims, DesiredUser, Link, LinkHandle, PushedLinks, RecordKey,
    RecordStamp, SourceId, fingerprint_matches_sorted,
};
use std::borrow::Cow;
use std::hash::BuildHasher;

/// Whether `link` recorded exactly this state at the last push: userName, active, and the
/// attributes (path order, one value a path). The one rule by which a desired user is
/// unchanged, wherever it is asked: by mapping (through [`PushedLinks`]), by the proof for the
/// users whose references it resolves, and by the planner for the users left to it. A state
/// holding a reference is not: a reference is sent as the referenced user's target id.
pub(crate) fn as_pushed<'x>(
    link: &Link,
    user_name: &str,
    active: bool,
    attrs: impl Iterator<Item = (&'x str, &'x AttrValue)> + Clone,
) -> bool {
    !attrs
        .clone()
        .any(|(_, value)| matches!(value, AttrValue::Ref { .. }))
        && fingerprint_matches_sorted(user_name, active, attrs, &link.hash)
}

/// The links of an incremental cycle, indexed once, with the record stamps they hold: the
/// links the planner will take as live (the first per source id and per target id; a later
/// one is ignored with a diagnostic, so both agree on who is linked). The reader recognises
/// records through it ([`Self::stamped`]), mapping claims unchanged users through it
/// ([`PushedLinks`]), and [`Self::settle`] makes it the [`Proof`].
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

    /// The live link stamped with this record key: a handle to it (what mapping claims the
    /// recognised user with), the link, and its stamp. A key is a digest of a record that holds
    /// its source id, so it names one link; if it names a link that is not live, the record is
    /// not recognised.
    pub fn stamped(&self, key: &RecordKey) -> Option<(LinkHandle, &'a Link, RecordStamp)> {
        let at = self
            .by_record
            .find(self.hasher.hash_one(key), |at| {
                stamp_at(self.stamps, *at).is_some_and(|stamp| stamp.key == *key)
            })
            .copied()?;
        let stamp = stamp_at(self.stamps, at)?;
        let at = usize::try_from(at).ok()?;
        let link = self.links.get(at)?;
        if !self.linked().is_live(at) {
            return None;
        }
        Some((self.index.handle(at)?, link, stamp))
    }

    /// The position of `source_id`'s live link.
    fn live(&self, source_id: &str) -> Option<usize> {
        self.linked().live(source_id)
    }

    /// The proof for `desired`, mapped with these links: mapping's `claims` (made against this
    /// index, aligned with `desired`) stand for every user without a reference, and the users
    /// with one are settled here by resolving it through the links. A proved user's attributes
    /// are dropped (the planner does not look at them). Also the stamps worth storing: of those
    /// mapping proposes, the ones whose user is proved, whose link has the userName and active
    /// flag mapping gave it (a recognised record is rebuilt from those) and does not hold that
    /// very stamp already.
    ///
    /// Refused when a claimed user cannot be proved (its attributes are gone, so nothing else
    /// could plan it): claims not aligned with `desired`, a handle this index did not issue or
    /// that names another user's link, a source id desired twice.
    pub fn settle(
        self,
        desired: &mut [DesiredUser],
        claims: Claims,
    ) -> Result<Settled<'a>, ProofError> {
        let Claims {
            users: claimed,
            stamps: proposed,
        } = claims;
        if claimed.len() != desired.len() {
            return Err(ProofError::Misaligned {
                claims: claimed.len(),
                desired: desired.len(),
            });
        }
        let (links, stored) = (self.links, self.stamps);
        let proof = self.prove_with(desired, Some(&claimed));
        if let Some(at) = (0..claimed.len())
            .find(|&at| claimed.get(at).is_some_and(Option::is_some) && !proof.desired(at))
        {
            return Err(ProofError::Unproved {
                source_id: desired[at].source_id.clone(),
            });
        }
        let stamps = proposed
            .into_iter()
            .filter_map(|(handle, stamp)| {
                let at = proof.index.open(handle)?;
                let user = desired.get(proof.desired_of(at)?)?;
                let link = links.get(at)?;
                let fits = link.user_name == user.user_name && link.active == user.active;
                let fresh = stored.get(at).copied().flatten() != Some(stamp);
                (fits && fresh).then_some((link, stamp))
            })
            .collect();
        Ok(Settled { proof, stamps })
    }

    /// The proof for `desired`, mapped without these links (no claims, no attribute dropped):
    /// every linked user is compared here.
    pub fn prove(self, desired: &mut [DesiredUser]) -> Proof {
        self.prove_with(desired, None)
    }

    /// `claimed`: mapping's answer for every user (aligned with `desired`), or `None` to ask
    /// the rule of every linked user here.
    fn prove_with(
        self,
        desired: &mut [DesiredUser],
        claimed: Option<&[Option<LinkHandle>]>,
    ) -> Proof {
        let links = self.links;
        let linked = self.linked();
        // Only a user whose claim is not mapping's to make is settled here; the set of desired
        // users a reference may name is built only if there is one (a million entries
        // otherwise).
        let compared = |at: usize, user: &DesiredUser| match claimed {
            Some(claimed) => claimed.get(at).is_some_and(Option::is_none) && has_ref(&user.attrs),
            None => true,
        };
        let wanted: Option<HashSet<&str>> = desired
            .iter()
            .enumerate()
            .any(|(at, user)| compared(at, user) && has_ref(&user.attrs))
            .then(|| desired.iter().map(|u| u.source_id.as_str()).collect());
        let resolvable = |user: &SourceId| -> Option<&Link> {
            if !wanted.as_ref().is_some_and(|w| w.contains(user.as_str())) {
                return None;
            }
            links.get(linked.live(user.as_str())?)
        };
        // Each user's live link, and whether the user is unchanged.
        let found: Vec<(Option<u32>, bool)> = desired
            .par_iter()
            .enumerate()
            .map(|(at, user)| {
                if let Some(Some(handle)) = claimed.and_then(|c| c.get(at)) {
                    // Mapping claimed it against this index, which named the user's live link
                    // (checked: claims are aligned with the users by position).
                    let own = |&l: &usize| {
                        linked.is_live(l)
                            && links.get(l).is_some_and(|l| l.source_id == user.source_id)
                    };
                    return match self.index.open(*handle).filter(own) {
                        Some(link) => (u32::try_from(link).ok(), true),
                        None => (None, false),
                    };
                }
                let Some(index) = linked.live(user.source_id.as_str()) else {
                    return (None, false);
                };
                let unchanged = compared(at, user)
                    && resolve_through_links(&user.attrs, &resolvable).is_some_and(|attrs| {
                        as_pushed(
                            &links[index],
                            &user.user_name,
                            user.active,
                            attrs.iter().map(|(path, value)| (path.as_str(), value)),
                        )
                    });
                (u32::try_from(index).ok(), unchanged)
            })
            .collect();
        drop(wanted);
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
        let by_link: Vec<Option<u32>> = claims
            .into_iter()
            .map(|claim| match claim {
                Claim::Unchanged(at) => Some(at),
                _ => None,
            })
            .collect();
        let by_user: Vec<Option<u32>> = found
            .into_iter()
            .enumerate()
            .map(|(at, (link, _))| {
                let user = by_link.get(position(link?)?).copied().flatten()?;
                (position(user) == Some(at)).then_some(link).flatten()
            })
            .collect();
        // A proved user is taken as its link says: the attributes mapping could not drop (it
        // references another user) go now.
        desired
            .par_iter_mut()
            .zip(&by_user)
            .filter(|(user, link)| link.is_some() && !user.attrs.is_empty())
            .for_each(|(user, _)| user.attrs = Attrs::new());
        Proof {
            desired: by_user,
            links: by_link,
            index: self.index,
        }
    }
}

fn stamp_at(stamps: &[Option<RecordStamp>], at: u32) -> Option<RecordStamp> {
    usize::try_from(at)
        .ok()
        .and_then(|at| stamps.get(at))
        .copied()
        .flatten()
}

impl PushedLinks for LiveLinks<'_> {
    fn claim(
        &self,
        source_id: &str,
        user_name: &str,
        active: bool,
        attrs: &[(&AttrKey, AttrValue)],
    ) -> Option<LinkHandle> {
        let at = self.live(source_id)?;
        let link = self.links.get(at)?;
        let attrs = attrs.iter().map(|(path, value)| (path.as_str(), value));
        if !as_pushed(link, user_name, active, attrs) {
            return None;
        }
        self.index.handle(at)
    }
}

/// What [`LiveLinks::settle`] makes of mapping's claims.
#[derive(Debug)]
pub struct Settled<'a> {
    pub proof: Proof,
    /// The record stamps to store once the cycle's writes are done, with the link each is for
    /// (as loaded: the store stamps it only if the link is still so).
    pub stamps: Vec<(&'a Link, RecordStamp)>,
}

/// Why mapping's claims cannot make a proof. Each means a user's attributes were dropped that
/// nothing can plan without, so the cycle must not go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The claims were made for another list of desired users.
    #[error("mapping's claims are for {claims} desired users, not these {desired}")]
    Misaligned { claims: usize, desired: usize },
    /// A claimed user's handle names none of its links in this index (the claim was made
    /// against another index, or for another user), or its source id is desired twice.
    #[error("user {source_id} was mapped as unchanged, but its claim is not proved by these links")]
    Unproved { source_id: SourceId },
}

/// Who names a link, as `prove_with` finds it.
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

/// Which desired users an incremental cycle proved unchanged, and each one's link, against the
/// index of the links it keeps (the planner takes its live links from it rather than look each
/// user up again). Built only by [`LiveLinks::settle`] (or [`LiveLinks::prove`]), over the
/// desired users and links it was given: the planner checks it is handed those.
///
/// A source id desired more than once is never proved unchanged, so each proved user is its
/// source id's only record: the planner finds it through its link, not among all the others.
#[derive(Clone, Debug, Default)]
pub struct Proof {
    /// Aligned with the desired users: each proved user's live link. Four bytes a user: a
    /// position beyond `u32::MAX` is simply not proved.
    desired: Vec<Option<u32>>,
    /// Aligned with the links: the proved user each belongs to.
    links: Vec<Option<u32>>,
    index: LinkIndex,
}

impl Proof {
    /// Whether `desired[index]` (of the users it was settled for) is proved unchanged.
    pub fn desired(&self, index: usize) -> bool {
        self.link_of(index).is_some()
    }

    /// Whether `links[index]` belongs to a proved user (its pushed attributes are not needed).
    pub fn link(&self, index: usize) -> bool {
        self.desired_of(index).is_some()
    }

    /// How many users are proved unchanged.
    pub fn count(&self) -> usize {
        self.desired.iter().filter(|u| u.is_some()).count()
    }

    /// The position of the live link of `desired[index]`, if that user is proved.
    pub(crate) fn link_of(&self, index: usize) -> Option<usize> {
        position(self.desired.get(index).copied().flatten()?)
    }

    /// The position of the proved desired user `links[index]` belongs to.
    pub(crate) fn desired_of(&self, index: usize) -> Option<usize> {
        position(self.links.get(index).copied().flatten()?)
    }

    /// Whether this was settled for `desired` and `links` (same lengths; the ids of a cycle's
    /// links and desired users do not change once settled): the planner ignores it otherwise.
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

/// The desired users no link names (live or not): the ones an incremental cycle looks up on
/// the target by userName. With a proof settled for these desired users and links, a proved
/// user is linked without a look-up and the others are looked up in its index: no set of a
/// million source ids.
pub fn unlinked<'a>(
    desired: &'a [DesiredUser],
    links: &[Link],
    proof: Option<&Proof>,
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
