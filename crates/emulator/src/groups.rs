//! The Group resource: a Miro team (legacy model) or a user group (migrated orgs).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::config::GroupModel;
use crate::error::ScimError;
use crate::filter::{self, FilterError, Token};
use crate::resource::{
    GROUP_URN, as_object, get_ci, list_response, opt_string, page, project, query_filter,
};
use crate::store::{Directory, GroupRecord};
use crate::users::{Op, parse_op, patch_operations};

/// Miro refuses group PATCHes that carry more members than this (413).
pub const MAX_MEMBERS_PER_PATCH: usize = 8000;
/// User-group names are silently truncated to this many characters.
const MAX_NAME_CHARS: usize = 60;

pub fn to_json(dir: &Directory, g: &GroupRecord, base_url: &str) -> Value {
    let members: Vec<Value> = g
        .members
        .iter()
        .filter_map(|id| dir.member(id))
        .map(|u| json!({"value": u.id, "display": u.display_name, "type": "User"}))
        .collect();
    json!({
        "schemas": [GROUP_URN],
        "id": g.id,
        "displayName": g.display_name,
        "members": members,
        "meta": {"resourceType": "Group", "location": format!("{base_url}/Groups/{}", g.id)},
    })
}

fn resolve(g: &GroupRecord, attr: &str) -> Vec<Value> {
    match attr {
        "id" => vec![json!(g.id)],
        "displayname" => vec![json!(g.display_name)],
        _ => Vec::new(),
    }
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("Group {id} not found"))
}

pub fn list(
    dir: &Directory,
    query: &HashMap<String, String>,
    cap: usize,
    base_url: &str,
) -> Result<Value, ScimError> {
    let page = page(query, cap)?;
    let filter = query_filter(query)?;
    let matching: Vec<&GroupRecord> = dir
        .groups()
        .filter(|g| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&|a| resolve(g, a)))
        })
        .collect();
    let rendered = matching
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let in_page =
                i + 1 >= page.start_index && i + 1 < page.start_index.saturating_add(page.count);
            if in_page {
                project(to_json(dir, g, base_url), query)
            } else {
                Value::Null
            }
        })
        .collect();
    Ok(list_response(rendered, &page))
}

pub fn get(
    dir: &Directory,
    id: &str,
    base_url: &str,
    query: &HashMap<String, String>,
) -> Result<Value, ScimError> {
    let g = dir.group(id).ok_or_else(|| not_found(id))?;
    Ok(project(to_json(dir, g, base_url), query))
}

fn truncate_name(name: &str) -> String {
    name.trim().chars().take(MAX_NAME_CHARS).collect()
}

fn check_unique_name(dir: &Directory, name: &str, except: Option<&str>) -> Result<(), ScimError> {
    match dir.group_by_name(name) {
        Some(g) if Some(g.id.as_str()) != except => Err(ScimError::new(
            axum::http::StatusCode::CONFLICT,
            Some("uniqueness"),
            format!("Group with displayName '{name}' already exists"),
        )),
        _ => Ok(()),
    }
}

/// POST /Groups in the user-group model.
pub fn create(dir: &mut Directory, body: &Value) -> Result<String, ScimError> {
    let obj = as_object(body)?;
    let name = opt_string(obj, "displayName")?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("Attribute 'displayName' is required"))?;
    let name = truncate_name(&name);
    check_unique_name(dir, &name, None)?;
    let members = match get_ci(obj, "members").filter(|v| !v.is_null()) {
        Some(v) => member_ids(v)?,
        None => Vec::new(),
    };
    if members.len() > MAX_MEMBERS_PER_PATCH {
        return Err(too_many_members(members.len()));
    }
    check_members_exist(dir, &members)?;
    on_add(dir, GroupModel::UserGroup, &members);
    let (seq, id) = dir.new_group_id();
    let mut unique = Vec::with_capacity(members.len());
    for m in members {
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    dir.insert_group(
        seq,
        GroupRecord {
            id: id.clone(),
            display_name: name,
            members: unique,
        },
    );
    Ok(id)
}

