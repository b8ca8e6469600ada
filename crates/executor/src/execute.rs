//! Plan execution: phases in order, ops of a phase concurrently (bounded), creates in waves so
//! a manager exists before the users who reference it, and every outcome reported through the
//! `Recorder` from this one driving task.

use crate::BucketReport;
use crate::client::{Expect, Request, ScimClient, Tally, Trace, user_path};
use crate::error::{ErrorClass, ScimError};
use crate::update::{Dropped, named_path};
use futures_util::stream::{FuturesUnordered, StreamExt};
use reqwest::Method;
use scimsync_model::{
    AttrValue, Attrs, Change, Event, EventResource, EventType, GroupLink, InitiatedBy, Link, Op,
    Phase, Plan, ResourceKind, RunId, ScimId, SourceId, TargetUser, Uncertain, fingerprint,
    fold_user_name, paths,
};
use scimsync_scim::{Bucket, user_resource};
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
    /// Every target user by folded userName, read (paged) when a create needs a
    /// case-insensitive look-up the target's filter cannot give; shared by the run's creates.
    case_index: Arc<tokio::sync::Mutex<Option<CaseIndex>>>,
    confirmed: HashMap<SourceId, Link>,
    /// The plans' creates are for userNames this cycle's reads did not find (see
    /// `with_creates_checked`).
    creates_checked: bool,
}

/// One paged read of the target's users, by folded userName.
#[derive(Debug)]
struct CaseIndex {
    read_at: tokio::time::Instant,
    users: HashMap<String, TargetUser>,
}

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

/// How a job ended, before the driver turns it into links, events and counts.
enum Done {
    /// Created as `id` with `attrs` (what was sent: the refused ones left out).
    Created {
        id: ScimId,
        attrs: Attrs,
        dropped: Vec<Dropped>,
    },
    /// A create that found the user (lookup, or after "not unique").
    AdoptedExisting(TargetUser),
    /// A create that found the user and brought its attributes in line.
    AdoptedAligned {
        user: TargetUser,
        applied: crate::update::Applied,
    },
    /// An adopt op; `None` when the user's attributes could not be read (with why).
    Linked(Result<TargetUser, String>),
    /// The changes the target took; the refused ones left out. `failed`: what failed after
    /// them (a reactivation went, the update after it did not): the link takes what went, the
    /// op fails, and the next cycle sends the rest.
    Patched {
        changes: Vec<Change>,
        dropped: Vec<Dropped>,
        failed: Option<String>,
    },
    /// Every change was refused as an attribute the target does not take: nothing sent
    /// applies, and the attributes are remembered as unsupported.
    Refused(Vec<Dropped>),

    Deleted {
        already_gone: bool,
    },
    Skipped {
        reason: String,
        unlink: bool,
    },
    Guest(String),
    Failed(String),
    Halted(String),
    NotSent,
}

