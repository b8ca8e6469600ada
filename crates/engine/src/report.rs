//! What a cycle reports: typed, for the front end (its exit code, its summary line) and, as
//! JSON, for the run's row and its `sync_cycle_end` event (`status` and `/metrics` read it).

use scimsync_executor::ExecutionReport;
use scimsync_model::{LossCounts, PlanCounts, RunId};
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

/// A bucket's requests in the execution, and the rate they achieved against its budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Achieved {
    pub requests: u64,
    /// Requests per budget window, to one decimal; none for fewer than two requests.
    pub per_window: Option<f64>,
    pub budget: Option<u32>,
    /// `per_window` over `budget`, to three decimals.
    pub ratio: Option<f64>,
}

impl RunSummary {
    /// As the store and the `sync_cycle_end` event hold it.
    pub fn to_json(&self) -> serde_json::Value {
        // Plain data: serialising it cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Achieved requests per window per bucket, and their ratio to the budget.
pub fn achieved_rates(report: &ExecutionReport, budgets: &Budgets) -> BTreeMap<Bucket, Achieved> {
    report
        .buckets
        .iter()
        .map(|(bucket, b)| {
            let span = match (b.first, b.last) {
                (Some(first), Some(last)) if last > first => last - first,
                _ => Duration::ZERO,
            };
            let budget = budgets.buckets.get(bucket).copied();
            // n requests paced at the budget span (n-1) intervals of window/N.
            let per_window = (b.requests > 1 && !span.is_zero()).then(|| {
                (b.requests - 1) as f64 * budgets.window.as_secs_f64() / span.as_secs_f64()
            });
            let achieved = Achieved {
                requests: b.requests,
                per_window: per_window.map(|r| (r * 10.0).round() / 10.0),
                budget,
                ratio: per_window
                    .zip(budget)
                    .map(|(r, n)| ((r / n as f64) * 1000.0).round() / 1000.0),
            };
            (*bucket, achieved)
        })
        .collect()
}
