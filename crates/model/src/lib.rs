//! The shared vocabulary of scimsync: ids, the directory snapshot, desired and target users, the
//! typed operations of a plan, and audit events.
//!
//! Architecture Invariant: this crate depends on no other scimsync crate and does no IO. Every
//! other crate speaks these types, so a word here means one thing everywhere (see the glossary in
//! ARCHITECTURE.md).

mod attrs;
mod claims;
mod event;
mod group;
mod ids;
mod loss;
mod plan;
mod record;
mod snapshot;
mod source_attrs;
mod team;
mod uncertain;
mod user;

pub use attrs::{AttrKey, AttrValue, Attrs, CompactString, KeyInterner, paths};
pub use claims::{Claims, LinkHandle, LinkIssuer, PushedLinks};
pub use event::{Event, EventHttp, EventOutcome, EventResource, EventType, InitiatedBy};
pub use group::{
    DesiredGroup, GroupDeleteReason, GroupLink, GroupModel, GroupSkipReason, GroupView, Member,
    NameMatch, TargetGroup,
};
pub use ids::{RunId, ScimId, SourceId, TeamId};
pub use loss::{Approval, HeldSet, Loss, LossCounts, LossId, LossKind, LossRules, loss_digest};
pub use plan::{Change, DeprovisionReason, Op, OpKind, Phase, Plan, PlanCounts, SkipReason};
pub use record::{RecordContext, RecordKey, RecordStamp};
pub use snapshot::{Snapshot, SourceGroup, SourceUser, UserState};
pub use source_attrs::SourceAttrs;
pub use team::{Team, TeamAction, TeamLink, TeamRef, TeamSkipReason, TeamView};
pub use uncertain::{ResourceKind, Uncertain};
pub use user::{
    DesiredUser, Link, OutOfScope, OutOfScopeReason, TargetUser, TargetView, fingerprint,
    fingerprint_matches, fingerprint_matches_sorted, fold_user_name,
};
