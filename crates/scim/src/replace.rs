//! The PUT fallback (RFC 7644 §3.5.1) for SPs without PATCH: a user's changes applied to the
//! whole resource just read, which is then sent back as the replacement.

use crate::{ENTERPRISE_SCHEMA, Profile};
use scimsync_model::{AttrValue, Change, paths};
use serde_json::{Map, Value, json};

/// `resource` (as read with GET) with `changes` applied, ready for PUT. `meta` goes (read-only,
/// and some SPs refuse a stale one); `id` and everything the changes do not name stay, so a PUT
/// loses nothing the SP holds. Emails are left alone where the target derives them (as in a
/// PATCH); where it stores them, the work email is a change of its own. Unresolved references
/// are left out, as in a PATCH.
pub fn apply_changes(resource: &Value, changes: &[Change], profile: &Profile) -> Value {
    let mut obj = resource.as_object().cloned().unwrap_or_default();
    obj.remove("meta");
    for change in changes {
        if !profile.manages_emails() && change.path.starts_with("emails") {
            continue;
        }
        let new = match &change.new {
            Some(AttrValue::Text(v)) => Some(v.as_str()),
            Some(AttrValue::Ref { .. }) => continue,
            None => None,
        };
        apply_one(&mut obj, &change.path, new);
    }
    Value::Object(obj)
}

fn apply_one(obj: &mut Map<String, Value>, path: &str, new: Option<&str>) {
    if path == paths::ACTIVE {
        let b = new.is_none_or(|v| !v.eq_ignore_ascii_case("false"));
        obj.insert(path.to_owned(), Value::Bool(b));
        return;
    }
    if let Some(rest) = path
        .strip_prefix(ENTERPRISE_SCHEMA)
        .and_then(|r| r.strip_prefix(':'))
    {
        let ext = obj
            .entry(ENTERPRISE_SCHEMA.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(ext) = ext {
            set_dotted(ext, rest, new);
        }
        if new.is_some() {
            add_schema(obj, ENTERPRISE_SCHEMA);
        }
        return;
    }
    if let Some((attr, key, value, sub)) = parse_value_path(path) {
        set_filtered(obj, attr, key, &value, sub, new);
        return;
    }
    set_dotted(obj, path, new);
}

/// `a` or `a.b` set to `new`, or removed when `new` is `None`.
fn set_dotted(obj: &mut Map<String, Value>, path: &str, new: Option<&str>) {
    match (path.split_once('.'), new) {
        (None, Some(v)) => {
            obj.insert(path.to_owned(), json!(v));
        }
        (None, None) => {
            obj.remove(path);
        }
        (Some((attr, sub)), _) => {
            let slot = obj
                .entry(attr.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                set_dotted(inner, sub, new);
            }
        }
    }
}

/// `attr[key eq "value"].sub`: in the multi-valued `attr`, the entries whose `key` equals
/// `value` get `sub` set; none matching, one is added. Removing drops the matching entries.
fn set_filtered(
    obj: &mut Map<String, Value>,
    attr: &str,
    key: &str,
    value: &str,
    sub: &str,
    new: Option<&str>,
) {
    let matches = |entry: &Value| match entry.get(key) {
        Some(Value::String(s)) => s.eq_ignore_ascii_case(value),
        Some(Value::Bool(b)) => b.to_string() == value,
        _ => false,
    };
    let slot = obj
        .entry(attr.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(entries) = slot else { return };
    match new {
        None => entries.retain(|e| !matches(e)),
        Some(v) => {
            let mut found = false;
            for entry in entries.iter_mut().filter(|e| matches(e)) {
                if let Value::Object(entry) = entry {
                    entry.insert(sub.to_owned(), json!(v));
                    found = true;
                }
            }
            if !found {
                let typed = match value {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    other => json!(other),
                };
                let mut entry = Map::new();
                entry.insert(sub.to_owned(), json!(v));
                entry.insert(key.to_owned(), typed);
                if attr == "emails" && !entries.iter().any(|e| e.get("primary").is_some()) {
                    entry.insert("primary".into(), Value::Bool(true));
                }
                entries.push(Value::Object(entry));
            }
        }
    }
    if entries.is_empty() {
        obj.remove(attr);
    }
}

/// `attr[key eq "value"].sub` (or `eq value` unquoted) → its parts.
pub(crate) fn parse_value_path(path: &str) -> Option<(&str, &str, String, &str)> {
    let (attr, rest) = path.split_once('[')?;
    let (filter, sub) = rest.split_once("].")?;
    let mut parts = filter.splitn(3, ' ');
    let key = parts.next()?;
    let op = parts.next()?;
    let value = parts.next()?;
    if !op.eq_ignore_ascii_case("eq") {
        return None;
    }
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .replace("\\\"", "\"");
    Some((attr, key, value, sub))
}

fn add_schema(obj: &mut Map<String, Value>, urn: &str) {
    let schemas = obj
        .entry("schemas".to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = schemas
        && !list.iter().any(|s| s.as_str() == Some(urn))
    {
        list.push(json!(urn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, new: Option<&str>) -> Change {
        Change {
            path: path.to_owned(),
            old: None,
            new: new.map(AttrValue::text),
        }
    }

    #[test]
    fn changes_land_in_the_whole_resource() {
        let resource = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "7", "meta": {"version": "W/\"3\""},
            "userName": "ann@old.com", "active": true, "title": "SRE",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"value": "ann@old.com", "type": "work", "primary": true},
                       {"value": "ann@home.net", "type": "home"}],
            "x509Certificates": [{"value": "kept"}],
        });
        let changes = [
            change(paths::USER_NAME, Some("ann@new.com")),
            change(paths::WORK_EMAIL, Some("ann@new.com")),
            change(paths::ACTIVE, Some("false")),
            change(paths::TITLE, None),
            change(paths::FAMILY_NAME, Some("Li")),
            change(paths::DEPARTMENT, Some("Eng")),
            change(paths::MANAGER, Some("9")),
            change(paths::ROLE, Some("admin")),
        ];
        let put = apply_changes(&resource, &changes, &Profile::generic());
        let expected = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_SCHEMA],
            "id": "7",
            "userName": "ann@new.com", "active": false,
            "name": {"givenName": "Ann", "familyName": "Li"},
            "emails": [{"value": "ann@new.com", "type": "work", "primary": true},
                       {"value": "ann@home.net", "type": "home"}],
            "x509Certificates": [{"value": "kept"}],
            ENTERPRISE_SCHEMA: {"department": "Eng", "manager": {"value": "9"}},
            "roles": [{"value": "admin", "primary": true}],
        });
        assert_eq!(put, expected);
    }

    #[test]
    fn a_missing_work_email_is_added_and_miro_never_gets_one() {
        let resource = json!({"id": "1", "userName": "a@b.c"});
        let changes = [
            change(paths::USER_NAME, Some("d@e.f")),
            change(paths::WORK_EMAIL, Some("d@e.f")),
        ];
        let put = apply_changes(&resource, &changes, &Profile::generic());
        assert_eq!(
            put["emails"],
            json!([{"value": "d@e.f", "type": "work", "primary": true}])
        );
        let miro = apply_changes(&resource, &changes, &Profile::miro());
        assert!(miro.get("emails").is_none());
    }

    #[test]
    fn value_paths_parse() {
        assert_eq!(
            parse_value_path("emails[type eq \"work\"].value"),
            Some(("emails", "type", "work".to_owned(), "value"))
        );
        assert_eq!(
            parse_value_path(paths::ROLE),
            Some(("roles", "primary", "true".to_owned(), "value"))
        );
        assert_eq!(parse_value_path("displayName"), None);
    }
}
