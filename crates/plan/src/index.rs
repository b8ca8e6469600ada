//! Hash indexes over the target and the links, so every join in the planner is a lookup and
//! planning a million users stays linear.

use crate::Proof;
use crate::input::Diagnostic;
use crate::links::Linked;
use foldhash::{HashMap, HashMapExt, HashSet};
use rayon::iter::Either;
use rayon::prelude::*;
use scimsync_model::{Attrs, DesiredUser, Link, ScimId, SourceId, TargetUser, TargetView};
use std::borrow::Cow;
use std::collections::hash_map::Entry;

/// A target user as the planner sees it, borrowed either from the target view or, on an
/// incremental cycle, from the link that says it exists. Two words: the planner's indexes hold
/// one per target user, a million of them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TargetRef<'a> {
    User(&'a TargetUser),
    /// The target user a link says exists, without cloning the attributes.
    Link(&'a Link),
}

impl<'a> TargetRef<'a> {
    pub fn id(&self) -> &'a ScimId {
        match self {
            TargetRef::User(user) => &user.id,
            TargetRef::Link(link) => &link.target_id,
        }
    }

    pub fn user_name(&self) -> &'a str {
        match self {
            TargetRef::User(user) => &user.user_name,
            TargetRef::Link(link) => &link.user_name,
        }
    }

    pub fn active(&self) -> bool {
        match self {
            TargetRef::User(user) => user.active,
            TargetRef::Link(link) => link.active,
        }
    }

    pub fn attrs(&self) -> &'a Attrs {
        match self {
            TargetRef::User(user) => &user.attrs,
            TargetRef::Link(link) => &link.attrs,
        }
    }
}

/// A link whose target user exists (or, on an incremental cycle, is presumed to).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LiveLink<'a> {
    pub link: &'a Link,
    pub target: TargetRef<'a>,
}

/// The target's identity: lower-cased, borrowing when the name already is.
pub(crate) use scimsync_model::fold_user_name as fold;

pub(crate) fn same_user_name(a: &str, b: &str) -> bool {
    a == b || fold(a) == fold(b)
}

pub(crate) struct TargetIndex<'a> {
    /// Target id → the user, and the source whose live link claims it. With shared links,
    /// the view's users only: the links' targets and owners are the shared index's.
    by_id: HashMap<&'a ScimId, (TargetRef<'a>, Option<&'a SourceId>)>,
    /// Only the userNames some desired user asks about (unlinked, or renamed): in a steady
    /// state that is a handful, not the whole target.
    by_name: HashMap<Cow<'a, str>, TargetRef<'a>>,
    /// The planner's links, by position.
    links: &'a [Link],
    live: Links<'a>,
}

/// The live links, indexed here or shared.
enum Links<'a> {
    /// Every source with a link; `None` when its target user is gone from a complete view.
    Own(HashMap<&'a SourceId, Option<LiveLink<'a>>>),
    /// On an incremental view, the index the cycle proved its unchanged users against: the
    /// same rule (first link per source, first live claim per target), already built.
    Shared(Linked<'a>),
}