pub fn delete(dir: &mut Directory, id: &str) -> Result<(), ScimError> {
    dir.remove_group(id)
        .map(|_| ())
        .ok_or_else(|| not_found(id))
}

fn too_many_members(n: usize) -> ScimError {
    ScimError::too_large(format!(
        "Too many members in one request: {n} (at most {MAX_MEMBERS_PER_PATCH})"
    ))
}

/// `[{"value": id}, …]` → ids.
fn member_ids(v: &Value) -> Result<Vec<String>, ScimError> {
    let arr = v.as_array().ok_or_else(|| {
        ScimError::invalid_value("'members' value must be an array of {\"value\": id}")
    })?;
    arr.iter()
        .map(|m| {
            m.as_object()
                .and_then(|o| get_ci(o, "value"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ScimError::invalid_value("Each member must be {\"value\": \"<user id>\"}")
                })
        })
        .collect()
}

/// Unknown ids fail the whole request with Miro's 404 wording. A guest's id is known to Miro
/// (an add turns them into a member: see `on_add`), though SCIM never shows it.
fn check_members_exist(dir: &Directory, ids: &[String]) -> Result<(), ScimError> {
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| dir.user(id).is_none())
        .map(|id| format!("{{memberId={id}, display=null}}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ScimError::not_found(format!(
            "No valid resources: [{}]",
            missing.join(", ")
        )))
    }
}

/// What adding users to a group does to them (miro-scim.md §4): a deactivated user is
/// reactivated (both models); a guest or external user becomes an internal user with a Full
/// licence; in the user-group model every added user's licence becomes Full.
fn on_add(dir: &mut Directory, model: GroupModel, ids: &[String]) {
    for id in ids {
        let Some(before) = dir.user(id) else { continue };
        let mut u = before.clone();
        u.active = true;
        if u.guest {
            u.guest = false;
            u.role = crate::store::ROLE_USER.to_owned();
            u.user_type = "Full".to_owned();
        }
        if model == GroupModel::UserGroup {
            u.user_type = "Full".to_owned();
        }
        if &u != before {
            dir.update_user(u);
        }
    }
}

/// The member id in `members[value eq "ID"]` or Miro's documented unquoted `members[value eq ID]`.
fn member_filter_id(path: &str) -> Result<Option<String>, ScimError> {
    let bad = |e: FilterError| ScimError::invalid_path(&format!("{path} ({e})"));
    let tokens = filter::tokenize(path).map_err(bad)?;
    match tokens.as_slice() {
        [
            Token::Word(m),
            Token::LBracket,
            Token::Word(attr),
            Token::Word(op),
            value,
            Token::RBracket,
        ] if m.eq_ignore_ascii_case("members")
            && attr.eq_ignore_ascii_case("value")
            && op.eq_ignore_ascii_case("eq") =>
        {
            match value {
                Token::Str(s) | Token::Word(s) => Ok(Some(s.clone())),
                _ => Err(ScimError::invalid_path(path)),
            }
        }
        _ => Ok(None),
    }
}

