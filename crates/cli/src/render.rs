//! What `plan` prints (terraform-style text, or JSON with a stable schema), and the rate-limit
//! arithmetic shown with it.

use scimsync_engine::report::{Achieved, burst_bound};
use scimsync_engine::teams::MiroCheck;
use scimsync_engine::verify::{Finding, Verification};
use scimsync_engine::{CycleReport, Prepared};
use scimsync_model::{AttrValue, Member, Op, OpKind, Plan, ScimId, TeamAction, paths};
use scimsync_scim::{Bucket, Profile};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The requests each op sends at the least, by bucket. A create is its POST: against Miro the
/// cycle's own read stands for the lookup before it; a generic target's lookup is not counted,
/// which keeps the estimate a lower bound. Membership PATCHes are counted apart
/// (`member_requests`): the split decides how many, and which bucket.
fn requests(op: &Op) -> &'static [Bucket] {
    match op {
        Op::Create { .. } => &[Bucket::UsersPost],
        Op::Update { .. } | Op::Deactivate { .. } => &[Bucket::UsersPutPatch],
        Op::Delete { .. } => &[Bucket::UsersDelete],
        Op::Adopt { .. } | Op::Skip { .. } => &[],
        Op::GroupCreate { .. } | Op::GroupDelete { .. } => &[Bucket::GroupsPostDelete],
        Op::GroupRename { .. } => &[Bucket::GroupsPatchSmall],
        Op::GroupMembers { .. } | Op::GroupAdopt { .. } | Op::GroupSkip { .. } => &[],
        // Miro's REST API, not SCIM.
        Op::TeamAssignment { .. } if op.is_write() => &[Bucket::RestLevel1],
        Op::TeamAssignment { .. } => &[],
    }
}

/// A stand-in for the id of a user created in the same cycle (Miro ids are 19 digits).
const UNKNOWN_ID: &str = "3074457365265951581";

/// Each membership op's shape, as the executor will split it.
fn member_shapes(plan: &Plan) -> Vec<scimsync_scim::MemberChangeShape> {
    let id = |m: &Member| {
        m.target_id
            .clone()
            .unwrap_or_else(|| ScimId::new(UNKNOWN_ID))
    };
    plan.ops
        .iter()
        .filter_map(|op| match op {
            Op::GroupMembers {
                add,
                remove,
                display_name,
                renamed_from,
                ..
            } => Some(scimsync_scim::MemberChangeShape {
                add: add.iter().map(id).collect(),
                remove: remove.iter().map(id).collect(),
                rename: renamed_from.as_ref().map(|_| display_name.clone()),
            }),
            _ => None,
        })
        .collect()
}

/// The membership PATCHes the executor will send, by bucket, and the phase's shortest time
/// under the budgets: its own split choice (`choose_sizes`) over every group's changes.
pub fn member_requests(plan: &Plan, profile: &Profile) -> (BTreeMap<Bucket, u64>, Duration) {
    let shapes = member_shapes(plan);
    let mut totals = BTreeMap::new();
    if shapes.is_empty() {
        return (totals, Duration::ZERO);
    }
    let (sizes, eta) = scimsync_scim::choose_sizes(&shapes, profile);
    for (shape, size) in shapes.iter().zip(sizes) {
        let (small, large) = scimsync_scim::patch_counts(shape, profile, size);
        for (bucket, n) in [
            (Bucket::GroupsPatchSmall, small),
            (Bucket::GroupsPatchLarge, large),
        ] {
            if n > 0 {
                *totals.entry(bucket).or_default() += n;
            }
        }
    }
    (totals, eta)
}

