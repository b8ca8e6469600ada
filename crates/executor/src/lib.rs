//! Pushes a plan to a SCIM service provider: the HTTP client (`ScimClient`), per-bucket rate
//! budgets, retries with jitter, error classes, and `Executor::execute`, which runs a plan phase
//! by phase and reports every attempt through the `Recorder`.
//!
//! Architecture Invariant: the only crate that knows HTTP. It knows no SQL: every link, journal
//! entry and event leaves through `Recorder`.
//! Architecture Invariant: every attempt, retries included, takes a token from its bucket before
//! it is sent, and the pacing keeps any window-long interval within the bucket's budget.
//! Architecture Invariant: a create is preceded by a `userName eq` lookup, and a POST refused as
//! not unique (or whose answer was lost) is resolved by lookup and adoption, never a second POST
//! for a user the target already holds.
//! Architecture Invariant: the token lives in a `SecretString`; it is exposed only to build the
//! Authorization header (marked sensitive) and never reaches `Debug`, logs, events or errors.

mod client;
mod error;
mod execute;
mod groups;
mod pacing;
mod rest;
mod retry;
mod teams;
mod update;

pub use client::{BucketReport, CheckReport, ClientConfig, ScimClient, Tuning};
pub use error::{ClientError, ErrorClass, MAX_UNTRUSTED_CHARS, ScimError, untrusted};
pub use execute::{ExecContext, ExecutionReport, Executor, OpOutcome, Recorder};
pub use pacing::DEFAULT_HEADROOM;
pub use rest::{MIRO_REST_URL, RestClient, RestConfig};
pub use retry::RetryPolicy;
pub use update::Dropped;
