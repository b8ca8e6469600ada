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
    Bucket, Budgets, Capabilities, Discovery, Endpoint, ListResponse, Profile, ScimErrorBody,
    TargetSchema, filter_eq, parse_error_body, target_user,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

const SCIM_JSON: &str = "application/scim+json";

/// The default cap on a response body: far above any SCIM answer (a 1000-user list page is a
/// few MiB), far below what would threaten the process (a hostile or broken target can send
/// gigabytes).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// How much of an error response is read: enough for any SCIM error's `detail`. The rest is
/// not read (the connection is dropped instead).
const ERROR_BODY_CAP: usize = 64 << 10;

/// Where the target is and how to talk to it.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The SCIM base URL, e.g. `https://miro.com/api/v1/scim` (a trailing `/` is ignored).
    pub base_url: String,
    pub profile: Profile,
    /// Per-request timeout (default 60 s), answer included: a body that trickles in slower
    /// than this fails the attempt.
    pub timeout: Duration,
    pub user_agent: String,
    /// Responses larger than this are not read and fail the attempt (default 16 MiB).
    pub max_response_bytes: usize,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, profile: Profile) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            profile,
            timeout: Duration::from_secs(60),
            user_agent: concat!("scimsync/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
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
            recent: Mutex::new(BTreeMap::new()),
            rate_limited: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            halt_on_refusal,
            halted: AtomicBool::new(false),
        }
    }

    pub(crate) fn sent(&self, bucket: Bucket, window: Duration) {
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

    /// Nothing more of this tally is sent (its target refused access).
    pub(crate) fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
    }
}

/// A 2xx response whose content is what its request expected (`Expect`).
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// The body, parsed; `None` for an empty one (204, or where the request expects nothing).
    pub(crate) json: Option<serde_json::Value>,
    /// The `ETag` header, when the SP sent one.
    pub(crate) etag: Option<String>,
}

impl Reply {
    /// The body as `T`; the shape was checked when the reply was accepted, so this fails only
    /// on a type the check does not cover.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(self) -> Result<T, ScimError> {
        serde_json::from_value(self.json.unwrap_or(serde_json::Value::Null)).map_err(|e| {
            ScimError::Decode {
                message: e.to_string(),
            }
        })
    }
}

/// What a 2xx must carry to count as a success. Anything else (an HTML page from a proxy, JSON
/// of another shape, a body cut short, another resource) is `ScimError::Unconfirmed`: retried,
/// and for a write, an unknown outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Whatever the body: discovery documents, read leniently by the caller.
    Any,
    /// A ListResponse (`totalResults`, and `Resources` as an array when present).
    List,
    /// A User resource with a userName and this id (any id when `None`). A PATCH may instead
    /// answer 204 No Content where the profile allows it (`no_content_ok`).
    User(Option<ScimId>),
    /// A Group resource with this id (any id when `None`); 204 as for users.
    Group(Option<ScimId>),
    /// No content to read (DELETE): 204, or a 2xx whose body is empty or JSON.
    Nothing,
}

impl Expect {
    fn describe(&self) -> String {
        match self {
            Expect::Any | Expect::Nothing => "a response".into(),
            Expect::List => "a SCIM ListResponse".into(),
            Expect::User(Some(id)) => format!("the SCIM User {id}"),
            Expect::User(None) => "a SCIM User".into(),
            Expect::Group(Some(id)) => format!("the SCIM Group {id}"),
            Expect::Group(None) => "a SCIM Group".into(),
        }
    }
}

/// One request as sent.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: Method,
    /// Relative to the base URL, starting with `/`.
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) expect: Expect,
}

