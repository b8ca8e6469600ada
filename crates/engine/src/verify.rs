//! Verifying uncertain users and groups before a cycle plans them.
//!
//! A write whose outcome is unknown (no answer, an answer that confirms nothing, abandoned by a
//! crash, a halt or a shutdown) leaves its user or group marked uncertain in the store, and the
//! user's link without a fingerprint. Before planning, a cycle reads each one from the target,
//! within the read buckets: `GET /Users/{id}` or `GET /Groups/{id}`, or, for a create, a lookup
//! by userName or displayName. What it finds is what the cycle plans against:
//! - a user read is put into the target view, so the planner compares the directory with it
//!   (as a full read would), never with the link;
//! - a user or group the target no longer has (404) loses its link, so the cycle treats it as
//!   new (looked up, then created or adopted);
//! - a create that landed is linked (a lookup finds it), so it is adopted, or deprovisioned if
//!   the directory no longer wants it; a create the lookup does not find never landed;
//! - a group read replaces what its link remembers (members, displayName);
//! - a read that fails holds the object untouched this cycle: still uncertain, never planned
//!   from its link.
//!
//! A cycle with nothing uncertain reads nothing. On a full cycle users are not read one by
//! one: the full read holds them, and the planner compares every user with it.
//!
//! This module reads and decides; `prepare` applies the result in memory (so a dry run plans
//! exactly what a sync would), and `sync` stores it (`persist`).

use crate::EngineError;
use scimsync_executor::{ScimClient, ScimError};
use scimsync_model::{
    GroupLink, Link, OpKind, ResourceKind, ScimId, SourceId, TargetGroup, TargetUser,
    fold_user_name,
};
use scimsync_store::{Store, StoreError, UncertainMark};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

/// The reads verification needs of the target (the SCIM client; a fake in tests).
pub trait TargetReads: Send + Sync + 'static {
    /// `GET /Users/{id}`; `None` on 404.
    fn user(
        &self,
        id: &ScimId,
    ) -> impl Future<Output = Result<Option<TargetUser>, ScimError>> + Send;
    /// `GET /Users?filter=userName eq "…"`.
    fn user_named(
        &self,
        user_name: &str,
    ) -> impl Future<Output = Result<Option<TargetUser>, ScimError>> + Send;
    /// `GET /Groups/{id}` with its members; `None` on 404.
    fn group(
        &self,
        id: &ScimId,
    ) -> impl Future<Output = Result<Option<TargetGroup>, ScimError>> + Send;
    /// `GET /Groups?filter=displayName eq "…"`: the group's id.
    fn group_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ScimId>, ScimError>> + Send;
}

impl TargetReads for ScimClient {
    fn user(
        &self,
        id: &ScimId,
    ) -> impl Future<Output = Result<Option<TargetUser>, ScimError>> + Send {
        self.get_user(id)
    }
    fn user_named(
        &self,
        user_name: &str,
    ) -> impl Future<Output = Result<Option<TargetUser>, ScimError>> + Send {
        self.find_user(user_name)
    }
    fn group(
        &self,
        id: &ScimId,
    ) -> impl Future<Output = Result<Option<TargetGroup>, ScimError>> + Send {
        self.read_group(id)
    }
    fn group_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ScimId>, ScimError>> + Send {
        self.find_group(name)
    }
}

/// What one uncertain object turned out to be.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// The user as the target holds it (put into the target view).
    User(TargetUser),
    /// A create that landed: the user the lookup found, to link.
    CreatedUser(TargetUser),
    /// The group as the target holds it (members and displayName replace its link's).
    Group(TargetGroup),
    /// A group create that landed: the group the lookup found, with its members.
    CreatedGroup(TargetGroup),
    /// The target no longer has it: its link goes.
    Gone,
    /// A create the lookup does not find: it never landed; nothing to link.
    NotCreated,
    /// Nothing to verify any more (no link, and not a create): the mark is stale.
    Stale,
    /// The read failed: held untouched this cycle, still uncertain.
    Unverified(String),
}

/// One verified object.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub mark: UncertainMark,
    pub finding: Finding,
}

/// The uncertain objects of this cycle and what the reads found.
#[derive(Clone, Debug, Default)]
pub struct Verification {
    pub verified: Vec<Verified>,
    /// Requests spent.
    pub reads: usize,
}

