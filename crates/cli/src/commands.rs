//! One function per subcommand.

use crate::config::Config;
use crate::cycle::{self, CycleOptions, exit};
use crate::recorder::Emitter;
use crate::saved::SavedPlan;
use crate::{Cli, Command, Output};
use anyhow::{Context, Result, anyhow, bail};
use scimsync_model::{EventType, InitiatedBy, RunId};
use scimsync_store::{EventQuery, Store};
use std::fs::File;
use std::path::Path;

pub async fn run(cli: Cli) -> Result<i32> {
    // Generated from the clap definition; they need no configuration.
    match &cli.command {
        Command::Completions { shell } => return crate::manual::completions(*shell),
        Command::Man { out_dir } => return crate::manual::man(out_dir.as_deref()),
        _ => {}
    }
    let config = Config::load(&cli.config)?;
    let emitter = Emitter {
        format: cli.log_format,
    };
    match cli.command {
        Command::Plan {
            full,
            output,
            out,
            detailed_exitcode,
        } => plan(&config, full, output, out.as_deref(), detailed_exitcode).await,
        Command::Sync { now, full, plan } => {
            if !now {
                bail!(
                    "`scimsync sync` runs one cycle now: pass --now (scheduled cycles are `scimsync daemon`)"
                );
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
        Command::ApproveDeletes => {
            let mut store = open_store(&config)?;
            crate::guard::approve(&mut store)?;
            let held = store
                .meta(crate::meta::HELD_DEPROVISIONS)?
                .unwrap_or_else(|| "0".into());
            println!(
                "Deprovisions released for the next cycle ({held} were held by the last one)."
            );
            Ok(exit::OK)
        }
        Command::Completions { .. } | Command::Man { .. } => Ok(exit::OK),
    }
}

pub fn open_store(config: &Config) -> Result<Store> {
    let path = config.state_path();
    Store::open(&path).with_context(|| format!("cannot open the state store {}", path.display()))
}

/// A file lock beside the store, so a `sync --now` and a daemon never run cycles at once.
pub fn cycle_lock(config: &Config) -> Result<File> {
    let path = config.state_path().with_extension("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(anyhow!(
            "another scimsync cycle is running against {} (lock {}); not starting a second one",
            config.state_path().display(),
            path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(anyhow!("cannot lock {}: {e}", path.display())),
    }
}

async fn plan(
    config: &Config,
    full: bool,
    output: Output,
    out: Option<&Path>,
    detailed: bool,
) -> Result<i32> {
    let token = config.token()?;
    let client = cycle::client(config, token)?;
    let mut store = open_store(config)?;
    crate::recent::load(&store, &client)?;
    let full = cycle::needs_full(config, &store, full)?;
    let prepared = cycle::prepare(config, &store, &client, full, out.is_some()).await;
    // The plan's reads count in the target's windows too, for the sync that may follow.
    if let Err(e) = crate::recent::save(&mut store, &client) {
        tracing::warn!("the plan's recent requests were not stored: {e:#}");
    }
    let prepared = prepared?;
    let plan = prepared.plan();
    let budgets = cycle::profile(config).budgets;
    match output {
        Output::Text => print!(
            "{}",
            crate::render::plan_text(&prepared, plan, &budgets, &config.integration())
        ),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&crate::render::plan_json(
                &prepared,
                plan,
                &budgets,
                &config.integration()
            ))?
        ),
    }
    if let Some(path) = out {
        SavedPlan::from_prepared(&prepared).write(path)?;
        eprintln!(
            "Saved the plan to {}; apply it with `scimsync sync --now --plan {}`.",
            path.display(),
            path.display()
        );
    }
    Ok(if detailed && !plan.is_empty() {
        exit::PLAN_NOT_EMPTY
    } else {
        exit::OK
    })
}

pub async fn sync_now(
    config: &Config,
    emitter: &Emitter,
    full: bool,
    saved: Option<SavedPlan>,
) -> Result<i32> {
    let _lock = cycle_lock(config)?;
    let mut store = open_store(config)?;
    let report = cycle::run_cycle(
        config,
        &mut store,
        emitter,
        CycleOptions {
            full,
            initiated_by: InitiatedBy::Manual,
            saved_plan: saved,
        },
    )
    .await?;
    print_summary(&report);
    Ok(report.exit_code)
}

