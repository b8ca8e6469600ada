//! Team links: the team assignments scimsync made (Miro's REST API), so it knows which it may
//! undo and, on an incremental cycle, need not read them again.

use crate::error::SqlContext;
use crate::{Store, StoreError, now_rfc3339};
use rusqlite::params;
use scimsync_model::{SourceId, TeamId, TeamLink};

impl Store {
    /// Every team link, ordered by group, then team.
    pub fn team_links(&self) -> Result<Vec<TeamLink>, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT group_id, team_id, team_name FROM team_links ORDER BY group_id, team_id",
            )
            .during(path, "read team links")?;
        let rows = stmt
            .query_map([], |row| {
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

    pub fn upsert_team_link(&mut self, link: &TeamLink) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO team_links (group_id, team_id, team_name, updated_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    link.group.as_str(),
                    link.team_id.as_str(),
                    link.team_name,
                    now_rfc3339()
                ],
            )
            .during(&self.path, "store team link")?;
        Ok(())
    }

    pub fn remove_team_link(&mut self, group: &SourceId, team: &TeamId) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM team_links WHERE group_id = ?1 AND team_id = ?2",
                [group.as_str(), team.as_str()],
            )
            .during(&self.path, "remove team link")?;
        Ok(())
    }
}
