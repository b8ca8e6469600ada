//! Configuration of an emulator instance: identity, Miro's limits, faults and seed data.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which Miro group model the emulated organization uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupModel {
    /// Legacy model: a SCIM Group is a Miro team; no POST/PUT/DELETE on /Groups.
    Team,
    /// Migrated orgs (Miro since 2026): a SCIM Group is a user group that can be created and
    /// deleted, and assigned to teams over the REST API.
    #[default]
    UserGroup,
}

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Bearer token required on SCIM routes; empty disables the check.
    pub token: String,
    pub base_path: String,
    pub group_model: GroupModel,
    /// `None` disables rate limiting. `Emulator::set_limits` changes them while serving.
    pub limits: Option<RateLimits>,
    pub faults: Faults,
    /// Largest page `GET /Users` and `GET /Groups` return, whatever `count` asks for.
    pub page_cap: usize,
    /// `Some` makes creates and renames to other domains fail with 409 "not whitelisted".
    pub allowed_domains: Option<Vec<String>>,
    /// `Some(n)`: creating an active user beyond `n` active users fails with 409.
    pub max_full_users: Option<usize>,
    pub seed: Seed,
    /// Faults are drawn from an RNG seeded with this so a failing run replays.
    pub rng_seed: u64,
    /// Keep a log of every SCIM request and how it was answered (`Emulator::requests`,
    /// `/_emulator/requests`), for tests that account for every request the target saw.
    pub record_requests: bool,
    /// Bearer token Miro's REST API (`/v2/...`) requires: a credential of its own, apart from
    /// the SCIM token. Empty: the REST API answers 401 to everything.
    pub rest_token: String,
    /// The organization's id in REST paths (`/v2/orgs/{org_id}/...`).
    pub org_id: String,
    /// The licences (`userType`) the org accepts.
    pub licences: Vec<String>,
    /// The admin roles (`organization_admin_role`) the org has: Miro's three and its custom
    /// ones.
    pub admin_roles: Vec<String>,
}

/// Miro's licences (its 2026 reference).
pub const MIRO_LICENCES: [&str; 7] = [
    "Full",
    "Free",
    "Free Restricted",
    "Full (Trial)",
    "Basic",
    "Standard",
    "Advanced",
];

/// Miro's built-in admin roles.
pub const MIRO_ADMIN_ROLES: [&str; 3] = ["Content Admin", "User Admin", "Security Admin"];

/// The org id the emulator answers to unless told otherwise.
pub const DEFAULT_ORG_ID: &str = "3074457350000000001";

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            token: String::new(),
            base_path: "/api/v1/scim".to_owned(),
            group_model: GroupModel::UserGroup,
            limits: None,
            faults: Faults::default(),
            page_cap: 100,
            allowed_domains: None,
            max_full_users: None,
            seed: Seed::default(),
            rng_seed: 0,
            record_requests: false,
            rest_token: String::new(),
            org_id: DEFAULT_ORG_ID.to_owned(),
            licences: MIRO_LICENCES.map(String::from).into(),
            admin_roles: MIRO_ADMIN_ROLES.map(String::from).into(),
        }
    }
}

/// Requests admitted per bucket within any `window`-long interval (a sliding log, see `limits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub window: Duration,
    pub users_get: u32,
    pub users_post: u32,
    pub users_put_patch: u32,
    pub users_delete: u32,
    pub groups_list: u32,
    pub groups_get: u32,
    /// PATCH /Groups/{id} with a body of at most 500 bytes.
    pub groups_patch_small: u32,
    /// PATCH /Groups/{id} with a body over 500 bytes.
    pub groups_patch_large: u32,
    /// Not published by Miro; a guess so user-group creates and deletes are bounded too.
    pub groups_post_delete: u32,
    /// Miro's REST API, level-1 calls (50 of 100 000 credits a minute: 2000 a minute, 1000
    /// per 30 s window).
    pub rest_level1: u32,
    /// Miro does not document Retry-After on SCIM 429s, so it is off unless asked for.
    pub retry_after: bool,
    /// Retry-After as an HTTP-date (RFC 9110's other form) instead of seconds.
    #[serde(default)]
    pub retry_after_http_date: bool,
    /// `X-RateLimit-Limit`, `-Remaining` and `-Reset` (a Unix time in seconds) on every answer
    /// of a limited bucket, 429s included. Miro's REST API sends them; its SCIM documentation
    /// does not say, so they are off unless asked for.
    #[serde(default)]
    pub rate_limit_headers: bool,
}

