//! One function per subcommand: each calls the engine, prints, and picks the exit code.

use crate::args::{Cli, Command, Output};
use crate::exit;
use anyhow::{Context, Result, bail};
use scimsync_engine::config::Config;
use scimsync_engine::saved::SavedPlan;
use scimsync_engine::{CycleOptions, Emitter};
use scimsync_model::{EventType, InitiatedBy, RunId};
use scimsync_store::{ApproveOutcome, EventQuery, Store};
use std::path::Path;

/// A command line clap accepts but that means nothing (`sync` without `--now`, `--since 5x`):
/// `main` prints it and exits 2, as for clap's own usage errors.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

pub async fn run(cli: Cli) -> Result<i32> {
    // Generated from the clap definition; they need no configuration.
    match &cli.command {
        Command::Completions { shell } => return crate::manual::completions(*shell),
        Command::Man { out_dir } => return crate::manual::man(out_dir.as_deref()),
        _ => {}
    }
    let config = Config::load(&cli.config)?;
    let terminal = crate::progress::Terminal::default();
    let emitter = Emitter::new()
        .with_sink(crate::metrics::MetricsSink)
        .with_sink(crate::log::LogSink {
            format: cli.log_format,
            terminal: terminal.clone(),
        })
        .with_progress(terminal);
    match cli.command {
        Command::Plan {
            full,
            output,
            out,
            detailed_exitcode,
            full_list,
        } => {
            plan(
                &config,
                PlanArgs {
                    full,
                    output,
                    out: out.as_deref(),
                    detailed: detailed_exitcode,
                    full_list,
                },
            )
            .await
        }
        Command::Sync { now, full, plan } => {
            if !now {
                return Err(usage(
                    "`scimsync sync` runs one cycle now: pass --now (scheduled cycles are `scimsync daemon`)",
                ));
            }
            let saved = plan.as_deref().map(SavedPlan::read).transpose()?;
            sync_now(&config, &emitter, full, saved).await
        }
        Command::Daemon => crate::daemon::run(&config, &emitter).await,
        Command::Events {
            since,
            event_type,
            failed,
            user,
            run,
            limit,
            output,
        } => events(&config, since, event_type, failed, user, run, limit, output),
        Command::Status { runs, output } => status(&config, runs, output),
        Command::Check { output } => check(&config, output).await,
        Command::ApproveDeletes {
            list,
            output,
            digest,
        } => approve_deletes(&config, &emitter, list, output, digest.as_deref()),
        Command::Completions { .. } | Command::Man { .. } => Ok(exit::OK),
    }
}

/// The state store sync.toml names, with the path in the error.
pub fn open_store(config: &Config) -> Result<Store> {
    let path = config.state_path();
    scimsync_engine::open_store(config)
        .with_context(|| format!("cannot open the state store {}", path.display()))
}

/// The store for commands that only read it (`status`, `events`, `approve-deletes`): a path
/// with no store is a mistyped `[state] path` or a config no cycle has run with, and opening
/// it would create an empty store that reads as "nothing happened".
fn open_existing_store(config: &Config) -> Result<Store> {
    let path = config.state_path();
    if !path.exists() {
        bail!(
            "no state store at {}: no cycle has run with {} yet, or [state] path is not where \
             the daemon or `sync --now` keeps it",
            path.display(),
            config.origin.display()
        );
    }
    open_store(config)
}

struct PlanArgs<'a> {
    full: bool,
    output: Output,
    out: Option<&'a Path>,
    detailed: bool,
    full_list: bool,
}

