//! Team assignments (`Op::TeamAssignment`) over Miro's REST API, one at a time (they are few,
//! and the REST bucket paces them anyway): each journaled, each with a
//! `group_update_provision` event naming the team.

use crate::client::Trace;
use crate::error::{ErrorClass, ScimError};
use crate::execute::{ExecutionReport, OpOutcome, Recorder};
use crate::groups::GroupState;
use crate::rest::{Assigned, RestClient};
use scimsync_model::{Event, EventType, InitiatedBy, Op, RunId, ScimId, TeamAction, TeamLink};
use serde_json::{Value, json};

pub(crate) struct TeamRun<'a> {
    pub(crate) rest: Option<&'a RestClient>,
    pub(crate) integration: &'a str,
    pub(crate) run_id: RunId,
    pub(crate) initiated_by: InitiatedBy,
}

impl TeamRun<'_> {
    /// Runs the team ops `indices` of one phase; returns how many it handled.
    pub(crate) async fn run(
        &self,
        ops: &[Op],
        indices: &[usize],
        groups: &GroupState,
        report: &mut ExecutionReport,
        recorder: &mut dyn Recorder,
    ) -> usize {
        for &index in indices {
            self.one(index, &ops[index], groups, report, recorder).await;
        }
        indices.len()
    }

    async fn one(
        &self,
        index: usize,
        op: &Op,
        groups: &GroupState,
        report: &mut ExecutionReport,
        recorder: &mut dyn Recorder,
    ) {
        let Op::TeamAssignment {
            source_id,
            group_id,
            team,
            action,
            ..
        } = op
        else {
            return;
        };
        // A group created this run has its id in the working map by now.
        let group_id: Option<ScimId> = group_id
            .clone()
            .or_else(|| groups.links.get(source_id).map(|l| l.target_id.clone()));
        let mut event = self.event(op, group_id.clone());
        let detail_team = json!({"id": team.id, "name": team.name});
        let link = |team_id| TeamLink {
            group: source_id.clone(),
            team_id,
            team_name: team.name.clone(),
        };
        match action {
            TeamAction::Skip { reason } => {
                event.success = false;
                event.error = Some(reason.to_string());
                event.detail = json!({"skipped": true, "team": detail_team, "reason": reason});
                recorder.event(event);
                report.skipped += 1;
                return;
            }
            TeamAction::Adopt => {
                if let Some(id) = team.id.clone() {
                    recorder.team_link(link(id));
                }
                event.detail = json!({
                    "team": detail_team,
                    "action": "adopt",
                    "note": "already assigned in Miro; now managed by scimsync",
                });
                recorder.event(event);
                report.succeeded += 1;
                return;
            }
            TeamAction::Assign | TeamAction::Unassign => {}
        }
        let assign = matches!(action, TeamAction::Assign);
        event.detail = json!({
            "team": detail_team,
            "action": if assign { "assign" } else { "unassign" },
        });
        recorder.before_write(index, op, &crate::execute::planned_request(op, false));
        let mut trace = Trace::default();
        let result: Result<Option<&str>, String> = match (self.rest, &team.id, &group_id) {
            (None, _, _) => Err("no REST client: set [target.rest] with a token".into()),
            (_, None, _) => Err("the team's id is not known".into()),
            (_, _, None) => Err("the group is not in Miro (it was not created)".into()),
            (Some(rest), Some(team_id), Some(group)) if assign => {
                match rest.assign(team_id, group, &mut trace).await {
                    Ok(how) => {
                        recorder.team_link(link(team_id.clone()));
                        Ok((how == Assigned::Already).then_some("already assigned in Miro"))
                    }
                    Err(e) => Err(describe(&e)),
                }
            }
            (Some(rest), Some(team_id), Some(group)) => {
                match rest.unassign(team_id, group, &mut trace).await {
                    Ok(()) => {
                        recorder.team_unlink(source_id, team_id);
                        Ok(None)
                    }
                    Err(e) => Err(describe(&e)),
                }
            }
        };
        let outcome = match result {
            Ok(note) => {
                if let (Some(note), Value::Object(detail)) = (note, &mut event.detail) {
                    detail.insert("note".into(), json!(note));
                }
                report.succeeded += 1;
                OpOutcome::Succeeded
            }
            Err(message) => {
                event.success = false;
                event.error = Some(message.clone());
                report.failed += 1;
                report.failures.push((source_id.clone(), message.clone()));
                OpOutcome::Failed(message)
            }
        };
        event.http = trace.http(!event.success);
        recorder.event(event);
        recorder.after_write(index, &outcome);
    }

    fn event(&self, op: &Op, target_id: Option<ScimId>) -> Event {
        crate::groups::group_event(
            self.integration,
            self.run_id,
            self.initiated_by,
            (op, EventType::GroupUpdateProvision, target_id),
            &Trace::default(),
        )
    }
}

/// A failed REST request, as an event says it (a refusal names the credential at fault).
fn describe(e: &ScimError) -> String {
    if matches!(e, ScimError::Halted) {
        return "not sent: Miro's REST API refused the [target.rest] token earlier in this cycle"
            .into();
    }
    match e.class() {
        ErrorClass::Halt => format!(
            "Miro's REST API refused the [target.rest] token ({e}); it needs a Company \
             Admin's token with organizations:teams:write and organizations:groups:read"
        ),
        _ => format!("Miro's REST API: {e}"),
    }
}
