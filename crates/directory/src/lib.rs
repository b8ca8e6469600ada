//! Reads the directory (the source of truth) and turns it into the users the target should hold.
//!
//! Readers (`read_json`, `parse_json`, `read_csv`) produce a [`Snapshot`]; [`map`] applies
//! validation, `[scope]`, `[roles]` and the compiled `[mapping]` to it and sorts every user into
//! desired, out of scope, or invalid.
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
mod csv_source;
mod desired;
mod email;
mod error;
mod integrity;
mod json;
mod mapping;
mod utf8;

#[cfg(test)]
mod tests;

pub use config::{MappingConfig, Preset, RolesConfig, ScopeConfig};
pub use csv_source::read_csv;
pub use desired::{InvalidRecord, Mapped, map, unknown_groups};
pub use error::SourceError;
pub use json::{parse_json, read_json};
pub use mapping::{MAX_VALUE_BYTES, Mapping, MappingError};

pub use scimsync_model::Snapshot;