async fn plan(config: &Config, args: PlanArgs<'_>) -> Result<i32> {
    let PlanArgs {
        full,
        output,
        out,
        detailed,
        full_list,
    } = args;
    let token = config.token()?;
    let client = scimsync_engine::target::client(config, token)?;
    let mut store = open_store(config)?;
    scimsync_engine::recent::load(&store, &client)?;
    let full = scimsync_engine::prepare::needs_full(config, &store, full)?;
    let (reads, on_read) = crate::progress::target_reads();
    client.on_read_progress(Some(on_read));
    let prepared = scimsync_engine::prepare(config, &store, &client, full, out.is_some()).await;
    client.on_read_progress(None);
    reads.finish();
    // The plan's reads count in the target's windows too, for the sync that may follow.
    if let Err(e) = scimsync_engine::recent::save(&mut store, &client) {
        tracing::warn!("the plan's recent requests were not stored: {e}");
    }
    let prepared = prepared?;
    let plan = prepared.plan();
    let profile = config.profile();
    // The same decision a sync would take now, so the plan tells the truth about the guard.
    let decision = scimsync_engine::guard::judge(
        config,
        &store,
        &prepared,
        plan,
        time::OffsetDateTime::now_utc(),
    )?;
    match output {
        Output::Text => {
            let guard = crate::held::plan_text(&decision);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            crate::render::write_plan_text(
                &mut out,
                &prepared,
                plan,
                &profile,
                &crate::render::PlanTextOptions {
                    integration: &config.integration(),
                    guard: &guard,
                    full_list,
                },
            )?;
            std::io::Write::flush(&mut out)?;
        }
        Output::Json => {
            let mut json =
                crate::render::plan_json(&prepared, plan, &profile, &config.integration());
            json["guard"] = crate::held::plan_json(&decision);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            crate::render::write_plan_json(&mut out, &json, plan)?;
            std::io::Write::flush(&mut out)?;
        }
    }
    if let Some(path) = out {
        SavedPlan::from_prepared(&prepared).write(path)?;
        eprintln!(
            "Saved the plan to {}; apply it with `scimsync sync --now --plan {}`.",
            path.display(),
            path.display()
        );
    }
    Ok(if detailed && !decision.held.is_empty() {
        exit::HELD
    } else if detailed && !plan.is_empty() {
        exit::PLAN_NOT_EMPTY
    } else {
        exit::OK
    })
}

/// Who is running this: the effective OS user (from the passwd database), and the user who
/// ran sudo, when there is one.
fn operator() -> scimsync_engine::guard::Operator {
    let user = whoami::username().unwrap_or_else(|_| "unknown".to_owned());
    let sudo = std::env::var("SUDO_USER").ok().filter(|s| !s.is_empty());
    scimsync_engine::guard::Operator { user, sudo }
}

/// `scimsync approve-deletes [--list] [--output json] [--digest HEX]`.
fn approve_deletes(
    config: &Config,
    emitter: &Emitter,
    list: bool,
    output: Output,
    digest: Option<&str>,
) -> Result<i32> {
    let mut store = open_existing_store(config)?;
    if list {
        match output {
            Output::Json => {
                let mut state = crate::held::state_json(&store, true)?;
                state["schema"] = serde_json::json!("scimsync.held/v1");
                outln!("{}", serde_json::to_string_pretty(&state)?)?;
            }
            Output::Text => {
                let text = crate::held::state_text(&store, true)?;
                if text.is_empty() {
                    outln!("Nothing is held by the deletion guard.")?;
                } else {
                    out!("{text}")?;
                }
            }
        }
        return Ok(exit::OK);
    }
    if let Some(d) = digest
        && (d.len() < 8 || !d.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        bail!(
            "--digest {d:?}: give at least the first 8 hex digits `approve-deletes --list` shows"
        );
    }
    let outcome =
        scimsync_engine::guard::approve(config, &mut store, emitter, &operator(), digest)?;
    let (code, message) = match &outcome {
        ApproveOutcome::NothingHeld => (
            exit::ERROR,
            "Nothing is held by the deletion guard: nothing to approve, nothing changed."
                .to_owned(),
        ),
        ApproveOutcome::DigestMismatch { held } => (
            exit::ERROR,
            format!(
                "The held set changed since it was listed: its digest is now {} ({} changes: {}). \
                 Nothing approved; review it with `scimsync approve-deletes --list`.",
                crate::held::short_digest(&held.digest()),
                held.losses.len(),
                held.counts()
            ),
        ),
        ApproveOutcome::Approved(a) => (
            exit::OK,
            format!(
                "Approved the {} changes held{} ({}), digest {}, until {}. The next cycle \
                 applies exactly these; anything else a rule holds stays held.",
                a.losses.len(),
                a.hold_run
                    .map(|r| format!(" by run {r}"))
                    .unwrap_or_default(),
                scimsync_model::LossCounts::of(&a.losses),
                crate::held::short_digest(&a.digest),
                a.expires_at
            ),
        ),
    };
    match output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "schema": "scimsync.approval/v1",
                "approved": matches!(outcome, ApproveOutcome::Approved(_)),
                "message": message,
                "approval": crate::held::state_json(&store, false)?["approval"],
            }))?
        )?,
        Output::Text if code == exit::OK => outln!("{message}")?,
        Output::Text => eprintln!("{message}"),
    }
    Ok(code)
}

