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
//!
//! How an incremental cycle stays cheap (BENCHMARKS.md has the figures):
//! - The **proof of unchanged users** is one type, [`Proof`], built from the links' index
//!   ([`LiveLinks`], built once while their heads load) and nothing else: mapping asks the
//!   index about each user (`PushedLinks::claim`, one rule, `as_pushed`, for every "unchanged"
//!   in the code), a claimed user keeps no attributes, and mapping returns the answers as
//!   `Claims` (opaque `LinkHandle`s, which only the issuing index opens).
//!   [`LiveLinks::settle`] consumes index and claims, settles the users with a manager
//!   reference through the links, refuses claims it cannot prove ([`ProofError`]), and keeps
//!   the record stamps proposed for proved users whose link has their userName and active
//!   flag ([`Settled`]). The proof keeps the index (`links.rs`, `LinkIndex`: positions, not
//!   borrows, so it survives the attributes being filled): the planner and the group side take
//!   their live links from it instead of indexing a million links again, and a proved user
//!   (whose source id the proof guarantees is desired once) is never looked up by source id or
//!   userName; the planner does not look at its attributes.
//! - A link's `attrs` may be partial: a missing attribute is unknown, so the planner re-sends
//!   the desired value and never removes it, which reaches the same target state.
//! - The target view of an incremental cycle holds lookups only: a linked user the view lacks
//!   is taken to be as its link says, without a copy.
//! - Per-user work (fates, reference resolution, membership diffs) runs on all cores (rayon,
//!   order-preserving); independent indexes are built side by side (`rayon::join`); joins use
//!   presized foldhash maps.

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
mod teams;

pub use engine::{plan, plan_with_groups};
pub use groups::{GroupPlanInput, plan_groups};
pub use input::{Diagnostic, PlanInput, PlanOutput};
pub use policy::{LicencePolicy, OnDelete, OnUnassign, Policy};
pub use proof::{LiveLinks, Proof, ProofError, Settled, unlinked};
pub use teams::TeamPlanInput;

#[cfg(test)]
mod tests;