impl RateLimits {
    /// Miro's published budgets per 30 seconds.
    pub fn miro() -> Self {
        Self::miro_scaled(Duration::from_secs(30))
    }

    /// Miro's budgets over a shorter window so tests do not wait 30 s.
    pub fn miro_scaled(window: Duration) -> Self {
        Self {
            window,
            users_get: 200,
            users_post: 200,
            users_put_patch: 100,
            users_delete: 20,
            groups_list: 5,
            groups_get: 20,
            groups_patch_small: 100,
            groups_patch_large: 5,
            groups_post_delete: 20,
            rest_level1: 1000,
            retry_after: false,
            retry_after_http_date: false,
            rate_limit_headers: false,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::miro()
    }
}

/// Faults injected into SCIM requests. JSON carries the latency as `latency_ms`.
///
/// At most one of the rate-drawn faults hits a request, drawn in this order: `error_rate`,
/// `html_rate`, `drop_rate`, `oversized_rate`, `slow_body_rate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Only writes (POST, PUT, PATCH, DELETE) draw the rate-drawn faults; reads are served.
    pub writes_only: bool,
    /// Fraction of SCIM requests answered 500 or 503.
    pub error_rate: f64,
    /// Fraction of SCIM requests answered `200 OK` with an HTML page, as a proxy or a
    /// maintenance page would: not applied.
    pub html_rate: f64,
    /// Fraction of SCIM requests whose connection is closed without a response.
    pub drop_rate: f64,
    /// A dropped write is applied first, then its response is lost.
    pub drop_after_apply: bool,
    /// Fraction of SCIM requests applied, then answered `200 OK` with a body of
    /// `oversized_bytes` (the resource, padded).
    pub oversized_rate: f64,
    pub oversized_bytes: u64,
    /// Send the oversized body chunked, without a Content-Length, so the client only learns
    /// its size by reading it.
    pub oversized_chunked: bool,
    /// Fraction of SCIM requests applied, then answered with the body trickling in over
    /// `slow_body_ms` (headers at once).
    pub slow_body_rate: f64,
    pub slow_body_ms: u64,
    #[serde(rename = "latency_ms", with = "millis")]
    pub latency: Duration,
    /// The next N SCIM requests get 429.
    pub burst_429: u32,
    /// Retry-After (seconds) on the injected burst 429s.
    pub retry_after_secs: Option<u64>,
    /// Every SCIM request gets 401, as after a token rotation.
    pub fail_auth: bool,
    /// Once this many writes reached a handler, every SCIM request is refused: a token revoked,
    /// or SCIM turned off, in the middle of a cycle.
    pub refuse_after_writes: Option<u64>,
    /// Refuse (`refuse_after_writes`) with Miro's 403 "SCIM integration is disabled" instead of
    /// a 401.
    pub refuse_forbidden: bool,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Users, groups and teams present before the first request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Seed {
    pub users: Vec<SeedUser>,
    pub groups: Vec<SeedGroup>,
    /// Miro teams (the user-group model: teams apart from SCIM groups; the team model's teams
    /// are its SCIM groups).
    pub teams: Vec<SeedTeam>,
}

/// A Miro team and the user groups (by displayName) assigned to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedTeam {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedUser {
    pub user_name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    /// Guests exist in the org but SCIM never shows them.
    #[serde(default)]
    pub guest: bool,
    /// Role ORGANIZATION_INTERNAL_ADMIN instead of ORGANIZATION_INTERNAL_USER.
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub department: Option<String>,
    /// The licence; Full when absent.
    #[serde(default)]
    pub user_type: Option<String>,
    /// Admin roles (`organization_admin_role`) the user holds.
    #[serde(default)]
    pub admin_roles: Vec<String>,
}

impl SeedUser {
    pub fn new(user_name: impl Into<String>) -> Self {
        Self {
            user_name: user_name.into(),
            display_name: None,
            active: true,
            guest: false,
            admin: false,
            department: None,
            user_type: None,
            admin_roles: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedGroup {
    pub display_name: String,
    /// userNames of the members.
    #[serde(default)]
    pub members: Vec<String>,
}
