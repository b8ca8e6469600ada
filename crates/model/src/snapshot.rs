//! The directory snapshot: what the source of truth says, before scope and mapping.

use crate::{SourceAttrs, SourceId};
use serde::{Deserialize, Serialize};

/// A user's lifecycle state in the directory (mapped from `state`, or `accountEnabled` for Entra).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserState {
    #[default]
    Activated,
    Suspended,
    Deleted,
}

/// One directory user as read, before mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceUser {
    pub id: SourceId,
    /// Every attribute of the record but `id`, by its source name (`email`, `firstname`,
    /// `state`, `userPrincipalName`, …). Values are strings; booleans and numbers are rendered as
    /// JSON would (`true`, `42`); JSON null and absent are the same: not present. Which attribute
    /// is the email and which the state is the mapping preset's business, not the reader's.
    /// Keys are shared across users (see `AttrKey`): readers intern them.
    pub attrs: SourceAttrs,
}

impl SourceUser {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).filter(|s| !s.is_empty())
    }
}

/// One directory group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceGroup {
    pub id: SourceId,
    pub name: String,
    pub members: Vec<SourceId>,
    /// Member values the reader could not resolve to a user it read (an LDAP member DN with
    /// no user entry behind it): not members, but reported rather than dropped in silence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
}

/// A whole directory read: all or nothing (a partial read would deprovision people).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub users: Vec<SourceUser>,
    pub groups: Vec<SourceGroup>,
}
