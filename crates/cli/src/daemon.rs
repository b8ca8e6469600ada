//! `scimsync daemon`: a cycle every `schedule.interval`, never two at once, stopping cleanly on
//! SIGTERM or SIGINT, with `/healthz`, `/readyz` and `/metrics` on `[daemon] listen`.
//!
//! An interval, not cron: the contract is "every 40 minutes", and a missed tick (a cycle longer
//! than the interval) is skipped rather than run back to back. While the integration is
//! quarantined (see `quarantine`), ticks are skipped until the back-off ends.
//!
//! Shutdown mid-cycle: the cycle is dropped at once (a 40-minute cycle cannot delay a stop), the
//! writes it had in flight are closed in the journal as abandoned with an event each, the run is
//! marked interrupted with a `sync_cycle_end` event (`scimsync_engine::cycle::interrupted`), and
//! the process exits 0. The next cycle re-plans from the directory and the target, looking up
//! before any create, so nothing is duplicated or lost.
//!
//! A front end, not the engine's: when to run a cycle and what to serve beside it are this
//! binary's choices (a console would schedule and serve its own); each step of a cycle, and
//! what an interrupted one leaves, is the engine's.

use crate::exit;
use crate::health::{Health, LastCycle};
use anyhow::Result;
use scimsync_engine::config::{Config, Listen};
use scimsync_engine::{CycleOptions, Emitter};
use scimsync_model::InitiatedBy;
use scimsync_store::RunStatus;
use tokio::time::{Instant, MissedTickBehavior};

pub async fn run(config: &Config, emitter: &Emitter) -> Result<i32> {
    let mut shutdown = shutdown_signal()?;
    let health = Health::default();
    let server = match config.daemon.listen {
        Listen::Off => None,
        Listen::At(addr) => {
            let handle = crate::metrics::install()?;
            let server = crate::health::serve(addr, health.clone(), handle).await?;
            tracing::info!(
                "serving /healthz, /readyz and /metrics on http://{}",
                server.addr
            );
            Some(server)
        }
    };
    let result = run_loop(config, emitter, &health, &mut shutdown).await;
    if let Some(server) = server {
        server.stop().await;
    }
    result
}

async fn run_loop(
    config: &Config,
    emitter: &Emitter,
    health: &Health,
    shutdown: &mut tokio::sync::mpsc::Receiver<()>,
) -> Result<i32> {
    let mut ticker = tokio::time::interval_at(Instant::now(), config.schedule.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tracing::info!(
        interval = %humantime::format_duration(config.schedule.interval),
        "daemon started"
    );
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.recv() => break,
        }
        let mut store = match scimsync_engine::open_store(config) {
            Ok(store) => store,
            Err(e) => {
                let e = anyhow::Error::from(e).context(format!(
                    "cannot open the state store {}",
                    config.state_path().display()
                ));
                tracing::error!("skipping this tick: {e:#}");
                health.set_last(LastCycle::FailedHard {
                    error: format!("{e:#}"),
                });
                continue;
            }
        };
        // Read each tick: a manual `sync --now` may have lifted (or started) a quarantine.
        let quarantine = scimsync_engine::quarantine::current(&store)?
            .filter(|q| q.active(time::OffsetDateTime::now_utc()));
        health.set_quarantine(
            quarantine
                .as_ref()
                .map(|q| (q.until.clone(), q.reason.clone())),
        );
        if let Some(q) = quarantine {
            tracing::warn!(
                "quarantined until {}: {}; skipping this tick (`scimsync sync --now` still runs)",
                q.until,
                q.reason
            );
            continue;
        }
        let lock = match store.lock_cycles() {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!("skipping this tick: {:#}", anyhow::Error::from(e));
                continue;
            }
        };
        health.set_ready();
        let (reads, on_read) = crate::progress::target_reads();
        let outcome = tokio::select! {
            r = scimsync_engine::run_cycle(config, &mut store, emitter, CycleOptions {
                full: false,
                initiated_by: InitiatedBy::Schedule,
                saved_plan: None,
                exit_code: exit::of_run,
                read_progress: Some(on_read),
            }) => Some(r),
            _ = shutdown.recv() => None,
        };
        reads.finish();
        match outcome {
            Some(Ok(report)) => {
                eprint!("{}", crate::render::summary_lines(&report));
                health.set_last(if report.status == RunStatus::Failed {
                    LastCycle::FailedHard {
                        error: format!("run {} failed", report.run_id),
                    }
                } else {
                    LastCycle::Completed {
                        status: report.status.to_string(),
                    }
                });
            }
            Some(Err(e)) => {
                let e = anyhow::Error::from(e);
                tracing::error!("cycle failed: {e:#}");
                health.set_last(LastCycle::FailedHard {
                    error: format!("{e:#}"),
                });
            }
            None => {
                let abandoned = scimsync_engine::cycle::interrupted(config, &mut store, emitter)?;
                tracing::info!(abandoned, "stopped mid-cycle on signal");
                drop(lock);
                return Ok(exit::OK);
            }
        }
        let quarantine = scimsync_engine::quarantine::current(&store)?
            .filter(|q| q.active(time::OffsetDateTime::now_utc()));
        health.set_quarantine(quarantine.map(|q| (q.until, q.reason)));
        drop(lock);
    }
    tracing::info!("daemon stopped");
    Ok(exit::OK)
}

/// A channel that yields once on SIGTERM or SIGINT (and again for each further signal).
fn shutdown_signal() -> Result<tokio::sync::mpsc::Receiver<()>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                if tx.send(()).await.is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if tx.send(()).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(rx)
}
