//! One cycle: read the directory, map it, read what the target holds, plan, guard, execute, and
//! record. `plan` runs the same steps up to the plan and stops.

use crate::config::Config;
use crate::guard;
use crate::recorder::{Emitter, StoreRecorder};
use crate::saved::SavedPlan;
use anyhow::{Context, Result, anyhow};
use foldhash::HashSet;
use scimsync_directory::{InvalidRecord, Mapped, Mapping};
use scimsync_executor::{
    ClientConfig, ExecContext, ExecutionReport, Executor, ScimClient, ScimError, Tuning,
};
use scimsync_model::{
    DesiredUser, Event, EventResource, EventType, InitiatedBy, Link, Op, Plan, RunId, ScimId,
    SourceId, TargetView,
};
use scimsync_plan::{PlanInput, PlanOutput, Policy};
use scimsync_scim::{Budgets, Profile};
use scimsync_store::{RunOutcome, RunStatus, StampedLink, Store};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Instant;

/// Exit codes (SPEC.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const FAILED_OPS: i32 = 3;
    pub const HELD: i32 = 4;
    pub const PLAN_NOT_EMPTY: i32 = 5;
}

/// The profile with sync.toml's overrides applied.
pub fn profile(config: &Config) -> Profile {
    let mut profile = Profile::for_kind(config.target.profile);
    if let Some(window) = config.target.rate_limits.window {
        profile.budgets.window = window;
    }
    for (bucket, n) in config.target.rate_limits.buckets() {
        profile.budgets.buckets.insert(bucket, n);
    }
    // Miro's REST API (team assignment), over the SCIM window, so `plan` can say what its
    // requests cost; the REST client paces itself on its own budget.
    if let Some(rest) = &config.target.rest {
        let per_minute = f64::from(rest.credits_per_minute / scimsync_scim::REST_LEVEL_1_CREDITS);
        let per_window = (per_minute * profile.budgets.window.as_secs_f64() / 60.0).floor();
        profile.budgets.buckets.insert(
            scimsync_scim::Bucket::RestLevel1,
            (per_window as u32).max(1),
        );
    }
    profile.capabilities = config.target.capabilities;
    // Miro's group model is the org's (sync.toml, else `crate::teams::group_model` with the
    // store); an RFC SP creates and deletes groups.
    if profile.fixed_capabilities.is_some()
        && let Some(model) = config.target.group_model
    {
        profile.group_model = model;
    }
    profile
}

pub fn client(config: &Config, token: SecretString) -> Result<Arc<ScimClient>> {
    let profile = profile(config);
    let budgets: Budgets = profile.budgets.clone();
    let cfg = ClientConfig {
        base_url: config.target.url.trim_end_matches('/').to_owned(),
        profile,
        timeout: config.target.timeout,
        user_agent: format!("scimsync/{}", env!("CARGO_PKG_VERSION")),
        max_response_bytes: config.target.max_response_bytes.0,
    };
    let tuning = Tuning {
        margin: config.target.rate_limits.margin,
        ..Tuning::default()
    };
    Ok(Arc::new(
        ScimClient::with_tuning(cfg, token, budgets, tuning)
            .context("cannot build the SCIM client")?,
    ))
}

pub fn policy(config: &Config) -> Policy {
    let profile = profile(config);
    Policy {
        on_unassign: config.policy.on_unassign,
        on_delete: config.policy.on_delete,
        // `apply = "on_create"` mappings join the profile's create-only paths. The mapping
        // was checked when the config was read, so compiling it again cannot fail here.
        create_only: profile
            .create_only
            .iter()
            .cloned()
            .chain(
                Mapping::compile(&config.mapping)
                    .iter()
                    .flat_map(|m| m.on_create_paths().map(str::to_owned).collect::<Vec<_>>()),
            )
            .collect(),
        frozen_while_inactive: profile.frozen_while_inactive.clone(),
        deactivate_first: config.policy.delete_after.is_some(),
        licence: profile
            .licence
            .as_ref()
            .map(|rule| scimsync_plan::LicencePolicy {
                path: rule.path.clone(),
                upgrades_to: rule.upgrades_to.clone(),
            }),
    }
}

