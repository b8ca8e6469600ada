//! PatchOp bodies (RFC 7644 §3.5.2) for a user's attribute changes.

use crate::{PATCH_SCHEMA, Profile};
use scimsync_model::{AttrValue, Change, paths};
use serde_json::{Value, json};

/// One operation per change: `replace` with the new value, or `remove` when the new value is
/// `None`. `active` goes as a JSON boolean. Always with a `path`: Miro's schema requires it for
/// users (miro-scim.md §6). Never a path on `emails` for Miro (read-only there; change the email
/// through `userName`). A `Ref` value is a bug upstream (it must be resolved first) and is left out.
pub fn patch_body(changes: &[Change], profile: &Profile) -> Value {
    let mut operations = Vec::with_capacity(changes.len());
    for change in changes {
        if profile.is_miro() && change.path.starts_with("emails") {
            continue;
        }
        let op = match &change.new {
            // A value path (`roles[primary eq true].value`) with nothing there yet: RFC 7644
            // answers `replace` with 400 noTarget, so add the entry to the attribute instead.
            Some(AttrValue::Text(v))
                if !profile.is_miro() && change.old.is_none() && change.path == paths::ROLE =>
            {
                json!({
                    "op": profile.op_case.op("add"),
                    "path": "roles",
                    "value": [{"value": v, "primary": true}],
                })
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
        // A generic SP stores emails: the work email follows userName (Entra sends the same).
        if !profile.is_miro()
            && change.path == paths::USER_NAME
            && let Some(AttrValue::Text(v)) = &change.new
            && !changes.iter().any(|c| c.path.starts_with("emails"))
        {
            operations.push(json!({
                "op": profile.op_case.op("replace"),
                "path": WORK_EMAIL,
                "value": v,
            }));
        }
    }
    json!({"schemas": [PATCH_SCHEMA], "Operations": operations})
}

/// The work email's PATCH path (RFC 7644 §3.5.2 value path).
pub const WORK_EMAIL: &str = "emails[type eq \"work\"].value";

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
            change(
                "emails[type eq \"work\"].value",
                Some("a@b.c"),
                Some("d@e.f"),
            ),
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
    fn generic_moves_the_work_email_with_user_name() {
        let changes = [change(
            paths::USER_NAME,
            Some("a@old.com"),
            Some("a@new.com"),
        )];
        let body = patch_body(&changes, &Profile::generic());
        assert_eq!(
            body["Operations"],
            json!([
                {"op": "replace", "path": "userName", "value": "a@new.com"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@new.com"}
            ])
        );
        let miro = patch_body(&changes, &Profile::miro());
        assert_eq!(miro["Operations"].as_array().map(Vec::len), Some(1));
    }
}
