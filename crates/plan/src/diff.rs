//! Attribute-level comparison of what the directory wants with what the target holds.

use scimsync_model::{Attrs, Change, paths};
use std::collections::BTreeSet;

/// The attribute changes (not userName, not active) that bring `target` to `desired`, by path.
///
/// Only paths scimsync owns are touched: those it wants now, and those it pushed before
/// (`pushed`, from the link) and no longer wants, which are removed. An attribute only the
/// target has was set by someone else and stays. `create_only` paths are derived by the target
/// (Miro splits displayName into given and family names), so comparing them would flap.
pub(crate) fn attr_changes(
    desired: &Attrs,
    target: &Attrs,
    pushed: Option<&Attrs>,
    create_only: &BTreeSet<String>,
) -> Vec<Change> {
    let compared = |path: &str| {
        path != paths::USER_NAME && path != paths::ACTIVE && !create_only.contains(path)
    };
    let mut changes = Vec::new();
    for (path, want) in desired {
        if !compared(path) {
            continue;
        }
        let have = target.get(path);
        if have != Some(want) {
            changes.push(Change {
                path: path.to_string(),
                old: have.cloned(),
                new: Some(want.clone()),
            });
        }
    }
    for path in pushed.into_iter().flat_map(Attrs::keys) {
        if !compared(path) || desired.contains_key(path) {
            continue;
        }
        if let Some(have) = target.get(path) {
            changes.push(Change {
                path: path.to_string(),
                old: Some(have.clone()),
                new: None,
            });
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    changes
}
