//! Builders for planner inputs, so each test states only what it is about.

use crate::{LiveLinks, OnDelete, OnUnassign, PlanInput, PlanOutput, Policy};
use scimsync_model::{
    AttrValue, Attrs, Claims, DesiredUser, Link, OutOfScope, OutOfScopeReason, PushedLinks, ScimId,
    SourceId, TargetUser, TargetView, fingerprint, paths,
};

pub fn attrs(pairs: &[(&str, &str)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), AttrValue::text(*v)))
        .collect()
}

pub fn desired(id: &str, user_name: &str, active: bool, pairs: &[(&str, &str)]) -> DesiredUser {
    DesiredUser {
        source_id: SourceId::from(id),
        user_name: user_name.to_owned(),
        active,
        attrs: attrs(pairs),
    }
}

/// What mapping does against `live`: each user the index claims as last pushed loses its
/// attributes, and the claims are returned for `LiveLinks::settle`.
pub fn claim_as_mapping(live: &LiveLinks<'_>, desired: &mut [DesiredUser]) -> Claims {
    let users = desired
        .iter_mut()
        .map(|user| {
            let pairs: Vec<_> = user.attrs.iter().map(|(k, v)| (k, v.clone())).collect();
            let claim = live.claim(
                user.source_id.as_str(),
                &user.user_name,
                user.active,
                &pairs,
            );
            if claim.is_some() {
                user.attrs = Attrs::new();
            }
            claim
        })
        .collect();
    Claims {
        users,
        stamps: Vec::new(),
    }
}

pub fn with_manager(mut user: DesiredUser, manager: &str) -> DesiredUser {
    user.attrs.insert(
        paths::MANAGER.into(),
        AttrValue::Ref {
            user: SourceId::from(manager),
        },
    );
    user
}

pub fn target(id: &str, user_name: &str, active: bool, pairs: &[(&str, &str)]) -> TargetUser {
    TargetUser {
        id: ScimId::from(id),
        user_name: user_name.to_owned(),
        active,
        attrs: attrs(pairs),
    }
}

/// A link that agrees with what the target holds: everything it has was pushed by scimsync.
pub fn link(source: &str, user: &TargetUser) -> Link {
    Link {
        source_id: SourceId::from(source),
        target_id: user.id.clone(),
        user_name: user.user_name.clone(),
        active: user.active,
        attrs: user.attrs.clone(),
        hash: fingerprint(&user.user_name, user.active, &user.attrs),
    }
}

/// A bare link from `source` to `target`: the shape the link indexes care about.
pub fn link_between(source: &str, target: &str) -> Link {
    Link {
        source_id: SourceId::from(source),
        target_id: ScimId::from(target),
        user_name: format!("{source}@x.com"),
        active: true,
        attrs: Attrs::new(),
        hash: String::new(),
    }
}

pub fn out(id: &str, user_name: &str, reason: OutOfScopeReason) -> OutOfScope {
    OutOfScope {
        source_id: SourceId::from(id),
        user_name: user_name.to_owned(),
        reason,
    }
}

#[derive(Default)]
pub struct Case {
    pub desired: Vec<DesiredUser>,
    pub out_of_scope: Vec<OutOfScope>,
    pub held: Vec<SourceId>,
    pub links: Vec<Link>,
    pub target: TargetView,
    pub guests: Vec<String>,
    pub grace_expired: Vec<SourceId>,
    pub policy: Policy,
}

impl Case {
    /// A full read of the target holding `users`.
    pub fn full(users: Vec<TargetUser>) -> Self {
        Case {
            target: TargetView {
                users,
                complete: true,
            },
            ..Case::default()
        }
    }

    pub fn incremental(users: Vec<TargetUser>) -> Self {
        Case {
            target: TargetView {
                users,
                complete: false,
            },
            ..Case::default()
        }
    }

    pub fn desire(mut self, user: DesiredUser) -> Self {
        self.desired.push(user);
        self
    }

    /// Links `source` to the target user `target_id`, as that user currently stands.
    pub fn linked(mut self, source: &str, target_id: &str) -> Self {
        let user = self
            .target
            .users
            .iter()
            .find(|u| u.id.as_str() == target_id)
            .expect("link to a user of the case's target");
        self.links.push(link(source, user));
        self
    }

    pub fn policy(mut self, on_unassign: OnUnassign, on_delete: OnDelete) -> Self {
        self.policy.on_unassign = on_unassign;
        self.policy.on_delete = on_delete;
        self
    }

    pub fn run(&self) -> PlanOutput {
        crate::plan(
            &PlanInput {
                desired: &self.desired,
                out_of_scope: &self.out_of_scope,
                held: &self.held,
                links: &self.links,
                target: &self.target,
                guests: &self.guests,
                grace_expired: &self.grace_expired,
                unchanged: None,
            },
            &self.policy,
        )
    }
}
