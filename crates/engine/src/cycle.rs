//! One cycle: prepare (read the directory, map it, read what the target holds, plan), guard,
//! execute, and record. Every step's events pass the one emit point; the run's row and its
//! `sync_cycle_end` event carry the typed report's summary.

use crate::EngineError;
use crate::config::Config;
use crate::emit::{Emitter, EventContext, EventExt};
use crate::guard;
use crate::prepare::{Prepared, needs_full, prepare};
use crate::recorder::StoreRecorder;
use crate::report::{CycleCounts, CycleReport, RunSummary, achieved_rates};
use crate::saved::SavedPlan;
use foldhash::HashSet;
use scimsync_executor::{ExecContext, ExecutionReport, Executor, ScimClient};
use scimsync_model::{
    Event, EventResource, EventType, InitiatedBy, Link, Op, Plan, ResourceKind, ScimId, SourceId,
};
use scimsync_store::{RunOutcome, RunStatus, Store};
use std::sync::Arc;
use std::time::Instant;

pub struct CycleOptions {
    /// Read every user from the target (otherwise only when `needs_full` says so).
    pub full: bool,
    pub initiated_by: InitiatedBy,
    /// Apply exactly this plan (`sync --now --plan FILE`), if the directory and target still
    /// give it.
    pub saved_plan: Option<SavedPlan>,
    /// The exit code the front end gives a run that ends this way, recorded with the run
    /// (`status` prints it). The front end decides exit codes; the engine only records them.
    pub exit_code: fn(RunStatus) -> i32,
    /// Told how far a full read of the target has come (a bar, or log lines): the front end
    /// draws it, the engine only reports.
    pub read_progress: Option<scimsync_executor::ReadProgress>,
}

/// Runs one cycle and records it. Errors before the run starts (config, token, store) are
/// returned; errors during the run are recorded as a failed run (with its event, and the
/// quarantine's verdict) and returned too.
pub async fn run_cycle(
    config: &Config,
    store: &mut Store,
    emitter: &Emitter,
    opts: CycleOptions,
) -> Result<CycleReport, EngineError> {
    let token = config.token()?;
    let client = crate::target::client(config, token.clone())?;
    client.on_read_progress(opts.read_progress.clone());
    crate::recent::load(store, &client)?;
    store.mark_interrupted_runs()?;
    let full = needs_full(config, store, opts.full)?;
    let run_id = store.begin_run(opts.initiated_by, full)?;
    let started = Instant::now();
    let ctx = EventContext {
        run_id,
        initiated_by: opts.initiated_by,
        integration: config.integration(),
    };

    let abandoned = crate::journal::close_open_intents(
        store,
        emitter,
        &ctx.integration,
        crate::journal::Closing::AfterCrash,
    )?;
    emitter.emit(
        store,
        ctx.event(EventType::SyncCycleStart, true)
            .with_detail(serde_json::json!({"full": full, "abandoned_intents": abandoned})),
    )?;
    crate::integration::announce(config, store, emitter, &ctx, &token)?;

    let result = cycle_body(config, store, emitter, &client, &ctx, full, opts.saved_plan).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if let Err(e) = crate::recent::save(store, &client) {
        tracing::warn!("the cycle's recent requests were not stored: {e}");
    }
    match result {
        Ok(Body {
            status,
            counts,
            report,
            note,
        }) => {
            let summary = RunSummary {
                counts: Some(counts),
                elapsed_ms,
                status,
            };
            let outcome = RunOutcome {
                status,
                summary: summary.to_json(),
                error: note.clone(),
                exit_code: (opts.exit_code)(status),
            };
            emitter.emit(
                store,
                ctx.event(EventType::SyncCycleEnd, status == RunStatus::Succeeded)
                    .with_detail(outcome.summary.clone())
                    .with_error(outcome.error.clone()),
            )?;
            store.finish_run(run_id, &outcome)?;
            let verdict = crate::quarantine::Verdict::from_report(Some(&report));
            crate::quarantine::after_cycle(config, store, emitter, &ctx, &verdict)?;
            if full && status != RunStatus::Failed {
                store.set_setting(
                    scimsync_store::Setting::LastFullAt,
                    Some(&scimsync_store::now_rfc3339()),
                )?;
            }
            Ok(CycleReport {
                run_id,
                status,
                summary,
                note,
            })
        }
        Err(err) => {
            let message = crate::error::chain(&err);
            let summary = RunSummary {
                counts: None,
                elapsed_ms,
                status: RunStatus::Failed,
            }
            .to_json();
            emitter.emit(
                store,
                ctx.event(EventType::SyncCycleEnd, false)
                    .with_detail(summary.clone())
                    .with_error(Some(message.clone())),
            )?;
            store.finish_run(
                run_id,
                &RunOutcome {
                    status: RunStatus::Failed,
                    summary,
                    error: Some(message),
                    exit_code: (opts.exit_code)(RunStatus::Failed),
                },
            )?;
            let verdict = crate::quarantine::Verdict::from_error(&err);
            if let Err(e) = crate::quarantine::after_cycle(config, store, emitter, &ctx, &verdict) {
                tracing::error!("quarantine: {e}");
            }
            Err(err)
        }
    }
}

