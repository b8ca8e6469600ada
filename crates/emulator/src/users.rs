//! The User resource with Miro's quirks: derived `emails` and `name`, frozen attributes on
//! deactivated users, invisible guests and the last-admin rule.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::config::EmulatorConfig;
use crate::error::ScimError;
use crate::filter;
use crate::resource::{
    ENTERPRISE_URN, PATCH_URN, USER_URN, as_object, domain_of, get_ci, list_response,
    looks_like_email, opt_string, page, parse_bool, project, query_filter,
};
use crate::store::{Directory, ROLE_ADMIN, ROLE_USER, UserRecord};

const ENTERPRISE_FIELDS: [&str; 5] = [
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
];

pub fn to_json(dir: &Directory, u: &UserRecord, base_url: &str) -> Value {
    // Miro keeps only the full name, so the parts are re-derived on every read.
    let (given, family) = match u.display_name.split_once(' ') {
        Some((g, f)) => (g, f),
        None => (u.display_name.as_str(), ""),
    };
    let groups: Vec<Value> = dir
        .groups_of(&u.id)
        .map(|g| json!({"value": g.id, "display": g.display_name}))
        .collect();
    let mut schemas = vec![json!(USER_URN)];
    let enterprise = u
        .attributes
        .get(ENTERPRISE_URN)
        .filter(|e| e.as_object().is_some_and(|o| !o.is_empty()));
    if enterprise.is_some() {
        schemas.push(json!(ENTERPRISE_URN));
    }
    let mut obj = json!({
        "schemas": schemas,
        "id": u.id,
        "userName": u.user_name,
        "name": {"givenName": given, "familyName": family},
        "displayName": u.display_name,
        "active": u.active,
        "userType": u.user_type,
        "emails": [{"value": u.user_name, "primary": true, "type": "work"}],
        "roles": roles_json(u),
        "groups": groups,
    });
    if let Some(lang) = &u.preferred_language {
        obj["preferredLanguage"] = json!(lang);
    }
    if let Some(e) = enterprise {
        obj[ENTERPRISE_URN] = e.clone();
    }
    obj["meta"] = json!({"resourceType": "User", "location": format!("{base_url}/Users/{}", u.id)});
    obj
}

/// The primary role, then the admin roles (miro-scim.md §3 "roles").
fn roles_json(u: &UserRecord) -> Value {
    let mut roles =
        vec![json!({"value": u.role, "type": "organization_user_role", "primary": true})];
    roles.extend(
        u.admin_roles
            .iter()
            .map(|r| json!({"value": r, "display": r, "type": ADMIN_ROLE_TYPE, "primary": false})),
    );
    Value::Array(roles)
}

/// The `type` of an admin role entry.
const ADMIN_ROLE_TYPE: &str = "organization_admin_role";

/// Miro's limits on attribute lengths (miro-scim.md §3), in characters.
const LIMITS: [(&str, usize); 5] = [
    ("employeeNumber", 20),
    ("organization", 120),
    ("department", 120),
    ("costCenter", 120),
    ("division", 120),
];
const MAX_DISPLAY_NAME: usize = 60;

/// What Miro answers a value over its limit with: a 400 naming the attribute.
fn check_limits(u: &UserRecord) -> Result<(), ScimError> {
    let over = |name: &str, value: &str, max: usize| {
        (value.chars().count() > max).then(|| {
            ScimError::invalid_value(format!(
                "Attribute '{name}' is too long: at most {max} characters"
            ))
        })
    };
    if let Some(e) = over("displayName", &u.display_name, MAX_DISPLAY_NAME) {
        return Err(e);
    }
    if let Some(ext) = u.attributes.get(ENTERPRISE_URN).and_then(Value::as_object) {
        for (field, max) in LIMITS {
            if let Some(e) = ext
                .get(field)
                .and_then(Value::as_str)
                .and_then(|v| over(field, v, max))
            {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// A licence the org has, or Miro's 400.
fn check_licence(cfg: &EmulatorConfig, t: &str) -> Result<(), ScimError> {
    if cfg.licences.iter().any(|l| l == t) {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "userType '{t}' is not a license type of the organization"
        )))
    }
}

/// An admin role the org has, or Miro's 400.
fn check_admin_role(cfg: &EmulatorConfig, role: &str) -> Result<(), ScimError> {
    if cfg.admin_roles.iter().any(|r| r == role) {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "Role '{role}' is not an admin role of the organization"
        )))
    }
}