impl Request {
    pub(crate) fn get(path: impl Into<String>, expect: Expect) -> Self {
        Request {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            expect,
        }
    }

    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Request {
            method: Method::DELETE,
            path: path.into(),
            query: Vec::new(),
            body: None,
            expect: Expect::Nothing,
        }
    }

    pub(crate) fn with_json(
        method: Method,
        path: impl Into<String>,
        body: &serde_json::Value,
        expect: Expect,
    ) -> Self {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: Some(body.to_string().into_bytes()),
            expect,
        }
    }

    /// Whether this request changes the target.
    pub(crate) fn is_write(&self) -> bool {
        matches!(
            self.method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
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
    /// Write requests sent (a connection never made is not counted).
    pub(crate) writes: u32,
    /// A write got no answer that says whether it was applied (`ScimError::outcome_unknown`).
    /// Only a later confirmed outcome of the same op settles it.
    pub(crate) unknown: bool,
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
            writes: self.writes,
            outcome_unknown: self.unknown,
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
    pacer: Pacer,
    tuning: Tuning,
    max_response_bytes: usize,
    /// Bytes of answers being read at once, across the requests in flight.
    bodies: BodyBudget,
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
    /// Told (users read, users announced) after each page of a full read.
    read_progress: std::sync::RwLock<Option<ReadProgress>>,
}

/// A full read's progress: users read so far, and the total the target announced.
pub type ReadProgress = Arc<dyn Fn(u64, u64) + Send + Sync>;

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
                max_response_bytes: cfg.max_response_bytes.max(1),
                bodies: BodyBudget {
                    held: AtomicUsize::new(0),
                    limit: cfg.max_response_bytes.max(1).saturating_mul(2),
                },
                seeds: AtomicU64::new(0),
                rng: Mutex::new(rng),
                // The reads before a plan (full list, lookups) stop at the first refusal too:
                // sixteen concurrent lookups must not each knock with a revoked token.
                lifetime: Tally::new(true),
                capabilities: tokio::sync::OnceCell::new(),
                schema: std::sync::RwLock::new(TargetSchema::default()),
                versions: Mutex::new(HashMap::new()),
                throttled: Mutex::new(HashMap::new()),
                read_progress: std::sync::RwLock::new(None),
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

    /// Who to tell how far `list_users` has come (a progress bar, a log line); `None` to stop.
    pub fn on_read_progress(&self, progress: Option<ReadProgress>) {
        if let Ok(mut slot) = self.inner.read_progress.write() {
            *slot = progress;
        }
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
        let mut probe = Request::get("/Users", Expect::List);
        probe.query = vec![("startIndex", "1".into()), ("count", "1".into())];
        let reply = self.send(&probe, tally, &mut trace).await?;
        let latency = started.elapsed();
        let list: ListResponse<serde_json::Value> = reply.decode()?;
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
        let keys = profile.capabilities.keys();
        let overridden = (!keys.is_empty()).then(|| keys.join(","));
        tracing::info!(
            patch = caps.patch,
            filter = caps.filter,
            max_results = caps.filter_max_results,
            etag = caps.etag,
            bulk = caps.bulk,
            sort = caps.sort,
            source = caps.source.as_str(),
            overridden = overridden.as_deref(),
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
        match self
            .send(&Request::get(path, Expect::Any), tally, trace)
            .await
        {
            Ok(reply) => Ok(reply.json.filter(serde_json::Value::is_object)),
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
        if let Some((id, version)) = version_in(resource, etag) {
            self.store_version(id, version);
        }
    }

    /// Keeps `version` as the one `If-Match` sends for `id`.
    pub(crate) fn store_version(&self, id: ScimId, version: String) {
        if let Ok(mut versions) = self.inner.versions.lock() {
            versions.insert(id, version);
        }
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
            let mut req = Request::get("/Users", Expect::List);
            req.query = vec![
                ("startIndex", start.to_string()),
                ("count", page_size.to_string()),
            ];
            let reply = self.send(&req, tally, &mut trace).await?;
            let list: ListResponse<serde_json::Value> = reply.decode()?;
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
            if let Ok(slot) = self.inner.read_progress.read()
                && let Some(progress) = slot.as_ref()
            {
                progress(users.len() as u64, list.total_results as u64);
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
        let mut req = Request::get("/Users", Expect::List);
        req.query = vec![("filter", filter_eq("userName", user_name))];
        let reply = self.send(&req, tally, trace).await?;
        let list: ListResponse<serde_json::Value> = reply.decode()?;
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
            .send(
                &Request::get(user_path(id), Expect::User(Some(id.clone()))),
                tally,
                trace,
            )
            .await?;
        let etag = reply.etag.clone();
        let value: serde_json::Value = reply.decode()?;
        self.remember_version(&value, etag.as_deref());
        target_user(&value, &self.inner.profile).map_err(|e| ScimError::Decode {
            message: e.to_string(),
        })
    }

    /// The user `id` as the target holds it now; `None` when it answers 404 (deleted, or a
    /// guest). Retried like any read.
    pub async fn get_user(&self, id: &ScimId) -> Result<Option<TargetUser>, ScimError> {
        let mut trace = Trace::default();
        match self
            .get_user_with(id, &self.inner.lifetime, &mut trace)
            .await
        {
            Ok(user) => Ok(Some(user)),
            Err(ScimError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn retry_state(&self) -> RetryState {
        RetryState::shared(&self.inner.tuning.retry, &self.inner.seeds, self.now())
    }

    /// The client's clock (its pacer's): what the decision machines are handed as `now`.
    pub(crate) fn now(&self) -> Duration {
        self.inner.pacer.now()
    }

    /// The retry policy, and a seed for one op's schedules (derived from the policy's seed
    /// and the client's counter, as each request's schedule is).
    pub(crate) fn retry_seed(&self) -> (&RetryPolicy, Option<u64>) {
        let policy = &self.inner.tuning.retry;
        let seed = policy
            .jitter_seed
            .map(|seed| seed.wrapping_add(self.inner.seeds.fetch_add(1, Ordering::Relaxed)));
        (policy, seed)
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
                Err(e) if e.class() == crate::ErrorClass::Retryable => {
                    match retry.after(self.now(), &e) {
                        Some(delay) => {
                            tally.retries.fetch_add(1, Ordering::Relaxed);
                            crate::announce_wait(
                                delay,
                                format_args!("{} {}: {e}; retrying", req.method, req.path),
                            );
                            tokio::time::sleep(delay).await;
                        }
                        None => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    /// One attempt: wait for the bucket, send, classify. Every attempt spends a token.
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
        if let Ok(answer) = &result
            && let Some(hint) = answer.rate.hint()
        {
            permit.hinted(hint);
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        trace.method = req.method.to_string();
        trace.path = req.path.clone();
        trace.attempts += 1;
        trace.ms = ms;
        let result = match result {
            Ok(answer) if (200..300).contains(&answer.status) => {
                self.throttle_over(bucket);
                self.confirm(req, &answer).map(|json| Reply {
                    status: answer.status,
                    json,
                    etag: answer.etag,
                })
            }
            Ok(answer) => Err(ScimError::from_response(
                answer.status,
                &self.untrusted_error(&answer.body),
                answer.rate.wait(),
            )),
            Err(e) => Err(e),
        };
        if req.is_write() && !matches!(result, Err(ScimError::Connect { .. })) {
            trace.writes += 1;
            if result.as_ref().is_err_and(ScimError::outcome_unknown) {
                trace.unknown = true;
            }
        }
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
        tracing::debug!(method = %req.method, path = %req.path, status = trace.status, ms, "scim request");
        match &result {
            Err(ScimError::RateLimited { retry_after }) => {
                tally.rate_limited.fetch_add(1, Ordering::Relaxed);
                let pause = retry_after.unwrap_or_else(|| self.default_pause(bucket));
                tracing::warn!(
                    "429 from the target: pausing {bucket} requests for {}",
                    crate::seconds(pause)
                );
                permit.throttled(pause);
                tally.taught(bucket, inner.pacer.allowed(bucket));
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

    /// The content of a 2xx, checked against what the request expects (see `Expect`).
    fn confirm(
        &self,
        req: &Request,
        answer: &Answer<'_>,
    ) -> Result<Option<serde_json::Value>, ScimError> {
        let status = answer.status;
        let unconfirmed = |what: String| ScimError::Unconfirmed { status, what };
        let body = answer.body.as_slice();
        if req.expect == Expect::Any {
            return Ok(serde_json::from_slice(body).ok());
        }
        if status == 204 || body.iter().all(u8::is_ascii_whitespace) {
            let allowed = match &req.expect {
                Expect::Nothing => true,
                Expect::User(Some(_)) | Expect::Group(Some(_)) => {
                    status == 204 && no_content_ok(&self.inner.profile, &req.method)
                }
                _ => false,
            };
            return if allowed {
                Ok(None)
            } else {
                Err(unconfirmed(format!(
                    "with no content where {} was expected",
                    req.expect.describe()
                )))
            };
        }
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => return Err(unconfirmed(unreadable(answer, &e))),
        };
        if req.expect != Expect::Nothing {
            check_shape(&req.expect, &value).map_err(|what| {
                unconfirmed(format!(
                    "with {what} where {} was expected",
                    req.expect.describe()
                ))
            })?;
        }
        Ok(Some(value))
    }

    async fn exchange(
        &self,
        req: &Request,
        if_match: Option<&str>,
    ) -> Result<Answer<'_>, ScimError> {
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
        let mut response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let rate = RateHeaders::parse(response.headers(), SystemTime::now());
        let token = inner.token.expose_secret();
        // An ETag is sent back as If-Match and never shown; one that is not a plausible
        // version (oversized, or carrying our token) is not kept at all.
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 256 && !v.contains(token))
            .map(str::to_owned);
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read chunk by chunk against the cap, so a hostile or broken answer costs at most the
        // cap in memory however large it is. An error's body only needs its detail.
        let success = (200..300).contains(&status);
        let cap = if success {
            inner.max_response_bytes
        } else {
            ERROR_BODY_CAP.min(inner.max_response_bytes)
        };
        let announced = response
            .content_length()
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let too_large = ScimError::ResponseTooLarge {
            status,
            limit: inner.max_response_bytes,
        };
        if success && announced.is_some_and(|n| n > cap) {
            return Err(too_large);
        }
        // The buffers of all answers being read are held to one budget as well: with every
        // request in flight answered at the cap, memory would otherwise grow with
        // `max_in_flight`.
        let mut held = Held {
            budget: &inner.bodies,
            bytes: 0,
        };
        let together = ScimError::ResponsesTooLarge {
            status,
            limit: inner.bodies.limit,
        };
        // The chunks are kept as the connection hands them over and joined once, into a
        // buffer of the exact size: a buffer grown by doubling toward the cap leaves the
        // allocator a trail of large freed blocks on every oversized answer (measured on one
        // 16 MiB answer at a time: 100 MB resident, against 66 MB this way; copying into
        // fixed-size pages did worse, 75 MB).
        let mut chunks = Vec::new();
        let mut len = 0usize;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let take = if len + chunk.len() > cap {
                if success {
                    return Err(too_large);
                }
                cap - len
            } else {
                chunk.len()
            };
            if !held.grow_to(len + take) {
                return Err(together);
            }
            len += take;
            chunks.push(chunk.slice(..take));
            if take < chunk.len() {
                break;
            }
        }
        let body = match chunks.len() {
            0 => Vec::new(),
            1 => chunks.swap_remove(0).to_vec(),
            _ => {
                let mut body = Vec::with_capacity(len);
                for chunk in chunks.drain(..) {
                    body.extend_from_slice(&chunk);
                }
                body
            }
        };
        Ok(Answer {
            status,
            rate,
            etag,
            content_type,
            body: redact_token(body, token),
            _held: held,
        })
    }
}

/// A URL parse error in words: `url`'s own ("relative URL without a base") names the parser's
/// view, not what to write.
pub fn url_error(e: url::ParseError) -> String {
    match e {
        url::ParseError::RelativeUrlWithoutBase => {
            "not an absolute URL: write it with its scheme and host, e.g. \
             https://miro.com/api/v1/scim"
                .to_owned()
        }
        url::ParseError::EmptyHost => "no host name after the scheme".to_owned(),
        url::ParseError::InvalidPort => "the port is not a number from 1 to 65535".to_owned(),
        other => other.to_string(),
    }
}

/// The user a resource describes and its version (`meta.version`, else the `ETag` header it
/// came with), when it carries both.
pub(crate) fn version_in(
    resource: &serde_json::Value,
    etag: Option<&str>,
) -> Option<(ScimId, String)> {
    let id = match resource.get("id") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return None,
    };
    let version = resource
        .get("meta")
        .and_then(|m| m.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or_else(|| etag.map(str::to_owned))?;
    Some((ScimId::new(id), version))
}

/// A base URL as a client takes it: without a trailing `/`, http or https.
pub(crate) fn checked_base_url(url: &str) -> Result<String, ClientError> {
    let base_url = url.trim_end_matches('/').to_owned();
    let parsed = url::Url::parse(&base_url).map_err(|e| ClientError::InvalidBaseUrl {
        url: base_url.clone(),
        reason: url_error(e),
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

/// One response as read; its buffer counts against the client's budget until dropped.
struct Answer<'a> {
    status: u16,
    /// Retry-After and X-RateLimit-*: what the target says of its budget.
    rate: RateHeaders,
    etag: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
    _held: Held<'a>,
}

/// Bytes of answers being read at once across a client's requests.
struct BodyBudget {
    held: AtomicUsize,
    limit: usize,
}

/// One answer's share of the budget, given back when the answer is dropped.
struct Held<'a> {
    budget: &'a BodyBudget,
    bytes: usize,
}

impl Held<'_> {
    /// Takes the budget for a buffer of `bytes`; `false` (nothing taken) when the answers
    /// being read would together pass the limit.
    fn grow_to(&mut self, bytes: usize) -> bool {
        let extra = bytes.saturating_sub(self.bytes);
        if extra == 0 {
            return true;
        }
        let before = self.budget.held.fetch_add(extra, Ordering::AcqRel);
        if before.saturating_add(extra) > self.budget.limit {
            self.budget.held.fetch_sub(extra, Ordering::AcqRel);
            return false;
        }
        self.bytes = bytes;
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Whether a write may be answered 204 No Content: a DELETE anywhere; a PATCH where RFC 7644
/// §3.5.2 allows it (generic SPs). Miro documents 200 with the whole resource for PATCH and PUT,
/// so an empty answer there confirms nothing.
fn no_content_ok(profile: &Profile, method: &Method) -> bool {
    match *method {
        Method::DELETE => true,
        Method::PATCH => profile.patch_may_answer_no_content,
        _ => false,
    }
}

/// What a 2xx body that is not JSON looks like, for the error (never the body itself: the
/// target's text is untrusted and may be huge).
fn unreadable(answer: &Answer<'_>, e: &serde_json::Error) -> String {
    let html = answer
        .content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().contains("html"))
        || answer
            .body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'<');
    let kind = answer
        .content_type
        .as_deref()
        .map(|t| {
            format!(
                ", Content-Type {:?}",
                t.chars().take(80).collect::<String>()
            )
        })
        .unwrap_or_default();
    if html {
        format!(
            "with an HTML page ({} bytes{kind}), not SCIM JSON",
            answer.body.len()
        )
    } else if e.is_eof() {
        format!(
            "with a truncated JSON body ({} bytes{kind})",
            answer.body.len()
        )
    } else {
        format!(
            "with a body that is not JSON ({} bytes{kind}: {e})",
            answer.body.len()
        )
    }
}

/// Checks a parsed 2xx body against the expected shape; the error says what was found.
fn check_shape(expect: &Expect, value: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    let Some(obj) = value.as_object() else {
        return Err("JSON that is not an object".into());
    };
    let id = |expected: &Option<ScimId>| -> Result<(), String> {
        let found = match obj.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err("a JSON object without an id".into()),
        };
        match expected {
            Some(want) if want.as_str() != found => Err(format!(
                "the resource {:?}",
                found.chars().take(64).collect::<String>()
            )),
            _ => Ok(()),
        }
    };
    match expect {
        Expect::Any | Expect::Nothing => Ok(()),
        Expect::List => {
            if !obj.get("totalResults").is_some_and(Value::is_u64) {
                return Err("a JSON object without totalResults".into());
            }
            match obj.get("Resources").or_else(|| obj.get("resources")) {
                None | Some(Value::Array(_)) => Ok(()),
                Some(_) => Err("Resources that is not an array".into()),
            }
        }
        Expect::User(expected) => {
            id(expected)?;
            match obj.get("userName") {
                Some(Value::String(s)) if !s.is_empty() => Ok(()),
                _ => Err("a resource without a userName".into()),
            }
        }
        Expect::Group(expected) => id(expected),
    }
}

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
    let connect = e.is_connect() && !e.is_timeout();
    let kind = if e.is_timeout() {
        "timed out"
    } else if connect {
        "cannot connect"
    } else {
        "connection failed"
    };
    // The URL is ours (no secret in it), but the message is enough without it.
    let e = e.without_url();
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(&e);
    let mut depth = 0;
    while let Some(s) = source {
        if depth >= 4 {
            break;
        }
        chain.push_str(&format!(": {s}"));
        source = s.source();
        depth += 1;
    }
    let message = match transport_hint(&chain) {
        Some(hint) => format!("{hint} ({chain})"),
        None => format!("{kind}: {chain}"),
    };
    if connect {
        ScimError::Connect { message }
    } else {
        ScimError::Transport { message }
    }
}

/// What to check, for the transport errors whose own words (rustls', hyper's, the resolver's)
/// say nothing to an admin.
fn transport_hint(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    let hints: [(&[&str], &str); 6] = [
        (
            &["invalidcontenttype", "corrupt message"],
            "the server at that address does not speak TLS: check the URL's scheme (https:// \
             for a plain http server?) and port",
        ),
        (
            &["invalid peer certificate", "unknownissuer", "certificate"],
            "the server's TLS certificate is not trusted: check the host name in the URL, and \
             any proxy that intercepts TLS",
        ),
        (
            &[
                "dns error",
                "failed to lookup address",
                "name or service not known",
            ],
            "the host name in the URL does not resolve: check its spelling and this machine's DNS",
        ),
        (
            &["connection refused"],
            "nothing accepts connections at that host and port: check the URL and that the \
             service is up",
        ),
        (
            &["timed out", "deadline has elapsed"],
            "no answer in time: check the URL, firewalls and proxies between here and the target",
        ),
        (
            &["connection reset", "broken pipe", "unexpected eof"],
            "the connection was cut: a proxy, a firewall or the target closed it",
        ),
    ];
    hints
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| m.contains(n)))
        .map(|(_, hint)| *hint)
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
    fn answers_read_at_once_share_one_budget() {
        let budget = BodyBudget {
            held: AtomicUsize::new(0),
            limit: 100,
        };
        let mut a = Held {
            budget: &budget,
            bytes: 0,
        };
        let mut b = Held {
            budget: &budget,
            bytes: 0,
        };
        assert!(a.grow_to(60));
        assert!(a.grow_to(40), "shrinking takes nothing");
        assert!(!b.grow_to(50), "60 + 50 > 100");
        assert_eq!(
            budget.held.load(Ordering::SeqCst),
            60,
            "a refusal takes nothing"
        );
        assert!(b.grow_to(40));
        drop(a);
        assert_eq!(budget.held.load(Ordering::SeqCst), 40);
        assert!(b.grow_to(100));
        drop(b);
        assert_eq!(budget.held.load(Ordering::SeqCst), 0);
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
