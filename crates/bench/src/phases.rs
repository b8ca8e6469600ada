//! Times the engine's phases from outside: a `tracing` layer on the spans the engine opens
//! around them (`scimsync_engine::report::PHASE`), each timed from its creation to its close,
//! with the process's CPU time (all threads) and resident memory at its end. So a benchmark
//! runs the product's own path and still reports where the time goes.

use crate::cpu::process_cpu;
use crate::rss;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// One phase as it ran.
#[derive(Clone, Debug)]
pub struct Timed {
    pub name: &'static str,
    pub wall: Duration,
    pub cpu: Duration,
    /// Resident memory when it ended, in bytes.
    pub rss: Option<u64>,
}

/// The phases timed so far, in the order they ended.
#[derive(Clone, Default)]
pub struct Phases(Arc<Mutex<Vec<Timed>>>);

struct Started {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Phases {
    /// Installs the layer as this process's subscriber and returns what it records.
    pub fn install() -> anyhow::Result<Phases> {
        use tracing_subscriber::layer::SubscriberExt;
        let phases = Phases::default();
        let subscriber = tracing_subscriber::registry().with(phases.clone());
        tracing::subscriber::set_global_default(subscriber)?;
        Ok(phases)
    }

    pub fn take(&self) -> Vec<Timed> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Phases {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().target() != scimsync_engine::report::PHASE {
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started {
                wall: Instant::now(),
                cpu: process_cpu(),
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(started) = span.extensions_mut().remove::<Started>() else {
            return;
        };
        let cpu = match (started.cpu, process_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        };
        let timed = Timed {
            name: span.metadata().name(),
            wall: started.wall.elapsed(),
            cpu,
            rss: rss::current_rss_bytes(),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(timed);
    }
}