impl<'a> TargetIndex<'a> {
    /// `proved`: the proof of unchanged users the planner may rely on (`PlanInput::proved`:
    /// only on an incremental view, for these links and desired users). Its index of the links
    /// is used as is, and the users it proves unchanged are not asked about: each has its
    /// link's userName.
    pub fn build(
        target: &'a TargetView,
        links: &'a [Link],
        desired: &'a [DesiredUser],
        proved: Option<&'a Proof>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Self {
        let shared = proved.and_then(|proved| proved.linked(links));
        let mut by_id: HashMap<&'a ScimId, (TargetRef<'a>, Option<&'a SourceId>)> =
            // An incremental view holds only lookups: its own links add their users below.
            HashMap::with_capacity(
                target.users.len()
                    + if target.complete || shared.is_some() { 0 } else { links.len() },
            );
        for user in &target.users {
            // A duplicate id in a read is the target's bug; the first row wins so the result
            // does not depend on anything but the input order.
            by_id
                .entry(&user.id)
                .or_insert_with(|| (TargetRef::User(user), None));
        }
        let live = match shared {
            Some(linked) => {
                report_ignored(linked, diagnostics);
                Links::Shared(linked)
            }
            None => Links::Own(live_links(target, links, &mut by_id, diagnostics)),
        };
        let mut index = TargetIndex {
            by_id,
            by_name: HashMap::new(),
            links,
            live,
        };

        // A probe per desired user, each on its own: on all cores. Few are asked about.
        let asked: HashSet<Cow<'a, str>> = desired
            .par_iter()
            .enumerate()
            .filter(|(at, user)| {
                if proved.is_some_and(|p| p.desired(*at)) {
                    return false;
                }
                let current = index.live_link(&user.source_id);
                current.is_none_or(|l| !same_user_name(&user.user_name, l.target.user_name()))
            })
            .map(|(_, user)| fold(&user.user_name))
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        if !asked.is_empty() {
            let mut by_name: HashMap<Cow<'a, str>, TargetRef<'a>> =
                HashMap::with_capacity(asked.len());
            index.for_each_target(|user| {
                let name = fold(user.user_name());
                if !asked.contains(&name) {
                    return;
                }
                by_name
                    .entry(name)
                    .and_modify(|held| {
                        // The target keeps userNames unique, so a clash means a stale link or
                        // a racing rename; keep the smaller id so hash order cannot decide.
                        if user.id() < held.id() {
                            *held = user;
                        }
                    })
                    .or_insert(user);
            });
            index.by_name = by_name;
        }
        index
    }

    /// Every target user the view holds or, incrementally, the links presume: each once.
    fn for_each_target(&self, mut each: impl FnMut(TargetRef<'a>)) {
        for (user, _) in self.by_id.values() {
            each(*user);
        }
        if let Links::Shared(linked) = &self.live {
            for (at, link) in linked.links().iter().enumerate() {
                if linked.is_live(at) && !self.by_id.contains_key(&link.target_id) {
                    each(TargetRef::Link(link));
                }
            }
        }
    }

    /// A live link, with its target user as the view holds it (or as the link says).
    fn shared_live(&self, link: &'a Link) -> LiveLink<'a> {
        let target = if self.by_id.is_empty() {
            None
        } else {
            self.by_id.get(&link.target_id).map(|(user, _)| *user)
        };
        LiveLink {
            link,
            target: target.unwrap_or(TargetRef::Link(link)),
        }
    }

    /// Whether the view holds (or, incrementally, presumes) a target user with this id.
    pub fn has_target(&self, id: &ScimId) -> bool {
        self.by_id.contains_key(id)
            || matches!(&self.live, Links::Shared(linked) if linked.claimant(id.as_str()).is_some())
    }

    pub fn live_link(&self, source_id: &SourceId) -> Option<LiveLink<'a>> {
        match &self.live {
            Links::Own(links) => links.get(source_id).copied().flatten(),
            Links::Shared(linked) => {
                let at = linked.live(source_id.as_str())?;
                Some(self.shared_live(linked.links().get(at)?))
            }
        }
    }

    /// The link at position `at` of the planner's links, if it is its source's live link (an
    /// incremental cycle's proof names its users' links by position).
    pub fn live_link_at(&self, at: usize) -> Option<LiveLink<'a>> {
        let link = self.links.get(at)?;
        match &self.live {
            Links::Own(_) => self
                .live_link(&link.source_id)
                .filter(|live| std::ptr::eq(live.link, link)),
            Links::Shared(linked) => linked.is_live(at).then(|| self.shared_live(link)),
        }
    }

    pub fn par_live_links(&self) -> impl ParallelIterator<Item = LiveLink<'a>> + '_ {
        match &self.live {
            Links::Own(links) => Either::Left(links.par_iter().filter_map(|(_, live)| *live)),
            Links::Shared(linked) => {
                Either::Right(linked.par_live().map(|(_, link)| self.shared_live(link)))
            }
        }
    }

