//! Miro's REST API, for what SCIM cannot do: assigning a user group to a team
//! (`/v2/orgs/{org_id}/teams/{team_id}/groups`, miro-scim.md §12). A credential of its own (a
//! Company Admin's OAuth token with `organizations:teams:write` and `organizations:groups:read`),
//! its own rate limits (credits per user and app per minute; every call made here is level 1)
//! and so its own pacing bucket, retries and refusal: a REST 401 or 403 stops the REST requests
//! of the run, not the SCIM ones.

use crate::client::{
    Attempt, DEFAULT_MAX_RESPONSE_BYTES, Tally, Trace, bearer, checked_base_url, http_client,
    redact_token, segment, transport,
};
use crate::error::{ClientError, ScimError, untrusted};
use crate::pacing::Pacer;
use crate::rate_headers::RateHeaders;
use crate::retry::{RetryPolicy, RetryState};
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use scimsync_model::{ScimId, Team, TeamId};
use scimsync_scim::{Bucket, Budgets, ScimErrorBody, parse_error_body};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Miro's REST base URL.
pub const MIRO_REST_URL: &str = "https://api.miro.com";

/// A page of a cursor-paged list asks for this many (Miro's maximum).
const PAGE_LIMIT: usize = 100;

/// Pages of one list read before giving up: a million teams is not an org.
const MAX_PAGES: usize = 10_000;

/// Where Miro's REST API is and how to pace it.
#[derive(Clone, Debug)]
pub struct RestConfig {
    /// `https://api.miro.com` (a trailing `/` is ignored); tests point it at the emulator.
    pub base_url: String,
    /// The organization's id (`/v2/orgs/{org_id}`).
    pub org_id: String,
    pub timeout: Duration,
    /// The REST budget: `Budgets::miro_rest(credits per minute)` (Miro: 100 000 per user and
    /// app, 50 a level-1 call), or a shorter window in tests.
    pub budget: Budgets,
    pub user_agent: String,
}

/// What an assignment request found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assigned {
    /// Made now.
    Now,
    /// Already there (Miro answered 409 and the assignment reads back).
    Already,
}