/// Values at a lower-cased attribute path, for filter evaluation.
fn resolve(dir: &Directory, u: &UserRecord, attr: &str) -> Vec<Value> {
    let ent = format!("{}:", ENTERPRISE_URN.to_ascii_lowercase());
    let one = |v: Value| vec![v];
    match attr {
        "id" => one(json!(u.id)),
        "username" | "emails" | "emails.value" => one(json!(u.user_name)),
        "displayname" => one(json!(u.display_name)),
        "active" => one(json!(u.active)),
        "usertype" => one(json!(u.user_type)),
        "roles" | "roles.value" => std::iter::once(json!(u.role))
            .chain(u.admin_roles.iter().map(|r| json!(r)))
            .collect(),
        "preferredlanguage" => u.preferred_language.iter().map(|l| json!(l)).collect(),
        "groups" | "groups.value" => dir.groups_of(&u.id).map(|g| json!(g.id)).collect(),
        "groups.display" => dir
            .groups_of(&u.id)
            .map(|g| json!(g.display_name))
            .collect(),
        other => match other.strip_prefix(&ent) {
            Some(field) => enterprise_value(u, field).into_iter().collect(),
            // externalId and every other attribute Miro does not store match nothing.
            None => Vec::new(),
        },
    }
}

fn enterprise_value(u: &UserRecord, field: &str) -> Option<Value> {
    let ext = u.attributes.get(ENTERPRISE_URN)?.as_object()?;
    let (head, sub) = field.split_once('.').unwrap_or((field, ""));
    let v = get_ci(ext, head)?;
    if sub.is_empty() {
        Some(v.clone())
    } else {
        v.as_object().and_then(|o| get_ci(o, sub)).cloned()
    }
}

pub fn list(
    dir: &Directory,
    query: &HashMap<String, String>,
    cap: usize,
    base_url: &str,
) -> Result<Value, ScimError> {
    let page = page(query, cap)?;
    let filter = query_filter(query)?;
    let matching: Vec<&UserRecord> = match filter.as_ref().and_then(filter::Filter::as_user_name_eq)
    {
        // The hot lookup of an incremental sync; answered from the index.
        Some(name) => dir
            .user_by_name(name)
            .filter(|u| !u.guest)
            .into_iter()
            .collect(),
        None => dir
            .members()
            .filter(|u| {
                filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&|a| resolve(dir, u, a)))
            })
            .collect(),
    };
    // Only the requested page is rendered: rendering looks up each user's teams.
    let total = matching.len();
    let mut rendered: Vec<Value> = Vec::with_capacity(total);
    for (i, u) in matching.into_iter().enumerate() {
        let in_page =
            i + 1 >= page.start_index && i + 1 < page.start_index.saturating_add(page.count);
        rendered.push(if in_page {
            project(to_json(dir, u, base_url), query)
        } else {
            Value::Null
        });
    }
    Ok(list_response(rendered, &page))
}

/// The roles of a `roles` array: the one organization_user_role, and the admin roles
/// (`organization_admin_role`, each one the org has).
fn parse_roles(
    cfg: &EmulatorConfig,
    v: &Value,
) -> Result<(Option<String>, Vec<String>), ScimError> {
    let Some(roles) = v.as_array() else {
        return Err(ScimError::invalid_value(
            "Attribute 'roles' must be an array",
        ));
    };
    let mut found = None;
    let mut admin = Vec::new();
    for r in roles {
        let Some(obj) = r.as_object() else { continue };
        let value = opt_string(obj, "value")?.unwrap_or_default();
        let kind = opt_string(obj, "type")?.unwrap_or_default();
        if kind == ADMIN_ROLE_TYPE {
            check_admin_role(cfg, &value)?;
            if !admin.contains(&value) {
                admin.push(value);
            }
        } else if value == ROLE_USER || value == ROLE_ADMIN {
            found = Some(value);
        } else {
            return Err(ScimError::invalid_value(format!(
                "Role '{value}' is not supported"
            )));
        }
    }
    Ok((found, admin))
}

