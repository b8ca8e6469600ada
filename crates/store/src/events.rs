//! The audit log: every event as JSON, with the fields `scimsync events` filters on in columns.

use crate::error::{JsonContext, SqlContext};
use crate::{SqliteStore, StoreError, normalize_rfc3339, now_rfc3339};
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior, params, params_from_iter};
use scimsync_model::{Event, EventType, RunId};
use std::path::Path;

/// A filter over the audit log. Every field set narrows the result; `Default` matches all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events at or after this RFC 3339 time (any offset or precision).
    pub since: Option<String>,
    pub event_type: Option<EventType>,
    /// Only events with `success == false`.
    pub failed_only: bool,
    /// Only events about this userName, compared case-insensitively.
    pub user: Option<String>,
    pub run: Option<RunId>,
    /// At most this many: the most recent ones.
    pub limit: Option<usize>,
}

impl SqliteStore {
    /// Appends one event. An empty `ts` is stamped now; any other RFC 3339 `ts` is stored in
    /// the store's fixed format so time filters and ordering hold.
    pub(crate) fn record_event(&mut self, event: &Event) -> Result<(), StoreError> {
        insert(&self.conn, &self.path, self.integration, event)
    }

    /// `record_event` for many events in one transaction: all are stored or none.
    pub(crate) fn record_events(&mut self, events: &[Event]) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(path, "begin event batch")?;
        for event in events {
            insert(&tx, path, self.integration, event)?;
        }
        tx.commit().during(path, "commit event batch")
    }

    /// The events matching `query`, oldest first. With a limit, the most recent `limit` of
    /// them (still oldest first), like the tail of a log.
    pub(crate) fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let path = &self.path;
        let mut conditions: Vec<&str> = vec!["integration = ?"];
        let mut values: Vec<Value> = vec![Value::Integer(self.integration)];
        if let Some(since) = &query.since {
            let since = normalize_rfc3339(since).ok_or_else(|| StoreError::InvalidTimestamp {
                path: path.clone(),
                op: "query events since",
                value: since.clone(),
            })?;
            conditions.push("ts >= ?");
            values.push(Value::Text(since));
        }
        if let Some(event_type) = query.event_type {
            conditions.push("event_type = ?");
            values.push(Value::Text(event_type.as_str().to_owned()));
        }
        if query.failed_only {
            conditions.push("success = 0");
        }
        if let Some(user) = &query.user {
            conditions.push("user_name = ?");
            values.push(Value::Text(fold(user)));
        }
        if let Some(run) = query.run {
            conditions.push("run_id = ?");
            values.push(Value::Integer(run.0));
        }
        let filter = format!("WHERE {}", conditions.join(" AND "));
        // SQLite reads a negative LIMIT as none.
        let limit = query
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        values.push(Value::Integer(limit));
        // Newest first to apply the limit, then turned around.
        let sql = format!(
            "SELECT json FROM (SELECT id, ts, json FROM events {filter} \
             ORDER BY ts DESC, id DESC LIMIT ?) ORDER BY ts, id"
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .during(path, "query events")?;
        let mut rows = stmt
            .query(params_from_iter(values))
            .during(path, "query events")?;
        let mut events = Vec::new();
        while let Some(row) = rows.next().during(path, "query events")? {
            let json: String = row.get(0).during(path, "query events")?;
            events.push(serde_json::from_str(&json).during(path, "decode event")?);
        }
        Ok(events)
    }
}

fn insert(
    conn: &Connection,
    path: &Path,
    integration: i64,
    event: &Event,
) -> Result<(), StoreError> {
    let ts = if event.ts.is_empty() {
        now_rfc3339()
    } else {
        normalize_rfc3339(&event.ts).ok_or_else(|| StoreError::InvalidTimestamp {
            path: path.to_path_buf(),
            op: "record event",
            value: event.ts.clone(),
        })?
    };
    let json = if ts == event.ts {
        serde_json::to_string(event)
    } else {
        let mut stamped = event.clone();
        stamped.ts.clone_from(&ts);
        serde_json::to_string(&stamped)
    }
    .during(path, "encode event")?;
    let resource = event.resource.as_ref();
    let source_id = resource
        .and_then(|r| r.source_id.as_ref())
        .map(|s| s.as_str());
    let user_name = resource.and_then(|r| r.user_name.as_deref()).map(fold);
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO events \
             (ts, event_type, success, run_id, source_id, user_name, json, integration) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .during(path, "record event")?;
    stmt.execute(params![
        ts,
        event.event_type.as_str(),
        event.success,
        event.run_id.map(|r| r.0),
        source_id,
        user_name,
        json,
        integration,
    ])
    .during(path, "record event")?;
    Ok(())
}

/// The case-insensitive key of a userName. Done in Rust because SQLite's NOCASE folds ASCII
/// only, and email local parts may not be ASCII.
fn fold(user_name: &str) -> String {
    user_name.to_lowercase()
}