/// The least time the budgets allow for the plan: phases run one after the other, and within a
/// phase the slowest bucket sets the pace: n requests at N per window need `(n - 1) div N`
/// windows after the first burst (`burst_bound`).
pub fn lower_bound(plan: &Plan, profile: &Profile) -> Duration {
    let budgets = &profile.budgets;
    let mut per_phase: BTreeMap<_, BTreeMap<Bucket, u64>> = BTreeMap::new();
    for op in &plan.ops {
        for bucket in requests(op) {
            *per_phase
                .entry(op.phase())
                .or_default()
                .entry(*bucket)
                .or_default() += 1;
        }
    }
    per_phase
        .values()
        .map(|buckets| {
            buckets
                .iter()
                .filter_map(|(bucket, n)| {
                    let per_window = *budgets.buckets.get(bucket)?;
                    (per_window > 0).then(|| burst_bound(*n, per_window, budgets.window))
                })
                .max()
                .unwrap_or_default()
        })
        .sum::<Duration>()
        + member_requests(plan, profile).1
}

/// Every request the plan sends, by bucket: what the summary counts, so it matches what goes.
fn bucket_totals(plan: &Plan, profile: &Profile) -> BTreeMap<Bucket, u64> {
    let mut totals = member_requests(plan, profile).0;
    for op in &plan.ops {
        for bucket in requests(op) {
            *totals.entry(*bucket).or_default() += 1;
        }
    }
    totals
}

/// One line of the post-sync summary for a bucket's rate (`scimsync_engine::report::Achieved`).
pub fn achieved_line(bucket: Bucket, a: &Achieved) -> String {
    let mut line = format!(
        "  {}: {} requests in {:.2} s",
        bucket.as_str(),
        a.requests,
        a.seconds
    );
    let Some(budget) = a.budget else {
        line.push_str(" (no budget)");
        return line;
    };
    let window = humantime::format_duration(Duration::from_secs_f64(a.window_seconds));
    match (a.bound_seconds, a.ratio) {
        (Some(bound), Some(ratio)) if bound > 0.0 => line.push_str(&format!(
            "; {budget} per {window} allow them in {bound:.2} s at the soonest ({:.0}%)",
            ratio * 100.0
        )),
        _ => line.push_str(&format!(", one burst ({budget} per {window})")),
    }
    line.push_str(&format!("; at most {} in any {window}", a.busiest_window));
    if let Some(taught) = a.taught {
        line.push_str(&format!(
            "; after 429s, {taught} per {window} for the rest of the cycle"
        ));
    }
    line
}

fn short_path(path: &str) -> String {
    match path.strip_prefix(paths::ENTERPRISE) {
        Some(rest) => format!("enterprise{rest}"),
        None => path.to_owned(),
    }
}

fn value(v: &Option<AttrValue>) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(v) => v.to_string(),
    }
}

pub fn op_line(op: &Op) -> String {
    let kind = op.kind();
    let mut line = format!(
        "{} {:<10} {} [{}]",
        kind.symbol(),
        kind.as_str(),
        op.user_name(),
        op.source_id()
    );
    match op {
        Op::Adopt { target_id, .. } => {
            let _ = write!(line, " -> existing target user {target_id}");
        }
        Op::Update { target_id, .. } => {
            let _ = write!(line, " ({target_id})");
        }
        Op::Deactivate {
            reason, target_id, ..
        }
        | Op::Delete {
            reason, target_id, ..
        } => {
            let _ = write!(line, " ({target_id}): {reason}");
        }
        Op::Skip { reason, .. } => {
            let _ = write!(line, ": {reason}");
        }
        Op::Create { .. } => {}
        Op::GroupCreate { members, .. } => {
            if !members.is_empty() {
                let _ = write!(line, ": with +{} members", members.len());
                let _ = write!(line, "{}", member_list('+', members));
            }
        }
        Op::GroupAdopt { target_id, .. } => {
            let _ = write!(line, " -> existing target group {target_id}");
        }
        Op::GroupRename { target_id, old, .. } => {
            let _ = write!(line, " ({target_id}): renamed from {old}");
        }
        Op::GroupDelete {
            target_id, reason, ..
        } => {
            let _ = write!(line, " ({target_id}): {reason}");
        }
        Op::GroupSkip { reason, .. } => {
            let _ = write!(line, ": {reason}");
        }
        Op::TeamAssignment {
            group_id,
            team,
            action,
            ..
        } => {
            if let Some(id) = group_id {
                let _ = write!(line, " ({id})");
            }
            let _ = match action {
                TeamAction::Assign if group_id.is_none() => {
                    write!(line, " -> {team} (created in this plan)")
                }
                TeamAction::Assign => write!(line, " -> {team}"),
                TeamAction::Unassign => write!(line, " off {team}"),
                TeamAction::Adopt => write!(line, " -> {team}: already assigned in Miro"),
                TeamAction::Skip { reason } => write!(line, ": {team}: {reason}"),
            };
        }
        Op::GroupMembers {
            target_id,
            add,
            remove,
            renamed_from,
            ..
        } => {
            match target_id {
                Some(id) => {
                    let _ = write!(line, " ({id})");
                }
                None => line.push_str(" (created in this plan)"),
            }
            if let Some(old) = renamed_from {
                let _ = write!(line, " renamed from {old},");
            }
            let _ = write!(line, ": +{} -{}", add.len(), remove.len());
            let _ = write!(line, "{}", member_list('+', add));
            let _ = write!(line, "{}", member_list('-', remove));
        }
    }
    line
}

