//! Group links: which directory group is managed as which target group, with the members
//! scimsync last saw there, so an unchanged group needs no read on an incremental cycle.

use crate::error::SqlContext;
use crate::{Store, StoreError, now_rfc3339};
use rusqlite::params;
use scimsync_model::{GroupLink, ScimId, SourceId};

impl Store {
    /// Every group link, ordered by source id.
    pub fn group_links(&self) -> Result<Vec<GroupLink>, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT source_id, target_id, display_name, members FROM group_links \
                 ORDER BY source_id",
            )
            .during(path, "read group links")?;
        let rows = stmt
            .query_map([], |row| {
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

    /// Inserts or replaces the link of `link.source_id` (and any link to the same target group).
    pub fn upsert_group_link(&mut self, link: &GroupLink) -> Result<(), StoreError> {
        let members: Vec<&str> = link.members.iter().map(ScimId::as_str).collect();
        let members = serde_json::to_string(&members).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "INSERT OR REPLACE INTO group_links \
                 (source_id, target_id, display_name, members, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    link.source_id.as_str(),
                    link.target_id.as_str(),
                    link.display_name,
                    members,
                    now_rfc3339()
                ],
            )
            .during(&self.path, "store group link")?;
        Ok(())
    }

    /// Removes the link of a group, and the team assignments scimsync made for it: a group
    /// deleted takes them with it, and one no longer managed is no longer scimsync's to undo.
    pub fn remove_group_link(&mut self, source_id: &SourceId) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction()
            .during(&self.path, "remove group link")?;
        tx.execute(
            "DELETE FROM group_links WHERE source_id = ?1",
            [source_id.as_str()],
        )
        .during(&self.path, "remove group link")?;
        tx.execute(
            "DELETE FROM team_links WHERE group_id = ?1",
            [source_id.as_str()],
        )
        .during(&self.path, "remove group link")?;
        tx.commit().during(&self.path, "remove group link")?;
        Ok(())
    }
}
