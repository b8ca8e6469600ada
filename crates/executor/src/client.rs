//! The SCIM HTTP client: one paced, retried, classified request at a time, and the reads the
//! CLI needs (full list, userName lookup, connection check).

use crate::error::{ClientError, ScimError};
use crate::pacing::{DEFAULT_HEADROOM, Pacer, TokioClock};
use crate::retry::{RetryPolicy, RetryState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderValue, IF_MATCH, RETRY_AFTER,
};
use reqwest::{Method, redirect};
use scimsync_model::{ScimId, TargetUser};
use scimsync_scim::{
    Bucket, Budgets, Capabilities, Discovery, Endpoint, ListResponse, Profile, ScimErrorBody,
    TargetSchema, filter_eq, parse_error_body, target_user,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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

/// Knobs with sensible defaults that tests and benchmarks turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// Fraction of each bucket's budget the pacer aims for, in (0, 1].
    pub headroom: f64,
    pub retry: RetryPolicy,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            headroom: DEFAULT_HEADROOM,
            retry: RetryPolicy::default(),
        }
    }
}

/// Requests sent per bucket, as offsets from the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BucketReport {
    pub requests: u64,
    pub first: Option<Duration>,
    pub last: Option<Duration>,
}

/// Counters of one run (or of the client's lifetime), shared by its concurrent requests.
pub(crate) struct Tally {
    start: Instant,
    buckets: Mutex<BTreeMap<Bucket, BucketReport>>,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) retries: AtomicU64,
    /// Whether a 401 or 403 stops every later request of this tally.
    halt_on_refusal: bool,
    halted: AtomicBool,
}

impl Tally {
    /// Discovery's own tally: a generic SP may refuse discovery (403) and serve users all the
    /// same, so that refusal alone does not stop the cycle; a 401 there still fails `check`,
    /// and the next request's refusal stops the cycle as any other would.
    pub(crate) fn discovery() -> Self {
        Tally::new(false)
    }

    pub(crate) fn new(halt_on_refusal: bool) -> Self {
        Tally {
            start: Instant::now(),
            buckets: Mutex::new(BTreeMap::new()),
            rate_limited: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            halt_on_refusal,
            halted: AtomicBool::new(false),
        }
    }

    pub(crate) fn sent(&self, bucket: Bucket) {
        let at = self.start.elapsed();
        if let Ok(mut buckets) = self.buckets.lock() {
            let b = buckets.entry(bucket).or_default();
            b.requests += 1;
            b.first.get_or_insert(at);
            b.last = Some(at);
        }
    }

    pub(crate) fn buckets(&self) -> BTreeMap<Bucket, BucketReport> {
        self.buckets.lock().map(|b| b.clone()).unwrap_or_default()
    }

    pub(crate) fn is_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// Nothing more of this tally is sent (its target refused access).
    pub(crate) fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
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

/// What an op's requests amounted to, for its event: the last attempt, and the last one that
/// failed (a failed op's event names the request that failed, not a lookup made after it).
#[derive(Clone, Debug, Default)]
pub(crate) struct Trace {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    pub(crate) ms: u64,
    pub(crate) failed: Option<Attempt>,
}

/// One request as an event shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) status: Option<u16>,
}

impl Trace {
    /// The exchange an event shows: the failed request when `failed` (the op failed), else the
    /// last one.
    pub(crate) fn http(&self, failed: bool) -> Option<scimsync_model::EventHttp> {
        if self.attempts == 0 {
            return None;
        }
        let shown = match (&self.failed, failed) {
            (Some(attempt), true) => attempt.clone(),
            _ => Attempt {
                method: self.method.clone(),
                path: self.path.clone(),
                status: self.status,
            },
        };
        Some(scimsync_model::EventHttp {
            method: shown.method,
            path: (!shown.path.is_empty()).then_some(shown.path),
            status: shown.status,
            attempts: self.attempts,
            ms: self.ms,
        })
    }
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
    /// The discovery documents as read.
    pub discovery: Discovery,
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
    pacer: Pacer<TokioClock>,
    tuning: Tuning,
    seeds: AtomicU64,
    rng: Mutex<StdRng>,
    lifetime: Tally,
    /// Discovered once per client (a client lives for one cycle, or one `check`).
    capabilities: tokio::sync::OnceCell<Capabilities>,
    /// The declared schema (`use_discovery`); empty until then.
    schema: std::sync::RwLock<TargetSchema>,
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
        let base_url = checked_base_url(&cfg.base_url)?;
        bearer(&token)?;
        let http = http_client(cfg.timeout, cfg.user_agent)?;
        let pacer = Pacer::new(&budgets, tuning.headroom, TokioClock::new())?;
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
                // The reads before a plan (full list, lookups) stop at the first refusal too:
                // sixteen concurrent lookups must not each knock with a revoked token.
                lifetime: Tally::new(true),
                capabilities: tokio::sync::OnceCell::new(),
                schema: std::sync::RwLock::new(TargetSchema::default()),
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