/// `\n      + a@x.com, b@x.com (and 12 more)`: the first members of a membership change.
fn member_list(sign: char, members: &[Member]) -> String {
    const SHOWN: usize = 10;
    if members.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = members
        .iter()
        .take(SHOWN)
        .map(|m| m.user_name.as_str())
        .collect();
    let more = members.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!("\n      {sign} {}{tail}", names.join(", "))
}

/// Above this many ops of one kind, the text shows the first ones and a count (`--full-list`
/// shows them all): a first sync of 5,000 people is read for its summary, not line by line.
pub const LIST_LIMIT: usize = 200;

/// The order the plan's text lists kinds in: the summary's.
const KIND_ORDER: [OpKind; 10] = [
    OpKind::Create,
    OpKind::Adopt,
    OpKind::Update,
    OpKind::Reactivate,
    OpKind::Deactivate,
    OpKind::Delete,
    OpKind::Members,
    OpKind::Assign,
    OpKind::Unassign,
    OpKind::Skip,
];

/// A heading for `n` ops of `kind`: "45 to create".
fn kind_heading(kind: OpKind, n: usize) -> String {
    let what = match kind {
        OpKind::Create => "to create",
        OpKind::Adopt => "to adopt (already in the target: linked, not created)",
        OpKind::Update => "to update",
        OpKind::Reactivate => "to reactivate",
        OpKind::Deactivate => "to deactivate",
        OpKind::Delete => "to delete",
        OpKind::Members => "group membership changes",
        OpKind::Assign => "team assignments",
        OpKind::Unassign => "team unassignments",
        OpKind::Skip => "skipped (not sent, with the reason)",
    };
    format!("{n} {what}")
}

/// What goes with the plan's text besides the plan: the guard's verdict (its own text, empty
/// when it would hold nothing) and whether to list every op.
pub struct PlanTextOptions<'a> {
    pub integration: &'a str,
    pub guard: &'a str,
    pub full_list: bool,
}

