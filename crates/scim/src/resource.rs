//! A user as a SCIM resource: the POST body built from flat `Attrs`, and a resource read back
//! flattened into a `TargetUser` keyed by the same paths.

use crate::{ENTERPRISE_SCHEMA, Profile, USER_SCHEMA};
use scimsync_model::{AttrValue, Attrs, ScimId, TargetUser, paths};
use serde_json::{Map, Value, json};

/// A SCIM user resource that cannot be read as a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The resource is not a JSON object.
    #[error("a SCIM user must be a JSON object")]
    NotAnObject,
    /// A required attribute (`id`, `userName`) is absent.
    #[error("the SCIM user has no `{field}`")]
    MissingField { field: &'static str },
    /// An attribute has a type the client cannot read (e.g. `active: "maybe"`).
    #[error("`{field}` of a SCIM user should be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
}

/// Top-level keys the client sets itself; an attribute path naming one of them is ignored
/// rather than allowed to overwrite it.
const RESERVED: [&str; 8] = [
    "schemas", "id", "userName", "active", "roles", "emails", "meta", "groups",
];

/// The POST /Users body for a user. `attrs` must be resolved: an `AttrValue::Ref` here is a bug
/// upstream and is left out rather than sent as garbage. A value path (`emails[type eq
/// "work"].value`, the primary role) becomes an entry of its multi-valued attribute; other
/// paths with a filter cannot be built into a resource and are left out too. Emails are left
/// out where the target derives them.
pub fn user_resource(user_name: &str, active: bool, attrs: &Attrs, profile: &Profile) -> Value {
    let mut top = Map::new();
    let mut enterprise = Map::new();
    let mut entries: Map<String, Value> = Map::new();

    for (path, value) in attrs {
        let Some(text) = value.as_text() else {
            continue;
        };
        if let Some(role) = paths::admin_role_value(path) {
            if profile.admin_role_type.is_some()
                && let Value::Array(list) = entries
                    .entry("roles".to_owned())
                    .or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(crate::patch::admin_role_entry(&role, text));
            }
            continue;
        }
        if path.contains('[') {
            if path.starts_with("emails") && !profile.manages_emails() {
                continue;
            }
            if let Some((attr, mut entry)) = crate::patch::new_entry(path, text) {
                if attr == "roles"
                    && let (Some(kind), Value::Object(fields)) =
                        (profile.role_entry_type(), &mut entry)
                {
                    fields.insert("type".into(), json!(kind));
                }
                if let Value::Array(list) = entries
                    .entry(attr)
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    list.push(entry);
                }
            }
        } else if let Some(rest) = path
            .strip_prefix(ENTERPRISE_SCHEMA)
            .and_then(|r| r.strip_prefix(':'))
        {
            insert_path(&mut enterprise, rest, text);
        } else if !path.contains(':') {
            let head = path.split('.').next().unwrap_or_default();
            if !RESERVED.contains(&head) {
                insert_path(&mut top, path, text);
            }
        }
    }

    let mut schemas = vec![json!(USER_SCHEMA)];
    if profile.list_extensions_in_schemas && !enterprise.is_empty() {
        schemas.push(json!(ENTERPRISE_SCHEMA));
    }

    let mut body = Map::new();
    body.insert("schemas".into(), Value::Array(schemas));
    body.insert("userName".into(), json!(user_name));
    body.insert("active".into(), json!(active));
    body.extend(top);
    body.extend(entries);
    if !enterprise.is_empty() {
        body.insert(ENTERPRISE_SCHEMA.into(), Value::Object(enterprise));
    }
    Value::Object(body)
}

