//! Reads the directory (the source of truth) and turns it into the users the target should hold.
//!
//! Readers (`read_json`, `parse_json`, `read_csv`) produce a [`Snapshot`]; [`map`] applies
//! validation, `[scope]`, `[roles]` and the compiled `[mapping]` to it and sorts every user into
//! desired, out of scope, or invalid. An incremental cycle reads a JSON file keyed instead
//! ([`scan_json`], then [`ScannedJson::resolve`] against the links' record stamps) and maps it
//! with [`map_keyed`], which takes a recognised record as its link describes it.
//!
//! Architecture Invariant: a read is all or nothing. A reader returns a whole snapshot or an
//! error, never part of one: a short snapshot would look like people left and get them
//! deprovisioned.
//!
//! Architecture Invariant: [`map`] is pure (no IO, no clock) and total: a bad record becomes an
//! [`InvalidRecord`] naming the user and field, and that user is in neither `desired` nor
//! `out_of_scope`, so the planner leaves its account alone.
//!
//! Architecture Invariant: this crate knows nothing of SCIM transport or the store; among
//! scimsync crates it uses `scimsync-model` alone.

mod config;
mod context;
mod csv_source;
mod desired;
mod email;
mod error;
mod expr;
mod groups;
mod integrity;
mod json;
mod keyed;
mod ldap;
mod mapping;
mod scope_filter;
mod utf8;

#[cfg(test)]
mod tests;

pub use config::{Apply, ExprOverride, MappingConfig, Override, Preset, RolesConfig, ScopeConfig};
pub use csv_source::read_csv;
pub use desired::{
    InvalidRecord, Mapped, map, map_keyed, map_users, map_users_against, unknown_groups,
};
pub use error::SourceError;
pub use expr::{Expr, ExprError, FUNCTIONS, MAX_VALUE_BYTES, TooLong, normalize_diacritics};
pub use groups::{GroupsConfig, desired_groups};
pub use json::{Scan, ScannedJson, parse_json, read_json, scan_json};
pub use keyed::{Keyed, KnownUser, StampedUser, UserRecord};
pub use ldap::{
    LdapAttributes, LdapBind, LdapConfig, LdapSourceError, equality_filter, escape_filter_value,
    read_ldap,
};
pub use mapping::{Mapping, MappingError};
pub use scope_filter::{Clause, OPERATORS, Operator, ScopeFilter};

pub use scimsync_model::Snapshot;
