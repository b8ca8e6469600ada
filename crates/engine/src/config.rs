//! sync.toml, the engine's input: parsing, defaults, validation, and what follows from it (the
//! target's profile with its overrides, the planner's policy, the token). Front ends find the
//! file; the engine reads it.
//!
//! Each section's type lives with the code that uses it (scope/roles/mapping in `directory`,
//! policy in `plan`, `[source]` in `source`); this module composes them and resolves paths
//! relative to the file.

use crate::error::{ConfigError, SecretError};
use crate::secret::{SecretRef, Trim};
pub use crate::source::{SourceConfig, SourceKind};
use scimsync_directory::{Mapping, MappingConfig, RolesConfig, ScopeConfig};
use scimsync_plan::{OnDelete, OnUnassign, Policy};
use scimsync_scim::{Bucket, Profile, ProfileKind};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: SourceConfig,
    pub target: TargetConfig,
    #[serde(default)]
    pub scope: ScopeConfig,
    #[serde(default)]
    pub roles: RolesConfig,
    /// `[groups]`: which directory groups become target groups (crates/directory/src/groups.rs).
    #[serde(default)]
    pub groups: scimsync_directory::GroupsConfig,
    #[serde(default)]
    pub mapping: MappingConfig,
    /// `[teams]`: a synced directory group's name → the Miro teams its user group is assigned
    /// to (Miro's REST API, `[target.rest]`).
    #[serde(default)]
    pub teams: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// Where the file was read from; relative paths in it are relative to its directory.
    #[serde(skip)]
    pub origin: PathBuf,
    /// Hash of the file's text, for idm_integration_update.
    #[serde(skip)]
    pub text_hash: String,
}

/// `[target] group_model`: the model crate's type, so the planner and executor read it as is.
pub use scimsync_model::GroupModel;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub url: String,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Present only so we can refuse it with a clear message.
    token: Option<toml::Value>,
    #[serde(default)]
    pub profile: ProfileKind,
    /// Miro's group model. Absent: `user_group` for a new install, `team` for a store whose
    /// group links were made under the legacy model (`crate::teams::group_model`).
    #[serde(default)]
    pub group_model: Option<GroupModel>,
    /// `[target.rest]`: Miro's REST API, for assigning user groups to teams (`[teams]`).
    #[serde(default)]
    pub rest: Option<RestConfig>,
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Overrides of the profile's per-bucket budgets (requests per window).
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    /// Concurrent requests in flight.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// `[target.capabilities]`: overrides of what the SP announces in /ServiceProviderConfig.
    #[serde(default)]
    pub capabilities: scimsync_scim::CapabilityOverrides,
    /// Larger responses are not read and fail the attempt: a byte count or `"16MiB"`.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: ByteSize,
}

/// `[target.rest]`: where Miro's REST API is and the OAuth token for it (a Company Admin's,
/// with `organizations:teams:write` and `organizations:groups:read`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    #[serde(default = "default_rest_url")]
    pub url: String,
    /// The organization's id (the number in Miro's admin console URLs).
    pub org_id: String,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Present only so we can refuse it with a clear message.
    token: Option<toml::Value>,
    /// The REST budget, in credits per minute (Miro: 100 000 per user and app; a call made
    /// here costs 50).
    #[serde(default = "default_rest_credits")]
    pub credits_per_minute: u32,
}

fn default_rest_url() -> String {
    scimsync_executor::MIRO_REST_URL.to_owned()
}

fn default_rest_credits() -> u32 {
    scimsync_scim::MIRO_REST_CREDITS_PER_MINUTE
}

fn default_max_response_bytes() -> ByteSize {
    ByteSize(scimsync_executor::DEFAULT_MAX_RESPONSE_BYTES)
}

