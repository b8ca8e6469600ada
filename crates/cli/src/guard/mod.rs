//! The deletion guard: a plan that would take access away from more users than
//! `policy.max_deprovisions` allows (or from everyone, on an empty directory) is held.
//! Creates and updates still go; deprovisions wait for `scimsync approve-deletes`.
//!
//! The same hold applies when the snapshot shrank by more than `policy.max_shrink` against the
//! last snapshot a cycle acted on (its user count is kept in the meta table): a truncated
//! export loses users from the end, which can look like a plausible handful of leavers.

/// The user count of the last snapshot whose deprovisions were not held.
const LAST_GOOD_USERS: &str = "last_good_snapshot_users";

use crate::config::Config;
use crate::cycle::Prepared;
use anyhow::Result;
use scimsync_model::Plan;
use scimsync_store::Store;

pub enum GuardDecision {
    Proceed { approved: bool },
    Hold { reason: String, held: usize },
}

pub fn decide(
    config: &Config,
    store: &Store,
    prepared: &Prepared,
    plan: &Plan,
) -> Result<GuardDecision> {
    let deprovisions = plan.deprovisions();
    let approved = store.meta(crate::meta::DELETES_APPROVED)?.as_deref() == Some("1");
    if deprovisions == 0 {
        return Ok(GuardDecision::Proceed { approved: false });
    }
    if approved {
        return Ok(GuardDecision::Proceed { approved: true });
    }
    let managed = prepared.links.len();
    // An empty directory read is far more often a broken export than a company with no staff.
    if prepared.directory_users == 0 {
        return Ok(GuardDecision::Hold {
            reason: format!("the directory snapshot is empty but {managed} users are managed"),
            held: deprovisions,
        });
    }
    if let Some(last_good) = store
        .meta(LAST_GOOD_USERS)?
        .and_then(|s| s.parse::<usize>().ok())
    {
        let shrink = last_good.saturating_sub(prepared.directory_users);
        let max = config.policy.max_shrink;
        if shrink > max.limit(last_good) {
            return Ok(GuardDecision::Hold {
                reason: format!(
                    "the directory snapshot shrank from {last_good} to {} users, more than \
                     policy.max_shrink = {max}",
                    prepared.directory_users
                ),
                held: deprovisions,
            });
        }
    }
    let threshold = config.policy.max_deprovisions;
    let limit = threshold.limit(managed);
    if deprovisions > limit {
        return Ok(GuardDecision::Hold {
            reason: format!(
                "{deprovisions} deprovisions exceed policy.max_deprovisions = {threshold} \
                 ({limit} of {managed} managed users)"
            ),
            held: deprovisions,
        });
    }
    Ok(GuardDecision::Proceed { approved: false })
}

/// After the guard let a cycle's deprovisions go (or there were none): this snapshot becomes
/// the baseline for `policy.max_shrink`.
pub fn remember_snapshot(
    store: &mut Store,
    prepared: &Prepared,
    decision: &GuardDecision,
) -> Result<()> {
    if let GuardDecision::Proceed { .. } = decision {
        store.set_meta(LAST_GOOD_USERS, &prepared.directory_users.to_string())?;
    }
    Ok(())
}

/// The approval covers one cycle.
pub fn consume_approval(store: &mut Store) -> Result<()> {
    store.set_meta(crate::meta::DELETES_APPROVED, "0")?;
    Ok(())
}

pub fn approve(store: &mut Store) -> Result<()> {
    store.set_meta(crate::meta::DELETES_APPROVED, "1")?;
    Ok(())
}
