//! The state a cycle works on: the store, and the lock that keeps two cycles off it at once
//! (the store's own, `Backend::lock_cycles`: which kind of lock fits is the backend's call).

use crate::config::Config;
pub use scimsync_store::CycleLock;
use scimsync_store::{Store, StoreError};

/// Opens (or creates) the state store sync.toml's `[state] path` names.
pub fn open_store(config: &Config) -> Result<Store, StoreError> {
    Store::open(&config.state_path())
}
