//! The state a cycle works on: the store, and the lock that keeps two cycles off it at once.

use crate::config::Config;
use scimsync_store::{Store, StoreError};
use std::fs::File;
use std::path::PathBuf;

/// Why a cycle cannot take the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (a daemon, a `sync --now`) runs a cycle against the same state.
    #[error(
        "another scimsync cycle is running against {} (lock {}); not starting a second one",
        state.display(),
        lock.display()
    )]
    Held { state: PathBuf, lock: PathBuf },
    /// The lock file cannot be created or opened.
    #[error("cannot open the lock file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The system refuses the lock for another reason.
    #[error("cannot lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Opens (or creates) the state store sync.toml's `[state] path` names.
pub fn open_store(config: &Config) -> Result<Store, StoreError> {
    Store::open(&config.state_path())
}

/// A file lock beside the store, so a `sync --now` and a daemon never run cycles at once. Held
/// until dropped.
#[derive(Debug)]
pub struct CycleLock {
    _file: File,
}

impl CycleLock {
    /// Takes the lock, or says who holds it; never waits.
    pub fn acquire(config: &Config) -> Result<CycleLock, LockError> {
        let state = config.state_path();
        let path = state.with_extension("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(CycleLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held { state, lock: path }),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Lock { path, source }),
        }
    }
}
