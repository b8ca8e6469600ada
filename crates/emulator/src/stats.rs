//! Counters tests and benchmarks read back to check what the client actually sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every request to a SCIM route (admin routes never count).
    pub requests: u64,
    /// POST/PUT/PATCH/DELETE on Users or Groups that reached the handler (whatever it answered).
    pub writes: u64,
    /// SCIM requests per rate-limit bucket (e.g. "users_post"), counted on arrival, 429s
    /// included; requests outside every bucket count as "other".
    pub by_bucket: BTreeMap<String, u64>,
    pub by_method: BTreeMap<String, u64>,
    /// 429s sent because a bucket's budget was exhausted.
    pub rate_limited: u64,
    pub injected_429: u64,
    pub injected_errors: u64,
    /// Requests refused by `Faults::refuse_after_writes`.
    pub refused: u64,
    pub dropped: u64,
    /// The most requests a bucket admitted within one sliding window.
    pub max_in_window: BTreeMap<String, u64>,
    /// Requests answered with an HTML page (`Faults::html_rate`).
    #[serde(default)]
    pub injected_html: u64,
    /// Requests answered with an oversized body (`Faults::oversized_rate`).
    #[serde(default)]
    pub injected_oversized: u64,
    /// Requests answered with a slow body (`Faults::slow_body_rate`).
    #[serde(default)]
    pub injected_slow: u64,
    /// Requests to Miro's REST API (`/v2/...`), not counted in `requests`.
    #[serde(default)]
    pub rest_requests: u64,
}

/// One SCIM request as the emulator saw it (`EmulatorConfig::record_requests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    /// The path after the base path, e.g. `/Users/17`.
    pub path: String,
    /// The status the handler answered with (before any fault replaced the answer); 0 when no
    /// handler ran.
    pub status: u16,
    /// Whether the handler ran (the write was applied, if it succeeded).
    pub applied: bool,
    /// The injected fault, if any: `5xx`, `429`, `html`, `drop`, `oversized`, `slow`.
    pub fault: Option<String>,
    /// The userName a POST /Users carried.
    pub user_name: Option<String>,
}

pub fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_owned()).or_default() += 1;
}
