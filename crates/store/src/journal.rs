//! The journal of write intents. A write is recorded as an intent before it is sent and
//! completed after its response, so after a crash the intents still open are exactly the writes
//! whose effect on the target is unknown.

use crate::error::{JsonContext, SqlContext};
use crate::{SqliteStore, StoreError, now_rfc3339};
use rusqlite::{OptionalExtension, params};
use scimsync_model::{Op, RunId};
use serde::{Deserialize, Serialize};

/// An intent's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IntentId(pub i64);

impl std::fmt::Display for IntentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How an intent was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentOutcome {
    /// The target acknowledged the write.
    Succeeded,
    /// The target refused it, or it was given up after retries.
    Failed,
    /// Found open after a crash and closed by reconciliation; its effect was unknown.
    Abandoned,
}

impl IntentOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IntentOutcome::Succeeded => "succeeded",
            IntentOutcome::Failed => "failed",
            IntentOutcome::Abandoned => "abandoned",
        }
    }
}

/// An intent never completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub id: IntentId,
    pub run: RunId,
    pub op: Op,
    /// The request the write was about to send (`PATCH /Users/123`); `None` for intents
    /// journaled before this was recorded.
    pub request: Option<String>,
    pub created_at: String,
}

impl SqliteStore {
    /// Records that `op` is about to be sent in `run` as `request` (`PATCH /Users/123`).
    /// Commits before returning, so the intent survives a crash during the send.
    pub(crate) fn open_intent(
        &mut self,
        run: RunId,
        op: &Op,
        request: &str,
    ) -> Result<IntentId, StoreError> {
        let path = &self.path;
        let json = serde_json::to_string(op).during(path, "encode intent")?;
        self.conn
            .prepare_cached(
                "INSERT INTO journal \
                 (run_id, kind, source_id, user_name, op, created_at, request, integration) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    run.0,
                    op.kind().as_str(),
                    op.source_id().as_str(),
                    op.user_name(),
                    json,
                    now_rfc3339(),
                    (!request.is_empty()).then_some(request),
                    self.integration,
                ])
            })
            .during(path, "open intent")?;
        Ok(IntentId(self.conn.last_insert_rowid()))
    }

    /// Closes an intent. Closing one already closed keeps its first outcome: a late duplicate
    /// must not turn a recorded success into something else.
    pub(crate) fn complete_intent(
        &mut self,
        id: IntentId,
        outcome: IntentOutcome,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE journal SET completed_at = ?2, outcome = ?3 \
                 WHERE id = ?1 AND completed_at IS NULL AND integration = ?4",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    id.0,
                    now_rfc3339(),
                    outcome.as_str(),
                    self.integration
                ])
            })
            .during(path, "complete intent")?;
        if changed == 0 {
            let exists = self
                .conn
                .prepare_cached("SELECT 1 FROM journal WHERE id = ?1 AND integration = ?2")
                .and_then(|mut stmt| {
                    stmt.query_row([id.0, self.integration], |_| Ok(()))
                        .optional()
                })
                .during(path, "complete intent")?
                .is_some();
            if !exists {
                return Err(StoreError::NoSuchIntent {
                    path: path.clone(),
                    id: id.0,
                });
            }
        }
        Ok(())
    }

    /// Intents never completed (left by a crash), oldest first.
    pub(crate) fn open_intents(&self) -> Result<Vec<Intent>, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, run_id, op, created_at, request FROM journal \
                 WHERE completed_at IS NULL AND integration = ?1 ORDER BY id",
            )
            .during(path, "read open intents")?;
        let mut rows = stmt
            .query([self.integration])
            .during(path, "read open intents")?;
        let mut intents = Vec::new();
        while let Some(row) = rows.next().during(path, "read open intents")? {
            let get = || -> rusqlite::Result<(i64, i64, String, String, Option<String>)> {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            };
            let (id, run, op, created_at, request) = get().during(path, "read open intents")?;
            intents.push(Intent {
                id: IntentId(id),
                run: RunId(run),
                op: serde_json::from_str(&op).during(path, "decode intent")?,
                request,
                created_at,
            });
        }
        Ok(intents)
    }

    /// Deletes completed intents created before `before` (RFC 3339) and returns how many.
    /// Open intents are never pruned: they are the crash record.
    pub(crate) fn prune_completed_intents(&mut self, before: &str) -> Result<usize, StoreError> {
        let path = &self.path;
        let before =
            crate::normalize_rfc3339(before).ok_or_else(|| StoreError::InvalidTimestamp {
                path: path.clone(),
                op: "prune intents",
                value: before.to_owned(),
            })?;
        self.conn
            .prepare_cached(
                "DELETE FROM journal WHERE completed_at IS NOT NULL AND created_at < ?1 \
                 AND integration = ?2",
            )
            .and_then(|mut stmt| stmt.execute(params![before, self.integration]))
            .during(path, "prune intents")
    }
}