fn check_role(value: &Value) -> Result<String, ScimError> {
    match value.as_str() {
        Some(r) if r == ROLE_USER || r == ROLE_ADMIN => Ok(r.to_owned()),
        _ => Err(ScimError::invalid_value(format!(
            "Role '{value}' is not supported"
        ))),
    }
}

/// Normalises an enterprise extension object to the fields Miro stores.
fn parse_enterprise(v: &Value) -> Result<Map<String, Value>, ScimError> {
    let Some(src) = v.as_object() else {
        return Err(ScimError::invalid_value(
            "The enterprise extension must be an object",
        ));
    };
    let mut out = Map::new();
    for field in ENTERPRISE_FIELDS {
        if let Some(s) = opt_string(src, field)? {
            out.insert(field.to_owned(), json!(s));
        }
    }
    if let Some(m) = get_ci(src, "manager").filter(|m| !m.is_null()) {
        set_manager(&mut out, m)?;
    }
    Ok(out)
}

fn set_manager(ext: &mut Map<String, Value>, m: &Value) -> Result<(), ScimError> {
    let Some(obj) = m.as_object() else {
        return Err(ScimError::invalid_value(
            "Attribute 'manager' must be an object",
        ));
    };
    let mut manager = Map::new();
    if let Some(v) = opt_string(obj, "value")?.filter(|v| is_numeric_id(v)) {
        manager.insert("value".into(), json!(v));
    }
    if let Some(d) = opt_string(obj, "displayName")? {
        manager.insert("displayName".into(), json!(d));
    }
    if manager.is_empty() {
        ext.remove("manager");
    } else {
        ext.insert("manager".into(), Value::Object(manager));
    }
    Ok(())
}

/// Miro keeps manager.value only when it is one of its numeric user ids.
fn is_numeric_id(v: &str) -> bool {
    !v.is_empty() && v.chars().all(|c| c.is_ascii_digit())
}

/// Display-name precedence Miro documents: displayName → name.formatted →
/// givenName + " " + familyName → userName.
fn display_name(obj: &Map<String, Value>, user_name: &str) -> Result<String, ScimError> {
    if let Some(d) = opt_string(obj, "displayName")?.filter(|d| !d.trim().is_empty()) {
        return Ok(d);
    }
    if let Some(name) = get_ci(obj, "name").and_then(Value::as_object) {
        if let Some(f) = opt_string(name, "formatted")?.filter(|f| !f.trim().is_empty()) {
            return Ok(f);
        }
        let given = opt_string(name, "givenName")?.unwrap_or_default();
        let family = opt_string(name, "familyName")?.unwrap_or_default();
        let joined = format!("{given} {family}").trim().to_owned();
        if !joined.is_empty() {
            return Ok(joined);
        }
    }
    Ok(user_name.to_owned())
}

fn required_user_name(obj: &Map<String, Value>) -> Result<String, ScimError> {
    let name = opt_string(obj, "userName")?
        .ok_or_else(|| ScimError::invalid_value("Attribute 'userName' is required"))?;
    validate_user_name(&name)?;
    Ok(name)
}

fn validate_user_name(name: &str) -> Result<(), ScimError> {
    if looks_like_email(name) {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "User name '{name}' is invalid: 'not an email'"
        )))
    }
}

fn check_domain(cfg: &EmulatorConfig, email: &str) -> Result<(), ScimError> {
    match &cfg.allowed_domains {
        Some(allowed)
            if !allowed
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain_of(email))) =>
        {
            Err(ScimError::conflict(format!("{email} is not whitelisted")))
        }
        _ => Ok(()),
    }
}

