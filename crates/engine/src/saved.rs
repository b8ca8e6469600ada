//! Saved plans (`plan --out FILE`, `sync --now --plan FILE`): a plan applies only to the world it
//! was computed from, so it carries what it was computed from and is refused when that changed.

use crate::cycle::Prepared;
use anyhow::{Context, Result, bail};
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

    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<SavedPlan> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let saved: SavedPlan = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a plan saved by `scimsync plan --out`",
                path.display()
            )
        })?;
        if saved.version != 1 {
            bail!(
                "{}: plan format version {} is not supported",
                path.display(),
                saved.version
            );
        }
        Ok(saved)
    }

    /// The plan recomputed now must be the saved one: otherwise the directory or the target
    /// moved under it, and applying it could undo or duplicate work.
    pub fn check_still_valid(&self, now: &Prepared) -> Result<()> {
        if now.snapshot_hash.as_deref() != Some(self.snapshot_hash.as_str()) {
            bail!(
                "refusing the saved plan: the directory snapshot changed since it was made; run `scimsync plan` again"
            );
        }
        if &self.plan != now.plan() {
            bail!(
                "refusing the saved plan: the target or the store changed since it was made; run `scimsync plan` again"
            );
        }
        Ok(())
    }
}
