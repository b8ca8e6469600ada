//! The scimsync engine: one provisioning cycle as a library.
//!
//! A cycle reads the directory, maps it, reads what the target holds, plans, passes the plan
//! through the deletion guard, executes what the guard lets through, and records all of it.
//! Every front end (the `scimsync` binary, its daemon, the benchmarks) calls this crate; none
//! re-implements a step of it.

pub mod config;
pub mod cycle;
pub mod discovery;
pub mod groups;
pub mod guard;
pub mod integration;
pub mod journal;
pub mod meta;
pub mod quarantine;
pub mod recorder;
pub mod saved;
pub mod secret;
pub mod source;
