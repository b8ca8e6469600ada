//! Links: which directory user (source id) is managed as which target user, with the attributes
//! and fingerprint last pushed.

use crate::error::{JsonContext, SqlContext};
use crate::{SqliteStore, StoreError, attrs_json, now_rfc3339};
use rusqlite::types::Type;
use rusqlite::{Connection, Row, TransactionBehavior, params};
use scimsync_model::{Attrs, KeyInterner, Link, RecordStamp, ScimId, SourceId};
use std::collections::{HashMap, HashSet};
use std::path::Path;

// One target user is one person's account, so it is managed for one directory user only: when
// a target id shows up under a new source id (the directory re-keyed the person, or a full
// read adopted the account for another record), the older link is stale, and keeping both
// would let the stale one deprovision the account the new one manages. The newest link wins:
// `EVICT` drops the other holder of the target id first. Schema 8 and before relied on
// `INSERT OR REPLACE` for this (it deleted every row conflicting on either key) and for
// forgetting the record stamp, a column the statement did not name; `UPSERT` says both.
const EVICT: &str =
    "DELETE FROM links WHERE integration = ?1 AND target_id = ?2 AND source_id <> ?3";
const UPSERT: &str = "INSERT INTO links \
     (integration, source_id, target_id, user_name, active, attrs, hash, updated_at, record) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL) \
     ON CONFLICT (integration, source_id) DO UPDATE SET \
       target_id = excluded.target_id, user_name = excluded.user_name, \
       active = excluded.active, attrs = excluded.attrs, hash = excluded.hash, \
       updated_at = excluded.updated_at, record = NULL";

/// Every column of a link: a head's (see `HEADS`, same order), then the attributes.
const SELECT: &str = "SELECT source_id, target_id, user_name, active, hash, attrs FROM links";

/// Every link without its attributes, in source id order, with its record stamp: answered from
/// the `links_heads` covering index (migrations 3 and 4), a sixth of the table's pages.
const HEADS: &str = "SELECT source_id, target_id, user_name, active, hash, record FROM links \
     WHERE integration = ?1 ORDER BY source_id";

/// The page cache while stamping records, in KiB as `PRAGMA cache_size` takes it negated.
const STAMP_CACHE_KIB: i64 = -16_384;

/// A record stamp to store (see [`Store::stamp_records`]), with the link state it was proved
/// against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampedLink {
    pub source_id: SourceId,
    pub user_name: String,
    pub active: bool,
    /// The link's fingerprint when the record was proved equal to it.
    pub hash: String,
    pub stamp: RecordStamp,
}

impl StampedLink {
    /// `stamp` for `link` as loaded (its fingerprint, userName and active flag).
    pub fn proved(link: &Link, stamp: RecordStamp) -> Self {
        StampedLink {
            source_id: link.source_id.clone(),
            user_name: link.user_name.clone(),
            active: link.active,
            hash: link.hash.clone(),
            stamp,
        }
    }
}

/// Link heads as an incremental cycle loads them.
pub struct LinkHeads {
    /// Every link, in source id order, its attributes empty.
    pub links: Vec<Link>,
    /// Aligned with `links`: the record each was last proved equal to, if any.
    pub stamps: Vec<Option<RecordStamp>>,
}

