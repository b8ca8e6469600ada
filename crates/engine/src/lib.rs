//! The scimsync engine: one provisioning cycle as a library.
//!
//! A cycle reads the directory ([`source`], [`directory`]), maps it, reads what the target
//! holds and plans ([`prepare`]), passes the plan through the deletion guard ([`guard`]),
//! executes what the guard lets through, and records all of it ([`cycle`]). Every event passes
//! one emit point ([`emit::Emitter`]): the store's row first, then whatever the front end
//! attached. Every front end (the `scimsync` binary and its daemon, the benchmarks) calls this
//! crate; none re-implements a step of it.
//!
//! Architecture Invariant: no front-end concern lives here: no argument parsing, no exit code
//! (the report is typed; `CycleOptions::exit_code` is the front end's), no terminal output
//! besides `tracing`, no HTTP server. Errors are [`EngineError`] (thiserror), never `anyhow`.

pub mod config;
pub mod cycle;
pub mod directory;
pub mod discovery;
pub mod emit;
pub mod error;
pub mod groups;
pub mod guard;
pub mod integration;
pub mod journal;
pub mod lock;
pub mod lookups;
pub mod prepare;
pub mod quarantine;
pub mod recent;
pub mod recorder;
pub mod report;
pub mod saved;
pub mod secret;
pub mod source;
pub mod target;
pub mod teams;
pub mod verify;

#[cfg(test)]
mod tests;

pub use config::Config;
pub use cycle::{CycleOptions, run_cycle};
pub use emit::{Emitter, EventSink, Progress};
pub use error::EngineError;
pub use lock::{CycleLock, open_store};
pub use prepare::{Prepared, prepare};
pub use report::{CycleReport, RunSummary};
/// How a front end is told a full read's progress (`CycleOptions::read_progress`).
pub use scimsync_executor::ReadProgress;
