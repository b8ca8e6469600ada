//! The SCIM entry point: auth, body limits, rate limits and injected faults in front of the
//! User and Group handlers, in the order a real gateway would apply them.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::Value;
use tokio::time::Instant;

use crate::config::GroupModel;
use crate::error::{ScimError, method_not_allowed, scim_json};
use crate::limits::{Bucket, Route};
use crate::stats::bump;
use crate::{Emulator, discovery, faults, groups, users};

/// Miro rejects request bodies above this size with 413.
pub const MAX_BODY_BYTES: usize = 800_000;

pub async fn handle(State(emu): State<Emulator>, req: Request) -> Response {
    let base_path = emu.config().base_path.trim_end_matches('/').to_owned();
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(&base_path) else {
        return ScimError::not_found(format!("No resource at {path}")).into_response();
    };
    let rest = rest.to_owned();
    let route = route_of(&rest);
    let method = req.method().clone();
    let query: HashMap<String, String> = Query::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let base_url = format!(
        "http://{}{base_path}",
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
    );

    let latency = {
        let mut s = emu.lock();
        s.stats.requests += 1;
        bump(&mut s.stats.by_method, method.as_str());
        s.faults.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Err(e) = authorize(&emu, req.headers()) {
        return e.into_response();
    }
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ScimError::too_large(format!("Request body exceeds {MAX_BODY_BYTES} bytes"))
                .into_response();
        }
    };
    let bucket = Bucket::classify(&method, &route, body.len());

    // Rate limit first, then faults: a request an injected fault answers still used budget.
    let drop_after = {
        let mut guard = emu.lock();
        let s = &mut *guard;
        bump(&mut s.stats.by_bucket, bucket.map_or("other", Bucket::name));
        if let (Some(b), Some(limits)) = (bucket, emu.config().limits.as_ref()) {
            match s.limiter.admit(b, limits, Instant::now()) {
                Ok(in_window) => {
                    let max = s
                        .stats
                        .max_in_window
                        .entry(b.name().to_owned())
                        .or_default();
                    *max = (*max).max(in_window as u64);
                }
                Err(wait) => {
                    s.stats.rate_limited += 1;
                    let secs = limits
                        .retry_after
                        .then(|| wait.as_secs_f64().ceil().max(1.0) as u64);
                    return ScimError::too_many_requests(secs).into_response();
                }
            }
        }
        if s.faults.burst_429 > 0 {
            s.faults.burst_429 -= 1;
            s.stats.injected_429 += 1;
            return ScimError::too_many_requests(s.faults.retry_after_secs).into_response();
        }
        if s.faults.error_rate > 0.0 && s.rng.random::<f64>() < s.faults.error_rate {
            s.stats.injected_errors += 1;
            let status = if s.rng.random::<bool>() {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return ScimError::new(status, None, "Injected fault: unexpected error")
                .into_response();
        }
        if s.faults.drop_rate > 0.0 && s.rng.random::<f64>() < s.faults.drop_rate {
            s.stats.dropped += 1;
            if !(s.faults.drop_after_apply && is_write(&method)) {
                return faults::dropped_connection();
            }
            true
        } else {
            false
        }
    };

    let response = dispatch(
        &emu, &method, &route, &rest, &headers, &query, &body, &base_url,
    );
    if drop_after {
        faults::dropped_connection()
    } else {
        response
    }
}

fn is_write(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

fn route_of(rest: &str) -> Route {
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        [r] if r.eq_ignore_ascii_case("Users") => Route::Users,
        [r, id] if r.eq_ignore_ascii_case("Users") && !id.is_empty() => {
            Route::User((*id).to_owned())
        }
        [r] if r.eq_ignore_ascii_case("Groups") => Route::Groups,
        [r, id] if r.eq_ignore_ascii_case("Groups") && !id.is_empty() => {
            Route::Group((*id).to_owned())
        }
        _ if discovery::is_discovery(rest) => Route::Discovery,
        _ => Route::Unknown,
    }
}

