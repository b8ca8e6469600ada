//! The dependency rules of ARCHITECTURE.md (its "Architecture Invariant" lines), checked
//! against `cargo metadata`, for every crate of the workspace.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn normal_deps(meta: &Value, package: &str) -> BTreeSet<String> {
    let pkg = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == package)
        .unwrap_or_else(|| panic!("no package {package}"));
    pkg["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].is_null())
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every package of the workspace and its normal dependencies.
fn workspace() -> BTreeMap<String, BTreeSet<String>> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap().to_owned();
            let deps = normal_deps(&meta, &name);
            (name, deps)
        })
        .collect()
}

fn internal(deps: &BTreeSet<String>) -> BTreeSet<&str> {
    deps.iter()
        .filter(|d| d.starts_with("scimsync"))
        .map(String::as_str)
        .collect()
}

#[test]
fn crate_dependencies_follow_the_architecture() {
    let ws = workspace();
    let deps = |pkg: &str| ws.get(pkg).unwrap_or_else(|| panic!("no package {pkg}"));
    let set = |names: &[&'static str]| names.iter().copied().collect::<BTreeSet<&str>>();

    // Each crate's scimsync dependencies, exactly: a new crate, or a new edge between crates,
    // is a decision ARCHITECTURE.md records before this list learns it.
    let rules: BTreeMap<&str, BTreeSet<&str>> = [
        ("scimsync-model", set(&[])),
        ("scimsync-scim", set(&["scimsync-model"])),
        (
            "scimsync-directory",
            set(&["scimsync-model", "scimsync-scim"]),
        ),
        ("scimsync-plan", set(&["scimsync-model"])),
        (
            "scimsync-executor",
            set(&["scimsync-model", "scimsync-scim"]),
        ),
        ("scimsync-store", set(&["scimsync-model"])),
        (
            "scimsync-engine",
            set(&[
                "scimsync-model",
                "scimsync-scim",
                "scimsync-directory",
                "scimsync-plan",
                "scimsync-executor",
                "scimsync-store",
            ]),
        ),
        // The binary: a front end of the engine. The planner and the executor are reached
        // through it, never directly; the directory (check's findings), the SCIM profile (the
        // plan's rate arithmetic), the store (status, events) and the model are read for output.
        (
            "scimsync",
            set(&[
                "scimsync-engine",
                "scimsync-model",
                "scimsync-scim",
                "scimsync-directory",
                "scimsync-store",
            ]),
        ),
        ("scimsync-emulator", set(&[])),
        // The benchmarks drive the engine (bench-plan), the real binary (bench-provision,
        // bench-incremental) and the executor alone (bench_groups), against the emulator.
        (
            "scimsync-bench",
            set(&[
                "scimsync-engine",
                "scimsync-model",
                "scimsync-scim",
                "scimsync-directory",
                "scimsync-plan",
                "scimsync-executor",
                "scimsync-store",
                "scimsync-emulator",
            ]),
        ),
        // Tests only (dev-dependencies).
        ("scimsync-tests", set(&[])),
    ]
    .into_iter()
    .collect();
    let packages: BTreeSet<&str> = ws.keys().map(String::as_str).collect();
    let ruled: BTreeSet<&str> = rules.keys().copied().collect();
    assert_eq!(packages, ruled, "every crate has a rule here");
    for (pkg, allowed) in &rules {
        assert_eq!(
            &internal(deps(pkg)),
            allowed,
            "{pkg}'s scimsync dependencies"
        );
    }

    // The planner and the wire types do no IO.
    for io in ["tokio", "reqwest", "rusqlite", "rand"] {
        assert!(
            !deps("scimsync-plan").contains(io),
            "plan must not depend on {io}"
        );
    }
    for io in ["tokio", "reqwest", "rusqlite"] {
        assert!(
            !deps("scimsync-scim").contains(io),
            "scim must not depend on {io}"
        );
    }
    // Only the store knows SQL; only the executor knows reqwest.
    for (pkg, deps) in &ws {
        if pkg != "scimsync-store" {
            assert!(!deps.contains("rusqlite"), "{pkg} must not use rusqlite");
        }
        if pkg != "scimsync-executor" {
            assert!(!deps.contains("reqwest"), "{pkg} must not use reqwest");
        }
    }
    // anyhow only in binaries: the libraries' errors are thiserror enums.
    for pkg in [
        "scimsync-model",
        "scimsync-scim",
        "scimsync-directory",
        "scimsync-plan",
        "scimsync-executor",
        "scimsync-store",
        "scimsync-engine",
    ] {
        assert!(
            !deps(pkg).contains("anyhow"),
            "{pkg} must use thiserror, not anyhow"
        );
    }
    // The engine is no front end: no argument parsing, terminal, HTTP server or metrics
    // exporter of its own.
    for front in [
        "clap",
        "indicatif",
        "axum",
        "metrics",
        "metrics-exporter-prometheus",
        "tracing-subscriber",
        "whoami",
    ] {
        assert!(
            !deps("scimsync-engine").contains(front),
            "the engine must not depend on {front}: that is a front end's"
        );
    }
}
