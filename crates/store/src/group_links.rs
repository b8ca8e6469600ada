//! Group links: which directory group is managed as which target group, with the members
//! scimsync last saw there, so an unchanged group needs no read on an incremental cycle.

use crate::error::SqlContext;
use crate::{SqliteStore, StoreError, now_rfc3339};
use rusqlite::{TransactionBehavior, params};
use scimsync_model::{GroupLink, ScimId, SourceId};

impl SqliteStore {
    /// Every group link, ordered by source id.
    pub(crate) fn group_links(&self) -> Result<Vec<GroupLink>, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT source_id, target_id, display_name, members FROM group_links \
                 WHERE integration = ?1 ORDER BY source_id",
            )
            .during(path, "read group links")?;
        let rows = stmt
            .query_map([self.integration], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .during(path, "read group links")?;
        let mut links = Vec::new();
        for row in rows {
            let (source_id, target_id, display_name, members) =
                row.during(path, "read group links")?;
            // A corrupt member list only costs a read of the group: treat it as unknown.
            let members: Vec<String> = serde_json::from_str(&members).unwrap_or_default();
            links.push(GroupLink {
                source_id: SourceId::new(source_id),
                target_id: ScimId::new(target_id),
                display_name,
                members: members.into_iter().map(ScimId::new).collect(),
            });
        }
        Ok(links)
    }

    /// Inserts or updates the link of `link.source_id`; a link another group held to the same
    /// target group is removed first (one target group is managed for one directory group).
    pub(crate) fn upsert_group_link(&mut self, link: &GroupLink) -> Result<(), StoreError> {
        let members: Vec<&str> = link.members.iter().map(ScimId::as_str).collect();
        let members = serde_json::to_string(&members).unwrap_or_else(|_| "[]".into());
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(path, "begin group link")?;
        tx.execute(
            "DELETE FROM group_links WHERE integration = ?1 AND target_id = ?2 \
             AND source_id <> ?3",
            params![
                self.integration,
                link.target_id.as_str(),
                link.source_id.as_str()
            ],
        )
        .during(path, "store group link")?;
        tx.execute(
            "INSERT INTO group_links \
             (integration, source_id, target_id, display_name, members, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (integration, source_id) DO UPDATE SET \
               target_id = excluded.target_id, display_name = excluded.display_name, \
               members = excluded.members, updated_at = excluded.updated_at",
            params![
                self.integration,
                link.source_id.as_str(),
                link.target_id.as_str(),
                link.display_name,
                members,
                now_rfc3339()
            ],
        )
        .during(path, "store group link")?;
        tx.commit().during(path, "store group link")
    }

    /// Removes the link of a group, and the team assignments scimsync made for it: a group
    /// deleted takes them with it, and one no longer managed is no longer scimsync's to undo.
    pub(crate) fn remove_group_link(&mut self, source_id: &SourceId) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&self.path, "remove group link")?;
        tx.execute(
            "DELETE FROM group_links WHERE integration = ?1 AND source_id = ?2",
            params![self.integration, source_id.as_str()],
        )
        .during(&self.path, "remove group link")?;
        tx.execute(
            "DELETE FROM team_links WHERE integration = ?1 AND group_id = ?2",
            params![self.integration, source_id.as_str()],
        )
        .during(&self.path, "remove group link")?;
        tx.commit().during(&self.path, "remove group link")?;
        Ok(())
    }
}
