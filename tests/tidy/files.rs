//! No runtime file committed: a state database (and its WAL, shared memory and the cycle
//! lock beside it), a profile or a core dump is what a run leaves, never part of the source.

/// What a run leaves behind, by file name. `Cargo.lock` and npm's `package-lock.json` are
/// sources (they pin dependencies).
fn is_runtime_file(name: &str) -> bool {
    let runtime_suffixes = [
        ".db",
        ".db-wal",
        ".db-shm",
        ".db-journal",
        ".sqlite",
        ".sqlite3",
        ".lock",
        ".profraw",
        ".perf.data",
    ];
    let sources = ["Cargo.lock"];
    (runtime_suffixes.iter().any(|s| name.ends_with(s)) && !sources.contains(&name))
        || name == "perf.data"
        || name == "core"
        || name.starts_with("core.") && name[5..].bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn no_runtime_file_is_committed() {
    let committed: Vec<String> = super::tracked_files()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| is_runtime_file(&n.to_string_lossy()))
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        committed.is_empty(),
        "runtime files are committed (delete them, and let .gitignore keep them out): {committed:?}"
    );
}

#[test]
fn runtime_files_are_told_from_sources() {
    for name in [
        "scimsync.db",
        "state.db-wal",
        "scimsync.lock",
        "perf.data",
        "core.1234",
    ] {
        assert!(is_runtime_file(name), "{name}");
    }
    for name in [
        "Cargo.lock",
        "package-lock.json",
        "core.rs",
        "db.rs",
        "lock.rs",
    ] {
        assert!(!is_runtime_file(name), "{name}");
    }
}
