//! Profiles: what one kind of service provider needs from the client.

use crate::{Budgets, Capabilities, CapabilityOverrides};
use scimsync_model::GroupModel;
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

/// How the target holds a user's emails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailRule {
    /// Derived from userName and read-only (Miro): never sent, never compared; an email
    /// change is a userName change.
    DerivedFromUserName,
    /// Stored like any attribute (RFC 7643): the work email follows userName, is sent on
    /// create, read back and compared, and corrected when the target's differs.
    WorkEmail,
}

/// When a user carries the primary role (`roles[primary eq true].value`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleRule {
    /// Every user has one (Miro: exactly one `organization_user_role`), from `[roles]`.
    Always {
        /// The `type` of the role entry in a POST body (Miro: `organization_user_role`); also
        /// the entry preferred when reading a user with several primary roles.
        entry_type: Option<String>,
    },
    /// Only when sync.toml maps roles (`[roles] admin_groups`); otherwise roles are not
    /// managed at all: never sent, never compared.
    WhenMapped,
}

/// The most characters the target keeps in one attribute (or in several together: Miro's
/// given and family names share 60). A value over it is a per-record error, or truncated where
/// the mapping says `truncate = true`; never a 400 from the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueLimit {
    /// One path, or the paths whose values count together (joined by a space).
    pub paths: Vec<String>,
    pub max_chars: usize,
}

impl ValueLimit {
    fn one(path: &str, max_chars: usize) -> ValueLimit {
        ValueLimit {
            paths: vec![path.to_owned()],
            max_chars,
        }
    }
}

/// How the target licenses a user: which attribute carries the licence, the values it
/// accepts, and what a PATCH may change it to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenceRule {
    /// Miro: `userType`.
    pub path: String,
    /// The values the target accepts, in its spelling (matched case-insensitively, sent as
    /// spelled here).
    pub values: Vec<String>,
    /// The one value a change may go to over SCIM (Miro: "PATCH can only upgrade", to Full).
    /// Any other change is a downgrade or a move the target refuses: never sent.
    pub upgrades_to: String,
}

impl LicenceRule {
    /// The accepted value `value` stands for (case-insensitively), in the target's spelling.
    pub fn canonical(&self, value: &str) -> Option<&str> {
        let value = value.trim();
        self.values
            .iter()
            .find(|v| v.eq_ignore_ascii_case(value))
            .map(String::as_str)
    }

    /// Whether a change of the licence from `from` (unknown: `None`) to `to` may be sent.
    pub fn allows(&self, from: Option<&str>, to: &str) -> bool {
        let upgrade = to.trim().eq_ignore_ascii_case(&self.upgrades_to);
        let same = from.is_some_and(|from| from.trim().eq_ignore_ascii_case(to.trim()));
        upgrade || same
    }
}

/// Miro's licences (miro-scim.md §3: "only licence types the org supports are accepted").
pub const MIRO_LICENCES: [&str; 7] = [
    "Full",
    "Free",
    "Free Restricted",
    "Full (Trial)",
    "Basic",
    "Standard",
    "Advanced",
];

