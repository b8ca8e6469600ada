//! End-to-end tests: the real `scimsync` binary against the emulator on 127.0.0.1.
//! One test binary with modules (ripgrep's layout) keeps link times down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;
mod daemon;
mod faults;
mod first_hour;
mod generic;
mod groups;
mod guard;
mod kit;
mod ldap;
mod miro2026;
mod pacing;
mod pipeline;
mod safety;
mod second_peer;
mod uncertain;
mod untrusted;
