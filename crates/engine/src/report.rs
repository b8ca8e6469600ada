//! What a cycle reports: typed, for the front end (its exit code, its summary line) and, as
//! JSON, for the run's row and its `sync_cycle_end` event (`status` and `/metrics` read it).

// Re-exported: the report is computed from them, and a front end's tests build them.
pub use scimsync_executor::{BucketReport, ExecutionReport};
use scimsync_model::{GroupModel, LossCounts, PlanCounts, RunId};
use scimsync_scim::{Bucket, Budgets};
use scimsync_store::RunStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The `tracing` target of the spans around a cycle's phases (`discover`, `read`, `map`,
/// `settle`, `plan`; debug level), each timed from its creation to its close: a benchmark's
/// subscriber times them, so it measures the product's own path rather than a copy of it.
pub const PHASE: &str = "scimsync_engine::phase";

/// How a cycle that ran ended.
#[derive(Clone, Debug)]
pub struct CycleReport {
    pub run_id: RunId,
    /// `Succeeded`, `Partial` (some operations failed, or too many records are invalid), `Held`
    /// (the deletion guard held changes) or `Failed` (the target refused the token mid-run).
    pub status: RunStatus,
    pub summary: RunSummary,
    /// Why the run did not simply succeed, as `status` shows it (the run's `error`).
    pub note: Option<String>,
}

/// The run's summary as recorded: the counts of a cycle that got as far as executing, then how
/// long it took and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    #[serde(flatten)]
    pub counts: Option<CycleCounts>,
    pub elapsed_ms: u64,
    pub status: RunStatus,
}

/// What a cycle read, planned and did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CycleCounts {
    pub full: bool,
    /// Records read, valid or not.
    pub directory_users: usize,
    pub desired: usize,
    pub out_of_scope: usize,
    pub invalid: usize,
    /// `userName eq` lookups of unlinked users.
    pub lookups: usize,
    /// Group requests spent reading.
    pub group_reads: usize,
    /// Users and groups whose last write had an unknown outcome, read back this cycle.
    pub uncertain_verified: usize,
    /// Requests spent reading them.
    pub verification_reads: usize,
    /// The group model the cycle ran under (`teams::group_model`).
    pub group_model: GroupModel,
    /// Requests to Miro's REST API (team assignment).
    pub rest_requests: u64,
    pub planned: PlanCounts,
    /// Access-removing changes the deletion guard held (the name predates the guard's other
    /// kinds of loss).
    pub held_deprovisions: usize,
    pub held: LossCounts,
    /// sync.toml group names that match no directory group, in words.
    pub unmatched_config: Vec<String>,
    pub unresolved_members: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    /// 429 responses, to the reads before the plan and to the execution.
    pub rate_limited: u64,
    pub retries: u64,
    pub achieved: BTreeMap<Bucket, Achieved>,
}

/// What a bucket sent in the execution, against the bound its budget sets (`achieved_rates`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Achieved {
    pub requests: u64,
    /// From the first request to the last, to the millisecond.
    pub seconds: f64,
    pub budget: Option<u32>,
    pub window_seconds: f64,
    /// The most requests sent within any window-long interval.
    pub busiest_window: u64,
    /// The least time the budget allows the requests in (`burst_bound`), when it has one.
    pub bound_seconds: Option<f64>,
    /// `bound_seconds` over `seconds`, to three decimals: at most 1 when the budget was kept.
    pub ratio: Option<f64>,
    /// The budget 429s taught the bucket for the rest of the cycle, when they did.
    pub taught: Option<u32>,
}

impl RunSummary {
    /// As the store and the `sync_cycle_end` event hold it.
    pub fn to_json(&self) -> serde_json::Value {
        // Plain data: serialising it cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// What each bucket sent, against the bound its budget sets: n requests of a bucket allowed N
/// per window need at least `(n - 1) div N` windows between the first and the last (a whole
/// budget may go at once), and no window-long interval may hold more than N. Both figures are
/// the client's own, measured as sent; the ratio (bound over the time taken) is at most 1 when
/// the budget was kept.
pub fn achieved_rates(report: &ExecutionReport, budgets: &Budgets) -> BTreeMap<Bucket, Achieved> {
    report
        .buckets
        .iter()
        .map(|(bucket, b)| {
            let span = match (b.first, b.last) {
                (Some(first), Some(last)) if last > first => last - first,
                _ => Duration::ZERO,
            };
            let budget = budgets.buckets.get(bucket).copied().filter(|&n| n > 0);
            let bound = budget.map(|n| burst_bound(b.requests, n, budgets.window));
            let ratio = bound
                .filter(|bound| !bound.is_zero() && !span.is_zero())
                .map(|bound| round3(bound.as_secs_f64() / span.as_secs_f64()));
            let achieved = Achieved {
                requests: b.requests,
                seconds: round3(span.as_secs_f64()),
                budget,
                window_seconds: budgets.window.as_secs_f64(),
                busiest_window: b.busiest_window,
                bound_seconds: bound.map(|d| round3(d.as_secs_f64())),
                ratio,
                taught: b.taught,
            };
            (*bucket, achieved)
        })
        .collect()
}

/// The least time from the first to the last of `requests` under `per_window` per `window`
/// (the burst bound, without the time one burst takes to send).
pub fn burst_bound(requests: u64, per_window: u32, window: Duration) -> Duration {
    let windows = requests.saturating_sub(1) / u64::from(per_window.max(1));
    window.saturating_mul(u32::try_from(windows).unwrap_or(u32::MAX))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
