//! Key/value meta: small facts the CLI keeps between runs (last full read, held deletes, ...).
//! Never a secret: see the crate doc.

use crate::error::SqlContext;
use crate::{Store, StoreError};
use rusqlite::OptionalExtension;

impl Store {
    /// The value stored under `key`, if any.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
            .during(&self.path, "read meta")
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut stmt| stmt.execute([key, value]))
            .during(&self.path, "write meta")?;
        Ok(())
    }

    /// Removes `key`; removing an absent key is not an error.
    pub fn remove_meta(&mut self, key: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM meta WHERE key = ?1")
            .and_then(|mut stmt| stmt.execute([key]))
            .during(&self.path, "remove meta")?;
        Ok(())
    }
}