fn authorize(emu: &Emulator, headers: &HeaderMap) -> Result<(), ScimError> {
    {
        let mut s = emu.lock();
        if s.faults.fail_auth {
            return Err(ScimError::unauthorized());
        }
        if s.faults
            .refuse_after_writes
            .is_some_and(|n| s.stats.writes >= n)
        {
            s.stats.refused += 1;
            return Err(if s.faults.refuse_forbidden {
                ScimError::forbidden()
            } else {
                ScimError::unauthorized()
            });
        }
    }
    let token = &emu.config().token;
    if token.is_empty() {
        return Ok(());
    }
    if bearer_of(headers) == Some(token.as_str()) {
        Ok(())
    } else {
        Err(ScimError::unauthorized())
    }
}

/// The bearer token of a request's Authorization header.
pub(crate) fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

/// POST/PUT/PATCH bodies must be SCIM or plain JSON.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ScimError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime != "application/scim+json" && mime != "application/json" {
        return Err(ScimError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            format!("Unsupported media type '{ct}'"),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ScimError::bad_request("invalidSyntax", format!("Invalid JSON: {e}")))
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    emu: &Emulator,
    method: &Method,
    route: &Route,
    rest: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &Bytes,
    base_url: &str,
) -> Response {
    let cfg = emu.config();
    let model = cfg.group_model;
    let m = method.as_str();
    let allowed = match (route, m) {
        (Route::Users, "GET" | "POST") | (Route::User(_), "GET" | "PUT" | "PATCH" | "DELETE") => {
            true
        }
        (Route::Groups, "GET") | (Route::Group(_), "GET" | "PATCH") => true,
        (Route::Groups, "POST") | (Route::Group(_), "DELETE") => model == GroupModel::UserGroup,
        (Route::Discovery, "GET") => true,
        (Route::Unknown, _) => {
            return ScimError::not_found(format!("No resource at {rest}")).into_response();
        }
        _ => false,
    };
    if !allowed {
        return method_not_allowed();
    }
    if is_write(method) {
        emu.lock().stats.writes += 1;
    }
    let parsed = if matches!(m, "POST" | "PUT" | "PATCH") {
        match json_body(headers, body) {
            Ok(v) => Some(v),
            Err(e) => return e.into_response(),
        }
    } else {
        None
    };
    let body = parsed.unwrap_or(Value::Null);
    let mut guard = emu.lock();
    let dir = &mut guard.dir;
    let result: Result<Response, ScimError> = match (route, m) {
        (Route::Users, "GET") => users::list(dir, query, cfg.page_cap, base_url).map(ok),
        (Route::Users, "POST") => users::create(dir, cfg, &body).and_then(|id| {
            let v = users::get(dir, &id, base_url, &HashMap::new())?;
            Ok(created(&v))
        }),
        (Route::User(id), "GET") => users::get(dir, id, base_url, query).map(ok),
        (Route::User(id), "PUT") => users::replace(dir, cfg, id, &body)
            .and_then(|()| users::get(dir, id, base_url, &HashMap::new()).map(ok)),
        (Route::User(id), "PATCH") => users::patch(dir, cfg, id, &body)
            .and_then(|()| users::get(dir, id, base_url, &HashMap::new()).map(ok)),
        (Route::User(id), "DELETE") => users::delete(dir, id).map(|()| no_content()),
        (Route::Groups, "GET") => groups::list(dir, query, cfg.page_cap, base_url).map(ok),
        (Route::Groups, "POST") => groups::create(dir, &body).and_then(|id| {
            let v = groups::get(dir, &id, base_url, &HashMap::new())?;
            Ok(created(&v))
        }),
        (Route::Group(id), "GET") => groups::get(dir, id, base_url, query).map(ok),
        (Route::Group(id), "PATCH") => groups::patch(dir, model, id, &body)
            .and_then(|()| groups::get(dir, id, base_url, &HashMap::new()).map(ok)),
        (Route::Group(id), "DELETE") => groups::delete(dir, id).map(|()| no_content()),
        _ => discovery::get(rest, base_url).map(ok),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn ok(v: Value) -> Response {
    scim_json(StatusCode::OK, &v)
}

fn created(v: &Value) -> Response {
    let mut resp = scim_json(StatusCode::CREATED, v);
    if let Some(loc) = v["meta"]["location"]
        .as_str()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

fn no_content() -> Response {
    (StatusCode::NO_CONTENT, Body::empty()).into_response()
}
