//! What the deletion guard's state and decisions look like: the held set and the approval (for
//! `status` and `approve-deletes --list`, text and JSON), and what `plan` adds about the guard.

use scimsync_engine::guard::{ApprovalUse, Decision};
use scimsync_model::{Approval, Loss, LossCounts};
use scimsync_store::{Store, StoreError};
use time::OffsetDateTime;

/// How many losses `status` and `plan` print before summarising.
const SHOWN: usize = 20;

/// The held set and the approval, as `status --output json` and `approve-deletes --list
/// --output json` show them (`losses` only when asked: a held purge can be large).
pub fn state_json(store: &Store, with_losses: bool) -> Result<serde_json::Value, StoreError> {
    let now = OffsetDateTime::now_utc();
    let held = store.hold()?;
    let approval = store.approval()?;
    let held = held.map(|h| {
        let mut v = serde_json::json!({
            "run_id": h.run_id,
            "held_at": h.held_at,
            "reasons": h.reasons,
            "total": h.losses.len(),
            "counts": h.counts(),
            "digest": h.digest(),
        });
        if with_losses {
            v["losses"] = serde_json::json!(h.losses);
        }
        v
    });
    let approval = approval.map(|a| {
        let mut v = serde_json::json!({
            "hold_run": a.hold_run,
            "digest": a.digest,
            "approved_at": a.approved_at,
            "approved_by": a.approved_by,
            "expires_at": a.expires_at,
            "expired": expired(&a, now),
            "remaining": a.losses.len(),
            "counts": LossCounts::of(&a.losses),
        });
        if with_losses {
            v["losses"] = serde_json::json!(a.losses);
        }
        v
    });
    Ok(serde_json::json!({"held": held, "approval": approval}))
}

fn expired(approval: &Approval, now: OffsetDateTime) -> bool {
    OffsetDateTime::parse(
        &approval.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|at| at <= now)
    .unwrap_or(true)
}

/// The held set and the approval in words, for `status` and `approve-deletes --list`. Empty
/// when there is neither.
pub fn state_text(store: &Store, all: bool) -> Result<String, StoreError> {
    use std::fmt::Write;
    let now = OffsetDateTime::now_utc();
    let mut out = String::new();
    if let Some(held) = store.hold()? {
        let run = held
            .run_id
            .map(|r| format!(" by run {r}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "HELD: {} access-removing changes held by the deletion guard{run} at {} ({}):",
            held.losses.len(),
            held.held_at,
            held.counts()
        );
        for reason in &held.reasons {
            let _ = writeln!(out, "  why: {reason}");
        }
        write_losses(&mut out, &held.losses, all);
        let digest = held.digest();
        let _ = writeln!(
            out,
            "  digest {}; `scimsync approve-deletes` approves exactly these (for policy.approval_ttl)",
            short_digest(&digest)
        );
    }
    if let Some(approval) = store.approval()? {
        let state = if expired(&approval, now) {
            "EXPIRED"
        } else {
            "valid"
        };
        let _ = writeln!(
            out,
            "APPROVED by {} at {}, {state} until {}: {} changes still to apply ({})",
            approval.approved_by,
            approval.approved_at,
            approval.expires_at,
            approval.losses.len(),
            LossCounts::of(&approval.losses)
        );
    }
    Ok(out)
}

/// The first 12 hex digits of a held set's digest, as printed (and accepted by `--digest`).
pub fn short_digest(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

fn write_losses(out: &mut String, losses: &[Loss], all: bool) {
    use std::fmt::Write;
    let shown = if all { losses.len() } else { SHOWN };
    for loss in losses.iter().take(shown) {
        let _ = writeln!(out, "    {loss}");
    }
    if losses.len() > shown {
        let _ = writeln!(
            out,
            "    … and {} more (`scimsync approve-deletes --list` shows all)",
            losses.len() - shown
        );
    }
}

/// What `plan` prints after the operations: what the guard would hold, and why.
pub fn plan_text(decision: &Decision) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match decision.approval {
        ApprovalUse::Valid { released } if released > 0 => {
            let _ = writeln!(
                out,
                "Deletion guard: {released} approved changes would be applied."
            );
        }
        ApprovalUse::Expired => {
            let _ = writeln!(
                out,
                "Deletion guard: the stored approval has expired and is ignored."
            );
        }
        _ => {}
    }
    if let Some(invalid) = &decision.invalid_over {
        let _ = writeln!(
            out,
            "WARNING: {invalid}; a sync would end with exit 3 at least."
        );
    }
    if decision.held.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "HELD: the deletion guard would hold {} access-removing changes ({}); sync would exit 4:",
        decision.held.len(),
        decision.held_counts()
    );
    for reason in &decision.reasons {
        let _ = writeln!(out, "  why: {}", reason.message);
    }
    write_losses(&mut out, &decision.held, false);
    let _ = writeln!(
        out,
        "  a sync records this hold; `scimsync approve-deletes` then approves exactly it"
    );
    out
}

/// What `plan --output json` adds about the guard.
pub fn plan_json(decision: &Decision) -> serde_json::Value {
    serde_json::json!({
        "held": decision.held.len(),
        "counts": decision.held_counts(),
        "reasons": decision.reasons,
        "losses": decision.held,
        "approved_applied": match decision.approval {
            ApprovalUse::Valid { released } => released,
            _ => 0,
        },
        "approval_expired": decision.approval == ApprovalUse::Expired,
        "invalid_over": decision.invalid_over,
    })
}
