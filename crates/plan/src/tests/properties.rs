//! Property tests: random directory and target states, a model of the service provider that
//! executes the plan, and the promises the plan must keep once executed.

use crate::{Diagnostic, OnDelete, OnUnassign, PlanInput, PlanOutput, Policy};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use scimsync_model::{
    AttrValue, Attrs, DesiredUser, Link, Op, OutOfScope, OutOfScopeReason, ScimId, SkipReason,
    SourceId, TargetUser, TargetView, fingerprint, paths,
};
use std::collections::{BTreeMap, BTreeSet};

const NAMES: [&str; 7] = [
    "ann@x.com",
    "bob@x.com",
    "cat@x.com",
    "dan@x.com",
    "eve@x.com",
    "fay@x.com",
    "gus@x.com",
];
/// GIVEN_NAME is create-only in every generated policy.
const PATHS: [&str; 4] = [
    paths::DISPLAY_NAME,
    paths::DEPARTMENT,
    paths::TITLE,
    paths::GIVEN_NAME,
];
const VALUES: [&str; 2] = ["A", "B"];
const SOURCES: usize = 8;
/// Target ids beyond the generated users stand for users removed from the target.
const TARGET_SLOTS: usize = 8;
/// A convergence chain (each round unblocks at least one rename or create) is at most as long
/// as the number of users, plus the round that finds nothing to do.
const MAX_ROUNDS: usize = SOURCES + 2;

