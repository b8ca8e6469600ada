//! Miro's REST API, the part scimsync uses (miro-scim.md §12): teams and their user groups under
//! `/v2/orgs/{org_id}`. Its own bearer token (`EmulatorConfig::rest_token`), its own rate
//! limit (level 1), cursor paging, and REST's error shape `{"status", "code", "message",
//! "type": "error"}`.
//!
//! In the user-group model, teams are their own records and a SCIM group (a user group) can
//! be assigned to several. In the legacy team model the SCIM groups *are* the teams: they are
//! listed as teams, and no user group exists to assign.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::GroupModel;
use crate::limits::Bucket;
use crate::stats::bump;
use crate::store::Directory;
use crate::{Emulator, TeamRecord};

/// Largest `limit` a list takes.
const MAX_LIMIT: usize = 100;

/// A REST error, shaped as Miro's.
struct RestError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl RestError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        RestError {
            status,
            code,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "notFound", message)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
            "type": "error",
        });
        (self.status, axum::Json(body)).into_response()
    }
}

pub async fn handle(State(emu): State<Emulator>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query: HashMap<String, String> = Query::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let headers = req.headers().clone();
    {
        let mut s = emu.lock();
        bump(&mut s.stats.by_bucket, Bucket::RestLevel1.name());
        bump(&mut s.stats.by_method, &format!("REST {method}"));
        s.stats.rest_requests += 1;
    }
    if let Err(e) = authorize(&emu, &headers) {
        return e.into_response();
    }
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return RestError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payloadTooLarge",
                "request body too large",
            )
            .into_response();
        }
    };
    if let Some(limits) = emu.config().limits.as_ref() {
        let mut s = emu.lock();
        if let Err(wait) = s.limiter.admit(Bucket::RestLevel1, limits, Instant::now()) {
            s.stats.rate_limited += 1;
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d + wait)
                .map(|d| d.as_secs() + 1)
                .unwrap_or_default();
            let mut resp = RestError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "tooManyRequests",
                "Request rate limit exceeded",
            )
            .into_response();
            resp.headers_mut()
                .insert("x-ratelimit-reset", HeaderValue::from(reset));
            resp.headers_mut()
                .insert("x-ratelimit-remaining", HeaderValue::from(0u64));
            return resp;
        }
    }
    let segments: Vec<&str> = path
        .trim_start_matches("/v2/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let result = route(&emu, &method, &segments, &query, &body);
    result.unwrap_or_else(IntoResponse::into_response)
}

fn authorize(emu: &Emulator, headers: &HeaderMap) -> Result<(), RestError> {
    let token = &emu.config().rest_token;
    if !token.is_empty() && crate::scim::bearer_of(headers) == Some(token.as_str()) {
        Ok(())
    } else {
        Err(RestError::new(
            StatusCode::UNAUTHORIZED,
            "tokenNotProvided",
            "No valid access token was provided",
        ))
    }
}

