//! Saved plans (`plan --out FILE`, `sync --now --plan FILE`): a plan applies only to the world it
//! was computed from, so it carries what it was computed from and is refused when that changed.

pub use crate::error::SavedPlanError;
use crate::prepare::Prepared;
use scimsync_model::Plan;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub version: u32,
    pub created_at: String,
    pub snapshot_hash: String,
    pub full: bool,
    pub plan: Plan,
}

impl SavedPlan {
    pub fn from_prepared(prepared: &Prepared) -> SavedPlan {
        SavedPlan {
            version: 1,
            created_at: scimsync_store::now_rfc3339(),
            // Prepared with a digest whenever a plan is saved (`commands::plan`).
            snapshot_hash: prepared.snapshot_hash.clone().unwrap_or_default(),
            full: prepared.full,
            plan: prepared.plan().clone(),
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), SavedPlanError> {
        let write = |source| SavedPlanError::Write {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| write(e.into()))?;
        std::fs::write(path, json).map_err(write)
    }

    pub fn read(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        let bytes = std::fs::read(path).map_err(|source| SavedPlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let saved: SavedPlan =
            serde_json::from_slice(&bytes).map_err(|source| SavedPlanError::NotAPlan {
                path: path.to_path_buf(),
                source,
            })?;
        if saved.version != 1 {
            return Err(SavedPlanError::Version {
                path: path.to_path_buf(),
                version: saved.version,
            });
        }
        Ok(saved)
    }

    /// The plan recomputed now must be the saved one: otherwise the directory or the target
    /// moved under it, and applying it could undo or duplicate work.
    pub fn check_still_valid(&self, now: &Prepared) -> Result<(), SavedPlanError> {
        if now.snapshot_hash.as_deref() != Some(self.snapshot_hash.as_str()) {
            return Err(SavedPlanError::SnapshotChanged);
        }
        if &self.plan != now.plan() {
            return Err(SavedPlanError::PlanChanged);
        }
        Ok(())
    }
}