pub async fn sync_now(
    config: &Config,
    emitter: &Emitter,
    full: bool,
    saved: Option<SavedPlan>,
) -> Result<i32> {
    let mut store = open_store(config)?;
    // The store's own cycle lock, so a `sync --now` and a daemon never run cycles at once.
    let _lock = store.lock_cycles()?;
    let (reads, on_read) = crate::progress::target_reads();
    let report = scimsync_engine::run_cycle(
        config,
        &mut store,
        emitter,
        CycleOptions {
            full,
            initiated_by: InitiatedBy::Manual,
            saved_plan: saved,
            exit_code: exit::of_run,
            read_progress: Some(on_read),
        },
    )
    .await;
    reads.finish();
    let report = report?;
    eprint!("{}", crate::render::summary_lines(&report));
    Ok(exit::of_run(report.status))
}

#[allow(clippy::too_many_arguments)]
fn events(
    config: &Config,
    since: Option<String>,
    event_type: Option<String>,
    failed: bool,
    user: Option<String>,
    run: Option<i64>,
    limit: usize,
    output: Output,
) -> Result<i32> {
    let since = since
        .map(|s| {
            let d = humantime::parse_duration(&s)
                .map_err(|e| usage(format!("--since {s}: {e} (a duration such as 30m, 1h, 2d)")))?;
            let at = time::OffsetDateTime::now_utc() - d;
            Ok::<_, anyhow::Error>(scimsync_store::rfc3339(at))
        })
        .transpose()?;
    let event_type = event_type
        .map(|t| {
            EventType::parse(&t).ok_or_else(|| {
                let names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                usage(format!(
                    "--type {t} is not an event type; one of: {}",
                    names.join(", ")
                ))
            })
        })
        .transpose()?;
    let store = open_existing_store(config)?;
    let query = EventQuery {
        since,
        event_type,
        failed_only: failed,
        user,
        run: run.map(RunId),
        limit: Some(limit),
    };
    let events = store.events(&query)?;
    match output {
        Output::Json => {
            for e in &events {
                outln!("{}", serde_json::to_string(e)?)?;
            }
        }
        Output::Text => {
            for e in &events {
                let who = e
                    .resource
                    .as_ref()
                    .and_then(|r| r.user_name.clone().or_else(|| r.display_name.clone()))
                    .unwrap_or_default();
                let http = e
                    .http
                    .as_ref()
                    .map(|h| {
                        format!(
                            "{} {}",
                            h.method,
                            h.status
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "-".into())
                        )
                    })
                    .unwrap_or_default();
                // Upper case for what needs a look: the same words as the run summary.
                let outcome = match e.outcome() {
                    scimsync_model::EventOutcome::Ok => "ok",
                    scimsync_model::EventOutcome::Adopted => "adopt",
                    scimsync_model::EventOutcome::Skipped => "SKIP",
                    scimsync_model::EventOutcome::Failed => "FAIL",
                };
                outln!(
                    "{}  run {:<4} {:<26} {:<5} {:<32} {:<12} {}",
                    e.ts,
                    e.run_id.map(|r| r.to_string()).unwrap_or_default(),
                    e.event_type.as_str(),
                    outcome,
                    who,
                    http,
                    e.error.as_deref().unwrap_or("")
                )?;
            }
        }
    }
    Ok(exit::OK)
}

