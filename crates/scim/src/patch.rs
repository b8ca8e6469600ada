//! PatchOp bodies (RFC 7644 §3.5.2) for a user's attribute changes.

use crate::{PATCH_SCHEMA, Profile};
use scimsync_model::{AttrValue, Change, paths};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// One operation per change: `replace` with the new value, or `remove` when the new value is
/// `None`. `active` goes as a JSON boolean. Always with a `path`: Miro's schema requires it for
/// users (miro-scim.md §6). Never a path on `emails` where the target derives them (Miro:
/// change the email through `userName`). A `Ref` value is a bug upstream (it must be resolved
/// first) and is left out.
pub fn patch_body(changes: &[Change], profile: &Profile) -> Value {
    patch_body_adding(changes, profile, &BTreeSet::new())
}

/// [`patch_body`], with the value paths in `add_entries` (`emails[type eq "work"].value`)
/// sent as an `add` of a new entry to their multi-valued attribute: RFC 7644 answers a
/// `replace` whose filter matches nothing with 400 `noTarget`, and the executor asks again
/// this way. (A `replace` comes first because an `add` of an entry the target already holds
/// duplicates it on some SPs.)
pub fn patch_body_adding(
    changes: &[Change],
    profile: &Profile,
    add_entries: &BTreeSet<String>,
) -> Value {
    let mut operations = Vec::with_capacity(changes.len());
    for change in changes {
        if !profile.manages_emails() && change.path.starts_with("emails") {
            continue;
        }
        if let Some(role) = paths::admin_role_value(&change.path) {
            // Miro's documented paths: an entry added to `roles`, removed by its value.
            let op = match &change.new {
                Some(AttrValue::Text(kind)) => json!({
                    "op": profile.op_case.op("add"),
                    "path": "roles",
                    "value": [admin_role_entry(&role, kind)],
                }),
                Some(AttrValue::Ref { .. }) => continue,
                None => json!({"op": profile.op_case.op("remove"), "path": change.path}),
            };
            operations.push(op);
            continue;
        }
        let op = match &change.new {
            Some(AttrValue::Text(v)) if add_entries.contains(&change.path) => {
                match new_entry(&change.path, v) {
                    Some((attr, entry)) => json!({
                        "op": profile.op_case.op("add"),
                        "path": attr,
                        "value": [entry],
                    }),
                    None => continue,
                }
            }
            Some(AttrValue::Text(v)) => json!({
                "op": profile.op_case.op("replace"),
                "path": change.path,
                "value": wire_value(&change.path, v),
            }),
            Some(AttrValue::Ref { .. }) => continue,
            None => json!({"op": profile.op_case.op("remove"), "path": change.path}),
        };
        operations.push(op);
    }
    json!({"schemas": [PATCH_SCHEMA], "Operations": operations})
}

/// One admin role entry of a `roles` array: `{value, type, primary: false}` (miro-scim.md §3).
/// Here, beside `new_entry`, so a resource body and a PatchOp build entries alike.
pub(crate) fn admin_role_entry(role: &str, kind: &str) -> Value {
    json!({"value": role, "type": kind, "primary": false})
}

/// `attr[key eq "v"].sub` with `value` → (`attr`, `{sub: value, key: v}`), the entry an `add`
/// appends. A new email or role entry is the primary one (it is the one scimsync manages).
pub fn new_entry(path: &str, value: &str) -> Option<(String, Value)> {
    let (attr, key, filter_value, sub) = crate::replace::parse_value_path(path)?;
    let mut entry = serde_json::Map::new();
    entry.insert(sub.to_owned(), json!(value));
    let typed = match filter_value.as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        other => json!(other),
    };
    entry.insert(key.to_owned(), typed);
    if matches!(attr, "emails" | "roles") {
        entry.insert("primary".into(), Value::Bool(true));
    }
    Some((attr.to_owned(), Value::Object(entry)))
}