/// A client for Miro's REST API. Cheap to clone: clones share the pacing.
#[derive(Clone)]
pub struct RestClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    org_id: String,
    /// Only exposed while building the Authorization header.
    token: SecretString,
    pacer: Pacer,
    retry: RetryPolicy,
    seeds: AtomicU64,
    /// Every REST request of the client's life (a cycle, or a `check`): a refusal stops the
    /// rest of them.
    tally: Tally,
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("base_url", &self.inner.base_url)
            .field("org_id", &self.inner.org_id)
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl RestClient {
    pub fn new(cfg: RestConfig, token: SecretString) -> Result<Self, ClientError> {
        Self::with_retry(cfg, token, RetryPolicy::default())
    }

    pub fn with_retry(
        cfg: RestConfig,
        token: SecretString,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        let base_url = checked_base_url(&cfg.base_url)?;
        let org_id = cfg.org_id.trim().to_owned();
        if org_id.is_empty() {
            return Err(ClientError::InvalidBaseUrl {
                url: base_url,
                reason: "the organization id (org_id) is empty".into(),
            });
        }
        bearer(&token)?;
        let http = http_client(cfg.timeout, cfg.user_agent)?;
        let pacer = Pacer::new(&cfg.budget, None)?;
        Ok(RestClient {
            inner: Arc::new(Inner {
                http,
                base_url,
                org_id,
                token,
                pacer,
                retry,
                seeds: AtomicU64::new(0),
                tally: Tally::new(true),
            }),
        })
    }

    pub fn org_id(&self) -> &str {
        &self.inner.org_id
    }

    /// Requests sent, and 429s received, over the client's life.
    pub fn requests(&self) -> u64 {
        self.inner
            .tally
            .buckets()
            .get(&Bucket::RestLevel1)
            .map_or(0, |b| b.requests)
    }

    pub fn rate_limited(&self) -> u64 {
        self.inner.tally.rate_limited.load(Ordering::Relaxed)
    }

    fn org_path(&self, rest: &str) -> String {
        format!("/v2/orgs/{}{rest}", segment(&self.inner.org_id))
    }

    /// Every team of the organization (`GET /v2/orgs/{org}/teams`, cursor-paged).
    pub async fn list_teams(&self) -> Result<Vec<Team>, ScimError> {
        let mut trace = Trace::default();
        let items = self.list(&self.org_path("/teams"), &mut trace).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                Some(Team {
                    id: TeamId::new(id_of(item.get("id")?)?),
                    name: self.text(item.get("name")?.as_str()?),
                })
            })
            .collect())
    }

    /// The user groups assigned to `team` (`GET /v2/orgs/{org}/teams/{team}/groups`).
    pub async fn team_groups(&self, team: &TeamId) -> Result<Vec<ScimId>, ScimError> {
        let mut trace = Trace::default();
        let path = self.org_path(&format!("/teams/{}/groups", segment(team.as_str())));
        let items = self.list(&path, &mut trace).await?;
        Ok(items
            .iter()
            .filter_map(|item| Some(ScimId::new(id_of(item.get("id")?)?)))
            .collect())
    }

    /// The organization's user groups, id and name (`GET /v2/orgs/{org}/groups`): what `check`
    /// compares the SCIM groups with to tell the org's group model.
    pub async fn user_groups(&self) -> Result<Vec<(ScimId, String)>, ScimError> {
        let mut trace = Trace::default();
        let items = self.list(&self.org_path("/groups"), &mut trace).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                Some((ScimId::new(id_of(item.get("id")?)?), self.text(name)))
            })
            .collect())
    }

    /// Assigns user group `group` to `team` as a member
    /// (`POST /v2/orgs/{org}/teams/{team}/groups`). A 409 whose assignment reads back is
    /// "already assigned" (an earlier request whose answer was lost).
    pub(crate) async fn assign(
        &self,
        team: &TeamId,
        group: &ScimId,
        trace: &mut Trace,
    ) -> Result<Assigned, ScimError> {
        let path = self.org_path(&format!("/teams/{}/groups", segment(team.as_str())));
        let body = json!({"userGroupId": group.as_str(), "role": "member"});
        match self
            .send(Method::POST, &path, &[], Some(&body), trace)
            .await
        {
            Ok(_) => Ok(Assigned::Now),
            Err(e @ ScimError::Conflict { .. }) => {
                let one = self.org_path(&format!(
                    "/teams/{}/groups/{}",
                    segment(team.as_str()),
                    segment(group.as_str())
                ));
                let mut check = Trace::default();
                match self.send(Method::GET, &one, &[], None, &mut check).await {
                    Ok(_) => Ok(Assigned::Already),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Takes user group `group` off `team`
    /// (`DELETE /v2/orgs/{org}/teams/{team}/groups/{group}`); already off (404) is done too.
    pub(crate) async fn unassign(
        &self,
        team: &TeamId,
        group: &ScimId,
        trace: &mut Trace,
    ) -> Result<(), ScimError> {
        let path = self.org_path(&format!(
            "/teams/{}/groups/{}",
            segment(team.as_str()),
            segment(group.as_str())
        ));
        match self.send(Method::DELETE, &path, &[], None, trace).await {
            Ok(_) | Err(ScimError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every item of a cursor-paged list (`data`, `cursor`), bounded in pages; a cursor seen
    /// twice ends it rather than loop.
    async fn list(&self, path: &str, trace: &mut Trace) -> Result<Vec<Value>, ScimError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let mut query = vec![("limit", PAGE_LIMIT.to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let body = self.send(Method::GET, path, &query, None, trace).await?;
            let page: Value = decode(&body)?;
            let data = page
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let empty = data.is_empty();
            items.extend(data);
            cursor = page
                .get("cursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            match &cursor {
                Some(c) if !empty && seen.insert(c.clone()) => {}
                _ => return Ok(items),
            }
        }
        Ok(items)
    }

    /// One request with retries for 429, 5xx and transport failures: every attempt waits for
    /// the REST bucket. The body of a success, token cut out.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&'static str, String)],
        body: Option<&Value>,
        trace: &mut Trace,
    ) -> Result<Vec<u8>, ScimError> {
        let mut retry =
            RetryState::shared(&self.inner.retry, &self.inner.seeds, self.inner.pacer.now());
        // Bounded by the retry policy.
        loop {
            match self.send_once(&method, path, query, body, trace).await {
                Err(e) if e.class() == crate::ErrorClass::Retryable => {
                    match retry.after(self.inner.pacer.now(), &e) {
                        Some(delay) => {
                            self.inner.tally.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(delay).await;
                        }
                        None => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        query: &[(&'static str, String)],
        body: Option<&Value>,
        trace: &mut Trace,
    ) -> Result<Vec<u8>, ScimError> {
        let inner = &self.inner;
        let bucket = Bucket::RestLevel1;
        // Held until this function returns: the slot frees a window after the answer.
        let Some(permit) = inner
            .pacer
            .acquire(bucket, || inner.tally.is_halted())
            .await
        else {
            return Err(ScimError::Halted);
        };
        inner.tally.sent(bucket, inner.pacer.window());
        let started = tokio::time::Instant::now();
        let result = self.exchange(method, path, query, body).await;
        if let Ok((_, rate, _)) = &result
            && let Some(hint) = rate.hint()
        {
            permit.hinted(hint);
        }
        trace.method = method.to_string();
        trace.path = path.to_owned();
        trace.attempts += 1;
        trace.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let result = match result {
            Ok((status, _, body)) if (200..300).contains(&status) => Ok((status, body)),
            Ok((status, rate, body)) => Err(ScimError::from_response(
                status,
                &self.untrusted_error(&body),
                rate.wait(),
            )),
            Err(e) => Err(e),
        };
        trace.status = match &result {
            Ok((status, _)) => Some(*status),
            Err(e) => e.status(),
        };
        if result.is_err() {
            trace.failed = Some(Attempt {
                method: trace.method.clone(),
                path: trace.path.clone(),
                status: trace.status,
            });
        }
        tracing::debug!(%method, path, status = trace.status, ms = trace.ms, "rest request");
        match &result {
            Err(ScimError::RateLimited { retry_after }) => {
                inner.tally.rate_limited.fetch_add(1, Ordering::Relaxed);
                let pause = retry_after.unwrap_or_else(|| inner.pacer.window() / 2);
                tracing::warn!(
                    "429 from Miro's REST API: pausing its requests for {}",
                    crate::seconds(pause)
                );
                permit.throttled(pause);
            }
            Err(e) if e.refuses_access() => inner.tally.halt(),
            _ => {}
        }
        result.map(|(_, body)| body)
    }

    /// Status, the rate-limit headers (`Retry-After`, `X-RateLimit-Remaining`/`-Reset`, which
    /// Miro's REST API sends), and the body with the token cut out.
    async fn exchange(
        &self,
        method: &Method,
        path: &str,
        query: &[(&'static str, String)],
        body: Option<&Value>,
    ) -> Result<(u16, RateHeaders, Vec<u8>), ScimError> {
        let inner = &self.inner;
        let mut builder = inner
            .http
            .request(method.clone(), format!("{}{path}", inner.base_url))
            .header(
                AUTHORIZATION,
                bearer(&inner.token).map_err(|_| ScimError::Transport {
                    message: "invalid token header".into(),
                })?,
            )
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            builder = builder.query(query);
        }
        if let Some(body) = body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let rate = RateHeaders::parse(response.headers(), std::time::SystemTime::now());
        // Read against the same cap as SCIM answers: a broken or hostile answer costs at most
        // the cap in memory, however large it is.
        let cap = DEFAULT_MAX_RESPONSE_BYTES;
        let success = (200..300).contains(&status);
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > cap {
                if success {
                    return Err(ScimError::ResponseTooLarge { status, limit: cap });
                }
                body.extend_from_slice(&chunk[..cap - body.len()]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok((
            status,
            rate,
            redact_token(body, inner.token.expose_secret()),
        ))
    }

    fn untrusted_error(&self, body: &[u8]) -> ScimErrorBody {
        let token = self.inner.token.expose_secret();
        let parsed = parse_error_body(body);
        ScimErrorBody {
            status: parsed.status,
            scim_type: parsed.scim_type.map(|t| untrusted(&t, token)),
            detail: parsed.detail.map(|d| untrusted(&d, token)),
        }
    }

    /// A name Miro returned, as untrusted text.
    fn text(&self, s: &str) -> String {
        untrusted(s, self.inner.token.expose_secret())
    }
}

/// A REST body as `T`.
fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ScimError> {
    serde_json::from_slice(body).map_err(|e| ScimError::Decode {
        message: e.to_string(),
    })
}

/// An id Miro sends as a string or a number.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(url: &str, org: &str) -> RestConfig {
        RestConfig {
            base_url: url.into(),
            org_id: org.into(),
            timeout: Duration::from_secs(5),
            budget: Budgets::miro_rest(100_000),
            user_agent: "test".into(),
        }
    }

    #[test]
    fn debug_never_shows_the_token_and_bad_settings_are_refused() {
        let client = RestClient::new(
            config("https://api.miro.com/", "3074457"),
            SecretString::from("rest-s3cr3t-value"),
        )
        .unwrap();
        let debug = format!("{client:?}");
        assert!(
            !debug.contains("s3cr3t") && debug.contains("redacted"),
            "{debug}"
        );
        assert!(RestClient::new(config("ftp://x", "1"), SecretString::from("t")).is_err());
        assert!(RestClient::new(config("https://x", " "), SecretString::from("t")).is_err());
        assert!(RestClient::new(config("https://x", "1"), SecretString::from("a\nb")).is_err());
    }

    #[test]
    fn an_org_id_cannot_leave_its_path_segment() {
        let client = RestClient::new(
            config("https://api.miro.com", "../boards?x"),
            SecretString::from("t"),
        )
        .unwrap();
        assert_eq!(client.org_path("/teams"), "/v2/orgs/..%2Fboards%3Fx/teams");
    }
}
