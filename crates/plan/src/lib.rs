//! The diff engine: a pure function from (desired state, current target state, policy) to an
//! ordered plan of typed operations, plus diagnostics for what it had to leave out.
//!
//! Architecture Invariant: depends on `scimsync-model` and no other scimsync crate.
//! Architecture Invariant: no IO, no clock, no randomness; the same input gives the same plan,
//! byte for byte (no hash-map order reaches the output).
//! Architecture Invariant: never emits an op for a target user that is neither linked nor
//! matched by userName to a desired user.
//! Architecture Invariant: linear in the number of users (hash joins, no nested scans), and on
//! an incremental cycle an unchanged user costs one fingerprint.

mod classify;
mod deprovision;
mod diff;
mod engine;
mod groups;
mod index;
mod input;
mod links;
mod order;
mod policy;
mod proof;
mod refs;

pub use engine::{plan, plan_with_groups};
pub use groups::{GroupPlanInput, plan_groups};
pub use input::{Diagnostic, PlanInput, PlanOutput};
pub use policy::{OnDelete, OnUnassign, Policy};
pub use proof::{LiveLinks, Proof, ProofError, Settled, unlinked};

#[cfg(test)]
mod tests;
