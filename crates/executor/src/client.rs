//! The SCIM HTTP client: one paced, retried, classified request at a time, and the reads the
//! CLI needs (full list, userName lookup, connection check).

use crate::error::{ClientError, ScimError};
use crate::pacing::Pacer;
use crate::rate_headers::RateHeaders;
use crate::retry::{RetryPolicy, RetryState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderValue, IF_MATCH};
use reqwest::{Method, redirect};
use scimsync_model::{ScimId, TargetUser};
use scimsync_scim::{
    Bucket, Budgets, Capabilities, Endpoint, ListResponse, Profile, filter_eq, parse_error_body,
    target_user,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

const SCIM_JSON: &str = "application/scim+json";

/// Where the target is and how to talk to it.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The SCIM base URL, e.g. `https://miro.com/api/v1/scim` (a trailing `/` is ignored).
    pub base_url: String,
    pub profile: Profile,
    /// Per-request timeout (default 60 s).
    pub timeout: Duration,
    pub user_agent: String,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, profile: Profile) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            profile,
            timeout: Duration::from_secs(60),
            user_agent: concat!("scimsync/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Knobs with sensible defaults that sync.toml, tests and benchmarks turn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tuning {
    /// How long after a request's answer its slot in the bucket's window frees, beyond the
    /// window itself: slack for clock drift between the SP's counters (`[target.rate_limits]
    /// margin`). `None`: a hundredth of the window.
    pub margin: Option<Duration>,
    pub retry: RetryPolicy,
}

/// Requests sent per bucket, as offsets from the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BucketReport {
    pub requests: u64,
    pub first: Option<Duration>,
    pub last: Option<Duration>,
    /// The most requests sent within any window-long interval (as sent, by this client).
    pub busiest_window: u64,
    /// The budget 429s taught the bucket for the rest of the cycle, when they did.
    pub taught: Option<u32>,
}

/// Counters of one run (or of the client's lifetime), shared by its concurrent requests.
pub(crate) struct Tally {
    start: Instant,
    buckets: Mutex<BTreeMap<Bucket, BucketReport>>,
    /// Per bucket, the send times within the last window, for `busiest_window`.
    recent: Mutex<BTreeMap<Bucket, VecDeque<Duration>>>,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) retries: AtomicU64,
    /// Whether a 401 stops every later request of this tally.
    halt_on_401: bool,
    halted: AtomicBool,
}

impl Tally {
    pub(crate) fn new(halt_on_401: bool) -> Self {
        Tally {
            start: Instant::now(),
            buckets: Mutex::new(BTreeMap::new()),
            recent: Mutex::new(BTreeMap::new()),
            rate_limited: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            halt_on_401,
            halted: AtomicBool::new(false),
        }
    }

    fn sent(&self, bucket: Bucket, window: Duration) {
        let at = self.start.elapsed();
        let in_window = self.recent.lock().map_or(0, |mut recent| {
            let times = recent.entry(bucket).or_default();
            // A closed interval: a request exactly a window after another shares its window.
            while times.front().is_some_and(|&t| t + window < at) {
                times.pop_front();
            }
            times.push_back(at);
            times.len() as u64
        });
        if let Ok(mut buckets) = self.buckets.lock() {
            let b = buckets.entry(bucket).or_default();
            b.requests += 1;
            b.first.get_or_insert(at);
            b.last = Some(at);
            b.busiest_window = b.busiest_window.max(in_window);
        }
    }

    /// A 429 left `bucket` paced at `allowed` per window.
    fn taught(&self, bucket: Bucket, allowed: Option<u32>) {
        if let (Some(allowed), Ok(mut buckets)) = (allowed, self.buckets.lock()) {
            buckets.entry(bucket).or_default().taught = Some(allowed);
        }
    }

    pub(crate) fn buckets(&self) -> BTreeMap<Bucket, BucketReport> {
        self.buckets.lock().map(|b| b.clone()).unwrap_or_default()
    }

    pub(crate) fn is_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }
}

/// A 2xx response.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The `ETag` header, when the SP sent one.
    pub(crate) etag: Option<String>,
}

/// One request as sent.
pub(crate) struct Request {
    pub(crate) method: Method,
    /// Relative to the base URL, starting with `/`.
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<Vec<u8>>,
}