fn source(i: usize) -> SourceId {
    SourceId::new(format!("s{i}"))
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn cased(name: usize, mask: u8) -> String {
    NAMES[name]
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i < 8 && mask & (1 << i) != 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn attrs_of(raw: &BTreeMap<usize, usize>) -> Attrs {
    raw.iter()
        .map(|(p, v)| (PATHS[*p].into(), AttrValue::text(VALUES[*v])))
        .collect()
}

type RawTarget = (usize, u8, bool, BTreeMap<usize, usize>, Option<usize>);
type RawDesired = (usize, bool, BTreeMap<usize, usize>, Option<usize>, bool);
type RawLink = (usize, u8, usize, bool);

#[derive(Clone, Debug)]
struct Raw {
    targets: Vec<RawTarget>,
    desired: Vec<Option<RawDesired>>,
    links: Vec<Option<RawLink>>,
    out: Vec<Option<u8>>,
    held: Vec<bool>,
    complete: bool,
    on_unassign: u8,
    on_delete: bool,
}

fn raw() -> impl Strategy<Value = Raw> {
    let attrs = || btree_map(0..PATHS.len(), 0..VALUES.len(), 0..=3);
    let casing = prop_oneof![3 => Just(0u8), 1 => any::<u8>()];
    let target = (
        0..NAMES.len(),
        casing,
        proptest::bool::weighted(0.75),
        attrs(),
        proptest::option::weighted(0.3, 0..TARGET_SLOTS),
    );
    let desired = proptest::option::weighted(
        0.7,
        (
            0..NAMES.len(),
            proptest::bool::weighted(0.8),
            attrs(),
            proptest::option::weighted(0.4, 0..SOURCES + 1),
            proptest::bool::weighted(0.3),
        ),
    );
    let link = proptest::option::weighted(
        0.5,
        (
            0..TARGET_SLOTS,
            any::<u8>(),
            0..NAMES.len(),
            proptest::bool::weighted(0.2),
        ),
    );
    (
        vec(target, 0..=6),
        vec(desired, SOURCES),
        vec(link, SOURCES),
        vec(proptest::option::weighted(0.5, 0..3u8), SOURCES),
        vec(proptest::bool::weighted(0.1), SOURCES),
        any::<bool>(),
        0..3u8,
        any::<bool>(),
    )
        .prop_map(
            |(targets, desired, links, out, held, complete, on_unassign, on_delete)| Raw {
                targets,
                desired,
                links,
                out,
                held,
                complete,
                on_unassign,
                on_delete,
            },
        )
}

/// One generated situation: the directory side, the store, and the target as it really is.
#[derive(Clone, Debug)]
struct World {
    desired: Vec<DesiredUser>,
    out_of_scope: Vec<OutOfScope>,
    held: Vec<SourceId>,
    links: Vec<Link>,
    /// Everything the target holds.
    truth: Vec<TargetUser>,
    /// What the planner is shown of it.
    view: TargetView,
    policy: Policy,
}

impl World {
    fn from_raw(raw: &Raw) -> Self {
        let mut truth: Vec<TargetUser> = Vec::new();
        for (i, (name, mask, active, attrs, manager)) in raw.targets.iter().enumerate() {
            let user_name = cased(*name, *mask);
            // The target keeps userNames unique, case-insensitively.
            if truth.iter().any(|u| fold(&u.user_name) == fold(&user_name)) {
                continue;
            }
            let mut attrs = attrs_of(attrs);
            if let Some(m) = manager {
                attrs.insert(paths::MANAGER.into(), AttrValue::text(format!("t{m}")));
            }
            truth.push(TargetUser {
                id: ScimId::new(format!("t{i}")),
                user_name,
                active: *active,
                attrs,
            });
        }

        let desired: Vec<DesiredUser> = raw
            .desired
            .iter()
            .enumerate()
            .filter_map(|(s, d)| {
                let (name, active, attrs, manager, _) = d.as_ref()?;
                let mut attrs = attrs_of(attrs);
                if let Some(m) = manager {
                    attrs.insert(paths::MANAGER.into(), AttrValue::Ref { user: source(*m) });
                }
                Some(DesiredUser {
                    source_id: source(s),
                    user_name: NAMES[*name].to_owned(),
                    active: *active,
                    attrs,
                })
            })
            .collect();

        let mut links: Vec<Link> = Vec::new();
        for (s, l) in raw.links.iter().enumerate() {
            let Some((slot, pushed_mask, gone_name, stale)) = l else {
                continue;
            };
            let target_id = ScimId::new(format!("t{slot}"));
            if links.iter().any(|l| l.target_id == target_id) {
                continue;
            }
            let link = match truth.iter().find(|u| u.id == target_id) {
                // The store agrees with the target about what scimsync pushed; the target may
                // hold more, set by someone else.
                // A stale link (the target edited by hand since) is only generated with a full
                // read: an incremental cycle trusts the links by design.
                Some(user) => {
                    let stale = *stale && raw.complete;
                    let attrs: Attrs = user
                        .attrs
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| pushed_mask & (1 << i) != 0)
                        .map(|(_, (k, v))| {
                            let v = match v.as_text() {
                                Some("A") if stale => AttrValue::text("B"),
                                Some("B") if stale => AttrValue::text("A"),
                                _ => v.clone(),
                            };
                            (k.clone(), v)
                        })
                        .collect();
                    Link {
                        source_id: source(s),
                        target_id,
                        user_name: user.user_name.clone(),
                        active: user.active,
                        hash: fingerprint(&user.user_name, user.active, &attrs),
                        attrs,
                    }
                }
                // An incremental view would present it as existing; the model target has no
                // such user to answer, so only a full read gets links to removed users.
                None if !raw.complete => continue,
                None => Link {
                    source_id: source(s),
                    target_id,
                    user_name: NAMES[*gone_name].to_owned(),
                    active: true,
                    attrs: Attrs::new(),
                    hash: String::new(),
                },
            };
            links.push(link);
        }

        // Most users do not change between cycles: some desired users are exactly what their
        // link says was pushed last (which, for a stale link, is not what the target holds).
        let mut desired = desired;
        for d in &mut desired {
            let echo = raw
                .desired
                .iter()
                .enumerate()
                .any(|(s, r)| source(s) == d.source_id && r.as_ref().is_some_and(|r| r.4));
            let link = links
                .iter()
                .find(|l| l.source_id == d.source_id && !l.hash.is_empty());
            if let (true, Some(link)) = (echo, link) {
                d.user_name = fold(&link.user_name);
                d.active = link.active;
                d.attrs = link.attrs.clone();
            }
        }

        let desired_ids: BTreeSet<&SourceId> = desired.iter().map(|d| &d.source_id).collect();
        let out_of_scope = raw
            .out
            .iter()
            .enumerate()
            .filter_map(|(s, o)| {
                let id = source(s);
                if desired_ids.contains(&id) {
                    return None;
                }
                let reason = match (*o)? {
                    0 => OutOfScopeReason::Unassigned,
                    1 => OutOfScopeReason::Filtered {
                        rule: "rule".to_owned(),
                    },
                    _ => OutOfScopeReason::Deleted,
                };
                Some(OutOfScope {
                    source_id: id,
                    user_name: NAMES[s % NAMES.len()].to_owned(),
                    reason,
                })
            })
            .collect();

        let held = (0..SOURCES).filter(|s| raw.held[*s]).map(source).collect();

        let view = if raw.complete {
            TargetView {
                users: truth.clone(),
                complete: true,
            }
        } else {
            incremental_view(&truth, &links, &desired)
        };

        World {
            desired,
            out_of_scope,
            held,
            links,
            truth,
            view,
            policy: Policy {
                on_unassign: match raw.on_unassign {
                    0 => OnUnassign::Deactivate,
                    1 => OnUnassign::Delete,
                    _ => OnUnassign::Ignore,
                },
                on_delete: if raw.on_delete {
                    OnDelete::Delete
                } else {
                    OnDelete::Deactivate
                },
                create_only: [paths::GIVEN_NAME.to_owned()].into(),
                frozen_while_inactive: BTreeSet::new(),
                deactivate_first: false,
                licence: None,
            },
        }
    }

    fn plan(&self) -> PlanOutput {
        self.plan_with(None)
    }

    /// Planned with the incremental proof of which users are unchanged, as a cycle hands it
    /// over: settled from mapping's claims (each user without a reference the links' index
    /// claims as last pushed, its attributes dropped), or with `claims` false proved without
    /// them (every linked user compared by the proof). The proved users' attributes are gone.
    fn plan_proved(&self, claims: bool) -> PlanOutput {
        let mut proved = self.clone();
        let live = crate::LiveLinks::new(&self.links);
        let proof = if claims {
            let claims = super::fixture::claim_as_mapping(&live, &mut proved.desired);
            match live.settle(&mut proved.desired, claims) {
                Ok(settled) => settled.proof,
                Err(e) => panic!("mapping's claims are proved: {e}"),
            }
        } else {
            live.prove(&mut proved.desired)
        };
        if self.view.complete {
            // A full read is compared in full: the planner ignores the proof (a cycle builds
            // none, and drops no attribute, when it reads the whole target).
            return self.plan_with(Some(&proof));
        }
        // A linked user an incremental view holds was read this cycle (an uncertain user
        // verified, issue 17): the planner compares it with the read, not the proof, and a
        // cycle never drops its attributes (the store drops an uncertain user's fingerprint,
        // so mapping never claims it).
        let read: BTreeSet<&SourceId> = self
            .links
            .iter()
            .filter(|l| self.view.users.iter().any(|u| u.id == l.target_id))
            .map(|l| &l.source_id)
            .collect();
        for (user, whole) in proved.desired.iter_mut().zip(&self.desired) {
            if read.contains(&user.source_id) {
                user.attrs = whole.attrs.clone();
            }
        }
        proved.plan_with(Some(&proof))
    }

    fn plan_with(&self, unchanged: Option<&crate::Proof>) -> PlanOutput {
        crate::plan(
            &PlanInput {
                desired: &self.desired,
                out_of_scope: &self.out_of_scope,
                held: &self.held,
                links: &self.links,
                target: &self.view,
                guests: &[],
                grace_expired: &[],
                unchanged,
            },
            &self.policy,
        )
    }

    /// The same world with every input list reversed: the plan must not depend on input order.
    fn reversed(&self) -> World {
        let mut w = self.clone();
        w.desired.reverse();
        w.out_of_scope.reverse();
        w.held.reverse();
        w.links.reverse();
        w.view.users.reverse();
        w
    }

    /// The next cycle: the model target's state after the plan, read fully or incrementally.
    fn after(&self, sp: &ModelSp, complete: bool) -> World {
        let mut next = self.clone();
        next.truth = sp.users.values().cloned().collect();
        next.links = sp.links.values().cloned().collect();
        if !complete {
            // The full read before this incremental cycle showed which links point at removed
            // users; the store drops them rather than trust them again.
            next.links.retain(|l| sp.users.contains_key(&l.target_id));
        }
        next.view = if complete {
            TargetView {
                users: next.truth.clone(),
                complete: true,
            }
        } else {
            incremental_view(&next.truth, &next.links, &next.desired)
        };
        next
    }
}

/// The linked users plus every user a `userName eq` lookup of a desired userName would find
/// (the CLI looks up the unlinked ones; looking up all of them lets the planner see collisions).
fn incremental_view(truth: &[TargetUser], links: &[Link], desired: &[DesiredUser]) -> TargetView {
    let names: BTreeSet<String> = desired.iter().map(|d| fold(&d.user_name)).collect();
    TargetView {
        users: truth
            .iter()
            .filter(|u| {
                links.iter().any(|l| l.target_id == u.id) || names.contains(&fold(&u.user_name))
            })
            .cloned()
            .collect(),
        complete: false,
    }
}

/// A service provider that applies ops the way Miro would, and refuses what Miro would refuse.
#[derive(Clone, Debug)]
struct ModelSp {
    users: BTreeMap<ScimId, TargetUser>,
    links: BTreeMap<SourceId, Link>,
    created: usize,
}

impl ModelSp {
    fn new(world: &World) -> Self {
        ModelSp {
            users: world
                .truth
                .iter()
                .map(|u| (u.id.clone(), u.clone()))
                .collect(),
            links: world
                .links
                .iter()
                .map(|l| (l.source_id.clone(), l.clone()))
                .collect(),
            created: 0,
        }
    }

    fn name_taken(&self, user_name: &str, except: Option<&ScimId>) -> bool {
        self.users
            .values()
            .any(|u| Some(&u.id) != except && fold(&u.user_name) == fold(user_name))
    }

    /// What the executor sends for a value: a Ref becomes the id of the user created for it.
    fn resolve(&self, value: &AttrValue) -> Result<AttrValue, String> {
        match value {
            AttrValue::Text(_) => Ok(value.clone()),
            AttrValue::Ref { user } => self
                .links
                .get(user)
                .map(|l| AttrValue::Text(l.target_id.as_str().into()))
                .ok_or_else(|| format!("reference to {user}, who has no target user yet")),
        }
    }

    fn linked_to(&self, id: &ScimId) -> Option<&SourceId> {
        self.links
            .values()
            .find(|l| &l.target_id == id)
            .map(|l| &l.source_id)
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Create {
                source_id,
                user_name,
                attrs,
            } => {
                if self.name_taken(user_name, None) {
                    return Err(format!("POST {user_name}: 400 not unique"));
                }
                let attrs = attrs
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                    .collect::<Result<Attrs, String>>()?;
                let id = ScimId::new(format!("new{}", self.created));
                self.created += 1;
                self.links.insert(
                    source_id.clone(),
                    Link {
                        source_id: source_id.clone(),
                        target_id: id.clone(),
                        user_name: user_name.clone(),
                        active: true,
                        hash: fingerprint(user_name, true, &attrs),
                        attrs: attrs.clone(),
                    },
                );
                self.users.insert(
                    id.clone(),
                    TargetUser {
                        id,
                        user_name: user_name.clone(),
                        active: true,
                        attrs,
                    },
                );
            }
            Op::Adopt {
                source_id,
                target_id,
                user_name,
            } => {
                let user = self
                    .users
                    .get(target_id)
                    .ok_or_else(|| format!("adopt of missing {target_id}"))?;
                if &user.user_name != user_name {
                    return Err(format!(
                        "adopt names {user_name}, target has {}",
                        user.user_name
                    ));
                }
                match self.linked_to(target_id) {
                    Some(other) if other != source_id => {
                        return Err(format!("adopt of {target_id}, linked to {other}"));
                    }
                    _ => {}
                }
                let link = Link {
                    source_id: source_id.clone(),
                    target_id: target_id.clone(),
                    user_name: user.user_name.clone(),
                    active: user.active,
                    attrs: Attrs::new(),
                    hash: fingerprint(&user.user_name, user.active, &Attrs::new()),
                };
                self.links.insert(source_id.clone(), link);
            }
            Op::Update {
                source_id,
                target_id,
                changes,
                ..
            } => {
                self.check_linked(source_id, target_id)?;
                let mut resolved = Vec::new();
                for change in changes {
                    let new = change.new.as_ref().map(|v| self.resolve(v)).transpose()?;
                    resolved.push(scimsync_model::Change {
                        path: change.path.clone(),
                        old: change.old.clone(),
                        new,
                    });
                }
                let renamed_to = resolved.iter().find_map(|c| match &c.new {
                    Some(AttrValue::Text(n)) if c.path == paths::USER_NAME => Some(n),
                    _ => None,
                });
                if let Some(n) = renamed_to.filter(|n| self.name_taken(n, Some(target_id))) {
                    return Err(format!("PATCH userName {n}: 400 not unique"));
                }
                let user = self
                    .users
                    .get_mut(target_id)
                    .ok_or_else(|| format!("update of missing {target_id}"))?;
                for change in &resolved {
                    let current = match change.path.as_str() {
                        paths::ACTIVE => Some(AttrValue::text(user.active.to_string())),
                        paths::USER_NAME => Some(AttrValue::text(user.user_name.as_str())),
                        path => user.attrs.get(path).cloned(),
                    };
                    if current != change.old {
                        return Err(format!(
                            "stale old value in {change:?}, target has {current:?}"
                        ));
                    }
                    match (change.path.as_str(), &change.new) {
                        (paths::ACTIVE, Some(v)) => user.active = v.as_text() == Some("true"),
                        (paths::USER_NAME, Some(AttrValue::Text(v))) => {
                            user.user_name = v.to_string()
                        }
                        (path, Some(v)) => {
                            user.attrs.insert(path.into(), v.clone());
                        }
                        (path, None) => {
                            user.attrs.remove(path);
                        }
                    }
                }
                let link = self
                    .links
                    .get(source_id)
                    .ok_or_else(|| format!("update of unlinked {source_id}"))?
                    .with_changes(&resolved);
                self.links.insert(source_id.clone(), link);
            }
            Op::Deactivate {
                source_id,
                target_id,
                ..
            } => {
                self.check_linked(source_id, target_id)?;
                let user = self
                    .users
                    .get_mut(target_id)
                    .ok_or_else(|| format!("deactivate of missing {target_id}"))?;
                if !user.active {
                    return Err(format!("deactivate of inactive {target_id}"));
                }
                user.active = false;
                if let Some(link) = self.links.get_mut(source_id) {
                    link.active = false;
                    link.hash = fingerprint(&link.user_name, false, &link.attrs);
                }
            }
            Op::Delete {
                source_id,
                target_id,
                ..
            } => {
                self.check_linked(source_id, target_id)?;
                self.users
                    .remove(target_id)
                    .ok_or_else(|| format!("delete of missing {target_id}"))?;
                self.links.remove(source_id);
            }
            Op::Skip { .. } => {}
            // The user model holds no groups: group ops leave users as they are.
            _ => {}
        }
        Ok(())
    }

    fn check_linked(&self, source_id: &SourceId, target_id: &ScimId) -> Result<(), String> {
        match self.links.get(source_id) {
            Some(l) if &l.target_id == target_id => Ok(()),
            other => Err(format!(
                "{source_id} → {target_id} is not a link: {other:?}"
            )),
        }
    }

    fn run(&mut self, output: &PlanOutput) -> Result<(), TestCaseError> {
        for op in &output.plan.ops {
            self.apply(op)
                .map_err(|e| TestCaseError::fail(format!("{e}\nop: {op:?}\nplan: {output:#?}")))?;
        }
        Ok(())
    }
}

