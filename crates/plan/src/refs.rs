//! Turns `AttrValue::Ref` (a directory user, e.g. the manager) into what can be sent: the
//! referenced user's target id, or the Ref itself when that user is created earlier in the same
//! plan (the executor substitutes the new id).

use crate::classify::{Classified, Fate};
use crate::index::TargetIndex;
use crate::input::Diagnostic;
use foldhash::HashSet;
use scimsync_model::{AttrValue, Attrs, ScimId, SourceId};
use std::borrow::Cow;

enum RefState<'a> {
    Id(&'a ScimId),
    Creating,
    Unavailable(&'static str),
}

pub(crate) struct Resolver<'c, 'a> {
    pub classified: &'c Classified<'a>,
    pub index: &'c TargetIndex<'a>,
    /// Linked users this plan deletes: pointing at them would leave a dangling id behind.
    pub deleted: &'c HashSet<&'a SourceId>,
}

impl<'a> Resolver<'_, 'a> {
    fn state(&self, user: &SourceId) -> RefState<'a> {
        if let Some(live) = self.index.live_link(user) {
            if self.deleted.contains(user) {
                return RefState::Unavailable("is deleted from the target by this plan");
            }
            return RefState::Id(live.target.id());
        }
        match self.classified.fate(user) {
            Some(Fate::Adopt(target)) => RefState::Id(target.id()),
            Some(Fate::Create) => RefState::Creating,
            Some(_) => RefState::Unavailable("is not provisioned on the target"),
            None => RefState::Unavailable("is not a desired user"),
        }
    }

    /// The attributes as they can be sent. Borrows when there is no Ref, which is the common
    /// case and keeps the incremental fast path free of clones.
    pub fn resolve<'x>(
        &self,
        source_id: &SourceId,
        attrs: &'x Attrs,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Cow<'x, Attrs> {
        if !attrs.values().any(|v| matches!(v, AttrValue::Ref { .. })) {
            return Cow::Borrowed(attrs);
        }
        let mut resolved = Attrs::new();
        for (path, value) in attrs {
            let AttrValue::Ref { user } = value else {
                resolved.insert(path.clone(), value.clone());
                continue;
            };
            match self.state(user) {
                RefState::Id(id) => {
                    resolved.insert(path.clone(), AttrValue::Text(id.as_str().into()));
                }
                RefState::Creating => {
                    resolved.insert(path.clone(), value.clone());
                }
                RefState::Unavailable(why) => diagnostics.push(Diagnostic::new(
                    source_id,
                    path.as_str(),
                    format!(
                        "refers to directory user {user}, who {why}; the attribute is left out"
                    ),
                )),
            }
        }
        Cow::Owned(resolved)
    }
}
