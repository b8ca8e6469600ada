//! The SQLite backend: the conformance suite on real database files, and what only SQLite has
//! (file modes, write-ahead logging, its schema migrations, a scale check).
#![allow(clippy::unwrap_used)]

mod conformance;

use conformance::link;

use scimsync_model::{
    HeldSet, InitiatedBy, Link, Loss, LossId, LossKind, Op, RunId, ScimId, SourceId,
};
use scimsync_store::{EventQuery, Mark, SCHEMA_VERSION, Setting, SqliteStore, Store, StoreError};
use std::path::{Path, PathBuf};

/// A fresh database file in its own directory, removed with the harness.
struct SqliteHarness {
    dir: tempfile::TempDir,
}

impl SqliteHarness {
    fn new() -> Self {
        SqliteHarness {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl conformance::Harness for SqliteHarness {
    fn open(&self) -> Store {
        Store::open(&db(&self.dir)).unwrap()
    }
    fn open_as(&self, name: &str) -> Store {
        Store::from_backend(SqliteStore::open_integration(&db(&self.dir), name).unwrap())
    }
}

conformance::suite!(SqliteHarness::new());

/// The same behaviours on a private in-memory database (dry runs, unit tests), where a
/// behaviour makes sense without a file: one connection, so no reopening and no integrations.
mod in_memory {
    use super::*;

    #[test]
    fn links_runs_and_settings_work_without_a_file() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .upsert_link(&link("u1", "t1", "ann@example.com"))
            .unwrap();
        let run = store.begin_run(InitiatedBy::Manual, false).unwrap();
        store.mark(Mark::Deactivated, "u1").unwrap();
        store
            .set_setting(Setting::LastFullAt, Some("2025-01-01T00:00:00.000Z"))
            .unwrap();
        assert_eq!(store.link_count().unwrap(), 1);
        assert_eq!(store.last_run().unwrap().unwrap().id, run);
        assert_eq!(store.marks(Mark::Deactivated).unwrap().len(), 1);
        // Nothing else can run a cycle on a private database: the lock is always free.
        let first = store.lock_cycles().unwrap();
        drop(store.lock_cycles().unwrap());
        drop(first);
    }
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state.db")
}

fn journal_mode(path: &Path) -> String {
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap()
}

/// The store holds every managed account and the audit log: the database and its WAL and
/// shared-memory files are readable by their owner only, whatever the umask.
#[cfg(unix)]
#[test]
fn the_database_and_its_wal_files_are_created_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mode = |suffix: &str| {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        std::fs::metadata(PathBuf::from(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    {
        let mut store = Store::open(&path).unwrap();
        store
            .upsert_link(&link("u1", "t1", "ann@example.com"))
            .unwrap();
        // The -wal and -shm files exist while a connection is open.
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(mode(suffix), 0o600, "state.db{suffix}");
        }
    }
    // A database an older scimsync left world-readable is tightened when opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = Store::open(&path).unwrap();
    assert_eq!(mode(""), 0o600);
    assert_eq!(mode("-wal"), 0o600);
}

#[test]
fn a_database_from_a_newer_scimsync_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(Store::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);

    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found, supported, .. }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn an_unopenable_path_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("state.db");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_reader_sees_committed_data_while_a_writer_holds_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut daemon = Store::open(&path).unwrap();
    assert_eq!(journal_mode(&path), "wal");
    daemon
        .upsert_link(&link("u1", "t1", "ann@example.com"))
        .unwrap();
    daemon
        .set_setting(Setting::LastGoodUsers, Some("0"))
        .unwrap();

    // A second process writing, mid-transaction.
    let mut writer = rusqlite::Connection::open(&path).unwrap();
    let tx = writer
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("UPDATE integration_state SET last_good_users = '5'", [])
        .unwrap();
    tx.execute("DELETE FROM links", []).unwrap();

    // `scimsync status` opening and reading meanwhile: no SQLITE_BUSY, committed state only.
    let status = Store::open(&path).unwrap();
    assert_eq!(
        status.setting(Setting::LastGoodUsers).unwrap().as_deref(),
        Some("0")
    );
    assert_eq!(status.link_count().unwrap(), 1);
    assert_eq!(status.links().unwrap().len(), 1);
    assert!(status.events(&EventQuery::default()).unwrap().is_empty());
    assert!(status.runs(5).unwrap().is_empty());

    tx.commit().unwrap();
    assert_eq!(
        status.setting(Setting::LastGoodUsers).unwrap().as_deref(),
        Some("5")
    );
    assert_eq!(status.link_count().unwrap(), 0);
}

/// Scale check, run by hand: `cargo test --release -p scimsync-store -- --ignored --nocapture`.
#[test]
#[ignore = "scale check; run in release by hand"]
fn a_million_links() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&db(&dir)).unwrap();
    // Source ids in a scrambled order and random-looking target ids, as a directory and a
    // target would hand them over.
    const N: u64 = 1_000_000;
    let links: Vec<Link> = (0..N)
        .map(|i| {
            let s = i * 7_919 % N;
            let t = u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            link(
                &format!("u{s:07}"),
                &format!("{t:032x}"),
                &format!("user{s}@example.com"),
            )
        })
        .collect();
    let started = std::time::Instant::now();
    store.upsert_links(&links).unwrap();
    let written = started.elapsed();
    let started = std::time::Instant::now();
    let read = store.links().unwrap();
    let loaded = started.elapsed();
    assert_eq!(read.len(), links.len());
    let started = std::time::Instant::now();
    store.upsert_links(&links).unwrap();
    let rewritten = started.elapsed();
    eprintln!("1,000,000 links: upsert {written:?}, load {loaded:?}, upsert again {rewritten:?}");
}

