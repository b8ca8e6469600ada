//! SCIM attributes as a flat, ordered map from PATCH path to value.
//!
//! A flat map keyed by the path a PATCH would use makes the diff trivial (compare two maps) and
//! makes every change directly sendable. Turning the map into a nested SCIM resource for a POST is
//! the `scim` crate's job.

use crate::SourceId;
pub use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

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
    /// The work email (RFC 7644 §3.5.2 value path): managed where the target stores emails.
    pub const WORK_EMAIL: &str = "emails[type eq \"work\"].value";
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

    /// How every admin-role path starts: `roles[value eq "Content Admin"]`.
    const ADMIN_ROLE_PREFIX: &str = "roles[value eq ";

    /// The path of one extra role entry (Miro: an `organization_admin_role` such as "Content
    /// Admin"), keyed by its value: exactly the path Miro documents for removing it. A user
    /// holds the entry when their attributes have this path (its value is the entry's `type`).
    /// One path per role keeps the diff a map comparison: a role gained is a path added, a role
    /// lost a path removed.
    pub fn admin_role(value: &str) -> String {
        let mut path = String::with_capacity(ADMIN_ROLE_PREFIX.len() + value.len() + 3);
        path.push_str(ADMIN_ROLE_PREFIX);
        path.push('"');
        for c in value.chars() {
            if matches!(c, '"' | '\\') {
                path.push('\\');
            }
            path.push(c);
        }
        path.push_str("\"]");
        path
    }

    /// The role value an [`admin_role`] path names, or `None` for any other path.
    pub fn admin_role_value(path: &str) -> Option<String> {
        let quoted = path.strip_prefix(ADMIN_ROLE_PREFIX)?.strip_suffix(']')?;
        let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
        let mut value = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?),
                '"' => return None,
                c => value.push(c),
            }
        }
        Some(value)
    }

    /// Whether `path` is an [`admin_role`] path.
    pub fn is_admin_role(path: &str) -> bool {
        admin_role_value(path).is_some()
    }
}

#[cfg(test)]
mod path_tests {
    use super::paths::*;

    #[test]
    fn admin_role_paths_round_trip_with_escapes() {
        assert_eq!(
            admin_role("Content Admin"),
            r#"roles[value eq "Content Admin"]"#
        );
        for value in ["Content Admin", r#"Say "hi""#, r"back\slash", "é"] {
            assert_eq!(admin_role_value(&admin_role(value)).as_deref(), Some(value));
        }
        assert_eq!(admin_role_value(ROLE), None);
        assert_eq!(admin_role_value(r#"roles[value eq "a"b"]"#), None);
        assert!(!is_admin_role("roles"));
    }
}

/// One attribute value as the directory wants it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A plain string value (inline when short: see `CompactString`).
    Text(CompactString),
    /// A reference to another directory user, sent as that user's target id (e.g. the manager).
    /// It is resolved when the referenced user is linked; until then it cannot be sent.
    Ref { user: SourceId },
}

impl AttrValue {
    pub fn text(s: impl Into<CompactString>) -> Self {
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

/// Attribute path → value. Ordered by path, so plans and hashes are deterministic.
pub type Attrs = BTreeMap<AttrKey, AttrValue>;

/// An attribute key, shared rather than owned: a PATCH path in `Attrs`, a source attribute
/// name in a `SourceUser`. Every user carries the same dozen keys (several 70-byte enterprise
/// URNs among them), so a million users hold one allocation per key instead of ten million,
/// and a clone is a reference count. Intern with [`KeyInterner`] where keys are read in bulk;
/// `From<&str>` makes a fresh one.
///
/// Ordered, compared and hashed as the string it holds, so it is interchangeable with `&str`
/// as a map key (`attrs.get("userName")`).
#[derive(Clone)]
pub struct AttrKey(Arc<str>);

impl AttrKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for AttrKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for AttrKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AttrKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq for AttrKey {
    fn eq(&self, other: &Self) -> bool {
        // Interned paths are usually the same allocation: skip the byte comparison.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for AttrKey {}

impl PartialEq<str> for AttrKey {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for AttrKey {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialOrd for AttrKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AttrKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

impl std::hash::Hash for AttrKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes, which `Borrow<str>` requires.
        (*self.0).hash(state);
    }
}

impl fmt::Debug for AttrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for AttrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AttrKey {
    fn from(s: &str) -> Self {
        AttrKey(Arc::from(s))
    }
}

impl From<String> for AttrKey {
    fn from(s: String) -> Self {
        AttrKey(Arc::from(s))
    }
}

impl Serialize for AttrKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AttrKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(AttrKey::from(&*s))
    }
}

/// Hands out one shared [`AttrKey`] per distinct key, for readers that build many maps (the
/// store's link loader, snapshot readers). Local to one read: no global state.
#[derive(Default)]
pub struct KeyInterner(HashSet<AttrKey>);

impl KeyInterner {
    pub fn intern(&mut self, path: &str) -> AttrKey {
        if let Some(known) = self.0.get(path) {
            return known.clone();
        }
        let fresh = AttrKey::from(path);
        self.0.insert(fresh.clone());
        fresh
    }
}