/// Everything scimsync knows of one kind of service provider, as data: what it derives, what
/// it freezes, what it accepts, its budgets and its group model. Code reads these fields; it
/// never asks which SP this is.
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
    /// Capabilities the profile documents (Miro's, never read from the SP); `None`: the SP is
    /// asked (`/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`).
    pub fixed_capabilities: Option<Capabilities>,
    pub emails: EmailRule,
    pub roles: RoleRule,
    /// Whether a POST body lists the extension schemas it carries in `schemas` (RFC 7643
    /// §3; Miro's own schema enumerates the core URN only).
    pub list_extensions_in_schemas: bool,
    /// What a SCIM Group is: Miro's legacy teams (never created or deleted) or groups.
    pub group_model: GroupModel,
    /// Whether a group is created with its members in the POST (else empty, then PATCHed).
    /// Discovery can turn it off (a `members` attribute the SP declares read-only).
    pub group_members_on_create: bool,
    /// Whether a numeric member id goes unquoted in a remove path (`members[value eq 42]`,
    /// as Miro documents it); RFC 7644 quotes string values.
    pub unquoted_numeric_member_ids: bool,
    /// Whether a PATCH may be answered 204 No Content (RFC 7644 §3.5.2). Miro documents 200
    /// with the whole resource, so an empty answer there confirms nothing.
    pub patch_may_answer_no_content: bool,
    /// Whether the target refuses a second account of a userName (in any case): then a create
    /// that this cycle's own read did not find may POST without a lookup first, because a
    /// "not unique" answer is resolved by lookup and adoption. Miro does; a generic SP is
    /// looked up first.
    pub refuses_duplicate_user_names: bool,
    /// The longest values the target keeps, checked before anything is sent.
    pub limits: Vec<ValueLimit>,
    /// The licence attribute and its rules (Miro's `userType`); `None`: not a licence.
    pub licence: Option<LicenceRule>,
    /// The `type` of the extra role entries `[roles] admin_roles` maps (Miro:
    /// `organization_admin_role`); `None`: the target has none.
    pub admin_role_type: Option<String>,
    /// The longest group name the target keeps (Miro truncates a user group's at 60, so a
    /// longer one would never match again).
    pub group_name_max_chars: Option<usize>,
    /// Whether a reactivation goes as a PATCH of its own, before the attributes the target
    /// freezes while a user is deactivated (Miro: userName, userType, roles). Whether Miro
    /// applies the operations of one PATCH in order is not documented, so they are not
    /// trusted to.
    pub reactivate_apart: bool,
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
            fixed_capabilities: Some(Capabilities::miro()),
            emails: EmailRule::DerivedFromUserName,
            roles: RoleRule::Always {
                entry_type: Some(MIRO_USER_ROLE_TYPE.to_owned()),
            },
            list_extensions_in_schemas: false,
            // Since 2026 a SCIM Group is a user group; sync.toml keeps `team` for orgs Miro
            // has not migrated.
            group_model: GroupModel::UserGroup,
            // Not documented for Miro's user groups ([I]): members go as PATCHes, which are.
            group_members_on_create: false,
            unquoted_numeric_member_ids: true,
            patch_may_answer_no_content: false,
            refuses_duplicate_user_names: true,
            // miro-scim.md §3's attribute table.
            limits: vec![
                ValueLimit::one(paths::DISPLAY_NAME, 60),
                ValueLimit {
                    paths: vec![paths::GIVEN_NAME.to_owned(), paths::FAMILY_NAME.to_owned()],
                    max_chars: 60,
                },
                ValueLimit::one(paths::EMPLOYEE_NUMBER, 20),
                ValueLimit::one(paths::ORGANIZATION, 120),
                ValueLimit::one(paths::DEPARTMENT, 120),
                ValueLimit::one(paths::COST_CENTER, 120),
                ValueLimit::one(paths::DIVISION, 120),
            ],
            licence: Some(LicenceRule {
                path: paths::USER_TYPE.to_owned(),
                values: MIRO_LICENCES.map(String::from).into(),
                upgrades_to: "Full".to_owned(),
            }),
            admin_role_type: Some(MIRO_ADMIN_ROLE_TYPE.to_owned()),
            group_name_max_chars: Some(60),
            reactivate_apart: true,
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
            fixed_capabilities: None,
            emails: EmailRule::WorkEmail,
            roles: RoleRule::WhenMapped,
            list_extensions_in_schemas: true,
            group_model: GroupModel::UserGroup,
            group_members_on_create: true,
            unquoted_numeric_member_ids: false,
            patch_may_answer_no_content: true,
            refuses_duplicate_user_names: false,
            limits: Vec::new(),
            licence: None,
            admin_role_type: None,
            group_name_max_chars: None,
            reactivate_apart: false,
        }
    }

    pub fn for_kind(kind: ProfileKind) -> Profile {
        match kind {
            ProfileKind::Miro => Profile::miro(),
            ProfileKind::Generic => Profile::generic(),
        }
    }

    /// Whether the target creates and deletes groups (else it only lists and PATCHes them).
    pub fn can_create_groups(&self) -> bool {
        self.group_model == GroupModel::UserGroup
    }

    /// The `type` of a role entry this profile writes and prefers when reading.
    pub fn role_entry_type(&self) -> Option<&str> {
        match &self.roles {
            RoleRule::Always { entry_type } => entry_type.as_deref(),
            RoleRule::WhenMapped => None,
        }
    }

    /// Whether emails are sent, read and compared (else derived by the target).
    pub fn manages_emails(&self) -> bool {
        self.emails == EmailRule::WorkEmail
    }

    /// Whether the target refuses to change `path` while the user is deactivated (an admin
    /// role entry is a role like the primary one).
    pub fn is_frozen(&self, path: &str) -> bool {
        self.frozen_while_inactive.contains(path)
            || (paths::is_admin_role(path) && self.frozen_while_inactive.contains(paths::ROLE))
    }
}

/// Miro's type of the one primary organisation role (miro-scim.md §3 "roles").
pub const MIRO_USER_ROLE_TYPE: &str = "organization_user_role";

/// Miro's type of the admin roles a user may hold besides it (Content Admin, User Admin,
/// Security Admin, custom ones).
pub const MIRO_ADMIN_ROLE_TYPE: &str = "organization_admin_role";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_upgrade_to_full_is_a_licence_change_miro_takes() {
        let rule = Profile::miro()
            .licence
            .unwrap_or_else(|| panic!("miro has a licence rule"));
        assert_eq!(rule.canonical(" free restricted "), Some("Free Restricted"));
        assert_eq!(rule.canonical("Enterprise"), None);
        assert!(rule.allows(Some("Free"), "Full"));
        assert!(rule.allows(None, "full"));
        assert!(rule.allows(Some("Basic"), "Basic"));
        assert!(!rule.allows(Some("Full"), "Free"));
        assert!(!rule.allows(Some("Free"), "Basic"));
        assert!(!rule.allows(None, "Free"));
    }

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
        // What differs is data, read where it matters.
        assert!(!Profile::miro().manages_emails() && Profile::generic().manages_emails());
        // Miro's model since 2026 is user groups; sync.toml keeps teams for legacy orgs.
        assert!(Profile::miro().can_create_groups() && Profile::generic().can_create_groups());
        assert!(Profile::miro().is_frozen(&paths::admin_role("Content Admin")));
        assert!(!Profile::generic().is_frozen(paths::USER_NAME));
        assert_eq!(Profile::miro().role_entry_type(), Some(MIRO_USER_ROLE_TYPE));
        assert_eq!(Profile::generic().roles, RoleRule::WhenMapped);
    }
}
