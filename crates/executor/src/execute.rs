//! Plan execution: phases in order, ops of a phase concurrently (bounded), creates in waves so
//! a manager exists before the users who reference it, and every outcome reported through the
//! `Recorder` from this one driving task.

use crate::BucketReport;
use crate::client::{ScimClient, Tally, Trace, user_path};
use crate::error::ScimError;
use crate::machine::{
    Decide, Done, IfMatch, Input, Outcome, Setup, Step, UserOp, describe_dropped,
};
use crate::update::{Dropped, Writes};
use futures_util::stream::{FuturesUnordered, StreamExt};
use scimsync_model::{
    AttrValue, Attrs, Change, Event, EventResource, EventType, GroupLink, InitiatedBy, Link, Op,
    Phase, Plan, ResourceKind, RunId, ScimId, SourceId, TargetUser, Uncertain, fingerprint,
    fold_user_name, paths,
};
use scimsync_scim::Bucket;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Where the executor's results go (the CLI implements it over the store). Called from the
/// single driving task, never concurrently, in the order outcomes arrive.
pub trait Recorder {
    /// Journal intent: called before the first attempt of every write (create, update,
    /// deactivate, delete, and the group writes), with the request it will send
    /// (`PATCH /Users/123`), so an intent a crash leaves open says what may have reached the
    /// target.
    fn before_write(&mut self, op_index: usize, op: &Op, request: &str);
    /// Journal completion: called once after the write's final outcome.
    fn after_write(&mut self, op_index: usize, outcome: &OpOutcome);
    /// A link to store: the target acknowledged a create, adopt, update or deactivate.
    fn link(&mut self, link: Link);
    /// The target acknowledged a delete, or the target user is gone.
    fn unlink(&mut self, source_id: &SourceId);
    /// One per attempted operation; `ts` is left empty for the recorder to stamp.
    fn event(&mut self, event: Event);
    /// A group link to store: linked, created, renamed, or its members changed.
    fn group_link(&mut self, _link: GroupLink) {}
    /// The group is deleted, or no longer managed.
    fn group_unlink(&mut self, _source_id: &SourceId) {}
    /// The target refused an attribute itself (400 `invalidPath` or `mutability` naming it),
    /// for every user: the caller remembers it so later plans leave it out.
    fn attribute_refused(&mut self, _dropped: &Dropped) {}
    /// A write's outcome is unknown (no answer, an answer that confirms nothing, a run halted
    /// mid-retry): the next cycle must read this user or group before planning it. Called
    /// before the op's `after_write`. A later `link`/`unlink` (or `group_link`/`group_unlink`)
    /// of the same object means its state is known again.
    fn uncertain(&mut self, _mark: &Uncertain) {}
    /// A team assignment to store: made, or found made (Miro's REST API).
    fn team_link(&mut self, _link: scimsync_model::TeamLink) {}
    /// The group's user group is off the team.
    fn team_unlink(&mut self, _group: &SourceId, _team: &scimsync_model::TeamId) {}
}

/// The request a write op sends (after its lookups), as `METHOD /path`: what its journal
/// intent records. `put` when updates go as GET + PUT (no PATCH at the target).
pub fn planned_request(op: &Op, put: bool) -> String {
    let user = |id: &ScimId| user_path(id);
    let group = |id: &ScimId| crate::groups::group_path(id);
    match op {
        Op::Create { .. } => "POST /Users".into(),
        Op::Update { target_id, .. } | Op::Deactivate { target_id, .. } => {
            format!("{} {}", if put { "PUT" } else { "PATCH" }, user(target_id))
        }
        Op::Delete { target_id, .. } => format!("DELETE {}", user(target_id)),
        Op::GroupCreate { .. } => "POST /Groups".into(),
        Op::GroupRename { target_id, .. } => format!("PATCH {}", group(target_id)),
        Op::GroupMembers { target_id, .. } => match target_id {
            Some(id) => format!("PATCH {}", group(id)),
            None => "PATCH /Groups/(created in this run)".into(),
        },
        Op::GroupDelete { target_id, .. } => format!("DELETE {}", group(target_id)),
        // Miro's REST API, under `/v2/orgs/{org_id}`.
        Op::TeamAssignment {
            team,
            group_id,
            action: scimsync_model::TeamAction::Assign,
            ..
        } => format!(
            "POST /teams/{}/groups ({})",
            team.id.as_ref().map_or("?", |t| t.as_str()),
            group_id
                .as_ref()
                .map_or("group created in this run", |g| g.as_str())
        ),
        Op::TeamAssignment {
            team,
            group_id,
            action: scimsync_model::TeamAction::Unassign,
            ..
        } => format!(
            "DELETE /teams/{}/groups/{}",
            team.id.as_ref().map_or("?", |t| t.as_str()),
            group_id.as_ref().map_or("?", |g| g.as_str())
        ),
        Op::Adopt { .. }
        | Op::Skip { .. }
        | Op::GroupAdopt { .. }
        | Op::GroupSkip { .. }
        | Op::TeamAssignment { .. } => String::new(),
    }
}

/// The run an execution belongs to, stamped on every event.
#[derive(Clone, Debug)]
pub struct ExecContext {
    pub run_id: RunId,
    pub initiated_by: InitiatedBy,
    pub integration: String,
    /// Ops in flight at once within a phase (default 16). Pacing is per bucket regardless;
    /// this only bounds open requests.
    pub max_in_flight: usize,
}

impl ExecContext {
    pub fn new(run_id: RunId, initiated_by: InitiatedBy, integration: impl Into<String>) -> Self {
        ExecContext {
            run_id,
            initiated_by,
            integration: integration.into(),
            max_in_flight: 16,
        }
    }
}

