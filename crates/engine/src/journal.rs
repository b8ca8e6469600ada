//! Closing the journal's open intents, with an event for each.
//!
//! An intent is opened (and committed) before its write is sent, and completed after the write's
//! event is recorded. An intent still open therefore marks a write that may have reached the
//! target without an event saying so: a crash (kill -9) or a shutdown that dropped the request.
//! Closing it here emits that missing event (the op's own event type, `success = false`,
//! `detail.journal = "abandoned"`), so every attempted write has an event, and then marks the
//! intent abandoned. The event comes first: a crash between the two leaves the intent open and
//! the next close emits a second event, never an intent closed without one.
//!
//! Closing is safe because nothing is replayed from the journal: the next cycle re-plans from
//! the directory and the target, a create is preceded by a `userName eq` lookup (a create that
//! did land is adopted, not duplicated), and an update, deactivate or delete whose link was not
//! updated is re-derived and sent again (each is idempotent).

use crate::emit::Emitter;
use scimsync_model::{Event, EventResource, EventType, Op, OpKind};
use scimsync_store::{IntentOutcome, Store, StoreError};

/// Why open intents are being closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// At the start of a cycle: the previous process stopped without closing them (a crash).
    AfterCrash,
    /// On SIGTERM/SIGINT: the daemon dropped the cycle with these writes in flight.
    OnShutdown,
}

impl Closing {
    fn as_str(self) -> &'static str {
        match self {
            Closing::AfterCrash => "after_crash",
            Closing::OnShutdown => "on_shutdown",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Closing::AfterCrash => {
                "the process stopped while this write was in flight; its effect on the target is \
                 unknown and the next cycle re-plans it by lookup"
            }
            Closing::OnShutdown => {
                "shutdown interrupted this write in flight; its effect on the target is unknown \
                 and the next cycle re-plans it by lookup"
            }
        }
    }
}

/// Whether an event was emitted for an abandoned intent (rather than by the executor).
pub fn is_abandoned(event: &Event) -> bool {
    event.detail.get("journal").and_then(|v| v.as_str()) == Some("abandoned")
}

fn event_type(op: &Op) -> EventType {
    if op.is_group() {
        return match op.kind() {
            OpKind::Create => EventType::GroupCreateProvision,
            OpKind::Delete => EventType::GroupDeleteProvision,
            _ => EventType::GroupUpdateProvision,
        };
    }
    match op.kind() {
        OpKind::Create | OpKind::Adopt | OpKind::Skip => EventType::UserCreateProvision,
        OpKind::Update | OpKind::Reactivate => EventType::UserUpdateProvision,
        OpKind::Deactivate => EventType::UserDeprovision,
        OpKind::Delete => EventType::UserDeleteProvision,
        OpKind::Members => EventType::GroupUpdateProvision,
    }
}

/// Emits an event for every open intent and closes it as abandoned; returns how many.
pub fn close_open_intents(
    store: &mut Store,
    emitter: &Emitter,
    integration: &str,
    closing: Closing,
) -> Result<usize, StoreError> {
    let open = store.open_intents()?;
    for intent in &open {
        tracing::warn!(
            "journal: {} of {} (run {}) was in flight; closed as abandoned {}",
            intent.op.kind().as_str(),
            intent.op.user_name(),
            intent.run,
            closing.as_str()
        );
        let event = Event {
            ts: String::new(),
            event_type: event_type(&intent.op),
            success: false,
            run_id: Some(intent.run),
            initiated_by: None,
            integration: integration.to_owned(),
            resource: Some(EventResource {
                kind: if intent.op.is_group() {
                    "group"
                } else {
                    "user"
                }
                .into(),
                source_id: Some(intent.op.source_id().clone()),
                user_name: Some(intent.op.user_name().to_owned()),
                display_name: None,
                target_id: intent.op.target_id().cloned(),
            }),
            changes: Default::default(),
            http: None,
            error: Some(closing.message().to_owned()),
            detail: serde_json::json!({
                "journal": "abandoned",
                "closed": closing.as_str(),
                "intent": intent.id,
                "op": intent.op.kind().as_str(),
                "opened_at": intent.created_at,
            }),
        };
        emitter.emit(store, event)?;
        store.complete_intent(intent.id, IntentOutcome::Abandoned)?;
    }
    Ok(open.len())
}
