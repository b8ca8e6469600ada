#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;
mod properties;
mod rules;
mod scale;
mod unchanged;