fn guest_error(email: &str) -> ScimError {
    ScimError::not_found(format!(
        "User {email} is a guest or external user of the organization"
    ))
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("User {id} not found"))
}

fn deactivated(id: &str) -> ScimError {
    ScimError::conflict(format!(
        "User {id} is deactivated: userName, userType and roles cannot be changed until it is reactivated"
    ))
}

fn last_admin() -> ScimError {
    ScimError::conflict("Cannot deactivate or delete the last admin of the organization")
}

pub fn create(
    dir: &mut Directory,
    cfg: &EmulatorConfig,
    body: &Value,
) -> Result<String, ScimError> {
    let obj = as_object(body)?;
    let user_name = required_user_name(obj)?;
    if let Some(existing) = dir.user_by_name(&user_name) {
        return Err(if existing.guest {
            guest_error(&user_name)
        } else {
            ScimError::not_unique(&user_name)
        });
    }
    check_domain(cfg, &user_name)?;
    let active = get_ci(obj, "active")
        .filter(|v| !v.is_null())
        .map(|v| parse_bool(v, "active"))
        .transpose()?;
    let active = active.unwrap_or(true);
    if let Some(max) = cfg.max_full_users
        && active
        && dir.members().filter(|u| u.active).count() >= max
    {
        return Err(ScimError::conflict(
            "Full users limit reached for organization",
        ));
    }
    let (role, admin_roles) = get_ci(obj, "roles")
        .filter(|v| !v.is_null())
        .map(|v| parse_roles(cfg, v))
        .transpose()?
        .unwrap_or_default();
    let user_type = opt_string(obj, "userType")?.unwrap_or_else(|| "Full".to_owned());
    check_licence(cfg, &user_type)?;
    if let Some(name) = get_ci(obj, "name").and_then(Value::as_object) {
        let given = opt_string(name, "givenName")?.unwrap_or_default();
        let family = opt_string(name, "familyName")?.unwrap_or_default();
        if given.chars().count() + family.chars().count() > MAX_DISPLAY_NAME {
            return Err(ScimError::invalid_value(format!(
                "Attributes 'name.givenName' and 'name.familyName' are too long together: at most {MAX_DISPLAY_NAME} characters"
            )));
        }
    }
    let mut attributes = json!({});
    if let Some(e) = get_ci(obj, ENTERPRISE_URN).filter(|v| !v.is_null()) {
        attributes[ENTERPRISE_URN] = Value::Object(parse_enterprise(e)?);
    }
    let (seq, id) = dir.new_user_id();
    let user = UserRecord {
        id: id.clone(),
        display_name: display_name(obj, &user_name)?,
        user_name,
        active,
        guest: false,
        role: role.unwrap_or_else(|| ROLE_USER.to_owned()),
        user_type,
        admin_roles,
        preferred_language: opt_string(obj, "preferredLanguage")?,
        attributes,
    };
    check_limits(&user)?;
    dir.insert_user(seq, user);
    Ok(id)
}

pub fn replace(
    dir: &mut Directory,
    cfg: &EmulatorConfig,
    id: &str,
    body: &Value,
) -> Result<(), ScimError> {
    let old = dir.member(id).ok_or_else(|| not_found(id))?.clone();
    let obj = as_object(body)?;
    let user_name = required_user_name(obj)?;
    let active = get_ci(obj, "active")
        .filter(|v| !v.is_null())
        .map(|v| parse_bool(v, "active"))
        .transpose()?;
    let mut new = old.clone();
    new.active = active.unwrap_or(old.active);
    new.display_name = display_name(obj, &user_name)?;
    new.user_name = user_name;
    if let Some(t) = opt_string(obj, "userType")? {
        check_licence(cfg, &t)?;
        if !upgrade_or_same(&old.user_type, &t) {
            return Err(downgrade(&old.user_type, &t));
        }
        new.user_type = t;
    }
    if let Some((role, admin)) = get_ci(obj, "roles")
        .filter(|v| !v.is_null())
        .map(|v| parse_roles(cfg, v))
        .transpose()?
    {
        if let Some(r) = role {
            new.role = r;
        }
        new.admin_roles = admin;
    }
    new.preferred_language = opt_string(obj, "preferredLanguage")?;
    new.attributes = json!({});
    if let Some(e) = get_ci(obj, ENTERPRISE_URN).filter(|v| !v.is_null()) {
        new.attributes[ENTERPRISE_URN] = Value::Object(parse_enterprise(e)?);
    }
    // A PUT that reactivates may also change the frozen attributes: it applies in that order.
    if !old.active && !new.active && frozen_changed(&old, &new) {
        return Err(deactivated(id));
    }
    commit(dir, cfg, &old, new)
}