/// How one op ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    Succeeded,
    /// A create resolved as an adoption of an existing target user (found by lookup, or the
    /// POST was refused as not unique).
    Adopted,
    /// Not done, and not an error to act on: the user is gone, or nothing was sendable.
    Skipped(String),
    /// A create the target answered 404: a guest or external user holds the email (Miro hides
    /// them from SCIM). Not retried; the caller remembers the userName.
    TargetGuest(String),
    /// Not sent because the run halted (401 or 403) first.
    NotSent,
    Failed(String),
}

/// What an execution did.
#[derive(Clone, Debug, Default)]
pub struct ExecutionReport {
    /// Ops that succeeded (adoptions included).
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Ops never sent because the run halted.
    pub not_attempted: usize,
    /// 429 responses received.
    pub rate_limited: u64,
    /// Attempts beyond each request's first.
    pub retries: u64,
    /// Set when a 401 stopped the run: the message of that failure.
    pub halted: Option<String>,
    pub elapsed: Duration,
    pub buckets: BTreeMap<Bucket, BucketReport>,
    /// (source id, message) of each failed op.
    pub failures: Vec<(SourceId, String)>,
}

/// Runs plans against one target.
#[derive(Clone, Debug)]
pub struct Executor {
    client: ScimClient,
    /// Miro's REST API, for team assignments (`None`: none configured).
    rest: Option<crate::rest::RestClient>,
    known: HashMap<ScimId, TargetUser>,
    group_links: Vec<GroupLink>,
    /// The run's case-insensitive search of the target's users.
    case_search: Arc<CaseSearch>,
    confirmed: HashMap<SourceId, Link>,
    /// The plans' creates are for userNames this cycle's reads did not find (see
    /// `with_creates_checked`).
    creates_checked: bool,
}

/// One paged read of the target's users, by folded userName.
#[derive(Debug)]
struct CaseIndex {
    /// On the client's clock (`ScimClient::now`).
    read_at: Duration,
    users: HashMap<String, TargetUser>,
}

/// Steps of one op's machine at most (see `Executor::drive`): far above what its own bounds
/// allow (every round of an update riding out its 429s), only a guard against a bug.
const MAX_STEPS: usize = 100_000;

/// The work of one op, prepared by the driver (references resolved through the working map).
enum Job {
    Create {
        user_name: String,
        attrs: Attrs,
        deferred: Vec<String>,
    },
    Adopt {
        target_id: ScimId,
    },
    Patch {
        target_id: ScimId,
        changes: Vec<Change>,
        deferred: Vec<String>,
    },
    Delete {
        target_id: ScimId,
    },
    /// Nothing can be sent (every change deferred or not sendable to this target).
    Nothing {
        reason: String,
        deferred: Vec<String>,
    },
}

impl Executor {
    pub fn new(client: ScimClient) -> Self {
        Executor {
            client,
            rest: None,
            known: HashMap::new(),
            group_links: Vec::new(),
            case_search: Arc::new(CaseSearch::default()),
            confirmed: HashMap::new(),
            creates_checked: false,
        }
    }

    /// Links as they stand once the plan's ops for their users succeed (the planner's
    /// `relinks`, for users compared with a read of the target): an update that succeeds whole
    /// (nothing deferred) records this link rather than the old one with the changes applied,
    /// which would keep any stale attribute the old link had.
    pub fn with_confirmed_links(mut self, links: impl IntoIterator<Item = Link>) -> Self {
        self.confirmed
            .extend(links.into_iter().map(|l| (l.source_id.clone(), l)));
        self
    }

    /// The group links as this cycle found them (members as read, or as last pushed), the
    /// starting point of the group working map.
    pub fn with_group_links(mut self, links: impl IntoIterator<Item = GroupLink>) -> Self {
        self.group_links.extend(links);
        self
    }

    /// Target users already read this cycle (a full read or lookups). An adopt of a user found
    /// here is linked with its attributes without a request; otherwise the executor reads the
    /// user (`GET /Users/{id}`), because `Op::Adopt` carries no attributes and a link must hold
    /// what the target has.
    pub fn with_known_users(mut self, users: impl IntoIterator<Item = TargetUser>) -> Self {
        self.known
            .extend(users.into_iter().map(|u| (u.id.clone(), u)));
        self
    }

    /// Every create in the plans this executor runs is for a userName that this cycle's own
    /// read of the target (a full read, or a `userName eq` lookup) did not find. Against a
    /// target that refuses a second user with a userName (Miro's 400 "not unique", resolved by
    /// lookup and adoption), the read stands for the lookup before the POST, which then costs
    /// no request of the GET budget. A create whose answer was lost still looks up first.
    pub fn with_creates_checked(mut self, checked: bool) -> Self {
        self.creates_checked = checked;
        self
    }

    pub fn client(&self) -> &ScimClient {
        &self.client
    }

    /// Team assignments go through this client (Miro's REST API).
    pub fn with_rest(mut self, rest: Option<crate::rest::RestClient>) -> Self {
        self.rest = rest;
        self
    }