fn diagnosed(diagnostics: &[Diagnostic], source_id: &SourceId, field: &str) -> bool {
    diagnostics
        .iter()
        .any(|d| &d.source_id == source_id && d.field == field)
}

/// Whether the plan knowingly left writes for a later cycle: a userName still held by another
/// managed user (who may be renamed or deleted by this very plan), or a reference cut from a
/// create to break a cycle. Everything else the plan leaves out stays left out, so it must
/// converge in one cycle.
fn deferred(output: &PlanOutput) -> bool {
    output
        .diagnostics
        .iter()
        .any(|d| d.message.contains(crate::order::SET_NEXT_CYCLE))
        || output.plan.ops.iter().any(|op| {
            matches!(
                op,
                Op::Skip {
                    reason: SkipReason::UserNameTakenByLinked { .. },
                    ..
                }
            )
        })
}

fn check_converged(world: &World, sp: &ModelSp, output: &PlanOutput) -> Result<(), TestCaseError> {
    let skipped: BTreeSet<&SourceId> = output
        .plan
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Skip { .. }))
        .map(Op::source_id)
        .collect();
    let live_before: BTreeMap<&SourceId, &Link> = world
        .links
        .iter()
        .filter(|l| world.truth.iter().any(|u| u.id == l.target_id))
        .map(|l| (&l.source_id, l))
        .collect();
    for d in &world.desired {
        if world.held.contains(&d.source_id) || skipped.contains(&d.source_id) {
            continue;
        }
        let link = sp.links.get(&d.source_id).ok_or_else(|| {
            TestCaseError::fail(format!("{} is managed but not linked", d.source_id))
        })?;
        let user = sp.users.get(&link.target_id).ok_or_else(|| {
            TestCaseError::fail(format!("{} is linked to a missing user", d.source_id))
        })?;
        prop_assert_eq!(user.active, d.active, "active of {}", d.source_id);
        if !d.active {
            continue;
        }
        if !diagnosed(&output.diagnostics, &d.source_id, paths::USER_NAME) {
            prop_assert_eq!(fold(&user.user_name), fold(&d.user_name));
        }
        for (path, want) in &d.attrs {
            if world.policy.create_only.contains(path.as_str())
                || diagnosed(&output.diagnostics, &d.source_id, path)
            {
                continue;
            }
            let want = match want {
                AttrValue::Text(_) => want.clone(),
                AttrValue::Ref { user } => {
                    let l = sp.links.get(user).ok_or_else(|| {
                        TestCaseError::fail(format!(
                            "{path} of {} refers to unlinked {user}",
                            d.source_id
                        ))
                    })?;
                    AttrValue::Text(l.target_id.as_str().into())
                }
            };
            prop_assert_eq!(
                user.attrs.get(path),
                Some(&want),
                "{} of {}",
                path,
                d.source_id
            );
        }
        if let Some(before) = live_before.get(&d.source_id) {
            for path in before.attrs.keys() {
                if d.attrs.contains_key(path)
                    || world.policy.create_only.contains(path.as_str())
                    || diagnosed(&output.diagnostics, &d.source_id, path)
                {
                    continue;
                }
                prop_assert!(
                    !user.attrs.contains_key(path),
                    "{} was pushed to {} and is no longer desired",
                    path,
                    d.source_id
                );
            }
        }
    }
    Ok(())
}