impl SqliteStore {
    /// Every link, ordered by source id.
    pub(crate) fn links(&self) -> Result<Vec<Link>, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "{SELECT} WHERE integration = ?1 ORDER BY source_id"
            ))
            .during(path, "read links")?;
        let mut rows = stmt.query([self.integration]).during(path, "read links")?;
        let mut links = Vec::new();
        let mut paths = KeyInterner::default();
        while let Some(row) = rows.next().during(path, "read links")? {
            links.push(link_from_row(row, path, &mut paths)?);
        }
        drop(rows);
        self.release_scan_cache()?;
        Ok(links)
    }

    /// Every link, ordered by source id, with its attributes left empty: what an incremental
    /// cycle needs of an unchanged user is its hash. `fill_link_attrs` then decodes the
    /// attributes of the few it will touch.
    /// Each comes with its record stamp.
    pub(crate) fn link_heads(&self) -> Result<LinkHeads, StoreError> {
        let path = &self.path;
        let mut stmt = self.conn.prepare_cached(HEADS).during(path, "read links")?;
        // Sized up front: growing a vector of a million heads by doubling would briefly hold
        // one and a half copies of it.
        let count = self.link_count()?;
        let mut rows = stmt.query([self.integration]).during(path, "read links")?;
        let mut links = Vec::with_capacity(count);
        let mut stamps = Vec::with_capacity(count);
        while let Some(row) = rows.next().during(path, "read links")? {
            links.push(head_from_row(row).during(path, "read link")?);
            // A stamp is a hint: one that does not decode is no stamp.
            let stamp = row
                .get_ref(5)
                .ok()
                .and_then(|v| v.as_blob().ok())
                .and_then(RecordStamp::from_bytes);
            stamps.push(stamp);
        }
        drop(rows);
        self.release_scan_cache()?;
        Ok(LinkHeads { links, stamps })
    }

    /// Stores record stamps in one transaction, each only if its link still has the
    /// fingerprint, userName and active flag it was proved against (a link written since keeps
    /// none). Returns how many were stored. Written in source id order, as `upsert_links`
    /// writes: the first cycle after a full one stamps every link.
    pub(crate) fn stamp_records(&mut self, stamped: &[StampedLink]) -> Result<usize, StoreError> {
        if stamped.is_empty() {
            return Ok(0);
        }
        let mut stamped: Vec<&StampedLink> = stamped.iter().collect();
        stamped.sort_unstable_by(|a, b| a.source_id.cmp(&b.source_id));
        // Stamping touches every page of the table and its index once: a small cache spills
        // them as it goes rather than holding the whole database dirty until the commit.
        self.conn
            .pragma_update(None, "cache_size", STAMP_CACHE_KIB)
            .during(&self.path, "size the cache for stamping")?;
        let stored = self.stamp_sorted(&stamped);
        self.conn
            .pragma_update(None, "cache_size", crate::sqlite::CACHE_KIB)
            .during(&self.path, "size the cache")?;
        self.release_scan_cache()?;
        stored
    }

    fn stamp_sorted(&mut self, stamped: &[&StampedLink]) -> Result<usize, StoreError> {
        let path = &self.path;
        let integration = self.integration;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(path, "begin record stamps")?;
        let mut stored = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE links SET record = ?6 WHERE integration = ?1 \
                     AND source_id = ?2 AND hash = ?3 AND user_name = ?4 AND active = ?5",
                )
                .during(path, "stamp records")?;
            for link in stamped {
                stored += stmt
                    .execute(params![
                        integration,
                        link.source_id.as_str(),
                        link.hash,
                        link.user_name,
                        link.active,
                        &link.stamp.to_bytes()[..],
                    ])
                    .during(path, "stamp records")?;
            }
        }
        tx.commit().during(path, "commit record stamps")?;
        Ok(stored)
    }

    /// A whole-table scan fills the page cache (up to 256 MiB, sized for bulk upserts) with
    /// pages no one reads again this cycle: hand them back before the cycle needs the memory.
    fn release_scan_cache(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA shrink_memory")
            .during(&self.path, "release the page cache")
    }

    /// Decodes the stored attributes of the links `wanted` picks by position and link (heads
    /// from `link_heads`).
    /// Returns how many were filled.
    pub(crate) fn fill_link_attrs(
        &self,
        links: &mut [Link],
        wanted: &dyn Fn(usize, &Link) -> bool,
    ) -> Result<usize, StoreError> {
        let path = &self.path;
        let picked: Vec<usize> = (0..links.len()).filter(|&i| wanted(i, &links[i])).collect();
        let mut paths = KeyInterner::default();
        // A point query each is cheapest for the usual handful; past about one in eight, one
        // ordered scan beats that many index descents.
        if picked.len() * 8 < links.len() {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT attrs FROM links WHERE integration = ?1 AND source_id = ?2")
                .during(path, "read link attributes")?;
            for &i in &picked {
                let mut rows = stmt
                    .query(params![self.integration, links[i].source_id.as_str()])
                    .during(path, "read link attributes")?;
                if let Some(row) = rows.next().during(path, "read link attributes")? {
                    links[i].attrs =
                        attrs_at(row, 0, &mut paths).during(path, "read link attributes")?;
                }
            }
        } else {
            let index: HashMap<&str, usize> = picked
                .iter()
                .map(|&i| (links[i].source_id.as_str(), i))
                .collect();
            let mut found = Vec::with_capacity(picked.len());
            let mut stmt = self
                .conn
                .prepare_cached("SELECT attrs, source_id FROM links WHERE integration = ?1")
                .during(path, "read link attributes")?;
            let mut rows = stmt
                .query([self.integration])
                .during(path, "read link attributes")?;
            while let Some(row) = rows.next().during(path, "read link attributes")? {
                let source = row
                    .get_ref(1)
                    .and_then(|v| Ok(v.as_str()?))
                    .during(path, "read link attributes")?;
                if let Some(&i) = index.get(source) {
                    found.push((
                        i,
                        attrs_at(row, 0, &mut paths).during(path, "read link attributes")?,
                    ));
                }
            }
            drop(rows);
            drop(index);
            for (i, attrs) in found {
                links[i].attrs = attrs;
            }
            self.release_scan_cache()?;
        }
        Ok(picked.len())
    }

    /// The link of one directory user, if it is managed.
    pub(crate) fn link(&self, source_id: &SourceId) -> Result<Option<Link>, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "{SELECT} WHERE integration = ?1 AND source_id = ?2"
            ))
            .during(path, "read link")?;
        let mut rows = stmt
            .query(params![self.integration, source_id.as_str()])
            .during(path, "read link")?;
        match rows.next().during(path, "read link")? {
            Some(row) => Ok(Some(link_from_row(row, path, &mut KeyInterner::default())?)),
            None => Ok(None),
        }
    }

    /// Inserts or replaces the link of `link.source_id`. A link another source id held to the
    /// same target id is removed: one target user is managed for one directory user.
    pub(crate) fn upsert_link(&mut self, link: &Link) -> Result<(), StoreError> {
        upsert(
            &self.conn,
            &self.path,
            self.integration,
            link,
            &now_rfc3339(),
        )
    }

    /// `upsert_link` for many links in one transaction: all are stored or none. The result is
    /// the same as upserting them one by one in order (later entries win over earlier ones with
    /// the same source or target id), but the rows are written in source id order, which keeps
    /// the primary key's pages sequential: several times faster on large batches.
    pub(crate) fn upsert_links(&mut self, links: &[Link]) -> Result<(), StoreError> {
        let path = &self.path;
        let (mut survivors, superseded) = resolve_batch(links);
        survivors.sort_unstable_by(|a, b| a.source_id.cmp(&b.source_id));
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(path, "begin link batch")?;
        // A superseded entry never lands, but inserting it one by one would have evicted the
        // stored rows it conflicts with, so those go now.
        for link in superseded {
            tx.prepare_cached(
                "DELETE FROM links WHERE integration = ?1 AND (source_id = ?2 OR target_id = ?3)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    self.integration,
                    link.source_id.as_str(),
                    link.target_id.as_str()
                ])
            })
            .during(path, "upsert link batch")?;
        }
        let now = now_rfc3339();
        for link in survivors {
            upsert(&tx, path, self.integration, link, &now)?;
        }
        tx.commit().during(path, "commit link batch")
    }

    /// Forgets a directory user's link. Removing a link that does not exist is not an error.
    pub(crate) fn remove_link(&mut self, source_id: &SourceId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM links WHERE integration = ?1 AND source_id = ?2")
            .and_then(|mut stmt| stmt.execute(params![self.integration, source_id.as_str()]))
            .during(&self.path, "remove link")?;
        Ok(())
    }

    /// How many directory users are managed.
    pub(crate) fn link_count(&self) -> Result<usize, StoreError> {
        let count: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM links WHERE integration = ?1")
            .and_then(|mut stmt| stmt.query_row([self.integration], |row| row.get(0)))
            .during(&self.path, "count links")?;
        // count(*) is never negative.
        Ok(usize::try_from(count).unwrap_or(0))
    }
}

