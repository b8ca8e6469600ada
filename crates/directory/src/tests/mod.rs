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
use scimsync_model::{
    AttrKey, AttrValue, LinkHandle, LinkIssuer, PushedLinks, Snapshot, fingerprint_matches_sorted,
};
use std::collections::HashMap;

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

/// Links as these tests keep them (a fingerprint by source id), consulted as mapping consults
/// the planner's index: a state is claimed when it has its link's fingerprint and holds no
/// reference (the planner's rule, `scimsync_plan`'s `as_pushed`).
pub(crate) struct TestLinks {
    issuer: LinkIssuer,
    by_id: HashMap<String, (usize, String)>,
}

impl TestLinks {
    /// `hashes`: (source id, fingerprint), a link each.
    pub(crate) fn new<'a>(hashes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let by_id = hashes
            .into_iter()
            .enumerate()
            .map(|(at, (id, hash))| (id.to_owned(), (at, hash.to_owned())))
            .collect();
        TestLinks {
            issuer: LinkIssuer::new(),
            by_id,
        }
    }

    /// The handle of `source_id`'s link.
    pub(crate) fn handle(&self, source_id: &str) -> Option<LinkHandle> {
        self.issuer.handle(self.by_id.get(source_id)?.0)
    }
}

impl PushedLinks for TestLinks {
    fn claim(
        &self,
        source_id: &str,
        user_name: &str,
        active: bool,
        attrs: &[(&AttrKey, AttrValue)],
    ) -> Option<LinkHandle> {
        let (at, hash) = self.by_id.get(source_id)?;
        let has_ref = attrs
            .iter()
            .any(|(_, v)| matches!(v, AttrValue::Ref { .. }));
        let pairs = attrs.iter().map(|(path, value)| (path.as_str(), value));
        if has_ref || !fingerprint_matches_sorted(user_name, active, pairs, hash) {
            return None;
        }
        self.issuer.handle(*at)
    }
}
