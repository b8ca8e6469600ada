//! The target's discovery documents (`/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`),
//! cached with the run that read them. Target text: kept as JSON, interpreted elsewhere
//! (`scimsync_scim::Discovery`); the client redacted the token from it before it got here.

use crate::error::SqlContext;
use crate::{SqliteStore, StoreError, now_rfc3339};
use rusqlite::OptionalExtension;
use scimsync_model::RunId;

/// Rows kept: enough to see when the target's schema last changed, not a growing history.
const KEPT: i64 = 20;

/// A cached discovery: the JSON document, when and by which run it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedDiscovery {
    pub run_id: Option<RunId>,
    pub read_at: String,
    pub document: String,
}

impl SqliteStore {
    /// Stores a discovery read by `run_id` (`None`: by `scimsync check`), and prunes old rows.
    pub(crate) fn save_discovery(
        &mut self,
        run_id: Option<RunId>,
        document: &str,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        self.conn
            .execute(
                "INSERT INTO target_discovery (run_id, read_at, document, integration) \
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    run_id.map(|r| r.0),
                    now_rfc3339(),
                    document,
                    self.integration
                ],
            )
            .during(path, "save discovery")?;
        self.conn
            .execute(
                "DELETE FROM target_discovery WHERE integration = ?2 AND id IN \
                 (SELECT id FROM target_discovery WHERE integration = ?2 \
                  ORDER BY id DESC LIMIT -1 OFFSET ?1)",
                [KEPT, self.integration],
            )
            .during(path, "prune discovery")?;
        Ok(())
    }

    /// The newest discovery, if any was read.
    pub(crate) fn discovery(&self) -> Result<Option<CachedDiscovery>, StoreError> {
        self.conn
            .query_row(
                "SELECT run_id, read_at, document FROM target_discovery WHERE integration = ?1 \
                 ORDER BY id DESC LIMIT 1",
                [self.integration],
                |row| {
                    Ok(CachedDiscovery {
                        run_id: row.get::<_, Option<i64>>(0)?.map(RunId),
                        read_at: row.get(1)?,
                        document: row.get(2)?,
                    })
                },
            )
            .optional()
            .during(&self.path, "read discovery")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_newest_discovery_is_read_back_and_old_ones_pruned() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.discovery().unwrap(), None);
        store.save_discovery(None, r#"{"schemas":null}"#).unwrap();
        for i in 0..30 {
            store
                .save_discovery(Some(RunId(i)), &format!(r#"{{"n":{i}}}"#))
                .unwrap();
        }
        let newest = store.discovery().unwrap().unwrap();
        assert_eq!(newest.run_id, Some(RunId(29)));
        assert_eq!(newest.document, r#"{"n":29}"#);
        let rows: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM target_discovery", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, KEPT);
    }
}