fn check_unmanaged_untouched(world: &World, sp: &ModelSp) -> Result<(), TestCaseError> {
    let desired_names: BTreeSet<String> =
        world.desired.iter().map(|d| fold(&d.user_name)).collect();
    for user in &world.truth {
        let linked = world.links.iter().any(|l| l.target_id == user.id);
        if linked || desired_names.contains(&fold(&user.user_name)) {
            continue;
        }
        prop_assert_eq!(sp.users.get(&user.id), Some(user), "unmanaged user changed");
    }
    Ok(())
}

fn check_deprovisioned(world: &World, sp: &ModelSp) -> Result<(), TestCaseError> {
    for link in &world.links {
        let Some(before) = world.truth.iter().find(|u| u.id == link.target_id) else {
            continue;
        };
        let after = sp.users.get(&link.target_id);
        if world.held.contains(&link.source_id) {
            prop_assert_eq!(after, Some(before), "held user changed");
            continue;
        }
        if world.desired.iter().any(|d| d.source_id == link.source_id) {
            continue;
        }
        let reason = world
            .out_of_scope
            .iter()
            .find(|o| o.source_id == link.source_id)
            .map(|o| &o.reason);
        let action = match reason {
            Some(OutOfScopeReason::Unassigned | OutOfScopeReason::Filtered { .. }) => {
                world.policy.on_unassign
            }
            Some(OutOfScopeReason::Deleted) | None => match world.policy.on_delete {
                OnDelete::Deactivate => OnUnassign::Deactivate,
                OnDelete::Delete => OnUnassign::Delete,
            },
        };
        match action {
            OnUnassign::Deactivate => {
                let after = after.ok_or_else(|| TestCaseError::fail("deactivation deleted"))?;
                prop_assert!(!after.active, "{} still active", link.source_id);
                prop_assert_eq!(&after.user_name, &before.user_name);
                prop_assert_eq!(&after.attrs, &before.attrs);
            }
            OnUnassign::Delete => {
                prop_assert!(after.is_none(), "{} not deleted", link.source_id);
                prop_assert!(!sp.links.contains_key(&link.source_id));
            }
            OnUnassign::Ignore => prop_assert_eq!(after, Some(before), "ignored user changed"),
        }
    }
    Ok(())
}

