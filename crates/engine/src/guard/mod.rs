//! The deletion guard: the one gate every access-removing change passes. A plan's losses
//! (deactivations, deletes, membership removals, group deletes, admin demotions, licence
//! changes: `Plan::losses`) go through [`decide`]; the ones it holds are taken out of the plan
//! (creates, updates and membership additions still go), stored as the held set, and wait for
//! `scimsync approve-deletes`, which approves exactly that set for `policy.approval_ttl`.
//!
//! This module is the store side: the facts the decision needs, the hold and the approval as
//! stored, and the `sync_held` and `sync_approved` events. The decision itself is pure
//! (`decide.rs`); what `status`, `plan` and `approve-deletes --list` print of it is the front
//! end's.

mod decide;

pub use decide::{ApprovalUse, Decision, Facts, Limits, decide};

use crate::config::Config;
use crate::emit::{Emitter, EventContext, EventExt};
use crate::prepare::Prepared;
use scimsync_directory::ConfigKey;
use scimsync_executor::{Dropped, OpOutcome, Recorder};
use scimsync_model::{
    Event, EventType, GroupLink, HeldSet, InitiatedBy, Link, LossCounts, LossId, LossRules, Op,
    Plan, SourceId,
};
use scimsync_scim::ProfileKind;
use scimsync_store::{ApprovalGrant, ApproveOutcome, Store, StoreError};
use std::collections::HashSet;
use time::OffsetDateTime;

/// The user count of the last snapshot a cycle acted on without holding anything.
const LAST_GOOD_USERS: &str = "last_good_snapshot_users";

/// What counts as a loss on this target: Miro's licence is `userType`, which a mapping can set.
pub fn loss_rules(config: &Config) -> LossRules {
    match config.target.profile {
        ProfileKind::Miro => LossRules::miro(),
        ProfileKind::Generic => LossRules::default(),
    }
}

pub fn limits(config: &Config) -> Limits {
    Limits {
        max_deprovisions: config.policy.max_deprovisions,
        max_shrink: config.policy.max_shrink,
        max_invalid: config.policy.max_invalid,
    }
}

/// What the decision needs to know besides the plan, from the snapshot and the store.
pub fn facts(store: &Store, prepared: &Prepared) -> Result<Facts, StoreError> {
    let entries = |key: ConfigKey| -> Vec<String> {
        prepared
            .findings
            .unmatched
            .iter()
            .filter(|u| u.key == key)
            .map(|u| u.entry.clone())
            .collect()
    };
    Ok(Facts {
        managed: prepared.links.len(),
        directory_users: prepared.directory_users,
        invalid: prepared.mapped.invalid.len(),
        last_good_users: store
            .meta(LAST_GOOD_USERS)?
            .and_then(|s| s.parse::<usize>().ok()),
        unmatched_scope: entries(ConfigKey::ScopeGroups),
        unmatched_admin: [
            entries(ConfigKey::AdminGroups),
            entries(ConfigKey::AdminRoles)
                .into_iter()
                .map(|e| format!("{} {e}", ConfigKey::AdminRoles.as_str()))
                .collect(),
        ]
        .concat(),
        unmatched_sync: entries(ConfigKey::GroupsSync),
        unmatched_teams: prepared.unmatched_teams.clone(),
    })
}

/// The guard's decision on `plan` now, against the stored approval. Reads only: `plan` shows
/// exactly what `sync` would do.
pub fn judge(
    config: &Config,
    store: &Store,
    prepared: &Prepared,
    plan: &Plan,
    now: OffsetDateTime,
) -> Result<Decision, StoreError> {
    let losses = plan.losses(&loss_rules(config));
    let facts = facts(store, prepared)?;
    let approval = store.approval()?;
    Ok(decide(
        &losses,
        &facts,
        &limits(config),
        approval.as_ref(),
        now,
    ))
}

/// Records what the cycle decided: the held set (replacing the last one, or clearing it when
/// nothing is held) with a `sync_held` event, the snapshot baseline for `max_shrink` when
/// nothing was held, and an expired approval dropped.
pub fn record(
    store: &mut Store,
    emitter: &Emitter,
    ctx: &EventContext,
    prepared: &Prepared,
    decision: &Decision,
) -> Result<(), StoreError> {
    if decision.approval == ApprovalUse::Expired {
        if let Some(expired) = store.approval()? {
            tracing::warn!(
                "the approval given by {} at {} expired at {}; its {} remaining changes are held again if a rule holds them",
                expired.approved_by,
                expired.approved_at,
                expired.expires_at,
                expired.losses.len()
            );
        }
        store.clear_approval()?;
    }
    if decision.held.is_empty() {
        store.clear_hold()?;
        store.set_meta(LAST_GOOD_USERS, &prepared.directory_users.to_string())?;
        return Ok(());
    }
    let held = HeldSet {
        run_id: Some(ctx.run_id),
        held_at: scimsync_store::now_rfc3339(),
        reasons: decision.reasons.iter().map(|r| r.message.clone()).collect(),
        losses: decision.held.clone(),
    };
    store.set_hold(&held)?;
    let counts = held.counts();
    let summary = decision.summary();
    emitter.emit(
        store,
        ctx.event(EventType::SyncHeld, false)
            .with_detail(serde_json::json!({
                "held": held.losses.len(),
                "counts": counts,
                "reasons": decision.reasons,
                "digest": held.digest(),
                "approved_applied": match decision.approval {
                    ApprovalUse::Valid { released } => released,
                    _ => 0,
                },
            }))
            .with_error(Some(summary.clone())),
    )?;
    tracing::warn!(
        "deletion guard: {summary}. Review with `scimsync approve-deletes --list`; \
         `scimsync approve-deletes` releases exactly these."
    );
    Ok(())
}

