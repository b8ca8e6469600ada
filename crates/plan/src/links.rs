//! The links by source id and by target id, and which of them are live: built once per cycle
//! and shared. Mapping claims unchanged users through it ([`crate::LiveLinks`]), the
//! proof of unchanged users keeps it ([`crate::Proof`]), and the planner and the group
//! side take their live links from it instead of indexing a million links again each.
//!
//! It holds positions, not borrows: the caller fills the links' attributes between mapping
//! and planning, which must not invalidate it (only the ids are indexed). Outside this crate a
//! link is named by a [`LinkHandle`] the index issued, which no other index opens.

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use rayon::prelude::*;
use scimsync_model::{Link, LinkHandle, LinkIssuer};
use std::hash::BuildHasher;

/// Positions in one slice of links. A link is live when it is the first link of its source
/// id and the first such link to claim its target id; a later link of either is ignored (the
/// planner reports it).
#[derive(Clone, Debug, Default)]
pub(crate) struct LinkIndex {
    /// Names this index's links for mapping and the proof.
    issuer: LinkIssuer,
    hasher: RandomState,
    /// The first link of each source id.
    by_source: HashTable<usize>,
    /// The live link of each target id a live link claims.
    by_target: HashTable<usize>,
    /// Aligned with the links.
    live: Vec<bool>,
}

impl LinkIndex {
    pub fn new(links: &[Link]) -> Self {
        let hasher = RandomState::default();
        // The two tables on two cores: the targets as claimed in link order, which is the
        // rule itself unless a source has a second link (a second link must not claim).
        let ((by_source, first, all_first), (by_target, claimed, _)) = rayon::join(
            || first_of_each(links, &hasher, |link| link.source_id.as_str(), |_| true),
            || first_of_each(links, &hasher, |link| link.target_id.as_str(), |_| true),
        );
        let (by_target, live) = if all_first {
            (by_target, claimed)
        } else {
            let (by_target, live, _) = first_of_each(
                links,
                &hasher,
                |link| link.target_id.as_str(),
                |at| first.get(at).copied().unwrap_or(false),
            );
            (by_target, live)
        };
        LinkIndex {
            issuer: LinkIssuer::new(),
            hasher,
            by_source,
            by_target,
            live,
        }
    }

    /// Whether this was built over `links` (by length: the ids of a cycle's links do not
    /// change once loaded).
    pub fn fits(&self, links: &[Link]) -> bool {
        self.live.len() == links.len()
    }

    /// A handle to the link at `at`, for mapping to carry.
    pub fn handle(&self, at: usize) -> Option<LinkHandle> {
        self.issuer.handle(at)
    }

    /// The position a handle names, if this index issued it.
    pub fn open(&self, handle: LinkHandle) -> Option<usize> {
        self.issuer.open(handle)
    }
}

/// The first link (in link order) of each id `key` gives, among the links `counts` admits:
/// the table, whether each link is such a first, and whether every admitted link is.
fn first_of_each(
    links: &[Link],
    hasher: &RandomState,
    key: impl Fn(&Link) -> &str,
    counts: impl Fn(usize) -> bool,
) -> (HashTable<usize>, Vec<bool>, bool) {
    let mut table: HashTable<usize> = HashTable::with_capacity(links.len());
    let mut first = vec![false; links.len()];
    let mut all_first = true;
    let key_at = |at: &usize| links.get(*at).map_or("", &key);
    for (at, link) in links.iter().enumerate() {
        if !counts(at) {
            continue;
        }
        let id = key(link);
        let entry = table.entry(
            hasher.hash_one(id),
            |i| key_at(i) == id,
            |i| hasher.hash_one(key_at(i)),
        );
        match entry {
            Entry::Vacant(slot) => {
                slot.insert(at);
                first[at] = true;
            }
            Entry::Occupied(_) => all_first = false,
        }
    }
    (table, first, all_first)
}

/// A [`LinkIndex`] with the links it was built over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Linked<'a> {
    links: &'a [Link],
    index: &'a LinkIndex,
}

