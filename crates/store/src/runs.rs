//! Runs: one row per cycle, from `begin_run` to `finish_run`.

use crate::error::{JsonContext, SqlContext};
use crate::{SqliteStore, StoreError, now_rfc3339};
use rusqlite::{Row, params};
use scimsync_model::{InitiatedBy, RunId};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a run ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Begun and not finished (yet, or ever: see [`crate::Backend::mark_interrupted_runs`]).
    Running,
    /// Every operation succeeded.
    Succeeded,
    /// Ran to the end, but some operations failed.
    Partial,
    /// The deletion guard held the deprovisions.
    Held,
    /// The cycle itself failed (config, IO, auth, snapshot).
    Failed,
    /// Left `Running` by a process that stopped before finishing it.
    Interrupted,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Partial,
        RunStatus::Held,
        RunStatus::Failed,
        RunStatus::Interrupted,
    ];

    /// The stored and printed name (same as the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Held => "held",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `finish_run` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub status: RunStatus,
    /// Counts and anything else `status` shows; free-form JSON.
    pub summary: serde_json::Value,
    pub error: Option<String>,
    pub exit_code: i32,
}

/// One run as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub initiated_by: InitiatedBy,
    pub full: bool,
    pub status: RunStatus,
    pub summary: serde_json::Value,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
}

const SELECT: &str = "SELECT id, started_at, finished_at, initiated_by, full, status, summary, \
     error, exit_code FROM runs";

impl SqliteStore {
    /// Records the start of a cycle, status `Running`, and returns its id.
    pub(crate) fn begin_run(
        &mut self,
        initiated_by: InitiatedBy,
        full: bool,
    ) -> Result<RunId, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO runs (integration, started_at, initiated_by, full, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .during(path, "begin run")?;
        stmt.execute(params![
            self.integration,
            now_rfc3339(),
            initiated_by.as_str(),
            full,
            RunStatus::Running.as_str()
        ])
        .during(path, "begin run")?;
        Ok(RunId(self.conn.last_insert_rowid()))
    }

    /// Records how a run ended, stamping `finished_at`.
    pub(crate) fn finish_run(
        &mut self,
        run: RunId,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let summary = serde_json::to_string(&outcome.summary).during(path, "encode run summary")?;
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE runs SET finished_at = ?2, status = ?3, summary = ?4, error = ?5, \
                 exit_code = ?6 WHERE id = ?1 AND integration = ?7",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    run.0,
                    now_rfc3339(),
                    outcome.status.as_str(),
                    summary,
                    outcome.error,
                    outcome.exit_code,
                    self.integration,
                ])
            })
            .during(path, "finish run")?;
        if changed == 0 {
            return Err(StoreError::NoSuchRun {
                path: path.clone(),
                run: run.0,
            });
        }
        Ok(())
    }

    /// The last `limit` runs, newest first.
    pub(crate) fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let path = &self.path;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "{SELECT} WHERE integration = ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .during(path, "read runs")?;
        let mut rows = stmt
            .query([self.integration, limit])
            .during(path, "read runs")?;
        let mut runs = Vec::new();
        while let Some(row) = rows.next().during(path, "read runs")? {
            runs.push(run_from_row(row, path)?);
        }
        Ok(runs)
    }

    /// Marks every run still `Running` as `Interrupted` and returns how many there were.
    ///
    /// Call it only while holding whatever guarantees no other process is mid-cycle on this
    /// database: the store cannot tell a crashed run from one in progress elsewhere.
    pub(crate) fn mark_interrupted_runs(&mut self) -> Result<usize, StoreError> {
        let changed = self
            .conn
            .prepare_cached("UPDATE runs SET status = ?1 WHERE status = ?2 AND integration = ?3")
            .and_then(|mut stmt| {
                stmt.execute(params![
                    RunStatus::Interrupted.as_str(),
                    RunStatus::Running.as_str(),
                    self.integration
                ])
            })
            .during(&self.path, "mark interrupted runs")?;
        Ok(changed)
    }
}

fn run_from_row(row: &Row<'_>, path: &Path) -> Result<RunRecord, StoreError> {
    type Raw = (
        i64,
        String,
        Option<String>,
        String,
        bool,
        String,
        String,
        Option<String>,
        Option<i32>,
    );
    let get = |row: &Row<'_>| -> rusqlite::Result<Raw> {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
        ))
    };
    let (id, started_at, finished_at, initiated_by, full, status, summary, error, exit_code) =
        get(row).during(path, "read run")?;
    let initiated_by = parse_initiated_by(&initiated_by).ok_or_else(|| StoreError::Corrupt {
        path: path.to_path_buf(),
        op: "read run initiator",
        value: initiated_by.clone(),
    })?;
    let status = RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
        path: path.to_path_buf(),
        op: "read run status",
        value: status.clone(),
    })?;
    let summary = serde_json::from_str(&summary).during(path, "decode run summary")?;
    Ok(RunRecord {
        id: RunId(id),
        started_at,
        finished_at,
        initiated_by,
        full,
        status,
        summary,
        error,
        exit_code,
    })
}

fn parse_initiated_by(s: &str) -> Option<InitiatedBy> {
    [InitiatedBy::Schedule, InitiatedBy::Manual]
        .into_iter()
        .find(|i| i.as_str() == s)
}