/// Splits a batch into the entries that would survive upserting it in order (no later entry
/// shares their source or target id; pairwise disjoint, so their order no longer matters) and
/// the entries a later one supersedes.
fn resolve_batch(links: &[Link]) -> (Vec<&Link>, Vec<&Link>) {
    let mut later_sources = HashSet::with_capacity(links.len());
    let mut later_targets = HashSet::with_capacity(links.len());
    let mut survivors = Vec::with_capacity(links.len());
    let mut superseded = Vec::new();
    for link in links.iter().rev() {
        let fresh_source = later_sources.insert(link.source_id.as_str());
        let fresh_target = later_targets.insert(link.target_id.as_str());
        if fresh_source && fresh_target {
            survivors.push(link);
        } else {
            superseded.push(link);
        }
    }
    (survivors, superseded)
}

fn upsert(
    conn: &Connection,
    path: &Path,
    integration: i64,
    link: &Link,
    now: &str,
) -> Result<(), StoreError> {
    let attrs = serde_json::to_string(&link.attrs).during(path, "encode link attributes")?;
    conn.prepare_cached(EVICT)
        .and_then(|mut stmt| {
            stmt.execute(params![
                integration,
                link.target_id.as_str(),
                link.source_id.as_str()
            ])
        })
        .during(path, "upsert link")?;
    let mut stmt = conn.prepare_cached(UPSERT).during(path, "upsert link")?;
    stmt.execute(params![
        integration,
        link.source_id.as_str(),
        link.target_id.as_str(),
        link.user_name,
        link.active,
        attrs,
        link.hash,
        now,
    ])
    .during(path, "upsert link")?;
    Ok(())
}

