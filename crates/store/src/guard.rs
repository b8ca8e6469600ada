//! The deletion guard's state: the set of losses the last held cycle held, and the approval
//! of such a set. Each is a header (when, why, by whom) and its losses, written whole in one
//! transaction so a reader never sees half a set.

use crate::error::{JsonContext, SqlContext};
use crate::{SqliteStore, StoreError};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use scimsync_model::{Approval, HeldSet, Loss, LossId, RunId};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

const HELD: &str = "held";
const APPROVED: &str = "approved";

#[derive(Serialize, Deserialize)]
struct HeldHeader {
    run_id: Option<RunId>,
    held_at: String,
    reasons: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ApprovalHeader {
    hold_run: Option<RunId>,
    digest: String,
    approved_at: String,
    approved_by: String,
    expires_at: String,
}

/// Who approves and until when: what `approve_hold` adds to the held set it copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalGrant {
    pub approved_at: String,
    pub approved_by: String,
    pub expires_at: String,
}

/// What `approve_hold` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApproveOutcome {
    Approved(Approval),
    /// No held set: nothing was changed.
    NothingHeld,
    /// The held set is not the one the caller expected (`approve-deletes --digest`): a cycle
    /// changed it since it was listed. Nothing was changed.
    DigestMismatch {
        held: HeldSet,
    },
}

impl SqliteStore {
    /// The set the last held cycle held, if it is still the current hold.
    pub(crate) fn hold(&self) -> Result<Option<HeldSet>, StoreError> {
        self.reader().hold()
    }

    /// Replaces the current hold with `held` (an empty set clears it).
    pub(crate) fn set_hold(&mut self, held: &HeldSet) -> Result<(), StoreError> {
        let header = HeldHeader {
            run_id: held.run_id,
            held_at: held.held_at.clone(),
            reasons: held.reasons.clone(),
        };
        let header = serde_json::to_string(&header).during(&self.path, "write hold")?;
        let losses = (!held.losses.is_empty()).then_some(held.losses.as_slice());
        self.replace_guard_set(HELD, losses.map(|l| (header, l)))
    }

    pub(crate) fn clear_hold(&mut self) -> Result<(), StoreError> {
        self.replace_guard_set(HELD, None)
    }

    /// The current approval, expired or not (the caller judges the time).
    pub(crate) fn approval(&self) -> Result<Option<Approval>, StoreError> {
        let Some(header) = self.guard_header(APPROVED)? else {
            return Ok(None);
        };
        let h: ApprovalHeader =
            serde_json::from_str(&header).during(&self.path, "read approval")?;
        Ok(Some(Approval {
            hold_run: h.hold_run,
            digest: h.digest,
            approved_at: h.approved_at,
            approved_by: h.approved_by,
            expires_at: h.expires_at,
            losses: self.guard_losses(APPROVED)?,
        }))
    }

