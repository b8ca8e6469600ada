//! The interface every backend implements: all the store's behaviour, in the model's types.
//! The conformance suite (`crates/store/tests/conformance/`) pins what each method must do;
//! a backend that passes it can stand behind [`crate::Store`].

use crate::{
    ApprovalGrant, ApproveOutcome, CachedDiscovery, CycleLock, EventQuery, Intent, IntentId,
    IntentOutcome, LinkHeads, Mark, QuarantineRecord, RunOutcome, RunRecord, Setting, SqliteStore,
    StampedLink, StoreError, UncertainMark,
};
use scimsync_model::{
    Approval, Event, GroupLink, HeldSet, InitiatedBy, Link, LossId, Op, ResourceKind, RunId,
    SourceId, TeamId, TeamLink, Uncertain,
};
use std::collections::HashMap;

/// The state of one integration, whatever holds it. Each method is one transaction: it
/// happens whole or not at all. Blocking: see the crate doc for why and how an async backend
/// is bridged.
pub trait Backend: Send {
    /// Where the state lives, for messages (a file path; never credentials).
    fn location(&self) -> String;
    /// The schema version of the open store.
    fn schema_version(&self) -> Result<i64, StoreError>;
    /// Takes the cycle lock: at most one cycle at a time runs on this integration's state,
    /// across processes. [`StoreError::CycleRunning`] when another holds it; released when
    /// the returned value is dropped or the process dies.
    fn lock_cycles(&self) -> Result<CycleLock, StoreError>;

    // Links.
    /// Every link, ordered by source id.
    fn links(&self) -> Result<Vec<Link>, StoreError>;
    /// Every link, ordered by source id, attributes left empty, each with its record stamp:
    /// what an incremental cycle loads. `fill_link_attrs` decodes the few it will touch.
    fn link_heads(&self) -> Result<LinkHeads, StoreError>;
    /// Stores record stamps, each only if its link still has the fingerprint, userName and
    /// active flag it was proved against. Returns how many were stored.
    fn stamp_records(&mut self, stamped: &[StampedLink]) -> Result<usize, StoreError>;
    /// Decodes the stored attributes of the links `wanted` picks (by position and link).
    /// Returns how many were picked.
    fn fill_link_attrs(
        &self,
        links: &mut [Link],
        wanted: &dyn Fn(usize, &Link) -> bool,
    ) -> Result<usize, StoreError>;
    /// The link of one directory user, if it is managed.
    fn link(&self, source_id: &SourceId) -> Result<Option<Link>, StoreError>;
    /// Inserts or updates the link of `link.source_id`, forgetting its record stamp. A link
    /// another source id held to the same target id is removed: one target user is managed
    /// for one directory user, and the newest link wins.
    fn upsert_link(&mut self, link: &Link) -> Result<(), StoreError>;
    /// `upsert_link` for many links, all or none, ending as upserting them one by one would.
    fn upsert_links(&mut self, links: &[Link]) -> Result<(), StoreError>;
    /// Forgets a directory user's link (an absent one is not an error).
    fn remove_link(&mut self, source_id: &SourceId) -> Result<(), StoreError>;
    /// How many directory users are managed.
    fn link_count(&self) -> Result<usize, StoreError>;

    // Group and team links.
    /// Every group link, ordered by source id.
    fn group_links(&self) -> Result<Vec<GroupLink>, StoreError>;
    /// Inserts or updates the link of `link.source_id`; a link another group held to the same
    /// target group is removed.
    fn upsert_group_link(&mut self, link: &GroupLink) -> Result<(), StoreError>;
    /// Removes a group's link and the team assignments scimsync made for it.
    fn remove_group_link(&mut self, source_id: &SourceId) -> Result<(), StoreError>;
    /// Every team link, ordered by group, then team.
    fn team_links(&self) -> Result<Vec<TeamLink>, StoreError>;
    fn upsert_team_link(&mut self, link: &TeamLink) -> Result<(), StoreError>;
    fn remove_team_link(&mut self, group: &SourceId, team: &TeamId) -> Result<(), StoreError>;