impl Request {
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Request {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn with_json(
        method: Method,
        path: impl Into<String>,
        body: &serde_json::Value,
    ) -> Self {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: Some(body.to_string().into_bytes()),
        }
    }

    fn bucket(&self) -> Bucket {
        Bucket::classify(
            self.method.as_str(),
            Endpoint::of_path(&self.path),
            self.body.as_ref().map_or(0, Vec::len),
        )
    }
}

/// What an op's requests amounted to, for its event (`http` is about the last attempt).
#[derive(Clone, Debug, Default)]
pub(crate) struct Trace {
    pub(crate) method: String,
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    pub(crate) ms: u64,
}

/// Result of `ScimClient::check`.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// `GET /ServiceProviderConfig`, when the SP serves it.
    pub service_provider_config: Option<serde_json::Value>,
    /// `totalResults` of `GET /Users?count=1`.
    pub total_users: Option<usize>,
    /// Round trip of the `/Users` probe.
    pub latency: Duration,
    /// What the client will rely on: the SP's announcement with sync.toml's overrides applied.
    pub capabilities: Capabilities,
}

/// A SCIM client for one target. Cheap to clone: clones share the connection pool, the rate
/// limiters and the pauses, so every request to the target is paced together.
#[derive(Clone)]
pub struct ScimClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    profile: Profile,
    /// Only exposed while building the Authorization header of a request.
    token: SecretString,
    pacer: Pacer,
    tuning: Tuning,
    seeds: AtomicU64,
    rng: Mutex<StdRng>,
    lifetime: Tally,
    /// Discovered once per client (a client lives for one cycle, or one `check`).
    capabilities: tokio::sync::OnceCell<Capabilities>,
    /// `meta.version` (or `ETag`) of each user last read, for `If-Match`.
    versions: Mutex<HashMap<ScimId, String>>,
    /// 429s in a row per bucket, for the backoff of buckets with no budget.
    throttled: Mutex<HashMap<Bucket, u32>>,
}

