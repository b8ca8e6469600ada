//! What a service provider declares of itself (RFC 7644 §4): `/ServiceProviderConfig`,
//! `/ResourceTypes` (RFC 7643 §6) and `/Schemas` (§7), kept as read (`Discovery`, cached in the
//! store) and read as what the client needs (`TargetSchema`): whether an attribute the mapping
//! would send is declared and writable, whether userName compares case-sensitively, and
//! whether groups take members on create.
//!
//! Everything here is the target's text: parsed leniently, never trusted to be complete. What
//! the SP does not say is `Support::Unknown` (sent, and dropped if the SP refuses it), never a
//! guess that it is missing.

use crate::{ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The three discovery documents, as the SP served them (`None`: not served or unreadable).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    #[serde(default)]
    pub service_provider_config: Option<Value>,
    #[serde(default)]
    pub schemas: Option<Value>,
    #[serde(default)]
    pub resource_types: Option<Value>,
}

impl Discovery {
    pub fn schema(&self) -> TargetSchema {
        TargetSchema::read(self.schemas.as_ref(), self.resource_types.as_ref())
    }
}

/// Whether the target takes an attribute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    Supported,
    /// The SP did not say (no readable `/Schemas`): sent, and dropped if refused.
    Unknown,
    /// Declared nowhere, or declared read-only: never sent. `reason` says which, for the plan
    /// and the event.
    Unsupported {
        reason: String,
    },
}

impl Support {
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Support::Unsupported { .. })
    }
}

/// One declared attribute (names lower-cased for lookup: RFC 7643 §2.1 says case-insensitive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct AttrDef {
    mutability: Option<String>,
    case_exact: Option<bool>,
    sub: BTreeMap<String, AttrDef>,
}

impl AttrDef {
    fn read(v: &Value) -> Option<(String, AttrDef)> {
        let name = v.get("name")?.as_str()?.to_ascii_lowercase();
        let sub = v
            .get("subAttributes")
            .and_then(Value::as_array)
            .map(|subs| subs.iter().filter_map(AttrDef::read).collect())
            .unwrap_or_default();
        Some((
            name,
            AttrDef {
                mutability: v
                    .get("mutability")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                case_exact: v.get("caseExact").and_then(Value::as_bool),
                sub,
            },
        ))
    }

    /// `readOnly` attributes cannot be written; `immutable` ones only on create, which a
    /// client that also updates cannot rely on either.
    fn writable(&self) -> bool {
        !self
            .mutability
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("readOnly"))
    }
}

/// The User and Group resources as the SP declares them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetSchema {
    /// Schema URN (lower-cased) → its attributes; empty when `/Schemas` was not readable.
    schemas: BTreeMap<String, BTreeMap<String, AttrDef>>,
    /// The User resource type's extension URNs (lower-cased); `None` when `/ResourceTypes`
    /// was not readable.
    user_extensions: Option<Vec<String>>,
}

/// The resources of a list response, or a bare array (some SPs serve one).
fn resources(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(obj) => obj
            .get("Resources")
            .or_else(|| obj.get("resources"))
            .and_then(Value::as_array)
            .map(|items| items.iter().collect())
            // A single schema or resource type served on its own.
            .unwrap_or_else(|| vec![v]),
        _ => Vec::new(),
    }
}

