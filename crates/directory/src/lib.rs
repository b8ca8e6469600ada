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
//! scimsync crates it uses `scimsync-model` and `scimsync-scim` (attribute paths) alone.
//!
//! Architecture Invariant: recognising a record by its stamp never changes what mapping
//! decides: [`map_keyed`] over a keyed read gives the [`Mapped`] and the claims that
//! [`map_users_against`] gives over a full read against the same links (`tests/keyed.rs` holds
//! the cases). Whatever mapping reads besides the record's bytes is in the key's context, in the
//! stamp (admin flag), or decided per cycle from the groups (scope); a record referencing
//! another user, or holding an admin role, is never stamped. The context is the compiled
//! mapping's and filters' own encoding (`context.rs`: every field, under tags, length first;
//! never `Debug` text) with the crate's version and a digest of its sources taken at build
//! (`build.rs`), so a change to how a record's bytes become a desired user gives new keys by
//! itself.
//!
//! What a read costs on a large directory (BENCHMARKS.md has the figures):
//! - A snapshot is read record by record: the JSON reader parses each user from a bounded
//!   window of the file, on one thread (`json/window.rs`; the streaming parser in
//!   `json/stream.rs` judges every error), and [`map_users`] consumes it record by record, so
//!   the directory is never held twice.
//! - A record's attributes are a `SourceAttrs`: one sorted vector of (`AttrKey`,
//!   `CompactString`). Keys are `Arc<str>`s interned per read, so a million users share one
//!   allocation per name; short values are inline. A record is one allocation, and a lookup
//!   scans a dozen entries comparing lengths first.
//! - On an incremental cycle a JSON file is read keyed ([`scan_json`], `json/scan.rs`): the
//!   users array is only delimited, and each record keyed by a digest of its bytes
//!   (`RecordContext::key`: SHA-256 under the context `Mapping::record_context` encodes) while
//!   the link heads load.
//!   [`ScannedJson::resolve`] takes a record whose key is its live link's stamp (and whose
//!   admin-group membership is unchanged) as that user without parsing it, and parses the
//!   others from the file by offset; [`map_keyed`] maps a recognised user as its link
//!   describes it (claimed by the handle its stamp was found by) and proposes stamps for the
//!   parsed users the links claim.
//! - Against the links ([`map_users_against`], [`map_keyed`]), mapping asks the links' index
//!   about each user (`PushedLinks::claim`): a claimed user keeps no attributes, and the
//!   answers come back as `Claims` (opaque `LinkHandle`s, which only the issuing index opens)
//!   for the planner's proof of unchanged users.

mod config;
mod context;
mod csv_source;
mod desired;
mod email;
mod error;
mod expr;
mod findings;
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
pub use desired::{InvalidRecord, Mapped, map, map_keyed, map_users, map_users_against};
pub use error::SourceError;
pub use expr::{Expr, ExprError, FUNCTIONS, MAX_VALUE_BYTES, TooLong, normalize_diacritics};
pub use findings::{ConfigKey, Findings, UnmatchedName, UnresolvedMember, findings};
pub use groups::{GroupSelector, GroupsConfig, desired_groups};
pub use json::{Scan, ScannedJson, parse_json, read_json, scan_json};
pub use keyed::{Keyed, KnownUser, StampedUser, UserRecord};
pub use ldap::{
    LdapAttributes, LdapBind, LdapConfig, LdapSourceError, equality_filter, escape_filter_value,
    read_ldap,
};
pub use mapping::{Mapping, MappingError, RoleValues};
pub use scope_filter::{Clause, OPERATORS, Operator, ScopeFilter};

pub use scimsync_model::Snapshot;