/// A run that a signal (or any front end's shutdown) dropped mid-cycle: the writes it had in
/// flight are closed in the journal as abandoned with an event each, the run is marked
/// interrupted, and a `sync_cycle_end` event says so. Returns how many writes were abandoned.
pub fn interrupted(
    config: &Config,
    store: &mut Store,
    emitter: &Emitter,
) -> Result<usize, EngineError> {
    let integration = config.integration();
    let abandoned = crate::journal::close_open_intents(
        store,
        emitter,
        &integration,
        crate::journal::Closing::OnShutdown,
    )?;
    let run = store.last_run()?.filter(|r| r.status == RunStatus::Running);
    store.mark_interrupted_runs()?;
    if let Some(run) = run {
        let ctx = EventContext {
            run_id: run.id,
            initiated_by: run.initiated_by,
            integration,
        };
        emitter.emit(
            store,
            ctx.event(EventType::SyncCycleEnd, false)
                .with_detail(serde_json::json!({
                    "status": RunStatus::Interrupted.as_str(),
                    "abandoned_intents": abandoned,
                }))
                .with_error(Some("stopped by a signal mid-cycle".into())),
        )?;
    }
    Ok(abandoned)
}

/// How the body of a cycle ended: the run's status, its counts, the execution's report, and
/// why the run did not simply succeed (the run's `error`, shown by `status`).
struct Body {
    status: RunStatus,
    counts: CycleCounts,
    report: ExecutionReport,
    note: Option<String>,
}