/// Everything the planner saw and what it decided.
pub struct Prepared {
    /// A digest of the snapshot, when a saved plan needs one (`prepare`'s `digest`): it costs
    /// a pass over the whole directory.
    pub snapshot_hash: Option<String>,
    pub directory_users: usize,
    pub mapped: Mapped,
    pub links: Vec<Link>,
    pub target: TargetView,
    pub full: bool,
    pub output: PlanOutput,
    pub lookups: usize,
    /// Synced directory groups and what the target holds of them (crates/cli/src/groups.rs).
    pub groups: crate::groups::GroupSide,
    /// Record stamps a cycle stores once its writes are done (`source::Directory::stamps`).
    pub stamps: Vec<StampedLink>,
    /// What the target declares and what of the mapping it does not take.
    pub fit: crate::discovery::Fit,
    /// Config names that match no directory group; group members resolving to no user.
    pub findings: scimsync_directory::Findings,
    /// The uncertain users and groups read before planning, and what was found.
    pub verification: crate::verify::Verification,
    /// The group model this cycle runs under, and why when sync.toml does not say.
    pub model: crate::teams::ModelChoice,
    /// `[teams]` and what Miro's REST API said of the teams (crates/cli/src/teams.rs).
    pub teams: crate::teams::TeamSide,
    /// `[teams]` entries naming no synced directory group, as written.
    pub unmatched_teams: Vec<String>,
}

impl Prepared {
    pub fn plan(&self) -> &Plan {
        &self.output.plan
    }
}

/// Whether this cycle reads the whole target: on request, on the first cycle, or when the last
/// full read is older than `schedule.full_every`.
pub fn needs_full(config: &Config, store: &Store, requested: bool) -> Result<bool> {
    if requested {
        return Ok(true);
    }
    let Some(last) = store.meta(crate::meta::LAST_FULL_AT)? else {
        return Ok(true);
    };
    let last = time::OffsetDateTime::parse(&last, &time::format_description::well_known::Rfc3339)
        .map_err(|e| anyhow!("corrupt {} in the store: {e}", crate::meta::LAST_FULL_AT))?;
    let age = time::OffsetDateTime::now_utc() - last;
    Ok(age.is_negative() || age.unsigned_abs() >= config.schedule.full_every)
}