    // Runs.
    /// Records the start of a cycle, status `Running`, and returns its id.
    fn begin_run(&mut self, initiated_by: InitiatedBy, full: bool) -> Result<RunId, StoreError>;
    /// Records how a run ended, stamping `finished_at`.
    fn finish_run(&mut self, run: RunId, outcome: &RunOutcome) -> Result<(), StoreError>;
    /// The last `limit` runs, newest first.
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
    /// The newest run, if any.
    fn last_run(&self) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.runs(1)?.into_iter().next())
    }
    /// Marks every run still `Running` as `Interrupted`; call it only holding the cycle lock.
    fn mark_interrupted_runs(&mut self) -> Result<usize, StoreError>;

    // The audit log.
    /// Appends one event; an empty `ts` is stamped now, any other is normalized.
    fn record_event(&mut self, event: &Event) -> Result<(), StoreError>;
    /// `record_event` for many events, all or none.
    fn record_events(&mut self, events: &[Event]) -> Result<(), StoreError>;
    /// The events matching `query`, oldest first (with a limit: the most recent ones).
    fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError>;

    // The journal of write intents.
    /// Records, durably before returning, that `op` is about to be sent as `request`.
    fn open_intent(&mut self, run: RunId, op: &Op, request: &str) -> Result<IntentId, StoreError>;
    /// Closes an intent; closing one already closed keeps its first outcome.
    fn complete_intent(&mut self, id: IntentId, outcome: IntentOutcome) -> Result<(), StoreError>;
    /// Intents never completed, oldest first.
    fn open_intents(&self) -> Result<Vec<Intent>, StoreError>;
    /// Deletes completed intents created before `before` (RFC 3339); returns how many.
    fn prune_completed_intents(&mut self, before: &str) -> Result<usize, StoreError>;

    // The deletion guard.
    /// The set the last held cycle held, if it is still the current hold.
    fn hold(&self) -> Result<Option<HeldSet>, StoreError>;
    /// Replaces the current hold with `held` (an empty set clears it).
    fn set_hold(&mut self, held: &HeldSet) -> Result<(), StoreError>;
    fn clear_hold(&mut self) -> Result<(), StoreError>;
    /// The current approval, expired or not.
    fn approval(&self) -> Result<Option<Approval>, StoreError>;
    /// Approves exactly the current held set, in one transaction with reading it.
    fn approve_hold(
        &mut self,
        grant: &ApprovalGrant,
        expect_digest: Option<&str>,
    ) -> Result<ApproveOutcome, StoreError>;
    /// Keeps of the approval only the losses in `remaining`.
    fn narrow_approval(&mut self, remaining: &[&LossId]) -> Result<(), StoreError>;
    fn clear_approval(&mut self) -> Result<(), StoreError>;

    // Uncertain objects.
    /// Marks a user or group uncertain; a user's link loses its fingerprint and stamp with it.
    fn mark_uncertain(&mut self, run: Option<RunId>, mark: &Uncertain) -> Result<(), StoreError>;
    /// Every uncertain user and group, users first, each in source id order.
    fn uncertain(&self) -> Result<Vec<UncertainMark>, StoreError>;
    /// Settles a user or group; returns whether it was uncertain.
    fn clear_uncertain(
        &mut self,
        kind: ResourceKind,
        source_id: &SourceId,
    ) -> Result<bool, StoreError>;

    // The target's discovery documents.
    /// Stores a discovery read by `run_id` (`None`: by `scimsync check`); prunes old ones.
    fn save_discovery(&mut self, run_id: Option<RunId>, document: &str) -> Result<(), StoreError>;
    /// The newest discovery, if any was read.
    fn discovery(&self) -> Result<Option<CachedDiscovery>, StoreError>;

    // What the cycles keep between runs.
    fn setting(&self, setting: Setting) -> Result<Option<String>, StoreError>;
    /// Sets `setting`; `None` clears it.
    fn set_setting(&mut self, setting: Setting, value: Option<&str>) -> Result<(), StoreError>;
    /// The current quarantine, if any.
    fn quarantine(&self) -> Result<Option<QuarantineRecord>, StoreError>;
    /// Records a quarantine (`None` lifts it), all its facts at once.
    fn set_quarantine(&mut self, quarantine: Option<&QuarantineRecord>) -> Result<(), StoreError>;
    /// Every mark of `kind`: [`Mark::key`] → when it was first marked. One read for all.
    fn marks(&self, kind: Mark) -> Result<HashMap<String, String>, StoreError>;
    /// Marks `subject` as of now, keeping the first time if it is marked already.
    fn mark(&mut self, kind: Mark, subject: &str) -> Result<(), StoreError>;
    /// Drops a mark (an absent one is not an error).
    fn unmark(&mut self, kind: Mark, subject: &str) -> Result<(), StoreError>;
}