impl fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimClient")
            .field("base_url", &self.inner.base_url)
            .field("profile", &self.inner.profile.kind)
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl ScimClient {
    pub fn new(
        cfg: ClientConfig,
        token: SecretString,
        budgets: Budgets,
    ) -> Result<Self, ClientError> {
        Self::with_tuning(cfg, token, budgets, Tuning::default())
    }

    pub fn with_tuning(
        cfg: ClientConfig,
        token: SecretString,
        budgets: Budgets,
        tuning: Tuning,
    ) -> Result<Self, ClientError> {
        let base_url = cfg.base_url.trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&base_url).map_err(|e| ClientError::InvalidBaseUrl {
            url: base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::InvalidBaseUrl {
                url: base_url,
                reason: "the scheme must be http or https".into(),
            });
        }
        bearer(&token)?;
        let http = reqwest::Client::builder()
            // Miro redirects http to https, and a redirected POST loses or mangles its body.
            .redirect(redirect::Policy::none())
            .timeout(cfg.timeout)
            .user_agent(cfg.user_agent)
            .build()
            .map_err(ClientError::Build)?;
        let pacer = Pacer::new(&budgets, tuning.margin)?;
        let rng = match tuning.retry.jitter_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Ok(ScimClient {
            inner: Arc::new(Inner {
                http,
                base_url,
                profile: cfg.profile,
                token,
                pacer,
                tuning,
                seeds: AtomicU64::new(0),
                rng: Mutex::new(rng),
                lifetime: Tally::new(false),
                capabilities: tokio::sync::OnceCell::new(),
                versions: Mutex::new(HashMap::new()),
                throttled: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Tells the pacer of requests an earlier run (another process, or an earlier cycle) sent to
    /// this target and when each was answered: those still within a window hold their slots, as
    /// they do in the target's count. Answers in the future (a clock set back) count as now.
    pub fn remember_requests(&self, answered: impl IntoIterator<Item = (Bucket, SystemTime)>) {
        let now = SystemTime::now();
        self.inner.pacer.remember(
            answered
                .into_iter()
                .map(|(bucket, at)| (bucket, now.duration_since(at).unwrap_or(Duration::ZERO))),
        );
    }

    /// The requests of this client that still count in the target's windows, with when each was
    /// answered (one in flight: now), for the next run's `remember_requests`.
    pub fn recent_requests(&self) -> Vec<(Bucket, SystemTime)> {
        let now = SystemTime::now();
        self.inner
            .pacer
            .recent()
            .into_iter()
            .map(|(bucket, ago)| (bucket, now.checked_sub(ago).unwrap_or(now)))
            .collect()
    }

    /// 429s received over the client's lifetime outside `Executor::execute`.
    pub fn rate_limited(&self) -> u64 {
        self.inner.lifetime.rate_limited.load(Ordering::Relaxed)
    }

    /// Every user the target shows, read page by page (`startIndex`/`count`), until
    /// `startIndex > totalResults` or an empty page. The SP may answer with smaller pages than
    /// asked for; a user seen twice (pages shifting under concurrent changes) is kept once.
    pub async fn list_users(&self) -> Result<Vec<TargetUser>, ScimError> {
        self.list_users_with(&self.inner.lifetime).await
    }

    /// The user whose userName equals `user_name` case-insensitively, if the target shows one.
    pub async fn find_user(&self, user_name: &str) -> Result<Option<TargetUser>, ScimError> {
        let mut trace = Trace::default();
        self.find_user_with(user_name, &self.inner.lifetime, &mut trace)
            .await
    }

    /// Read-only probe: `GET /ServiceProviderConfig` (a 404 or 405 means "not served") and
    /// `GET /Users?count=1` for the user count and the round trip.
    pub async fn check(&self) -> Result<CheckReport, ScimError> {
        let tally = &self.inner.lifetime;
        let mut trace = Trace::default();
        let spc = self.service_provider_config(tally, &mut trace).await?;
        let capabilities = *self
            .inner
            .capabilities
            .get_or_init(|| async { self.resolve_capabilities(spc.as_ref()) })
            .await;
        let started = Instant::now();
        let mut probe = Request::get("/Users");
        probe.query = vec![("startIndex", "1".into()), ("count", "1".into())];
        let reply = self.send(&probe, tally, &mut trace).await?;
        let latency = started.elapsed();
        let list: ListResponse<serde_json::Value> = decode(&reply.body)?;
        Ok(CheckReport {
            service_provider_config: spc,
            total_users: Some(list.total_results),
            latency,
            capabilities,
        })
    }

    /// What the SP supports, with sync.toml's overrides: read from `/ServiceProviderConfig` on
    /// first use for a generic SP (Miro's are documented, so no request). A failed discovery
    /// falls back to `Capabilities::assumed` (a 401 shows up on the next request anyway).
    pub async fn capabilities(&self) -> Capabilities {
        *self
            .inner
            .capabilities
            .get_or_init(|| async {
                if self.inner.profile.is_miro() {
                    return self.resolve_capabilities(None);
                }
                let mut trace = Trace::default();
                match self
                    .service_provider_config(&self.inner.lifetime, &mut trace)
                    .await
                {
                    Ok(spc) => self.resolve_capabilities(spc.as_ref()),
                    Err(e) => {
                        tracing::warn!(
                            "cannot read /ServiceProviderConfig, assuming PATCH and filters: {e}"
                        );
                        self.resolve_capabilities(None)
                    }
                }
            })
            .await
    }

    fn resolve_capabilities(&self, spc: Option<&serde_json::Value>) -> Capabilities {
        let profile = &self.inner.profile;
        let base = match spc {
            _ if profile.is_miro() => Capabilities::miro(),
            Some(spc) => Capabilities::from_service_provider_config(spc),
            None => Capabilities::assumed(),
        };
        let caps = profile.capabilities.apply(base);
        tracing::info!(
            patch = caps.patch,
            filter = caps.filter,
            max_results = ?caps.filter_max_results,
            etag = caps.etag,
            bulk = caps.bulk,
            sort = caps.sort,
            source = caps.source.as_str(),
            overridden = ?profile.capabilities.keys(),
            "target capabilities"
        );
        caps
    }

    /// `GET /ServiceProviderConfig`; `None` when the SP does not serve a readable one.
    async fn service_provider_config(
        &self,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<Option<serde_json::Value>, ScimError> {
        match self
            .send(&Request::get("/ServiceProviderConfig"), tally, trace)
            .await
        {
            Ok(reply) => Ok(serde_json::from_slice(&reply.body).ok()),
            Err(
                ScimError::NotFound { .. }
                | ScimError::UnexpectedStatus { .. }
                | ScimError::BadRequest { .. }
                | ScimError::Forbidden { .. },
            ) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Remembers the version of a user just read, for a later `If-Match`.
    pub(crate) fn remember_version(&self, resource: &serde_json::Value, etag: Option<&str>) {
        let id = match resource.get("id") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return,
        };
        let version = resource
            .get("meta")
            .and_then(|m| m.get("version"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .or_else(|| etag.map(str::to_owned));
        if let (Some(version), Ok(mut versions)) = (version, self.inner.versions.lock()) {
            versions.insert(ScimId::new(id), version);
        }
    }

    pub(crate) fn inner_versions(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<ScimId, String>>, ()> {
        self.inner.versions.lock().map_err(|_| ())
    }

    pub(crate) fn version_of(&self, id: &ScimId) -> Option<String> {
        self.inner
            .versions
            .lock()
            .ok()
            .and_then(|v| v.get(id).cloned())
    }

    pub(crate) async fn list_users_with(
        &self,
        tally: &Tally,
    ) -> Result<Vec<TargetUser>, ScimError> {
        let caps = self.capabilities().await;
        let page_size = caps
            .filter_max_results
            .map_or(self.inner.profile.page_size, |max| {
                max.min(self.inner.profile.page_size)
            })
            .max(1);
        let mut users = Vec::new();
        let mut seen = HashSet::new();
        let mut start = 1usize;
        let mut trace = Trace::default();
        // Recomputed from the first page: one user per page at worst, plus the empty last page.
        let mut max_pages = 1usize;
        let mut pages = 0usize;
        while pages < max_pages {
            let mut req = Request::get("/Users");
            req.query = vec![
                ("startIndex", start.to_string()),
                ("count", page_size.to_string()),
            ];
            let reply = self.send(&req, tally, &mut trace).await?;
            let list: ListResponse<serde_json::Value> = decode(&reply.body)?;
            if pages == 0 {
                max_pages = list.total_results.saturating_add(2);
            }
            pages += 1;
            if list.resources.is_empty() {
                break;
            }
            start += list.resources.len();
            for resource in &list.resources {
                let user =
                    target_user(resource, &self.inner.profile).map_err(|e| ScimError::Decode {
                        message: e.to_string(),
                    })?;
                self.remember_version(resource, None);
                if seen.insert(user.id.clone()) {
                    users.push(user);
                }
            }
            if start > list.total_results {
                break;
            }
        }
        Ok(users)
    }

    pub(crate) async fn find_user_with(
        &self,
        user_name: &str,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<Option<TargetUser>, ScimError> {
        let mut req = Request::get("/Users");
        req.query = vec![("filter", filter_eq("userName", user_name))];
        let reply = self.send(&req, tally, trace).await?;
        let list: ListResponse<serde_json::Value> = decode(&reply.body)?;
        for resource in &list.resources {
            let user =
                target_user(resource, &self.inner.profile).map_err(|e| ScimError::Decode {
                    message: e.to_string(),
                })?;
            // The SP's filter may be case-sensitive or loose; the decision is ours.
            if user.user_name.to_lowercase() == user_name.to_lowercase() {
                self.remember_version(resource, None);
                return Ok(Some(user));
            }
        }
        Ok(None)
    }

    pub(crate) async fn get_user_with(
        &self,
        id: &ScimId,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<TargetUser, ScimError> {
        let reply = self
            .send(&Request::get(user_path(id)), tally, trace)
            .await?;
        let value: serde_json::Value = decode(&reply.body)?;
        self.remember_version(&value, reply.etag.as_deref());
        target_user(&value, &self.inner.profile).map_err(|e| ScimError::Decode {
            message: e.to_string(),
        })
    }

    pub(crate) fn retry_state(&self) -> RetryState {
        RetryState::new(&self.inner.tuning.retry, &self.inner.seeds)
    }

    /// A request with retries for retryable failures. Only for requests that are safe to
    /// repeat (GET, PATCH of replace/remove ops, DELETE); creates have their own loop.
    pub(crate) async fn send(
        &self,
        req: &Request,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<Reply, ScimError> {
        self.send_if_match(req, None, tally, trace).await
    }

    /// One attempt: wait for the bucket, send, classify. Every attempt spends a token.
    pub(crate) async fn send_once(
        &self,
        req: &Request,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<Reply, ScimError> {
        self.send_once_if_match(req, None, tally, trace).await
    }

    /// `send` with an `If-Match` header (ETags): a 412 is permanent here, the caller re-reads.
    pub(crate) async fn send_if_match(
        &self,
        req: &Request,
        if_match: Option<&str>,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<Reply, ScimError> {
        let mut retry = self.retry_state();
        // Bounded by the retry policy, as in `send`.
        loop {
            match self.send_once_if_match(req, if_match, tally, trace).await {
                Err(e) if e.class() == crate::ErrorClass::Retryable => match retry.after(&e) {
                    Some(delay) => {
                        tally.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(method = %req.method, path = %req.path, ?delay, "retrying after: {e}");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    pub(crate) async fn send_once_if_match(
        &self,
        req: &Request,
        if_match: Option<&str>,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<Reply, ScimError> {
        let inner = &self.inner;
        let bucket = req.bucket();
        // Held until this function returns: the slot frees a window after the answer.
        let Some(permit) = inner.pacer.acquire(bucket, || tally.is_halted()).await else {
            return Err(ScimError::Halted);
        };
        tally.sent(bucket, inner.pacer.window());
        let started = Instant::now();
        let result = self.exchange(req, if_match).await;
        if let Ok((_, rate, ..)) = &result
            && let Some(hint) = rate.hint()
        {
            permit.hinted(hint);
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        trace.method = req.method.to_string();
        trace.attempts += 1;
        trace.ms = ms;
        let result = match result {
            Ok((status, _, etag, body)) if (200..300).contains(&status) => {
                self.throttle_over(bucket);
                Ok(Reply { status, body, etag })
            }
            Ok((status, rate, _, body)) => Err(ScimError::from_response(
                status,
                &parse_error_body(&body),
                rate.wait(),
            )),
            Err(e) => Err(e),
        };
        trace.status = match &result {
            Ok(reply) => Some(reply.status),
            Err(e) => e.status(),
        };
        tracing::debug!(method = %req.method, path = %req.path, status = ?trace.status, ms, "scim request");
        match &result {
            Err(ScimError::RateLimited { retry_after }) => {
                tally.rate_limited.fetch_add(1, Ordering::Relaxed);
                let pause = retry_after.unwrap_or_else(|| self.default_pause(bucket));
                tracing::warn!(%bucket, ?pause, "429 from the target: pausing the bucket");
                permit.throttled(pause);
                tally.taught(bucket, inner.pacer.allowed(bucket));
            }
            Err(ScimError::Unauthorized { .. }) if tally.halt_on_401 => {
                tally.halted.store(true, Ordering::SeqCst);
            }
            _ => {}
        }
        result
    }

    /// A success ends a bucket's run of 429s.
    fn throttle_over(&self, bucket: Bucket) {
        if let Ok(mut t) = self.inner.throttled.lock() {
            t.remove(&bucket);
        }
    }

    /// The pause after a 429 without Retry-After. A bucket with a budget: half a window plus up
    /// to a quarter of jitter (the SP's window is unknown; staggered resumption keeps paused
    /// tasks from hitting it together). A bucket without one (a generic SP publishes no
    /// limits): exponential from 1 s per 429 in a row, capped at the window (at most 60 s),
    /// plus up to 25 % jitter.
    fn default_pause(&self, bucket: Bucket) -> Duration {
        let jitter = self
            .inner
            .rng
            .lock()
            .map(|mut r| r.random_range(0.0..0.25))
            .unwrap_or(0.125);
        if !self.inner.pacer.has_budget(bucket) {
            let streak = self
                .inner
                .throttled
                .lock()
                .map(|mut t| {
                    let n = t.entry(bucket).or_insert(0);
                    *n = n.saturating_add(1);
                    *n
                })
                .unwrap_or(1);
            // Capped by the window too: concurrent requests of one burst all count in the streak.
            let cap = UNLIMITED_MAX_PAUSE
                .min(self.inner.pacer.window())
                .max(Duration::from_secs(1));
            let base = Duration::from_secs(1 << streak.saturating_sub(1).min(6)).min(cap);
            return base.mul_f64(1.0 + jitter);
        }
        let window = self.inner.pacer.window();
        let jitter = self
            .inner
            .rng
            .lock()
            .map(|mut r| r.random_range(0.0..0.25))
            .unwrap_or(0.125);
        window.mul_f64(0.5 + jitter)
    }

    async fn exchange(
        &self,
        req: &Request,
        if_match: Option<&str>,
    ) -> Result<Exchanged, ScimError> {
        let inner = &self.inner;
        let url = format!("{}{}", inner.base_url, req.path);
        let mut builder = inner
            .http
            .request(req.method.clone(), url)
            .header(
                AUTHORIZATION,
                bearer(&inner.token).map_err(|_| ScimError::Transport {
                    message: "invalid token header".into(),
                })?,
            )
            .header(ACCEPT, "application/scim+json, application/json");
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        if let Some(version) = if_match.and_then(|v| HeaderValue::from_str(v).ok()) {
            builder = builder.header(IF_MATCH, version);
        }
        if let Some(body) = &req.body {
            builder = builder.header(CONTENT_TYPE, SCIM_JSON).body(body.clone());
        }
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let rate = RateHeaders::parse(response.headers(), SystemTime::now());
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(transport)?;
        Ok((status, rate, etag, body.to_vec()))
    }
}

/// Status, rate-limit headers, ETag and body of one response.
type Exchanged = (u16, RateHeaders, Option<String>, Vec<u8>);

/// Longest pause after a 429 without Retry-After on a bucket with no budget.
const UNLIMITED_MAX_PAUSE: Duration = Duration::from_secs(60);

/// An id as one path segment. Ids are opaque; Miro's are numeric, but escape anyway so an id
/// cannot change the path.
pub(crate) fn path_segment(id: &ScimId) -> String {
    id.as_str()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn user_path(id: &ScimId) -> String {
    format!("/Users/{}", path_segment(id))
}

/// The Authorization header; the token leaves its `SecretString` only here.
fn bearer(token: &SecretString) -> Result<HeaderValue, ClientError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| ClientError::InvalidToken)?;
    value.set_sensitive(true);
    Ok(value)
}

fn transport(e: reqwest::Error) -> ScimError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    // The URL is ours (no secret in it), but the message is enough without it.
    let e = e.without_url();
    let mut message = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    let mut depth = 0;
    while let Some(s) = source {
        if depth >= 4 {
            break;
        }
        message.push_str(&format!(": {s}"));
        source = s.source();
        depth += 1;
    }
    ScimError::Transport { message }
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ScimError> {
    serde_json::from_slice(body).map_err(|e| ScimError::Decode {
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let token = SecretString::from("s3cr3t-token-value");
        let client = ScimClient::new(
            ClientConfig::new("https://miro.com/api/v1/scim/", Profile::miro()),
            token,
            Budgets::miro(),
        )
        .unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("redacted"));
        assert_eq!(client.base_url(), "https://miro.com/api/v1/scim");
    }

    #[test]
    fn bad_configuration_is_refused() {
        let cfg = |url: &str| ClientConfig::new(url, Profile::miro());
        let token = || SecretString::from("t");
        assert!(matches!(
            ScimClient::new(cfg("ftp://x"), token(), Budgets::miro()),
            Err(ClientError::InvalidBaseUrl { .. })
        ));
        assert!(matches!(
            ScimClient::new(cfg("not a url"), token(), Budgets::miro()),
            Err(ClientError::InvalidBaseUrl { .. })
        ));
        let err = ScimClient::new(
            cfg("https://x"),
            SecretString::from("bad\ntoken"),
            Budgets::miro(),
        )
        .unwrap_err();
        assert!(matches!(err, ClientError::InvalidToken));
        assert!(!err.to_string().contains("bad\ntoken"));
    }

    #[test]
    fn ids_cannot_escape_the_users_path() {
        assert_eq!(
            user_path(&ScimId::new("3074457345265951581")),
            "/Users/3074457345265951581"
        );
        assert_eq!(
            user_path(&ScimId::new("../Groups/1?x")),
            "/Users/..%2FGroups%2F1%3Fx"
        );
    }
}
