//! The daemon's HTTP endpoints: `/healthz`, `/readyz` and Prometheus `/metrics`.
//!
//! Plain text, no authentication: bind it to loopback (the default) or behind a proxy; a
//! non-loopback address needs `[daemon] allow_remote = true`. Nothing served here carries a
//! token or a user's data: only counts, durations and the integration's state.

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// How the last cycle ended, as far as health is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LastCycle {
    /// Ran to the end (some operations may have failed, or deprovisions were held).
    Completed { status: String },
    /// Failed as a whole: config, snapshot, store, authentication.
    FailedHard { error: String },
}

#[derive(Debug, Default)]
struct HealthState {
    ready: bool,
    last: Option<LastCycle>,
    /// (until, reason) while the integration is quarantined.
    quarantine: Option<(String, String)>,
}

/// Shared between the daemon loop (which writes) and the HTTP handlers (which read).
#[derive(Clone, Debug, Default)]
pub struct Health {
    inner: Arc<Mutex<HealthState>>,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, HealthState> {
        // Plain data: a panic elsewhere while holding the lock leaves nothing half-written.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The store opened and the first cycle started.
    pub fn set_ready(&self) {
        self.lock().ready = true;
    }

    pub fn set_last(&self, last: LastCycle) {
        self.lock().last = Some(last);
    }

    pub fn set_quarantine(&self, quarantine: Option<(String, String)>) {
        self.lock().quarantine = quarantine;
    }

    /// `/healthz`: 503 while quarantined or after a cycle that failed as a whole.
    pub fn liveness(&self) -> (StatusCode, String) {
        let state = self.lock();
        if let Some((until, reason)) = &state.quarantine {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("quarantined until {until}: {reason}\n"),
            );
        }
        match &state.last {
            Some(LastCycle::FailedHard { error }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("last cycle failed: {error}\n"),
            ),
            Some(LastCycle::Completed { status }) => {
                (StatusCode::OK, format!("ok: last cycle {status}\n"))
            }
            None => (StatusCode::OK, "ok: no cycle finished yet\n".into()),
        }
    }

    pub fn readiness(&self) -> (StatusCode, &'static str) {
        if self.lock().ready {
            (StatusCode::OK, "ready\n")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
        }
    }
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: PrometheusHandle,
}

fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|State(s): State<AppState>| async move { s.health.liveness() }),
        )
        .route(
            "/readyz",
            get(|State(s): State<AppState>| async move { s.health.readiness() }),
        )
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    s.metrics.render(),
                )
            }),
        )
        .with_state(state)
}

/// A running endpoint server; dropping it stops the server.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), &mut self.task).await;
    }
}

/// Binds `addr` and serves until stopped.
pub async fn serve(addr: SocketAddr, health: Health, metrics: PrometheusHandle) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("[daemon] listen: cannot bind {addr}"))?;
    let addr = listener.local_addr()?;
    // Histograms are drained into their buckets by upkeep; without it they grow between scrapes.
    let upkeep = metrics.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(AppState { health, metrics });
    let task = tokio::spawn(async move {
        let upkeep_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        upkeep_task.abort();
        if let Err(e) = served {
            tracing::error!("metrics and health server stopped: {e}");
        }
    });
    Ok(Server {
        addr,
        stop: Some(tx),
        task,
    })
}