/// Plans and applies until nothing is left to write, at most `MAX_ROUNDS` times.
fn converge(world: &World, sp: &ModelSp, complete: bool) -> Result<(), TestCaseError> {
    let mut sp = sp.clone();
    let mut next = world.after(&sp, complete);
    for _ in 0..MAX_ROUNDS {
        let output = next.plan();
        if output.plan.is_empty() {
            return Ok(());
        }
        sp.run(&output)?;
        next = next.after(&sp, complete);
    }
    Err(TestCaseError::fail(format!(
        "no fixpoint after {MAX_ROUNDS} rounds; last plan: {:#?}",
        next.plan()
    )))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn executing_the_plan_reaches_the_desired_state(raw in raw()) {
        let world = World::from_raw(&raw);
        let output = world.plan();

        // (e) deterministic, and independent of the order of the inputs.
        prop_assert_eq!(&output, &world.plan());
        prop_assert_eq!(&output, &world.reversed().plan());
        // (f) the proof that users are unchanged is only a shortcut.
        prop_assert_eq!(&output, &world.plan_proved(false));
        prop_assert_eq!(&output, &world.plan_proved(true));
        let phases: Vec<_> = output.plan.ops.iter().map(Op::phase).collect();
        prop_assert!(phases.is_sorted(), "ops out of phase order: {:?}", phases);

        let mut sp = ModelSp::new(&world);
        sp.run(&output)?;

        check_converged(&world, &sp, &output)?;   // (a)
        check_unmanaged_untouched(&world, &sp)?;  // (b)
        check_deprovisioned(&world, &sp)?;        // (c)

        // (d) The next cycle, full or incremental, has nothing to write.
        if deferred(&output) {
            converge(&world, &sp, true)?;
            converge(&world, &sp, false)?;
        } else {
            for complete in [true, false] {
                let again = world.after(&sp, complete).plan();
                prop_assert!(
                    again.plan.is_empty(),
                    "replan (complete = {}) is not empty: {:#?}\nfirst plan: {:#?}",
                    complete, again, output
                );
            }
        }
    }
}

