//! SCIM 2.0 on the wire: schema URNs, filter building with RFC 7644 escaping, request bodies
//! (a user resource for POST, a PatchOp for PATCH), a SCIM user flattened back into the model's
//! `TargetUser`, lenient parsing of list and error responses, and the **profiles** that hold what
//! a given service provider needs (Miro's quirks and published rate budgets, or plain RFC).
//!
//! Architecture Invariant: no IO, no async runtime, no HTTP client. Everything here is a pure
//! function of its inputs, so the executor's wire format can be tested without a socket.
//! Architecture Invariant: a body for a profile whose target derives emails (Miro: read-only,
//! from `userName`) never carries `emails`, and its PatchOps never have a path starting with
//! `emails`.
//! Architecture Invariant: what differs between service providers is data on `Profile` (and
//! what discovery reads from the SP), never a branch on which SP it is.

mod budget;
mod capabilities;
mod discovery;
mod filter;
mod group;
mod message;
mod patch;
mod profile;
mod replace;
mod resource;
mod schemas;

pub use budget::{Bucket, Budgets, Endpoint, MIRO_REST_CREDITS_PER_MINUTE, REST_LEVEL_1_CREDITS};
pub use capabilities::{Capabilities, CapabilityOverrides, CapabilitySource};
pub use discovery::{Discovery, Support, TargetSchema};
pub use filter::{filter_eq, json_string_literal};
pub use group::{
    MAX_GROUP_PATCH_BYTES, MAX_MEMBERS_PER_PATCH, MemberChangeShape, MemberPatch, PatchSize,
    bucket_time, choose_sizes, group_resource, member_patches, patch_counts, rename_body,
    target_group,
};
pub use message::{ListResponse, ScimErrorBody, parse_error_body};
pub use patch::{new_entry, patch_body, patch_body_adding};
pub use profile::{
    EmailRule, LicenceRule, MIRO_ADMIN_ROLE_TYPE, MIRO_LICENCES, MIRO_USER_ROLE_TYPE, OpCase,
    Profile, ProfileKind, RoleRule, ValueLimit,
};
pub use replace::apply_changes;
pub use resource::{WireError, target_user, user_resource};
pub use schemas::{
    ENTERPRISE_SCHEMA, ERROR_SCHEMA, GROUP_SCHEMA, LIST_SCHEMA, PATCH_SCHEMA, USER_SCHEMA,
};
