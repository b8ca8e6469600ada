//! The one emit point for events, and the executor's `Recorder` over the store: journal
//! intents, links and events as operations complete.
//!
//! Every event passes [`Emitter::emit`]: it stamps the time, writes the audit row, then hands the
//! event to whatever the front end attached ([`EventSink`]: a log line, a JSON line, metrics).
//! The row comes first, so a sink never reports an event the store does not hold.

use anyhow::Result;
use scimsync_executor::{OpOutcome, Recorder};
use scimsync_model::{Event, Link, Op, RunId, SourceId};
use scimsync_store::{IntentId, IntentOutcome, Store};
use std::collections::HashMap;

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

    pub fn emit(&self, store: &mut Store, mut event: Event) -> Result<()> {
        if event.ts.is_empty() {
            event.ts = scimsync_store::now_rfc3339();
        }
        store.record_event(&event)?;
        self.tell(&event);
        Ok(())
    }

    /// `emit` for many events, stored in one transaction: a directory with ten thousand
    /// invalid records costs one commit a cycle, not ten thousand.
    pub fn emit_all(&self, store: &mut Store, mut events: Vec<Event>) -> Result<()> {
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

    fn progress_start(&self, writes: u64) {
        if let Some(p) = &self.progress {
            p.start(writes);
        }
    }

    fn progress_advance(&self) {
        if let Some(p) = &self.progress {
            p.advance();
        }
    }

    fn progress_finish(&self) {
        if let Some(p) = &self.progress {
            p.finish();
        }
    }
}

pub struct StoreRecorder<'a> {
    store: &'a mut Store,
    emitter: &'a Emitter,
    run: RunId,
    intents: HashMap<usize, IntentId>,
    /// userNames of the creates in flight, to remember guests the target refuses.
    creates: HashMap<usize, String>,
    /// The store failing mid-run cannot stop the executor from here; the first error is kept
    /// and returned by `finish`, and the cycle reports it.
    error: Option<anyhow::Error>,
    /// Who started the run and against what, for the events this recorder makes itself.
    initiated_by: scimsync_model::InitiatedBy,
    integration: String,
}

impl<'a> StoreRecorder<'a> {
    pub fn new(
        store: &'a mut Store,
        emitter: &'a Emitter,
        ctx: &crate::cycle::EventContext,
        writes: u64,
    ) -> Self {
        emitter.progress_start(writes);
        StoreRecorder {
            store,
            emitter,
            run: ctx.run_id,
            intents: HashMap::new(),
            creates: HashMap::new(),
            error: None,
            initiated_by: ctx.initiated_by,
            integration: ctx.integration.clone(),
        }
    }

    fn keep<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!("state store: {e:#}");
                self.error.get_or_insert(e);
                None
            }
        }
    }

    pub fn finish(self) -> Result<()> {
        self.emitter.progress_finish();
        match self.error {
            Some(e) => {
                Err(e.context("the state store failed during the run; the next cycle reconciles"))
            }
            None => Ok(()),
        }
    }
}

impl Recorder for StoreRecorder<'_> {
    fn before_write(&mut self, op_index: usize, op: &Op) {
        if let Op::Create { user_name, .. } = op {
            self.creates.insert(op_index, user_name.clone());
        }
        let run = self.run;
        let result = self.store.open_intent(run, op).map_err(anyhow::Error::from);
        if let Some(id) = self.keep(result) {
            self.intents.insert(op_index, id);
        }
    }

    fn after_write(&mut self, op_index: usize, outcome: &OpOutcome) {
        self.emitter.progress_advance();
        // A guest holds the email: remember it so later cycles do not knock on the same door
        // (SPEC: never retry). A full read that shows the user as a member adopts them instead.
        if let (Some(user_name), OpOutcome::TargetGuest(_)) =
            (self.creates.remove(&op_index), outcome)
        {
            let key = crate::meta::guest_key(&user_name);
            let result = self
                .store
                .set_meta(&key, &scimsync_store::now_rfc3339())
                .map_err(anyhow::Error::from);
            self.keep(result);
        }
        if let Some(id) = self.intents.remove(&op_index) {
            let done = match outcome {
                OpOutcome::Failed(_) => IntentOutcome::Failed,
                // Never sent: nothing reached the target.
                OpOutcome::NotSent => IntentOutcome::Abandoned,
                OpOutcome::Succeeded
                | OpOutcome::Adopted
                | OpOutcome::Skipped(_)
                | OpOutcome::TargetGuest(_) => IntentOutcome::Succeeded,
            };
            let result = self
                .store
                .complete_intent(id, done)
                .map_err(anyhow::Error::from);
            self.keep(result);
        }
    }

    fn link(&mut self, link: Link) {
        // The grace period of `policy.delete_after` runs from the first cycle that saw the user
        // deactivated; a reactivation ends it.
        let key = crate::meta::deactivated_key(&link.source_id);
        let since = if link.active {
            self.store.remove_meta(&key).map_err(anyhow::Error::from)
        } else {
            match self.store.meta(&key) {
                Ok(Some(_)) => Ok(()),
                Ok(None) => self
                    .store
                    .set_meta(&key, &scimsync_store::now_rfc3339())
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e.into()),
            }
        };
        self.keep(since);
        let result = self.store.upsert_link(&link).map_err(anyhow::Error::from);
        self.keep(result);
    }

    fn unlink(&mut self, source_id: &SourceId) {
        let key = crate::meta::deactivated_key(source_id);
        let result = self.store.remove_meta(&key).map_err(anyhow::Error::from);
        self.keep(result);
        let result = self
            .store
            .remove_link(source_id)
            .map_err(anyhow::Error::from);
        self.keep(result);
    }

    fn event(&mut self, event: Event) {
        let result = self.emitter.emit(self.store, event);
        self.keep(result);
    }

    fn group_link(&mut self, link: scimsync_model::GroupLink) {
        let result = self
            .store
            .upsert_group_link(&link)
            .map_err(anyhow::Error::from);
        self.keep(result);
    }

    fn attribute_refused(&mut self, dropped: &scimsync_executor::Dropped) {
        // Once per attribute: the first user it was refused for says it for all.
        let result = crate::discovery::remember_refused(self.store, &dropped.path, &dropped.detail);
        if self.keep(result) != Some(true) {
            return;
        }
        let u = crate::discovery::Unsupported {
            path: dropped.path.clone(),
            reason: format!(
                "the target refused it (400 {}): {}",
                dropped.scim_type.as_deref().unwrap_or_default(),
                dropped.detail
            ),
        };
        let ctx = crate::cycle::EventContext {
            run_id: self.run,
            initiated_by: self.initiated_by,
            integration: self.integration.clone(),
        };
        use crate::cycle::EventExt;
        let event = ctx
            .event(scimsync_model::EventType::TargetAttributeUnsupported, false)
            .with_detail(serde_json::json!({"path": u.path, "reason": u.reason}))
            .with_error(Some(crate::discovery::describe(&u)));
        self.event(event);
    }

    fn group_unlink(&mut self, source_id: &SourceId) {
        let result = self
            .store
            .remove_group_link(source_id)
            .map_err(anyhow::Error::from);
        self.keep(result);
    }
}