/// Directory groups over the generated users, some linked to a target group (with members
/// drawn from every target slot), the guests the target refused, and whether groups can be
/// created.
type RawGroups = (
    Vec<(BTreeSet<usize>, Option<BTreeSet<usize>>)>,
    BTreeSet<usize>,
    bool,
);

fn raw_groups() -> impl Strategy<Value = RawGroups> {
    (
        vec(
            (
                proptest::collection::btree_set(0..SOURCES + 2, 0..=SOURCES),
                proptest::option::of(proptest::collection::btree_set(0..TARGET_SLOTS, 0..5)),
            ),
            1..=3,
        ),
        proptest::collection::btree_set(0..NAMES.len(), 0..3),
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Adding a deactivated or deleted user to a Miro team or user group reactivates or
    /// recreates them, and adding a guest makes them a paid internal user: whatever the
    /// directory groups list (suspended, departed, held, unknown users included), no plan
    /// adds a user it deactivates or deletes, a held one, a guest, a suspended one, or one
    /// whose target user is deactivated and not reactivated before the membership phase.
    #[test]
    fn no_plan_adds_to_a_group_a_user_it_deactivates_deletes_or_leaves_inactive(
        raw in raw(),
        (groups, guest_names, can_create) in raw_groups(),
    ) {
        use crate::GroupPlanInput;
        use scimsync_model::{DesiredGroup, GroupLink, GroupView, NameMatch, TargetGroup};
        let world = World::from_raw(&raw);
        let guests: Vec<String> = guest_names.iter().map(|n| NAMES[*n].to_owned()).collect();
        let desired_groups: Vec<DesiredGroup> = groups
            .iter()
            .enumerate()
            .map(|(g, (members, _))| DesiredGroup {
                source_id: SourceId::new(format!("g{g}")),
                display_name: format!("Group {g}"),
                members: members.iter().map(|m| source(*m)).collect(),
            })
            .collect();
        let target_groups: Vec<TargetGroup> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, (_, current))| {
                let current = current.as_ref()?;
                Some(TargetGroup {
                    id: ScimId::new(format!("tg{g}")),
                    display_name: format!("Group {g}"),
                    members: Some(current.iter().map(|t| ScimId::new(format!("t{t}"))).collect()),
                })
            })
            .collect();
        let group_links: Vec<GroupLink> = target_groups
            .iter()
            .enumerate()
            .filter(|(g, _)| g % 2 == 0)
            .map(|(g, t)| GroupLink {
                source_id: SourceId::new(format!("g{g}")),
                target_id: t.id.clone(),
                display_name: t.display_name.clone(),
                members: t.members.clone().unwrap_or_default(),
            })
            .collect();
        let view = GroupView { groups: target_groups, complete: true };
        let input = PlanInput {
            desired: &world.desired,
            out_of_scope: &world.out_of_scope,
            held: &world.held,
            links: &world.links,
            target: &world.view,
            guests: &guests,
            grace_expired: &[],
            unchanged: None,
        };
        let group_input = GroupPlanInput {
            desired: &desired_groups,
            links: &group_links,
            target: &view,
            user_links: &world.links,
            held: &world.held,
            can_create,
            members_on_create: can_create,
            name_match: NameMatch::Exact,
            directory_groups: &[],
            max_name_chars: None,
            teams: None,
        };
        let output = crate::plan_with_groups(&input, &group_input, &world.policy);
        let ops = &output.plan.ops;

        let mut leaving = BTreeSet::new();
        let mut reactivated = BTreeSet::new();
        let mut guests = BTreeSet::new();
        let mut adopted = BTreeMap::new();
        for op in ops {
            match op {
                Op::Deactivate { source_id, .. } | Op::Delete { source_id, .. } => {
                    leaving.insert(source_id.clone());
                }
                Op::Update { source_id, changes, .. }
                    if changes.iter().any(|c| c.path == paths::ACTIVE
                        && c.new == Some(AttrValue::text("true"))) =>
                {
                    reactivated.insert(source_id.clone());
                }
                Op::Skip { source_id, reason: SkipReason::TargetGuest, .. } => {
                    guests.insert(source_id.clone());
                }
                Op::Adopt { source_id, target_id, .. } => {
                    adopted.insert(source_id.clone(), target_id.clone());
                }
                _ => {}
            }
        }
        let held: BTreeSet<&SourceId> = world.held.iter().collect();
        let active_in_target = |id: &ScimId| {
            world.truth.iter().find(|u| &u.id == id).is_none_or(|u| u.active)
        };
        for op in ops {
            let added: &[scimsync_model::Member] = match op {
                Op::GroupMembers { add, .. } => add,
                Op::GroupCreate { members, .. } => members,
                _ => continue,
            };
            for m in added {
                let s = &m.source_id;
                prop_assert!(!leaving.contains(s), "{} added and deactivated or deleted: {:#?}", s, ops);
                prop_assert!(!held.contains(s), "held {} added: {:#?}", s, ops);
                prop_assert!(!guests.contains(s), "guest {} added: {:#?}", s, ops);
                if let Some(d) = world.desired.iter().find(|d| &d.source_id == s) {
                    prop_assert!(d.active, "suspended {} added: {:#?}", s, ops);
                }
                let target = adopted.get(s).cloned().or_else(|| {
                    world.links.iter().find(|l| &l.source_id == s).map(|l| l.target_id.clone())
                });
                let link_inactive = world.links.iter().any(|l| &l.source_id == s && !l.active);
                if let Some(t) = target {
                    prop_assert!(
                        (active_in_target(&t) && !link_inactive) || reactivated.contains(s),
                        "{} added while its target user {} stays deactivated: {:#?}",
                        s, t, ops
                    );
                }
            }
        }
        // A guest in a synced group is a skip saying why, never an add.
        for (g, group) in desired_groups.iter().enumerate() {
            for m in group.members.iter().filter(|m| guests.contains(*m)) {
                let said = ops.iter().any(|op| matches!(op,
                    Op::Skip { source_id, reason: SkipReason::GuestNotAdded { group }, .. }
                        if source_id == m && group == &format!("Group {g}")));
                prop_assert!(said, "guest {} of Group {} not reported: {:#?}", m, g, ops);
            }
        }
    }
}