fn wire_value(path: &str, v: &str) -> Value {
    if path == paths::ACTIVE {
        if v.eq_ignore_ascii_case("true") {
            return Value::Bool(true);
        }
        if v.eq_ignore_ascii_case("false") {
            return Value::Bool(false);
        }
    }
    Value::String(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpCase;
    use scimsync_model::SourceId;
    use scimsync_model::paths::WORK_EMAIL;

    fn change(path: &str, old: Option<&str>, new: Option<&str>) -> Change {
        Change {
            path: path.to_owned(),
            old: old.map(AttrValue::text),
            new: new.map(AttrValue::text),
        }
    }

    #[test]
    fn replace_and_remove() {
        let changes = [
            change(paths::DISPLAY_NAME, Some("Ann"), Some("Ann Lee")),
            change(paths::ACTIVE, Some("true"), Some("false")),
            change(paths::USER_NAME, Some("ann@old.com"), Some("ann@new.com")),
            change(paths::DEPARTMENT, Some("Eng"), None),
            change(paths::ROLE, Some(paths::USER_ROLE), Some(paths::ADMIN_ROLE)),
        ];
        let body = patch_body(&changes, &Profile::miro());
        let expected = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "path": "displayName", "value": "Ann Lee"},
                {"op": "replace", "path": "active", "value": false},
                {"op": "replace", "path": "userName", "value": "ann@new.com"},
                {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},
                {"op": "replace", "path": "roles[primary eq true].value", "value": "ORGANIZATION_INTERNAL_ADMIN"}
            ]
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn admin_roles_go_with_miros_documented_paths() {
        let content = paths::admin_role("Content Admin");
        let user_admin = paths::admin_role("User Admin");
        let body = patch_body(
            &[
                change(&content, None, Some("organization_admin_role")),
                change(&user_admin, Some("organization_admin_role"), None),
            ],
            &Profile::miro(),
        );
        // miro-scim.md §6.
        assert_eq!(
            body["Operations"],
            json!([
                {"op": "add", "path": "roles", "value": [{"value": "Content Admin", "type": "organization_admin_role", "primary": false}]},
                {"op": "remove", "path": "roles[value eq \"User Admin\"]"}
            ])
        );
    }

    #[test]
    fn capitalized_ops_when_the_profile_asks() {
        let mut profile = Profile::miro();
        profile.op_case = OpCase::Capitalized;
        let body = patch_body(
            &[
                change(paths::ACTIVE, None, Some("true")),
                change(paths::TITLE, Some("x"), None),
            ],
            &profile,
        );
        assert_eq!(
            body["Operations"][0],
            json!({"op": "Replace", "path": "active", "value": true})
        );
        assert_eq!(
            body["Operations"][1],
            json!({"op": "Remove", "path": "title"})
        );
    }

    #[test]
    fn never_emails_for_miro_and_never_a_ref() {
        let mut manager = change(paths::MANAGER, None, None);
        manager.new = Some(AttrValue::Ref {
            user: SourceId::new("u9"),
        });
        let changes = [
            change(WORK_EMAIL, Some("a@b.c"), Some("d@e.f")),
            change("emails", None, Some("d@e.f")),
            manager,
        ];
        let body = patch_body(&changes, &Profile::miro());
        assert_eq!(body["Operations"], json!([]));
        // The generic profile may patch emails; refs are never sent.
        let generic = patch_body(&changes, &Profile::generic());
        assert_eq!(generic["Operations"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_user_name_change_alone_does_not_touch_emails() {
        // The planner sends the work email as its own change when it differs: the body
        // carries exactly the changes it is given.
        let changes = [change(
            paths::USER_NAME,
            Some("a@old.com"),
            Some("a@new.com"),
        )];
        let body = patch_body(&changes, &Profile::generic());
        assert_eq!(
            body["Operations"],
            json!([{"op": "replace", "path": "userName", "value": "a@new.com"}])
        );
    }

    #[test]
    fn absent_entries_go_as_an_add_when_asked() {
        let changes = [
            change(WORK_EMAIL, None, Some("a@new.com")),
            change(paths::ROLE, None, Some("admin")),
            change(paths::DISPLAY_NAME, None, Some("Ann")),
        ];
        let plain = patch_body(&changes, &Profile::generic());
        assert_eq!(plain["Operations"][0]["op"], "replace");
        assert_eq!(plain["Operations"][0]["path"], WORK_EMAIL);
        let adds: BTreeSet<String> = [WORK_EMAIL.to_owned(), paths::ROLE.to_owned()].into();
        let body = patch_body_adding(&changes, &Profile::generic(), &adds);
        assert_eq!(
            body["Operations"],
            json!([
                {"op": "add", "path": "emails", "value": [{"value": "a@new.com", "type": "work", "primary": true}]},
                {"op": "add", "path": "roles", "value": [{"value": "admin", "primary": true}]},
                {"op": "replace", "path": "displayName", "value": "Ann"}
            ])
        );
    }
}