/// Each method is the table module's (`links.rs`, `runs.rs`, …) of the same name.
impl Backend for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }
    fn schema_version(&self) -> Result<i64, StoreError> {
        SqliteStore::schema_version(self)
    }
    fn lock_cycles(&self) -> Result<CycleLock, StoreError> {
        SqliteStore::lock_cycles(self)
    }
    fn links(&self) -> Result<Vec<Link>, StoreError> {
        SqliteStore::links(self)
    }
    fn link_heads(&self) -> Result<LinkHeads, StoreError> {
        SqliteStore::link_heads(self)
    }
    fn stamp_records(&mut self, stamped: &[StampedLink]) -> Result<usize, StoreError> {
        SqliteStore::stamp_records(self, stamped)
    }
    fn fill_link_attrs(
        &self,
        links: &mut [Link],
        wanted: &dyn Fn(usize, &Link) -> bool,
    ) -> Result<usize, StoreError> {
        SqliteStore::fill_link_attrs(self, links, wanted)
    }
    fn link(&self, source_id: &SourceId) -> Result<Option<Link>, StoreError> {
        SqliteStore::link(self, source_id)
    }
    fn upsert_link(&mut self, link: &Link) -> Result<(), StoreError> {
        SqliteStore::upsert_link(self, link)
    }
    fn upsert_links(&mut self, links: &[Link]) -> Result<(), StoreError> {
        SqliteStore::upsert_links(self, links)
    }
    fn remove_link(&mut self, source_id: &SourceId) -> Result<(), StoreError> {
        SqliteStore::remove_link(self, source_id)
    }
    fn link_count(&self) -> Result<usize, StoreError> {
        SqliteStore::link_count(self)
    }
    fn group_links(&self) -> Result<Vec<GroupLink>, StoreError> {
        SqliteStore::group_links(self)
    }
    fn upsert_group_link(&mut self, link: &GroupLink) -> Result<(), StoreError> {
        SqliteStore::upsert_group_link(self, link)
    }
    fn remove_group_link(&mut self, source_id: &SourceId) -> Result<(), StoreError> {
        SqliteStore::remove_group_link(self, source_id)
    }
    fn team_links(&self) -> Result<Vec<TeamLink>, StoreError> {
        SqliteStore::team_links(self)
    }
    fn upsert_team_link(&mut self, link: &TeamLink) -> Result<(), StoreError> {
        SqliteStore::upsert_team_link(self, link)
    }
    fn remove_team_link(&mut self, group: &SourceId, team: &TeamId) -> Result<(), StoreError> {
        SqliteStore::remove_team_link(self, group, team)
    }
    fn begin_run(&mut self, initiated_by: InitiatedBy, full: bool) -> Result<RunId, StoreError> {
        SqliteStore::begin_run(self, initiated_by, full)
    }
    fn finish_run(&mut self, run: RunId, outcome: &RunOutcome) -> Result<(), StoreError> {
        SqliteStore::finish_run(self, run, outcome)
    }
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        SqliteStore::runs(self, limit)
    }
    fn mark_interrupted_runs(&mut self) -> Result<usize, StoreError> {
        SqliteStore::mark_interrupted_runs(self)
    }
    fn record_event(&mut self, event: &Event) -> Result<(), StoreError> {
        SqliteStore::record_event(self, event)
    }
    fn record_events(&mut self, events: &[Event]) -> Result<(), StoreError> {
        SqliteStore::record_events(self, events)
    }
    fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        SqliteStore::events(self, query)
    }
    fn open_intent(&mut self, run: RunId, op: &Op, request: &str) -> Result<IntentId, StoreError> {
        SqliteStore::open_intent(self, run, op, request)
    }
    fn complete_intent(&mut self, id: IntentId, outcome: IntentOutcome) -> Result<(), StoreError> {
        SqliteStore::complete_intent(self, id, outcome)
    }
    fn open_intents(&self) -> Result<Vec<Intent>, StoreError> {
        SqliteStore::open_intents(self)
    }
    fn prune_completed_intents(&mut self, before: &str) -> Result<usize, StoreError> {
        SqliteStore::prune_completed_intents(self, before)
    }
    fn hold(&self) -> Result<Option<HeldSet>, StoreError> {
        SqliteStore::hold(self)
    }
    fn set_hold(&mut self, held: &HeldSet) -> Result<(), StoreError> {
        SqliteStore::set_hold(self, held)
    }
    fn clear_hold(&mut self) -> Result<(), StoreError> {
        SqliteStore::clear_hold(self)
    }
    fn approval(&self) -> Result<Option<Approval>, StoreError> {
        SqliteStore::approval(self)
    }
    fn approve_hold(
        &mut self,
        grant: &ApprovalGrant,
        expect_digest: Option<&str>,
    ) -> Result<ApproveOutcome, StoreError> {
        SqliteStore::approve_hold(self, grant, expect_digest)
    }
    fn narrow_approval(&mut self, remaining: &[&LossId]) -> Result<(), StoreError> {
        SqliteStore::narrow_approval(self, remaining)
    }
    fn clear_approval(&mut self) -> Result<(), StoreError> {
        SqliteStore::clear_approval(self)
    }
    fn mark_uncertain(&mut self, run: Option<RunId>, mark: &Uncertain) -> Result<(), StoreError> {
        SqliteStore::mark_uncertain(self, run, mark)
    }
    fn uncertain(&self) -> Result<Vec<UncertainMark>, StoreError> {
        SqliteStore::uncertain(self)
    }
    fn clear_uncertain(
        &mut self,
        kind: ResourceKind,
        source_id: &SourceId,
    ) -> Result<bool, StoreError> {
        SqliteStore::clear_uncertain(self, kind, source_id)
    }
    fn save_discovery(&mut self, run_id: Option<RunId>, document: &str) -> Result<(), StoreError> {
        SqliteStore::save_discovery(self, run_id, document)
    }
    fn discovery(&self) -> Result<Option<CachedDiscovery>, StoreError> {
        SqliteStore::discovery(self)
    }
    fn setting(&self, setting: Setting) -> Result<Option<String>, StoreError> {
        SqliteStore::setting(self, setting)
    }
    fn set_setting(&mut self, setting: Setting, value: Option<&str>) -> Result<(), StoreError> {
        SqliteStore::set_setting(self, setting, value)
    }
    fn quarantine(&self) -> Result<Option<QuarantineRecord>, StoreError> {
        SqliteStore::quarantine(self)
    }
    fn set_quarantine(&mut self, quarantine: Option<&QuarantineRecord>) -> Result<(), StoreError> {
        SqliteStore::set_quarantine(self, quarantine)
    }
    fn marks(&self, kind: Mark) -> Result<HashMap<String, String>, StoreError> {
        SqliteStore::marks(self, kind)
    }
    fn mark(&mut self, kind: Mark, subject: &str) -> Result<(), StoreError> {
        SqliteStore::mark(self, kind, subject)
    }
    fn unmark(&mut self, kind: Mark, subject: &str) -> Result<(), StoreError> {
        SqliteStore::unmark(self, kind, subject)
    }
}
