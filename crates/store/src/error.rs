//! The one error type of the store. Every variant names the database file and what was being
//! done, so an admin reading a log line knows which file and which step to look at.

use std::path::PathBuf;

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// The database file could not be opened or created (missing directory, permissions, not a
    /// SQLite file).
    #[error("cannot open the state store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// SQLite refused to switch the database to write-ahead logging (e.g. a network filesystem
    /// without shared memory). Without WAL, `status` and `events` would block a running daemon.
    #[error(
        "state store {path}: cannot enable write-ahead logging (journal_mode is {mode:?}); \
         put the database on a local filesystem"
    )]
    NoWal { path: PathBuf, mode: String },

    /// The database was written by a newer scimsync whose schema this binary does not know.
    /// Refused rather than guessed at: an older binary could misread or damage newer state.
    #[error(
        "state store {path} has schema version {found}, newer than the {supported} this scimsync \
         understands; upgrade scimsync or point [state].path at another file"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// A SQL statement failed: disk full, database locked longer than the busy timeout, a
    /// constraint broken, a corrupt file.
    #[error("state store {path}: {op}: {source}")]
    Sqlite {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    /// A JSON column could not be written or read back (a stored op, event, attrs or summary).
    #[error("state store {path}: {op}: {source}")]
    Json {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// A stored value is not one this binary knows (an unknown run status or initiator), so the
    /// row cannot be read faithfully.
    #[error("state store {path}: {op}: unexpected stored value {value:?}")]
    Corrupt {
        path: PathBuf,
        op: &'static str,
        value: String,
    },

    /// A timestamp given to the store is not RFC 3339 (an event's `ts`, a query's `since`).
    #[error("state store {path}: {op}: {value:?} is not an RFC 3339 timestamp")]
    InvalidTimestamp {
        path: PathBuf,
        op: &'static str,
        value: String,
    },

    /// Another process holds the cycle lock: a daemon, or a `sync --now`, is mid-cycle on
    /// this state. `holder` says what holds it (the SQLite backend's lock file).
    #[error(
        "another scimsync cycle is running against {path} ({holder}); not starting a second one"
    )]
    CycleRunning { path: PathBuf, holder: String },

    /// The cycle lock could not be taken for another reason than another holder.
    #[error("state store {path}: cannot lock {lock}: {source}")]
    Lock {
        path: PathBuf,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `finish_run` named a run that `begin_run` never returned.
    #[error("state store {path}: finish run: no run {run}")]
    NoSuchRun { path: PathBuf, run: i64 },

    /// `complete_intent` named an intent that `open_intent` never returned.
    #[error("state store {path}: complete intent: no intent {id}")]
    NoSuchIntent { path: PathBuf, id: i64 },
}

/// Attaches the database path and the failed step to a rusqlite error.
pub(crate) trait SqlContext<T> {
    fn during(self, path: &std::path::Path, op: &'static str) -> Result<T, StoreError>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn during(self, path: &std::path::Path, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            op,
            source,
        })
    }
}

/// Attaches the database path and the failed step to a serde_json error.
pub(crate) trait JsonContext<T> {
    fn during(self, path: &std::path::Path, op: &'static str) -> Result<T, StoreError>;
}

impl<T> JsonContext<T> for Result<T, serde_json::Error> {
    fn during(self, path: &std::path::Path, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Json {
            path: path.to_path_buf(),
            op,
            source,
        })
    }
}