impl TargetSchema {
    pub fn read(schemas: Option<&Value>, resource_types: Option<&Value>) -> TargetSchema {
        let mut out = TargetSchema::default();
        for schema in schemas.map(resources).unwrap_or_default() {
            let Some(id) = schema.get("id").and_then(Value::as_str) else {
                continue;
            };
            let attributes = schema
                .get("attributes")
                .and_then(Value::as_array)
                .map(|attrs| attrs.iter().filter_map(AttrDef::read).collect())
                .unwrap_or_default();
            out.schemas.insert(id.to_ascii_lowercase(), attributes);
        }
        // No User resource type found: the extensions are not known, not absent.
        out.user_extensions = resource_types
            .map(resources)
            .unwrap_or_default()
            .into_iter()
            .find(|t| {
                t.get("schema")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case(USER_SCHEMA))
                    || t.get("name").and_then(Value::as_str) == Some("User")
            })
            .map(|t| {
                t.get("schemaExtensions")
                    .and_then(Value::as_array)
                    .map(|exts| {
                        exts.iter()
                            .filter_map(|e| e.get("schema").and_then(Value::as_str))
                            .map(str::to_ascii_lowercase)
                            .collect()
                    })
                    .unwrap_or_default()
            });
        out
    }

    /// Whether anything was declared at all.
    pub fn is_known(&self) -> bool {
        !self.schemas.is_empty() || self.user_extensions.is_some()
    }

    /// Whether the target takes a user attribute at `path` (a PATCH path as in `Attrs`: core
    /// `name.givenName`, a value path `emails[type eq "work"].value`, or an extension's
    /// `urn:…:User:department`).
    pub fn user_support(&self, path: &str) -> Support {
        let (urn, attribute) = match extension_of(path) {
            Some((urn, rest)) => {
                let lower = urn.to_ascii_lowercase();
                if let Some(declared) = &self.user_extensions
                    && !declared.contains(&lower)
                {
                    return Support::Unsupported {
                        reason: format!("the target declares no extension {urn} for users"),
                    };
                }
                if self.user_extensions.is_none()
                    && !self.schemas.is_empty()
                    && !self.schemas.contains_key(&lower)
                {
                    return Support::Unsupported {
                        reason: format!("the target's /Schemas has no {urn}"),
                    };
                }
                (lower, rest)
            }
            None => (USER_SCHEMA.to_ascii_lowercase(), path),
        };
        let Some(attributes) = self.schemas.get(&urn) else {
            return Support::Unknown;
        };
        // `emails[type eq "work"].value` → `emails`, `value`; `name.givenName` → `name`, …
        let (head, sub) = match attribute.split_once('[') {
            Some((head, rest)) => (head, rest.split_once("].").map(|(_, sub)| sub)),
            None => match attribute.split_once('.') {
                Some((head, sub)) => (head, Some(sub)),
                None => (attribute, None),
            },
        };
        let Some(def) = attributes.get(&head.to_ascii_lowercase()) else {
            return Support::Unsupported {
                reason: format!("the target's schema declares no attribute {head}"),
            };
        };
        if !def.writable() {
            return Support::Unsupported {
                reason: format!("the target declares {head} read-only"),
            };
        }
        if let Some(sub) = sub
            && !def.sub.is_empty()
        {
            match def.sub.get(&sub.to_ascii_lowercase()) {
                None => {
                    return Support::Unsupported {
                        reason: format!("the target's {head} has no sub-attribute {sub}"),
                    };
                }
                Some(s) if !s.writable() => {
                    return Support::Unsupported {
                        reason: format!("the target declares {head}.{sub} read-only"),
                    };
                }
                Some(_) => {}
            }
        }
        Support::Supported
    }

    /// `caseExact` of the User's userName, when declared. RFC 7643 makes it `false`; an SP
    /// that says `true` may hold two users whose userNames differ only in case.
    pub fn user_name_case_exact(&self) -> Option<bool> {
        self.schemas
            .get(&USER_SCHEMA.to_ascii_lowercase())?
            .get("username")?
            .case_exact
    }

    /// Whether groups take `members` when created: declared and writable. `None` when the
    /// target did not say.
    pub fn group_members_writable(&self) -> Option<bool> {
        let group = self.schemas.get(&GROUP_SCHEMA.to_ascii_lowercase())?;
        Some(group.get("members").is_some_and(AttrDef::writable))
    }
}