fn frozen_changed(old: &UserRecord, new: &UserRecord) -> bool {
    old.user_name != new.user_name
        || old.user_type != new.user_type
        || old.role != new.role
        || old.admin_roles != new.admin_roles
}

/// A licence change a PATCH or PUT may make: "userType (license) cannot be downgraded using
/// this operation"; the only way is up, to Full.
fn upgrade_or_same(old: &str, new: &str) -> bool {
    old == new || new == "Full"
}

fn downgrade(old: &str, new: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "userType (license) cannot be downgraded using this operation: {old} -> {new}"
    ))
}

/// Checks that need the whole directory, then stores the new version.
fn commit(
    dir: &mut Directory,
    cfg: &EmulatorConfig,
    old: &UserRecord,
    new: UserRecord,
) -> Result<(), ScimError> {
    if new.user_name != old.user_name {
        if dir
            .user_by_name(&new.user_name)
            .is_some_and(|o| o.id != old.id)
        {
            return Err(ScimError::not_unique(&new.user_name));
        }
        if !domain_of(&new.user_name).eq_ignore_ascii_case(domain_of(&old.user_name)) {
            check_domain(cfg, &new.user_name)?;
        }
    }
    if old.active
        && old.role == ROLE_ADMIN
        && !new.active
        && dir.active_admins().all(|a| a.id == old.id)
    {
        return Err(last_admin());
    }
    check_limits(&new)?;
    dir.update_user(new);
    Ok(())
}

pub fn delete(dir: &mut Directory, id: &str) -> Result<(), ScimError> {
    let user = dir.member(id).ok_or_else(|| not_found(id))?;
    if user.active && user.role == ROLE_ADMIN && dir.active_admins().all(|a| a.id == id) {
        return Err(last_admin());
    }
    dir.remove_user(id);
    Ok(())
}

/// Checks the PatchOp envelope and returns its operations.
pub fn patch_operations(body: &Value) -> Result<&Vec<Value>, ScimError> {
    let obj = as_object(body)?;
    let schemas_ok = get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(PATCH_URN)));
    if !schemas_ok {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            format!("'schemas' must contain {PATCH_URN}"),
        ));
    }
    get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::bad_request("invalidSyntax", "'Operations' must be an array"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// Reads one operation: its op (any case, as Miro accepts), its path, and its value.
pub fn parse_op(op: &Value) -> Result<(Op, Option<String>, Option<&Value>), ScimError> {
    let obj = op.as_object().ok_or_else(|| {
        ScimError::bad_request("invalidSyntax", "Each operation must be an object")
    })?;
    let kind = match opt_string(obj, "op")?
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        other => {
            return Err(ScimError::bad_request(
                "invalidSyntax",
                format!("Unsupported operation '{}'", other.unwrap_or("")),
            ));
        }
    };
    let path = opt_string(obj, "path")?.filter(|p| !p.trim().is_empty());
    Ok((kind, path, get_ci(obj, "value")))
}

/// Lower-cases a path and drops whitespace and quotes so `roles[primary eq "true"].value`
/// and `roles[primary eq true].value` compare equal.
fn normalise_path(path: &str) -> String {
    path.chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect::<String>()
        .to_ascii_lowercase()
}