    pub async fn execute(
        &self,
        plan: &Plan,
        links: Vec<Link>,
        ctx: &ExecContext,
        recorder: &mut dyn Recorder,
    ) -> ExecutionReport {
        let started = tokio::time::Instant::now();
        let tally = Tally::new(true);
        let mut run = Run {
            ctx,
            recorder,
            confirmed: &self.confirmed,
            profile: self.client.profile(),
            links: links
                .into_iter()
                .map(|l| (l.source_id.clone(), l))
                .collect(),
            report: ExecutionReport::default(),
            halt_reported: false,
        };
        let runnable = plan
            .ops
            .iter()
            .filter(|op| op.phase() != Phase::Report)
            .count();
        let mut processed = 0usize;
        let mut groups = crate::groups::GroupState {
            links: self
                .group_links
                .iter()
                .map(|l| (l.source_id.clone(), l.clone()))
                .collect(),
        };
        let group_run = crate::groups::GroupRun {
            client: &self.client,
            tally: &tally,
            integration: &ctx.integration,
            run_id: ctx.run_id,
            initiated_by: ctx.initiated_by,
            max_in_flight: ctx.max_in_flight,
        };
        let team_run = crate::teams::TeamRun {
            rest: self.rest.as_ref(),
            integration: &ctx.integration,
            run_id: ctx.run_id,
            initiated_by: ctx.initiated_by,
        };
        for phase in [
            Phase::Provision,
            Phase::Update,
            Phase::Membership,
            Phase::Deprovision,
            Phase::Delete,
            Phase::Report,
        ] {
            // Group ops of a phase run after its user ops: a membership needs its users; team
            // assignments after the group ops: an assignment needs its group.
            let (group_ops, ops): (Vec<usize>, Vec<usize>) = (0..plan.ops.len())
                .filter(|&i| plan.ops[i].phase() == phase)
                .partition(|&i| plan.ops[i].is_group());
            let (team_ops, group_ops): (Vec<usize>, Vec<usize>) =
                group_ops.into_iter().partition(|&i| plan.ops[i].is_team());
            if phase == Phase::Report {
                // Only group and team skips are reported by the executor (their events say
                // why).
                group_run
                    .run(
                        &plan.ops,
                        &group_ops,
                        &run.links,
                        &mut groups,
                        &mut run.report,
                        run.recorder,
                    )
                    .await;
                team_run
                    .run(&plan.ops, &team_ops, &groups, &mut run.report, run.recorder)
                    .await;
                continue;
            }
            let waves = if phase == Phase::Provision {
                provision_waves(plan, &ops)
            } else {
                vec![ops]
            };
            for wave in waves {
                if run.report.halted.is_some() {
                    break;
                }
                processed += self.run_wave(plan, &wave, &tally, &mut run).await;
            }
            if run.report.halted.is_none() && !group_ops.is_empty() {
                processed += group_run
                    .run(
                        &plan.ops,
                        &group_ops,
                        &run.links,
                        &mut groups,
                        &mut run.report,
                        run.recorder,
                    )
                    .await;
            }
            if run.report.halted.is_none() && !team_ops.is_empty() {
                processed += team_run
                    .run(&plan.ops, &team_ops, &groups, &mut run.report, run.recorder)
                    .await;
            }
        }
        let mut report = run.report;
        report.not_attempted += runnable.saturating_sub(processed);
        report.rate_limited = tally.rate_limited.load(Ordering::Relaxed);
        report.retries = tally.retries.load(Ordering::Relaxed);
        report.buckets = tally.buckets();
        report.elapsed = started.elapsed();
        report
    }

    /// Runs one wave's ops with at most `max_in_flight` at once; returns how many it handled.
    async fn run_wave(
        &self,
        plan: &Plan,
        wave: &[usize],
        tally: &Tally,
        run: &mut Run<'_>,
    ) -> usize {
        let max_in_flight = run.ctx.max_in_flight.max(1);
        let put = !self.client.capabilities().await.patch;
        let mut pending = wave.iter().copied();
        let mut in_flight = FuturesUnordered::new();
        let mut handled = 0;
        // Bounded: each turn launches at least one op or completes one, and there are
        // `wave.len()` of each.
        loop {
            while in_flight.len() < max_in_flight && run.report.halted.is_none() {
                let Some(index) = pending.next() else { break };
                let op = &plan.ops[index];
                let job = run.prepare(op);
                if op.is_write() {
                    run.recorder
                        .before_write(index, op, &planned_request(op, put));
                }
                in_flight.push(self.run_job(index, job, tally));
            }
            match in_flight.next().await {
                Some((index, job, done, trace)) => {
                    run.finish(index, &plan.ops[index], job, done, &trace);
                    handled += 1;
                }
                None => break,
            }
        }
        handled
    }

    async fn run_job(&self, index: usize, job: Job, tally: &Tally) -> (usize, Job, Done, Trace) {
        let mut trace = Trace::default();
        let client = &self.client;
        let caps = client.capabilities().await;
        let (retry, seed) = client.retry_seed();
        let setup = Setup {
            profile: client.profile(),
            writes: Writes {
                patch: caps.patch,
                etag: caps.etag,
            },
            // Only a create asks (the schema is copied out of its lock).
            case_exact: matches!(job, Job::Create { .. })
                && client.target_schema().user_name_case_exact() == Some(true),
            creates_checked: self.creates_checked,
            retry,
            seed,
        };
        let now = client.now();
        let machine = match &job {
            Job::Create {
                user_name, attrs, ..
            } => UserOp::create(setup, now, user_name, attrs),
            Job::Adopt { target_id } => {
                UserOp::adopt(setup, target_id, self.known.get(target_id).cloned())
            }
            Job::Patch {
                target_id, changes, ..
            } => UserOp::patch(setup, target_id, changes),
            Job::Delete { target_id } => UserOp::delete(setup, target_id),
            Job::Nothing { reason, .. } => {
                let done = Done::Skipped {
                    reason: reason.clone(),
                    unlink: false,
                };
                return (index, job, done, trace);
            }
        };
        let done = drive(client, Some(&self.case_search), machine, tally, &mut trace).await;
        (index, job, done, trace)
    }
}

