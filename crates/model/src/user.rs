//! Users on either side of the diff: desired (from the directory), target (read from the SP), and
//! the link the store keeps between them.

use crate::{AttrKey, Attrs, ScimId, SourceId};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A user as the target should hold it, after scope and mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredUser {
    pub source_id: SourceId,
    /// Lower-cased email: the target's identity for the user.
    pub user_name: String,
    /// false for SUSPENDED users in scope.
    pub active: bool,
    /// Every mapped attribute except userName and active, keyed by PATCH path.
    pub attrs: Attrs,
}

/// A directory user that is known but must not be provisioned, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfScope {
    pub source_id: SourceId,
    pub user_name: String,
    pub reason: OutOfScopeReason,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutOfScopeReason {
    /// Not a member of any scope group (unassigned).
    Unassigned,
    /// Excluded by a scoping rule (named).
    Filtered { rule: String },
    /// state = DELETED in the directory.
    Deleted,
}

/// A user as the target holds it: read with a full paged list or a userName lookup, or derived
/// from the store's link (the attributes last pushed) on an incremental cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetUser {
    pub id: ScimId,
    pub user_name: String,
    pub active: bool,
    /// The comparable attributes, keyed like `DesiredUser::attrs`. References are already
    /// resolved to target ids, so `AttrValue::Text` only.
    pub attrs: Attrs,
}

/// What the planner knows of the target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    pub users: Vec<TargetUser>,
    /// true when `users` is a full read: a linked id missing from it is gone from the target.
    /// false on incremental cycles: `users` holds the linked users (from the store) and the
    /// results of lookups for unlinked ones; absence proves nothing.
    pub complete: bool,
}

/// The store's record that a directory user is managed by scimsync as a given target user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub source_id: SourceId,
    pub target_id: ScimId,
    pub user_name: String,
    pub active: bool,
    /// The attributes last pushed (and acknowledged), for incremental diffs. Possibly only
    /// some of them: a loader may leave out what it did not need (an incremental cycle skips
    /// unchanged users'). An attribute missing here is unknown, not absent: the planner sends
    /// its desired value again and never removes it.
    pub attrs: Attrs,
    /// Hash of (userName, active, attrs) as last pushed; see `DesiredUser::fingerprint`.
    pub hash: String,
}

/// A userName as the target compares it: lower-cased, borrowing when it already is (mapped
/// userNames are, so the common case allocates nothing).
pub fn fold_user_name(user_name: &str) -> Cow<'_, str> {
    if user_name.bytes().any(|b| b.is_ascii_uppercase()) || !user_name.is_ascii() {
        Cow::Owned(user_name.to_lowercase())
    } else {
        Cow::Borrowed(user_name)
    }
}

/// A stable fingerprint of what would be pushed for a user, stored with the link so an
/// incremental cycle can tell "unchanged" without comparing attribute by attribute.
pub fn fingerprint(user_name: &str, active: bool, attrs: &Attrs) -> String {
    hex::encode(digest(
        user_name,
        active,
        attrs.iter().map(|(path, value)| (path.as_str(), value)),
    ))
}

/// Whether `hash` (as stored in a link) is the fingerprint of this state. The comparison an
/// incremental cycle makes for every user, so it neither allocates nor hex-encodes a string.
pub fn fingerprint_matches(user_name: &str, active: bool, attrs: &Attrs, hash: &str) -> bool {
    fingerprint_matches_sorted(
        user_name,
        active,
        attrs.iter().map(|(path, value)| (path.as_str(), value)),
        hash,
    )
}

/// [`fingerprint_matches`] over (path, value) pairs in path order with no path twice (as an
/// `Attrs` iterates), for a caller that need not build the map unless the state changed.
pub fn fingerprint_matches_sorted<'a>(
    user_name: &str,
    active: bool,
    attrs: impl IntoIterator<Item = (&'a str, &'a crate::AttrValue)>,
    hash: &str,
) -> bool {
    let mut hex = [0u8; 32];
    hex::encode_to_slice(digest(user_name, active, attrs), &mut hex).is_ok()
        && hex.as_slice() == hash.as_bytes()
}

fn digest<'a>(
    user_name: &str,
    active: bool,
    attrs: impl IntoIterator<Item = (&'a str, &'a crate::AttrValue)>,
) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    // The target compares userNames case-insensitively, so must we.
    h.update(fold_user_name(user_name).as_bytes());
    h.update([0, u8::from(active), 0]);
    for (path, value) in attrs {
        h.update(path.as_bytes());
        h.update([0]);
        match value {
            crate::AttrValue::Text(s) => {
                h.update([b't']);
                h.update(s.as_bytes());
            }
            crate::AttrValue::Ref { user } => {
                h.update([b'r']);
                h.update(user.as_str().as_bytes());
            }
        }
        h.update([0]);
    }
    // 128 bits is plenty for change detection and halves the store's index size.
    let mut short = [0u8; 16];
    short.copy_from_slice(&h.finalize()[..16]);
    short
}

impl DesiredUser {
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.user_name, self.active, &self.attrs)
    }
}

impl Link {
    /// The link as it stands after `changes` were acknowledged by the target. Values must be
    /// resolved (`AttrValue::Text`) before they are recorded.
    pub fn with_changes(&self, changes: &[crate::Change]) -> Link {
        let mut next = self.clone();
        for change in changes {
            match change.path.as_str() {
                crate::paths::USER_NAME => {
                    if let Some(crate::AttrValue::Text(v)) = &change.new {
                        next.user_name = v.to_string();
                    }
                }
                crate::paths::ACTIVE => {
                    next.active = change.new.as_ref().and_then(|v| v.as_text()) == Some("true");
                }
                path => match &change.new {
                    Some(v) => {
                        next.attrs.insert(AttrKey::from(path), v.clone());
                    }
                    None => {
                        next.attrs.remove(path);
                    }
                },
            }
        }
        next.hash = fingerprint(&next.user_name, next.active, &next.attrs);
        next
    }
}