pub async fn prepare(
    config: &Config,
    store: &Store,
    client: &Arc<ScimClient>,
    full: bool,
    digest: bool,
) -> Result<Prepared> {
    // What the target takes decides what is mapped: an attribute it does not declare is
    // neither sent nor compared (crates/cli/src/discovery.rs).
    let (discovery, fresh) = crate::discovery::discover(store, client, full).await?;
    let schema = discovery.schema();
    let (mapping, unsupported) = crate::discovery::fit(
        crate::discovery::base_mapping(config)?,
        &schema,
        &crate::discovery::refused(store)?,
    );
    let fit = crate::discovery::Fit {
        members_on_create: client.profile().group_members_on_create
            && schema.group_members_writable() != Some(false),
        discovery,
        fresh,
        unsupported,
    };
    // Before anything trusts a link: what the target holds of each object whose last write
    // has an unknown outcome (nothing is read when there is none).
    let verification = crate::verify::read(client, store, full)
        .await
        .context("verifying uncertain users and groups")?;
    let crate::source::Directory {
        snapshot_hash,
        directory_users,
        mapped,
        mut desired_groups,
        directory_groups,
        findings,
        mut links,
        mut group_links,
        unchanged,
        stamps,
    } = crate::source::read_and_map(
        config,
        store,
        &mapping,
        full,
        digest,
        &verification.user_overlay(),
    )
    .await?;
    // scimsync manages the mapped attributes only: what else the target holds (set by hand,
    // or by another tool, or by a mapping since removed) is neither compared, nor recorded in
    // a link, nor ever removed.
    let managed: HashSet<&str> = mapping.paths().collect();
    for link in &mut links {
        link.attrs.retain(|path, _| managed.contains(path.as_str()));
    }
    // Desired users without a link: the ones an incremental cycle looks up (unless the target
    // refused them as guests before).
    let unlinked = scimsync_plan::unlinked(&mapped.desired, &links, unchanged.as_ref());
    let guests = known_guests(store, &unlinked)?;
    let (mut target, lookups) = if full {
        let progress = Arc::new(crate::progress::Progress::unknown_total(
            "target users read",
            0,
        ));
        let step = Arc::clone(&progress);
        client.on_read_progress(Some(Arc::new(move |done, total| step.set(done, total))));
        let users = client.list_users().await;
        client.on_read_progress(None);
        progress.finish();
        let users = users.context("full read of the target's users")?;
        (
            TargetView {
                users,
                complete: true,
            },
            0,
        )
    } else {
        let absent = crate::lookups::known_absent(store, &unlinked)?;
        let to_look_up: Vec<&DesiredUser> = unlinked
            .iter()
            .filter(|u| !absent.contains(&u.user_name))
            .copied()
            .collect();
        incremental_view(client, &to_look_up, &links, &guests).await?
    };
    if !full {
        // The uncertain users read: the planner compares them with what the target holds.
        let seen: HashSet<ScimId> = target.users.iter().map(|u| u.id.clone()).collect();
        target.users.extend(
            verification
                .users()
                .filter(|u| !seen.contains(&u.id))
                .cloned(),
        );
        target.users.sort_by(|a, b| a.id.cmp(&b.id));
    }
    for user in &mut target.users {
        user.attrs.retain(|path, _| managed.contains(path.as_str()));
    }

    // Invalid records, and uncertain users whose read failed, are held untouched.
    let held: Vec<SourceId> = mapped
        .invalid
        .iter()
        .map(|r| r.source_id.clone())
        .chain(verification.held_users().cloned())
        .collect();
    verification.apply_to_groups(&mut group_links);
    let held_groups = verification.held_groups();
    if !held_groups.is_empty() {
        desired_groups.retain(|g| !held_groups.contains(&g.source_id));
        group_links.retain(|l| !held_groups.contains(&l.source_id));
    }
    let input = PlanInput {
        desired: &mapped.desired,
        out_of_scope: &mapped.out_of_scope,
        held: &held,
        links: &links,
        target: &target,
        guests: &guests,
        grace_expired: &grace_expired(config, store, &links)?,
        unchanged: unchanged.as_ref(),
    };
    let model = crate::teams::group_model(config, store)?;
    if let Some(warning) = &model.warning {
        tracing::warn!("{warning}");
    }
    let groups =
        crate::groups::read(store, client, desired_groups, group_links, config, full).await?;
    let teams = crate::teams::read(config, store, &groups.desired, model.model, full).await?;
    let unmatched_teams: Vec<String> = config
        .teams
        .keys()
        .filter(|name| !groups.desired.iter().any(|g| &g.display_name == *name))
        .map(|name| format!("{name:?}"))
        .collect();
    let can_create = crate::groups::can_create(config, model.model);
    let group_input = scimsync_plan::GroupPlanInput {
        desired: &groups.desired,
        links: &groups.links,
        target: &groups.view,
        user_links: &links,
        held: &held,
        can_create,
        members_on_create: fit.members_on_create,
        name_match: config.groups.name_match,
        directory_groups: &directory_groups,
        // Miro truncates a user group's name: a longer one would never match again.
        max_name_chars: client.profile().group_name_max_chars.filter(|_| can_create),
        teams: teams.input(),
    };
    let output = scimsync_plan::plan_with_groups(&input, &group_input, &policy(config));
    Ok(Prepared {
        snapshot_hash,
        directory_users,
        mapped,
        links,
        target,
        full,
        output,
        lookups,
        groups,
        stamps,
        fit,
        findings,
        verification,
        model,
        teams,
        unmatched_teams,
    })
}

/// Inactive linked users deactivated longer ago than `policy.delete_after` (none without it).
fn grace_expired(config: &Config, store: &Store, links: &[Link]) -> Result<Vec<SourceId>> {
    let Some(grace) = config.policy.delete_after else {
        return Ok(Vec::new());
    };
    let cutoff = scimsync_store::rfc3339(time::OffsetDateTime::now_utc() - grace);
    let mut expired = Vec::new();
    for link in links.iter().filter(|l| !l.active) {
        // Same fixed-width RFC 3339 format on both sides, so strings compare as times.
        let since = store.meta(&crate::meta::deactivated_key(&link.source_id))?;
        if since.is_some_and(|since| since <= cutoff) {
            expired.push(link.source_id.clone());
        }
    }
    Ok(expired)
}

/// userNames of unlinked desired users that the target refused as guests in an earlier cycle.
fn known_guests(store: &Store, unlinked: &[&DesiredUser]) -> Result<Vec<String>> {
    let mut guests = Vec::new();
    for user in unlinked {
        if store
            .meta(&crate::meta::guest_key(&user.user_name))?
            .is_some()
        {
            guests.push(user.user_name.clone());
        }
    }
    Ok(guests)
}