/// The async shell around an op's decisions (`machine.rs`): sends what it asks for (each
/// attempt paced, counted and classified by the client), sleeps until it wants, searches the
/// case index (`search`: the run's creates'), and hands every answer back with the time, until
/// it is done.
pub(crate) async fn drive<M: Decide>(
    client: &ScimClient,
    search: Option<&CaseSearch>,
    mut machine: M,
    tally: &Tally,
    trace: &mut Trace,
) -> M::Outcome {
    // Bounded by the machine (its retry policy, attributes to drop, one re-read); this is a
    // second guard against a bug looping forever.
    for _ in 0..MAX_STEPS {
        let now = client.now();
        let input = match machine.poll(now) {
            Step::Done(done) => return done,
            Step::Wait(until) => {
                // A retry's back-off: long ones say so (the failure itself is in the event).
                crate::announce_wait(
                    until.saturating_sub(now),
                    format_args!("a request failed and will be retried"),
                );
                tokio::time::sleep(until.saturating_sub(now)).await;
                continue;
            }
            Step::Send(out) => {
                let if_match = match &out.if_match {
                    Some(IfMatch::VersionOf(id)) => client.version_of(id),
                    None => None,
                };
                Input::Answer(
                    client
                        .send_once_if_match(&out.request, if_match.as_deref(), tally, trace)
                        .await,
                )
            }
            Step::FindAnyCase {
                user_name,
                newer_than,
            } => {
                let user_name = user_name.to_owned();
                Input::Found(match search {
                    Some(search) => search.find(client, &user_name, newer_than, tally).await,
                    None => Err(ScimError::Decode {
                        message: "internal error: a search with no case index".into(),
                    }),
                })
            }
        };
        machine.handle(client.now(), input);
        for (id, version) in machine.take_learned() {
            client.store_version(id, version);
        }
        tally
            .retries
            .fetch_add(machine.take_retries(), Ordering::Relaxed);
    }
    M::Outcome::internal("the op took too many steps")
}

/// Every target user by folded userName, read (paged) when a create needs a case-insensitive
/// look-up the target's filter cannot give; shared by the run's creates.
#[derive(Debug, Default)]
pub(crate) struct CaseSearch {
    index: tokio::sync::Mutex<Option<CaseIndex>>,
}

impl CaseSearch {
    /// The target user whose userName equals `user_name` in any case, from one paged read of
    /// every user; read again when the last read is older than `newer_than` (the POST that
    /// was refused: its holder may be newer than the read).
    async fn find(
        &self,
        client: &ScimClient,
        user_name: &str,
        newer_than: Option<Duration>,
        tally: &Tally,
    ) -> Result<Option<TargetUser>, ScimError> {
        let mut index = self.index.lock().await;
        let stale = match (&*index, newer_than) {
            (None, _) => true,
            (Some(read), Some(at)) => read.read_at < at,
            (Some(_), None) => false,
        };
        if stale {
            let read_at = client.now();
            let users = client.list_users_with(tally).await?;
            *index = Some(CaseIndex {
                read_at,
                users: users
                    .into_iter()
                    .map(|u| (fold_user_name(&u.user_name).into_owned(), u))
                    .collect(),
            });
        }
        Ok(index
            .as_ref()
            .and_then(|read| read.users.get(fold_user_name(user_name).as_ref()))
            .cloned())
    }
}

fn dropped_json(dropped: &[Dropped]) -> Value {
    Value::Array(
        dropped
            .iter()
            .map(|d| json!({"path": d.path, "scimType": d.scim_type, "detail": d.detail}))
            .collect(),
    )
}

