//! The embedded backend: one SQLite file in WAL mode. The operations live in the modules named
//! after the tables they keep (`links`, `runs`, …) as inherent methods of [`SqliteStore`];
//! `backend.rs` exposes them through [`crate::Backend`].

use crate::error::SqlContext;
use crate::{BUSY_TIMEOUT, CycleLock, DEFAULT_INTEGRATION, StoreError, schema};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Up to 256 MiB of page cache (allocated only as used, `PRAGMA cache_size` in KiB, negated)
/// keeps a million links' indexes in memory during bulk upserts; a smaller cache spills to the
/// WAL mid-transaction.
pub(crate) const CACHE_KIB: i64 = -262_144;

/// A SQLite state store bound to one integration. One connection; open one per thread or
/// process.
pub struct SqliteStore {
    pub(crate) conn: Connection,
    /// For error messages; `:memory:` for in-memory stores.
    pub(crate) path: PathBuf,
    /// The `integrations` row every statement is scoped to.
    pub(crate) integration: i64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("integration", &self.integration)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, switches it to WAL, brings its schema
    /// up to date and binds the default integration. Refuses a database written by a newer
    /// scimsync.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_integration(path, DEFAULT_INTEGRATION)
    }

    /// [`SqliteStore::open`] bound to the integration named `integration` (created on first
    /// use): its rows are the only ones this value reads or writes.
    pub fn open_integration(path: &Path, integration: &str) -> Result<SqliteStore, StoreError> {
        restrict_permissions(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        SqliteStore::setup(conn, path.to_path_buf(), true, integration)
    }

    /// A private, empty store that lives as long as the value (tests, dry runs).
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        SqliteStore::setup(conn, path, false, DEFAULT_INTEGRATION)
    }

    fn setup(
        mut conn: Connection,
        path: PathBuf,
        wal: bool,
        integration: &str,
    ) -> Result<SqliteStore, StoreError> {
        // The busy timeout comes first: switching to WAL itself needs a lock another process
        // may hold.
        conn.busy_timeout(BUSY_TIMEOUT)
            .during(&path, "set busy timeout")?;
        if wal {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .during(&path, "enable write-ahead logging")?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::NoWal { path, mode });
            }
        }
        // NORMAL is durable against a process crash in WAL mode; a power cut may lose the last
        // commits, which the journal design tolerates (a lost intent means a write is redone
        // after a lookup, never blindly repeated).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .during(&path, "set synchronous")?;
        conn.pragma_update(None, "foreign_keys", true)
            .during(&path, "enable foreign keys")?;
        conn.pragma_update(None, "cache_size", CACHE_KIB)
            .during(&path, "set cache size")?;
        conn.set_prepared_statement_cache_capacity(32);
        schema::migrate(&mut conn, &path)?;
        let integration = integration_id(&conn, &path, integration)?;
        Ok(SqliteStore {
            conn,
            path,
            integration,
        })
    }

    /// The file this store was opened from (`:memory:` for in-memory stores).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (equal to [`crate::SCHEMA_VERSION`] once open).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::user_version(&self.conn, &self.path)
    }

    /// An advisory lock on a file beside the database (`state.lock` for `state.db`), so a
    /// `sync --now` and a daemon never run cycles at once. The operating system releases it
    /// when the process dies, however it dies: no stale lock to clean up after a crash. An
    /// in-memory store is private to its value: nothing else can run a cycle on it.
    pub fn lock_cycles(&self) -> Result<CycleLock, StoreError> {
        if self.path == Path::new(":memory:") {
            return Ok(CycleLock::new(()));
        }
        let lock = self.path.with_extension("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|source| StoreError::Lock {
                path: self.path.clone(),
                lock: lock.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(CycleLock::new(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::CycleRunning {
                path: self.path.clone(),
                holder: format!("lock {}", lock.display()),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Lock {
                path: self.path.clone(),
                lock,
                source,
            }),
        }
    }
}

/// The id of the integration named `name`, its row created on first use. Read first without
/// the write lock, so a reader (`status`) never waits for a daemon's transaction.
fn integration_id(conn: &Connection, path: &Path, name: &str) -> Result<i64, StoreError> {
    let find = || {
        conn.prepare_cached("SELECT id FROM integrations WHERE name = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([name], |row| row.get::<_, i64>(0))
                    .optional()
            })
            .during(path, "read integration")
    };
    if let Some(id) = find()? {
        return Ok(id);
    }
    conn.execute(
        "INSERT INTO integrations (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
        [name],
    )
    .during(path, "add integration")?;
    find()?.ok_or_else(|| StoreError::Corrupt {
        path: path.to_path_buf(),
        op: "add integration",
        value: name.to_owned(),
    })
}

/// The store holds every managed account's attributes and the audit log: only the account that
/// runs scimsync may read it. A new database is created 0600 before SQLite opens it (SQLite
/// gives the -wal and -shm files it creates the database file's mode), and an existing one,
/// or its -wal and -shm, readable by group or others (written by an older scimsync) is
/// tightened. Best effort: a file this account does not own is left to SQLite's own errors.
#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // `create_new` never truncates: an existing database is untouched.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        if let Ok(meta) = std::fs::metadata(&file) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                let _ =
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700));
            }
        }
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}
