//! The executor's `Recorder` over the store: journal intents before writes, their completion
//! after, links, guests, the grace period's start, and events through the emit point.

use crate::EngineError;
use crate::emit::{Emitter, EventContext, EventExt};
use scimsync_executor::{OpOutcome, Recorder};
use scimsync_model::{Event, Link, Op, ResourceKind, RunId, SourceId, Uncertain};
use scimsync_store::{IntentId, IntentOutcome, Store, StoreError};
use std::collections::HashMap;

pub struct StoreRecorder<'a> {
    store: &'a mut Store,
    emitter: &'a Emitter,
    run: RunId,
    intents: HashMap<usize, IntentId>,
    /// userNames of the creates in flight, to remember guests the target refuses.
    creates: HashMap<usize, String>,
    /// The store failing mid-run cannot stop the executor from here; the first error is kept
    /// and returned by `finish`, and the cycle reports it.
    error: Option<EngineError>,
    /// Who started the run and against what, for the events this recorder makes itself.
    initiated_by: scimsync_model::InitiatedBy,
    integration: String,
}

impl<'a> StoreRecorder<'a> {
    pub fn new(
        store: &'a mut Store,
        emitter: &'a Emitter,
        ctx: &EventContext,
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

    fn keep<T>(&mut self, result: Result<T, impl Into<EngineError>>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let e = e.into();
                tracing::error!("state store: {e}");
                self.error.get_or_insert(e);
                None
            }
        }
    }

    /// Ends the run's progress display; the first store failure of the run, if any.
    pub fn finish(self) -> Result<(), EngineError> {
        self.emitter.progress_finish();
        match self.error {
            Some(e) => Err(EngineError::StoreDuringRun(Box::new(e))),
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
        let result = self.store.open_intent(run, op, request);
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
            let result = self.store.set_meta(&key, &scimsync_store::now_rfc3339());
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
            let result = self.store.complete_intent(id, done);
            self.keep(result);
        }
    }

    fn link(&mut self, link: Link) {
        let since = track_deactivation(self.store, &link);
        self.keep(since);
        let result = self.store.upsert_link(&link);
        // The executor links only on a confirmed outcome: the user's state is known again.
        if self.keep(result).is_some() {
            self.settle(ResourceKind::User, &link.source_id);
        }
    }

    fn unlink(&mut self, source_id: &SourceId) {
        let key = crate::meta::deactivated_key(source_id);
        let result = self.store.remove_meta(&key);
        self.keep(result);
        let result = self.store.remove_link(source_id);
        if self.keep(result).is_some() {
            self.settle(ResourceKind::User, source_id);
        }
    }

    fn event(&mut self, event: Event) {
        let result = self.emitter.emit(self.store, event);
        self.keep(result);
    }

    fn group_link(&mut self, link: scimsync_model::GroupLink) {
        let result = self.store.upsert_group_link(&link);
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
        let ctx = EventContext {
            run_id: self.run,
            initiated_by: self.initiated_by,
            integration: self.integration.clone(),
        };
        let event = ctx
            .event(scimsync_model::EventType::TargetAttributeUnsupported, false)
            .with_detail(serde_json::json!({"path": u.path, "reason": u.reason}))
            .with_error(Some(crate::discovery::describe(&u)));
        self.event(event);
    }

    fn group_unlink(&mut self, source_id: &SourceId) {
        let result = self.store.remove_group_link(source_id);
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
        let result = self.store.mark_uncertain(Some(run), mark);
        self.keep(result);
    }

    fn team_link(&mut self, link: scimsync_model::TeamLink) {
        let result = self.store.upsert_team_link(&link);
        self.keep(result);
    }

    fn team_unlink(&mut self, group: &SourceId, team: &scimsync_model::TeamId) {
        let result = self.store.remove_team_link(group, team);
        self.keep(result);
    }
}

impl StoreRecorder<'_> {
    fn settle(&mut self, kind: ResourceKind, source_id: &SourceId) {
        let result = self.store.clear_uncertain(kind, source_id);
        self.keep(result);
    }
}

/// The grace period of `policy.delete_after` runs from the first cycle that saw the user
/// deactivated; a reactivation ends it. Called for every link stored.
pub fn track_deactivation(store: &mut Store, link: &Link) -> Result<(), StoreError> {
    let key = crate::meta::deactivated_key(&link.source_id);
    if link.active {
        store.remove_meta(&key)?;
    } else if store.meta(&key)?.is_none() {
        store.set_meta(&key, &scimsync_store::now_rfc3339())?;
    }
    Ok(())
}
