//! SCIM attributes as a flat, ordered map from PATCH path to value.
//!
//! A flat map keyed by the path a PATCH would use makes the diff trivial (compare two maps) and
//! makes every change directly sendable. Turning the map into a nested SCIM resource for a POST is
//! the `scim` crate's job.

use crate::SourceId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Well-known attribute paths.
pub mod paths {
    pub const USER_NAME: &str = "userName";
    pub const DISPLAY_NAME: &str = "displayName";
    pub const GIVEN_NAME: &str = "name.givenName";
    pub const FAMILY_NAME: &str = "name.familyName";
    pub const ACTIVE: &str = "active";
    pub const USER_TYPE: &str = "userType";
    pub const PREFERRED_LANGUAGE: &str = "preferredLanguage";
    pub const TITLE: &str = "title";
    /// Miro's one primary organisation role (ORGANIZATION_INTERNAL_ADMIN | ORGANIZATION_INTERNAL_USER).
    pub const ROLE: &str = "roles[primary eq true].value";
    pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    pub const EMPLOYEE_NUMBER: &str =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber";
    pub const ORGANIZATION: &str =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization";
    pub const DEPARTMENT: &str =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
    pub const DIVISION: &str =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division";
    pub const COST_CENTER: &str =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter";
    pub const MANAGER: &str =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value";

    pub const ADMIN_ROLE: &str = "ORGANIZATION_INTERNAL_ADMIN";
    pub const USER_ROLE: &str = "ORGANIZATION_INTERNAL_USER";
}

/// One attribute value as the directory wants it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A plain string value.
    Text(String),
    /// A reference to another directory user, sent as that user's target id (e.g. the manager).
    /// It is resolved when the referenced user is linked; until then it cannot be sent.
    Ref { user: SourceId },
}

impl AttrValue {
    pub fn text(s: impl Into<String>) -> Self {
        AttrValue::Text(s.into())
    }
    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttrValue::Text(s) => Some(s),
            AttrValue::Ref { .. } => None,
        }
    }
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Text(s) => write!(f, "{s:?}"),
            AttrValue::Ref { user } => write!(f, "<user {user}>"),
        }
    }
}

/// Attribute path → value. Ordered, so plans and hashes are deterministic.
pub type Attrs = BTreeMap<String, AttrValue>;