/// A `userName eq` lookup for each desired user that has no link yet (to adopt rather than
/// duplicate). The linked users are not copied in: the planner takes a linked user the view
/// lacks to be as its link says. Known guests are not looked up again: the target hides them,
/// and a full read finds one who has since become a member.
async fn incremental_view(
    client: &Arc<ScimClient>,
    unlinked: &[&DesiredUser],
    links: &[Link],
    guests: &[String],
) -> Result<(TargetView, usize)> {
    let guests: HashSet<&str> = guests.iter().map(String::as_str).collect();
    let unlinked: Vec<String> = unlinked
        .iter()
        .filter(|u| !guests.contains(u.user_name.as_str()))
        .map(|u| u.user_name.clone())
        .collect();
    let lookups = unlinked.len();
    if lookups == 0 {
        return Ok((
            TargetView {
                users: Vec::new(),
                complete: false,
            },
            0,
        ));
    }
    let mut tasks = tokio::task::JoinSet::new();
    // Bounded: the client paces requests per bucket; this only caps open sockets.
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    for user_name in unlinked {
        let client = Arc::clone(client);
        let gate = Arc::clone(&gate);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            client
                .find_user(&user_name)
                .await
                .map_err(|e| (user_name, e))
        });
    }
    let known: HashSet<&ScimId> = links.iter().map(|l| &l.target_id).collect();
    let mut found = Vec::new();
    // The first failure ends the read; the refusal behind a run of "not sent" lookups is the
    // one to report (and the one quarantine looks for), so it is preferred.
    let mut failure: Option<(String, ScimError)> = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.context("lookup task")? {
            Ok(Some(user)) if !known.contains(&user.id) => found.push(user),
            Ok(_) => {}
            Err((user_name, e)) => {
                let better = match &failure {
                    None => true,
                    Some((_, ScimError::Halted)) => !matches!(e, ScimError::Halted),
                    Some(_) => false,
                };
                if better {
                    failure = Some((user_name, e));
                }
                if failure
                    .as_ref()
                    .is_some_and(|(_, e)| !matches!(e, ScimError::Halted))
                {
                    break;
                }
            }
        }
    }
    if let Some((user_name, e)) = failure {
        tasks.abort_all();
        return Err(anyhow::Error::new(e).context(format!("lookup of {user_name}")));
    }
    // Task completion order is not deterministic; the plan must be.
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found.dedup_by(|a, b| a.id == b.id);
    Ok((
        TargetView {
            users: found,
            complete: false,
        },
        lookups,
    ))
}

/// What a cycle did, for the caller's exit code and summary line.
pub struct CycleReport {
    pub run_id: RunId,
    pub exit_code: i32,
    pub summary: serde_json::Value,
}

pub struct CycleOptions {
    pub full: bool,
    pub initiated_by: InitiatedBy,
    pub saved_plan: Option<SavedPlan>,
}

/// Runs one cycle and records it. Errors before the run starts (config, store) are returned;
/// errors during the run are recorded as a failed run and returned too.
pub async fn run_cycle(
    config: &Config,
    store: &mut Store,
    emitter: &Emitter,
    opts: CycleOptions,
) -> Result<CycleReport> {
    let token = config.token()?;
    let client = client(config, token.clone())?;
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
    let elapsed = started.elapsed();
    if let Err(e) = crate::recent::save(store, &client) {
        tracing::warn!("the cycle's recent requests were not stored: {e:#}");
    }
    match result {
        Ok((exit_code, status, mut summary, report, note)) => {
            summary["elapsed_ms"] = serde_json::json!(elapsed.as_millis() as u64);
            summary["status"] = serde_json::json!(status.as_str());
            let outcome = RunOutcome {
                status,
                summary: summary.clone(),
                error: note,
                exit_code,
            };
            emitter.emit(
                store,
                ctx.event(EventType::SyncCycleEnd, exit_code == exit::OK)
                    .with_detail(summary.clone())
                    .with_error(outcome.error.clone()),
            )?;
            store.finish_run(run_id, &outcome)?;
            let verdict = crate::quarantine::Verdict::from_report(report.as_ref());
            crate::quarantine::after_cycle(config, store, emitter, &ctx, &verdict)?;
            if full && exit_code != exit::ERROR {
                store.set_meta(crate::meta::LAST_FULL_AT, &scimsync_store::now_rfc3339())?;
            }
            Ok(CycleReport {
                run_id,
                exit_code,
                summary,
            })
        }
        Err(err) => {
            let message = format!("{err:#}");
            let summary = serde_json::json!({
                "elapsed_ms": elapsed.as_millis() as u64,
                "status": RunStatus::Failed.as_str(),
            });
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
                    exit_code: exit::ERROR,
                },
            )?;
            let verdict = crate::quarantine::Verdict::from_error(&err);
            if let Err(e) = crate::quarantine::after_cycle(config, store, emitter, &ctx, &verdict) {
                tracing::error!("quarantine: {e:#}");
            }
            Err(err)
        }
    }
}