    /// Approves exactly the current held set, in one transaction with reading it, so a cycle
    /// that replaces the hold meanwhile cannot slip another set under the approval. With
    /// `expect_digest` (a prefix of the digest, as listed), approves only if the held set still
    /// has that digest.
    pub(crate) fn approve_hold(
        &mut self,
        grant: &ApprovalGrant,
        expect_digest: Option<&str>,
    ) -> Result<ApproveOutcome, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&path, "begin approval")?;
        let outcome = {
            let store = StoreTx {
                tx: &tx,
                path: &path,
                integration: self.integration,
            };
            match store.hold()? {
                None => ApproveOutcome::NothingHeld,
                Some(held) => {
                    let digest = held.digest();
                    if expect_digest.is_some_and(|d| !digest.starts_with(&d.to_ascii_lowercase())) {
                        ApproveOutcome::DigestMismatch { held }
                    } else {
                        let approval = Approval {
                            hold_run: held.run_id,
                            digest,
                            approved_at: grant.approved_at.clone(),
                            approved_by: grant.approved_by.clone(),
                            expires_at: grant.expires_at.clone(),
                            losses: held.losses,
                        };
                        let header = ApprovalHeader {
                            hold_run: approval.hold_run,
                            digest: approval.digest.clone(),
                            approved_at: approval.approved_at.clone(),
                            approved_by: approval.approved_by.clone(),
                            expires_at: approval.expires_at.clone(),
                        };
                        let header =
                            serde_json::to_string(&header).during(&path, "write approval")?;
                        write_guard_set(
                            &tx,
                            &path,
                            self.integration,
                            APPROVED,
                            Some((header, approval.losses.as_slice())),
                        )?;
                        ApproveOutcome::Approved(approval)
                    }
                }
            }
        };
        tx.commit().during(&path, "commit approval")?;
        Ok(outcome)
    }

    /// Keeps of the approval only the losses in `remaining` (what is still to apply); an
    /// approval left with none is gone.
    pub(crate) fn narrow_approval(&mut self, remaining: &[&LossId]) -> Result<(), StoreError> {
        let Some(header) = self.guard_header(APPROVED)? else {
            return Ok(());
        };
        let keep: HashSet<String> = remaining.iter().map(|id| id.key()).collect();
        let losses: Vec<Loss> = self
            .guard_losses(APPROVED)?
            .into_iter()
            .filter(|l| keep.contains(&l.id.key()))
            .collect();
        let set = (!losses.is_empty()).then_some((header, losses.as_slice()));
        self.replace_guard_set(APPROVED, set)
    }

    pub(crate) fn clear_approval(&mut self) -> Result<(), StoreError> {
        self.replace_guard_set(APPROVED, None)
    }

    fn reader(&self) -> StoreTx<'_> {
        StoreTx {
            tx: &self.conn,
            path: &self.path,
            integration: self.integration,
        }
    }

    fn guard_header(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.reader().header(name)
    }

    fn guard_losses(&self, name: &str) -> Result<Vec<Loss>, StoreError> {
        self.reader().losses(name)
    }

    fn replace_guard_set(
        &mut self,
        name: &str,
        set: Option<(String, &[Loss])>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(&path, "begin guard write")?;
        write_guard_set(&tx, &path, self.integration, name, set)?;
        tx.commit().during(&path, "commit guard write")
    }
}

/// Reads over a connection or a transaction.
struct StoreTx<'a> {
    tx: &'a rusqlite::Connection,
    path: &'a std::path::Path,
    integration: i64,
}

impl StoreTx<'_> {
    fn header(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.tx
            .prepare_cached("SELECT header FROM guard_sets WHERE integration = ?1 AND name = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![self.integration, name], |row| row.get(0))
                    .optional()
            })
            .during(self.path, "read guard set")
    }

    fn losses(&self, name: &str) -> Result<Vec<Loss>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT loss FROM guard_losses WHERE integration = ?1 AND name = ?2 ORDER BY seq",
            )
            .during(self.path, "read guard losses")?;
        let rows = stmt
            .query_map(params![self.integration, name], |row| {
                row.get::<_, String>(0)
            })
            .during(self.path, "read guard losses")?;
        let mut losses = Vec::new();
        for row in rows {
            let json = row.during(self.path, "read guard losses")?;
            losses.push(serde_json::from_str(&json).during(self.path, "read guard loss")?);
        }
        Ok(losses)
    }

    fn hold(&self) -> Result<Option<HeldSet>, StoreError> {
        let Some(header) = self.header(HELD)? else {
            return Ok(None);
        };
        let header: HeldHeader = serde_json::from_str(&header).during(self.path, "read hold")?;
        Ok(Some(HeldSet {
            run_id: header.run_id,
            held_at: header.held_at,
            reasons: header.reasons,
            losses: self.losses(HELD)?,
        }))
    }
}

fn write_guard_set(
    tx: &rusqlite::Transaction<'_>,
    path: &std::path::Path,
    integration: i64,
    name: &str,
    set: Option<(String, &[Loss])>,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM guard_losses WHERE integration = ?1 AND name = ?2",
        params![integration, name],
    )
    .during(path, "clear guard losses")?;
    tx.execute(
        "DELETE FROM guard_sets WHERE integration = ?1 AND name = ?2",
        params![integration, name],
    )
    .during(path, "clear guard set")?;
    let Some((header, losses)) = set else {
        return Ok(());
    };
    tx.execute(
        "INSERT INTO guard_sets (integration, name, header) VALUES (?1, ?2, ?3)",
        params![integration, name, header],
    )
    .during(path, "write guard set")?;
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO guard_losses (integration, name, seq, loss_key, loss) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .during(path, "write guard losses")?;
    for (seq, loss) in losses.iter().enumerate() {
        let json = serde_json::to_string(loss).during(path, "write guard loss")?;
        stmt.execute(params![integration, name, seq as i64, loss.id.key(), json])
            .during(path, "write guard losses")?;
    }
    Ok(())
}