    /// Read-only probe: discovery (`/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`; a
    /// 404 or 405 means "not served") and `GET /Users?count=1` for the user count and the
    /// round trip.
    pub async fn check(&self) -> Result<CheckReport, ScimError> {
        let tally = &self.inner.lifetime;
        let mut trace = Trace::default();
        let discovery = self.read_discovery(&Tally::discovery(), &mut trace).await?;
        self.use_discovery(&discovery);
        let capabilities = self.capabilities().await;
        let started = Instant::now();
        let mut probe = Request::get("/Users");
        probe.query = vec![("startIndex", "1".into()), ("count", "1".into())];
        let reply = self.send(&probe, tally, &mut trace).await?;
        let latency = started.elapsed();
        let list: ListResponse<serde_json::Value> = decode(&reply.body)?;
        Ok(CheckReport {
            service_provider_config: discovery.service_provider_config.clone(),
            total_users: Some(list.total_results),
            latency,
            capabilities,
            discovery,
        })
    }

    /// Reads what the target declares of itself: `/ServiceProviderConfig`, `/Schemas` and
    /// `/ResourceTypes` (RFC 7644 §4), each `None` when not served. A profile with documented
    /// capabilities (Miro) is not asked: no request.
    pub async fn discover(&self) -> Result<Discovery, ScimError> {
        if self.inner.profile.fixed_capabilities.is_some() {
            return Ok(Discovery::default());
        }
        let mut trace = Trace::default();
        self.read_discovery(&Tally::discovery(), &mut trace).await
    }

