//! Crate tests, by the module they exercise. Fixtures are built inline so each test shows the
//! directory it is about.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod csv_files;
mod expr;
mod json;
mod keyed;
mod map;
mod scope_filters;

use crate::{Mapping, MappingConfig, Preset, parse_json};
use scimsync_model::Snapshot;

/// A snapshot from a JSON value, through the real reader.
pub(crate) fn snapshot(doc: serde_json::Value) -> Snapshot {
    parse_json(doc.to_string().as_bytes(), "test.json").unwrap()
}

pub(crate) fn preset(preset: Preset) -> Mapping {
    Mapping::compile(&MappingConfig {
        preset,
        ..MappingConfig::default()
    })
    .unwrap()
}

pub(crate) fn jumpcloud() -> Mapping {
    preset(Preset::Jumpcloud)
}