fn status(config: &Config, runs: usize, output: Output) -> Result<i32> {
    let store = open_existing_store(config)?;
    let records = store.runs(runs)?;
    let guard = crate::held::state_json(&store, false)?;
    let held = guard["held"]["total"].as_u64().unwrap_or(0);
    let approved = guard["approval"]["expired"] == serde_json::json!(false);
    let last_full = store.setting(scimsync_store::Setting::LastFullAt)?;
    let links = store.link_count()?;
    let quarantine = scimsync_engine::quarantine::current(&store)?;
    // Writes journaled and never completed: in flight in a running cycle, or left by a crash
    // (the next cycle closes them with an event each).
    let intents = store.open_intents()?;
    let uncertain = store.uncertain()?;
    let quarantine_active = quarantine
        .as_ref()
        .is_some_and(|q| q.active(time::OffsetDateTime::now_utc()));
    match output {
        Output::Json => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "schema": "scimsync.status/v1",
                    "integration": config.integration(),
                    "managed_users": links,
                    "last_full_read": last_full,
                    "held_deprovisions": held,
                    "deletes_approved": approved,
                    "held": guard["held"],
                    "approval": guard["approval"],
                    "quarantine": quarantine.as_ref().map(|q| serde_json::json!({
                        "active": quarantine_active,
                        "until": q.until,
                        "reason": q.reason,
                        "level": q.level,
                    })),
                    "open_intents": intents.iter().map(|i| serde_json::json!({
                        "id": i.id,
                        "run": i.run,
                        "op": i.op.kind().as_str(),
                        "kind": if i.op.is_group() { "group" } else { "user" },
                        "source_id": i.op.source_id(),
                        "name": i.op.user_name(),
                        "request": i.request,
                        "opened_at": i.created_at,
                    })).collect::<Vec<_>>(),
                    "uncertain": uncertain.iter().map(|u| serde_json::json!({
                        "kind": u.mark.kind.as_str(),
                        "source_id": u.mark.source_id,
                        "target_id": u.mark.target_id,
                        "name": u.mark.name,
                        "op": u.mark.op.as_str(),
                        "reason": u.mark.reason,
                        "run": u.run,
                        "since": u.since,
                    })).collect::<Vec<_>>(),
                    "runs": records,
                }))?
            )?;
        }
        Output::Text => {
            outln!("integration: {}", config.integration())?;
            outln!("managed users: {links}")?;
            outln!(
                "last full read: {}",
                last_full.as_deref().unwrap_or("never")
            )?;
            if let Some(q) = &quarantine {
                if quarantine_active {
                    outln!(
                        "QUARANTINED until {} (level {}): {}\n  the daemon skips its cycles until then; \
                         `scimsync sync --now` still runs and a clean cycle lifts it",
                        q.until,
                        q.level,
                        q.reason
                    )?;
                } else {
                    outln!(
                        "quarantine ended at {} (level {}): {}; the next cycle decides",
                        q.until,
                        q.level,
                        q.reason
                    )?;
                }
            }
            if !intents.is_empty() {
                outln!(
                    "open journal intents: {} (writes in flight, or left by a crash: the next \
                     cycle closes each with an event)",
                    intents.len()
                )?;
                for i in &intents {
                    outln!(
                        "  intent {:<6} run {:<4} {:<10} {:<32} {:<40} since {}",
                        i.id,
                        i.run,
                        i.op.kind().as_str(),
                        i.op.user_name(),
                        i.request.as_deref().unwrap_or("-"),
                        i.created_at
                    )?;
                }
            }
            if !uncertain.is_empty() {
                outln!(
                    "uncertain: {} (a write's outcome is unknown: the next cycle reads each from \
                     the target before planning it)",
                    uncertain.len()
                )?;
                for u in &uncertain {
                    outln!(
                        "  {:<5} {:<32} {:<10} since {}  {}",
                        u.mark.kind.as_str(),
                        u.mark.name,
                        u.mark.op.as_str(),
                        u.since,
                        u.mark.reason
                    )?;
                }
            }
            out!("{}", crate::held::state_text(&store, false)?)?;
            outln!("\nlast runs:")?;
            for r in &records {
                let n = |k: &str| r.summary.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                outln!(
                    "  run {:<4} {}  {:<9} {:<11} exit {}  ok {} failed {} skipped {}{}",
                    r.id,
                    r.started_at,
                    r.initiated_by.as_str(),
                    r.status.as_str(),
                    r.exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    n("succeeded"),
                    n("failed"),
                    n("skipped"),
                    r.error
                        .as_deref()
                        .map(|e| format!("  error: {e}"))
                        .unwrap_or_default()
                )?;
            }
            if records.is_empty() {
                outln!("  none yet")?;
            }
        }
    }
    Ok(exit::OK)
}

/// One line per capability: what the client relies on, and where it came from.
fn print_capabilities(
    caps: &scimsync_scim::Capabilities,
    overrides: &scimsync_scim::CapabilityOverrides,
) -> std::io::Result<()> {
    let overridden = overrides.keys();
    let origin = |key: &str| {
        if overridden.contains(&key) {
            "sync.toml"
        } else {
            caps.source.as_str()
        }
    };
    let yes = |b: bool| if b { "supported" } else { "not supported" };
    outln!("capabilities:")?;
    outln!("  patch: {} ({})", yes(caps.patch), origin("patch"))?;
    outln!("  filter: {} ({})", yes(caps.filter), origin("filter"))?;
    match caps.filter_max_results {
        Some(n) => outln!(
            "  filter_max_results: {n} ({})",
            origin("filter_max_results")
        )?,
        None => outln!("  filter_max_results: not announced")?,
    }
    outln!("  etag: {} ({})", yes(caps.etag), origin("etag"))?;
    outln!("  bulk: {} ({})", yes(caps.bulk), origin("bulk"))?;
    outln!("  sort: {} ({})", yes(caps.sort), origin("sort"))?;
    outln!("  changePassword: {}", yes(caps.change_password))?;
    Ok(())
}

