//! Team links: the team assignments scimsync made (Miro's REST API), so it knows which it may
//! undo and, on an incremental cycle, need not read them again.

use crate::error::SqlContext;
use crate::{SqliteStore, StoreError, now_rfc3339};
use rusqlite::params;
use scimsync_model::{SourceId, TeamId, TeamLink};

impl SqliteStore {
    /// Every team link, ordered by group, then team.
    pub(crate) fn team_links(&self) -> Result<Vec<TeamLink>, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT group_id, team_id, team_name FROM team_links WHERE integration = ?1 \
                 ORDER BY group_id, team_id",
            )
            .during(path, "read team links")?;
        let rows = stmt
            .query_map([self.integration], |row| {
                Ok(TeamLink {
                    group: SourceId::new(row.get::<_, String>(0)?),
                    team_id: TeamId::new(row.get::<_, String>(1)?),
                    team_name: row.get(2)?,
                })
            })
            .during(path, "read team links")?;
        rows.map(|row| row.during(path, "read team links"))
            .collect()
    }

    pub(crate) fn upsert_team_link(&mut self, link: &TeamLink) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO team_links (integration, group_id, team_id, team_name, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (integration, group_id, team_id) DO UPDATE SET \
                   team_name = excluded.team_name, updated_at = excluded.updated_at",
                params![
                    self.integration,
                    link.group.as_str(),
                    link.team_id.as_str(),
                    link.team_name,
                    now_rfc3339()
                ],
            )
            .during(&self.path, "store team link")?;
        Ok(())
    }

    pub(crate) fn remove_team_link(
        &mut self,
        group: &SourceId,
        team: &TeamId,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM team_links WHERE integration = ?1 AND group_id = ?2 AND team_id = ?3",
                params![self.integration, group.as_str(), team.as_str()],
            )
            .during(&self.path, "remove team link")?;
        Ok(())
    }
}