/// `[target.rate_limits]`: the window and per-bucket budgets that override the profile's.
/// One field per bucket rather than a flattened map: serde cannot combine `flatten` with
/// `deny_unknown_fields` (every key was refused as unknown), and a typo must still be an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    #[serde(default, with = "humantime_serde_compat::option")]
    pub window: Option<Duration>,
    /// How long after a window a request's slot frees, counted from its answer: slack for clock
    /// drift between the target's counters. Default: a hundredth of the window.
    #[serde(default, with = "humantime_serde_compat::option")]
    pub margin: Option<Duration>,
    users_get: Option<u32>,
    users_post: Option<u32>,
    users_put_patch: Option<u32>,
    users_delete: Option<u32>,
    groups_list: Option<u32>,
    groups_get: Option<u32>,
    groups_patch_small: Option<u32>,
    groups_patch_large: Option<u32>,
    groups_post_delete: Option<u32>,
}

impl RateLimitsConfig {
    /// The budgets set here, by bucket.
    pub fn buckets(&self) -> BTreeMap<Bucket, u32> {
        [
            (Bucket::UsersGet, self.users_get),
            (Bucket::UsersPost, self.users_post),
            (Bucket::UsersPutPatch, self.users_put_patch),
            (Bucket::UsersDelete, self.users_delete),
            (Bucket::GroupsList, self.groups_list),
            (Bucket::GroupsGet, self.groups_get),
            (Bucket::GroupsPatchSmall, self.groups_patch_small),
            (Bucket::GroupsPatchLarge, self.groups_patch_large),
            (Bucket::GroupsPostDelete, self.groups_post_delete),
        ]
        .into_iter()
        .filter_map(|(bucket, n)| Some((bucket, n?)))
        .collect()
    }
}

/// A size in bytes: a number (`16777216`) or a number with a unit (`"16MiB"`, `"512 KiB"`,
/// `"20MB"`). Parsed here rather than with a crate: a dozen lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub usize);

/// A value written as a bare number or as text (`25` or `"10%"`, `16777216` or `"16MiB"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    N(u64),
    S(String),
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = match NumberOrText::deserialize(d)? {
            NumberOrText::N(n) => usize::try_from(n).map_err(|_| format!("{n} bytes is too large")),
            NumberOrText::S(s) => parse_size(&s),
        }
        .map_err(serde::de::Error::custom)?;
        if bytes == 0 {
            return Err(serde::de::Error::custom("a size must be larger than zero"));
        }
        Ok(ByteSize(bytes))
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as \"16MiB\" or 16777216"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?}; use B, KiB, MiB, GiB (or KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(factor)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_in_flight() -> usize {
    16
}

/// `max_deprovisions`, `max_shrink`, `max_invalid`: a count, or a percentage of a base (managed
/// users, the last snapshot's users, the directory's records).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    Count(usize),
    Percent(f64),
}

impl Threshold {
    pub fn limit(self, managed: usize) -> usize {
        match self {
            Threshold::Count(n) => n,
            Threshold::Percent(p) => ((managed as f64) * p / 100.0).floor() as usize,
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Count(n) => write!(f, "{n}"),
            Threshold::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::N(n) => Ok(Threshold::Count(n as usize)),
            NumberOrText::S(s) => parse_threshold(&s).map_err(serde::de::Error::custom),
        }
    }
}

fn parse_threshold(s: &str) -> Result<Threshold, String> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a percentage such as \"10%\""))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("{s:?} must be between 0% and 100%"));
        }
        Ok(Threshold::Percent(p))
    } else {
        s.parse()
            .map(Threshold::Count)
            .map_err(|_| format!("{s:?} is neither a count (25) nor a percentage (\"10%\")"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub on_unassign: OnUnassign,
    #[serde(default)]
    pub on_delete: OnDelete,
    #[serde(default = "default_max_deprovisions")]
    pub max_deprovisions: Threshold,
    /// Hold deprovisions when the snapshot has this many fewer users than the last good one.
    #[serde(default = "default_max_shrink")]
    pub max_shrink: Threshold,
    /// Hold every deprovision (and end the cycle non-zero) when more than this many of the
    /// directory's records are invalid: a broken export is not a company of leavers.
    #[serde(default = "default_max_invalid")]
    pub max_invalid: Threshold,
    /// How long an `approve-deletes` approval stays valid.
    #[serde(default = "default_approval_ttl", with = "humantime_serde_compat")]
    pub approval_ttl: Duration,
    /// Quarantine when more than this fraction of a cycle's operations failed…
    #[serde(default = "default_quarantine_ratio")]
    pub quarantine_ratio: f64,
    /// …and at least this many did.
    #[serde(default = "default_quarantine_min_failures")]
    pub quarantine_min_failures: usize,
    #[serde(default)]
    pub quarantine_backoff: Backoff,
    /// With a delete policy: deactivate first, delete only after this long deactivated.
    #[serde(default, with = "humantime_serde_compat::option")]
    pub delete_after: Option<Duration>,
}

fn default_max_shrink() -> Threshold {
    Threshold::Percent(20.0)
}
fn default_max_invalid() -> Threshold {
    Threshold::Percent(10.0)
}
fn default_approval_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_quarantine_ratio() -> f64 {
    0.4
}
fn default_quarantine_min_failures() -> usize {
    5
}

fn default_max_deprovisions() -> Threshold {
    Threshold::Percent(10.0)
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            on_unassign: OnUnassign::default(),
            on_delete: OnDelete::default(),
            max_deprovisions: default_max_deprovisions(),
            max_shrink: default_max_shrink(),
            max_invalid: default_max_invalid(),
            approval_ttl: default_approval_ttl(),
            quarantine_ratio: default_quarantine_ratio(),
            quarantine_min_failures: default_quarantine_min_failures(),
            quarantine_backoff: Default::default(),
            delete_after: None,
        }
    }
}

