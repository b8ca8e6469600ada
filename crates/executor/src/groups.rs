//! Groups: reading them (a paged list of ids and names, then one GET per group whose members are
//! needed) and executing group ops. Membership PATCHes are split per `choose_sizes`, so the
//! whole membership phase finishes as soon as Miro's two group-PATCH buckets allow; every PATCH
//! gets its own `group_update_provision` event naming the members it added and removed.

use crate::client::{Expect, Request, ScimClient, Tally, Trace};
use crate::error::{ErrorClass, ScimError};
use crate::execute::{ExecutionReport, OpOutcome, Recorder};
use futures_util::stream::{FuturesUnordered, StreamExt};
use reqwest::Method;
use scimsync_model::{
    Event, EventResource, EventType, GroupLink, Link, Op, ResourceKind, ScimId, SourceId,
    TargetGroup, Uncertain,
};
use scimsync_scim::{
    ListResponse, MemberChangeShape, MemberPatch, choose_sizes, filter_eq, member_patches,
    rename_body, target_group,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

pub(crate) fn group_path(id: &ScimId) -> String {
    format!("/Groups/{}", crate::client::path_segment(id))
}

pub(crate) fn decode_group(value: &Value) -> Result<TargetGroup, ScimError> {
    target_group(value).map_err(|e| ScimError::Decode {
        message: e.to_string(),
    })
}

impl ScimClient {
    /// Every group's id and displayName, page by page with `attributes=id,displayName` (the
    /// list bucket is 5 per window on Miro; members would make pages huge).
    pub async fn list_groups(&self) -> Result<Vec<TargetGroup>, ScimError> {
        let tally = Tally::new(true);
        let mut trace = Trace::default();
        let page_size = self.profile().page_size.max(1);
        let mut groups: Vec<TargetGroup> = Vec::new();
        let mut start = 1usize;
        let mut max_pages = 1usize;
        let mut pages = 0usize;
        while pages < max_pages {
            let mut req = Request::get("/Groups", Expect::List);
            req.query = vec![
                ("attributes", "id,displayName".into()),
                ("startIndex", start.to_string()),
                ("count", page_size.to_string()),
            ];
            let reply = self.send(&req, &tally, &mut trace).await?;
            let list: ListResponse<Value> = reply.decode()?;
            if pages == 0 {
                max_pages = list.total_results.saturating_add(2);
            }
            pages += 1;
            if list.resources.is_empty() {
                break;
            }
            start += list.resources.len();
            for resource in &list.resources {
                let mut group = decode_group(resource)?;
                // A listing is names only, whatever the SP sent.
                group.members = None;
                if !groups.iter().any(|g| g.id == group.id) {
                    groups.push(group);
                }
            }
            if start > list.total_results {
                break;
            }
        }
        Ok(groups)
    }

    /// One group with its members; `None` when the target no longer has it.
    pub async fn read_group(&self, id: &ScimId) -> Result<Option<TargetGroup>, ScimError> {
        let tally = Tally::new(true);
        let mut trace = Trace::default();
        match self
            .send(
                &Request::get(group_path(id), Expect::Group(Some(id.clone()))),
                &tally,
                &mut trace,
            )
            .await
        {
            Ok(reply) => {
                let mut group = decode_group(&reply.decode::<Value>()?)?;
                group.members.get_or_insert_with(Vec::new);
                Ok(Some(group))
            }
            Err(ScimError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The target ids of members to add: their own, or (created this cycle) their link's; the
/// userNames of those not provisioned yet are deferred to the next cycle. So are those whose
/// user is deactivated as this run found it (a reactivation that failed): adding a
/// deactivated user to a Miro team or user group reactivates them behind the plan's back.
fn resolve_members(
    members: &[scimsync_model::Member],
    user_links: &HashMap<SourceId, Link>,
) -> (Vec<ScimId>, Vec<String>) {
    let mut deferred = Vec::new();
    let ids = members
        .iter()
        .filter_map(|m| {
            let link = user_links.get(&m.source_id);
            let id = m
                .target_id
                .clone()
                .or_else(|| link.map(|l| l.target_id.clone()));
            let inactive = link.is_some_and(|l| Some(&l.target_id) == id.as_ref() && !l.active);
            if id.is_none() || inactive {
                deferred.push(m.user_name.clone());
                return None;
            }
            id
        })
        .collect();
    (ids, deferred)
}

impl ScimClient {
    /// The id of the group whose displayName is exactly `display_name`, if the target shows
    /// one (`filter=displayName eq`).
    pub async fn find_group(&self, display_name: &str) -> Result<Option<ScimId>, ScimError> {
        let tally = Tally::new(true);
        let mut trace = Trace::default();
        find_group_with(self, display_name, &tally, &mut trace).await
    }
}

async fn find_group_with(
    client: &ScimClient,
    display_name: &str,
    tally: &Tally,
    trace: &mut Trace,
) -> Result<Option<ScimId>, ScimError> {
    let reply = client
        .send(&find_group_request(display_name), tally, trace)
        .await?;
    group_named(reply, display_name)
}

/// `GET /Groups?filter=displayName eq "…"`, ids and names only.
pub(crate) fn find_group_request(display_name: &str) -> Request {
    let mut req = Request::get("/Groups", Expect::List);
    req.query = vec![
        ("filter", filter_eq("displayName", display_name)),
        ("attributes", "id,displayName".into()),
    ];
    req
}

/// The id of the group of a lookup's answer whose displayName is exactly `display_name`.
pub(crate) fn group_named(
    reply: crate::client::Reply,
    display_name: &str,
) -> Result<Option<ScimId>, ScimError> {
    let list: ListResponse<Value> = reply.decode()?;
    Ok(list
        .resources
        .iter()
        .filter_map(|r| decode_group(r).ok())
        .find(|g| g.display_name == display_name)
        .map(|g| g.id))
}

/// An event of a run about group op `op` (of `event_type`, on the target group `target_id`).
pub(crate) fn group_event(
    integration: &str,
    run_id: scimsync_model::RunId,
    initiated_by: scimsync_model::InitiatedBy,
    (op, event_type, target_id): (&Op, EventType, Option<ScimId>),
    trace: &Trace,
) -> Event {
    Event {
        ts: String::new(),
        event_type,
        success: true,
        run_id: Some(run_id),
        initiated_by: Some(initiated_by),
        integration: integration.to_owned(),
        resource: Some(EventResource {
            kind: "group".into(),
            source_id: Some(op.source_id().clone()),
            user_name: None,
            display_name: Some(op.user_name().to_owned()),
            target_id,
        }),
        changes: BTreeMap::new(),
        http: trace.http(false),
        error: None,
        detail: Value::Null,
    }
}

/// One request of a group op and how it went.
struct Step {
    event_type: EventType,
    trace: Trace,
    result: Result<(), ScimError>,
    patch: Option<MemberPatch>,
    created: Option<ScimId>,
}

/// The group side of the driver's state.
pub(crate) struct GroupState {
    pub(crate) links: HashMap<SourceId, GroupLink>,
}

/// What one group op needs, prepared from the working maps.
enum GroupJob {
    Create {
        display_name: String,
        /// Members sent in the POST (resolved); those not yet target users are `deferred`.
        members: Vec<ScimId>,
        deferred: Vec<String>,
    },
    Rename {
        target_id: ScimId,
        display_name: String,
    },
    /// Membership PATCHes; the first one also renames the group when the op says so.
    Members {
        target_id: ScimId,
        patches: Vec<MemberPatch>,
        deferred: Vec<String>,
    },
    Delete {
        target_id: ScimId,
    },
    Nothing {
        reason: String,
    },
}

pub(crate) struct GroupRun<'a> {
    pub(crate) client: &'a ScimClient,
    pub(crate) tally: &'a Tally,
    pub(crate) integration: &'a str,
    pub(crate) run_id: scimsync_model::RunId,
    pub(crate) initiated_by: scimsync_model::InitiatedBy,
    pub(crate) max_in_flight: usize,
}

impl GroupRun<'_> {
    /// Runs the group ops `indices` of one phase; returns how many it handled.
    pub(crate) async fn run(
        &self,
        ops: &[Op],
        indices: &[usize],
        user_links: &HashMap<SourceId, Link>,
        state: &mut GroupState,
        report: &mut ExecutionReport,
        recorder: &mut dyn Recorder,
    ) -> usize {
        // Membership splits are chosen for the whole phase at once.
        let mut prepared: Vec<(usize, GroupJob)> = Vec::new();
        let mut shapes = Vec::new();
        let mut shaped = Vec::new();
        for &i in indices {
            let op = &ops[i];
            if let Op::GroupMembers {
                source_id,
                target_id,
                display_name,
                add,
                remove,
                renamed_from,
            } = op
            {
                let target = target_id
                    .clone()
                    .or_else(|| state.links.get(source_id).map(|l| l.target_id.clone()));
                let Some(target) = target else {
                    prepared.push((
                        i,
                        GroupJob::Nothing {
                            reason: "the group was not created".into(),
                        },
                    ));
                    continue;
                };
                let (adds, deferred) = resolve_members(add, user_links);
                let removes: Vec<ScimId> =
                    remove.iter().filter_map(|m| m.target_id.clone()).collect();
                shapes.push(MemberChangeShape {
                    add: adds,
                    remove: removes,
                    rename: renamed_from.as_ref().map(|_| display_name.clone()),
                });
                shaped.push((i, target, deferred));
                continue;
            }
            let job = match op {
                Op::GroupCreate {
                    display_name,
                    members,
                    ..
                } => {
                    let (members, deferred) = resolve_members(members, user_links);
                    GroupJob::Create {
                        display_name: display_name.clone(),
                        members,
                        deferred,
                    }
                }
                Op::GroupRename {
                    target_id,
                    display_name,
                    ..
                } => GroupJob::Rename {
                    target_id: target_id.clone(),
                    display_name: display_name.clone(),
                },
                Op::GroupDelete { target_id, .. } => GroupJob::Delete {
                    target_id: target_id.clone(),
                },
                Op::GroupSkip { reason, .. } => GroupJob::Nothing {
                    reason: reason.to_string(),
                },
                _ => GroupJob::Nothing {
                    reason: String::new(),
                },
            };
            prepared.push((i, job));
        }
        let (sizes, _) = choose_sizes(&shapes, self.client.profile());
        for (((i, target_id, deferred), shape), size) in shaped.into_iter().zip(shapes).zip(sizes) {
            let patches = member_patches(
                &shape.add,
                &shape.remove,
                shape.rename.as_deref(),
                self.client.profile(),
                size,
            );
            prepared.push((
                i,
                GroupJob::Members {
                    target_id,
                    patches,
                    deferred,
                },
            ));
        }
        prepared.sort_by_key(|(i, _)| *i);

        let mut handled = 0;
        let mut pending = prepared.into_iter();
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < self.max_in_flight.max(1) && report.halted.is_none() {
                let Some((index, job)) = pending.next() else {
                    break;
                };
                let op = &ops[index];
                if let Op::GroupAdopt { .. } | Op::GroupSkip { .. } = op {
                    // No request: settle at once.
                    self.settle(index, op, &job, Vec::new(), state, report, recorder);
                    handled += 1;
                    continue;
                }
                if op.is_write() {
                    recorder.before_write(index, op, &crate::execute::planned_request(op, false));
                }
                in_flight.push(async move {
                    let steps = self.send_job(&job).await;
                    (index, job, steps)
                });
            }
            match in_flight.next().await {
                Some((index, job, steps)) => {
                    self.settle(index, &ops[index], &job, steps, state, report, recorder);
                    handled += 1;
                }
                None => break,
            }
        }
        handled
    }

    async fn send_job(&self, job: &GroupJob) -> Vec<Step> {
        let client = self.client;
        match job {
            GroupJob::Create {
                display_name,
                members,
                ..
            } => {
                let mut trace = Trace::default();
                let (result, created) =
                    match self.create_group(display_name, members, &mut trace).await {
                        Ok(id) => (Ok(()), Some(id)),
                        Err(e) => (Err(e), None),
                    };
                vec![Step {
                    event_type: EventType::GroupCreateProvision,
                    trace,
                    result,
                    patch: None,
                    created,
                }]
            }
            GroupJob::Rename {
                target_id,
                display_name,
            } => {
                let mut trace = Trace::default();
                let body = rename_body(display_name, client.profile());
                let req = Request::with_json(
                    Method::PATCH,
                    group_path(target_id),
                    &body,
                    Expect::Group(Some(target_id.clone())),
                );
                let result = client.send(&req, self.tally, &mut trace).await.map(|_| ());
                vec![Step {
                    event_type: EventType::GroupUpdateProvision,
                    trace,
                    result,
                    patch: None,
                    created: None,
                }]
            }
            GroupJob::Delete { target_id } => {
                let mut trace = Trace::default();
                let req = Request::delete(group_path(target_id));
                let result = match client.send(&req, self.tally, &mut trace).await {
                    Ok(_) | Err(ScimError::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                };
                vec![Step {
                    event_type: EventType::GroupDeleteProvision,
                    trace,
                    result,
                    patch: None,
                    created: None,
                }]
            }
            GroupJob::Members {
                target_id, patches, ..
            } => {
                let mut steps = Vec::with_capacity(patches.len());
                for patch in patches {
                    let mut trace = Trace::default();
                    let req = Request::with_json(
                        Method::PATCH,
                        group_path(target_id),
                        &patch.body,
                        Expect::Group(Some(target_id.clone())),
                    );
                    let result = client.send(&req, self.tally, &mut trace).await.map(|_| ());
                    let stop = result.is_err();
                    steps.push(Step {
                        event_type: EventType::GroupUpdateProvision,
                        trace,
                        result,
                        patch: Some(patch.clone()),
                        created: None,
                    });
                    // The rest would meet the same answer; the next cycle retries the diff.
                    if stop {
                        break;
                    }
                }
                steps
            }
            GroupJob::Nothing { .. } => Vec::new(),
        }
    }

    /// The group's POST, decided by `machine::GroupCreate`: never a second group of the
    /// same name.
    async fn create_group(
        &self,
        display_name: &str,
        members: &[ScimId],
        trace: &mut Trace,
    ) -> Result<ScimId, ScimError> {
        let client = self.client;
        let caps = client.capabilities().await;
        let (retry, seed) = client.retry_seed();
        let setup = crate::machine::Setup {
            profile: client.profile(),
            writes: crate::update::Writes {
                patch: caps.patch,
                etag: caps.etag,
            },
            case_exact: false,
            creates_checked: false,
            retry,
            seed,
        };
        let machine = crate::machine::GroupCreate::new(setup, client.now(), display_name, members);
        crate::execute::drive(client, None, machine, self.tally, trace).await
    }

    fn event(
        &self,
        op: &Op,
        event_type: EventType,
        target_id: Option<ScimId>,
        trace: &Trace,
    ) -> Event {
        group_event(
            self.integration,
            self.run_id,
            self.initiated_by,
            (op, event_type, target_id),
            trace,
        )
    }

    /// Turns a group op's steps into events, group links and counts.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        index: usize,
        op: &Op,
        job: &GroupJob,
        steps: Vec<Step>,
        state: &mut GroupState,
        report: &mut ExecutionReport,
        recorder: &mut dyn Recorder,
    ) {
        let source_id = op.source_id().clone();
        let mut failure: Option<String> = None;
        let mut halted = false;
        match (op, job) {
            (
                Op::GroupAdopt {
                    target_id,
                    display_name,
                    ..
                },
                _,
            ) => {
                let members = state
                    .links
                    .get(&source_id)
                    .filter(|l| &l.target_id == target_id)
                    .map(|l| l.members.clone())
                    .unwrap_or_default();
                let link = GroupLink {
                    source_id: source_id.clone(),
                    target_id: target_id.clone(),
                    display_name: display_name.clone(),
                    members,
                };
                state.links.insert(source_id.clone(), link.clone());
                recorder.group_link(link);
                let mut event = self.event(
                    op,
                    EventType::GroupCreateProvision,
                    Some(target_id.clone()),
                    &Trace::default(),
                );
                event.detail = json!({
                    "note": "linked to the existing target group with this name",
                    "action": "adopt",
                });
                recorder.event(event);
                report.succeeded += 1;
                return;
            }
            (
                Op::GroupSkip {
                    reason, target_id, ..
                },
                _,
            ) => {
                let event_type = if reason.is_delete() {
                    EventType::GroupDeleteProvision
                } else {
                    EventType::GroupCreateProvision
                };
                let mut event = self.event(op, event_type, target_id.clone(), &Trace::default());
                event.success = false;
                event.error = Some(reason.to_string());
                event.detail = json!({"skipped": true, "reason": reason});
                recorder.event(event);
                if reason.is_delete() {
                    state.links.remove(&source_id);
                    recorder.group_unlink(&source_id);
                }
                report.skipped += 1;
                return;
            }
            (_, GroupJob::Nothing { reason }) => {
                let mut event = self.event(
                    op,
                    EventType::GroupUpdateProvision,
                    op.target_id().cloned(),
                    &Trace::default(),
                );
                event.success = false;
                event.error = Some(reason.clone());
                event.detail = json!({"skipped": true, "reason": reason});
                recorder.event(event);
                report.skipped += 1;
                if op.is_write() {
                    recorder.after_write(index, &OpOutcome::Skipped(reason.clone()));
                }
                return;
            }
            _ => {}
        }
        let deferred = match job {
            GroupJob::Members { deferred, .. } | GroupJob::Create { deferred, .. } => {
                deferred.clone()
            }
            _ => Vec::new(),
        };
        let unknown = steps.iter().any(|s| s.trace.unknown);
        for step in steps {
            let target_id = step
                .created
                .clone()
                .or_else(|| op.target_id().cloned())
                .or_else(|| state.links.get(&source_id).map(|l| l.target_id.clone()));
            let mut event = self.event(op, step.event_type, target_id.clone(), &step.trace);
            if let Some(patch) = &step.patch {
                event.detail = json!({
                    "added": patch.added,
                    "removed": patch.removed,
                    "bytes": patch.bytes,
                    "bucket": patch.bucket(),
                });
                if let (Some(new), Op::GroupMembers { renamed_from, .. }) = (&patch.renamed, op) {
                    event.detail["renamed"] = json!({"old": renamed_from, "new": new});
                }
                if !deferred.is_empty() {
                    event.detail["deferred"] = json!(deferred);
                }
            }
            if let GroupJob::Create { members, .. } = job {
                event.detail = json!({"added": members});
                if !deferred.is_empty() {
                    event.detail["deferred"] = json!(deferred);
                }
            }
            match &step.result {
                Ok(()) => {
                    self.apply(op, job, &step, target_id, state, recorder);
                }
                Err(e) => {
                    if e.class() == ErrorClass::Halt || matches!(e, ScimError::Halted) {
                        halted = true;
                    }
                    event.http = step.trace.http(true);
                    let message = match e {
                        // Earlier attempts of this request reached the target.
                        ScimError::Halted if step.trace.attempts > 0 => format!(
                            "stopped after {} attempt{}: the run halted (401/403) before the next",
                            step.trace.attempts,
                            if step.trace.attempts == 1 { "" } else { "s" }
                        ),
                        e => e.to_string(),
                    };
                    event.success = false;
                    event.error = Some(message.clone());
                    failure = Some(message);
                }
            }
            // A request never sent (the run had halted) has nothing to account for.
            if step.trace.attempts > 0 {
                recorder.event(event);
            }
        }
        if unknown && failure.is_some() {
            recorder.uncertain(&Uncertain {
                kind: ResourceKind::Group,
                source_id: source_id.clone(),
                target_id: op
                    .target_id()
                    .cloned()
                    .or_else(|| state.links.get(&source_id).map(|l| l.target_id.clone())),
                name: op.user_name().to_owned(),
                op: op.kind(),
                reason: failure.clone().unwrap_or_default(),
            });
        }
        let outcome = match failure {
            None => {
                report.succeeded += 1;
                OpOutcome::Succeeded
            }
            Some(message) => {
                if halted && report.halted.is_none() {
                    report.halted = Some(message.clone());
                }
                report.failed += 1;
                report.failures.push((source_id, message.clone()));
                OpOutcome::Failed(message)
            }
        };
        if op.is_write() {
            recorder.after_write(index, &outcome);
        }
    }

    fn apply(
        &self,
        op: &Op,
        job: &GroupJob,
        step: &Step,
        target_id: Option<ScimId>,
        state: &mut GroupState,
        recorder: &mut dyn Recorder,
    ) {
        let source_id = op.source_id();
        match op {
            Op::GroupDelete { .. } => {
                state.links.remove(source_id);
                recorder.group_unlink(source_id);
                return;
            }
            Op::GroupCreate { display_name, .. } => {
                if let Some(id) = target_id {
                    let mut members = match job {
                        GroupJob::Create { members, .. } => members.clone(),
                        _ => Vec::new(),
                    };
                    members.sort();
                    members.dedup();
                    let link = GroupLink {
                        source_id: source_id.clone(),
                        target_id: id,
                        display_name: display_name.clone(),
                        members,
                    };
                    state.links.insert(source_id.clone(), link.clone());
                    recorder.group_link(link);
                }
                return;
            }
            _ => {}
        }
        let Some(link) = state.links.get_mut(source_id) else {
            return;
        };
        if let Op::GroupRename { display_name, .. } = op {
            link.display_name = display_name.clone();
        }
        if let Some(new) = step.patch.as_ref().and_then(|p| p.renamed.as_ref()) {
            link.display_name = new.clone();
        }
        if let Some(patch) = &step.patch {
            link.members.extend(patch.added.iter().cloned());
            let removed: std::collections::HashSet<&ScimId> = patch.removed.iter().collect();
            link.members.retain(|m| !removed.contains(m));
            link.members.sort();
            link.members.dedup();
        }
        recorder.group_link(link.clone());
    }
}
