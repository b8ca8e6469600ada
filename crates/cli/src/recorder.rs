//! The one emit point for events (store row, log line, JSON line on stdout), and the executor's
//! `Recorder` over the store: journal intents, links and events as operations complete.

use crate::progress::Progress;
use anyhow::Result;
use scimsync_executor::{OpOutcome, Recorder};
use scimsync_model::{Event, EventOutcome, Link, Op, ResourceKind, RunId, SourceId, Uncertain};
use scimsync_store::{IntentId, IntentOutcome, Store};
use std::collections::HashMap;
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Every event goes through `emit`: it stamps the time, writes the audit row, and logs it.
pub struct Emitter {
    pub format: LogFormat,
}

impl Emitter {
    pub fn emit(&self, store: &mut Store, mut event: Event) -> Result<()> {
        if event.ts.is_empty() {
            event.ts = scimsync_store::now_rfc3339();
        }
        store.record_event(&event)?;
        // After the row is written: a metric never counts an event the store does not hold.
        crate::metrics::observe(&event);
        self.log(&event);
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
            crate::metrics::observe(event);
            self.log(event);
        }
        Ok(())
    }

    fn log(&self, event: &Event) {
        match self.format {
            LogFormat::Json => {
                if let Ok(line) = serde_json::to_string(event) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                }
            }
            LogFormat::Text => {
                let resource = event.resource.as_ref();
                let name =
                    resource.and_then(|r| r.user_name.as_deref().or(r.display_name.as_deref()));
                let name = name.map(tracing::field::display);
                let (user, group) = match resource.map(|r| r.kind.as_str()) {
                    Some("group") => (None, name),
                    _ => (name, None),
                };
                // Option fields are left out when absent (tracing records `Some` only), so a
                // line never reads `status=None`.
                let status = event.http.as_ref().and_then(|h| h.status);
                let outcome = event.outcome();
                match outcome {
                    EventOutcome::Ok | EventOutcome::Adopted => tracing::info!(
                        target: "scimsync::event",
                        event = %event.event_type,
                        user,
                        group,
                        status,
                        "{}",
                        outcome.as_str()
                    ),
                    EventOutcome::Skipped | EventOutcome::Failed => tracing::warn!(
                        target: "scimsync::event",
                        event = %event.event_type,
                        user,
                        group,
                        status,
                        error = event.error.as_deref().unwrap_or(""),
                        "{}",
                        outcome.as_str()
                    ),
                }
            }
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
    progress: Progress,
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
        progress: Progress,
    ) -> Self {
        StoreRecorder {
            store,
            emitter,
            run: ctx.run_id,
            intents: HashMap::new(),
            creates: HashMap::new(),
            progress,
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
        self.progress.finish();
        match self.error {
            Some(e) => {
                Err(e.context("the state store failed during the run; the next cycle reconciles"))
            }
            None => Ok(()),
        }
    }
}

impl Recorder for StoreRecorder<'_> {
    fn before_write(&mut self, op_index: usize, op: &Op, request: &str) {
        if let Op::Create { user_name, .. } = op {
            self.creates.insert(op_index, user_name.clone());
        }
        let run = self.run;
        let result = self
            .store
            .open_intent(run, op, request)
            .map_err(anyhow::Error::from);
        if let Some(id) = self.keep(result) {
            self.intents.insert(op_index, id);
        }
    }

    fn after_write(&mut self, op_index: usize, outcome: &OpOutcome) {
        self.progress.inc();
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
        let since = track_deactivation(self.store, &link);
        self.keep(since);
        let result = self.store.upsert_link(&link).map_err(anyhow::Error::from);
        // The executor links only on a confirmed outcome: the user's state is known again.
        if self.keep(result).is_some() {
            self.settle(ResourceKind::User, &link.source_id);
        }
    }

    fn unlink(&mut self, source_id: &SourceId) {
        let key = crate::meta::deactivated_key(source_id);
        let result = self.store.remove_meta(&key).map_err(anyhow::Error::from);
        self.keep(result);
        let result = self
            .store
            .remove_link(source_id)
            .map_err(anyhow::Error::from);
        if self.keep(result).is_some() {
            self.settle(ResourceKind::User, source_id);
        }
    }

    fn event(&mut self, event: Event) {
        let result = self
            .progress
            .suspend(|| self.emitter.emit(self.store, event));
        self.keep(result);
    }

    fn group_link(&mut self, link: scimsync_model::GroupLink) {
        let result = self
            .store
            .upsert_group_link(&link)
            .map_err(anyhow::Error::from);
        if self.keep(result).is_some() {
            self.settle(ResourceKind::Group, &link.source_id);
        }
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
        if self.keep(result).is_some() {
            self.settle(ResourceKind::Group, source_id);
        }
    }

    fn uncertain(&mut self, mark: &Uncertain) {
        tracing::warn!(
            "{} {} ({}): the outcome of its {} is unknown; the next cycle reads it before planning it",
            mark.kind,
            mark.name,
            mark.source_id,
            mark.op.as_str()
        );
        let run = self.run;
        let result = self
            .store
            .mark_uncertain(Some(run), mark)
            .map_err(anyhow::Error::from);
        self.keep(result);
    }

    fn team_link(&mut self, link: scimsync_model::TeamLink) {
        let result = self
            .store
            .upsert_team_link(&link)
            .map_err(anyhow::Error::from);
        self.keep(result);
    }

    fn team_unlink(&mut self, group: &SourceId, team: &scimsync_model::TeamId) {
        let result = self
            .store
            .remove_team_link(group, team)
            .map_err(anyhow::Error::from);
        self.keep(result);
    }
}

impl StoreRecorder<'_> {
    fn settle(&mut self, kind: ResourceKind, source_id: &SourceId) {
        let result = self
            .store
            .clear_uncertain(kind, source_id)
            .map_err(anyhow::Error::from);
        self.keep(result);
    }
}

/// The grace period of `policy.delete_after` runs from the first cycle that saw the user
/// deactivated; a reactivation ends it. Called for every link stored.
pub fn track_deactivation(store: &mut Store, link: &Link) -> Result<()> {
    let key = crate::meta::deactivated_key(&link.source_id);
    if link.active {
        store.remove_meta(&key)?;
    } else if store.meta(&key)?.is_none() {
        store.set_meta(&key, &scimsync_store::now_rfc3339())?;
    }
    Ok(())
}
