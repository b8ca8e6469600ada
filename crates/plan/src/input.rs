//! The planner's inputs and outputs.

use scimsync_model::{DesiredUser, Link, OutOfScope, Plan, SourceId, TargetView};

/// Both sides of the diff, borrowed: the planner never needs to own them.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    pub desired: &'a [DesiredUser],
    pub out_of_scope: &'a [OutOfScope],
    /// Directory users whose records are invalid: held untouched (never updated, never
    /// deprovisioned).
    pub held: &'a [SourceId],
    pub links: &'a [Link],
    pub target: &'a TargetView,
    /// userNames (any case) the target refused as guests or external users (404 on create).
    /// A desired user with one of them is skipped rather than created, unless the target now
    /// shows a member with that userName, who is then adopted.
    pub guests: &'a [String],
    /// Linked users deactivated longer ago than `policy.delete_after`: with
    /// `Policy::deactivate_first`, only these are deleted.
    pub grace_expired: &'a [SourceId],
    /// On an incremental cycle, the proof of which desired users are unchanged
    /// ([`crate::LiveLinks::settle`], for these very `desired` users and `links`): the planner
    /// takes them as they are, without their attributes (the proof dropped them). A complete
    /// view is compared in full and the proof ignored, so a cycle that reads the whole target
    /// settles none.
    pub unchanged: Option<&'a crate::Proof>,
}

impl<'a> PlanInput<'a> {
    /// The proof of unchanged users, where the planner may rely on it: on an incremental view
    /// (a complete one is compared in full), and only if it was computed for these very
    /// desired users and links.
    pub(crate) fn proved(&self) -> Option<&'a crate::Proof> {
        self.unchanged
            .filter(|u| !self.target.complete && u.fits(self.desired, self.links))
    }
}

/// The plan, and what the planner noticed but could not act on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOutput {
    pub plan: Plan,
    /// Sorted by source id, then field, so the output is deterministic.
    pub diagnostics: Vec<Diagnostic>,
    /// For the linked users compared with a read of the target (a full read, or an uncertain
    /// user verified), their links as they stand once the plan's ops for them succeed, where
    /// that differs from the link they have: a user with no write is confirmed as is (its link
    /// is stored so), one with a write takes this link when it succeeds whole. A departed user
    /// left alone keeps its pushed attributes, with the userName and activity read. In source
    /// id order.
    pub relinks: Vec<Link>,
}

/// Something about one user's record the plan had to leave out (an unresolvable manager, a
/// rename onto a taken userName, a corrupt link). The rest of that user's ops still go ahead.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
pub struct Diagnostic {
    pub source_id: SourceId,
    /// The attribute path, or `userName` / `link`.
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(
        source_id: &SourceId,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            source_id: source_id.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
}
