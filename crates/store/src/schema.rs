//! Versioned migrations. `PRAGMA user_version` holds how many of `MIGRATIONS` have been applied;
//! opening applies the rest in order, each in its own transaction together with its version
//! bump, so a crash mid-migration leaves the previous version intact.
//!
//! Never edit a published migration: append a new one.

use crate::StoreError;
use crate::error::SqlContext;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// The schema version this binary writes: the number of migrations it knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    -- WITHOUT ROWID: the table is stored in source_id order, so loading every link ordered by
    -- source_id is one sequential scan rather than an index walk with a lookup per row.
    CREATE TABLE links (
        source_id  TEXT PRIMARY KEY NOT NULL,
        target_id  TEXT NOT NULL UNIQUE,
        user_name  TEXT NOT NULL,
        active     INTEGER NOT NULL,
        attrs      TEXT NOT NULL,   -- JSON of scimsync_model::Attrs
        hash       TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        initiated_by TEXT NOT NULL,
        full         INTEGER NOT NULL,
        status       TEXT NOT NULL,
        summary      TEXT NOT NULL DEFAULT 'null',  -- JSON
        error        TEXT,
        exit_code    INTEGER
    );
    CREATE INDEX runs_status ON runs(status);

    -- The audit log. `json` is the whole event; the other columns exist to filter on.
    -- `user_name` is folded to lower case (Unicode-aware, in Rust) so `--user` matches
    -- case-insensitively through a plain index; the original spelling is in `json`.
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY,
        ts         TEXT NOT NULL,
        event_type TEXT NOT NULL,
        success    INTEGER NOT NULL,
        run_id     INTEGER,
        source_id  TEXT,
        user_name  TEXT,
        json       TEXT NOT NULL
    );
    CREATE INDEX events_ts ON events(ts);
    CREATE INDEX events_event_type ON events(event_type);
    CREATE INDEX events_user_name ON events(user_name);
    CREATE INDEX events_run_id ON events(run_id);

    -- Write intents: a row is opened before a write is sent and completed after its response.
    CREATE TABLE journal (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id       INTEGER NOT NULL REFERENCES runs(id),
        kind         TEXT NOT NULL,
        source_id    TEXT NOT NULL,
        user_name    TEXT NOT NULL,
        op           TEXT NOT NULL,  -- JSON of scimsync_model::Op
        created_at   TEXT NOT NULL,
        completed_at TEXT,
        outcome      TEXT
    );
    CREATE INDEX journal_open ON journal(id) WHERE completed_at IS NULL;
    CREATE INDEX journal_run_id ON journal(run_id);

    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    );
    "#,
    // 2: group links (directory group → target group, with the members last seen there).
    r#"
    CREATE TABLE group_links (
        source_id    TEXT PRIMARY KEY NOT NULL,
        target_id    TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        members      TEXT NOT NULL,  -- JSON array of target user ids, sorted
        updated_at   TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 3: a covering index for the link heads. An incremental cycle reads every link but not its
    // attributes; the table's rows carry them (most of its bytes), the index's do not, so the
    // scan in source_id order reads about a sixth of the pages.
    r#"
    CREATE INDEX links_heads ON links(source_id, target_id, user_name, active, hash);
    "#,
    // 4: the stamp of the directory record a link was last proved equal to (a digest of the
    // record's bytes, see scimsync_model::RecordStamp), so an incremental cycle skips parsing
    // and mapping a record whose bytes have not changed. NULL until a cycle proves it; every
    // upsert of the link (`INSERT OR REPLACE`) writes it NULL again. The heads' covering index
    // carries it, as the heads scan reads it.
    r#"
    ALTER TABLE links ADD COLUMN record BLOB;
    DROP INDEX links_heads;
    CREATE INDEX links_heads ON links(source_id, target_id, user_name, active, hash, record);
    "#,
    // 5 (issue 18): what the target declared of itself (its /ServiceProviderConfig, /Schemas
    // and /ResourceTypes, as one JSON document), with the run that read it (NULL: `scimsync
    // check`). The newest row is what incremental cycles use instead of asking again; older
    // rows show when the target's schema changed.
    r#"
    CREATE TABLE target_discovery (
        id       INTEGER PRIMARY KEY,
        run_id   INTEGER,
        read_at  TEXT NOT NULL,
        document TEXT NOT NULL
    );
    "#,
    // 6 (issue 16): the deletion guard's held set and its approval: the losses
    // (access-removing changes) the last held cycle held, and those an approval covers, each by its identity. The
    // approval used to be a flag in `meta` that any later cycle honoured; it is dropped here so
    // a standing approval from an older scimsync is never applied to a set nobody saw.
    r#"
    CREATE TABLE guard_sets (
        name   TEXT PRIMARY KEY NOT NULL,  -- 'held' | 'approved'
        header TEXT NOT NULL               -- JSON: when, why, by whom, digest, expiry
    ) WITHOUT ROWID;
    CREATE TABLE guard_losses (
        name     TEXT NOT NULL REFERENCES guard_sets(name) ON DELETE CASCADE,
        seq      INTEGER NOT NULL,
        loss_key TEXT NOT NULL,            -- scimsync_model::LossId::key
        loss     TEXT NOT NULL,            -- JSON of scimsync_model::Loss
        PRIMARY KEY (name, seq)
    ) WITHOUT ROWID;
    CREATE INDEX guard_losses_key ON guard_losses(name, loss_key);
    DELETE FROM meta WHERE key IN ('deletes_approved', 'held_deprovisions');
    "#,
    // 7 (issue 17): uncertain users and groups (a write whose outcome is unknown: the next cycle reads
    // them before planning them), and the request each journal intent was about to send, so
    // an intent a crash or shutdown leaves open says what may have reached the target.
    r#"
    CREATE TABLE uncertain (
        kind      TEXT NOT NULL,   -- 'user' | 'group'
        source_id TEXT NOT NULL,
        target_id TEXT,            -- NULL for a create: looked up by name instead
        name      TEXT NOT NULL,   -- userName or displayName
        op        TEXT NOT NULL,   -- the kind of the write (scimsync_model::OpKind)
        reason    TEXT NOT NULL,
        run_id    INTEGER,
        since     TEXT NOT NULL,
        PRIMARY KEY (kind, source_id)
    ) WITHOUT ROWID;
    ALTER TABLE journal ADD COLUMN request TEXT;
    "#,
    // 8 (issue 21): team assignments scimsync made (Miro's REST API): a directory group's user group
    // assigned to a team. Only these are ever undone. No foreign key to group_links: a group
    // link is rewritten whole on every change; removing one removes these in the same call.
    r#"
    CREATE TABLE team_links (
        group_id   TEXT NOT NULL,      -- the directory group's source id
        team_id    TEXT NOT NULL,
        team_name  TEXT NOT NULL,      -- the name [teams] gave when it was made
        updated_at TEXT NOT NULL,
        PRIMARY KEY (group_id, team_id)
    ) WITHOUT ROWID;
    "#,
    // 9 (issue 20): every row belongs to an integration, and what `meta` held as strings has
    // typed homes. An integration is a small integer (one byte a row) naming a row of
    // `integrations`; everything already stored becomes integration 1, 'default'. Tables keyed
    // by a natural key are rebuilt with the integration leading their key (SQLite cannot
    // change a primary key in place); the others gain a column. The meta keys move: scalars
    // into one row of `integration_state`, per-user and per-group keys into `marks`, read in
    // bulk; `meta` is dropped, so nothing can write a string key again.
    r#"
    CREATE TABLE integrations (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    INSERT INTO integrations (id, name) VALUES (1, 'default');

    CREATE TABLE links_v9 (
        integration INTEGER NOT NULL REFERENCES integrations(id),
        source_id   TEXT NOT NULL,
        target_id   TEXT NOT NULL,
        user_name   TEXT NOT NULL,
        active      INTEGER NOT NULL,
        attrs       TEXT NOT NULL,
        hash        TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        record      BLOB,
        PRIMARY KEY (integration, source_id),
        UNIQUE (integration, target_id)
    ) WITHOUT ROWID;
    INSERT INTO links_v9 (integration, source_id, target_id, user_name, active, attrs, hash,
                          updated_at, record)
        SELECT 1, source_id, target_id, user_name, active, attrs, hash, updated_at, record
        FROM links ORDER BY source_id;
    DROP TABLE links;
    ALTER TABLE links_v9 RENAME TO links;
    CREATE INDEX links_heads
        ON links(integration, source_id, target_id, user_name, active, hash, record);

    CREATE TABLE group_links_v9 (
        integration  INTEGER NOT NULL REFERENCES integrations(id),
        source_id    TEXT NOT NULL,
        target_id    TEXT NOT NULL,
        display_name TEXT NOT NULL,
        members      TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        PRIMARY KEY (integration, source_id),
        UNIQUE (integration, target_id)
    ) WITHOUT ROWID;
    INSERT INTO group_links_v9
        SELECT 1, source_id, target_id, display_name, members, updated_at FROM group_links;
    DROP TABLE group_links;
    ALTER TABLE group_links_v9 RENAME TO group_links;

    CREATE TABLE team_links_v9 (
        integration INTEGER NOT NULL REFERENCES integrations(id),
        group_id    TEXT NOT NULL,
        team_id     TEXT NOT NULL,
        team_name   TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (integration, group_id, team_id)
    ) WITHOUT ROWID;
    INSERT INTO team_links_v9 SELECT 1, group_id, team_id, team_name, updated_at FROM team_links;
    DROP TABLE team_links;
    ALTER TABLE team_links_v9 RENAME TO team_links;

    CREATE TABLE uncertain_v9 (
        integration INTEGER NOT NULL REFERENCES integrations(id),
        kind        TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        target_id   TEXT,
        name        TEXT NOT NULL,
        op          TEXT NOT NULL,
        reason      TEXT NOT NULL,
        run_id      INTEGER,
        since       TEXT NOT NULL,
        PRIMARY KEY (integration, kind, source_id)
    ) WITHOUT ROWID;
    INSERT INTO uncertain_v9
        SELECT 1, kind, source_id, target_id, name, op, reason, run_id, since FROM uncertain;
    DROP TABLE uncertain;
    ALTER TABLE uncertain_v9 RENAME TO uncertain;

    CREATE TABLE guard_sets_v9 (
        integration INTEGER NOT NULL REFERENCES integrations(id),
        name        TEXT NOT NULL,
        header      TEXT NOT NULL,
        PRIMARY KEY (integration, name)
    ) WITHOUT ROWID;
    CREATE TABLE guard_losses_v9 (
        integration INTEGER NOT NULL,
        name        TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        loss_key    TEXT NOT NULL,
        loss        TEXT NOT NULL,
        PRIMARY KEY (integration, name, seq),
        FOREIGN KEY (integration, name) REFERENCES guard_sets_v9(integration, name)
            ON DELETE CASCADE
    ) WITHOUT ROWID;
    INSERT INTO guard_sets_v9 SELECT 1, name, header FROM guard_sets;
    INSERT INTO guard_losses_v9 SELECT 1, name, seq, loss_key, loss FROM guard_losses;
    DROP TABLE guard_losses;
    DROP TABLE guard_sets;
    ALTER TABLE guard_sets_v9 RENAME TO guard_sets;
    ALTER TABLE guard_losses_v9 RENAME TO guard_losses;
    CREATE INDEX guard_losses_key ON guard_losses(integration, name, loss_key);

    -- Tables keyed by a row id keep it (runs, events and intents are numbered across
    -- integrations) and gain the integration.
    ALTER TABLE runs ADD COLUMN integration INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE events ADD COLUMN integration INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE journal ADD COLUMN integration INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE target_discovery ADD COLUMN integration INTEGER NOT NULL DEFAULT 1;

    -- One row per integration: what the cycles keep between runs. Every column is NULL
    -- until first written.
    CREATE TABLE integration_state (
        integration        INTEGER PRIMARY KEY REFERENCES integrations(id),
        target             TEXT,  -- the target the integration was activated against
        config_hash        TEXT,  -- of the sync.toml the last cycle ran with
        token_salt         TEXT,  -- salt of the token fingerprint (not a secret)
        token_fingerprint  TEXT,  -- salted digest of the token, never the token
        group_model        TEXT,  -- 'team' | 'user_group'
        last_full_at       TEXT,
        last_good_users    TEXT,  -- user count of the last snapshot the guard accepted
        refused_attributes TEXT,  -- JSON: path -> the target's words
        recent_requests    TEXT,  -- JSON: bucket -> [Unix ms]
        quarantine_until   TEXT,
        quarantine_reason  TEXT,
        quarantine_level   INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO integration_state (integration, target, config_hash, token_salt,
        token_fingerprint, group_model, last_full_at, last_good_users, refused_attributes,
        recent_requests, quarantine_until, quarantine_reason, quarantine_level)
    SELECT 1,
        (SELECT value FROM meta WHERE key = 'integration'),
        (SELECT value FROM meta WHERE key = 'config_hash'),
        (SELECT value FROM meta WHERE key = 'token_salt'),
        (SELECT value FROM meta WHERE key = 'token_fingerprint'),
        (SELECT value FROM meta WHERE key = 'group_model'),
        (SELECT value FROM meta WHERE key = 'last_full_at'),
        (SELECT value FROM meta WHERE key = 'last_good_snapshot_users'),
        (SELECT value FROM meta WHERE key = 'refused_attributes'),
        (SELECT value FROM meta WHERE key = 'recent_requests'),
        (SELECT value FROM meta WHERE key = 'quarantine_until'),
        (SELECT value FROM meta WHERE key = 'quarantine_reason'),
        coalesce(CAST((SELECT value FROM meta WHERE key = 'quarantine_level') AS INTEGER), 0);

    -- Per-user and per-group facts, one row each: `kind` says which (scimsync_store::Mark),
    -- `key` is a source id or a userName folded to lower case, `since` when first marked.
    CREATE TABLE marks (
        integration INTEGER NOT NULL REFERENCES integrations(id),
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        since       TEXT NOT NULL,
        PRIMARY KEY (integration, kind, key)
    ) WITHOUT ROWID;
    INSERT INTO marks (integration, kind, key, since)
        SELECT 1, substr(key, 1, instr(key, ':') - 1), substr(key, instr(key, ':') + 1), value
        FROM meta
        WHERE substr(key, 1, instr(key, ':') - 1)
              IN ('deactivated_at', 'target_guest', 'missing_team', 'absent_inactive');
    DROP TABLE meta;
    "#,
];

/// Brings the database up to `SCHEMA_VERSION`, or refuses one that is newer.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // Fast path without taking the write lock, so readers (`status`, `events`) opening the
    // database never wait for a daemon's write transaction.
    let version = user_version(conn, path)?;
    check_not_newer(version, path)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let target = index as i64 + 1;
        // IMMEDIATE takes the write lock up front, and the version is read again under it:
        // two processes opening a fresh database at once apply each migration exactly once.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(path, "begin migration")?;
        let current = user_version(&tx, path)?;
        check_not_newer(current, path)?;
        if current >= target {
            continue;
        }
        tx.execute_batch(sql).during(path, "apply migration")?;
        tx.pragma_update(None, "user_version", target)
            .during(path, "record schema version")?;
        tx.commit().during(path, "commit migration")?;
    }
    Ok(())
}

pub(crate) fn user_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .during(path, "read schema version")
}

fn check_not_newer(found: i64, path: &Path) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}
