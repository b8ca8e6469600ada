//! What `plan` prints (terraform-style text, or JSON with a stable schema), and the rate-limit
//! arithmetic shown with it.

use scimsync_engine::{CycleReport, Prepared};
use scimsync_model::{AttrValue, Member, Op, Plan, ScimId, paths};
use scimsync_scim::{Bucket, Profile};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// The requests each op sends, by bucket (a create looks up before it posts). Membership
/// PATCHes are counted apart (`member_requests`): the split decides how many, and which bucket.
fn requests(op: &Op) -> &'static [Bucket] {
    match op {
        Op::Create { .. } => &[Bucket::UsersGet, Bucket::UsersPost],
        Op::Update { .. } | Op::Deactivate { .. } => &[Bucket::UsersPutPatch],
        Op::Delete { .. } => &[Bucket::UsersDelete],
        Op::Adopt { .. } | Op::Skip { .. } => &[],
        Op::GroupCreate { .. } | Op::GroupDelete { .. } => &[Bucket::GroupsPostDelete],
        Op::GroupRename { .. } => &[Bucket::GroupsPatchSmall],
        Op::GroupMembers { .. } | Op::GroupAdopt { .. } | Op::GroupSkip { .. } => &[],
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
/// phase the busiest bucket sets the pace (N requests per window).
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
                    (per_window > 0).then(|| budgets.window.mul_f64(*n as f64 / per_window as f64))
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

pub fn plan_text(prepared: &Prepared, plan: &Plan, profile: &Profile, integration: &str) -> String {
    let budgets = &profile.budgets;
    let mut out = String::new();
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
    let _ = writeln!(out, "scimsync plan for {integration}: {view}");
    let _ = writeln!(
        out,
        "directory: {} users, {} in scope, {} out of scope, {} invalid (held untouched), {} unresolved group members",
        prepared.directory_users,
        prepared.mapped.desired.len(),
        prepared.mapped.out_of_scope.len(),
        prepared.mapped.invalid.len(),
        prepared.findings.unresolved.len()
    );
    for record in &prepared.mapped.invalid {
        let _ = writeln!(out, "  invalid: {record}");
    }
    for member in &prepared.findings.unresolved {
        let _ = writeln!(out, "  unresolved: {member}");
    }
    for name in &prepared.findings.unmatched {
        let _ = writeln!(out, "  warning: {name}");
    }
    for d in &prepared.output.diagnostics {
        let _ = writeln!(
            out,
            "  note: user {}: {}: {}",
            d.source_id, d.field, d.message
        );
    }
    for u in &prepared.fit.unsupported {
        let _ = writeln!(out, "  ! {}", scimsync_engine::discovery::describe(u));
    }
    let _ = writeln!(out);
    for op in &plan.ops {
        let _ = writeln!(out, "{}", op_line(op));
        match op {
            Op::Create { attrs, .. } => {
                for (path, v) in attrs {
                    let _ = writeln!(out, "      {}: {}", short_path(path), v);
                }
            }
            Op::Update { changes, .. } => {
                for c in changes {
                    let _ = writeln!(
                        out,
                        "      {}: {} -> {}",
                        short_path(&c.path),
                        value(&c.old),
                        value(&c.new)
                    );
                }
            }
            _ => {}
        }
    }
    if plan.ops.is_empty() {
        let _ = writeln!(out, "No changes. The target matches the directory.");
    }
    let c = plan.counts();
    let _ = writeln!(
        out,
        "\nPlan: {} to create, {} to adopt, {} to update, {} to reactivate, {} to deactivate, {} to delete; {} skipped.",
        c.create, c.adopt, c.update, c.reactivate, c.deactivate, c.delete, c.skip
    );
    let eta = lower_bound(plan, profile);
    let totals = bucket_totals(plan, profile);
    if totals.is_empty() {
        let _ = writeln!(out, "Rate limits: nothing to send.");
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
        let _ = writeln!(
            out,
            "Rate limits: at least {} ({}).",
            humantime::format_duration(Duration::from_secs(eta.as_secs_f64().ceil() as u64)),
            detail.join(", ")
        );
    }
    out
}

pub fn plan_json(
    prepared: &Prepared,
    plan: &Plan,
    profile: &Profile,
    integration: &str,
) -> serde_json::Value {
    let ops: Vec<serde_json::Value> = plan
        .ops
        .iter()
        .map(|op| {
            let mut v = serde_json::to_value(op).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("kind".into(), serde_json::json!(op.kind()));
                obj.insert("phase".into(), serde_json::json!(op.phase()));
            }
            v
        })
        .collect();
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
        "counts": plan.counts(),
        "writes": plan.writes(),
        "estimate_seconds": lower_bound(plan, profile).as_secs_f64(),
        "requests": bucket_totals(plan, profile)
            .into_iter()
            .map(|(b, n)| (b.as_str().to_owned(), n))
            .collect::<BTreeMap<_, _>>(),
        "unsupported": prepared.fit.unsupported,
        "ops": ops,
    })
}

/// What `sync --now` and the daemon print on stderr when a cycle ends: one line of counts, then
/// the rate each bucket achieved against its budget.
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
        let _ = match (a.per_window, a.budget, a.ratio) {
            (Some(per), Some(budget), Some(ratio)) => writeln!(
                out,
                "  {}: {} requests, {per:.1} per window against a budget of {budget} ({:.0}%)",
                bucket.as_str(),
                a.requests,
                ratio * 100.0
            ),
            _ => writeln!(out, "  {}: {} requests", bucket.as_str(), a.requests),
        };
    }
    out
}
