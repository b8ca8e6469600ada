//! End-to-end tests: the real `scimsync` binary against the emulator on 127.0.0.1.
//! One test binary with modules (ripgrep's layout) keeps link times down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod kit;
mod pipeline;
mod safety;