fn route(
    emu: &Emulator,
    method: &Method,
    segments: &[&str],
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Result<Response, RestError> {
    let cfg = emu.config();
    let ["orgs", org, rest @ ..] = segments else {
        return Err(RestError::not_found("No such endpoint"));
    };
    if *org != cfg.org_id {
        return Err(RestError::not_found(format!(
            "Organization {org} not found"
        )));
    }
    let model = cfg.group_model;
    let write = matches!(*method, Method::POST | Method::DELETE);
    let mut guard = emu.lock();
    if write {
        guard.stats.writes += 1;
    }
    let dir = &mut guard.dir;
    match (method.as_str(), rest) {
        ("GET", ["teams"]) => {
            let name = query.get("name").map(|n| n.to_lowercase());
            let teams: Vec<Value> = teams_of(dir, model)
                .into_iter()
                .filter(|t| {
                    name.as_ref()
                        .is_none_or(|n| t.name.to_lowercase().contains(n.as_str()))
                })
                .map(|t| json!({"id": t.id, "name": t.name, "type": "team"}))
                .collect();
            page(teams, query)
        }
        ("GET", ["groups"]) => {
            let groups: Vec<Value> = match model {
                GroupModel::UserGroup => dir
                    .groups()
                    .map(|g| json!({"id": g.id, "name": g.display_name, "type": "user-group"}))
                    .collect(),
                GroupModel::Team => Vec::new(),
            };
            page(groups, query)
        }
        ("GET", ["teams", team, "groups"]) => {
            let team = team_of(dir, model, team)?;
            let groups = team
                .groups
                .iter()
                .map(|g| json!({"id": g, "role": "member", "type": "team-user-group"}))
                .collect();
            page(groups, query)
        }
        ("GET", ["teams", team, "groups", group]) => {
            let team = team_of(dir, model, team)?;
            if team.groups.iter().any(|g| g == group) {
                Ok(ok(
                    StatusCode::OK,
                    json!({"id": group, "role": "member", "type": "team-user-group"}),
                ))
            } else {
                Err(RestError::not_found(format!(
                    "User group {group} is not in team {}",
                    team.id
                )))
            }
        }
        ("POST", ["teams", team, "groups"]) => {
            let body: Value = serde_json::from_slice(body).map_err(|e| {
                RestError::new(
                    StatusCode::BAD_REQUEST,
                    "invalidParameters",
                    format!("Invalid JSON: {e}"),
                )
            })?;
            let group = body
                .get("userGroupId")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    RestError::new(
                        StatusCode::BAD_REQUEST,
                        "invalidParameters",
                        "userGroupId is required",
                    )
                })?
                .to_owned();
            if body.get("role").and_then(Value::as_str) != Some("member") {
                return Err(RestError::new(
                    StatusCode::BAD_REQUEST,
                    "invalidParameters",
                    "role must be \"member\"",
                ));
            }
            if model == GroupModel::Team || dir.group(&group).is_none() {
                return Err(RestError::not_found(format!(
                    "User group {group} not found"
                )));
            }
            let team = dir
                .team_mut(team)
                .ok_or_else(|| RestError::not_found(format!("Team {team} not found")))?;
            if team.groups.contains(&group) {
                return Err(RestError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("User group {group} is already in team {}", team.id),
                ));
            }
            team.groups.push(group.clone());
            Ok(ok(
                StatusCode::CREATED,
                json!({"id": group, "role": "member", "type": "team-user-group"}),
            ))
        }
        ("DELETE", ["teams", team, "groups", group]) => {
            let team = dir
                .team_mut(team)
                .filter(|_| model == GroupModel::UserGroup)
                .ok_or_else(|| RestError::not_found(format!("Team {team} not found")))?;
            let before = team.groups.len();
            team.groups.retain(|g| g != group);
            if team.groups.len() == before {
                return Err(RestError::not_found(format!(
                    "User group {group} is not in team {}",
                    team.id
                )));
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(RestError::new(
            StatusCode::NOT_FOUND,
            "notFound",
            "No such endpoint",
        )),
    }
}

/// The org's teams: its own records, or (legacy model) its SCIM groups.
fn teams_of(dir: &Directory, model: GroupModel) -> Vec<TeamRecord> {
    match model {
        GroupModel::UserGroup => dir.teams().to_vec(),
        GroupModel::Team => dir
            .groups()
            .map(|g| TeamRecord {
                id: g.id.clone(),
                name: g.display_name.clone(),
                groups: Vec::new(),
            })
            .collect(),
    }
}

fn team_of(dir: &Directory, model: GroupModel, id: &str) -> Result<TeamRecord, RestError> {
    teams_of(dir, model)
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| RestError::not_found(format!("Team {id} not found")))
}

/// One page of a cursor-paged list: `limit` (at most 100), `cursor` the index to start at.
fn page(items: Vec<Value>, query: &HashMap<String, String>) -> Result<Response, RestError> {
    let bad = |m: &str| RestError::new(StatusCode::BAD_REQUEST, "invalidParameters", m);
    let limit = match query.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| bad("limit must be between 1 and 100"))?,
        None => MAX_LIMIT,
    };
    let start = match query.get("cursor").filter(|c| !c.is_empty()) {
        Some(c) => c.parse::<usize>().map_err(|_| bad("invalid cursor"))?,
        None => 0,
    };
    let data: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let next = start + data.len();
    let mut body = json!({"limit": limit, "size": data.len(), "data": data, "type": "cursor-list"});
    if next < items.len() {
        body["cursor"] = json!(next.to_string());
    }
    Ok(ok(StatusCode::OK, body))
}

fn ok(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}