/// Provision ops in waves: a create whose attributes reference a user created or adopted in the
/// same phase waits for the wave after that user's. A reference cycle cannot be ordered; its
/// members go together and their references stay unresolved (left out, sent next cycle).
fn provision_waves(plan: &Plan, ops: &[usize]) -> Vec<Vec<usize>> {
    let in_phase: HashSet<&SourceId> = ops.iter().map(|&i| plan.ops[i].source_id()).collect();
    let deps = |i: usize| -> Vec<&SourceId> {
        match &plan.ops[i] {
            Op::Create {
                source_id, attrs, ..
            } => attrs
                .values()
                .filter_map(|v| match v {
                    AttrValue::Ref { user } if user != source_id && in_phase.contains(user) => {
                        Some(user)
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut done: HashSet<&SourceId> = HashSet::new();
    let mut remaining: Vec<usize> = ops.to_vec();
    let mut waves = Vec::new();
    // Bounded: every turn moves at least one op into a wave.
    while !remaining.is_empty() {
        let (mut ready, blocked): (Vec<usize>, Vec<usize>) = remaining
            .iter()
            .partition(|&&i| deps(i).iter().all(|d| done.contains(d)));
        if ready.is_empty() {
            ready = blocked;
            remaining = Vec::new();
        } else {
            remaining = blocked;
        }
        done.extend(ready.iter().map(|&i| plan.ops[i].source_id()));
        waves.push(ready);
    }
    waves
}

/// The driver's state: the working map of links and the report so far.
struct Run<'a> {
    ctx: &'a ExecContext,
    recorder: &'a mut dyn Recorder,
    confirmed: &'a HashMap<SourceId, Link>,
    profile: &'a scimsync_scim::Profile,
    links: HashMap<SourceId, Link>,
    report: ExecutionReport,
    halt_reported: bool,
}

impl Run<'_> {
    fn resolve(&self, value: &AttrValue) -> Option<AttrValue> {
        match value {
            AttrValue::Text(_) => Some(value.clone()),
            AttrValue::Ref { user } => self
                .links
                .get(user)
                .map(|l| AttrValue::Text(l.target_id.as_str().into())),
        }
    }

    fn prepare(&self, op: &Op) -> Job {
        match op {
            Op::Create {
                user_name, attrs, ..
            } => {
                let mut resolved = Attrs::new();
                let mut deferred = Vec::new();
                for (path, value) in attrs {
                    match self.resolve(value) {
                        Some(v) => {
                            resolved.insert(path.clone(), v);
                        }
                        None => deferred.push(path.to_string()),
                    }
                }
                Job::Create {
                    user_name: user_name.clone(),
                    attrs: resolved,
                    deferred,
                }
            }
            Op::Adopt { target_id, .. } => Job::Adopt {
                target_id: target_id.clone(),
            },
            Op::Update {
                source_id,
                target_id,
                changes,
                ..
            } => {
                let mut sendable = Vec::new();
                let mut deferred = Vec::new();
                // The target refuses to change what it freezes while the user is deactivated
                // (Miro: userName, userType, roles): never sent to a deactivated user this op
                // does not reactivate (`patch` reactivates first when it does).
                let reactivates = changes.iter().any(|c| {
                    c.path == paths::ACTIVE
                        && c.new.as_ref().and_then(AttrValue::as_text) == Some("true")
                });
                let frozen = !reactivates
                    && self
                        .links
                        .get(source_id)
                        .is_some_and(|l| &l.target_id == target_id && !l.active);
                for change in changes {
                    if frozen && self.profile.is_frozen(&change.path) {
                        deferred.push(change.path.clone());
                        continue;
                    }
                    // A target that derives emails ignores writes to them; recording them as
                    // pushed would be a lie.
                    if !self.profile.manages_emails() && change.path.starts_with("emails") {
                        deferred.push(change.path.clone());
                        continue;
                    }
                    let new = match &change.new {
                        None => None,
                        Some(v) => match self.resolve(v) {
                            Some(v) => Some(v),
                            None => {
                                deferred.push(change.path.clone());
                                continue;
                            }
                        },
                    };
                    sendable.push(Change {
                        path: change.path.clone(),
                        old: change.old.clone(),
                        new,
                    });
                }
                if sendable.is_empty() {
                    Job::Nothing {
                        reason: "nothing sendable yet (references to users not provisioned)".into(),
                        deferred,
                    }
                } else {
                    Job::Patch {
                        target_id: target_id.clone(),
                        changes: sendable,
                        deferred,
                    }
                }
            }
            Op::Deactivate { target_id, .. } => Job::Patch {
                target_id: target_id.clone(),
                changes: vec![Change {
                    path: paths::ACTIVE.into(),
                    old: Some(AttrValue::text("true")),
                    new: Some(AttrValue::text("false")),
                }],
                deferred: Vec::new(),
            },
            Op::Delete { target_id, .. } => Job::Delete {
                target_id: target_id.clone(),
            },
            Op::Skip { reason, .. } => Job::Nothing {
                reason: reason.to_string(),
                deferred: Vec::new(),
            },
            // Group ops run in `groups.rs`, never as user jobs.
            Op::GroupAdopt { .. }
            | Op::GroupCreate { .. }
            | Op::GroupRename { .. }
            | Op::GroupMembers { .. }
            | Op::GroupDelete { .. }
            | Op::GroupSkip { .. }
            | Op::TeamAssignment { .. } => Job::Nothing {
                reason: "a group op".into(),
                deferred: Vec::new(),
            },
        }
    }

    fn finish(&mut self, index: usize, op: &Op, job: Job, done: Done, trace: &Trace) {
        let source_id = op.source_id().clone();
        let mut event = self.event(op, trace);
        let deferred = match &job {
            Job::Create { deferred, .. }
            | Job::Patch { deferred, .. }
            | Job::Nothing { deferred, .. } => deferred.clone(),
            Job::Adopt { .. } | Job::Delete { .. } => Vec::new(),
        };
        let mut detail = serde_json::Map::new();
        if !deferred.is_empty() {
            detail.insert("deferred".into(), json!(deferred));
        }
        if let Op::Deactivate { reason, .. } | Op::Delete { reason, .. } = op {
            detail.insert("reason".into(), json!(reason.to_string()));
        }

        let outcome = match done {
            Done::Created { id, attrs, dropped } => {
                let Job::Create { user_name, .. } = job else {
                    return self.bug(index, op, "create result for another job");
                };
                self.note_dropped(&dropped, &mut detail);
                event.changes = create_changes(&user_name, &attrs);
                let link = fresh_link(&source_id, &id, &user_name, true, attrs);
                event.resource = event.resource.map(|r| EventResource {
                    target_id: Some(id),
                    ..r
                });
                self.link(link);
                OpOutcome::Succeeded
            }
            Done::AdoptedAligned { user, applied } => {
                detail.insert("note".into(), json!("adopted existing user"));
                detail.insert("action".into(), json!("adopt"));
                self.note_dropped(&applied.dropped, &mut detail);
                event.changes = applied
                    .changes
                    .iter()
                    .map(|c| {
                        (
                            c.path.clone(),
                            json!({"old": self.render(&c.old), "new": self.render(&c.new)}),
                        )
                    })
                    .collect();
                event.resource = event.resource.map(|r| EventResource {
                    target_id: Some(user.id.clone()),
                    ..r
                });
                let link = fresh_link(
                    &source_id,
                    &user.id,
                    &user.user_name,
                    user.active,
                    user.attrs,
                );
                self.link(link.with_changes(&applied.changes));
                OpOutcome::Adopted
            }
            Done::AdoptedExisting(user) => {
                detail.insert("note".into(), json!("adopted existing user"));
                detail.insert("action".into(), json!("adopt"));
                event.resource = event.resource.map(|r| EventResource {
                    target_id: Some(user.id.clone()),
                    ..r
                });
                self.link(fresh_link(
                    &source_id,
                    &user.id,
                    &user.user_name,
                    user.active,
                    user.attrs,
                ));
                OpOutcome::Adopted
            }
            Done::Linked(read) => {
                let target_id = op.target_id().cloned().unwrap_or_else(|| ScimId::new(""));
                let link = match read {
                    Ok(user) => fresh_link(
                        &source_id,
                        &target_id,
                        &user.user_name,
                        user.active,
                        user.attrs,
                    ),
                    Err(why) => {
                        detail.insert("note".into(), json!(format!("attributes not read: {why}")));
                        fresh_link(&source_id, &target_id, op.user_name(), true, Attrs::new())
                    }
                };
                self.link(link);
                OpOutcome::Succeeded
            }
            Done::Patched {
                changes,
                dropped,
                failed,
            } => {
                let Job::Patch { target_id, .. } = job else {
                    return self.bug(index, op, "patch result for another job");
                };
                self.note_dropped(&dropped, &mut detail);
                event.changes = changes
                    .iter()
                    .map(|c| {
                        (
                            c.path.clone(),
                            json!({"old": self.render(&c.old), "new": self.render(&c.new)}),
                        )
                    })
                    .collect();
                let confirmed = self.confirmed.get(&source_id).filter(|l| {
                    l.target_id == target_id && deferred.is_empty() && failed.is_none()
                });
                let link = match confirmed {
                    Some(confirmed) => confirmed.clone(),
                    None => self
                        .links
                        .get(&source_id)
                        .filter(|l| l.target_id == target_id)
                        .cloned()
                        .unwrap_or_else(|| {
                            fresh_link(&source_id, &target_id, op.user_name(), true, Attrs::new())
                        })
                        .with_changes(&changes),
                };
                self.link(link);
                match failed {
                    None => OpOutcome::Succeeded,
                    Some(message) => {
                        event.success = false;
                        event.error = Some(message.clone());
                        self.report.failures.push((source_id, message.clone()));
                        OpOutcome::Failed(message)
                    }
                }
            }
            Done::Refused(dropped) => {
                // Not this user's failure: the target does not take these attributes at all.
                // They are remembered (the recorder), and later plans leave them out.
                self.note_dropped(&dropped, &mut detail);
                let reason = format!(
                    "nothing sent applies: the target refuses {}",
                    describe_dropped(&dropped)
                );
                detail.insert("note".into(), json!(reason));
                OpOutcome::Skipped(reason)
            }
            Done::Deleted { already_gone } => {
                if already_gone {
                    detail.insert("note".into(), json!("already gone from the target"));
                }
                self.unlink(&source_id);
                OpOutcome::Succeeded
            }
            Done::Skipped { reason, unlink } => {
                if unlink {
                    self.unlink(&source_id);
                }
                event.success = false;
                event.error = Some(reason.clone());
                detail.insert("skipped".into(), json!(true));
                OpOutcome::Skipped(reason)
            }
            Done::Guest(reason) => {
                event.success = false;
                event.error = Some(reason.clone());
                // Remembered and never retried: a skip from now on, the same word everywhere.
                detail.insert("skipped".into(), json!(true));
                OpOutcome::TargetGuest(reason)
            }
            Done::Failed(message) => {
                event.success = false;
                event.error = Some(message.clone());
                self.report.failures.push((source_id, message.clone()));
                OpOutcome::Failed(message)
            }
            Done::Halted(message) => {
                // Every op whose request got the 401 has its own event: each request reached
                // the target. The first one's message says why the run stopped.
                if !self.halt_reported {
                    self.halt_reported = true;
                    self.report.halted = Some(message.clone());
                }
                event.success = false;
                event.error = Some(message.clone());
                self.report.failures.push((source_id, message.clone()));
                OpOutcome::Failed(message)
            }
            Done::NotSent if trace.attempts == 0 => return self.not_sent(index, op),
            Done::NotSent => {
                // Earlier attempts reached the target before the run halted: they are
                // accounted for here, and a write among them may have been applied.
                let message = format!(
                    "stopped after {} attempt{}: the run halted (401/403) before the next",
                    trace.attempts,
                    if trace.attempts == 1 { "" } else { "s" }
                );
                event.success = false;
                event.error = Some(message.clone());
                self.report.failures.push((source_id, message.clone()));
                OpOutcome::Failed(message)
            }
        };
        // A write whose outcome is still unknown at the end: the next cycle reads the user
        // before trusting its link (a confirmed outcome above settled any earlier doubt).
        if trace.unknown && matches!(outcome, OpOutcome::Failed(_)) {
            detail.insert(
                "uncertain".into(),
                json!("a write may have been applied; the next cycle reads this user first"),
            );
            self.recorder.uncertain(&Uncertain {
                kind: ResourceKind::User,
                source_id: op.source_id().clone(),
                target_id: op.target_id().cloned(),
                name: op.user_name().to_owned(),
                op: op.kind(),
                reason: event.error.clone().unwrap_or_default(),
            });
        }
        if !detail.is_empty() {
            event.detail = Value::Object(detail);
        }
        event.http = trace.http(!event.success);
        match &outcome {
            OpOutcome::Succeeded | OpOutcome::Adopted => self.report.succeeded += 1,
            OpOutcome::Skipped(_) | OpOutcome::TargetGuest(_) => self.report.skipped += 1,
            OpOutcome::NotSent => self.report.not_attempted += 1,
            OpOutcome::Failed(_) => self.report.failed += 1,
        }
        self.recorder.event(event);
        if op.is_write() {
            self.recorder.after_write(index, &outcome);
        }
    }

    /// Records refused attributes in the event's detail, and hands those the target refuses
    /// for everyone to the recorder.
    fn note_dropped(&mut self, dropped: &[Dropped], detail: &mut serde_json::Map<String, Value>) {
        if dropped.is_empty() {
            return;
        }
        detail.insert("dropped".into(), dropped_json(dropped));
        for d in dropped.iter().filter(|d| d.refuses_attribute()) {
            self.recorder.attribute_refused(d);
        }
    }

    fn not_sent(&mut self, index: usize, op: &Op) {
        self.report.not_attempted += 1;
        if op.is_write() {
            self.recorder.after_write(index, &OpOutcome::NotSent);
        }
    }

    /// A job and its result disagree: a bug here, reported as a failure of that op only.
    fn bug(&mut self, index: usize, op: &Op, what: &str) {
        let message = format!("internal error: {what}");
        tracing::error!(op = index, "{message}");
        self.report.failed += 1;
        self.report
            .failures
            .push((op.source_id().clone(), message.clone()));
        if op.is_write() {
            self.recorder
                .after_write(index, &OpOutcome::Failed(message));
        }
    }

    fn link(&mut self, link: Link) {
        self.links.insert(link.source_id.clone(), link.clone());
        self.recorder.link(link);
    }

    fn unlink(&mut self, source_id: &SourceId) {
        self.links.remove(source_id);
        self.recorder.unlink(source_id);
    }

    fn render(&self, value: &Option<AttrValue>) -> Value {
        match value {
            None => Value::Null,
            Some(AttrValue::Text(s)) => json!(s),
            Some(v @ AttrValue::Ref { .. }) => match self.resolve(v) {
                Some(AttrValue::Text(s)) => json!(s),
                _ => json!(v.to_string()),
            },
        }
    }

    fn event(&self, op: &Op, trace: &Trace) -> Event {
        let event_type = match op {
            Op::Create { .. } => EventType::UserCreateProvision,
            Op::Adopt { .. } | Op::Skip { .. } => EventType::UserLookupProvision,
            Op::Update { .. } => EventType::UserUpdateProvision,
            Op::Deactivate { .. } => EventType::UserDeprovision,
            Op::Delete { .. } => EventType::UserDeleteProvision,
            Op::GroupAdopt { .. } | Op::GroupCreate { .. } | Op::GroupSkip { .. } => {
                EventType::GroupCreateProvision
            }
            Op::GroupRename { .. } | Op::GroupMembers { .. } | Op::TeamAssignment { .. } => {
                EventType::GroupUpdateProvision
            }
            Op::GroupDelete { .. } => EventType::GroupDeleteProvision,
        };
        Event {
            ts: String::new(),
            event_type,
            success: true,
            run_id: Some(self.ctx.run_id),
            initiated_by: Some(self.ctx.initiated_by),
            integration: self.ctx.integration.clone(),
            resource: Some(EventResource {
                kind: "user".into(),
                source_id: Some(op.source_id().clone()),
                user_name: Some(op.user_name().to_owned()),
                display_name: None,
                target_id: op.target_id().cloned(),
            }),
            changes: BTreeMap::new(),
            http: trace.http(false),
            error: None,
            detail: Value::Null,
        }
    }
}

fn fresh_link(
    source_id: &SourceId,
    target_id: &ScimId,
    user_name: &str,
    active: bool,
    attrs: Attrs,
) -> Link {
    Link {
        source_id: source_id.clone(),
        target_id: target_id.clone(),
        user_name: user_name.to_owned(),
        active,
        hash: fingerprint(user_name, active, &attrs),
        attrs,
    }
}

fn create_changes(user_name: &str, attrs: &Attrs) -> BTreeMap<String, Value> {
    let mut changes = BTreeMap::new();
    changes.insert(
        paths::USER_NAME.to_owned(),
        json!({"old": null, "new": user_name}),
    );
    for (path, value) in attrs {
        if let Some(text) = value.as_text() {
            changes.insert(path.to_string(), json!({"old": null, "new": text}));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(id: &str, manager: Option<&str>) -> Op {
        let mut attrs = Attrs::new();
        if let Some(m) = manager {
            attrs.insert(
                paths::MANAGER.into(),
                AttrValue::Ref {
                    user: SourceId::new(m),
                },
            );
        }
        Op::Create {
            source_id: SourceId::new(id),
            user_name: format!("{id}@x.com"),
            attrs,
        }
    }

    fn position(waves: &[Vec<usize>], op: usize) -> usize {
        waves
            .iter()
            .position(|w| w.contains(&op))
            .unwrap_or(usize::MAX)
    }

    #[test]
    fn managers_are_created_in_an_earlier_wave() {
        // u3 → u2 → u1 (manager chain), u4 references someone outside the plan.
        let plan = Plan {
            ops: vec![
                create("u3", Some("u2")),
                create("u2", Some("u1")),
                create("u1", None),
                create("u4", Some("zz")),
            ],
        };
        let waves = provision_waves(&plan, &[0, 1, 2, 3]);
        assert!(position(&waves, 2) < position(&waves, 1));
        assert!(position(&waves, 1) < position(&waves, 0));
        assert_eq!(position(&waves, 3), 0);
        assert_eq!(waves.iter().map(Vec::len).sum::<usize>(), 4);
    }

    /// What the driver hands the recorder.
    #[derive(Default)]
    struct Seen {
        links: Vec<Link>,
        events: Vec<Event>,
        refused: Vec<String>,
        outcomes: Vec<OpOutcome>,
    }

    impl Recorder for Seen {
        fn before_write(&mut self, _: usize, _: &Op, _: &str) {}
        fn after_write(&mut self, _: usize, outcome: &OpOutcome) {
            self.outcomes.push(outcome.clone());
        }
        fn link(&mut self, link: Link) {
            self.links.push(link);
        }
        fn unlink(&mut self, _: &SourceId) {}
        fn event(&mut self, event: Event) {
            self.events.push(event);
        }
        fn attribute_refused(&mut self, dropped: &Dropped) {
            self.refused.push(dropped.path.clone());
        }
    }

    /// Runs the driver's bookkeeping for one op whose machine ended with `done`.
    fn finish(op: &Op, done: Done) -> (Seen, ExecutionReport) {
        let ctx = ExecContext::new(RunId(1), InitiatedBy::Manual, "test");
        let profile = scimsync_scim::Profile::generic();
        let confirmed = HashMap::new();
        let mut seen = Seen::default();
        let mut run = Run {
            ctx: &ctx,
            recorder: &mut seen,
            confirmed: &confirmed,
            profile: &profile,
            links: HashMap::new(),
            report: ExecutionReport::default(),
            halt_reported: false,
        };
        let job = run.prepare(op);
        let trace = Trace {
            attempts: 1,
            ..Trace::default()
        };
        run.finish(0, op, job, done, &trace);
        let report = run.report;
        (seen, report)
    }

    fn dropped(path: &str, scim_type: &str) -> Dropped {
        Dropped {
            path: path.into(),
            scim_type: Some(scim_type.into()),
            detail: format!("'{path}' refused"),
        }
    }

    fn update(changes: &[(&str, &str)]) -> Op {
        Op::Update {
            source_id: SourceId::new("s1"),
            target_id: ScimId::new("9"),
            user_name: "s1@x.com".into(),
            changes: changes
                .iter()
                .map(|(path, new)| Change {
                    path: (*path).into(),
                    old: None,
                    new: Some(AttrValue::text(*new)),
                })
                .collect(),
        }
    }

    /// An update that went without one refused attribute: succeeded, the link holds what
    /// went (not the refused one), the event says what was dropped, and an attribute the
    /// target refuses for everyone is handed to the recorder once.
    #[test]
    fn an_update_without_a_refused_attribute_links_what_went() {
        let op = update(&[(paths::DISPLAY_NAME, "Ann Lee"), (paths::DEPARTMENT, "Eng")]);
        let went = match &op {
            Op::Update { changes, .. } => vec![changes[0].clone()],
            _ => Vec::new(),
        };
        let (seen, report) = finish(
            &op,
            Done::Patched {
                changes: went,
                dropped: vec![dropped(paths::DEPARTMENT, "invalidPath")],
                failed: None,
            },
        );
        assert_eq!((report.succeeded, report.failed), (1, 0));
        assert_eq!(seen.outcomes, [OpOutcome::Succeeded]);
        let link = &seen.links[0];
        assert_eq!(
            link.attrs
                .get(paths::DISPLAY_NAME)
                .and_then(|v| v.as_text()),
            Some("Ann Lee")
        );
        assert_eq!(
            link.attrs.get(paths::DEPARTMENT),
            None,
            "not recorded as pushed"
        );
        assert!(seen.events[0].success);
        assert_eq!(
            seen.events[0].detail["dropped"][0]["path"],
            paths::DEPARTMENT
        );
        assert_eq!(seen.refused, [paths::DEPARTMENT]);
    }

    /// When every change was refused as an attribute the target does not take, the user is
    /// not failed (the target's limit, not the user's fault): skipped, the refusal recorded.
    #[test]
    fn a_write_of_only_refused_attributes_is_not_a_failure() {
        let op = update(&[(paths::DEPARTMENT, "Eng")]);
        let (seen, report) = finish(
            &op,
            Done::Refused(vec![dropped(paths::DEPARTMENT, "invalidPath")]),
        );
        assert_eq!((report.failed, report.skipped), (0, 1));
        assert!(matches!(&seen.outcomes[0], OpOutcome::Skipped(m) if m.contains("refuses")));
        assert_eq!(seen.refused, [paths::DEPARTMENT]);
        assert!(seen.links.is_empty());
    }

    /// A create that went without a refused value: the link holds what was sent, and a
    /// value refused for this user (invalidValue) is not remembered for everyone.
    #[test]
    fn a_create_without_a_refused_value_links_what_was_sent() {
        let op = Op::Create {
            source_id: SourceId::new("s1"),
            user_name: "a@x.com".into(),
            attrs: [
                (paths::TITLE.into(), AttrValue::text("x".repeat(300))),
                (paths::DISPLAY_NAME.into(), AttrValue::text("Ann")),
            ]
            .into_iter()
            .collect(),
        };
        let mut sent = Attrs::new();
        sent.insert(paths::DISPLAY_NAME.into(), AttrValue::text("Ann"));
        let (seen, report) = finish(
            &op,
            Done::Created {
                id: ScimId::new("42"),
                attrs: sent,
                dropped: vec![dropped(paths::TITLE, "invalidValue")],
            },
        );
        assert_eq!((report.succeeded, report.failed), (1, 0));
        let link = &seen.links[0];
        assert_eq!(link.target_id.as_str(), "42");
        assert!(!link.attrs.contains_key(paths::TITLE));
        assert!(link.attrs.contains_key(paths::DISPLAY_NAME));
        assert!(seen.refused.is_empty());
        assert_eq!(seen.events[0].detail["dropped"][0]["path"], paths::TITLE);
    }

    /// A create the target refused for a business rule (409) fails that user only.
    #[test]
    fn a_failed_create_fails_that_user_only() {
        let op = create("s1", None);
        let (seen, report) = finish(&op, Done::Failed("conflict (409): Full users limit".into()));
        assert_eq!((report.succeeded, report.failed), (0, 1));
        assert_eq!(report.failures[0].0.as_str(), "s1");
        assert!(seen.links.is_empty());
        assert!(!seen.events[0].success);
    }

    #[test]
    fn a_reference_cycle_still_runs_every_op_once() {
        let plan = Plan {
            ops: vec![
                create("a", Some("b")),
                create("b", Some("a")),
                create("c", None),
            ],
        };
        let waves = provision_waves(&plan, &[0, 1, 2]);
        let mut all: Vec<usize> = waves.concat();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2]);
    }
}