/// `urn:…:User:attr.sub` → (`urn:…:User`, `attr.sub`). The URN ends at the last `:` before the
/// attribute (attribute names hold no `:`).
fn extension_of(path: &str) -> Option<(&str, &str)> {
    if !path.to_ascii_lowercase().starts_with("urn:") {
        return None;
    }
    if let Some(rest) = path
        .strip_prefix(ENTERPRISE_SCHEMA)
        .and_then(|r| r.strip_prefix(':'))
    {
        return Some((ENTERPRISE_SCHEMA, rest));
    }
    let head = path.split(['[', '.']).next().unwrap_or(path);
    let at = head.rfind(':')?;
    Some((&path[..at], &path[at + 1..]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scimsync_model::paths;
    use serde_json::json;

    fn user_schema() -> Value {
        json!({"id": USER_SCHEMA, "attributes": [
            {"name": "userName", "type": "string", "caseExact": false, "mutability": "readWrite"},
            {"name": "name", "type": "complex", "subAttributes": [
                {"name": "givenName"}, {"name": "familyName"}]},
            {"name": "displayName"},
            {"name": "emails", "multiValued": true, "subAttributes": [
                {"name": "value"}, {"name": "type"}, {"name": "primary"}]},
            {"name": "groups", "mutability": "readOnly"},
        ]})
    }

    /// SCIMMY's shape: a list response, the User type with no extension.
    fn no_extension() -> TargetSchema {
        let schemas = json!({"Resources": [user_schema(),
            {"id": GROUP_SCHEMA, "attributes": [{"name": "displayName"},
                {"name": "members", "mutability": "readWrite"}]}]});
        let types = json!({"Resources": [{"id": "User", "name": "User", "schema": USER_SCHEMA},
                                          {"id": "Group", "name": "Group", "schema": GROUP_SCHEMA}]});
        TargetSchema::read(Some(&schemas), Some(&types))
    }

    #[test]
    fn core_attributes_are_checked_against_the_schema() {
        let s = no_extension();
        assert!(s.is_known());
        for path in [
            paths::DISPLAY_NAME,
            paths::GIVEN_NAME,
            paths::WORK_EMAIL,
            "DISPLAYNAME",
        ] {
            assert_eq!(s.user_support(path), Support::Supported, "{path}");
        }
        for path in [paths::TITLE, paths::ROLE, "name.middleName", "groups"] {
            assert!(s.user_support(path).is_unsupported(), "{path}");
        }
        assert_eq!(s.user_name_case_exact(), Some(false));
        assert_eq!(s.group_members_writable(), Some(true));
    }

    #[test]
    fn an_undeclared_extension_is_unsupported_whole() {
        let s = no_extension();
        for path in [paths::DEPARTMENT, paths::MANAGER, paths::COST_CENTER] {
            let support = s.user_support(path);
            assert!(
                matches!(&support, Support::Unsupported { reason } if reason.contains("no extension")),
                "{path}: {support:?}"
            );
        }
        assert!(
            s.user_support("urn:example:params:scim:schemas:extension:acme:2.0:User:badge")
                .is_unsupported()
        );
    }

    #[test]
    fn a_declared_extension_is_checked_attribute_by_attribute() {
        let schemas = json!([user_schema(), {"id": ENTERPRISE_SCHEMA, "attributes": [
            {"name": "department"},
            {"name": "manager", "subAttributes": [{"name": "value"},
                {"name": "displayName", "mutability": "readOnly"}]}]}]);
        let types = json!([{"name": "User", "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": false}]}]);
        let s = TargetSchema::read(Some(&schemas), Some(&types));
        assert_eq!(s.user_support(paths::DEPARTMENT), Support::Supported);
        assert_eq!(s.user_support(paths::MANAGER), Support::Supported);
        assert!(s.user_support(paths::COST_CENTER).is_unsupported());
        assert!(
            s.user_support(&format!("{ENTERPRISE_SCHEMA}:manager.displayName"))
                .is_unsupported()
        );
        // Without Groups in /Schemas, nothing is known of members.
        assert_eq!(s.group_members_writable(), None);
    }

    #[test]
    fn nothing_served_means_unknown_never_unsupported() {
        let s = Discovery::default().schema();
        assert!(!s.is_known());
        for path in [paths::DEPARTMENT, paths::TITLE, paths::ROLE] {
            assert_eq!(s.user_support(path), Support::Unknown, "{path}");
        }
        assert_eq!(s.user_name_case_exact(), None);
        // Garbage is nothing served.
        let junk = TargetSchema::read(Some(&json!("<html>")), Some(&json!(42)));
        assert_eq!(junk.user_support(paths::TITLE), Support::Unknown);
        assert_eq!(junk.user_support(paths::DEPARTMENT), Support::Unknown);
    }
}