/// The back-off steps; the last repeats.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff(pub Vec<Duration>);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(vec![
            Duration::from_secs(3600),
            Duration::from_secs(6 * 3600),
            Duration::from_secs(24 * 3600),
        ])
    }
}

impl<'de> Deserialize<'de> for Backoff {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        if raw.is_empty() {
            return Err(serde::de::Error::custom(
                "quarantine_backoff needs at least one duration",
            ));
        }
        raw.iter()
            .map(|s| {
                humantime::parse_duration(s.trim())
                    .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Backoff)
    }
}

impl Backoff {
    /// The back-off for the `level`th consecutive quarantined cycle (1-based).
    pub fn step(&self, level: u32) -> Duration {
        let i = (level.max(1) - 1) as usize;
        self.0
            .get(i)
            .or(self.0.last())
            .copied()
            .unwrap_or(Duration::from_secs(3600))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default = "default_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    #[serde(default = "default_full_every", with = "humantime_serde_compat")]
    pub full_every: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(40 * 60)
}
fn default_full_every() -> Duration {
    Duration::from_secs(24 * 3600)
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            interval: default_interval(),
            full_every: default_full_every(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    #[serde(default = "default_state_path")]
    pub path: PathBuf,
}

fn default_state_path() -> PathBuf {
    PathBuf::from("scimsync.db")
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: default_state_path(),
        }
    }
}

/// `[daemon]` in sync.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Where to serve /healthz, /readyz and /metrics; `false` serves nothing.
    #[serde(default)]
    pub listen: Listen,
    /// Allow a non-loopback `listen` address (the endpoints have no authentication).
    #[serde(default)]
    pub allow_remote: bool,
}