impl Executor {
    pub fn new(client: ScimClient) -> Self {
        Executor {
            client,
            rest: None,
            known: HashMap::new(),
            group_links: Vec::new(),
            case_index: Arc::new(tokio::sync::Mutex::new(None)),
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
        let done = match &job {
            Job::Create {
                user_name, attrs, ..
            } => self.create(user_name, attrs, tally, &mut trace).await,
            Job::Adopt { target_id } => self.adopt(target_id, tally, &mut trace).await,
            Job::Patch {
                target_id, changes, ..
            } => self.patch(target_id, changes, tally, &mut trace).await,
            Job::Delete { target_id } => self.delete(target_id, tally, &mut trace).await,
            Job::Nothing { reason, .. } => Done::Skipped {
                reason: reason.clone(),
                unlink: false,
            },
        };
        (index, job, done, trace)
    }

    /// Lookup, then POST only if nobody has the userName. A POST whose answer was lost
    /// (5xx, dropped connection) may have been applied, so its retry starts with a lookup
    /// again; a 429 was not applied and is retried as is. A POST refused as not unique is
    /// resolved in this cycle: the filter again, then (a filter may compare case-sensitively)
    /// a paged read compared case-insensitively; the user found is adopted, never POSTed
    /// twice. A 400 naming one attribute drops it and posts the rest.
    async fn create(
        &self,
        user_name: &str,
        attrs: &Attrs,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Done {
        match self.create_or_find(user_name, attrs, tally, trace).await {
            Done::AdoptedExisting(user) => self.align(user, attrs, tally, trace).await,
            done => done,
        }
    }

    /// A user found instead of created is brought in line in the same cycle, as an adoption
    /// the planner saw would be (adopt, then update): the attributes this create would have
    /// sent that the target holds otherwise. A deactivated user is left to the next plan,
    /// which orders a reactivation with what the target freezes meanwhile.
    async fn align(
        &self,
        user: TargetUser,
        attrs: &Attrs,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Done {
        let create_only = &self.client.profile().create_only;
        let changes: Vec<Change> = attrs
            .iter()
            .filter(|(path, _)| !create_only.contains(path.as_str()))
            .filter(|(path, value)| user.attrs.get(path.as_str()) != Some(*value))
            .map(|(path, value)| Change {
                path: path.to_string(),
                old: user.attrs.get(path.as_str()).cloned(),
                new: Some(value.clone()),
            })
            .collect();
        if changes.is_empty() || !user.active {
            return Done::AdoptedExisting(user);
        }
        match self
            .client
            .update_user(&user.id, &changes, tally, trace)
            .await
        {
            Ok(applied) => Done::AdoptedAligned { user, applied },
            // Linked all the same: the next plan diffs it again.
            Err(e) if e.class() != ErrorClass::Halt => {
                tracing::warn!(user = %user.user_name, "adopted, but not brought in line yet: {e}");
                Done::AdoptedExisting(user)
            }
            Err(e) => done_from(e),
        }
    }

    async fn create_or_find(
        &self,
        user_name: &str,
        attrs: &Attrs,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Done {
        let client = &self.client;
        let mut attrs = attrs.clone();
        let mut dropped: Vec<Dropped> = Vec::new();
        // The target says userName is case-sensitive: its filter cannot find "Ann@x.com" for
        // "ann@x.com", and a POST would make a second account. Look case-insensitively first.
        let case_exact = client.target_schema().user_name_case_exact() == Some(true);
        let mut retry = client.retry_state();
        // A create this cycle's own read did not find goes straight to its POST where the
        // target refuses a second account of a userName: its "not unique" is resolved below.
        let mut look_first =
            !(self.creates_checked && client.profile().refuses_duplicate_user_names);
        // Bounded by the retry policy and the attributes that can be dropped; the range is a
        // second guard.
        for _ in 0..64 {
            if look_first {
                match client.find_user_with(user_name, tally, trace).await {
                    Ok(Some(user)) => return Done::AdoptedExisting(user),
                    Ok(None) => {}
                    Err(e) => return done_from(e),
                }
                if case_exact {
                    match self.find_any_case(user_name, None, tally).await {
                        Ok(Some(user)) => return Done::AdoptedExisting(user),
                        Ok(None) => {}
                        Err(e) => return done_from(e),
                    }
                }
            }
            let body = user_resource(user_name, true, &attrs, client.profile());
            let post = Request::with_json(Method::POST, "/Users", &body, Expect::User(None));
            let sent_at = tokio::time::Instant::now();
            let sent = client
                .send_once(&post, tally, trace)
                .await
                .and_then(|reply| created_id(&reply, user_name));
            match sent {
                Ok(id) => {
                    return Done::Created { id, attrs, dropped };
                }
                Err(e @ ScimError::NotUnique { .. }) => {
                    return match client.find_user_with(user_name, tally, trace).await {
                        Ok(Some(user)) => Done::AdoptedExisting(user),
                        Ok(None) => match self.find_any_case(user_name, Some(sent_at), tally).await
                        {
                            Ok(Some(user)) => Done::AdoptedExisting(user),
                            // Nobody the target shows holds it: as with a guest (404), the
                            // userName is remembered and not tried again until a full read
                            // finds its holder, rather than refused anew every cycle.
                            Ok(None) => Done::Guest(format!(
                                "{e}; yet no user the target shows has this userName in any case \
                                 (held by a guest, a hidden or another org's user?); not retried \
                                 until a full read finds it"
                            )),
                            Err(e) => done_from(e),
                        },
                        Err(e) => done_from(e),
                    };
                }
                Err(ScimError::NotFound { detail }) => {
                    return Done::Guest(format!(
                        "the target answered 404 to the create (a guest or external user holds this email){}",
                        detail.map(|d| format!(": {d}")).unwrap_or_default()
                    ));
                }
                Err(e @ ScimError::BadRequest { .. })
                    if e.detail().is_some()
                        && matches!(&e, ScimError::BadRequest { scim_type: Some(t), .. }
                            if !t.eq_ignore_ascii_case("noTarget") && !t.eq_ignore_ascii_case("uniqueness")) =>
                {
                    // One attribute refused: post the rest (a 400 created nothing).
                    let named = named_path(&e, attrs.keys().map(|k| k.as_str())).map(str::to_owned);
                    let Some(path) = named else {
                        return done_from(e);
                    };
                    tracing::info!(user = user_name, path = %path, "the target refused one attribute of a create; posting the rest");
                    attrs.remove(path.as_str());
                    dropped.push(Dropped {
                        path,
                        scim_type: match &e {
                            ScimError::BadRequest { scim_type, .. } => scim_type.clone(),
                            _ => None,
                        },
                        detail: e.detail().unwrap_or_default().to_owned(),
                    });
                    look_first = false;
                }
                Err(e) if e.class() == ErrorClass::Retryable => match retry.after(&e) {
                    Some(delay) => {
                        tally.retries.fetch_add(1, Ordering::Relaxed);
                        look_first = !matches!(e, ScimError::RateLimited { .. });
                        crate::announce_wait(
                            delay,
                            format_args!("create of {user_name}: {e}; retrying"),
                        );
                        tokio::time::sleep(delay).await;
                    }
                    None => return Done::Failed(e.to_string()),
                },
                Err(e) => return done_from(e),
            }
        }
        Done::Failed("gave up after too many attempts".into())
    }

    /// The target user whose userName equals `user_name` in any case, from one paged read of
    /// every user shared by the run's creates; read again when the last read is older than
    /// `newer_than` (the POST that was refused: its holder may be newer than the read).
    async fn find_any_case(
        &self,
        user_name: &str,
        newer_than: Option<tokio::time::Instant>,
        tally: &Tally,
    ) -> Result<Option<TargetUser>, ScimError> {
        let mut index = self.case_index.lock().await;
        let stale = match (&*index, newer_than) {
            (None, _) => true,
            (Some(read), Some(at)) => read.read_at < at,
            (Some(_), None) => false,
        };
        if stale {
            let read_at = tokio::time::Instant::now();
            let users = self.client.list_users_with(tally).await?;
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

    async fn adopt(&self, target_id: &ScimId, tally: &Tally, trace: &mut Trace) -> Done {
        if let Some(user) = self.known.get(target_id) {
            return Done::Linked(Ok(user.clone()));
        }
        match self.client.get_user_with(target_id, tally, trace).await {
            Ok(user) => Done::Linked(Ok(user)),
            Err(ScimError::NotFound { detail }) => Done::Skipped {
                reason: format!(
                    "target user {target_id} not found (gone, or a guest){}",
                    detail.map(|d| format!(": {d}")).unwrap_or_default()
                ),
                unlink: false,
            },
            Err(e) if e.class() == ErrorClass::Halt => done_from(e),
            // The match by userName stands; the next full read fills in the attributes.
            Err(e) => Done::Linked(Err(e.to_string())),
        }
    }

    async fn patch(
        &self,
        target_id: &ScimId,
        changes: &[Change],
        tally: &Tally,
        trace: &mut Trace,
    ) -> Done {
        // A reactivation with what the target freezes while a user is deactivated goes as
        // two writes where the profile says so: the reactivation, then the rest.
        let reactivation = changes.iter().position(|c| {
            c.path == paths::ACTIVE && c.new.as_ref().and_then(AttrValue::as_text) == Some("true")
        });
        let profile = self.client.profile();
        if let Some(at) = reactivation
            && profile.reactivate_apart
            && changes.iter().any(|c| profile.is_frozen(&c.path))
        {
            let first = [changes[at].clone()];
            let rest: Vec<Change> = changes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != at)
                .map(|(_, c)| c.clone())
                .collect();
            return match self
                .client
                .update_user(target_id, &first, tally, trace)
                .await
            {
                Ok(reactivated) if !reactivated.changes.is_empty() => {
                    match Box::pin(self.patch(target_id, &rest, tally, trace)).await {
                        Done::Patched {
                            mut changes,
                            dropped,
                            failed,
                        } => {
                            changes.splice(0..0, reactivated.changes);
                            Done::Patched {
                                changes,
                                dropped,
                                failed,
                            }
                        }
                        Done::Refused(dropped) => Done::Patched {
                            changes: reactivated.changes,
                            dropped,
                            failed: None,
                        },
                        Done::Failed(why) => Done::Patched {
                            changes: reactivated.changes,
                            dropped: Vec::new(),
                            failed: Some(format!(
                                "reactivated, but the update after it failed: {why}"
                            )),
                        },
                        other => other,
                    }
                }
                Ok(refused) => Done::Failed(format!(
                    "the target refused the reactivation: {}",
                    describe_dropped(&refused.dropped)
                )),
                Err(ScimError::NotFound { detail }) => gone(target_id, detail),
                Err(e) => done_from(e),
            };
        }
        // PATCH, or GET + PUT where the target has no PATCH; If-Match and 412 handled there.
        match self
            .client
            .update_user(target_id, changes, tally, trace)
            .await
        {
            Ok(applied) if applied.changes.is_empty() => {
                if applied.dropped.iter().all(Dropped::refuses_attribute) {
                    Done::Refused(applied.dropped)
                } else {
                    Done::Failed(format!(
                        "the target refused every change: {}",
                        describe_dropped(&applied.dropped)
                    ))
                }
            }
            Ok(applied) => Done::Patched {
                changes: applied.changes,
                dropped: applied.dropped,
                failed: None,
            },
            Err(ScimError::NotFound { detail }) => gone(target_id, detail),
            Err(e) => done_from(e),
        }
    }

    async fn delete(&self, target_id: &ScimId, tally: &Tally, trace: &mut Trace) -> Done {
        let req = Request::delete(user_path(target_id));
        match self.client.send(&req, tally, trace).await {
            Ok(_) => Done::Deleted {
                already_gone: false,
            },
            Err(ScimError::NotFound { .. }) => Done::Deleted { already_gone: true },
            Err(e) => done_from(e),
        }
    }
}

/// A write to a user the target no longer has: skipped, and the link dropped.
fn gone(target_id: &ScimId, detail: Option<String>) -> Done {
    Done::Skipped {
        reason: format!(
            "target user {target_id} not found (deleted in the target, or a guest){}",
            detail.map(|d| format!(": {d}")).unwrap_or_default()
        ),
        unlink: true,
    }
}

/// `path (scimType): detail; …`, for an event's error.
fn describe_dropped(dropped: &[Dropped]) -> String {
    dropped
        .iter()
        .map(|d| {
            format!(
                "{} ({}): {}",
                d.path,
                d.scim_type.as_deref().unwrap_or("400"),
                d.detail
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn dropped_json(dropped: &[Dropped]) -> Value {
    Value::Array(
        dropped
            .iter()
            .map(|d| json!({"path": d.path, "scimType": d.scim_type, "detail": d.detail}))
            .collect(),
    )
}

/// The id of the user a POST created: the answer is a User resource (checked), and it must be
/// the user sent, or the answer confirms nothing (a cached page, another user's resource).
fn created_id(reply: &crate::client::Reply, user_name: &str) -> Result<ScimId, ScimError> {
    let resource = reply.json.as_ref();
    let field = |key: &str| resource.and_then(|r| r.get(key));
    let id = match field("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let same = field("userName")
        .and_then(Value::as_str)
        .is_some_and(|name| fold_user_name(name) == fold_user_name(user_name));
    if id.is_empty() || !same {
        return Err(ScimError::Unconfirmed {
            status: reply.status,
            what: "with a resource for another userName".into(),
        });
    }
    Ok(ScimId::new(id))
}

fn done_from(e: ScimError) -> Done {
    match e {
        ScimError::Halted => Done::NotSent,
        e if e.class() == ErrorClass::Halt => Done::Halted(e.to_string()),
        e => Done::Failed(e.to_string()),
    }
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