/// The plan for people, written as it is made (a million creates are never one string): what
/// was read, then the summary (counts, the guard's verdict, the least time the budgets allow),
/// then the ops grouped by kind, each kind cut at `LIST_LIMIT` unless `full_list`.
pub fn write_plan_text(
    out: &mut impl std::io::Write,
    prepared: &Prepared,
    plan: &Plan,
    profile: &Profile,
    options: &PlanTextOptions<'_>,
) -> std::io::Result<()> {
    let budgets = &profile.budgets;
    let view = if prepared.full {
        format!(
            "full read of the target ({} users)",
            prepared.target.users.len()
        )
    } else {
        format!(
            "incremental ({} links, {} lookups)",
            prepared.links.len(),
            prepared.lookups
        )
    };
    writeln!(out, "scimsync plan for {}: {view}", options.integration)?;
    writeln!(
        out,
        "directory: {} users, {} in scope, {} out of scope, {} invalid (held untouched), {} unresolved group members",
        prepared.directory_users,
        prepared.mapped.desired.len(),
        prepared.mapped.out_of_scope.len(),
        prepared.mapped.invalid.len(),
        prepared.findings.unresolved.len()
    )?;
    for record in &prepared.mapped.invalid {
        writeln!(out, "  invalid: {record}")?;
    }
    for member in &prepared.findings.unresolved {
        writeln!(out, "  unresolved: {member}")?;
    }
    for name in &prepared.findings.unmatched {
        writeln!(out, "  warning: {name}")?;
    }
    if let Some(warning) = &prepared.model.warning {
        writeln!(out, "  warning: {warning}")?;
    }
    for name in &prepared.unmatched_teams {
        writeln!(
            out,
            "  warning: [teams] entry {name} names no synced directory group; its teams are \
             left as they are"
        )?;
    }
    for d in &prepared.output.diagnostics {
        writeln!(
            out,
            "  note: user {}: {}: {}",
            d.source_id, d.field, d.message
        )?;
    }
    for u in &prepared.fit.unsupported {
        writeln!(out, "  ! {}", scimsync_engine::discovery::describe(u))?;
    }
    for line in verification_lines(&prepared.verification) {
        writeln!(out, "{line}")?;
    }

    // The summary first: what a reader decides on.
    let c = plan.counts();
    let teams = if c.assign + c.unassign > 0 {
        format!(
            "; {} team assignments, {} unassignments",
            c.assign, c.unassign
        )
    } else {
        String::new()
    };
    let members = if c.members > 0 {
        format!("; {} groups' members", c.members)
    } else {
        String::new()
    };
    writeln!(
        out,
        "\nPlan: {} to create, {} to adopt, {} to update, {} to reactivate, {} to deactivate, {} to delete; {} skipped{members}{teams}.",
        c.create, c.adopt, c.update, c.reactivate, c.deactivate, c.delete, c.skip
    )?;
    if options.guard.is_empty() {
        writeln!(out, "Deletion guard: would hold nothing.")?;
    } else {
        write!(out, "{}", options.guard)?;
    }
    let eta = lower_bound(plan, profile);
    let totals = bucket_totals(plan, profile);
    if totals.is_empty() {
        writeln!(out, "Rate limits: nothing to send.")?;
    } else {
        let detail: Vec<String> = totals
            .iter()
            .map(|(b, n)| match budgets.buckets.get(b) {
                Some(per) => format!(
                    "{} {n} at {per}/{}",
                    b.as_str(),
                    humantime::format_duration(budgets.window)
                ),
                None => format!("{} {n} (no budget)", b.as_str()),
            })
            .collect();
        let eta = if eta.is_zero() {
            "under a second, in one burst".to_owned()
        } else {
            format!(
                "at least {}",
                humantime::format_duration(Duration::from_secs(eta.as_secs_f64().ceil() as u64))
            )
        };
        writeln!(out, "Rate limits: {eta} ({}).", detail.join(", "))?;
    }
    if plan.ops.is_empty() {
        writeln!(out, "\nNo changes. The target matches the directory.")?;
        return Ok(());
    }

    // Then the ops, grouped by kind, in execution order within a kind.
    for kind in KIND_ORDER {
        let total = plan.ops.iter().filter(|op| op.kind() == kind).count();
        if total == 0 {
            continue;
        }
        writeln!(out, "\n{}:", kind_heading(kind, total))?;
        let shown = if options.full_list {
            total
        } else {
            total.min(LIST_LIMIT)
        };
        for op in plan.ops.iter().filter(|op| op.kind() == kind).take(shown) {
            write_op(out, op)?;
        }
        if shown < total {
            writeln!(
                out,
                "  ... and {} more of the {} (`scimsync plan --full-list` lists every one, \
                 `--output json` too)",
                total - shown,
                kind_heading(kind, total)
            )?;
        }
    }
    Ok(())
}

