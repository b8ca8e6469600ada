//! The state store of scimsync: the links (which directory user is managed as which target
//! user, with what was last pushed), group and team links, the runs, the audit events, a
//! journal of write intents for crash safety, the deletion guard's sets, uncertain objects, and
//! what the cycles keep between runs (settings, quarantine, per-user marks).
//!
//! # One interface, several backends
//!
//! Every operation is a method of [`Backend`]; [`Store`] is a boxed backend, and callers speak
//! to it through `Deref`, so they name no backend. SQLite ([`SqliteStore`]) is the embedded
//! default; PostgreSQL, for replicas sharing state, is next. What that decided:
//!
//! - **No backend type leaks.** The trait speaks `scimsync_model` types, strings and this
//!   crate's own types; errors are [`StoreError`], whose variants name the store and the step.
//!   Nothing outside `sqlite.rs` and the table modules sees rusqlite.
//! - **A trait object, not an enum or a generic.** The engine is written once against
//!   `Store`; a backend is added by implementing [`Backend`] (and passing the conformance
//!   suite, `crates/store/tests/conformance/`), not by adding a `match` arm to every
//!   operation nor a type parameter to every caller.
//! - **Blocking, on purpose.** SQLite is a blocking library and every operation is one short
//!   transaction, so the engine calls the store inline from its async code as it always has.
//!   A networked backend keeps the same interface: it owns a client on a dedicated thread (the
//!   `postgres` crate's own model) or is called through `tokio::task::block_in_place`, so
//!   the cycle never holds a runtime thread across a network wait it did not choose. Making
//!   every call `async` would force every caller to await a local SQLite write for nothing.
//! - **Every row belongs to an integration.** A store is opened for one integration
//!   ([`DEFAULT_INTEGRATION`] unless named) and reads and writes only its rows, so one
//!   database can hold several integrations. Run, event and intent ids are numbered across
//!   integrations.
//! - **The cycle lock is the backend's** ([`Backend::lock_cycles`]): for SQLite an OS lock on
//!   a file beside the database, which dies with the process; for a shared database it will
//!   be a lease (a row with a heartbeat, or an advisory lock held by the session).
//! - **Bulk reads.** Per-user facts ([`Mark`]) come back as one map per kind, never a query
//!   per user.
//! - **Tuning stays inside the backend.** SQLite's PRAGMAs (page cache sizing around a bulk
//!   stamp, handing the cache back after a whole-table scan) are the SQLite backend's own
//!   business, inside its methods; nothing in the interface asks for them.
//!
//! The SQLite database is opened in WAL mode with a busy timeout, so `scimsync status` and
//! `scimsync events` read while a daemon writes, and a second writer waits instead of failing.
//! Write transactions take the write lock up front (`BEGIN IMMEDIATE`), so they wait for one
//! another through the busy timeout rather than failing on a lock upgrade. Writes are UPSERTs
//! (`ON CONFLICT … DO UPDATE`), never `INSERT OR REPLACE`, which deletes the old row (firing
//! cascades, losing columns the statement does not name).
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

mod attrs_json;
mod backend;
mod discovery;
mod error;
mod events;
mod group_links;
mod guard;
mod journal;
mod links;
mod runs;
mod schema;
mod sqlite;
mod state;
mod team_links;
mod timestamp;
mod uncertain;

pub use backend::Backend;
pub use discovery::CachedDiscovery;
pub use error::StoreError;
pub use events::EventQuery;
pub use guard::{ApprovalGrant, ApproveOutcome};
pub use journal::{Intent, IntentId, IntentOutcome};
pub use links::{LinkHeads, StampedLink};
pub use runs::{RunOutcome, RunRecord, RunStatus};
pub use schema::SCHEMA_VERSION;
pub use sqlite::SqliteStore;
pub use state::{Mark, QuarantineRecord, Setting};
pub use timestamp::{normalize_rfc3339, now_rfc3339, rfc3339};
pub use uncertain::UncertainMark;

use scimsync_model::Link;
use std::path::Path;
use std::time::Duration;

/// How long a statement waits for another connection's write lock before failing. Long enough
/// for a daemon's largest batch, short enough that a wedged process is reported.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The integration a store is bound to unless told otherwise: every row of a store written
/// before integrations existed (schema 8 and older) belongs to it.
pub const DEFAULT_INTEGRATION: &str = "default";

/// An open state store: a backend behind [`Backend`]'s interface. Open one per thread or
/// process.
pub struct Store {
    backend: Box<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.backend.location())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path` for the default integration.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::from_backend(SqliteStore::open(path)?))
    }

    /// A private, empty SQLite store that lives as long as the value (tests, dry runs).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Ok(Store::from_backend(SqliteStore::open_in_memory()?))
    }

    /// Any backend.
    pub fn from_backend(backend: impl Backend + 'static) -> Store {
        Store {
            backend: Box::new(backend),
        }
    }

    /// [`Backend::fill_link_attrs`] with any predicate.
    pub fn fill_link_attrs(
        &self,
        links: &mut [Link],
        wanted: impl Fn(usize, &Link) -> bool,
    ) -> Result<usize, StoreError> {
        self.backend.fill_link_attrs(links, &wanted)
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;
    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

impl std::ops::DerefMut for Store {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.backend
    }
}

/// Held while a cycle runs ([`Backend::lock_cycles`]); dropping it releases the lock.
#[must_use = "the lock is released when this is dropped"]
pub struct CycleLock {
    _held: Box<dyn Send>,
}

impl CycleLock {
    /// A lock whose release is dropping `held` (a locked file, a lease's heartbeat task).
    pub fn new(held: impl Send + 'static) -> CycleLock {
        CycleLock {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for CycleLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CycleLock")
    }
}
