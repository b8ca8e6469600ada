#![allow(clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod fixture;
mod proof;
mod properties;
mod rules;
mod scale;
