//! Objects whose last write has an unknown outcome.
//!
//! A write that got no answer, an answer that cannot be read, or that a crash, a halt or a
//! shutdown abandoned may or may not have been applied by the target. Its user or group is
//! remembered as **uncertain** until a read of the target settles it: the next cycle reads it
//! (`GET /Users/{id}`, `GET /Groups/{id}`, or a lookup by name when the write was a create)
//! before planning it, and plans against what it finds, never against the link alone.

use crate::{OpKind, ScimId, SourceId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether a record is about a user or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "user",
            ResourceKind::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(ResourceKind::User),
            "group" => Some(ResourceKind::Group),
            _ => None,
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user or group whose state in the target is unknown after a write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uncertain {
    pub kind: ResourceKind,
    pub source_id: SourceId,
    /// The target object written to; `None` for a create (which the next cycle looks up by
    /// name instead).
    pub target_id: Option<ScimId>,
    /// The userName or the group's displayName the write used.
    pub name: String,
    /// The kind of the write whose outcome is unknown.
    pub op: OpKind,
    /// Why its outcome is unknown, for `status` and the logs.
    pub reason: String,
}