pub fn print_summary(report: &cycle::CycleReport) {
    let s = &report.summary;
    let n = |k: &str| s.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    eprintln!(
        "run {}: {} succeeded, {} failed, {} skipped, {} held; {} rate-limited responses, {} retries; {} ms",
        report.run_id,
        n("succeeded"),
        n("failed"),
        n("skipped"),
        n("held_deprovisions"),
        n("rate_limited"),
        n("retries"),
        n("elapsed_ms"),
    );
    if let Some(achieved) = s.get("achieved").and_then(|v| v.as_object()) {
        for (bucket, a) in achieved {
            eprintln!("{}", crate::render::achieved_line(bucket, a));
        }
    }
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
    let store = open_store(config)?;
    let since = since
        .map(|s| {
            let d = humantime::parse_duration(&s).map_err(|e| anyhow!("--since {s:?}: {e}"))?;
            let at = time::OffsetDateTime::now_utc() - d;
            Ok::<_, anyhow::Error>(scimsync_store::rfc3339(at))
        })
        .transpose()?;
    let event_type = event_type
        .map(|t| {
            EventType::parse(&t).ok_or_else(|| {
                let names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                anyhow!(
                    "--type {t:?} is not an event type; one of: {}",
                    names.join(", ")
                )
            })
        })
        .transpose()?;
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
                println!("{}", serde_json::to_string(e)?);
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
                println!(
                    "{}  run {:<4} {:<26} {:<4} {:<32} {:<12} {}",
                    e.ts,
                    e.run_id.map(|r| r.to_string()).unwrap_or_default(),
                    e.event_type.as_str(),
                    if e.success { "ok" } else { "FAIL" },
                    who,
                    http,
                    e.error.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(exit::OK)
}

fn status(config: &Config, runs: usize, output: Output) -> Result<i32> {
    let store = open_store(config)?;
    let records = store.runs(runs)?;
    let held: usize = store
        .meta(crate::meta::HELD_DEPROVISIONS)?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let approved = store.meta(crate::meta::DELETES_APPROVED)?.as_deref() == Some("1");
    let last_full = store.meta(crate::meta::LAST_FULL_AT)?;
    let links = store.link_count()?;
    let quarantine = crate::quarantine::current(&store)?;
    let quarantine_active = quarantine
        .as_ref()
        .is_some_and(|q| q.active(time::OffsetDateTime::now_utc()));
    match output {
        Output::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "schema": "scimsync.status/v1",
                    "integration": config.integration(),
                    "managed_users": links,
                    "last_full_read": last_full,
                    "held_deprovisions": held,
                    "deletes_approved": approved,
                    "quarantine": quarantine.as_ref().map(|q| serde_json::json!({
                        "active": quarantine_active,
                        "until": q.until,
                        "reason": q.reason,
                        "level": q.level,
                    })),
                    "runs": records,
                }))?
            );
        }
        Output::Text => {
            println!("integration: {}", config.integration());
            println!("managed users: {links}");
            println!(
                "last full read: {}",
                last_full.as_deref().unwrap_or("never")
            );
            if let Some(q) = &quarantine {
                if quarantine_active {
                    println!(
                        "QUARANTINED until {} (level {}): {}\n  the daemon skips its cycles until then; \
                         `scimsync sync --now` still runs and a clean cycle lifts it",
                        q.until, q.level, q.reason
                    );
                } else {
                    println!(
                        "quarantine ended at {} (level {}): {}; the next cycle decides",
                        q.until, q.level, q.reason
                    );
                }
            }
            if held > 0 {
                println!(
                    "HELD: {held} deprovisions held by the deletion guard{}",
                    if approved {
                        " (approved: they go in the next cycle)"
                    } else {
                        "; run `scimsync approve-deletes` to release them"
                    }
                );
            }
            println!("\nlast runs:");
            for r in &records {
                let n = |k: &str| r.summary.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                println!(
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
                );
            }
            if records.is_empty() {
                println!("  none yet");
            }
        }
    }
    Ok(exit::OK)
}

/// One line per capability: what the client relies on, and where it came from.
fn print_capabilities(
    caps: &scimsync_scim::Capabilities,
    overrides: &scimsync_scim::CapabilityOverrides,
) {
    let overridden = overrides.keys();
    let origin = |key: &str| {
        if overridden.contains(&key) {
            "sync.toml"
        } else {
            caps.source.as_str()
        }
    };
    let yes = |b: bool| if b { "supported" } else { "not supported" };
    println!("capabilities:");
    println!("  patch: {} ({})", yes(caps.patch), origin("patch"));
    println!("  filter: {} ({})", yes(caps.filter), origin("filter"));
    match caps.filter_max_results {
        Some(n) => println!(
            "  filter_max_results: {n} ({})",
            origin("filter_max_results")
        ),
        None => println!("  filter_max_results: not announced"),
    }
    println!("  etag: {} ({})", yes(caps.etag), origin("etag"));
    println!("  bulk: {} ({})", yes(caps.bulk), origin("bulk"));
    println!("  sort: {} ({})", yes(caps.sort), origin("sort"));
    println!("  changePassword: {}", yes(caps.change_password));
}

async fn check(config: &Config, output: Output) -> Result<i32> {
    let token = config.token()?;
    let client = cycle::client(config, token)?;
    let report = client
        .check()
        .await
        .map_err(|e| anyhow!("check of {} failed: {e}", config.target.url))?;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "schema": "scimsync.check/v1",
                "target": config.target.url,
                "ok": true,
                "total_users": report.total_users,
                "latency_ms": report.latency.as_millis() as u64,
                "service_provider_config": report.service_provider_config,
                "capabilities": report.capabilities,
                "capabilities_overridden": config.target.capabilities.keys(),
            }))?
        ),
        Output::Text => {
            println!("target: {}", config.target.url);
            println!("authentication: ok ({} ms)", report.latency.as_millis());
            if let Some(total) = report.total_users {
                println!("users visible: {total}");
            }
            if report.service_provider_config.is_none() {
                println!("ServiceProviderConfig: not served");
            }
            print_capabilities(&report.capabilities, &config.target.capabilities);
        }
    }
    Ok(exit::OK)
}