impl Verification {
    fn of(&self, kind: ResourceKind) -> impl Iterator<Item = (&SourceId, &Finding)> {
        self.verified
            .iter()
            .filter(move |v| v.mark.mark.kind == kind)
            .map(|v| (&v.mark.mark.source_id, &v.finding))
    }

    /// Users read this cycle, for the target view.
    pub fn users(&self) -> impl Iterator<Item = &TargetUser> {
        self.of(ResourceKind::User).filter_map(|(_, f)| match f {
            Finding::User(u) | Finding::CreatedUser(u) => Some(u),
            _ => None,
        })
    }

    /// Users held untouched: their read failed.
    pub fn held_users(&self) -> impl Iterator<Item = &SourceId> {
        self.of(ResourceKind::User)
            .filter(|(_, f)| matches!(f, Finding::Unverified(_)))
            .map(|(s, _)| s)
    }

    /// Groups held untouched: their read failed.
    pub fn held_groups(&self) -> HashSet<&SourceId> {
        self.of(ResourceKind::Group)
            .filter(|(_, f)| matches!(f, Finding::Unverified(_)))
            .map(|(s, _)| s)
            .collect()
    }

    /// The user links as verification leaves them: the links of users gone from the target
    /// dropped, creates that landed linked (without a fingerprint: compared with the read,
    /// like any uncertain user).
    pub fn user_overlay(&self) -> LinkOverlay {
        let mut overlay = LinkOverlay::default();
        for (source_id, finding) in self.of(ResourceKind::User) {
            match finding {
                Finding::Gone => {
                    overlay.drop.insert(source_id.clone());
                }
                Finding::CreatedUser(user) => overlay.add.push(Link {
                    source_id: source_id.clone(),
                    target_id: user.id.clone(),
                    user_name: user.user_name.clone(),
                    active: user.active,
                    attrs: user.attrs.clone(),
                    hash: String::new(),
                }),
                _ => {}
            }
        }
        overlay.add.sort_by(|a, b| a.source_id.cmp(&b.source_id));
        overlay
    }

    /// Applies what was read of groups to the group links: members and names replaced, links
    /// of groups gone dropped, groups whose create landed linked.
    pub fn apply_to_groups(&self, links: &mut Vec<GroupLink>) {
        let mut gone = HashSet::new();
        for (source_id, finding) in self.of(ResourceKind::Group) {
            match finding {
                Finding::Group(group) => {
                    if let Some(link) = links.iter_mut().find(|l| &l.source_id == source_id) {
                        *link = group_link(source_id, group, &link.display_name);
                    }
                }
                Finding::CreatedGroup(group) => {
                    links.retain(|l| &l.source_id != source_id && l.target_id != group.id);
                    links.push(group_link(source_id, group, &group.display_name));
                }
                Finding::Gone => {
                    gone.insert(source_id);
                }
                _ => {}
            }
        }
        links.retain(|l| !gone.contains(&l.source_id));
        links.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    }
}

fn group_link(source_id: &SourceId, group: &TargetGroup, name_if_unread: &str) -> GroupLink {
    GroupLink {
        source_id: source_id.clone(),
        target_id: group.id.clone(),
        display_name: if group.display_name.is_empty() {
            name_if_unread.to_owned()
        } else {
            group.display_name.clone()
        },
        members: group.members.clone().unwrap_or_default(),
    }
}

/// Links to leave out of, and add to, what the store holds for this cycle.
#[derive(Clone, Debug, Default)]
pub struct LinkOverlay {
    pub drop: HashSet<SourceId>,
    /// In source id order.
    pub add: Vec<Link>,
}

impl LinkOverlay {
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.add.is_empty()
    }

    /// Applies the overlay to links in source id order, keeping that order; `stamps` (aligned
    /// with `links`, if given) follow, an added link having none. An added link replaces one
    /// of the same source id.
    pub fn apply<S: Default>(&self, links: &mut Vec<Link>, mut stamps: Option<&mut Vec<S>>) {
        if self.is_empty() {
            return;
        }
        let added: HashSet<&SourceId> = self.add.iter().map(|l| &l.source_id).collect();
        let claimed: HashSet<&ScimId> = self.add.iter().map(|l| &l.target_id).collect();
        let old_links = std::mem::take(links);
        let old_stamps = stamps.as_mut().map(|s| std::mem::take(&mut **s));
        let mut old_stamps = old_stamps.map(Vec::into_iter);
        let mut add = self.add.iter().peekable();
        for link in old_links {
            let stamp = old_stamps.as_mut().and_then(Iterator::next);
            while let Some(new) = add.next_if(|new| new.source_id < link.source_id) {
                push(links, stamps.as_deref_mut(), new.clone(), S::default());
            }
            // One target user is one person's account: a link added for it supersedes another.
            if self.drop.contains(&link.source_id)
                || added.contains(&link.source_id)
                || claimed.contains(&link.target_id)
            {
                continue;
            }
            push(
                links,
                stamps.as_deref_mut(),
                link,
                stamp.unwrap_or_default(),
            );
        }
        for new in add {
            push(links, stamps.as_deref_mut(), new.clone(), S::default());
        }
    }
}