fn link_from_row(row: &Row<'_>, path: &Path, paths: &mut KeyInterner) -> Result<Link, StoreError> {
    let mut get = |row: &Row<'_>| -> rusqlite::Result<Link> {
        let mut link = head_from_row(row)?;
        link.attrs = attrs_at(row, 5, paths)?;
        Ok(link)
    };
    get(row).during(path, "read link")
}

/// A link head from the first five columns of `HEADS` or `SELECT`; its attributes are empty.
fn head_from_row(row: &Row<'_>) -> rusqlite::Result<Link> {
    Ok(Link {
        source_id: SourceId(row.get(0)?),
        target_id: ScimId(row.get(1)?),
        user_name: row.get(2)?,
        active: row.get(3)?,
        attrs: Attrs::new(),
        hash: row.get(4)?,
    })
}

/// The attributes JSON in `column`, decoded with shared paths.
fn attrs_at(row: &Row<'_>, column: usize, paths: &mut KeyInterner) -> rusqlite::Result<Attrs> {
    // Borrowed, not copied into a String: this runs once per link on a whole load.
    attrs_json::decode(row.get_ref(column)?.as_str()?, paths)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, Type::Text, Box::new(e)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The heads scan must not read the attributes: SQLite answers it from the covering index,
    /// in order, with no sort and no table lookups.
    #[test]
    fn heads_are_read_from_the_covering_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {HEADS}"))
            .unwrap()
            .query_map([1], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            ["SEARCH links USING COVERING INDEX links_heads (integration=?)"]
        );
    }
}