/// `a` → `{a: v}`, `a.b` → `{a: {b: v}}`. Deeper paths are not SCIM (RFC 7644 §3.10).
fn insert_path(map: &mut Map<String, Value>, path: &str, text: &str) {
    match path.split_once('.') {
        None => {
            map.insert(path.into(), json!(text));
        }
        Some((attr, sub)) if !sub.contains('.') => {
            let slot = map
                .entry(attr.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = slot {
                inner.insert(sub.into(), json!(text));
            }
        }
        Some(_) => {}
    }
}

/// Core attributes compared by the planner, read back as top-level strings.
const TOP_STRINGS: [&str; 4] = [
    paths::DISPLAY_NAME,
    paths::TITLE,
    paths::USER_TYPE,
    paths::PREFERRED_LANGUAGE,
];

/// Flattens a SCIM user into a `TargetUser`, keyed like `DesiredUser::attrs`. The work email is
/// read where the profile manages emails; `groups`, `meta` and `photos` are ignored; an empty string counts as absent (what the directory side
/// does too, so `""` never shows up as a difference).
pub fn target_user(resource: &Value, profile: &Profile) -> Result<TargetUser, WireError> {
    let obj = resource.as_object().ok_or(WireError::NotAnObject)?;
    let id = match obj.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(WireError::WrongType {
                field: "id",
                expected: "a string",
            });
        }
        None => return Err(WireError::MissingField { field: "id" }),
    };
    let user_name = match obj.get("userName") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None => return Err(WireError::MissingField { field: "userName" }),
        Some(_) => {
            return Err(WireError::WrongType {
                field: "userName",
                expected: "a string",
            });
        }
    };
    let active = match obj.get("active") {
        // RFC 7643 leaves `active` optional; an SP that omits it has no notion of inactive users.
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(WireError::WrongType {
                field: "active",
                expected: "a boolean",
            });
        }
    };

    let mut attrs = Attrs::new();
    let mut put = |path: String, v: Option<&Value>| {
        if let Some(s) = v.and_then(string_of).filter(|s| !s.is_empty()) {
            attrs.insert(path.into(), AttrValue::Text(s.into()));
        }
    };
    for key in TOP_STRINGS {
        put(key.to_owned(), obj.get(key));
    }
    if let Some(name) = obj.get("name").and_then(Value::as_object) {
        put(paths::GIVEN_NAME.to_owned(), name.get("givenName"));
        put(paths::FAMILY_NAME.to_owned(), name.get("familyName"));
    }
    put(
        paths::ROLE.to_owned(),
        primary_role(obj.get("roles"), profile),
    );
    if let Some(kind) = &profile.admin_role_type {
        for role in admin_roles(obj.get("roles"), kind) {
            put(paths::admin_role(role), Some(&Value::String(kind.clone())));
        }
    }
    if profile.manages_emails() {
        put(paths::WORK_EMAIL.to_owned(), work_email(obj.get("emails")));
    }
    if let Some(ext) = obj.get(ENTERPRISE_SCHEMA).and_then(Value::as_object) {
        for (key, value) in ext {
            match value {
                Value::String(_) => put(format!("{ENTERPRISE_SCHEMA}:{key}"), Some(value)),
                Value::Object(inner) if key == "manager" => {
                    put(paths::MANAGER.to_owned(), inner.get("value"));
                }
                _ => {}
            }
        }
    }
    Ok(TargetUser {
        id: ScimId::new(id),
        user_name,
        active,
        attrs,
    })
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        // Manager ids are numeric in Miro and some SPs send them as numbers.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The value of the email whose `type` is `work` (any case).
fn work_email(emails: Option<&Value>) -> Option<&Value> {
    emails?
        .as_array()?
        .iter()
        .find(|e| {
            e.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("work"))
        })
        .and_then(|e| e.get("value"))
}

/// The values of the role entries of type `kind` (Miro's admin roles), never a primary one.
fn admin_roles<'a>(roles: Option<&'a Value>, kind: &'a str) -> impl Iterator<Item = &'a str> {
    roles
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |r| {
            r.get("type").and_then(Value::as_str) == Some(kind)
                && !matches!(r.get("primary"), Some(Value::Bool(true)))
        })
        .filter_map(|r| r.get("value").and_then(Value::as_str))
}

