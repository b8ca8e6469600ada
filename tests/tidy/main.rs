//! A tidy test: the Architecture Invariants of ARCHITECTURE.md, checked against `cargo metadata`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeSet;

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

#[test]
fn crate_dependencies_follow_the_architecture() {
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
    let internal = |deps: &BTreeSet<String>| -> BTreeSet<String> {
        deps.iter()
            .filter(|d| d.starts_with("scimsync"))
            .cloned()
            .collect()
    };

    // model depends on no other scimsync crate.
    assert!(internal(&normal_deps(&meta, "scimsync-model")).is_empty());
    // plan depends on model alone, and on nothing that does IO.
    let plan = normal_deps(&meta, "scimsync-plan");
    assert_eq!(
        internal(&plan),
        BTreeSet::from(["scimsync-model".to_owned()])
    );
    for io in ["tokio", "reqwest", "rusqlite", "rand"] {
        assert!(!plan.contains(io), "plan must not depend on {io}");
    }
    // scim is wire types and rules: no IO.
    let scim = normal_deps(&meta, "scimsync-scim");
    for io in ["tokio", "reqwest", "rusqlite"] {
        assert!(!scim.contains(io), "scim must not depend on {io}");
    }
    // Only the store knows SQL; only the executor knows reqwest; the emulator is never shipped
    // inside the binary.
    for pkg in [
        "scimsync-model",
        "scimsync-scim",
        "scimsync-directory",
        "scimsync-plan",
        "scimsync-executor",
        "scimsync",
    ] {
        assert!(
            !normal_deps(&meta, pkg).contains("rusqlite"),
            "{pkg} must not use rusqlite"
        );
    }
    for pkg in [
        "scimsync-model",
        "scimsync-scim",
        "scimsync-directory",
        "scimsync-plan",
        "scimsync-store",
        "scimsync",
    ] {
        assert!(
            !normal_deps(&meta, pkg).contains("reqwest"),
            "{pkg} must not use reqwest"
        );
    }
    assert!(!normal_deps(&meta, "scimsync").contains("scimsync-emulator"));
    // anyhow only in the binary (and the emulator's binary).
    for pkg in [
        "scimsync-model",
        "scimsync-scim",
        "scimsync-directory",
        "scimsync-plan",
        "scimsync-executor",
        "scimsync-store",
    ] {
        assert!(
            !normal_deps(&meta, pkg).contains("anyhow"),
            "{pkg} must use thiserror, not anyhow"
        );
    }
}
