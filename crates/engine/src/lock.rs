//! The state a cycle works on: the store, and the lock that keeps two cycles off it at once.

use crate::config::Config;
pub use crate::error::LockError;
use scimsync_store::{Store, StoreError};
use std::fs::File;

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
