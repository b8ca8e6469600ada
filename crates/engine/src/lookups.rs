//! Which unlinked users an incremental cycle looks up. A suspended directory user the target
//! does not hold is planned as a skip ("inactive, not provisioned"); looking it up again on
//! every cycle would spend a request of the GET budget each time to learn nothing, so the skip
//! is remembered, and while the user stays suspended only a full cycle (`schedule.full_every`,
//! or `sync --now --full`) looks for it in the target again, as it does for missing teams.
//! Once the user is active again (a create, or an adoption) the mark is dropped.

use scimsync_model::{DesiredUser, Op, Plan, SkipReason};
use scimsync_store::{Store, StoreError};
use std::collections::HashSet;

/// userNames of the unlinked users not to look up: suspended, and found absent before.
pub fn known_absent(
    store: &Store,
    unlinked: &[&DesiredUser],
) -> Result<HashSet<String>, StoreError> {
    let mut absent = HashSet::new();
    for user in unlinked.iter().filter(|u| !u.active) {
        if store
            .meta(&crate::meta::absent_inactive_key(&user.user_name))?
            .is_some()
        {
            absent.insert(user.user_name.clone());
        }
    }
    Ok(absent)
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
            } => {
                let key = crate::meta::absent_inactive_key(user_name);
                if store.meta(&key)?.is_none() {
                    store.set_meta(&key, &scimsync_store::now_rfc3339())?;
                }
            }
            Op::Create { user_name, .. } | Op::Adopt { user_name, .. } => {
                let key = crate::meta::absent_inactive_key(user_name);
                if store.meta(&key)?.is_some() {
                    store.remove_meta(&key)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