async fn cycle_body(
    config: &Config,
    store: &mut Store,
    emitter: &Emitter,
    client: &Arc<ScimClient>,
    ctx: &EventContext,
    full: bool,
    saved: Option<SavedPlan>,
) -> Result<Body, EngineError> {
    let mut prepared = prepare(config, store, client, full, saved.is_some()).await?;
    if prepared.fit.fresh {
        crate::discovery::remember(store, Some(ctx.run_id), &prepared.fit.discovery, false)?;
        // Once per reading of the target's schema, not once per user or per cycle.
        for u in &prepared.fit.unsupported {
            tracing::warn!("{}", crate::discovery::describe(u));
            emitter.emit(
                store,
                ctx.event(EventType::TargetAttributeUnsupported, false)
                    .with_detail(serde_json::json!({"path": u.path, "reason": u.reason}))
                    .with_error(Some(crate::discovery::describe(u))),
            )?;
        }
    }
    crate::verify::persist(store, &prepared.verification)?;
    emitter.emit_all(store, crate::verify::events(&prepared.verification, ctx))?;
    report_directory(store, emitter, ctx, &prepared)?;
    for d in &prepared.output.diagnostics {
        tracing::warn!("user {}: {}: {}", d.source_id, d.field, d.message);
    }
    let mut plan = prepared.plan().clone();
    // A plan made now creates only users this cycle's read did not find; a saved one may not.
    let creates_checked = saved.is_none();
    if let Some(saved) = saved {
        saved.check_still_valid(&prepared)?;
        plan = saved.plan;
    }

    let rules = guard::loss_rules(config);
    let decision = guard::judge(
        config,
        store,
        &prepared,
        &plan,
        time::OffsetDateTime::now_utc(),
    )?;
    if !decision.held.is_empty() {
        let dropped = plan.retain_losses(&rules, |id| decision.allows(id));
        debug_assert_eq!(dropped.len(), decision.held.len());
    }
    guard::record(store, emitter, ctx, &prepared, &decision)?;
    let held = decision.held.len();
    let exec_ctx = ExecContext {
        run_id: ctx.run_id,
        initiated_by: ctx.initiated_by,
        integration: ctx.integration.clone(),
        max_in_flight: config.target.max_in_flight,
    };
    // The target view already holds every user the plan adopts: no re-read needed.
    let adopted: HashSet<&ScimId> = plan
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Adopt { target_id, .. } => Some(target_id),
            _ => None,
        })
        .collect();
    let known = prepared
        .target
        .users
        .iter()
        .filter(|u| adopted.contains(&u.id))
        .cloned();
    // Links confirmed by this cycle's reads (a full read, or an uncertain user verified): a
    // user the plan leaves alone has its link stored as confirmed now; one with an op takes
    // its confirmed link when the op succeeds. A deprovision the guard held is neither.
    let writes = |plan: &'_ Plan| -> HashSet<SourceId> {
        plan.ops
            .iter()
            .filter(|op| op.is_write() && !op.is_group())
            .map(|op| op.source_id().clone())
            .collect()
    };
    let planned = writes(prepared.plan());
    let executed = writes(&plan);
    let (confirmed_now, confirmed_later): (Vec<Link>, Vec<Link>) = prepared
        .output
        .relinks
        .iter()
        .filter(|l| !planned.contains(&l.source_id) || executed.contains(&l.source_id))
        .cloned()
        .partition(|l| !planned.contains(&l.source_id));
    if !confirmed_now.is_empty() {
        store.upsert_links(&confirmed_now)?;
        for link in &confirmed_now {
            crate::recorder::track_deactivation(store, link)?;
            store.clear_uncertain(ResourceKind::User, &link.source_id)?;
        }
        tracing::info!(
            "{} links confirmed by what the target holds",
            confirmed_now.len()
        );
    }
    let executor = Executor::new((**client).clone())
        .with_known_users(known)
        .with_creates_checked(creates_checked)
        .with_group_links(crate::groups::executor_links(&prepared.groups, &plan))
        .with_confirmed_links(confirmed_later)
        .with_rest(prepared.teams.rest.clone());
    let mut recorder = StoreRecorder::new(store, emitter, ctx, plan.writes() as u64);
    let mut tracking = guard::Tracking::new(&mut recorder);
    let report = executor
        .execute(
            &plan,
            std::mem::take(&mut prepared.links),
            &exec_ctx,
            &mut tracking,
        )
        .await;
    let succeeded = std::mem::take(&mut tracking.succeeded);
    recorder.finish()?;
    guard::settle_approval(store, &rules, &plan, &succeeded, &decision)?;
    crate::groups::remember_missing_teams(store, &plan)?;
    crate::lookups::remember(store, &plan)?;
    crate::teams::remember_model(store, prepared.model.model)?;
    // Only a hint for the next cycle's read (each applies only while its link is as proved):
    // failing to store them costs that read time, not correctness.
    match store.stamp_records(&prepared.stamps) {
        Ok(stored) if stored > 0 => tracing::debug!("{stored} record stamps stored"),
        Ok(_) => {}
        Err(e) => tracing::warn!("record stamps not stored: {e}"),
    }

    let counts = CycleCounts {
        full,
        directory_users: prepared.directory_users,
        desired: prepared.mapped.desired.len(),
        out_of_scope: prepared.mapped.out_of_scope.len(),
        invalid: prepared.mapped.invalid.len(),
        lookups: prepared.lookups,
        group_reads: prepared.groups.reads,
        uncertain_verified: prepared.verification.verified.len(),
        verification_reads: prepared.verification.reads,
        group_model: prepared.model.model,
        rest_requests: prepared.teams.rest.as_ref().map_or(0, |r| r.requests()),
        planned: plan.counts(),
        held_deprovisions: held,
        held: decision.held_counts(),
        unmatched_config: prepared
            .findings
            .unmatched
            .iter()
            .map(ToString::to_string)
            .collect(),
        unresolved_members: prepared.findings.unresolved.len(),
        succeeded: report.succeeded,
        failed: report.failed,
        // One definition (EventOutcome): the plan's `! skip` lines (never sent, no event) and
        // the executor's skips (an event marked skipped) alike.
        skipped: report.skipped
            + plan
                .ops
                .iter()
                .filter(|op| matches!(op, Op::Skip { .. }))
                .count(),
        // The client counts the reads before the plan (full read, lookups); the report counts
        // the execution's requests: disjoint, so the cycle's total is their sum.
        rate_limited: client.rate_limited() + report.rate_limited,
        retries: report.retries,
        achieved: achieved_rates(&report, &config.profile().budgets),
    };
    let status = if report.halted.is_some() {
        RunStatus::Failed
    } else if held > 0 {
        RunStatus::Held
    } else if report.failed > 0 || decision.invalid_over.is_some() {
        RunStatus::Partial
    } else {
        RunStatus::Succeeded
    };
    // What `status` shows as the run's error: why it did not simply succeed.
    let note = report.halted.clone().or_else(|| {
        let mut why = Vec::new();
        if held > 0 {
            why.push(format!("deletion guard {}", decision.summary()));
        }
        // A hold's reasons already name the invalid records.
        if let Some(invalid) = &decision.invalid_over
            && held == 0
        {
            why.push(invalid.clone());
        }
        (!why.is_empty()).then(|| why.join("; "))
    });
    Ok(Body {
        status,
        counts,
        report,
        note,
    })
}