/// `check`'s findings on the directory side: what a cycle would read and map.
struct SourceCheck {
    users: usize,
    groups: usize,
    in_scope: usize,
    out_of_scope: usize,
    invalid: Vec<String>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// Reads the directory as a cycle would, maps it with the mapping the target takes, and says
/// what needs fixing: a config name that matches no group (an error: it changes who is
/// provisioned), invalid records (each held untouched; above `policy.max_invalid` an error,
/// as every deprovision would be held), members that resolve to no user.
async fn check_source(
    config: &Config,
    mapping: &scimsync_directory::Mapping,
) -> (Option<scimsync_model::Snapshot>, SourceCheck) {
    let mut out = SourceCheck {
        users: 0,
        groups: 0,
        in_scope: 0,
        out_of_scope: 0,
        invalid: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let snapshot = match scimsync_engine::directory::read_snapshot(config) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            out.errors
                .push(format!("the directory cannot be read: {e:#}"));
            return (None, out);
        }
    };
    let findings = scimsync_directory::findings(
        &snapshot.groups,
        &config.scope,
        &config.roles,
        &config.groups,
    );
    let mapped = scimsync_directory::map(&snapshot, &config.scope, &config.roles, mapping);
    out.users = snapshot.users.len();
    out.groups = snapshot.groups.len();
    out.in_scope = mapped.desired.len();
    out.out_of_scope = mapped.out_of_scope.len();
    out.invalid = mapped.invalid.iter().map(ToString::to_string).collect();
    out.errors
        .extend(findings.unmatched.iter().map(ToString::to_string));
    out.warnings
        .extend(findings.unresolved.iter().map(ToString::to_string));
    let limit = config.policy.max_invalid.limit(out.users);
    if out.invalid.len() > limit {
        out.errors.push(format!(
            "{} of the {} directory records are invalid, more than policy.max_invalid = {}: a \
             cycle would hold every access-removing change",
            out.invalid.len(),
            out.users,
            config.policy.max_invalid
        ));
    } else if !out.invalid.is_empty() {
        out.warnings.push(format!(
            "{} invalid directory records: a cycle leaves each of those users untouched",
            out.invalid.len()
        ));
    }
    (Some(snapshot), out)
}

/// One line that says whether a cycle can run as configured.
fn verdict(errors: &[String], warnings: usize) -> String {
    match (errors.len(), warnings) {
        (0, 0) => "verdict: ready: the target and the directory are as a cycle needs them".into(),
        (0, w) => format!("verdict: ready, with {w} warning(s) above worth a look"),
        (e, _) => format!(
            "verdict: NOT READY: {e} error(s) to fix first (a cycle would fail, or provision \
             the wrong people)"
        ),
    }
}