fn push<S>(links: &mut Vec<Link>, stamps: Option<&mut Vec<S>>, link: Link, stamp: S) {
    links.push(link);
    if let Some(stamps) = stamps {
        stamps.push(stamp);
    }
}

/// Reads every uncertain object. `full`: the cycle reads every user anyway, so linked users are
/// not read one by one (creates are still looked up). At most 16 reads are open at once; each
/// is paced in its bucket by the client.
pub async fn read<C: TargetReads>(
    client: &Arc<C>,
    store: &Store,
    full: bool,
) -> Result<Verification, EngineError> {
    let marks = store.uncertain()?;
    if marks.is_empty() {
        return Ok(Verification::default());
    }
    let group_links: HashMap<SourceId, GroupLink> = store
        .group_links()?
        .into_iter()
        .map(|l| (l.source_id.clone(), l))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut verified = Vec::new();
    let mut reads = 0;
    for (at, mark) in marks.iter().enumerate() {
        let source_id = &mark.mark.source_id;
        let read = match mark.mark.kind {
            ResourceKind::User => match store.link(source_id)? {
                // The full read holds it: the planner compares it there.
                Some(_) if full => continue,
                Some(link) => Read::User(link.target_id),
                None if mark.mark.op == OpKind::Create => Read::UserNamed(mark.mark.name.clone()),
                None => Read::Stale,
            },
            ResourceKind::Group => match group_links.get(source_id) {
                Some(link) => Read::Group(link.target_id.clone()),
                None if mark.mark.op == OpKind::Create => Read::GroupNamed(mark.mark.name.clone()),
                None => Read::Stale,
            },
        };
        if read == Read::Stale {
            verified.push((at, Finding::Stale));
            continue;
        }
        let client = Arc::clone(client);
        let gate = Arc::clone(&gate);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let (finding, spent) = read.run(&*client).await;
            (at, finding, spent)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (at, finding, spent) = joined.map_err(|_| EngineError::Panicked {
            what: "a verification read",
        })?;
        reads += spent;
        verified.push((at, finding));
    }
    // Completion order is not deterministic; the plan must be.
    verified.sort_by_key(|(at, _)| *at);
    let verified = verified
        .into_iter()
        .filter_map(|(at, finding)| {
            Some(Verified {
                mark: marks.get(at)?.clone(),
                finding,
            })
        })
        .collect();
    Ok(Verification { verified, reads })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Read {
    User(ScimId),
    UserNamed(String),
    Group(ScimId),
    GroupNamed(String),
    Stale,
}

impl Read {
    async fn run<C: TargetReads>(self, client: &C) -> (Finding, usize) {
        let failed = |e: ScimError| Finding::Unverified(e.to_string());
        match self {
            Read::User(id) => (
                match client.user(&id).await {
                    Ok(Some(user)) => Finding::User(user),
                    Ok(None) => Finding::Gone,
                    Err(e) => failed(e),
                },
                1,
            ),
            Read::UserNamed(name) => (
                match client.user_named(&name).await {
                    Ok(Some(user)) if fold_user_name(&user.user_name) == fold_user_name(&name) => {
                        Finding::CreatedUser(user)
                    }
                    Ok(_) => Finding::NotCreated,
                    Err(e) => failed(e),
                },
                1,
            ),
            Read::Group(id) => (
                match client.group(&id).await {
                    Ok(Some(group)) => Finding::Group(group),
                    Ok(None) => Finding::Gone,
                    Err(e) => failed(e),
                },
                1,
            ),
            Read::GroupNamed(name) => match client.group_named(&name).await {
                Ok(Some(id)) => match client.group(&id).await {
                    Ok(Some(group)) => (Finding::CreatedGroup(group), 2),
                    Ok(None) => (Finding::NotCreated, 2),
                    Err(e) => (failed(e), 2),
                },
                Ok(None) => (Finding::NotCreated, 1),
                Err(e) => (failed(e), 1),
            },
            Read::Stale => (Finding::Stale, 0),
        }
    }
}

/// Stores what verification settled (a sync, not a dry run): links of objects gone removed,
/// creates that landed linked, group links replaced by what was read; marks of objects now
/// known cleared. A user read stays uncertain until the cycle confirms it (its op succeeds,
/// or the planner's relink for it is stored): until then its link is not trusted.
pub fn persist(store: &mut Store, verification: &Verification) -> Result<(), StoreError> {
    for v in &verification.verified {
        let mark = &v.mark.mark;
        let source_id = &mark.source_id;
        match (mark.kind, &v.finding) {
            (_, Finding::Unverified(why)) => {
                tracing::warn!(
                    "{} {} ({source_id}) is uncertain and could not be read ({why}); held \
                     untouched this cycle",
                    mark.kind,
                    mark.name
                );
            }
            (ResourceKind::User, Finding::User(_)) => {}
            (ResourceKind::User, Finding::CreatedUser(user)) => {
                store.upsert_link(&Link {
                    source_id: source_id.clone(),
                    target_id: user.id.clone(),
                    user_name: user.user_name.clone(),
                    active: user.active,
                    attrs: user.attrs.clone(),
                    hash: String::new(),
                })?;
            }
            (ResourceKind::User, Finding::Gone) => {
                store.remove_link(source_id)?;
                store.clear_uncertain(ResourceKind::User, source_id)?;
            }
            (ResourceKind::Group, Finding::Group(group)) => {
                if let Some(old) = store
                    .group_links()?
                    .into_iter()
                    .find(|l| &l.source_id == source_id)
                {
                    store.upsert_group_link(&group_link(source_id, group, &old.display_name))?;
                }
                store.clear_uncertain(ResourceKind::Group, source_id)?;
            }
            (ResourceKind::Group, Finding::CreatedGroup(group)) => {
                store.upsert_group_link(&group_link(source_id, group, &group.display_name))?;
                store.clear_uncertain(ResourceKind::Group, source_id)?;
            }
            (ResourceKind::Group, Finding::Gone) => {
                store.remove_group_link(source_id)?;
                store.clear_uncertain(ResourceKind::Group, source_id)?;
            }
            (kind, Finding::NotCreated | Finding::Stale) => {
                store.clear_uncertain(kind, source_id)?;
            }
            (ResourceKind::User, Finding::Group(_) | Finding::CreatedGroup(_))
            | (ResourceKind::Group, Finding::User(_) | Finding::CreatedUser(_)) => {}
        }
    }
    Ok(())
}

/// A `user_lookup_provision` event per uncertain user read (or held because its read failed):
/// the audit trail of why the cycle planned what it did for that user. Groups are logged.
pub fn events(
    verification: &Verification,
    ctx: &crate::emit::EventContext,
) -> Vec<scimsync_model::Event> {
    use crate::emit::EventExt;
    let mut events = Vec::new();
    for v in &verification.verified {
        let mark = &v.mark.mark;
        let (found, success, error, target) = match &v.finding {
            Finding::User(u) => ("present", true, None, Some(u.id.clone())),
            Finding::CreatedUser(u) => ("created", true, None, Some(u.id.clone())),
            Finding::Gone => ("gone", true, None, mark.target_id.clone()),
            Finding::NotCreated => ("not_created", true, None, None),
            Finding::Stale => ("stale", true, None, mark.target_id.clone()),
            Finding::Unverified(why) => (
                "unread",
                false,
                Some(format!(
                    "uncertain since {} and not readable now ({why}): held untouched this cycle",
                    v.mark.since
                )),
                mark.target_id.clone(),
            ),
            Finding::Group(_) | Finding::CreatedGroup(_) => continue,
        };
        if mark.kind == ResourceKind::Group {
            tracing::info!(
                "uncertain group {} ({}): {found}",
                mark.name,
                mark.source_id
            );
            continue;
        }
        let active = match &v.finding {
            Finding::User(u) | Finding::CreatedUser(u) => Some(u.active),
            _ => None,
        };
        let mut event = ctx
            .event(scimsync_model::EventType::UserLookupProvision, success)
            .with_detail(serde_json::json!({
                "verify": "uncertain",
                "op": mark.op.as_str(),
                "found": found,
                "active": active,
                "since": v.mark.since,
            }))
            .with_error(error);
        event.resource = Some(scimsync_model::EventResource {
            kind: "user".into(),
            source_id: Some(mark.source_id.clone()),
            user_name: Some(mark.name.clone()),
            display_name: None,
            target_id: target,
        });
        events.push(event);
    }
    events
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scimsync_model::{Attrs, Uncertain};
    use std::sync::Mutex;

    /// A target of a few users and groups; every read is counted.
    #[derive(Default)]
    struct Fake {
        users: Vec<TargetUser>,
        groups: Vec<TargetGroup>,
        failing: HashSet<String>,
        reads: Mutex<Vec<String>>,
    }

    impl Fake {
        fn read(&self, what: String) -> Result<(), ScimError> {
            let fail = self.failing.contains(&what);
            self.reads.lock().unwrap().push(what);
            if fail {
                return Err(ScimError::Server {
                    status: 503,
                    detail: None,
                });
            }
            Ok(())
        }
    }

    impl TargetReads for Fake {
        async fn user(&self, id: &ScimId) -> Result<Option<TargetUser>, ScimError> {
            self.read(format!("user {id}"))?;
            Ok(self.users.iter().find(|u| &u.id == id).cloned())
        }
        async fn user_named(&self, name: &str) -> Result<Option<TargetUser>, ScimError> {
            self.read(format!("user named {name}"))?;
            Ok(self.users.iter().find(|u| u.user_name == name).cloned())
        }
        async fn group(&self, id: &ScimId) -> Result<Option<TargetGroup>, ScimError> {
            self.read(format!("group {id}"))?;
            Ok(self.groups.iter().find(|g| &g.id == id).cloned())
        }
        async fn group_named(&self, name: &str) -> Result<Option<ScimId>, ScimError> {
            self.read(format!("group named {name}"))?;
            Ok(self
                .groups
                .iter()
                .find(|g| g.display_name == name)
                .map(|g| g.id.clone()))
        }
    }

    fn target(id: &str, name: &str, active: bool) -> TargetUser {
        TargetUser {
            id: ScimId::new(id),
            user_name: name.into(),
            active,
            attrs: Attrs::new(),
        }
    }

    fn link(source: &str, target: &str, name: &str) -> Link {
        Link {
            source_id: SourceId::new(source),
            target_id: ScimId::new(target),
            user_name: name.into(),
            active: true,
            attrs: Attrs::new(),
            hash: "h".into(),
        }
    }

    fn mark(kind: ResourceKind, source: &str, target: Option<&str>, op: OpKind) -> Uncertain {
        Uncertain {
            kind,
            source_id: SourceId::new(source),
            target_id: target.map(ScimId::new),
            name: format!("{source}@example.com"),
            op,
            reason: "reset".into(),
        }
    }

    fn store_with(links: &[Link], groups: &[GroupLink], marks: &[Uncertain]) -> Store {
        let mut store = Store::open_in_memory().unwrap();
        for l in links {
            store.upsert_link(l).unwrap();
        }
        for g in groups {
            store.upsert_group_link(g).unwrap();
        }
        for m in marks {
            store.mark_uncertain(None, m).unwrap();
        }
        store
    }

    #[tokio::test]
    async fn a_clean_store_reads_nothing() {
        let fake = Arc::new(Fake::default());
        let store = store_with(&[link("u1", "t1", "a@example.com")], &[], &[]);
        let v = read(&fake, &store, false).await.unwrap();
        assert!(v.verified.is_empty());
        assert_eq!(v.reads, 0);
        assert!(fake.reads.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn each_uncertain_object_is_read_once_and_judged_by_what_is_found() {
        let fake = Arc::new(Fake {
            users: vec![
                target("t1", "u1@example.com", false),
                target("t5", "u5@example.com", true),
            ],
            groups: vec![TargetGroup {
                id: ScimId::new("g1"),
                display_name: "Eng".into(),
                members: Some(vec![ScimId::new("t1")]),
            }],
            failing: ["user t3".to_owned()].into(),
            ..Fake::default()
        });
        let store = store_with(
            &[
                link("u1", "t1", "u1@example.com"),
                link("u2", "t2", "u2@example.com"),
                link("u3", "t3", "u3@example.com"),
            ],
            &[GroupLink {
                source_id: SourceId::new("dg1"),
                target_id: ScimId::new("g1"),
                display_name: "Eng".into(),
                members: Vec::new(),
            }],
            &[
                mark(ResourceKind::User, "u1", Some("t1"), OpKind::Deactivate),
                mark(ResourceKind::User, "u2", Some("t2"), OpKind::Delete),
                mark(ResourceKind::User, "u3", Some("t3"), OpKind::Update),
                mark(ResourceKind::User, "u5", None, OpKind::Create),
                mark(ResourceKind::User, "u6", None, OpKind::Create),
                mark(ResourceKind::User, "u7", Some("t7"), OpKind::Update),
                mark(ResourceKind::Group, "dg1", Some("g1"), OpKind::Members),
            ],
        );
        let v = read(&fake, &store, false).await.unwrap();
        let finding = |s: &str| {
            v.verified
                .iter()
                .find(|x| x.mark.mark.source_id.as_str() == s)
                .map(|x| x.finding.clone())
                .unwrap()
        };
        assert_eq!(
            finding("u1"),
            Finding::User(target("t1", "u1@example.com", false))
        );
        assert_eq!(finding("u2"), Finding::Gone);
        assert!(matches!(finding("u3"), Finding::Unverified(m) if m.contains("503")));
        assert_eq!(
            finding("u5"),
            Finding::CreatedUser(target("t5", "u5@example.com", true))
        );
        assert_eq!(finding("u6"), Finding::NotCreated);
        assert_eq!(finding("u7"), Finding::Stale);
        assert!(
            matches!(finding("dg1"), Finding::Group(g) if g.members.as_ref().unwrap().len() == 1)
        );
        // One read per object, none for the stale mark.
        assert_eq!(v.reads, 6);
        assert_eq!(fake.reads.lock().unwrap().len(), 6);
        assert_eq!(v.held_users().collect::<Vec<_>>(), [&SourceId::new("u3")]);
        assert_eq!(v.users().count(), 2);

        // The overlay drops the gone link and links the create that landed, in order.
        let mut links = vec![
            link("u1", "t1", "u1@example.com"),
            link("u2", "t2", "u2@example.com"),
            link("u3", "t3", "u3@example.com"),
        ];
        let mut stamps = vec![Some(1), Some(2), Some(3)];
        v.user_overlay().apply(&mut links, Some(&mut stamps));
        let ids: Vec<_> = links.iter().map(|l| l.source_id.as_str()).collect();
        assert_eq!(ids, ["u1", "u3", "u5"]);
        assert_eq!(stamps, [Some(1), Some(3), None]);
        assert_eq!(
            links[2].hash, "",
            "a verified link is never taken as unchanged"
        );
    }

    #[tokio::test]
    async fn a_full_cycle_reads_no_linked_user_one_by_one() {
        let fake = Arc::new(Fake::default());
        let store = store_with(
            &[link("u1", "t1", "u1@example.com")],
            &[],
            &[
                mark(ResourceKind::User, "u1", Some("t1"), OpKind::Update),
                mark(ResourceKind::User, "u5", None, OpKind::Create),
            ],
        );
        let v = read(&fake, &store, true).await.unwrap();
        assert_eq!(
            *fake.reads.lock().unwrap(),
            ["user named u5@example.com".to_owned()]
        );
        assert_eq!(v.verified.len(), 1);
    }

    #[tokio::test]
    async fn persisting_settles_what_is_known_and_keeps_what_is_not() {
        let fake = Arc::new(Fake {
            failing: ["user t3".to_owned()].into(),
            ..Fake::default()
        });
        let mut store = store_with(
            &[
                link("u2", "t2", "u2@example.com"),
                link("u3", "t3", "u3@example.com"),
            ],
            &[],
            &[
                mark(ResourceKind::User, "u2", Some("t2"), OpKind::Delete),
                mark(ResourceKind::User, "u3", Some("t3"), OpKind::Update),
                mark(ResourceKind::User, "u6", None, OpKind::Create),
            ],
        );
        let v = read(&fake, &store, false).await.unwrap();
        persist(&mut store, &v).unwrap();
        let left: Vec<_> = store
            .uncertain()
            .unwrap()
            .into_iter()
            .map(|m| m.mark.source_id)
            .collect();
        assert_eq!(left, [SourceId::new("u3")]);
        assert!(store.link(&SourceId::new("u2")).unwrap().is_none());
        assert!(store.link(&SourceId::new("u3")).unwrap().is_some());
    }
}
