//! The one emit point for events. Every event passes [`Emitter::emit`]: it stamps the time, writes the audit row, then hands the
//! event to whatever the front end attached ([`EventSink`]: a log line, a JSON line, metrics).
//! The row comes first, so a sink never reports an event the store does not hold.

use scimsync_model::{Event, EventType, InitiatedBy, RunId};
use scimsync_store::{Store, StoreError};

/// What a front end does with an event once the store holds it.
pub trait EventSink: Send + Sync {
    fn observe(&self, event: &Event);
}

/// Progress of a cycle's writes, for a front end that shows it (a terminal's progress bar).
pub trait Progress: Send + Sync {
    /// The executor is about to send this many writes.
    fn start(&self, writes: u64);
    /// One write finished (whatever its outcome).
    fn advance(&self);
    /// The run is over.
    fn finish(&self);
}

/// Every event goes through `emit`: it stamps the time, writes the audit row, then tells the
/// sinks, in the order they were attached.
#[derive(Default)]
pub struct Emitter {
    sinks: Vec<Box<dyn EventSink>>,
    progress: Option<Box<dyn Progress>>,
}

impl Emitter {
    pub fn new() -> Self {
        Emitter::default()
    }

    /// Attaches a sink: it sees every event after the store holds it.
    pub fn with_sink(mut self, sink: impl EventSink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Attaches a display of the writes' progress.
    pub fn with_progress(mut self, progress: impl Progress + 'static) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }

    pub fn emit(&self, store: &mut Store, mut event: Event) -> Result<(), StoreError> {
        if event.ts.is_empty() {
            event.ts = scimsync_store::now_rfc3339();
        }
        store.record_event(&event)?;
        self.tell(&event);
        Ok(())
    }

    /// `emit` for many events, stored in one transaction: a directory with ten thousand
    /// invalid records costs one commit a cycle, not ten thousand.
    pub fn emit_all(&self, store: &mut Store, mut events: Vec<Event>) -> Result<(), StoreError> {
        let now = scimsync_store::now_rfc3339();
        for event in &mut events {
            if event.ts.is_empty() {
                event.ts.clone_from(&now);
            }
        }
        store.record_events(&events)?;
        for event in &events {
            self.tell(event);
        }
        Ok(())
    }

    fn tell(&self, event: &Event) {
        for sink in &self.sinks {
            sink.observe(event);
        }
    }

    pub(crate) fn progress_start(&self, writes: u64) {
        if let Some(p) = &self.progress {
            p.start(writes);
        }
    }

    pub(crate) fn progress_advance(&self) {
        if let Some(p) = &self.progress {
            p.advance();
        }
    }

    pub(crate) fn progress_finish(&self) {
        if let Some(p) = &self.progress {
            p.finish();
        }
    }
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