pub fn patch(
    dir: &mut Directory,
    cfg: &EmulatorConfig,
    id: &str,
    body: &Value,
) -> Result<(), ScimError> {
    let old = dir.member(id).ok_or_else(|| not_found(id))?.clone();
    let ops = patch_operations(body)?;
    // Every op is applied to a copy; the directory changes only if all of them succeed.
    let mut u = old.clone();
    for op in ops {
        let (kind, path, value) = parse_op(op)?;
        let Some(path) = path else {
            return Err(ScimError::bad_request(
                "noTarget",
                "Operation 'path' is required for Users",
            ));
        };
        apply_user_op(cfg, &mut u, kind, &path, value)?;
    }
    // Miro documents that userName, userType and roles cannot change while a user is
    // deactivated, and not that a PATCH reactivating them applies that first: the emulator
    // holds the stricter reading, so a client must reactivate, then update.
    if !old.active && frozen_changed(&old, &u) {
        return Err(deactivated(id));
    }
    commit(dir, cfg, &old, u)
}

fn apply_user_op(
    cfg: &EmulatorConfig,
    u: &mut UserRecord,
    kind: Op,
    path: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let norm = normalise_path(path);
    if norm.starts_with("emails") {
        return Err(ScimError::bad_request(
            "invalidPath",
            "Attribute emails does not have a multi-valued or complex value",
        ));
    }
    let need = || {
        value
            .filter(|v| !v.is_null())
            .ok_or_else(|| ScimError::invalid_value(format!("Operation on '{path}' needs a value")))
    };
    let need_str = || -> Result<String, ScimError> {
        need()?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ScimError::invalid_value(format!("Value for '{path}' must be a string")))
    };
    let no_remove = || -> Result<(), ScimError> {
        if kind == Op::Remove {
            Err(ScimError::bad_request(
                "mutability",
                format!("Attribute '{path}' cannot be removed"),
            ))
        } else {
            Ok(())
        }
    };
    let ent_prefix = ENTERPRISE_URN.to_ascii_lowercase();
    match norm.as_str() {
        "active" => {
            no_remove()?;
            u.active = parse_bool(need()?, "active")?;
        }
        "username" => {
            no_remove()?;
            let name = need_str()?;
            validate_user_name(&name)?;
            if !u.active && name != u.user_name {
                return Err(deactivated(&u.id));
            }
            u.user_name = name;
        }
        "displayname" => {
            no_remove()?;
            u.display_name = need_str()?;
        }
        // Miro stores only the full name; the parts are accepted so standard clients work.
        "name.givenname" | "name.familyname" => {
            if kind != Op::Remove {
                need_str()?;
            }
        }
        "usertype" => {
            no_remove()?;
            let t = need_str()?;
            if !u.active && t != u.user_type {
                return Err(deactivated(&u.id));
            }
            check_licence(cfg, &t)?;
            if !upgrade_or_same(&u.user_type, &t) {
                return Err(downgrade(&u.user_type, &t));
            }
            u.user_type = t;
        }
        // `Add` of admin role entries (Miro documents `Add` on `roles` for them).
        "roles" if kind == Op::Add => {
            let (primary, admin) = parse_roles(cfg, need()?)?;
            let changes = primary.as_ref().is_some_and(|p| p != &u.role)
                || admin.iter().any(|r| !u.admin_roles.contains(r));
            if !u.active && changes {
                return Err(deactivated(&u.id));
            }
            if let Some(p) = primary {
                u.role = p;
            }
            for role in admin {
                if !u.admin_roles.contains(&role) {
                    u.admin_roles.push(role);
                }
            }
        }
        p if kind == Op::Remove && p.starts_with("roles[valueeq") && p.ends_with(']') => {
            // `roles[value eq "Content Admin"]`: the quotes and spaces are gone from `p`; the
            // value is read from the path as sent.
            let role = path
                .split_once("eq")
                .map(|(_, v)| v.trim().trim_end_matches(']').trim().trim_matches('"'))
                .unwrap_or_default()
                .replace("\\\"", "\"");
            if role == ROLE_ADMIN || role == ROLE_USER {
                return Err(ScimError::bad_request(
                    "mutability",
                    "The organization_user_role cannot be removed",
                ));
            }
            if u.admin_roles.contains(&role) {
                if !u.active {
                    return Err(deactivated(&u.id));
                }
                u.admin_roles.retain(|r| r != &role);
            }
        }
        "preferredlanguage" => {
            u.preferred_language = if kind == Op::Remove {
                None
            } else {
                Some(need_str()?)
            };
        }
        "roles[primaryeqtrue].value" => {
            no_remove()?;
            let role = check_role(need()?)?;
            if !u.active && role != u.role {
                return Err(deactivated(&u.id));
            }
            u.role = role;
        }
        p if p == ent_prefix => {
            if kind == Op::Remove {
                u.attributes = json!({});
            } else {
                let incoming = parse_enterprise(need()?)?;
                let ext = enterprise_mut(u);
                for (k, v) in incoming {
                    ext.insert(k, v);
                }
            }
        }
        p if p.starts_with(&format!("{ent_prefix}:")) => {
            let field = &p[ent_prefix.len() + 1..];
            apply_enterprise_op(u, kind, field, value, path)?;
        }
        _ => return Err(ScimError::invalid_path(path)),
    }
    Ok(())
}