/// Exit code, run status, summary, the execution's report, and why the run did not simply
/// succeed (the run's `error`, shown by `status`).
type BodyResult = (
    i32,
    RunStatus,
    serde_json::Value,
    Option<ExecutionReport>,
    Option<String>,
);

async fn cycle_body(
    config: &Config,
    store: &mut Store,
    emitter: &Emitter,
    client: &Arc<ScimClient>,
    ctx: &EventContext,
    full: bool,
    saved: Option<SavedPlan>,
) -> Result<BodyResult> {
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
    for event in crate::verify::events(&prepared.verification, ctx) {
        emitter.emit(store, event)?;
    }
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
            store.clear_uncertain(scimsync_model::ResourceKind::User, &link.source_id)?;
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
    let progress = crate::progress::Progress::new("writes", plan.writes() as u64);
    let mut recorder = StoreRecorder::new(store, emitter, ctx, progress);
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

    let counts = plan.counts();
    let summary = serde_json::json!({
        "full": full,
        "directory_users": prepared.directory_users,
        "desired": prepared.mapped.desired.len(),
        "out_of_scope": prepared.mapped.out_of_scope.len(),
        "invalid": prepared.mapped.invalid.len(),
        "lookups": prepared.lookups,
        "group_reads": prepared.groups.reads,
        "uncertain_verified": prepared.verification.verified.len(),
        "verification_reads": prepared.verification.reads,
        "group_model": prepared.model.model.as_str(),
        "rest_requests": prepared.teams.rest.as_ref().map_or(0, |r| r.requests()),
        "planned": counts,
        "held_deprovisions": held,
        "held": decision.held_counts(),
        "unmatched_config": prepared.findings.unmatched.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "unresolved_members": prepared.findings.unresolved.len(),
        "succeeded": report.succeeded,
        "failed": report.failed,
        // One definition (EventOutcome): the plan's `! skip` lines (never sent, no event) and
        // the executor's skips (an event marked skipped) alike.
        "skipped": report.skipped + plan.ops.iter().filter(|op| matches!(op, Op::Skip { .. })).count(),
        // The client counts the reads before the plan (full read, lookups); the report counts
        // the execution's requests: disjoint, so the cycle's total is their sum.
        "rate_limited": client.rate_limited() + report.rate_limited,
        "retries": report.retries,
        "achieved": crate::render::achieved_rates(&report, &profile(config).budgets),
    });
    let (code, status) = if report.halted.is_some() {
        (exit::ERROR, RunStatus::Failed)
    } else if held > 0 {
        (exit::HELD, RunStatus::Held)
    } else if report.failed > 0 || decision.invalid_over.is_some() {
        (exit::FAILED_OPS, RunStatus::Partial)
    } else {
        (exit::OK, RunStatus::Succeeded)
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
    Ok((code, status, summary, Some(report), note))
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
) -> Result<()> {
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

/// The fields every event of a run shares.
pub struct EventContext {
    pub run_id: RunId,
    pub initiated_by: InitiatedBy,
    pub integration: String,
}

impl EventContext {
    pub fn event(&self, event_type: EventType, success: bool) -> Event {
        Event {
            ts: String::new(),
            event_type,
            success,
            run_id: Some(self.run_id),
            initiated_by: Some(self.initiated_by),
            integration: self.integration.clone(),
            resource: None,
            changes: Default::default(),
            http: None,
            error: None,
            detail: serde_json::Value::Null,
        }
    }
}

pub trait EventExt {
    fn with_detail(self, detail: serde_json::Value) -> Self;
    fn with_error(self, error: Option<String>) -> Self;
}

impl EventExt for Event {
    fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
    fn with_error(mut self, error: Option<String>) -> Self {
        self.error = error;
        self
    }
}

pub fn describe_invalid(invalid: &[InvalidRecord]) -> Vec<String> {
    invalid.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod mapping_tests {
    #![allow(clippy::unwrap_used)]

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
        let policy = super::policy(&config);
        let profile = super::profile(&config);
        assert!(policy.create_only.contains("userType"), "{policy:?}");
        assert!(!policy.create_only.contains("title"));
        assert!(profile.create_only.is_subset(&policy.create_only));
    }
}