/// One op: its line, and a create's attributes or an update's changes below it.
fn write_op(out: &mut impl std::io::Write, op: &Op) -> std::io::Result<()> {
    writeln!(out, "{}", op_line(op))?;
    match op {
        Op::Create { attrs, .. } => {
            for (path, v) in attrs {
                writeln!(out, "      {}: {}", short_path(path), v)?;
            }
        }
        Op::Update { changes, .. } => {
            for c in changes {
                writeln!(
                    out,
                    "      {}: {} -> {}",
                    short_path(&c.path),
                    value(&c.old),
                    value(&c.new)
                )?;
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn plan_json(
    prepared: &Prepared,
    plan: &Plan,
    profile: &Profile,
    integration: &str,
) -> serde_json::Value {
    serde_json::json!({
        "schema": "scimsync.plan/v1",
        "integration": integration,
        "full": prepared.full,
        "directory": {
            "users": prepared.directory_users,
            "in_scope": prepared.mapped.desired.len(),
            "out_of_scope": prepared.mapped.out_of_scope.len(),
            "invalid": prepared.mapped.invalid.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "unresolved_members": prepared.findings.unresolved,
            "unmatched_config": prepared.findings.unmatched.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "diagnostics": prepared.output.diagnostics.iter().map(|d| serde_json::json!({
            "source_id": d.source_id, "field": d.field, "message": d.message
        })).collect::<Vec<_>>(),
        "uncertain": {
            "verified": prepared.verification.verified.len(),
            "reads": prepared.verification.reads,
            "held": verification_lines(&prepared.verification).into_iter().skip(1).collect::<Vec<_>>(),
        },
        "counts": plan.counts(),
        "group_model": prepared.model.model.as_str(),
        "warnings": prepared.model.warning.iter().cloned().chain(prepared.unmatched_teams.iter().map(|n| format!("[teams] entry {n} names no synced directory group"))).collect::<Vec<_>>(),
        "writes": plan.writes(),
        "estimate_seconds": lower_bound(plan, profile).as_secs_f64(),
        "requests": bucket_totals(plan, profile)
            .into_iter()
            .map(|(b, n)| (b.as_str().to_owned(), n))
            .collect::<BTreeMap<_, _>>(),
        "unsupported": prepared.fit.unsupported,
    })
}

/// One op as `plan --output json` lists it: the op, its kind and its phase.
fn op_json(op: &Op) -> serde_json::Value {
    let mut v = serde_json::to_value(op).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("kind".into(), serde_json::json!(op.kind()));
        obj.insert("phase".into(), serde_json::json!(op.phase()));
    }
    v
}

/// `head` (the plan's JSON without its ops) with `"ops"` appended, one op at a time: a million
/// ops are never one `serde_json::Value`, nor one string.
pub fn write_plan_json(
    out: &mut impl std::io::Write,
    head: &serde_json::Value,
    plan: &Plan,
) -> std::io::Result<()> {
    let head = serde_json::to_string_pretty(head)?;
    // A pretty object ends with "\n}"; the ops go in before it.
    let body = head.strip_suffix('}').unwrap_or(&head).trim_end();
    let comma = if body.ends_with('{') { "" } else { "," };
    write!(out, "{body}{comma}\n  \"ops\": [")?;
    for (i, op) in plan.ops.iter().enumerate() {
        let sep = if i == 0 { "\n    " } else { ",\n    " };
        write!(out, "{sep}{}", op_json(op))?;
    }
    let end = if plan.ops.is_empty() { "]" } else { "\n  ]" };
    writeln!(out, "{end}\n}}")
}

/// What `sync --now` and the daemon print on stderr when a cycle ends: one line of counts, then
/// what each bucket sent against its budget.
pub fn summary_lines(report: &CycleReport) -> String {
    let summary = &report.summary;
    let counts = summary.counts.as_ref();
    let n = |f: fn(&scimsync_engine::report::CycleCounts) -> u64| counts.map_or(0, f);
    let mut out = format!(
        "run {}: {} succeeded, {} failed, {} skipped, {} held; {} rate-limited responses, {} retries; {} ms\n",
        report.run_id,
        n(|c| c.succeeded as u64),
        n(|c| c.failed as u64),
        n(|c| c.skipped as u64),
        n(|c| c.held_deprovisions as u64),
        n(|c| c.rate_limited),
        n(|c| c.retries),
        summary.elapsed_ms,
    );
    for (bucket, a) in counts.into_iter().flat_map(|c| &c.achieved) {
        let _ = writeln!(out, "{}", achieved_line(*bucket, a));
    }
    out
}

/// What `plan` prints of verification: how many uncertain objects were read, and each one
/// held because its read failed (nothing at all when nothing was uncertain).
pub fn verification_lines(verification: &Verification) -> Vec<String> {
    if verification.verified.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "uncertain: {} users and groups whose last write has an unknown outcome, read from the \
         target before planning ({} reads)",
        verification.verified.len(),
        verification.reads
    )];
    for v in &verification.verified {
        if let Finding::Unverified(why) = &v.finding {
            lines.push(format!(
                "  held: {} {} ({}): not readable now ({why}); left untouched",
                v.mark.mark.kind, v.mark.mark.name, v.mark.mark.source_id
            ));
        }
    }
    lines
}

/// The lines `check` prints of Miro's side (`scimsync_engine::teams::check`).
pub fn miro_check_lines(check: &MiroCheck) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(effective) = check.effective {
        lines.push(format!(
            "group model: {effective}{}",
            if check.configured.is_some() {
                " (sync.toml)"
            } else {
                " (sync.toml does not say; see the warning)"
            }
        ));
    }
    match check.org {
        Some(org) => lines.push(format!("org answers to: {org} ({})", check.how)),
        None if !check.how.is_empty() => lines.push(format!("org answers to: {}", check.how)),
        None => {}
    }
    if !check.rest.is_empty() {
        lines.push(format!("REST API ([target.rest]): {}", check.rest));
    }
    if let Some(n) = check.teams_visible {
        lines.push(format!("teams visible: {n}"));
    }
    lines.extend(check.errors.iter().map(|e| format!("error: {e}")));
    lines.extend(check.warnings.iter().map(|w| format!("warning: {w}")));
    lines
}

#[cfg(test)]
mod json_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scimsync_model::{SkipReason, SourceId};

    /// The streamed JSON is one valid document: the head's keys, then every op in order.
    #[test]
    fn the_streamed_plan_json_parses_whole() {
        let ops: Vec<Op> = (0..3)
            .map(|i| Op::Adopt {
                source_id: SourceId::new(format!("u{i}")),
                target_id: ScimId::new(format!("t{i}")),
                user_name: format!("u{i}@example.com"),
            })
            .chain([Op::Skip {
                source_id: SourceId::new("u9"),
                user_name: "u9@example.com".into(),
                reason: SkipReason::InactiveNotProvisioned,
            }])
            .collect();
        let plan = Plan { ops };
        for (head, plan) in [
            (
                serde_json::json!({"schema": "scimsync.plan/v1", "n": 1}),
                plan.clone(),
            ),
            (serde_json::json!({}), Plan::default()),
        ] {
            let mut out = Vec::new();
            write_plan_json(&mut out, &head, &plan).unwrap();
            let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let ops = doc["ops"].as_array().unwrap();
            assert_eq!(ops.len(), plan.ops.len());
            for (json, op) in ops.iter().zip(&plan.ops) {
                assert_eq!(json, &op_json(op));
            }
            for (key, value) in head.as_object().unwrap() {
                assert_eq!(&doc[key], value);
            }
        }
    }
}

