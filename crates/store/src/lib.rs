//! The state store of scimsync: one SQLite file holding the links (which directory user is
//! managed as which target user, with what was last pushed), the runs, the audit events, a
//! journal of write intents for crash safety, and key/value meta.
//!
//! The database is opened in WAL mode with a busy timeout, so `scimsync status` and
//! `scimsync events` read while a daemon writes, and a second writer waits instead of failing.
//! Write transactions take the write lock up front (`BEGIN IMMEDIATE`), so they wait for one
//! another through the busy timeout rather than failing on a lock upgrade.
//!
//! Architecture Invariant: this is the only crate that knows SQL (and rusqlite). Other crates
//! speak `scimsync_model` types to it.
//!
//! Architecture Invariant: no API here takes a token or any other secret, so none can reach the
//! database file. Keep it that way: the file is read by `status` and copied into bug reports.
//!
//! Architecture Invariant: every timestamp is written in one fixed-width format
//! ([`now_rfc3339`]), so string comparison in SQL is time order.
//!
//! What an incremental cycle reads of the links: their heads (`Store::link_heads`: ids,
//! userName, active, fingerprint and record stamp, no attributes, answered from the
//! `links_heads` covering index), then the pushed attributes of the changed users only
//! (`Store::fill_link_attrs`). A link stores the record stamp it was last proved equal to
//! (`links.record`, migration 4); `Store::stamp_records` stores them after a cycle's writes,
//! only while the link still has the fingerprint they were proved against, and any upsert of
//! the link forgets its stamp.

/// Up to 256 MiB of page cache (allocated only as used, `PRAGMA cache_size` in KiB, negated)
/// keeps a million links' indexes in memory during bulk upserts; a smaller cache spills to the
/// WAL mid-transaction.
const CACHE_KIB: i64 = -262_144;

mod attrs_json;
mod discovery;
mod error;
mod events;
mod group_links;
mod guard;
mod journal;
mod links;
mod meta;
mod runs;
mod schema;
mod team_links;
mod timestamp;
mod uncertain;

pub use discovery::CachedDiscovery;
pub use error::StoreError;
pub use events::EventQuery;
pub use guard::{ApprovalGrant, ApproveOutcome};
pub use journal::{Intent, IntentId, IntentOutcome};
pub use links::{LinkHeads, StampedLink};
pub use runs::{RunOutcome, RunRecord, RunStatus};
pub use schema::SCHEMA_VERSION;
pub use timestamp::{normalize_rfc3339, now_rfc3339, rfc3339};
pub use uncertain::UncertainMark;

use error::SqlContext;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a statement waits for another connection's write lock before failing. Long enough
/// for a daemon's largest batch, short enough that a wedged process is reported.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open state store. One connection; open one `Store` per thread or process.
pub struct Store {
    conn: Connection,
    /// For error messages; `:memory:` for in-memory stores.
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, switches it to WAL, and brings its
    /// schema up to date. Refuses a database written by a newer scimsync.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        restrict_permissions(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Store::setup(conn, path.to_path_buf(), true)
    }

    /// A private, empty store that lives as long as the value (tests, dry runs).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        Store::setup(conn, path, false)
    }

    fn setup(mut conn: Connection, path: PathBuf, wal: bool) -> Result<Store, StoreError> {
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
        // Up to 256 MiB of page cache (allocated only as used) keeps a million links' indexes
        // in memory during bulk upserts; a smaller cache spills to the WAL mid-transaction.
        conn.pragma_update(None, "cache_size", CACHE_KIB)
            .during(&path, "set cache size")?;
        conn.set_prepared_statement_cache_capacity(32);
        schema::migrate(&mut conn, &path)?;
        Ok(Store { conn, path })
    }

    /// The file this store was opened from (`:memory:` for in-memory stores).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (equal to [`SCHEMA_VERSION`] once open).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::user_version(&self.conn, &self.path)
    }
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