enum GroupChange {
    Add(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
    ReplaceMembers(Vec<String>),
    Rename(String),
}

pub fn patch(
    dir: &mut Directory,
    model: GroupModel,
    id: &str,
    body: &Value,
) -> Result<(), ScimError> {
    if dir.group(id).is_none() {
        return Err(not_found(id));
    }
    let ops = patch_operations(body)?;
    // Parse and validate every operation before touching anything: Miro applies a group
    // PATCH all-or-nothing.
    let mut changes = Vec::with_capacity(ops.len());
    for op in ops {
        changes.push(parse_group_op(op)?);
    }
    let member_count: usize = changes
        .iter()
        .map(|c| match c {
            GroupChange::Add(v) | GroupChange::Remove(v) | GroupChange::ReplaceMembers(v) => {
                v.len()
            }
            _ => 0,
        })
        .sum();
    if member_count > MAX_MEMBERS_PER_PATCH {
        return Err(too_many_members(member_count));
    }
    for c in &changes {
        match c {
            GroupChange::Add(ids) | GroupChange::Remove(ids) | GroupChange::ReplaceMembers(ids) => {
                check_members_exist(dir, ids)?;
            }
            GroupChange::Rename(name) if model == GroupModel::UserGroup => {
                check_unique_name(dir, &truncate_name(name), Some(id))?;
            }
            _ => {}
        }
    }
    for c in changes {
        if let GroupChange::Add(ids) | GroupChange::ReplaceMembers(ids) = &c {
            on_add(dir, model, ids);
        }
        let Some(g) = dir.group_mut(id) else {
            return Err(not_found(id));
        };
        match c {
            GroupChange::Add(ids) => {
                for m in ids {
                    if !g.members.contains(&m) {
                        g.members.push(m);
                    }
                }
            }
            GroupChange::Remove(ids) => g.members.retain(|m| !ids.contains(m)),
            GroupChange::RemoveAll => g.members.clear(),
            GroupChange::ReplaceMembers(ids) => {
                g.members.clear();
                for m in ids {
                    if !g.members.contains(&m) {
                        g.members.push(m);
                    }
                }
            }
            GroupChange::Rename(name) => {
                g.display_name = match model {
                    GroupModel::UserGroup => truncate_name(&name),
                    GroupModel::Team => name,
                };
            }
        }
    }
    Ok(())
}

fn parse_group_op(op: &Value) -> Result<GroupChange, ScimError> {
    let (kind, path, value) = parse_op(op)?;
    let value = value.filter(|v| !v.is_null());
    let Some(path) = path else {
        // Miro documents path-less replace only for renames: {"value": {"displayName": …}}.
        let obj = value
            .and_then(Value::as_object)
            .filter(|_| kind != Op::Remove)
            .ok_or_else(|| ScimError::bad_request("noTarget", "Operation 'path' is required"))?;
        if let Some(name) = opt_string(obj, "displayName")? {
            return Ok(GroupChange::Rename(name));
        }
        return match get_ci(obj, "members") {
            Some(m) if kind == Op::Add => Ok(GroupChange::Add(member_ids(m)?)),
            Some(m) => Ok(GroupChange::ReplaceMembers(member_ids(m)?)),
            None => Err(ScimError::bad_request(
                "noTarget",
                "Nothing to change in path-less operation",
            )),
        };
    };
    if let Some(member) = member_filter_id(&path)? {
        return match kind {
            Op::Remove => Ok(GroupChange::Remove(vec![member])),
            _ => Err(ScimError::invalid_path(&path)),
        };
    }
    match (path.trim().to_ascii_lowercase().as_str(), kind) {
        ("members", Op::Add) => Ok(GroupChange::Add(member_ids(need(value, &path)?)?)),
        ("members", Op::Replace) => Ok(GroupChange::ReplaceMembers(member_ids(need(
            value, &path,
        )?)?)),
        ("members", Op::Remove) => match value {
            Some(v) => Ok(GroupChange::Remove(member_ids(v)?)),
            None => Ok(GroupChange::RemoveAll),
        },
        ("displayname", Op::Remove) => Err(ScimError::bad_request(
            "mutability",
            "displayName cannot be removed",
        )),
        ("displayname", _) => match need(value, &path)?.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(GroupChange::Rename(s.to_owned())),
            _ => Err(ScimError::invalid_value(
                "displayName must be a non-empty string",
            )),
        },
        _ => Err(ScimError::invalid_path(&path)),
    }
}

fn need<'a>(value: Option<&'a Value>, path: &str) -> Result<&'a Value, ScimError> {
    value.ok_or_else(|| ScimError::invalid_value(format!("Operation on '{path}' needs a value")))
}