/// Events beyond this many unresolved group members in one cycle are summarised in one log
/// line: a group of ten thousand service accounts outside the user filter must not flood the
/// audit log every 40 minutes.
const MAX_UNRESOLVED_EVENTS: usize = 100;

/// What the directory read says that needs a human: an event for each invalid record (the
/// user is held untouched, so provisioning them stops until the record is fixed), a warning
/// event for each group member that resolves to no user, and a warning for each sync.toml
/// group name that matches nothing.
fn report_directory(
    store: &mut Store,
    emitter: &Emitter,
    ctx: &EventContext,
    prepared: &Prepared,
) -> Result<(), EngineError> {
    // A failed lookup in the directory: the DI-style event for "this record could not be
    // resolved into a user".
    let lookup_failed = |resource: EventResource, detail: serde_json::Value, error: String| {
        let mut event = ctx.event(EventType::UserLookupProvision, false);
        event.resource = Some(resource);
        event.with_detail(detail).with_error(Some(error))
    };
    // Each event's log line says what its error says: no separate warning.
    let mut events: Vec<Event> = prepared
        .mapped
        .invalid
        .iter()
        .map(|record| {
            lookup_failed(
                EventResource {
                    kind: "user".into(),
                    source_id: Some(record.source_id.clone()),
                    ..EventResource::default()
                },
                serde_json::json!({
                    "invalid": {"field": record.field, "message": record.message},
                }),
                format!(
                    "invalid directory record {}: {}: {}; the user is held untouched until it is fixed",
                    record.source_id, record.field, record.message
                ),
            )
        })
        .collect();
    let unresolved = &prepared.findings.unresolved;
    events.extend(unresolved.iter().take(MAX_UNRESOLVED_EVENTS).map(|member| {
        lookup_failed(
            EventResource {
                kind: "group".into(),
                source_id: Some(member.group_id.clone()),
                display_name: Some(member.group_name.clone()),
                ..EventResource::default()
            },
            serde_json::json!({
                "warning": "unresolved_member",
                "group": member.group_name,
                "value": member.value,
            }),
            member.to_string(),
        )
    }));
    emitter.emit_all(store, events)?;
    if unresolved.len() > MAX_UNRESOLVED_EVENTS {
        tracing::warn!(
            "{} more group members resolve to no directory user (no event each)",
            unresolved.len() - MAX_UNRESOLVED_EVENTS
        );
    }
    for name in &prepared.findings.unmatched {
        tracing::warn!("{name}");
    }
    Ok(())
}