/// The value of the primary role. Miro marks admin roles `primary: false`, but prefer its
/// `organization_user_role` should an SP ever mark more than one primary.
fn primary_role<'a>(roles: Option<&'a Value>, profile: &Profile) -> Option<&'a Value> {
    let roles = roles?.as_array()?;
    let is_primary = |r: &&Value| match r.get("primary") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let preferred = profile.role_entry_type().and_then(|kind| {
        roles
            .iter()
            .filter(is_primary)
            .find(|r| r.get("type").and_then(Value::as_str) == Some(kind))
    });
    preferred
        .or_else(|| roles.iter().find(is_primary))
        .and_then(|r| r.get("value"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scimsync_model::SourceId;

    fn text(s: &str) -> AttrValue {
        AttrValue::text(s)
    }

    fn jane_attrs() -> Attrs {
        [
            (paths::DISPLAY_NAME, text("Jane Doe")),
            (paths::GIVEN_NAME, text("Jane")),
            (paths::FAMILY_NAME, text("Doe")),
            (paths::USER_TYPE, text("Full")),
            (paths::PREFERRED_LANGUAGE, text("en_US")),
            (paths::ROLE, text(paths::USER_ROLE)),
            (paths::EMPLOYEE_NUMBER, text("E0001")),
            (paths::COST_CENTER, text("CS001")),
            (paths::ORGANIZATION, text("OrgX")),
            (paths::DIVISION, text("Div001")),
            (paths::DEPARTMENT, text("DeptA")),
            (paths::MANAGER, text("3074457365265951581")),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v))
        .collect()
    }

    #[test]
    fn miro_create_body_matches_the_documented_example() {
        let body = user_resource(
            "jane.doe@example.com",
            true,
            &jane_attrs(),
            &Profile::miro(),
        );
        // miro-scim.md §3 "Create example", minus photos (not mapped) and manager.displayName.
        let expected = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "jane.doe@example.com",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "displayName": "Jane Doe",
            "userType": "Full",
            "active": true,
            "preferredLanguage": "en_US",
            "roles": [{"type": "organization_user_role", "value": "ORGANIZATION_INTERNAL_USER", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "E0001", "costCenter": "CS001", "organization": "OrgX",
                "division": "Div001", "department": "DeptA",
                "manager": {"value": "3074457365265951581"}
            }
        });
        assert_eq!(body, expected);
        assert!(body.get("emails").is_none());
    }

    #[test]
    fn generic_create_body_lists_the_extension_and_an_email() {
        let mut attrs = Attrs::new();
        attrs.insert(paths::DISPLAY_NAME.into(), text("Ann Lee"));
        attrs.insert(paths::TITLE.into(), text("SRE"));
        attrs.insert(paths::ROLE.into(), text(paths::ADMIN_ROLE));
        attrs.insert(paths::DEPARTMENT.into(), text("Eng"));
        attrs.insert(paths::WORK_EMAIL.into(), text("ann@example.com"));
        let body = user_resource("ann@example.com", false, &attrs, &Profile::generic());
        let expected = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "userName": "ann@example.com",
            "active": false,
            "displayName": "Ann Lee",
            "title": "SRE",
            "roles": [{"value": "ORGANIZATION_INTERNAL_ADMIN", "primary": true}],
            "emails": [{"value": "ann@example.com", "type": "work", "primary": true}],
            ENTERPRISE_SCHEMA: {"department": "Eng"}
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn miro_never_gets_emails_even_when_mapped() {
        let mut attrs = Attrs::new();
        attrs.insert(paths::WORK_EMAIL.into(), text("a@b.c"));
        let body = user_resource("a@b.c", true, &attrs, &Profile::miro());
        assert!(body.get("emails").is_none(), "{body}");
    }

    #[test]
    fn generic_without_extension_lists_only_core() {
        let body = user_resource("a@b.c", true, &Attrs::new(), &Profile::generic());
        assert_eq!(body["schemas"], json!([USER_SCHEMA]));
    }

    #[test]
    fn refs_and_reserved_paths_are_left_out() {
        let mut attrs = Attrs::new();
        attrs.insert(
            paths::MANAGER.into(),
            AttrValue::Ref {
                user: SourceId::new("u9"),
            },
        );
        attrs.insert("emails[type eq \"work\"].value".into(), text("x@y.z"));
        attrs.insert("emails".into(), text("x@y.z"));
        attrs.insert("userName".into(), text("evil@y.z"));
        attrs.insert("schemas".into(), text("nope"));
        let body = user_resource("a@b.c", true, &attrs, &Profile::miro());
        assert_eq!(
            body,
            json!({"schemas": [USER_SCHEMA], "userName": "a@b.c", "active": true})
        );
    }

    #[test]
    fn flattens_a_miro_response() {
        let resource = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "3074457345265951581",
            "userName": "jane.doe@example.com",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "displayName": "Jane Doe",
            "userType": "Full",
            "active": "false",
            "preferredLanguage": "en_US",
            "emails": [{"value": "jane.doe@example.com", "primary": true, "display": "jane.doe@example.com"}],
            "photos": [{"type": "photo", "value": "https://cdn.example.com/jane.jpg"}],
            "groups": [{"value": "3458764577585056871", "display": "Team"}],
            "roles": [
                {"value": "Content Admin", "type": "organization_admin_role", "primary": false},
                {"value": "ORGANIZATION_INTERNAL_ADMIN", "display": "Company Admin", "type": "organization_user_role", "primary": true}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "E0001", "department": "", "costCenter": "CS001",
                "manager": {"value": 3074457365265951581_u64, "displayName": "John Boss"}
            },
            "meta": {"resourceType": "User", "location": "https://miro.com/api/v1/scim/Users/3074457345265951581"}
        });
        let user = target_user(&resource, &Profile::miro()).unwrap();
        assert_eq!(user.id.as_str(), "3074457345265951581");
        assert_eq!(user.user_name, "jane.doe@example.com");
        assert!(!user.active);
        let content_admin = paths::admin_role("Content Admin");
        let expect: Attrs = [
            (content_admin.as_str(), "organization_admin_role"),
            (paths::DISPLAY_NAME, "Jane Doe"),
            (paths::GIVEN_NAME, "Jane"),
            (paths::FAMILY_NAME, "Doe"),
            (paths::USER_TYPE, "Full"),
            (paths::PREFERRED_LANGUAGE, "en_US"),
            (paths::ROLE, "ORGANIZATION_INTERNAL_ADMIN"),
            (paths::EMPLOYEE_NUMBER, "E0001"),
            (paths::COST_CENTER, "CS001"),
            (paths::MANAGER, "3074457365265951581"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), text(v)))
        .collect();
        assert_eq!(user.attrs, expect);
    }

    #[test]
    fn round_trip_gives_back_the_attrs() {
        for profile in [Profile::miro(), Profile::generic()] {
            let mut attrs = jane_attrs();
            attrs.insert(paths::TITLE.into(), text("Boss"));
            if profile.admin_role_type.is_some() {
                for role in ["Content Admin", "User Admin"] {
                    attrs.insert(
                        paths::admin_role(role).into(),
                        text("organization_admin_role"),
                    );
                }
            }
            if profile.manages_emails() {
                attrs.insert(paths::WORK_EMAIL.into(), text("jane@example.com"));
            }
            let mut body = user_resource("jane@example.com", true, &attrs, &profile);
            body["id"] = json!("42");
            let user = target_user(&body, &profile).unwrap();
            assert_eq!(user.attrs, attrs, "{:?}", profile.kind);
            assert_eq!(user.user_name, "jane@example.com");
            assert!(user.active);
        }
    }

    #[test]
    fn missing_or_malformed_fields_are_errors() {
        let p = Profile::miro();
        assert_eq!(target_user(&json!([]), &p), Err(WireError::NotAnObject));
        assert_eq!(
            target_user(&json!({"userName": "a@b.c"}), &p),
            Err(WireError::MissingField { field: "id" })
        );
        assert_eq!(
            target_user(&json!({"id": "1"}), &p),
            Err(WireError::MissingField { field: "userName" })
        );
        assert!(matches!(
            target_user(
                &json!({"id": "1", "userName": "a@b.c", "active": "maybe"}),
                &p
            ),
            Err(WireError::WrongType {
                field: "active",
                ..
            })
        ));
        let numeric = target_user(&json!({"id": 7, "userName": "a@b.c"}), &p).unwrap();
        assert_eq!(numeric.id.as_str(), "7");
        assert!(numeric.active);
    }
}
