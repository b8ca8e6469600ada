//! Which unlinked users an incremental cycle looks up. A suspended directory user the target
//! does not hold is planned as a skip ("inactive, not provisioned"); looking it up again on
//! every cycle would spend a request of the GET budget each time to learn nothing, so the skip
//! is remembered, and while the user stays suspended only a full cycle (`schedule.full_every`,
//! or `sync --now --full`) looks for it in the target again, as it does for missing teams.
//! Once the user is active again (a create, or an adoption) the mark is dropped.

use scimsync_model::{DesiredUser, Op, Plan, SkipReason};
use scimsync_store::{Mark, Store, StoreError};
use std::collections::HashSet;

/// userNames of the unlinked users not to look up: suspended, and found absent before.
pub fn known_absent(
    store: &Store,
    unlinked: &[&DesiredUser],
) -> Result<HashSet<String>, StoreError> {
    let known = store.marks(Mark::AbsentInactive)?;
    Ok(unlinked
        .iter()
        .filter(|u| !u.active && known.contains_key(&Mark::AbsentInactive.key(&u.user_name)))
        .map(|u| u.user_name.clone())
        .collect())
}

/// After a cycle: marks the suspended users the plan skipped as absent from the target, and
/// drops the mark of users the cycle creates or adopts.
pub fn remember(store: &mut Store, plan: &Plan) -> Result<(), StoreError> {
    for op in &plan.ops {
        match op {
            Op::Skip {
                user_name,
                reason: SkipReason::InactiveNotProvisioned,
                ..
            } => store.mark(Mark::AbsentInactive, user_name)?,
            Op::Create { user_name, .. } | Op::Adopt { user_name, .. } => {
                store.unmark(Mark::AbsentInactive, user_name)?;
            }
            _ => {}
        }
    }
    Ok(())
}
