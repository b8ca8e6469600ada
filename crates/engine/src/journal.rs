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
//! Closing is safe because nothing is replayed from the journal: the write's user or group is
//! marked uncertain (`verify`), so the next cycle reads it from the target before planning it
//! and plans against what it finds, never against the link: a create that did land is found by
//! lookup and adopted (never duplicated), a deactivation that landed is seen as such (and
//! undone if the directory reactivated the user meanwhile), a delete that landed unlinks.
//! The event carries the request the intent journaled (`detail.request`).

use crate::emit::Emitter;
use scimsync_model::{Event, EventResource, EventType, Op, OpKind, ResourceKind, Uncertain};
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
                 unknown, so the next cycle reads it from the target before planning it"
            }
            Closing::OnShutdown => {
                "shutdown interrupted this write in flight; its effect on the target is unknown, \
                 so the next cycle reads it from the target before planning it"
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
        OpKind::Members | OpKind::Assign | OpKind::Unassign => EventType::GroupUpdateProvision,
    }
}

/// For every open intent: marks its user or group uncertain, emits its event, and closes it as
/// abandoned (in that order: a crash in between repeats the first two, never skips them).
/// Returns how many were closed.
pub fn close_open_intents(
    store: &mut Store,
    emitter: &Emitter,
    integration: &str,
    closing: Closing,
) -> Result<usize, StoreError> {
    let open = store.open_intents()?;
    for intent in &open {
        tracing::warn!(
            "journal: {} of {} (run {}, {}) was in flight; closed as abandoned {}",
            intent.op.kind().as_str(),
            intent.op.user_name(),
            intent.run,
            intent.request.as_deref().unwrap_or("request not journaled"),
            closing.as_str()
        );
        store.mark_uncertain(
            Some(intent.run),
            &Uncertain {
                kind: if intent.op.is_group() {
                    ResourceKind::Group
                } else {
                    ResourceKind::User
                },
                source_id: intent.op.source_id().clone(),
                target_id: intent.op.target_id().cloned(),
                name: intent.op.user_name().to_owned(),
                op: intent.op.kind(),
                reason: closing.message().to_owned(),
            },
        )?;
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
                user_name: (!intent.op.is_group()).then(|| intent.op.user_name().to_owned()),
                display_name: intent
                    .op
                    .is_group()
                    .then(|| intent.op.user_name().to_owned()),
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
                "request": intent.request,
                "opened_at": intent.created_at,
                "uncertain": true,
            }),
        };
        emitter.emit(store, event)?;
        store.complete_intent(intent.id, IntentOutcome::Abandoned)?;
    }
    Ok(open.len())
}