/// After the executor ran the filtered plan: the approval keeps what remains of it to apply
/// (approved losses held again, or sent without success), and is gone once nothing remains.
/// Not called when a cycle fails or is interrupted: then all of it remains.
pub fn settle_approval(
    store: &mut Store,
    rules: &LossRules,
    executed: &Plan,
    succeeded: &HashSet<usize>,
    decision: &Decision,
) -> Result<(), StoreError> {
    let Some(approval) = store.approval()? else {
        return Ok(());
    };
    let mut open: HashSet<LossId> = decision.held.iter().map(|l| l.id.clone()).collect();
    open.extend(
        executed
            .governing_losses(rules)
            .into_iter()
            .filter(|(at, _)| !succeeded.contains(at))
            .map(|(_, id)| id),
    );
    let remaining: Vec<&LossId> = approval
        .losses
        .iter()
        .map(|l| &l.id)
        .filter(|id| open.contains(*id))
        .collect();
    if remaining.len() != approval.losses.len() {
        store.narrow_approval(&remaining)?;
        if remaining.is_empty() {
            tracing::info!(
                "the approval given by {} is used up: every change it approved was applied",
                approval.approved_by
            );
        }
    }
    Ok(())
}

/// A `Recorder` in front of the cycle's, noting which ops succeeded, for `settle_approval`.
pub struct Tracking<'r> {
    inner: &'r mut dyn Recorder,
    pub succeeded: HashSet<usize>,
}

impl<'r> Tracking<'r> {
    pub fn new(inner: &'r mut dyn Recorder) -> Self {
        Tracking {
            inner,
            succeeded: HashSet::new(),
        }
    }
}

impl Recorder for Tracking<'_> {
    fn before_write(&mut self, op_index: usize, op: &Op, request: &str) {
        self.inner.before_write(op_index, op, request);
    }
    fn after_write(&mut self, op_index: usize, outcome: &OpOutcome) {
        if matches!(outcome, OpOutcome::Succeeded | OpOutcome::Skipped(_)) {
            self.succeeded.insert(op_index);
        }
        self.inner.after_write(op_index, outcome);
    }
    fn link(&mut self, link: Link) {
        self.inner.link(link);
    }
    fn unlink(&mut self, source_id: &SourceId) {
        self.inner.unlink(source_id);
    }
    fn event(&mut self, event: Event) {
        self.inner.event(event);
    }
    fn group_link(&mut self, link: GroupLink) {
        self.inner.group_link(link);
    }
    fn group_unlink(&mut self, source_id: &SourceId) {
        self.inner.group_unlink(source_id);
    }
    // Every method forwards, the defaulted ones too: a wrapper that let a default swallow a
    // call would drop what the store must remember.
    fn attribute_refused(&mut self, dropped: &Dropped) {
        self.inner.attribute_refused(dropped);
    }
    fn uncertain(&mut self, mark: &scimsync_model::Uncertain) {
        self.inner.uncertain(mark);
    }
    fn team_link(&mut self, link: scimsync_model::TeamLink) {
        self.inner.team_link(link);
    }
    fn team_unlink(&mut self, group: &SourceId, team: &scimsync_model::TeamId) {
        self.inner.team_unlink(group, team);
    }
}

/// Who approves: as the front end knows them (the `scimsync` binary: the effective OS user,
/// and the user who ran sudo, when there is one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub user: String,
    pub sudo: Option<String>,
}

/// `scimsync approve-deletes`: approves exactly the held set (or, with `digest`, only if it is
/// still the set with that digest: its first hex digits, at least 8). Nothing held: says so,
/// nothing changed.
pub fn approve(
    config: &Config,
    store: &mut Store,
    emitter: &Emitter,
    operator: &Operator,
    digest: Option<&str>,
) -> Result<ApproveOutcome, StoreError> {
    let now = OffsetDateTime::now_utc();
    let Operator { user, sudo } = operator.clone();
    let approved_by = match &sudo {
        Some(sudo) if sudo != &user => format!("{user} (sudo by {sudo})"),
        _ => user.clone(),
    };
    let grant = ApprovalGrant {
        approved_at: scimsync_store::rfc3339(now),
        approved_by: approved_by.clone(),
        expires_at: scimsync_store::rfc3339(now + config.policy.approval_ttl),
    };
    let outcome = store.approve_hold(&grant, digest)?;
    if let ApproveOutcome::Approved(approval) = &outcome {
        let counts = LossCounts::of(&approval.losses);
        emitter.emit(
            store,
            Event {
                ts: String::new(),
                event_type: EventType::SyncApproved,
                success: true,
                run_id: None,
                initiated_by: Some(InitiatedBy::Manual),
                integration: config.integration(),
                resource: None,
                changes: Default::default(),
                http: None,
                error: None,
                detail: serde_json::json!({
                    "approved_by": user,
                    "sudo_user": sudo,
                    "hold_run": approval.hold_run,
                    "digest": approval.digest,
                    "approved": approval.losses.len(),
                    "counts": counts,
                    "expires_at": approval.expires_at,
                }),
            },
        )?;
    }
    Ok(outcome)
}