    /// The target user holding this userName, for userNames of desired users only.
    pub fn by_name(&self, user_name: &str) -> Option<&TargetRef<'a>> {
        self.by_name.get(fold(user_name).as_ref())
    }

    /// The source whose live link claims this target user.
    pub fn owner(&self, target_id: &ScimId) -> Option<&'a SourceId> {
        match &self.live {
            Links::Own(_) => self.by_id.get(target_id)?.1,
            Links::Shared(linked) => {
                let at = linked.claimant(target_id.as_str())?;
                linked.links().get(at).map(|link| &link.source_id)
            }
        }
    }
}

/// The live links of `links`, each claiming its target user in `by_id` (which gains the
/// targets an incremental view presumes from the links).
fn live_links<'a>(
    target: &'a TargetView,
    links: &'a [Link],
    by_id: &mut HashMap<&'a ScimId, (TargetRef<'a>, Option<&'a SourceId>)>,
    diagnostics: &mut Vec<Diagnostic>,
) -> HashMap<&'a SourceId, Option<LiveLink<'a>>> {
    let mut live: HashMap<&'a SourceId, Option<LiveLink<'a>>> = HashMap::with_capacity(links.len());
    // One probe per map per link (entries, not a look-up then an insert): a million links.
    for link in links {
        let slot = match live.entry(&link.source_id) {
            Entry::Occupied(first) => {
                let first = first.get().map(|l| l.target.id().to_string());
                diagnostics.push(second_link(link, first));
                continue;
            }
            Entry::Vacant(slot) => slot,
        };
        let entry = match by_id.entry(&link.target_id) {
            Entry::Occupied(found) => found.into_mut(),
            // An incremental view proves nothing by absence: trust the link.
            Entry::Vacant(absent) if !target.complete => {
                absent.insert((TargetRef::Link(link), None))
            }
            // Removed from the target outside scimsync: the link is dead.
            Entry::Vacant(_) => {
                slot.insert(None);
                continue;
            }
        };
        if let Some(owner) = entry.1 {
            diagnostics.push(claimed_target(link, owner));
            slot.insert(None);
            continue;
        }
        entry.1 = Some(&link.source_id);
        slot.insert(Some(LiveLink {
            link,
            target: entry.0,
        }));
    }
    live
}

/// The diagnostics `live_links` reports, for links a shared index ignores.
fn report_ignored(linked: Linked<'_>, diagnostics: &mut Vec<Diagnostic>) {
    let links = linked.links();
    for (at, link) in links.iter().enumerate() {
        if linked.is_live(at) {
            continue;
        }
        let diagnostic = match linked.first(link.source_id.as_str()) {
            Some(first) if first != at => second_link(
                link,
                linked
                    .is_live(first)
                    .then(|| links.get(first).map(|l| l.target_id.to_string()))
                    .flatten(),
            ),
            _ => match linked
                .claimant(link.target_id.as_str())
                .and_then(|owner| links.get(owner))
            {
                Some(owner) => claimed_target(link, &owner.source_id),
                None => continue,
            },
        };
        diagnostics.push(diagnostic);
    }
}

/// `first`: the target user the source's first link names, if that link is live.
fn second_link(link: &Link, first: Option<String>) -> Diagnostic {
    let first = first.unwrap_or_else(|| "a removed user".to_owned());
    Diagnostic::new(
        &link.source_id,
        "link",
        format!(
            "a second link (to target user {}) is ignored; the first links to {first}",
            link.target_id
        ),
    )
}

fn claimed_target(link: &Link, owner: &SourceId) -> Diagnostic {
    Diagnostic::new(
        &link.source_id,
        "link",
        format!(
            "target user {} is already linked to {owner}; this link is ignored",
            link.target_id
        ),
    )
}
