//! Profiles: what one kind of service provider needs from the client.

use crate::{Budgets, CapabilityOverrides};
use scimsync_model::paths;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    /// Miro's SCIM API and its deviations from the RFCs (miro-scim.md §10).
    #[default]
    Miro,
    /// Any RFC 7643/7644 service provider.
    Generic,
}

/// Case of PatchOp `op` values: RFC 7644 uses `replace`, Miro's prose `Replace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OpCase {
    #[default]
    Lower,
    Capitalized,
}

impl OpCase {
    /// `op` ("add" | "remove" | "replace") in this case.
    pub fn op(self, op: &str) -> String {
        match self {
            OpCase::Lower => op.to_ascii_lowercase(),
            OpCase::Capitalized => {
                let lower = op.to_ascii_lowercase();
                let mut chars = lower.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub kind: ProfileKind,
    pub op_case: OpCase,
    /// Attributes sent on create but never compared or patched afterwards (Miro stores only the
    /// display name and derives the given and family names).
    pub create_only: BTreeSet<String>,
    /// Attributes the SP refuses to change while the user is deactivated.
    pub frozen_while_inactive: BTreeSet<String>,
    /// `count` asked for per page of a list.
    pub page_size: usize,
    pub budgets: Budgets,
    /// sync.toml's `[target.capabilities]`, applied over what the SP announces.
    pub capabilities: CapabilityOverrides,
}

impl Profile {
    pub fn miro() -> Profile {
        Profile {
            kind: ProfileKind::Miro,
            // Miro accepts both cases; lowercase is RFC-canonical (miro-scim.md §6).
            op_case: OpCase::Lower,
            create_only: [paths::GIVEN_NAME, paths::FAMILY_NAME]
                .map(String::from)
                .into(),
            frozen_while_inactive: [paths::USER_NAME, paths::ROLE, paths::USER_TYPE]
                .map(String::from)
                .into(),
            page_size: 100,
            budgets: Budgets::miro(),
            capabilities: CapabilityOverrides::default(),
        }
    }

    pub fn generic() -> Profile {
        Profile {
            kind: ProfileKind::Generic,
            op_case: OpCase::Lower,
            create_only: BTreeSet::new(),
            frozen_while_inactive: BTreeSet::new(),
            page_size: 100,
            // No budget unless sync.toml sets one: the client backs off on 429 and Retry-After.
            budgets: Budgets::unlimited(),
            capabilities: CapabilityOverrides::default(),
        }
    }

    pub fn for_kind(kind: ProfileKind) -> Profile {
        match kind {
            ProfileKind::Miro => Profile::miro(),
            ProfileKind::Generic => Profile::generic(),
        }
    }

    pub fn is_miro(&self) -> bool {
        self.kind == ProfileKind::Miro
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_case() {
        assert_eq!(OpCase::Lower.op("Replace"), "replace");
        assert_eq!(OpCase::Capitalized.op("replace"), "Replace");
        assert_eq!(OpCase::Capitalized.op("REMOVE"), "Remove");
    }

    #[test]
    fn for_kind_picks_the_profile() {
        assert_eq!(Profile::for_kind(ProfileKind::Miro), Profile::miro());
        assert_eq!(Profile::for_kind(ProfileKind::Generic), Profile::generic());
        assert!(
            Profile::miro()
                .frozen_while_inactive
                .contains(paths::USER_NAME)
        );
        assert!(Profile::generic().create_only.is_empty());
    }
}