impl<'a> Linked<'a> {
    /// `None` unless `index` was built over `links`.
    pub fn new(links: &'a [Link], index: &'a LinkIndex) -> Option<Self> {
        index.fits(links).then_some(Linked { links, index })
    }

    /// For an `index` its owner built over `links` (a wrong pair answers wrongly, never
    /// panics).
    pub fn built_over(links: &'a [Link], index: &'a LinkIndex) -> Self {
        Linked { links, index }
    }

    pub fn links(&self) -> &'a [Link] {
        self.links
    }

    /// The position of the first link of `source_id`, live or not.
    pub fn first(&self, source_id: &str) -> Option<usize> {
        self.find(&self.index.by_source, source_id, |link| {
            link.source_id.as_str()
        })
    }

    /// The position of the live link of `source_id`.
    pub fn live(&self, source_id: &str) -> Option<usize> {
        self.first(source_id).filter(|&at| self.is_live(at))
    }

    /// The position of the live link that claims `target_id`.
    pub fn claimant(&self, target_id: &str) -> Option<usize> {
        self.find(&self.index.by_target, target_id, |link| {
            link.target_id.as_str()
        })
    }

    /// The position `table` holds for `id`, the id `key` reads from a link.
    fn find(
        &self,
        table: &HashTable<usize>,
        id: &str,
        key: impl Fn(&Link) -> &str,
    ) -> Option<usize> {
        let matches = |at: &usize| self.links.get(*at).is_some_and(|link| key(link) == id);
        table.find(self.index.hasher.hash_one(id), matches).copied()
    }

    pub fn is_live(&self, at: usize) -> bool {
        self.index.live.get(at).copied().unwrap_or(false)
    }

    /// The live links with their positions, on all cores.
    pub fn par_live(&self) -> impl ParallelIterator<Item = (usize, &'a Link)> + 'a {
        let live = &self.index.live;
        self.links
            .par_iter()
            .enumerate()
            .filter(move |(at, _)| live.get(*at).copied().unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tests::fixture::link_between;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    fn link(source: u8, target: u8) -> Link {
        link_between(&format!("s{source}"), &format!("t{target}"))
    }

    proptest! {
        /// The index answers what a plain scan in link order decides: the first link of a
        /// source, live when no earlier live link claimed its target.
        #[test]
        fn the_index_is_a_first_come_scan(
            pairs in proptest::collection::vec((0u8..6, 0u8..6), 0..16),
        ) {
            let links: Vec<Link> = pairs.iter().map(|(s, t)| link(*s, *t)).collect();
            let index = LinkIndex::new(&links);
            let linked = Linked::new(&links, &index).unwrap();
            let mut first: HashMap<&str, usize> = HashMap::new();
            let mut claimed: HashMap<&str, usize> = HashMap::new();
            let mut live = HashSet::new();
            for (at, l) in links.iter().enumerate() {
                if first.contains_key(l.source_id.as_str()) {
                    continue;
                }
                first.insert(l.source_id.as_str(), at);
                if !claimed.contains_key(l.target_id.as_str()) {
                    claimed.insert(l.target_id.as_str(), at);
                    live.insert(at);
                }
            }
            for n in 0u8..7 {
                let source = format!("s{n}");
                let target = format!("t{n}");
                prop_assert_eq!(linked.first(&source), first.get(source.as_str()).copied());
                prop_assert_eq!(
                    linked.live(&source),
                    first.get(source.as_str()).copied().filter(|at| live.contains(at))
                );
                prop_assert_eq!(linked.claimant(&target), claimed.get(target.as_str()).copied());
            }
            for at in 0..links.len() {
                prop_assert_eq!(linked.is_live(at), live.contains(&at));
            }
        }
    }

    #[test]
    fn an_index_fits_only_the_links_it_was_built_over() {
        let links = vec![link(1, 1), link(2, 2)];
        let index = LinkIndex::new(&links);
        assert!(Linked::new(&links, &index).is_some());
        assert!(Linked::new(&links[..1], &index).is_none());
    }
}
