//! Hash indexes over the target and the links, so every join in the planner is a lookup and
//! planning a million users stays linear.

use crate::input::Diagnostic;
use foldhash::{HashMap, HashMapExt, HashSet};
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
    /// Target id → the user, and the source whose live link claims it.
    by_id: HashMap<&'a ScimId, (TargetRef<'a>, Option<&'a SourceId>)>,
    /// Only the userNames some desired user asks about (unlinked, or renamed): in a steady
    /// state that is a handful, not the whole target.
    by_name: HashMap<Cow<'a, str>, TargetRef<'a>>,
    /// Every source with a link; `None` when its target user is gone from a complete view.
    links: HashMap<&'a SourceId, Option<LiveLink<'a>>>,
}

impl<'a> TargetIndex<'a> {
    pub fn build(
        target: &'a TargetView,
        links: &'a [Link],
        desired: &'a [DesiredUser],
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Self {
        let mut by_id: HashMap<&'a ScimId, (TargetRef<'a>, Option<&'a SourceId>)> =
            // An incremental view holds only lookups: the links add their users below.
            HashMap::with_capacity(target.users.len() + if target.complete { 0 } else { links.len() });
        for user in &target.users {
            // A duplicate id in a read is the target's bug; the first row wins so the result
            // does not depend on anything but the input order.
            by_id
                .entry(&user.id)
                .or_insert_with(|| (TargetRef::User(user), None));
        }

        let mut live: HashMap<&'a SourceId, Option<LiveLink<'a>>> =
            HashMap::with_capacity(links.len());
        // One probe per map per link (entries, not a look-up then an insert): a million links.
        for link in links {
            let slot = match live.entry(&link.source_id) {
                Entry::Occupied(first) => {
                    let first = first.get().map_or_else(
                        || "a removed user".to_owned(),
                        |l| l.target.id().to_string(),
                    );
                    diagnostics.push(Diagnostic::new(
                        &link.source_id,
                        "link",
                        format!(
                            "a second link (to target user {}) is ignored; the first links to {first}",
                            link.target_id
                        ),
                    ));
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
                diagnostics.push(Diagnostic::new(
                    &link.source_id,
                    "link",
                    format!(
                        "target user {} is already linked to {owner}; this link is ignored",
                        link.target_id
                    ),
                ));
                slot.insert(None);
                continue;
            }
            entry.1 = Some(&link.source_id);
            slot.insert(Some(LiveLink {
                link,
                target: entry.0,
            }));
        }

        // A probe per desired user, each on its own: on all cores. Few are asked about.
        let asked: HashSet<Cow<'a, str>> = desired
            .par_iter()
            .filter(|user| {
                let current = live.get(&user.source_id).copied().flatten();
                current.is_none_or(|l| !same_user_name(&user.user_name, l.target.user_name()))
            })
            .map(|user| fold(&user.user_name))
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        let mut by_name: HashMap<Cow<'a, str>, TargetRef<'a>> = HashMap::with_capacity(asked.len());
        if !asked.is_empty() {
            for (user, _) in by_id.values() {
                let name = fold(user.user_name());
                if !asked.contains(&name) {
                    continue;
                }
                by_name
                    .entry(name)
                    .and_modify(|held| {
                        // The target keeps userNames unique, so a clash means a stale link or
                        // a racing rename; keep the smaller id so hash order cannot decide.
                        if user.id() < held.id() {
                            *held = *user;
                        }
                    })
                    .or_insert(*user);
            }
        }

        TargetIndex {
            by_id,
            by_name,
            links: live,
        }
    }

    /// Whether the view holds (or, incrementally, presumes) a target user with this id.
    pub fn has_target(&self, id: &ScimId) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn live_link(&self, source_id: &SourceId) -> Option<&LiveLink<'a>> {
        self.links.get(source_id)?.as_ref()
    }

    pub fn par_live_links(&self) -> impl ParallelIterator<Item = &LiveLink<'a>> {
        self.links.par_iter().filter_map(|(_, live)| live.as_ref())
    }

    /// The target user holding this userName, for userNames of desired users only.
    pub fn by_name(&self, user_name: &str) -> Option<&TargetRef<'a>> {
        self.by_name.get(fold(user_name).as_ref())
    }

    /// The source whose live link claims this target user.
    pub fn owner(&self, target_id: &ScimId) -> Option<&'a SourceId> {
        self.by_id.get(target_id)?.1
    }
}