/// A store written by scimsync at schema 8 (the last before integrations and typed state),
/// with a row in every table and every kind of meta key, as the old code wrote them.
fn schema_8_store(path: &Path) -> (Vec<Link>, Loss, scimsync_model::RecordStamp) {
    use rusqlite::params;
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.execute_batch(include_str!("fixtures/schema8.sql"))
        .unwrap();
    let links = vec![
        link("u1", "t1", "ann@example.com"),
        link("u2", "t2", "bob@example.com"),
    ];
    let stamp = scimsync_model::RecordStamp {
        key: scimsync_model::RecordContext::new("old mapping").key(b"{\"id\":\"u1\"}"),
        admin: false,
    };
    for (i, l) in links.iter().enumerate() {
        raw.execute(
            "INSERT OR REPLACE INTO links \
             (source_id, target_id, user_name, active, attrs, hash, updated_at, record) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, '2026-11-30T10:00:00.000Z', ?7)",
            params![
                l.source_id.as_str(),
                l.target_id.as_str(),
                l.user_name,
                l.active,
                serde_json::to_string(&l.attrs).unwrap(),
                l.hash,
                (i == 0).then(|| stamp.to_bytes().to_vec()),
            ],
        )
        .unwrap();
    }
    raw.execute_batch(
        "INSERT INTO group_links VALUES ('g1', 'ug1', 'Eng', '[\"t1\"]', '2026-11-30T10:00:00.000Z');
         INSERT INTO team_links VALUES ('g1', 'team1', 'Eng', '2026-11-30T10:00:00.000Z');
         INSERT INTO runs (id, started_at, initiated_by, full, status)
             VALUES (7, '2026-11-30T10:00:00.000Z', 'schedule', 0, 'held');
         INSERT INTO target_discovery (run_id, read_at, document)
             VALUES (7, '2026-11-30T10:00:00.000Z', '{\"old\":true}');
         INSERT INTO uncertain VALUES ('user', 'u2', 't2', 'bob@example.com', 'update',
             'connection reset', 7, '2026-11-30T10:00:02.000Z');",
    )
    .unwrap();
    let event = scimsync_model::Event {
        ts: "2026-11-30T10:00:01.000Z".into(),
        event_type: scimsync_model::EventType::SyncCycleEnd,
        success: true,
        run_id: Some(RunId(7)),
        initiated_by: Some(InitiatedBy::Schedule),
        integration: "miro@miro.com".into(),
        resource: None,
        changes: Default::default(),
        http: None,
        error: None,
        detail: serde_json::Value::Null,
    };
    raw.execute(
        "INSERT INTO events (ts, event_type, success, run_id, json) \
         VALUES (?1, ?2, 1, 7, ?3)",
        params![
            event.ts,
            event.event_type.as_str(),
            serde_json::to_string(&event).unwrap()
        ],
    )
    .unwrap();
    let op = Op::Delete {
        source_id: SourceId::new("u2"),
        target_id: ScimId::new("t2"),
        user_name: "bob@example.com".into(),
        reason: scimsync_model::DeprovisionReason::Unassigned,
    };
    raw.execute(
        "INSERT INTO journal (run_id, kind, source_id, user_name, op, created_at, request) \
         VALUES (7, 'delete', 'u2', 'bob@example.com', ?1, '2026-11-30T10:00:03.000Z', \
         'DELETE /Users/t2')",
        [serde_json::to_string(&op).unwrap()],
    )
    .unwrap();
    let loss = Loss {
        id: LossId {
            kind: LossKind::Delete,
            source_id: SourceId::new("u2"),
            group: None,
            target_id: Some(ScimId::new("t2")),
        },
        name: "bob@example.com".into(),
        group_name: None,
        detail: "left the directory".into(),
    };
    raw.execute(
        "INSERT INTO guard_sets VALUES ('held', ?1)",
        [r#"{"run_id":7,"held_at":"2026-11-30T10:00:04.000Z","reasons":["more than 10%"]}"#],
    )
    .unwrap();
    raw.execute(
        "INSERT INTO guard_losses VALUES ('held', 0, ?1, ?2)",
        params![loss.id.key(), serde_json::to_string(&loss).unwrap()],
    )
    .unwrap();
    for (key, value) in [
        ("integration", "miro@miro.com"),
        ("config_hash", "c0ffee"),
        ("token_salt", "5a17"),
        ("token_fingerprint", "f1n9"),
        ("group_model", "team"),
        ("last_full_at", "2026-11-29T00:00:00.000Z"),
        ("last_good_snapshot_users", "2"),
        ("refused_attributes", r#"{"title":"mutability"}"#),
        ("recent_requests", r#"{"users_post":[1]}"#),
        ("quarantine_until", "2026-11-30T11:00:00.000Z"),
        ("quarantine_reason", "the target refused access: 401"),
        ("quarantine_level", "3"),
        ("deactivated_at:u1", "2026-11-01T00:00:00.000Z"),
        ("deactivated_at:id:with:colons", "2026-11-02T00:00:00.000Z"),
        ("target_guest:guest@example.com", "2026-11-03T00:00:00.000Z"),
        ("missing_team:g9", "2026-11-04T00:00:00.000Z"),
        (
            "absent_inactive:zoë@example.com",
            "2026-11-05T00:00:00.000Z",
        ),
        ("something_unknown", "dropped"),
    ] {
        raw.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            [key, value],
        )
        .unwrap();
    }
    (links, loss, stamp)
}

#[test]
fn a_schema_8_store_migrates_in_place_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let (links, loss, stamp) = schema_8_store(&path);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    // Links, with their record stamps.
    assert_eq!(store.links().unwrap(), links);
    let heads = store.link_heads().unwrap();
    assert_eq!(heads.stamps, vec![Some(stamp), None]);
    assert_eq!(store.group_links().unwrap().len(), 1);
    assert_eq!(store.group_links().unwrap()[0].members, [ScimId::new("t1")]);
    assert_eq!(store.team_links().unwrap().len(), 1);
    // Runs, events, intents, discovery, uncertain, the held set.
    assert_eq!(store.last_run().unwrap().unwrap().id, RunId(7));
    assert_eq!(store.events(&EventQuery::default()).unwrap().len(), 1);
    let intents = store.open_intents().unwrap();
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0].request.as_deref(), Some("DELETE /Users/t2"));
    assert_eq!(
        store.discovery().unwrap().unwrap().document,
        r#"{"old":true}"#
    );
    assert_eq!(
        store.uncertain().unwrap()[0].mark.reason,
        "connection reset"
    );
    let hold: HeldSet = store.hold().unwrap().unwrap();
    assert_eq!(hold.run_id, Some(RunId(7)));
    assert_eq!(hold.losses, vec![loss]);
    // Every meta key in its typed home.
    let setting = |s| store.setting(s).unwrap();
    assert_eq!(setting(Setting::Target).as_deref(), Some("miro@miro.com"));
    assert_eq!(setting(Setting::ConfigHash).as_deref(), Some("c0ffee"));
    assert_eq!(setting(Setting::TokenSalt).as_deref(), Some("5a17"));
    assert_eq!(setting(Setting::TokenFingerprint).as_deref(), Some("f1n9"));
    assert_eq!(setting(Setting::GroupModel).as_deref(), Some("team"));
    assert_eq!(
        setting(Setting::LastFullAt).as_deref(),
        Some("2026-11-29T00:00:00.000Z")
    );
    assert_eq!(setting(Setting::LastGoodUsers).as_deref(), Some("2"));
    assert_eq!(
        setting(Setting::RefusedAttributes).as_deref(),
        Some(r#"{"title":"mutability"}"#)
    );
    assert_eq!(
        setting(Setting::RecentRequests).as_deref(),
        Some(r#"{"users_post":[1]}"#)
    );
    let quarantine = store.quarantine().unwrap().unwrap();
    assert_eq!(quarantine.level, 3);
    assert_eq!(quarantine.until, "2026-11-30T11:00:00.000Z");
    assert_eq!(quarantine.reason, "the target refused access: 401");
    let deactivated = store.marks(Mark::Deactivated).unwrap();
    assert_eq!(deactivated.len(), 2);
    assert_eq!(deactivated["u1"], "2026-11-01T00:00:00.000Z");
    assert_eq!(deactivated["id:with:colons"], "2026-11-02T00:00:00.000Z");
    assert!(
        store
            .marks(Mark::TargetGuest)
            .unwrap()
            .contains_key(&Mark::TargetGuest.key("Guest@Example.com"))
    );
    assert!(store.marks(Mark::MissingTeam).unwrap().contains_key("g9"));
    assert!(
        store
            .marks(Mark::AbsentInactive)
            .unwrap()
            .contains_key(&Mark::AbsentInactive.key("Zoë@example.com"))
    );
    drop(store);

    // The old string table is gone; opening again changes nothing.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let meta: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'meta'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(meta, 0);
    drop(raw);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.link_count().unwrap(), 2);
    // And the migrated store takes writes: an upsert of a migrated link is an update.
    let mut moved = links[0].clone();
    moved.target_id = ScimId::new("t2");
    store.upsert_link(&moved).unwrap();
    assert_eq!(store.links().unwrap(), vec![moved]);
    let _ = store.begin_run(InitiatedBy::Manual, true).unwrap();
    assert_eq!(store.runs(5).unwrap().len(), 2);
}

/// The cycle lock is a file beside the database, so a cycle's lock dies with its process.
#[test]
fn the_cycle_lock_is_a_file_beside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db(&dir)).unwrap();
    let held = scimsync_store::Backend::lock_cycles(&store).unwrap();
    let lock = dir.path().join("state.lock");
    assert!(lock.exists());
    let file = std::fs::File::options().write(true).open(&lock).unwrap();
    assert!(matches!(
        file.try_lock(),
        Err(std::fs::TryLockError::WouldBlock)
    ));
    drop(held);
    file.try_lock().unwrap();
    // Another holder of the file (another process) shuts the store out.
    let err = scimsync_store::Backend::lock_cycles(&store).unwrap_err();
    assert!(err.to_string().contains("state.lock"), "{err}");
}