impl DaemonConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Listen::At(addr) = self.listen
            && !addr.ip().is_loopback()
            && !self.allow_remote
        {
            return Err(format!(
                "listen = \"{addr}\" is not a loopback address; /metrics and /healthz have no \
                 authentication. Set allow_remote = true to serve them there anyway"
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Off,
    At(SocketAddr),
}

impl Default for Listen {
    fn default() -> Self {
        Listen::At(SocketAddr::from(([127, 0, 0, 1], 9464)))
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Addr(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(false) => Ok(Listen::Off),
            Raw::Flag(true) => Ok(Listen::default()),
            Raw::Addr(s) => s.trim().parse().map(Listen::At).map_err(|e| {
                serde::de::Error::custom(format!(
                    "listen = {s:?}: {e}; expected an address such as \"127.0.0.1:9464\", or false"
                ))
            }),
        }
    }
}

/// humantime durations ("40m", "24h", "60s") for serde, without another crate.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    pub fn parse(s: &str) -> Result<Duration, String> {
        let d = humantime::parse_duration(s.trim())
            .map_err(|e| format!("{s:?} is not a duration such as \"40m\" or \"30s\": {e}"))?;
        if d.is_zero() {
            return Err(format!("{s:?} must be longer than zero"));
        }
        Ok(d)
    }

    pub mod option {
        use serde::{Deserialize, Deserializer};
        use std::time::Duration;
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| super::parse(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.origin = path.to_path_buf();
        config.text_hash = crate::secret::digest(text.as_bytes());
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.target.token.is_some() {
            return Err(
                "[target] token: a token must never be written in sync.toml; \
                 set token_env (an environment variable) or token_file (a file readable only by scimsync)"
                    .into(),
            );
        }
        if self.target.token_env.is_none() && self.target.token_file.is_none() {
            return Err("[target]: set token_env or token_file".into());
        }
        self.check_url("[target] url", &self.target.url)?;
        self.validate_miro_2026()?;
        // Each kind of source checks the keys it needs.
        crate::source::open(&self.source, self.base_dir()).map_err(|e| e.to_string())?;
        self.daemon
            .validate()
            .map_err(|e| format!("[daemon] {e}"))?;
        if !(0.0..=1.0).contains(&self.policy.quarantine_ratio) {
            return Err("[policy] quarantine_ratio must be between 0 and 1".into());
        }
        if self.target.max_in_flight == 0 {
            return Err("[target] max_in_flight must be at least 1".into());
        }
        for (bucket, n) in self.target.rate_limits.buckets() {
            if n == 0 {
                return Err(format!(
                    "[target.rate_limits] {bucket} = 0 would never let a request through; \
                     the budget is requests per window, at least 1"
                ));
            }
        }
        let limits = &self.target.rate_limits;
        let window = limits
            .window
            .unwrap_or_else(|| Profile::for_kind(self.target.profile).budgets.window);
        if let Some(margin) = limits.margin
            && margin >= window
        {
            return Err(format!(
                "[target.rate_limits] margin ({}) must be shorter than the window ({})",
                humantime::format_duration(margin),
                humantime::format_duration(window)
            ));
        }
        Mapping::compile(&self.mapping).map_err(|e| format!("[mapping] {e}"))?;
        Ok(())
    }

    /// An http(s) URL the token may travel to: https, or plain http to loopback (or with
    /// `allow_insecure_http`).
    fn check_url(&self, key: &str, text: &str) -> Result<(), String> {
        let url = url::Url::parse(text)
            .map_err(|e| format!("{key} {text:?}: {}", scimsync_executor::url_error(e)))?;
        match url.scheme() {
            "https" => Ok(()),
            "http" if is_loopback(&url) || self.target.allow_insecure_http => Ok(()),
            "http" => Err(format!(
                "{key} {text:?}: plain http would send the token in clear; use https, \
                 or set allow_insecure_http = true if you really mean it"
            )),
            other => Err(format!("{key}: unsupported scheme {other:?}")),
        }
    }

    /// `[target.rest]`, `[teams]` and `[roles.admin_roles]`: Miro's, and consistent.
    fn validate_miro_2026(&self) -> Result<(), String> {
        let miro = self.target.profile == ProfileKind::Miro;
        if let Some(rest) = &self.target.rest {
            if rest.token.is_some() {
                return Err(
                    "[target.rest] token: a token must never be written in sync.toml; \
                     set token_env or token_file"
                        .into(),
                );
            }
            if rest.token_env.is_none() && rest.token_file.is_none() {
                return Err(
                    "[target.rest]: set token_env or token_file (Miro's REST OAuth token)".into(),
                );
            }
            if rest.org_id.trim().is_empty() {
                return Err("[target.rest] org_id is empty".into());
            }
            if rest.credits_per_minute < scimsync_scim::REST_LEVEL_1_CREDITS {
                return Err(format!(
                    "[target.rest] credits_per_minute must be at least {} (one call)",
                    scimsync_scim::REST_LEVEL_1_CREDITS
                ));
            }
            self.check_url("[target.rest] url", &rest.url)?;
        }
        if !self.teams.is_empty() {
            if !miro {
                return Err(
                    "[teams] assigns Miro user groups to Miro teams: profile = \"miro\" only"
                        .into(),
                );
            }
            if self.target.group_model == Some(GroupModel::Team) {
                return Err(
                    "[teams] assigns user groups to teams, but group_model = \"team\" syncs \
                     directory groups to teams themselves; remove [teams], or set group_model = \
                     \"user_group\" once Miro has migrated the org"
                        .into(),
                );
            }
            for (group, teams) in &self.teams {
                if teams.iter().any(|t| t.trim().is_empty()) {
                    return Err(format!("[teams] {group:?}: a team name is empty"));
                }
            }
        }
        if !self.roles.admin_roles.is_empty() {
            if !miro {
                return Err(
                    "[roles.admin_roles] maps Miro's organization_admin_role: profile = \"miro\" only"
                        .into(),
                );
            }
            for (group, roles) in &self.roles.admin_roles {
                for role in roles {
                    if role.trim().is_empty() {
                        return Err(format!(
                            "[roles.admin_roles] {group:?}: a role name is empty"
                        ));
                    }
                    if [
                        scimsync_model::paths::ADMIN_ROLE,
                        scimsync_model::paths::USER_ROLE,
                    ]
                    .contains(&role.as_str())
                    {
                        return Err(format!(
                            "[roles.admin_roles] {group:?}: {role} is the primary role; \
                             [roles] admin_groups sets it"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The directory of the file: relative paths in it are relative to this.
    pub fn base_dir(&self) -> &Path {
        self.origin.parent().unwrap_or(Path::new("."))
    }

    /// Resolves a path from the file against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir().join(p)
        }
    }

    pub fn state_path(&self) -> PathBuf {
        self.resolve(&self.state.path)
    }

    /// The integration's name in events: the target's host and path, and the profile.
    pub fn integration(&self) -> String {
        let host = url::Url::parse(&self.target.url)
            .map(|u| {
                format!(
                    "{}{}",
                    u.host_str().unwrap_or(""),
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                )
            })
            .unwrap_or_else(|_| self.target.url.clone());
        format!("{}@{host}", profile_name(self.target.profile))
    }

    /// The target's token, from `token_env` or `token_file`.
    pub fn token(&self) -> Result<SecretString, SecretError> {
        SecretRef {
            section: "[target]",
            env_key: "token_env",
            env: self.target.token_env.clone(),
            file_key: "token_file",
            file: self.target.token_file.as_deref().map(|p| self.resolve(p)),
            trim: Trim::Whitespace,
        }
        .load()
    }

    /// The token of `[target.rest]` (Miro's REST API), read like the SCIM one.
    pub fn rest_token(&self, rest: &RestConfig) -> Result<SecretString, SecretError> {
        SecretRef {
            section: "[target.rest]",
            env_key: "token_env",
            env: rest.token_env.clone(),
            file_key: "token_file",
            file: rest.token_file.as_deref().map(|p| self.resolve(p)),
            trim: Trim::Whitespace,
        }
        .load()
    }

    /// The target's profile with sync.toml's overrides applied.
    pub fn profile(&self) -> Profile {
        let mut profile = Profile::for_kind(self.target.profile);
        if let Some(window) = self.target.rate_limits.window {
            profile.budgets.window = window;
        }
        for (bucket, n) in self.target.rate_limits.buckets() {
            profile.budgets.buckets.insert(bucket, n);
        }
        // Miro's REST API (team assignment), over the SCIM window, so `plan` can say what its
        // requests cost; the REST client paces itself on its own budget.
        if let Some(rest) = &self.target.rest {
            let per_minute =
                f64::from(rest.credits_per_minute / scimsync_scim::REST_LEVEL_1_CREDITS);
            let per_window = (per_minute * profile.budgets.window.as_secs_f64() / 60.0).floor();
            profile
                .budgets
                .buckets
                .insert(Bucket::RestLevel1, (per_window as u32).max(1));
        }
        profile.capabilities = self.target.capabilities;
        // Miro's group model is the org's (sync.toml, else `crate::teams::group_model` with the
        // store); an RFC SP creates and deletes groups.
        if profile.fixed_capabilities.is_some()
            && let Some(model) = self.target.group_model
        {
            profile.group_model = model;
        }
        profile
    }

    /// The planner's policy: `[policy]` and what the profile and the mapping add.
    pub fn policy(&self) -> Policy {
        let profile = self.profile();
        Policy {
            on_unassign: self.policy.on_unassign,
            on_delete: self.policy.on_delete,
            // `apply = "on_create"` mappings join the profile's create-only paths. The mapping
            // was checked when the config was read, so compiling it again cannot fail here.
            create_only: profile
                .create_only
                .iter()
                .cloned()
                .chain(
                    Mapping::compile(&self.mapping)
                        .iter()
                        .flat_map(|m| m.on_create_paths().map(str::to_owned).collect::<Vec<_>>()),
                )
                .collect(),
            frozen_while_inactive: profile.frozen_while_inactive.clone(),
            deactivate_first: self.policy.delete_after.is_some(),
            licence: profile
                .licence
                .as_ref()
                .map(|rule| scimsync_plan::LicencePolicy {
                    path: rule.path.clone(),
                    upgrades_to: rule.upgrades_to.clone(),
                }),
        }
    }
}

pub fn profile_name(kind: ProfileKind) -> &'static str {
    match kind {
        ProfileKind::Miro => "miro",
        ProfileKind::Generic => "generic",
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn thresholds_parse() {
        assert_eq!(parse_threshold("10%").unwrap(), Threshold::Percent(10.0));
        assert_eq!(parse_threshold("25").unwrap(), Threshold::Count(25));
        assert!(parse_threshold("ten").is_err());
        assert!(parse_threshold("120%").is_err());
        assert_eq!(Threshold::Percent(10.0).limit(55), 5);
        assert_eq!(Threshold::Count(3).limit(1000), 3);
    }

    fn load_with(rate_limits: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.toml");
        std::fs::write(
            &path,
            format!(
                "[source]\nkind = \"json\"\npath = \"d.json\"\n\n[target]\n\
                 url = \"https://miro.com/api/v1/scim\"\ntoken_env = \"T\"\n\n\
                 [target.rate_limits]\n{rate_limits}\n"
            ),
        )
        .unwrap();
        Config::load(&path)
    }

    #[test]
    fn the_rate_limit_margin_is_a_duration_shorter_than_the_window() {
        let config = load_with("window = \"3s\"\nmargin = \"50ms\"").unwrap();
        assert_eq!(
            config.target.rate_limits.margin,
            Some(Duration::from_millis(50))
        );
        assert_eq!(load_with("").unwrap().target.rate_limits.margin, None);
        // Against Miro's default 30 s window, or the one set beside it.
        let err = load_with("margin = \"30s\"").unwrap_err().to_string();
        assert!(
            err.contains("margin (30s) must be shorter than the window (30s)"),
            "{err}"
        );
        assert!(load_with("window = \"1s\"\nmargin = \"2s\"").is_err());
        assert!(load_with("margin = \"soon\"").is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("20MB").unwrap(), 20_000_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("16 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(
            humantime_serde_compat::parse("40m").unwrap(),
            Duration::from_secs(2400)
        );
        assert!(humantime_serde_compat::parse("0s").is_err());
        assert!(humantime_serde_compat::parse("soon").is_err());
    }
    #[test]
    fn backoff_escalates_then_repeats_its_last_step() {
        let b = Backoff::default();
        assert_eq!(b.step(1), Duration::from_secs(3600));
        assert_eq!(b.step(2), Duration::from_secs(6 * 3600));
        assert_eq!(b.step(3), Duration::from_secs(24 * 3600));
        assert_eq!(b.step(9), Duration::from_secs(24 * 3600));
    }

    #[test]
    fn on_create_mappings_join_the_profiles_create_only_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.toml");
        std::fs::write(
            &path,
            r#"
[source]
kind = "json"
path = "directory.json"

[target]
url = "https://scim.example.com/scim/v2"
token_env = "SCIM_TOKEN"
profile = "miro"

[mapping]
userType = { expr = '"Employee"', apply = "on_create" }
title = { expr = "Trim([jobTitle])" }
"#,
        )
        .unwrap();
        let config = crate::config::Config::load(&path).unwrap();
        let policy = config.policy();
        let profile = config.profile();
        assert!(policy.create_only.contains("userType"), "{policy:?}");
        assert!(!policy.create_only.contains("title"));
        assert!(profile.create_only.is_subset(&policy.create_only));
    }
}
