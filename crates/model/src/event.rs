//! Audit events, DI style: one per attempted operation plus cycle start and end.

use crate::{RunId, ScimId, SourceId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Event names are a contract (audit queries and SIEM rules outside the project match them, and
/// `scimsync events --type` takes them): never rename a variant's serialized form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    UserCreateProvision,
    UserUpdateProvision,
    UserDeprovision,
    UserDeleteProvision,
    UserLookupProvision,
    GroupCreateProvision,
    GroupUpdateProvision,
    GroupDeleteProvision,
    IdmIntegrationActivate,
    IdmIntegrationUpdate,
    IdmIntegrationReauth,
    IdmIntegrationDelete,
    SyncCycleStart,
    SyncCycleEnd,
    SyncHeld,
    SyncQuarantined,
    /// A mapped attribute the target does not take (not declared in its `/Schemas`, declared
    /// read-only, or refused with 400 `invalidPath`): one per attribute when discovered, not
    /// one failure per user.
    TargetAttributeUnsupported,
    /// `scimsync approve-deletes` approved the held set (not part of a run).
    SyncApproved,
}

impl EventType {
    pub const ALL: [EventType; 18] = [
        EventType::UserCreateProvision,
        EventType::UserUpdateProvision,
        EventType::UserDeprovision,
        EventType::UserDeleteProvision,
        EventType::UserLookupProvision,
        EventType::GroupCreateProvision,
        EventType::GroupUpdateProvision,
        EventType::GroupDeleteProvision,
        EventType::IdmIntegrationActivate,
        EventType::IdmIntegrationUpdate,
        EventType::IdmIntegrationReauth,
        EventType::IdmIntegrationDelete,
        EventType::SyncCycleStart,
        EventType::SyncCycleEnd,
        EventType::SyncHeld,
        EventType::SyncQuarantined,
        EventType::TargetAttributeUnsupported,
        EventType::SyncApproved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreateProvision => "user_create_provision",
            EventType::UserUpdateProvision => "user_update_provision",
            EventType::UserDeprovision => "user_deprovision",
            EventType::UserDeleteProvision => "user_delete_provision",
            EventType::UserLookupProvision => "user_lookup_provision",
            EventType::GroupCreateProvision => "group_create_provision",
            EventType::GroupUpdateProvision => "group_update_provision",
            EventType::GroupDeleteProvision => "group_delete_provision",
            EventType::IdmIntegrationActivate => "idm_integration_activate",
            EventType::IdmIntegrationUpdate => "idm_integration_update",
            EventType::IdmIntegrationReauth => "idm_integration_reauth",
            EventType::IdmIntegrationDelete => "idm_integration_delete",
            EventType::SyncCycleStart => "sync_cycle_start",
            EventType::SyncCycleEnd => "sync_cycle_end",
            EventType::SyncHeld => "sync_held",
            EventType::SyncQuarantined => "sync_quarantined",
            EventType::TargetAttributeUnsupported => "target_attribute_unsupported",
            EventType::SyncApproved => "sync_approved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who started the cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitiatedBy {
    Schedule,
    Manual,
}

impl InitiatedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            InitiatedBy::Schedule => "schedule",
            InitiatedBy::Manual => "manual",
        }
    }
}

/// The resource an event is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResource {
    /// "user" or "group".
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_id: Option<SourceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<ScimId>,
}

/// The HTTP exchange behind an event: the request that failed, for a failed op (not a lookup
/// made after it); otherwise the last attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHttp {
    pub method: String,
    /// The request's path relative to the SCIM base URL (`/Users`, `/Users/{id}`), without
    /// the query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// None when no response arrived (timeout, connection reset).
    pub status: Option<u16>,
    /// Requests sent for the operation, lookups and retries included.
    pub attempts: u32,
    pub ms: u64,
    /// Of `attempts`, the writes (POST, PUT, PATCH, DELETE) that may have reached the target:
    /// with `attempts`, an audit can account for every request the target saw.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub writes: u32,
    /// Set when a write of this operation got no answer that says whether it was applied; its
    /// user or group is then verified by a read before the next cycle plans it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outcome_unknown: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One audit event. Never carries a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339, UTC.
    pub ts: String,
    pub event_type: EventType,
    pub success: bool,
    pub run_id: Option<RunId>,
    pub initiated_by: Option<InitiatedBy>,
    /// The integration's name (the target's host and profile).
    pub integration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<EventResource>,
    /// attr → {old, new}
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<EventHttp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Free-form context: a skip reason, a cycle summary.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// What an event says happened, in the words the run summary, `events`, the plan and `status`
/// all use: an op is **skipped** when scimsync decided not to send it, or the target refused it
/// for a reason no retry changes (a guest's email, a team with no REST access): its event has
/// `detail.skipped = true`; **failed** when it was sent and not done; **adopted** when an
/// existing target user or group was linked instead of created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Ok,
    Adopted,
    Skipped,
    Failed,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Ok => "ok",
            EventOutcome::Adopted => "adopted",
            EventOutcome::Skipped => "skipped",
            EventOutcome::Failed => "failed",
        }
    }
}

impl Event {
    pub fn outcome(&self) -> EventOutcome {
        let flag = |key: &str| self.detail.get(key);
        match (self.success, flag("skipped"), flag("action")) {
            (false, Some(serde_json::Value::Bool(true)), _) => EventOutcome::Skipped,
            (false, _, _) => EventOutcome::Failed,
            (true, _, Some(serde_json::Value::String(a))) if a == "adopt" => EventOutcome::Adopted,
            (true, _, _) => EventOutcome::Ok,
        }
    }
}