fn enterprise_mut(u: &mut UserRecord) -> &mut Map<String, Value> {
    if !u.attributes.is_object() {
        u.attributes = json!({});
    }
    let slot = &mut u.attributes[ENTERPRISE_URN];
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("slot was just made an object"),
    }
}

fn apply_enterprise_op(
    u: &mut UserRecord,
    kind: Op,
    field: &str,
    value: Option<&Value>,
    path: &str,
) -> Result<(), ScimError> {
    let value = value.filter(|v| !v.is_null());
    let ext = enterprise_mut(u);
    if let Some(name) = ENTERPRISE_FIELDS
        .iter()
        .find(|f| f.eq_ignore_ascii_case(field))
    {
        match (kind, value) {
            (Op::Remove, _) => {
                ext.remove(*name);
            }
            (_, Some(Value::String(s))) => {
                ext.insert((*name).to_owned(), json!(s));
            }
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "Value for '{path}' must be a string"
                )));
            }
        }
        return Ok(());
    }
    let mut manager = ext
        .get("manager")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match (field, kind) {
        ("manager", Op::Remove) => manager.clear(),
        ("manager", _) => {
            let mut tmp = Map::new();
            set_manager(
                &mut tmp,
                value.ok_or_else(|| ScimError::invalid_value("manager needs a value"))?,
            )?;
            manager = tmp
                .get("manager")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
        }
        ("manager.value", Op::Remove) => {
            manager.remove("value");
        }
        ("manager.value", _) => match value.and_then(Value::as_str) {
            Some(v) if is_numeric_id(v) => {
                manager.insert("value".into(), json!(v));
            }
            Some(_) => {} // Miro ignores non-numeric manager ids.
            None => {
                return Err(ScimError::invalid_value(format!(
                    "Value for '{path}' must be a string"
                )));
            }
        },
        ("manager.displayname", Op::Remove) => {
            manager.remove("displayName");
        }
        ("manager.displayname", _) => match value.and_then(Value::as_str) {
            Some(d) => {
                manager.insert("displayName".into(), json!(d));
            }
            None => {
                return Err(ScimError::invalid_value(format!(
                    "Value for '{path}' must be a string"
                )));
            }
        },
        _ => return Err(ScimError::invalid_path(path)),
    }
    if manager.is_empty() {
        ext.remove("manager");
    } else {
        ext.insert("manager".into(), Value::Object(manager));
    }
    Ok(())
}

pub fn get(
    dir: &Directory,
    id: &str,
    base_url: &str,
    query: &HashMap<String, String>,
) -> Result<Value, ScimError> {
    let u = dir.member(id).ok_or_else(|| not_found(id))?;
    Ok(project(to_json(dir, u, base_url), query))
}