#[cfg(test)]
mod rate_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scimsync_engine::report::{BucketReport, ExecutionReport, achieved_rates};
    use scimsync_scim::Budgets;

    fn report(bucket: Bucket, b: BucketReport) -> ExecutionReport {
        ExecutionReport {
            buckets: [(bucket, b)].into(),
            ..ExecutionReport::default()
        }
    }

    fn sent(times: &[Duration], window: Duration) -> BucketReport {
        let busiest = (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|&&t| t <= times[i] + window)
                    .count()
            })
            .max()
            .unwrap_or(0);
        BucketReport {
            requests: times.len() as u64,
            first: times.first().copied(),
            last: times.last().copied(),
            busiest_window: busiest as u64,
            taught: None,
        }
    }

    #[test]
    fn bursts_are_reported_against_the_burst_bound() {
        let budgets = Budgets::miro();
        let w = budgets.window;
        // 600 creates as three bursts of 200, a window and a little apart.
        let times: Vec<Duration> = (0..600u32)
            .map(|i| {
                (w + Duration::from_millis(200)) * (i / 200)
                    + Duration::from_millis(u64::from(i % 200))
            })
            .collect();
        let rates = achieved_rates(&report(Bucket::UsersPost, sent(&times, w)), &budgets);
        let a = &rates[&Bucket::UsersPost];
        assert_eq!(a.busiest_window, 200);
        assert_eq!(a.bound_seconds, Some(60.0));
        let line = achieved_line(Bucket::UsersPost, a);
        assert_eq!(
            line,
            "  users_post: 600 requests in 60.60 s; 200 per 30s allow them in 60.00 s at the \
             soonest (99%); at most 200 in any 30s"
        );
        // One burst: no bound to compare with, and no rate extrapolated from a burst (the old
        // report read 44 requests in 0.2 s as "200.6 per window against a budget of 200").
        let times: Vec<Duration> = (0..44).map(|i| Duration::from_millis(5 * i)).collect();
        let rates = achieved_rates(&report(Bucket::UsersGet, sent(&times, w)), &budgets);
        assert_eq!(
            achieved_line(Bucket::UsersGet, &rates[&Bucket::UsersGet]),
            "  users_get: 44 requests in 0.21 s, one burst (200 per 30s); at most 44 in any 30s"
        );
        assert_eq!(rates[&Bucket::UsersGet].ratio, None);
        // The JSON of the run's summary, as on main before the engine.
        let json = serde_json::to_value(&rates[&Bucket::UsersGet]).unwrap();
        assert_eq!(json["ratio"], serde_json::Value::Null);
        assert_eq!(json["busiest_window"], 44);
        assert_eq!(json["window_seconds"], 30.0);
    }

    #[test]
    fn a_bucket_without_budget_and_a_taught_one() {
        let budgets = Budgets::unlimited();
        let times = [Duration::ZERO, Duration::from_millis(10)];
        let rates = achieved_rates(
            &report(Bucket::UsersGet, sent(&times, budgets.window)),
            &budgets,
        );
        assert_eq!(
            achieved_line(Bucket::UsersGet, &rates[&Bucket::UsersGet]),
            "  users_get: 2 requests in 0.01 s (no budget)"
        );
        let budgets = Budgets::miro();
        let mut b = sent(&times, budgets.window);
        b.taught = Some(180);
        let rates = achieved_rates(&report(Bucket::UsersPost, b), &budgets);
        assert!(
            achieved_line(Bucket::UsersPost, &rates[&Bucket::UsersPost])
                .ends_with("; after 429s, 180 per 30s for the rest of the cycle")
        );
    }

    /// Whatever the shape, sends that keep the budget in every window-long interval never read
    /// as more than 100 % of the bound.
    #[test]
    fn a_kept_budget_never_reads_as_a_breach() {
        let window = Duration::from_secs(3);
        let budgets = Budgets::miro_scaled(window);
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        for _ in 0..50 {
            let count = 1 + next(900) as usize;
            let mut times: Vec<Duration> = Vec::with_capacity(count);
            let mut at = Duration::ZERO;
            for i in 0..count {
                at += Duration::from_millis(next(40));
                // The earliest the budget allows: a window after the request 200 places back.
                if i >= 200 {
                    at = at.max(times[i - 200] + window + Duration::from_millis(1));
                }
                times.push(at);
            }
            let b = sent(&times, window);
            assert!(b.busiest_window <= 200);
            let rates = achieved_rates(&report(Bucket::UsersPost, b), &budgets);
            let ratio = rates[&Bucket::UsersPost].ratio.unwrap_or(0.0);
            assert!(
                ratio <= 1.0,
                "{count} requests: {:?}",
                rates[&Bucket::UsersPost]
            );
        }
    }
}
