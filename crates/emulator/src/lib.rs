//! A Miro-faithful SCIM 2.0 service provider for end-to-end tests, benchmarks and the
//! offline demo: Miro's quirks (see `shared/miro-scim.md`), its rate limits on a clock tests
//! can shrink, and faults injected on demand from a seeded RNG.
//!
//! Rate limits are a sliding log per bucket (see `limits`): a client passes only if it never
//! sends more than N requests of a bucket in any `window`-long interval.
//!
//! A SCIM request passes, in order: latency → `fail_auth`/token (401), `refuse_after_writes`
//! (401 or 403) → body size (413) → rate limit (429, consumes budget) → `burst_429` →
//! `error_rate` (500/503) → `html_rate` (200 with an HTML page, not applied) → `drop_rate`
//! (connection severed; with `drop_after_apply` a write is applied first) → handler →
//! `oversized_rate` (the answer replaced by a huge 200) or `slow_body_rate` (the answer
//! trickles in). With `Faults::writes_only`, reads never draw a fault.

mod admin;
mod config;
mod discovery;
mod error;
mod faults;
mod filter;
mod groups;
mod limits;
mod resource;
mod rest;
mod scim;
mod stats;
mod store;
mod users;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post, put};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    DEFAULT_ORG_ID, EmulatorConfig, Faults, GroupModel, MIRO_ADMIN_ROLES, MIRO_LICENCES,
    RateLimits, Seed, SeedGroup, SeedTeam, SeedUser,
};
pub use filter::{Filter, FilterError, parse as parse_filter};
pub use stats::{RequestRecord, Stats};
pub use store::{GroupRecord, ROLE_ADMIN, ROLE_USER, TeamRecord, UserRecord};

use limits::Limiter;
use store::Directory;

/// Handle to one emulated organization. Clones share state.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: EmulatorConfig,
    state: Mutex<Shared>,
}

/// Everything a request may change, behind one lock that is never held across an await.
struct Shared {
    dir: Directory,
    faults: Faults,
    rng: StdRng,
    limiter: Limiter,
    /// The limits in force (the configuration's, until `set_limits`).
    limits: Option<RateLimits>,
    stats: Stats,
    /// Every SCIM request, when `EmulatorConfig::record_requests`.
    requests: Vec<RequestRecord>,
}

