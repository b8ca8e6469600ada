//! Prometheus metrics, driven from the one emit point.
//!
//! Every counter here is derived from an event as `scimsync_engine::recorder::Emitter::emit` records it (and the
//! cycle summary carried by `sync_cycle_end`), never counted separately at a call site, so the
//! numbers on `/metrics` and the rows of `scimsync events` always agree. Outside `daemon` no
//! recorder is installed and every call is a no-op.

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use scimsync_model::{Event, EventOutcome, EventType};

pub const CYCLES: &str = "scimsync_cycles_total";
pub const OPERATIONS: &str = "scimsync_operations_total";
pub const RATE_LIMITED: &str = "scimsync_rate_limited_responses_total";
pub const RETRIES: &str = "scimsync_retries_total";
pub const HELD: &str = "scimsync_held_deprovisions_total";
pub const QUARANTINED: &str = "scimsync_quarantined_cycles_total";
pub const LAST_SUCCESS: &str = "scimsync_last_success_timestamp_seconds";
pub const CYCLE_SECONDS: &str = "scimsync_cycle_duration_seconds";
pub const REQUEST_SECONDS: &str = "scimsync_operation_duration_seconds";

/// Installs the process-wide recorder and returns the handle that renders the exposition text.
pub fn install() -> Result<PrometheusHandle> {
    // Explicit buckets make these true Prometheus histograms (aggregatable across instances)
    // rather than client-side summaries.
    let cycle_buckets = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0];
    let request_buckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(CYCLE_SECONDS.into()), &cycle_buckets)
        .context("cycle duration buckets")?
        .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.into()), &request_buckets)
        .context("operation duration buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    describe();
    at_zero();
    Ok(handle)
}

/// The cycle outcomes `CYCLES` counts (`RunStatus` as a finished cycle has it).
const CYCLE_OUTCOMES: [&str; 5] = ["succeeded", "partial", "held", "failed", "interrupted"];
/// An operation's outcomes (`EventOutcome`, and a write a crash or shutdown abandoned).
const OPERATION_OUTCOMES: [&str; 4] = ["succeeded", "failed", "skipped", "abandoned"];

/// Every counter and histogram from the start, at zero: an alert on a rate of failures or
/// holds works before the first one happens, and a missing series means a missing exporter.
fn at_zero() {
    for outcome in CYCLE_OUTCOMES {
        metrics::counter!(CYCLES, "outcome" => outcome).absolute(0);
    }
    for kind in EventType::ALL.iter().filter(|t| is_operation(**t)) {
        for outcome in OPERATION_OUTCOMES {
            metrics::counter!(OPERATIONS, "kind" => kind.as_str(), "outcome" => outcome)
                .absolute(0);
        }
        // Registered without a sample: exported with a count of 0.
        let _ = metrics::histogram!(REQUEST_SECONDS, "kind" => kind.as_str());
    }
    for kind in scimsync_model::LossKind::ALL {
        metrics::counter!(HELD, "kind" => kind.as_str()).absolute(0);
    }
    metrics::counter!(RATE_LIMITED).absolute(0);
    metrics::counter!(RETRIES).absolute(0);
    metrics::counter!(QUARANTINED).absolute(0);
    let _ = metrics::histogram!(CYCLE_SECONDS);
}

/// Whether events of this type are operations (counted in `OPERATIONS`), not notices.
fn is_operation(t: EventType) -> bool {
    !matches!(
        t,
        EventType::SyncCycleEnd
            | EventType::SyncHeld
            | EventType::SyncQuarantined
            | EventType::SyncCycleStart
            | EventType::TargetAttributeUnsupported
            | EventType::SyncApproved
            | EventType::IdmIntegrationActivate
            | EventType::IdmIntegrationUpdate
            | EventType::IdmIntegrationReauth
            | EventType::IdmIntegrationDelete
    )
}

fn describe() {
    metrics::describe_counter!(
        CYCLES,
        "Cycles finished, by outcome (succeeded, partial, held, failed)"
    );
    metrics::describe_counter!(
        OPERATIONS,
        "Operations attempted, by kind (event type) and outcome (succeeded, failed, abandoned)"
    );
    metrics::describe_counter!(RATE_LIMITED, "429 responses received from the target");
    metrics::describe_counter!(RETRIES, "Request attempts beyond each request's first");
    metrics::describe_counter!(
        HELD,
        "Access-removing changes held by the deletion guard, by kind (deactivate, delete, \
         member_remove, group_delete, admin_demotion, licence_change, team_unassign)"
    );
    metrics::describe_counter!(QUARANTINED, "Cycles that put the integration in quarantine");
    metrics::describe_gauge!(
        LAST_SUCCESS,
        "Unix time of the end of the last cycle that succeeded"
    );
    metrics::describe_histogram!(CYCLE_SECONDS, "Duration of a cycle");
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        "Duration of an operation's requests (all attempts)"
    );
}

/// The metrics, as a sink of the engine's emit point: every event once the store holds it.
pub struct MetricsSink;

impl scimsync_engine::EventSink for MetricsSink {
    fn observe(&self, event: &Event) {
        observe(event);
    }
}

fn observe(event: &Event) {
    let detail = &event.detail;
    let n = |k: &str| detail.get(k).and_then(serde_json::Value::as_u64);
    match event.event_type {
        EventType::SyncCycleEnd => {
            let outcome = detail
                .get("status")
                .and_then(serde_json::Value::as_str)
                .unwrap_or(if event.success { "succeeded" } else { "failed" })
                .to_owned();
            metrics::counter!(CYCLES, "outcome" => outcome).increment(1);
            metrics::counter!(RATE_LIMITED).increment(n("rate_limited").unwrap_or(0));
            metrics::counter!(RETRIES).increment(n("retries").unwrap_or(0));
            if let Some(ms) = n("elapsed_ms") {
                metrics::histogram!(CYCLE_SECONDS).record(ms as f64 / 1000.0);
            }
            if event.success {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                metrics::gauge!(LAST_SUCCESS).set(now as f64);
            }
        }
        EventType::SyncHeld => {
            let counts = detail.get("counts").and_then(serde_json::Value::as_object);
            for (kind, held) in counts.into_iter().flatten() {
                metrics::counter!(HELD, "kind" => kind.clone())
                    .increment(held.as_u64().unwrap_or(0));
            }
        }
        EventType::SyncQuarantined => metrics::counter!(QUARANTINED).increment(1),
        // A notice (a cycle's start, the mapping, the integration), not an operation.
        kind if !is_operation(kind) => {}
        kind => {
            let outcome = if scimsync_engine::journal::is_abandoned(event) {
                "abandoned"
            } else {
                match event.outcome() {
                    EventOutcome::Ok | EventOutcome::Adopted => "succeeded",
                    EventOutcome::Skipped => "skipped",
                    EventOutcome::Failed => "failed",
                }
            };
            metrics::counter!(OPERATIONS, "kind" => kind.as_str(), "outcome" => outcome)
                .increment(1);
            if let Some(http) = &event.http {
                metrics::histogram!(REQUEST_SECONDS, "kind" => kind.as_str())
                    .record(http.ms as f64 / 1000.0);
            }
        }
    }
}
