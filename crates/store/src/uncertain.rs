//! Uncertain users and groups: a write whose outcome is unknown (no answer, an answer that
//! confirms nothing, abandoned by a crash, a halt or a shutdown). The next cycle reads each one
//! from the target before planning it; a link written from a confirmed outcome settles it.

use crate::error::SqlContext;
use crate::{SqliteStore, StoreError, now_rfc3339};
use rusqlite::{TransactionBehavior, params};
use scimsync_model::{OpKind, ResourceKind, RunId, ScimId, SourceId, Uncertain};

/// An uncertain object as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UncertainMark {
    pub mark: Uncertain,
    /// The run whose write left it uncertain (none when closed from a journal of unknown run).
    pub run: Option<RunId>,
    /// When it was first marked (RFC 3339); kept while it stays uncertain.
    pub since: String,
}

impl SqliteStore {
    /// Marks a user or group uncertain. A user's link loses its fingerprint and record stamp in
    /// the same transaction, so no cycle can take the user as unchanged from the link alone
    /// until a read settles it. Marking it again keeps the first time and the last reason.
    pub(crate) fn mark_uncertain(
        &mut self,
        run: Option<RunId>,
        mark: &Uncertain,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(path, "begin uncertain mark")?;
        tx.prepare_cached(
            "INSERT INTO uncertain \
             (kind, source_id, target_id, name, op, reason, run_id, since, integration) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (integration, kind, source_id) DO UPDATE SET \
               target_id = coalesce(excluded.target_id, uncertain.target_id), \
               name = excluded.name, op = excluded.op, reason = excluded.reason, \
               run_id = excluded.run_id",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                mark.kind.as_str(),
                mark.source_id.as_str(),
                mark.target_id.as_ref().map(ScimId::as_str),
                mark.name,
                mark.op.as_str(),
                mark.reason,
                run.map(|r| r.0),
                now_rfc3339(),
                self.integration,
            ])
        })
        .during(path, "mark uncertain")?;
        if mark.kind == ResourceKind::User {
            tx.prepare_cached(
                "UPDATE links SET hash = '', record = NULL \
                 WHERE integration = ?1 AND source_id = ?2",
            )
            .and_then(|mut stmt| stmt.execute(params![self.integration, mark.source_id.as_str()]))
            .during(path, "mark uncertain")?;
        }
        tx.commit().during(path, "commit uncertain mark")
    }

    /// Every uncertain user and group, users first, each in source id order.
    pub(crate) fn uncertain(&self) -> Result<Vec<UncertainMark>, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT kind, source_id, target_id, name, op, reason, run_id, since \
                 FROM uncertain WHERE integration = ?1 ORDER BY kind DESC, source_id",
            )
            .during(path, "read uncertain")?;
        let mut rows = stmt
            .query([self.integration])
            .during(path, "read uncertain")?;
        let mut marks = Vec::new();
        while let Some(row) = rows.next().during(path, "read uncertain")? {
            let get = || -> rusqlite::Result<_> {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<i64>>(6)?,
                    row.get::<_, String>(7)?,
                ))
            };
            let (kind, source_id, target_id, name, op, reason, run, since) =
                get().during(path, "read uncertain")?;
            let corrupt = |value: String| StoreError::Corrupt {
                path: path.clone(),
                op: "read uncertain",
                value,
            };
            marks.push(UncertainMark {
                mark: Uncertain {
                    kind: ResourceKind::parse(&kind).ok_or_else(|| corrupt(kind.clone()))?,
                    source_id: SourceId::new(source_id),
                    target_id: target_id.map(ScimId::new),
                    name,
                    op: OpKind::parse(&op).ok_or_else(|| corrupt(op.clone()))?,
                    reason,
                },
                run: run.map(RunId),
                since,
            });
        }
        Ok(marks)
    }

    /// Settles a user or group: its state is known again. Returns whether it was uncertain.
    pub(crate) fn clear_uncertain(
        &mut self,
        kind: ResourceKind,
        source_id: &SourceId,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .prepare_cached(
                "DELETE FROM uncertain WHERE integration = ?1 AND kind = ?2 AND source_id = ?3",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![self.integration, kind.as_str(), source_id.as_str()])
            })
            .during(&self.path, "clear uncertain")?;
        Ok(changed > 0)
    }
}
