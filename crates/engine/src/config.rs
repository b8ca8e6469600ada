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
    #[serde(default)]
    pub group_model: GroupModel,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    #[serde(default, with = "humantime_serde_compat::option")]
    pub window: Option<Duration>,
    #[serde(flatten)]
    pub buckets: BTreeMap<Bucket, u32>,
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
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Threshold::Count(n as usize)),
            Raw::S(s) => parse_threshold(&s).map_err(serde::de::Error::custom),
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
        let url = url::Url::parse(&self.target.url)
            .map_err(|e| format!("[target] url {:?}: {e}", self.target.url))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) || self.target.allow_insecure_http => {}
            "http" => {
                return Err(format!(
                    "[target] url {:?}: plain http would send the token in clear; use https, \
                     or set allow_insecure_http = true if you really mean it",
                    self.target.url
                ));
            }
            other => return Err(format!("[target] url: unsupported scheme {other:?}")),
        }
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
        Mapping::compile(&self.mapping).map_err(|e| format!("[mapping] {e}"))?;
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

    /// The target's profile with sync.toml's overrides applied.
    pub fn profile(&self) -> Profile {
        let mut profile = Profile::for_kind(self.target.profile);
        if let Some(window) = self.target.rate_limits.window {
            profile.budgets.window = window;
        }
        for (bucket, n) in &self.target.rate_limits.buckets {
            profile.budgets.buckets.insert(*bucket, *n);
        }
        profile.capabilities = self.target.capabilities;
        // Miro's group model is the org's (sync.toml); an RFC SP creates and deletes groups.
        if profile.fixed_capabilities.is_some() {
            profile.group_model = self.target.group_model;
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
