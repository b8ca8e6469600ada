//! The SCIM entry point: auth, body limits, rate limits and injected faults in front of the
//! User and Group handlers, in the order a real gateway would apply them.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::Value;
use std::time::SystemTime;
use tokio::time::Instant;

use crate::config::GroupModel;
use crate::error::{ScimError, method_not_allowed, scim_json};
use crate::limits::{self, Bucket, Route};
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
        log_request(&emu, &method, &rest, e.status.as_u16(), None, None);
        return e.into_response();
    }
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            log_request(&emu, &method, &rest, 413, None, None);
            return ScimError::too_large(format!("Request body exceeds {MAX_BODY_BYTES} bytes"))
                .into_response();
        }
    };
    let bucket = Bucket::classify(&method, &route, body.len());
    let write = is_write(&method);
    let user_name = (method == Method::POST && route == Route::Users)
        .then(|| {
            serde_json::from_slice::<Value>(&body)
                .ok()?
                .get("userName")?
                .as_str()
                .map(str::to_owned)
        })
        .flatten();
    let record = |fault: Option<&str>, status: u16, applied: bool| {
        let mut s = emu.lock();
        if emu.config().record_requests {
            s.requests.push(crate::RequestRecord {
                method: method.to_string(),
                path: rest.clone(),
                status,
                applied,
                fault: fault.map(str::to_owned),
                user_name: user_name.clone(),
            });
        }
    };

    // Rate limit first, then faults: a request an injected fault answers still used budget.
    let mut quota: Option<HeaderMap> = None;
    let decided = {
        let mut guard = emu.lock();
        let s = &mut *guard;
        bump(&mut s.stats.by_bucket, bucket.map_or("other", Bucket::name));
        if let (Some(b), Some(limits)) = (bucket, s.limits.clone()) {
            let now = Instant::now();
            let budget = b.budget(&limits);
            match s.limiter.admit(b, &limits, now) {
                Ok(in_window) => {
                    let max = s
                        .stats
                        .max_in_window
                        .entry(b.name().to_owned())
                        .or_default();
                    *max = (*max).max(in_window as u64);
                    if limits.rate_limit_headers {
                        let left =
                            budget.saturating_sub(u32::try_from(in_window).unwrap_or(u32::MAX));
                        let reset_in = s.limiter.reset_in(b, &limits, now);
                        quota = Some(limits::quota_headers(
                            budget,
                            left,
                            reset_in,
                            SystemTime::now(),
                        ));
                    }
                }
                Err(wait) => {
                    s.stats.rate_limited += 1;
                    let mut response = ScimError::too_many_requests(None).into_response();
                    let headers = response.headers_mut();
                    if limits.retry_after {
                        let value = limits::retry_after(
                            wait,
                            limits.retry_after_http_date,
                            SystemTime::now(),
                        );
                        headers.insert(header::RETRY_AFTER, value);
                    }
                    if limits.rate_limit_headers {
                        headers.extend(limits::quota_headers(budget, 0, wait, SystemTime::now()));
                    }
                    drop(guard);
                    record(Some("429"), 429, false);
                    return response;
                }
            }
        }
        decide(s, write)
    };
    let after = match decided {
        Decided::Answer(fault, response) => {
            record(Some(fault), response.status().as_u16(), false);
            // An injected fault still used budget: its answer says what is left.
            return with_quota(response, quota);
        }
        Decided::Serve(after) => after,
    };

    let response = dispatch(
        &emu, &method, &route, &rest, &headers, &query, &body, &base_url,
    );
    let status = response.status().as_u16();
    match after {
        After::Answer => {
            record(None, status, true);
            with_quota(response, quota)
        }
        After::Drop => {
            record(Some("drop"), status, true);
            faults::dropped_connection()
        }
        After::Oversized { bytes, chunked } => {
            record(Some("oversized"), status, true);
            faults::oversized(response, bytes, chunked).await
        }
        After::Slow(over) => {
            record(Some("slow"), status, true);
            faults::slow(response, over).await
        }
    }
}

/// What the fault draw decided before the handler.
enum Decided {
    /// Answered without the handler (not applied): the fault's name and the answer.
    Answer(&'static str, Response),
    Serve(After),
}

/// What happens to the handler's answer.
enum After {
    Answer,
    Drop,
    Oversized { bytes: u64, chunked: bool },
    Slow(std::time::Duration),
}

/// Draws at most one fault for a request (see `Faults` for the order).
fn decide(s: &mut crate::Shared, write: bool) -> Decided {
    if s.faults.burst_429 > 0 {
        s.faults.burst_429 -= 1;
        s.stats.injected_429 += 1;
        return Decided::Answer(
            "429",
            ScimError::too_many_requests(s.faults.retry_after_secs).into_response(),
        );
    }
    if s.faults.writes_only && !write {
        return Decided::Serve(After::Answer);
    }
    let faults = s.faults.clone();
    let mut draw = |rate: f64| rate > 0.0 && s.rng.random::<f64>() < rate;
    if draw(faults.error_rate) {
        s.stats.injected_errors += 1;
        let status = if s.rng.random::<bool>() {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Decided::Answer(
            "5xx",
            ScimError::new(status, None, "Injected fault: unexpected error").into_response(),
        );
    }
    if draw(faults.html_rate) {
        s.stats.injected_html += 1;
        return Decided::Answer("html", faults::html_page());
    }
    if draw(faults.drop_rate) {
        s.stats.dropped += 1;
        if !(faults.drop_after_apply && write) {
            return Decided::Answer("drop", faults::dropped_connection());
        }
        return Decided::Serve(After::Drop);
    }
    if draw(faults.oversized_rate) {
        s.stats.injected_oversized += 1;
        return Decided::Serve(After::Oversized {
            bytes: faults.oversized_bytes,
            chunked: faults.oversized_chunked,
        });
    }
    if draw(faults.slow_body_rate) {
        s.stats.injected_slow += 1;
        return Decided::Serve(After::Slow(std::time::Duration::from_millis(
            faults.slow_body_ms,
        )));
    }
    Decided::Serve(After::Answer)
}

/// Logs a request answered before its body was read (401, 413): never applied.
fn log_request(
    emu: &Emulator,
    method: &Method,
    path: &str,
    status: u16,
    fault: Option<&str>,
    user_name: Option<String>,
) {
    if emu.config().record_requests {
        emu.lock().requests.push(crate::RequestRecord {
            method: method.to_string(),
            path: path.to_owned(),
            status,
            applied: false,
            fault: fault.map(str::to_owned),
            user_name,
        });
    }
}

/// Adds the `X-RateLimit-*` headers of an admitted request, when the limits send them.
fn with_quota(mut response: Response, quota: Option<HeaderMap>) -> Response {
    if let Some(quota) = quota {
        response.headers_mut().extend(quota);
    }
    response
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
