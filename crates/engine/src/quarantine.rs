//! Quarantine: an integration whose cycles mostly fail, or whose token the target refuses, is
//! not hammered every 40 minutes.
//!
//! A cycle where more than `policy.quarantine_ratio` of the attempted operations failed (and at
//! least `policy.quarantine_min_failures` did), or that the target refused (a 401 or 403 to
//! any request: a read, a lookup or a write), puts the integration in
//! quarantine: a `sync_quarantined` event, the reason and the end time in the store's meta
//! table, `/healthz` 503. The daemon skips its ticks until then; each consecutive quarantined
//! cycle escalates the back-off (`policy.quarantine_backoff`, 1h, 6h, 24h by default) and a cycle
//! that completes without crossing the threshold clears it. A manual `sync --now` always runs:
//! it is how an admin checks a fix.

use crate::EngineError;
use crate::config::Config;
use crate::emit::{Emitter, EventContext, EventExt};
use scimsync_executor::{ExecutionReport, ScimError};
use scimsync_model::EventType;
use scimsync_store::{Store, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const UNTIL: &str = "quarantine_until";
const REASON: &str = "quarantine_reason";
const LEVEL: &str = "quarantine_level";

/// What the quarantine decision needs to know about a finished cycle.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    pub succeeded: usize,
    pub failed: usize,
    /// The target refused the integration (401 or 403), in its words.
    pub refused: Option<String>,
    /// The cycle failed as a whole (no operations judged).
    pub hard_error: bool,
}

impl Verdict {
    pub fn from_report(report: Option<&ExecutionReport>) -> Verdict {
        match report {
            Some(r) => Verdict {
                succeeded: r.succeeded,
                failed: r.failed,
                // The executor halts on a refusal (401 or 403) only.
                refused: r.halted.clone(),
                hard_error: false,
            },
            None => Verdict::default(),
        }
    }

    pub fn from_error(err: &EngineError) -> Verdict {
        let refused = err.refusal().map(ScimError::to_string);
        Verdict {
            refused,
            hard_error: true,
            ..Verdict::default()
        }
    }
}

/// The integration's quarantine, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Quarantine {
    pub until: String,
    pub reason: String,
    /// Consecutive quarantined cycles.
    pub level: u32,
}

impl Quarantine {
    /// Whether the back-off is still running at `now`.
    pub fn active(&self, now: OffsetDateTime) -> bool {
        OffsetDateTime::parse(&self.until, &Rfc3339)
            .map(|until| until > now)
            .unwrap_or(false)
    }
}

pub fn current(store: &Store) -> Result<Option<Quarantine>, StoreError> {
    let level: u32 = store.meta(LEVEL)?.and_then(|s| s.parse().ok()).unwrap_or(0);
    if level == 0 {
        return Ok(None);
    }
    Ok(Some(Quarantine {
        until: store.meta(UNTIL)?.unwrap_or_default(),
        reason: store.meta(REASON)?.unwrap_or_default(),
        level,
    }))
}

/// Why this cycle quarantines the integration, if it does.
fn reason(config: &Config, v: &Verdict) -> Option<String> {
    if let Some(refusal) = &v.refused {
        let fix = if refusal.contains("(403)") {
            "check that SCIM provisioning is enabled for the integration and the token's rights"
        } else {
            "the token was revoked or regenerated; update token_env/token_file"
        };
        return Some(format!("the target refused access: {refusal}; {fix}"));
    }
    let attempted = v.succeeded + v.failed;
    let policy = &config.policy;
    if attempted == 0 || v.failed < policy.quarantine_min_failures {
        return None;
    }
    let ratio = v.failed as f64 / attempted as f64;
    (ratio > policy.quarantine_ratio).then(|| {
        format!(
            "{} of {attempted} operations failed ({:.0}%), above policy.quarantine_ratio = {}",
            v.failed,
            ratio * 100.0,
            policy.quarantine_ratio
        )
    })
}

/// Called at the end of every cycle (scheduled or manual).
pub fn after_cycle(
    config: &Config,
    store: &mut Store,
    emitter: &Emitter,
    ctx: &EventContext,
    verdict: &Verdict,
) -> Result<(), StoreError> {
    let previous = current(store)?;
    match reason(config, verdict) {
        Some(reason) => {
            let level = previous.map(|q| q.level).unwrap_or(0).saturating_add(1);
            let backoff = config.policy.quarantine_backoff.step(level);
            let until = scimsync_store::rfc3339(OffsetDateTime::now_utc() + backoff);
            store.set_meta(UNTIL, &until)?;
            store.set_meta(REASON, &reason)?;
            store.set_meta(LEVEL, &level.to_string())?;
            emitter.emit(
                store,
                ctx.event(EventType::SyncQuarantined, false)
                    .with_detail(serde_json::json!({
                        "reason": reason,
                        "until": until,
                        "level": level,
                        "backoff_s": backoff.as_secs(),
                        "succeeded": verdict.succeeded,
                        "failed": verdict.failed,
                    }))
                    .with_error(Some(reason.clone())),
            )?;
            tracing::error!(
                "quarantined until {until} (back-off {}): {reason}",
                humantime::format_duration(backoff)
            );
        }
        // A cycle that failed for another reason (an unreadable snapshot) says nothing about
        // the target: the quarantine, if any, stands.
        None if verdict.hard_error => {}
        None => {
            if let Some(q) = previous {
                tracing::info!("quarantine lifted (was: {})", q.reason);
                store.remove_meta(UNTIL)?;
                store.remove_meta(REASON)?;
                store.remove_meta(LEVEL)?;
            }
        }
    }
    Ok(())
}