async fn check(config: &Config, output: Output) -> Result<i32> {
    let token = config.token()?;
    let client = scimsync_engine::target::client(config, token)?;
    // The target and the directory are checked alike: one failing does not hide the other.
    let probe = client.check().await;
    let (mapping, unsupported, schema) = match &probe {
        Ok(report) => {
            let schema = report.discovery.schema();
            let (mapping, unsupported) = scimsync_engine::discovery::fit(
                scimsync_engine::discovery::base_mapping(config)?,
                &schema,
                &Default::default(),
            );
            (mapping, unsupported, Some(schema))
        }
        Err(_) => (
            scimsync_engine::discovery::base_mapping(config)?,
            Vec::new(),
            None,
        ),
    };
    if let Ok(report) = &probe
        && client.profile().fixed_capabilities.is_none()
    {
        // Cached for the cycles (a read-only probe of the target; the local store is ours),
        // and attributes refused earlier get another chance.
        let stored = open_store(config).and_then(|mut store| {
            scimsync_engine::discovery::remember(&mut store, None, &report.discovery, true)
                .map_err(anyhow::Error::from)
        });
        if let Err(e) = stored {
            tracing::warn!("the target's discovery is not cached in the store: {e:#}");
        }
    }
    let (snapshot, source) = check_source(config, &mapping).await;
    let miro = match (&probe, &snapshot) {
        (Ok(_), Some(snapshot)) => {
            Some(scimsync_engine::teams::check(config, &client, snapshot).await)
        }
        _ => None,
    };
    let mut errors = Vec::new();
    if let Err(e) = &probe {
        errors.push(format!("the target at {}: {e}", config.target.url));
    }
    errors.extend(source.errors.iter().cloned());
    if let Some(miro) = &miro {
        errors.extend(miro.errors.iter().cloned());
    }
    let warnings =
        source.warnings.len() + unsupported.len() + miro.as_ref().map_or(0, |m| m.warnings.len());
    let code = if errors.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    };
    match output {
        Output::Json => {
            let report = probe.as_ref().ok();
            outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "schema": "scimsync.check/v1",
                    "target": config.target.url,
                    "ok": code == exit::OK,
                    "verdict": if code == exit::OK { "ready" } else { "not_ready" },
                    "errors": errors,
                    "target_error": probe.as_ref().err().map(ToString::to_string),
                    "total_users": report.and_then(|r| r.total_users),
                    "latency_ms": report.map(|r| r.latency.as_millis() as u64),
                    "service_provider_config": report.and_then(|r| r.service_provider_config.clone()),
                    "capabilities": report.map(|r| &r.capabilities),
                    "capabilities_overridden": config.target.capabilities.keys(),
                    "schemas_served": report.map(|r| r.discovery.schemas.is_some()),
                    "resource_types_served": report.map(|r| r.discovery.resource_types.is_some()),
                    "user_name_case_exact": schema.as_ref().and_then(|s| s.user_name_case_exact()),
                    "unsupported": unsupported,
                    "directory": {
                        "users": source.users,
                        "groups": source.groups,
                        "in_scope": source.in_scope,
                        "out_of_scope": source.out_of_scope,
                        "invalid": source.invalid,
                        "errors": source.errors,
                        "warnings": source.warnings,
                    },
                    "miro": miro,
                }))?
            )?;
        }
        Output::Text => {
            outln!("target: {}", config.target.url)?;
            match &probe {
                Err(e) => outln!("error: {e}")?,
                Ok(report) => {
                    outln!("authentication: ok ({} ms)", report.latency.as_millis())?;
                    if let Some(total) = report.total_users {
                        outln!("users visible: {total}")?;
                    }
                    if report.service_provider_config.is_none() {
                        outln!("ServiceProviderConfig: not served")?;
                    }
                    print_capabilities(&report.capabilities, &config.target.capabilities)?;
                    if client.profile().fixed_capabilities.is_none() {
                        let served = |v: &Option<serde_json::Value>| {
                            if v.is_some() { "read" } else { "not served" }
                        };
                        outln!("schemas: {}", served(&report.discovery.schemas))?;
                        outln!(
                            "resource types: {}",
                            served(&report.discovery.resource_types)
                        )?;
                        if let Some(exact) = schema.as_ref().and_then(|s| s.user_name_case_exact())
                        {
                            outln!(
                                "userName: {}",
                                if exact {
                                    "case-sensitive (caseExact)"
                                } else {
                                    "case-insensitive"
                                }
                            )?;
                        }
                        if unsupported.is_empty() {
                            outln!("mapping: every mapped attribute is declared by the target")?;
                        } else {
                            outln!(
                                "mapping: {} attribute(s) not supported by the target:",
                                unsupported.len()
                            )?;
                            for u in &unsupported {
                                outln!("  ! {}", scimsync_engine::discovery::describe(u))?;
                            }
                        }
                    }
                }
            }
            if snapshot.is_some() {
                outln!(
                    "directory: {} users, {} groups; {} users in scope, {} out of scope, {} invalid",
                    source.users,
                    source.groups,
                    source.in_scope,
                    source.out_of_scope,
                    source.invalid.len()
                )?;
            } else {
                outln!("directory: not read")?;
            }
            for record in &source.invalid {
                outln!("  invalid: {record}")?;
            }
            for e in &source.errors {
                outln!("error: {e}")?;
            }
            for w in &source.warnings {
                outln!("warning: {w}")?;
            }
            if let Some(miro) = &miro {
                for line in crate::render::miro_check_lines(miro) {
                    outln!("{line}")?;
                }
            }
            outln!("\n{}", verdict(&errors, warnings))?;
        }
    }
    Ok(code)
}