/// What `Emulator::seed` added and what it skipped (duplicates, invalid names, unknown members).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeedReport {
    pub users_added: usize,
    pub groups_added: usize,
    #[serde(default)]
    pub teams_added: usize,
    pub skipped: Vec<String>,
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        let shared = Shared {
            dir: Directory::default(),
            faults: config.faults.clone(),
            rng: StdRng::seed_from_u64(config.rng_seed),
            limiter: Limiter::default(),
            limits: config.limits.clone(),
            stats: Stats::default(),
            requests: Vec::new(),
        };
        let seed = config.seed.clone();
        let emulator = Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(shared),
            }),
        };
        let report = emulator.seed(&seed);
        for s in &report.skipped {
            tracing::warn!("seed entry skipped: {s}");
        }
        emulator
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.inner.config
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The SCIM routes under `base_path` plus the `/_emulator/*` admin routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/_emulator/stats", get(admin::stats))
            .route("/_emulator/stats/reset", post(admin::reset_stats))
            .route("/_emulator/requests", get(admin::requests))
            .route("/_emulator/users", get(admin::users))
            .route("/_emulator/groups", get(admin::groups))
            .route("/_emulator/teams", get(admin::teams))
            .route("/v2/{*rest}", any(rest::handle))
            .route(
                "/_emulator/faults",
                put(admin::set_faults).get(admin::faults),
            )
            .route("/_emulator/seed", post(admin::seed))
            .fallback(scim::handle)
            .with_state(self.clone())
    }

    /// Binds `addr`, serves in a background task and returns once the socket accepts.
    pub async fn serve(self, addr: SocketAddr) -> anyhow::Result<RunningEmulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = self.router();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("emulator server failed: {e}");
            }
        });
        Ok(RunningEmulator {
            addr,
            base_url: format!("http://{addr}{}", self.inner.config.base_path),
            emulator: self,
            shutdown: tx,
            task,
        })
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    pub fn reset_stats(&self) {
        let mut state = self.lock();
        state.stats = Stats::default();
        state.requests.clear();
    }

    /// The SCIM requests seen so far, in arrival order (empty unless
    /// `EmulatorConfig::record_requests`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// The rate limits in force.
    pub fn limits(&self) -> Option<RateLimits> {
        self.lock().limits.clone()
    }

    /// Replaces the rate limits (a benchmark's setup runs without them, then measures with
    /// them); what was admitted so far is forgotten.
    pub fn set_limits(&self, limits: Option<RateLimits>) {
        let mut state = self.lock();
        state.limits = limits;
        state.limiter = Limiter::default();
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Every user, guests and deactivated users included, in creation order.
    pub fn users(&self) -> Vec<UserRecord> {
        self.lock().dir.users().cloned().collect()
    }

    pub fn groups(&self) -> Vec<GroupRecord> {
        self.lock().dir.groups().cloned().collect()
    }

    /// Adds seed users and groups. Users whose userName exists (case-insensitively) or is not
    /// an email are skipped; a group whose name exists gets the members added.
    pub fn seed(&self, seed: &Seed) -> SeedReport {
        let mut state = self.lock();
        let dir = &mut state.dir;
        let mut report = SeedReport::default();
        for su in &seed.users {
            if !resource::looks_like_email(&su.user_name) {
                report
                    .skipped
                    .push(format!("user '{}': not an email", su.user_name));
                continue;
            }
            if dir.user_by_name(&su.user_name).is_some() {
                report
                    .skipped
                    .push(format!("user '{}': already exists", su.user_name));
                continue;
            }
            let mut attributes = serde_json::json!({});
            if let Some(d) = &su.department {
                attributes[resource::ENTERPRISE_URN] = serde_json::json!({"department": d});
            }
            let (seq, id) = dir.new_user_id();
            dir.insert_user(
                seq,
                UserRecord {
                    id,
                    user_name: su.user_name.clone(),
                    display_name: su
                        .display_name
                        .clone()
                        .unwrap_or_else(|| su.user_name.clone()),
                    active: su.active,
                    guest: su.guest,
                    role: if su.admin { ROLE_ADMIN } else { ROLE_USER }.to_owned(),
                    user_type: su.user_type.clone().unwrap_or_else(|| "Full".to_owned()),
                    admin_roles: su.admin_roles.clone(),
                    preferred_language: None,
                    attributes,
                },
            );
            report.users_added += 1;
        }
        for sg in &seed.groups {
            let mut members = Vec::new();
            for name in &sg.members {
                match dir.user_by_name(name) {
                    Some(u) if !u.guest => members.push(u.id.clone()),
                    _ => report.skipped.push(format!(
                        "member '{name}' of group '{}': no such member",
                        sg.display_name
                    )),
                }
            }
            let existing = dir.group_by_name(&sg.display_name).map(|g| g.id.clone());
            match existing.and_then(|id| dir.group_mut(&id)) {
                Some(g) => {
                    for m in members {
                        if !g.members.contains(&m) {
                            g.members.push(m);
                        }
                    }
                }
                None => {
                    let (seq, id) = dir.new_group_id();
                    members.dedup();
                    dir.insert_group(
                        seq,
                        GroupRecord {
                            id,
                            display_name: sg.display_name.clone(),
                            members,
                        },
                    );
                    report.groups_added += 1;
                }
            }
        }
        for st in &seed.teams {
            let mut groups = Vec::new();
            for name in &st.groups {
                match dir.group_by_name(name) {
                    Some(g) => groups.push(g.id.clone()),
                    None => report.skipped.push(format!(
                        "group '{name}' of team '{}': no such group",
                        st.name
                    )),
                }
            }
            let id = dir.new_team_id();
            dir.add_team(TeamRecord {
                id,
                name: st.name.clone(),
                groups,
            });
            report.teams_added += 1;
        }
        report
    }

    /// Every team (REST API) with its user groups, in creation order. In the team model the
    /// teams are the SCIM groups, and none is listed here.
    pub fn teams(&self) -> Vec<TeamRecord> {
        self.lock().dir.teams().to_vec()
    }
}

/// A served emulator; dropping it without `shutdown` leaves the server running until the
/// runtime stops.
pub struct RunningEmulator {
    pub addr: SocketAddr,
    /// e.g. "http://127.0.0.1:PORT/api/v1/scim".
    pub base_url: String,
    pub emulator: Emulator,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningEmulator {
    /// Stops accepting, lets in-flight requests finish, and waits (bounded) for the server.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            // Idle keep-alive connections can hold graceful shutdown open; don't hang tests.
            task.abort();
        }
    }
}