    async fn read_discovery(
        &self,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<Discovery, ScimError> {
        Ok(Discovery {
            service_provider_config: self
                .discovery_document("/ServiceProviderConfig", tally, trace)
                .await?,
            schemas: self.discovery_document("/Schemas", tally, trace).await?,
            resource_types: self
                .discovery_document("/ResourceTypes", tally, trace)
                .await?,
        })
    }

    /// Takes a discovery read earlier (this cycle, or cached in the store): the capabilities
    /// (unless already settled) and the declared schema. No request.
    pub fn use_discovery(&self, discovery: &Discovery) {
        if self.inner.profile.fixed_capabilities.is_none() {
            let caps = self.resolve_capabilities(discovery.service_provider_config.as_ref());
            // Already settled (read this cycle): keep what was read.
            let _ = self.inner.capabilities.set(caps);
        }
        if let Ok(mut schema) = self.inner.schema.write() {
            *schema = discovery.schema();
        }
    }

    /// What the target declares of its resources, as last taken by `use_discovery` (empty,
    /// i.e. nothing known, before).
    pub fn target_schema(&self) -> TargetSchema {
        self.inner
            .schema
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// What the SP supports, with sync.toml's overrides: the profile's own (Miro's are
    /// documented, so no request), or what discovery read, or on first use
    /// `/ServiceProviderConfig`. A failed read falls back to `Capabilities::assumed` (a 401
    /// shows up on the next request anyway).
    pub async fn capabilities(&self) -> Capabilities {
        *self
            .inner
            .capabilities
            .get_or_init(|| async {
                if self.inner.profile.fixed_capabilities.is_some() {
                    return self.resolve_capabilities(None);
                }
                let mut trace = Trace::default();
                match self
                    .discovery_document("/ServiceProviderConfig", &Tally::discovery(), &mut trace)
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
        let base = match (profile.fixed_capabilities, spc) {
            (Some(fixed), _) => fixed,
            (None, Some(spc)) => Capabilities::from_service_provider_config(spc),
            (None, None) => Capabilities::assumed(),
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

    /// `GET` of a discovery document; `None` when the SP does not serve a readable one.
    async fn discovery_document(
        &self,
        path: &str,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<Option<serde_json::Value>, ScimError> {
        match self.send(&Request::get(path), tally, trace).await {
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
        if !inner.pacer.acquire(bucket, || tally.is_halted()).await {
            return Err(ScimError::Halted);
        }
        tally.sent(bucket);
        let started = Instant::now();
        let result = self.exchange(req, if_match).await;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        trace.method = req.method.to_string();
        trace.path = req.path.clone();
        trace.attempts += 1;
        trace.ms = ms;
        let result = match result {
            Ok((status, _, etag, body)) if (200..300).contains(&status) => {
                self.throttle_over(bucket);
                Ok(Reply { status, body, etag })
            }
            Ok((status, retry_after, _, body)) => Err(ScimError::from_response(
                status,
                &self.untrusted_error(&body),
                retry_after,
            )),
            Err(e) => Err(e),
        };
        trace.status = match &result {
            Ok(reply) => Some(reply.status),
            Err(e) => e.status(),
        };
        if result.is_err() {
            trace.failed = Some(Attempt {
                method: trace.method.clone(),
                path: trace.path.clone(),
                status: trace.status,
            });
        }
        tracing::debug!(method = %req.method, path = %req.path, status = ?trace.status, ms, "scim request");
        match &result {
            Err(ScimError::RateLimited { retry_after }) => {
                tally.rate_limited.fetch_add(1, Ordering::Relaxed);
                let pause = retry_after.unwrap_or_else(|| self.default_pause(bucket));
                tracing::warn!(%bucket, ?pause, "429 from the target: pausing the bucket");
                inner.pacer.pause(bucket, pause);
            }
            Err(e) if tally.halt_on_refusal && e.refuses_access() => {
                tally.halted.store(true, Ordering::SeqCst);
            }
            _ => {}
        }
        result
    }

    /// An error body read as untrusted text: `detail` and `scimType` pass through
    /// [`crate::error::untrusted`] (the token, `Bearer …` and `Authorization …` values
    /// redacted; length capped).
    fn untrusted_error(&self, body: &[u8]) -> ScimErrorBody {
        let token = self.inner.token.expose_secret();
        let parsed = parse_error_body(body);
        ScimErrorBody {
            status: parsed.status,
            scim_type: parsed.scim_type.map(|t| crate::error::untrusted(&t, token)),
            detail: parsed.detail.map(|d| crate::error::untrusted(&d, token)),
        }
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
        // Seconds only: the HTTP-date form is rare on APIs, and without a value the bucket
        // pauses for half a window anyway.
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let token = inner.token.expose_secret();
        // An ETag is sent back as If-Match and never shown; one that is not a plausible
        // version (oversized, or carrying our token) is not kept at all.
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 256 && !v.contains(token))
            .map(str::to_owned);
        let body = response.bytes().await.map_err(transport)?;
        Ok((
            status,
            retry_after,
            etag,
            redact_token(body.to_vec(), token),
        ))
    }
}

/// A base URL as a client takes it: without a trailing `/`, http or https.
pub(crate) fn checked_base_url(url: &str) -> Result<String, ClientError> {
    let base_url = url.trim_end_matches('/').to_owned();
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
    Ok(base_url)
}

/// The HTTP client of one target: a timeout per request, and no redirect followed (Miro
/// redirects http to https, and a redirected POST loses or mangles its body).
pub(crate) fn http_client(
    timeout: Duration,
    user_agent: String,
) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(timeout)
        .user_agent(user_agent)
        .build()
        .map_err(ClientError::Build)
}

/// `body` with every occurrence of the token replaced: whatever the target echoes of it (an
/// error detail, a debug dump in a resource) is gone before anything parses, logs or stores
/// the body.
pub(crate) fn redact_token(body: Vec<u8>, token: &str) -> Vec<u8> {
    let needle = token.as_bytes();
    if needle.len() < 4 || body.len() < needle.len() {
        return body;
    }
    if !body.windows(needle.len()).any(|w| w == needle) {
        return body;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    while at < body.len() {
        if body[at..].starts_with(needle) {
            out.extend_from_slice(b"[redacted]");
            at += needle.len();
        } else {
            out.push(body[at]);
            at += 1;
        }
    }
    out
}

/// Status, Retry-After, ETag and body of one response.
type Exchanged = (u16, Option<Duration>, Option<String>, Vec<u8>);

/// Longest pause after a 429 without Retry-After on a bucket with no budget.
const UNLIMITED_MAX_PAUSE: Duration = Duration::from_secs(60);

/// An id as one path segment. Ids are opaque; Miro's are numeric, but escape anyway so an id
/// cannot change the path.
pub(crate) fn path_segment(id: &ScimId) -> String {
    segment(id.as_str())
}

/// Any opaque id (a team's, an org's) as one path segment.
pub(crate) fn segment(id: &str) -> String {
    id.bytes()
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
pub(crate) fn bearer(token: &SecretString) -> Result<HeaderValue, ClientError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| ClientError::InvalidToken)?;
    value.set_sensitive(true);
    Ok(value)
}

pub(crate) fn transport(e: reqwest::Error) -> ScimError {
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
