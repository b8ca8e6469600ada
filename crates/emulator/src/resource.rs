//! Helpers shared by the User and Group resources: case-insensitive attribute access,
//! list responses, paging and `attributes` projection.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::error::ScimError;

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// SCIM attribute names are case-insensitive (RFC 7643 §2.1).
pub fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

pub fn as_object(body: &Value) -> Result<&Map<String, Value>, ScimError> {
    body.as_object().ok_or_else(|| {
        ScimError::bad_request("invalidSyntax", "Request body must be a JSON object")
    })
}

/// A string attribute; `null` counts as absent.
pub fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ScimError> {
    match get_ci(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::invalid_value(format!(
            "Attribute '{key}' must be a string"
        ))),
    }
}

/// Miro documents `active` as the string "true"/"false" but its own samples send booleans.
pub fn parse_bool(v: &Value, key: &str) -> Result<bool, ScimError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value(format!(
            "Attribute '{key}' must be a boolean"
        ))),
    }
}

pub struct Page {
    pub start_index: usize,
    pub count: usize,
}

pub fn page(query: &HashMap<String, String>, cap: usize) -> Result<Page, ScimError> {
    let num = |name: &str, default: i64| -> Result<i64, ScimError> {
        match query_ci(query, name) {
            None => Ok(default),
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| ScimError::invalid_value(format!("'{name}' must be an integer"))),
        }
    };
    // RFC 7644 §3.4.2.4: startIndex < 1 means 1, negative count means 0.
    let start = num("startIndex", 1)?.max(1);
    let count = num("count", 100)?.max(0);
    Ok(Page {
        start_index: usize::try_from(start).unwrap_or(usize::MAX),
        count: usize::try_from(count).unwrap_or(usize::MAX).min(cap),
    })
}

/// The `filter` query parameter, parsed; a filter that does not parse is a 400 invalidFilter.
pub fn query_filter(
    query: &HashMap<String, String>,
) -> Result<Option<crate::filter::Filter>, ScimError> {
    query_ci(query, "filter")
        .map(|f| crate::filter::parse(f).map_err(|e| ScimError::bad_request("invalidFilter", e.0)))
        .transpose()
}

pub fn query_ci<'a>(query: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Builds a ListResponse from every matching resource; `count=0` answers only the total,
/// as Miro does.
pub fn list_response(all: Vec<Value>, page: &Page) -> Value {
    let total = all.len();
    if page.count == 0 {
        return json!({"schemas": [LIST_URN], "totalResults": total});
    }
    let items: Vec<Value> = all
        .into_iter()
        .skip(page.start_index - 1)
        .take(page.count)
        .collect();
    json!({
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": page.start_index,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

/// Applies `attributes=` / `excludedAttributes=` to one resource. `id` and `schemas` are
/// always returned (RFC 7643 §7 "returned: always").
pub fn project(resource: Value, query: &HashMap<String, String>) -> Value {
    let names = |param: &str| -> Option<Vec<String>> {
        query_ci(query, param).map(|s| {
            s.split(',')
                .map(top_level_name)
                .filter(|n| !n.is_empty())
                .collect()
        })
    };
    let Value::Object(mut obj) = resource else {
        return resource;
    };
    if let Some(keep) = names("attributes") {
        obj.retain(|k, _| {
            let k = k.to_ascii_lowercase();
            k == "id" || k == "schemas" || keep.contains(&k)
        });
    }
    if let Some(drop) = names("excludedAttributes") {
        obj.retain(|k, _| {
            let k = k.to_ascii_lowercase();
            k == "id" || k == "schemas" || !drop.contains(&k)
        });
    }
    Value::Object(obj)
}

/// `members.display` → `members`; `urn:…:enterprise:2.0:User:department` → the extension key;
/// `urn:…:core:2.0:User:userName` → `username`.
fn top_level_name(raw: &str) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    let ext = ENTERPRISE_URN.to_ascii_lowercase();
    if lower.starts_with(&ext) {
        return ext;
    }
    let rest = [USER_URN, GROUP_URN]
        .iter()
        .find_map(|u| {
            lower
                .strip_prefix(&format!("{}:", u.to_ascii_lowercase()))
                .map(str::to_owned)
        })
        .unwrap_or(lower);
    rest.split('.').next().unwrap_or_default().to_owned()
}

/// Loose RFC 5322 check: Miro rejects userNames that are not emails, but local parts may
/// legitimately contain quotes and backslashes.
pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
        && !domain.contains(['@', '"', '\\'])
}

pub fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
}
