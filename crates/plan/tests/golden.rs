//! Golden-file tests: each `tests/data/<case>/input.json` (the desired users, the out-of-scope and
//! held ones, the links, the target view and the policy) is planned and rendered one op per line;
//! the result must equal `expected.plan` next to it. `UPDATE_EXPECT=1 cargo test -p
//! scimsync-plan --test golden` rewrites the expected files; review the diff before committing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use scimsync_model::{
    AttrValue, Attrs, DesiredUser, Link, Op, OutOfScope, ScimId, SourceId, TargetView, fingerprint,
    paths,
};
use scimsync_plan::{LicencePolicy, OnDelete, OnUnassign, PlanInput, PlanOutput, Policy};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    desired: Vec<DesiredUser>,
    #[serde(default)]
    out_of_scope: Vec<OutOfScope>,
    #[serde(default)]
    held: Vec<SourceId>,
    #[serde(default)]
    links: Vec<LinkInput>,
    target: TargetView,
    #[serde(default)]
    guests: Vec<String>,
    #[serde(default)]
    policy: PolicyInput,
}

/// A link as the store holds it; `hash` defaults to the fingerprint of the link's own state
/// (a link that agrees with itself), so cases stay readable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkInput {
    source_id: SourceId,
    target_id: ScimId,
    user_name: String,
    active: bool,
    #[serde(default)]
    attrs: Attrs,
    hash: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PolicyInput {
    on_unassign: OnUnassign,
    on_delete: OnDelete,
    create_only: BTreeSet<String>,
    frozen_while_inactive: BTreeSet<String>,
    /// `[path, upgrades_to]`: the licence rule (Miro: `["userType", "Full"]`).
    licence: Option<(String, String)>,
}

fn short_path(path: &str) -> String {
    match path.strip_prefix(paths::ENTERPRISE) {
        Some(rest) => format!("enterprise{rest}"),
        None => path.to_owned(),
    }
}

fn value(v: Option<&AttrValue>) -> String {
    v.map_or_else(|| "(none)".to_owned(), ToString::to_string)
}

fn render(output: &PlanOutput) -> String {
    let mut out = String::new();
    for op in &output.plan.ops {
        let kind = op.kind();
        let _ = write!(
            out,
            "{} {} {} {}",
            kind.symbol(),
            kind.as_str(),
            op.source_id(),
            op.user_name()
        );
        match op {
            Op::Create { attrs, .. } => {
                let fields: Vec<String> = attrs
                    .iter()
                    .map(|(p, v)| format!("{}={v}", short_path(p)))
                    .collect();
                let _ = write!(out, " {{{}}}", fields.join(", "));
            }
            Op::Adopt { target_id, .. } => {
                let _ = write!(out, " -> {target_id}");
            }
            Op::Update {
                target_id, changes, ..
            } => {
                let fields: Vec<String> = changes
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {} -> {}",
                            short_path(&c.path),
                            value(c.old.as_ref()),
                            value(c.new.as_ref())
                        )
                    })
                    .collect();
                let _ = write!(out, " ({target_id}) {}", fields.join("; "));
            }
            Op::Deactivate {
                target_id, reason, ..
            }
            | Op::Delete {
                target_id, reason, ..
            } => {
                let _ = write!(out, " ({target_id}): {reason}");
            }
            Op::Skip { reason, .. } => {
                let _ = write!(out, ": {reason}");
            }
            // The golden cases have no groups; group planning has its own tests.
            op => {
                let _ = write!(out, " {op:?}");
            }
        }
        out.push('\n');
    }
    for d in &output.diagnostics {
        let _ = writeln!(
            out,
            "# note {} {}: {}",
            d.source_id,
            short_path(&d.field),
            d.message
        );
    }
    out
}

fn run_case(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("input.json")).unwrap();
    let input: Input = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: bad input.json: {e}", dir.display()));
    let links: Vec<Link> = input
        .links
        .into_iter()
        .map(|l| Link {
            hash: l
                .hash
                .unwrap_or_else(|| fingerprint(&l.user_name, l.active, &l.attrs)),
            source_id: l.source_id,
            target_id: l.target_id,
            user_name: l.user_name,
            active: l.active,
            attrs: l.attrs,
        })
        .collect();
    let policy = Policy {
        on_unassign: input.policy.on_unassign,
        on_delete: input.policy.on_delete,
        create_only: input.policy.create_only,
        frozen_while_inactive: input.policy.frozen_while_inactive,
        deactivate_first: false,
        licence: input
            .policy
            .licence
            .map(|(path, upgrades_to)| LicencePolicy { path, upgrades_to }),
    };
    let output = scimsync_plan::plan(
        &PlanInput {
            desired: &input.desired,
            out_of_scope: &input.out_of_scope,
            held: &input.held,
            links: &links,
            target: &input.target,
            guests: &input.guests,
            grace_expired: &[],
            unchanged: None,
        },
        &policy,
    );
    render(&output)
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn plans_match_expected_files() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let dirs = cases();
    assert!(!dirs.is_empty(), "no cases under tests/data");
    let mut failures = Vec::new();
    for dir in &dirs {
        let actual = run_case(dir);
        let expected_path = dir.join("expected.plan");
        let expected = std::fs::read_to_string(&expected_path).ok();
        if expected.as_deref() == Some(actual.as_str()) {
            continue;
        }
        if update {
            std::fs::write(&expected_path, &actual).unwrap();
            eprintln!("updated {}", expected_path.display());
            continue;
        }
        failures.push(format!(
            "{}\n--- expected\n{}--- actual\n{}",
            dir.display(),
            expected.unwrap_or_else(|| "(missing expected.plan)\n".to_owned()),
            actual
        ));
    }
    assert!(
        failures.is_empty(),
        "plans differ from the expected files (rerun with UPDATE_EXPECT=1 to accept):\n\n{}",
        failures.join("\n")
    );
}

#[test]
fn planning_a_case_twice_renders_the_same_bytes() {
    for dir in cases() {
        assert_eq!(run_case(&dir), run_case(&dir), "{}", dir.display());
    }
}

/// Architecture Invariant: the planner depends on the model and on no other scimsync crate.
#[test]
fn depends_on_no_scimsync_crate_but_the_model() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let internal: Vec<&str> = manifest
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("scimsync-"))
        .collect();
    assert_eq!(internal, ["scimsync-model.workspace = true"], "{manifest}");
}
