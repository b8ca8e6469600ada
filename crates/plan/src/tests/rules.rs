//! One test per planning rule.

use super::fixture::*;
use crate::{OnDelete, OnUnassign};
use scimsync_model::{
    AttrValue, Change, DeprovisionReason, Op, OpKind, OutOfScopeReason, Phase, ScimId, SkipReason,
    SourceId, paths,
};

const DEPT: &str = paths::DEPARTMENT;
const TITLE: &str = paths::TITLE;

fn text(s: &str) -> Option<AttrValue> {
    Some(AttrValue::text(s))
}

fn only_op(ops: &[Op]) -> &Op {
    assert_eq!(ops.len(), 1, "expected exactly one op, got {ops:#?}");
    &ops[0]
}

fn changes_of(op: &Op) -> &[Change] {
    match op {
        Op::Update { changes, .. } => changes,
        other => panic!("expected an update, got {other:?}"),
    }
}

#[test]
fn unlinked_user_without_a_target_match_is_created_with_all_attributes() {
    let mut case = Case::full(vec![]).desire(desired(
        "u1",
        "ann@example.com",
        true,
        &[(paths::DISPLAY_NAME, "Ann Lee"), (paths::GIVEN_NAME, "Ann")],
    ));
    case.policy.create_only.insert(paths::GIVEN_NAME.to_owned());
    let out = case.run();
    match only_op(&out.plan.ops) {
        Op::Create {
            source_id,
            user_name,
            attrs,
        } => {
            assert_eq!(source_id.as_str(), "u1");
            assert_eq!(user_name, "ann@example.com");
            assert_eq!(
                attrs, &case.desired[0].attrs,
                "create_only attributes are sent on create"
            );
        }
        other => panic!("expected a create, got {other:?}"),
    }
}

#[test]
fn suspended_user_without_a_target_match_is_skipped_not_created() {
    let out = Case::full(vec![])
        .desire(desired("u1", "ann@example.com", false, &[]))
        .run();
    assert!(matches!(
        only_op(&out.plan.ops),
        Op::Skip {
            reason: SkipReason::InactiveNotProvisioned,
            ..
        }
    ));
}

#[test]
fn target_user_matching_in_another_case_is_adopted_without_a_rename() {
    let out = Case::full(vec![target(
        "t1",
        "Ann@Example.COM",
        true,
        &[(DEPT, "Eng")],
    )])
    .desire(desired("u1", "ann@example.com", true, &[(DEPT, "Eng")]))
    .run();
    match only_op(&out.plan.ops) {
        Op::Adopt {
            source_id,
            target_id,
            user_name,
        } => {
            assert_eq!(source_id.as_str(), "u1");
            assert_eq!(target_id.as_str(), "t1");
            assert_eq!(
                user_name, "Ann@Example.COM",
                "the adopt names the target user as it is"
            );
        }
        other => panic!("expected an adopt, got {other:?}"),
    }
}

#[test]
fn adopted_user_with_differences_gets_an_update_after_the_adopt() {
    let out = Case::full(vec![target(
        "t1",
        "ann@example.com",
        false,
        &[(DEPT, "Eng"), (TITLE, "X")],
    )])
    .desire(desired("u1", "ann@example.com", true, &[(DEPT, "Ops")]))
    .run();
    assert_eq!(out.plan.ops.len(), 2, "{:#?}", out.plan.ops);
    assert!(matches!(out.plan.ops[0], Op::Adopt { .. }));
    let changes = changes_of(&out.plan.ops[1]);
    let paths_changed: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    // TITLE exists only on the target and was never pushed: nothing is removed on adopt.
    assert_eq!(paths_changed, [paths::ACTIVE, DEPT]);
    assert_eq!(out.plan.ops[1].kind(), OpKind::Reactivate);
}

#[test]
fn suspended_user_matching_an_active_target_user_is_adopted_then_deactivated() {
    let out = Case::full(vec![target("t1", "ann@example.com", true, &[])])
        .desire(desired("u1", "ann@example.com", false, &[(DEPT, "Eng")]))
        .run();
    assert_eq!(out.plan.ops.len(), 2, "{:#?}", out.plan.ops);
    assert!(matches!(out.plan.ops[0], Op::Adopt { .. }));
    assert!(matches!(
        &out.plan.ops[1],
        Op::Deactivate {
            reason: DeprovisionReason::Suspended,
            ..
        }
    ));
}

#[test]
fn user_name_held_by_a_user_linked_to_someone_else_is_not_adopted() {
    let out = Case::full(vec![target("t1", "ann@example.com", true, &[])])
        .linked("u9", "t1")
        .desire(desired("u1", "ann@example.com", true, &[]))
        .desire(desired("u9", "ann9@example.com", true, &[]))
        .run();
    let skip = out
        .plan
        .ops
        .iter()
        .find(|op| op.source_id().as_str() == "u1")
        .unwrap();
    assert_eq!(
        skip,
        &Op::Skip {
            source_id: SourceId::from("u1"),
            user_name: "ann@example.com".to_owned(),
            reason: SkipReason::UserNameTakenByLinked {
                other: SourceId::from("u9")
            },
        }
    );
}

#[test]
fn one_changed_attribute_gives_one_change() {
    let out = Case::full(vec![target(
        "t1",
        "ann@example.com",
        true,
        &[(DEPT, "Eng"), (TITLE, "SRE")],
    )])
    .linked("u1", "t1")
    .desire(desired(
        "u1",
        "ann@example.com",
        true,
        &[(DEPT, "Ops"), (TITLE, "SRE")],
    ))
    .run();
    let op = only_op(&out.plan.ops);
    assert_eq!(op.target_id().unwrap().as_str(), "t1");
    assert_eq!(
        changes_of(op),
        [Change {
            path: DEPT.to_owned(),
            old: text("Eng"),
            new: text("Ops"),
        }]
    );
}

#[test]
fn new_email_is_a_user_name_change_from_the_target_user_name() {
    let out = Case::full(vec![target("t1", "Ann@Old.com", true, &[])])
        .linked("u1", "t1")
        .desire(desired("u1", "ann@new.com", true, &[]))
        .run();
    assert_eq!(
        changes_of(only_op(&out.plan.ops)),
        [Change {
            path: paths::USER_NAME.to_owned(),
            old: text("Ann@Old.com"),
            new: text("ann@new.com"),
        }]
    );
}

#[test]
fn user_name_differing_only_in_case_is_no_change() {
    let out = Case::full(vec![target("t1", "Ann@Example.com", true, &[])])
        .linked("u1", "t1")
        .desire(desired("u1", "ann@example.com", true, &[]))
        .run();
    assert!(out.plan.ops.is_empty(), "{:#?}", out.plan.ops);
}

#[test]
fn email_change_onto_a_user_name_another_target_user_holds_waits_and_the_rest_goes() {
    let out = Case::full(vec![
        target("t1", "ann@old.com", true, &[(DEPT, "Eng")]),
        target("t2", "ann@new.com", true, &[]),
    ])
    .linked("u1", "t1")
    .desire(desired("u1", "ann@new.com", true, &[(DEPT, "Ops")]))
    .run();
    let op = only_op(&out.plan.ops);
    assert_eq!(changes_of(op).len(), 1);
    assert_eq!(changes_of(op)[0].path, DEPT);
    assert_eq!(out.diagnostics.len(), 1);
    assert_eq!(out.diagnostics[0].field, paths::USER_NAME);
}

#[test]
fn inactive_target_user_is_reactivated_first_then_changed() {
    let out = Case::full(vec![target("t1", "ann@old.com", false, &[(DEPT, "Eng")])])
        .linked("u1", "t1")
        .desire(desired("u1", "ann@new.com", true, &[(DEPT, "Ops")]))
        .run();
    let op = only_op(&out.plan.ops);
    assert_eq!(op.kind(), OpKind::Reactivate);
    let changes = changes_of(op);
    assert_eq!(
        changes[0],
        Change {
            path: paths::ACTIVE.to_owned(),
            old: text("false"),
            new: text("true"),
        }
    );
    let order: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(order, [paths::ACTIVE, paths::USER_NAME, DEPT]);
}

#[test]
fn suspended_user_is_deactivated_without_attribute_updates() {
    let out = Case::full(vec![target(
        "t1",
        "ann@example.com",
        true,
        &[(DEPT, "Eng")],
    )])
    .linked("u1", "t1")
    .desire(desired("u1", "ann@new.com", false, &[(DEPT, "Ops")]))
    .run();
    assert_eq!(
        only_op(&out.plan.ops),
        &Op::Deactivate {
            source_id: SourceId::from("u1"),
            target_id: ScimId::from("t1"),
            user_name: "ann@new.com".to_owned(),
            reason: DeprovisionReason::Suspended,
        }
    );
}

#[test]
fn suspended_user_already_inactive_gets_nothing() {
    let out = Case::full(vec![target(
        "t1",
        "ann@example.com",
        false,
        &[(DEPT, "Eng")],
    )])
    .linked("u1", "t1")
    .desire(desired("u1", "ann@example.com", false, &[(DEPT, "Ops")]))
    .run();
    assert!(out.plan.ops.is_empty(), "{:#?}", out.plan.ops);
}

fn unassigned_case(policy: OnUnassign, target_active: bool) -> Vec<Op> {
    let mut case = Case::full(vec![target("t1", "ann@example.com", target_active, &[])])
        .linked("u1", "t1")
        .policy(policy, OnDelete::Delete);
    case.out_of_scope
        .push(out("u1", "ann@example.com", OutOfScopeReason::Unassigned));
    case.run().plan.ops
}

#[test]
fn unassigned_user_is_deactivated_under_on_unassign_deactivate() {
    let ops = unassigned_case(OnUnassign::Deactivate, true);
    assert!(matches!(
        only_op(&ops),
        Op::Deactivate { reason: DeprovisionReason::Unassigned, target_id, .. } if target_id.as_str() == "t1"
    ));
    assert!(
        unassigned_case(OnUnassign::Deactivate, false).is_empty(),
        "an inactive user is not deactivated again"
    );
}

#[test]
fn unassigned_user_is_deleted_under_on_unassign_delete() {
    for active in [true, false] {
        let ops = unassigned_case(OnUnassign::Delete, active);
        assert!(matches!(
            only_op(&ops),
            Op::Delete {
                reason: DeprovisionReason::Unassigned,
                ..
            }
        ));
    }
}

#[test]
fn unassigned_user_is_reported_not_touched_under_on_unassign_ignore() {
    let ops = unassigned_case(OnUnassign::Ignore, true);
    assert!(matches!(
        only_op(&ops),
        Op::Skip {
            reason: SkipReason::PolicyIgnore,
            ..
        }
    ));
}

#[test]
fn filtered_user_carries_the_rule_in_its_reason() {
    let mut case = Case::full(vec![target("t1", "ann@example.com", true, &[])]).linked("u1", "t1");
    case.out_of_scope.push(out(
        "u1",
        "ann@example.com",
        OutOfScopeReason::Filtered {
            rule: "contractors".to_owned(),
        },
    ));
    assert!(matches!(
        only_op(&case.run().plan.ops),
        Op::Deactivate { reason: DeprovisionReason::Filtered { rule }, .. } if rule == "contractors"
    ));
}

fn deleted_case(policy: OnDelete, listed_as_deleted: bool) -> Vec<Op> {
    let mut case = Case::full(vec![target("t1", "ann@example.com", true, &[])])
        .linked("u1", "t1")
        .policy(OnUnassign::Ignore, policy);
    if listed_as_deleted {
        case.out_of_scope
            .push(out("u1", "ann@example.com", OutOfScopeReason::Deleted));
    }
    case.run().plan.ops
}

#[test]
fn deleted_or_gone_user_is_deactivated_under_on_delete_deactivate() {
    for listed in [true, false] {
        let ops = deleted_case(OnDelete::Deactivate, listed);
        assert!(matches!(
            only_op(&ops),
            Op::Deactivate {
                reason: DeprovisionReason::Deleted,
                ..
            }
        ));
    }
}

#[test]
fn deleted_or_gone_user_is_deleted_under_on_delete_delete() {
    for listed in [true, false] {
        let ops = deleted_case(OnDelete::Delete, listed);
        assert!(matches!(
            only_op(&ops),
            Op::Delete { reason: DeprovisionReason::Deleted, target_id, .. } if target_id.as_str() == "t1"
        ));
    }
}

#[test]
fn held_users_are_neither_updated_nor_deprovisioned() {
    let mut case = Case::full(vec![
        target("t1", "ann@example.com", true, &[(DEPT, "Eng")]),
        target("t2", "bob@example.com", true, &[]),
    ])
    .linked("u1", "t1")
    .linked("u2", "t2")
    .policy(OnUnassign::Delete, OnDelete::Delete)
    // Held and desired at once: held wins, nothing is sent.
    .desire(desired("u1", "ann@example.com", true, &[(DEPT, "Ops")]));
    case.held = vec![SourceId::from("u1"), SourceId::from("u2")];
    let out = case.run();
    assert!(out.plan.ops.is_empty(), "{:#?}", out.plan.ops);
}

#[test]
fn unmanaged_target_users_are_never_touched() {
    let out = Case::full(vec![
        target("t1", "ann@example.com", true, &[]),
        target("t8", "stranger@example.com", true, &[(DEPT, "Eng")]),
        target("t9", "other@example.com", false, &[]),
    ])
    .linked("u1", "t1")
    .policy(OnUnassign::Delete, OnDelete::Delete)
    .desire(desired("u1", "ann@example.com", true, &[(DEPT, "Ops")]))
    .run();
    assert!(!out.plan.ops.is_empty());
    for op in &out.plan.ops {
        assert_eq!(op.target_id().map(ScimId::as_str), Some("t1"), "{op:?}");
    }
}

#[test]
fn attribute_pushed_before_and_no_longer_desired_is_removed() {
    let mut case = Case::full(vec![target(
        "t1",
        "ann@example.com",
        true,
        &[(DEPT, "Eng"), (TITLE, "SRE")],
    )])
    .linked("u1", "t1");
    // TITLE was set on the target by someone else; only DEPT was ever pushed by scimsync.
    case.links[0].attrs.remove(TITLE);
    let out = case
        .desire(desired("u1", "ann@example.com", true, &[]))
        .run();
    assert_eq!(
        changes_of(only_op(&out.plan.ops)),
        [Change {
            path: DEPT.to_owned(),
            old: text("Eng"),
            new: None,
        }]
    );
}

#[test]
fn create_only_attributes_are_never_compared() {
    let mut case = Case::full(vec![target(
        "t1",
        "ann@example.com",
        true,
        &[(paths::GIVEN_NAME, "Ann")],
    )])
    .linked("u1", "t1")
    .desire(desired(
        "u1",
        "ann@example.com",
        true,
        &[(paths::FAMILY_NAME, "Lee")],
    ));
    case.policy.create_only = [paths::GIVEN_NAME, paths::FAMILY_NAME]
        .map(str::to_owned)
        .into();
    let out = case.run();
    assert!(out.plan.ops.is_empty(), "{:#?}", out.plan.ops);
}

#[test]
fn creates_come_after_the_users_they_refer_to() {
    // chief ← boss ← ann, plus an unrelated zed; alphabetical order would be ann, boss, chief, zed.
    let out = Case::full(vec![])
        .desire(with_manager(desired("u1", "ann@x.com", true, &[]), "u2"))
        .desire(with_manager(desired("u2", "boss@x.com", true, &[]), "u3"))
        .desire(desired("u3", "chief@x.com", true, &[]))
        .desire(desired("u4", "zed@x.com", true, &[]))
        .run();
    let names: Vec<&str> = out.plan.ops.iter().map(Op::user_name).collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(at("chief@x.com") < at("boss@x.com"));
    assert!(at("boss@x.com") < at("ann@x.com"));
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    // The reference stays symbolic: the executor substitutes boss's new id.
    match &out.plan.ops[at("ann@x.com")] {
        Op::Create { attrs, .. } => assert_eq!(
            attrs.get(paths::MANAGER),
            Some(&AttrValue::Ref {
                user: SourceId::from("u2")
            })
        ),
        other => panic!("expected a create, got {other:?}"),
    }
}

#[test]
fn reference_cycle_among_creates_is_cut_with_a_diagnostic() {
    let out = Case::full(vec![])
        .desire(with_manager(desired("u1", "ann@x.com", true, &[]), "u2"))
        .desire(with_manager(desired("u2", "bob@x.com", true, &[]), "u1"))
        .desire(with_manager(desired("u3", "cat@x.com", true, &[]), "u3"))
        .run();
    assert_eq!(out.plan.counts().create, 3);
    // Every reference left in a create points at a user created before it.
    for (i, op) in out.plan.ops.iter().enumerate() {
        let Op::Create { attrs, .. } = op else {
            continue;
        };
        if let Some(AttrValue::Ref { user }) = attrs.get(paths::MANAGER) {
            assert!(
                out.plan.ops[..i].iter().any(|o| o.source_id() == user),
                "{op:?}"
            );
        }
    }
    let cut: Vec<&str> = out
        .diagnostics
        .iter()
        .map(|d| d.source_id.as_str())
        .collect();
    assert_eq!(cut.len(), 2, "one cut per cycle: {:?}", out.diagnostics);
    assert!(cut.contains(&"u3"));
}

#[test]
fn reference_to_a_linked_user_is_sent_as_its_target_id() {
    let out = Case::full(vec![target("t2", "boss@x.com", true, &[])])
        .linked("u2", "t2")
        .desire(desired("u2", "boss@x.com", true, &[]))
        .desire(with_manager(desired("u1", "ann@x.com", true, &[]), "u2"))
        .run();
    match only_op(&out.plan.ops) {
        Op::Create { attrs, .. } => assert_eq!(attrs.get(paths::MANAGER), text("t2").as_ref()),
        other => panic!("expected a create, got {other:?}"),
    }
}

#[test]
fn reference_to_a_user_not_desired_is_dropped_with_a_diagnostic() {
    let out = Case::full(vec![])
        .desire(with_manager(
            desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]),
            "u404",
        ))
        .run();
    match only_op(&out.plan.ops) {
        Op::Create { attrs, .. } => assert!(!attrs.contains_key(paths::MANAGER)),
        other => panic!("expected a create, got {other:?}"),
    }
    assert_eq!(out.diagnostics.len(), 1);
    assert_eq!(out.diagnostics[0].source_id.as_str(), "u1");
    assert_eq!(out.diagnostics[0].field, paths::MANAGER);
}

#[test]
fn user_removed_from_a_complete_target_is_created_again() {
    let mut case = Case::full(vec![]).desire(desired("u1", "ann@x.com", true, &[]));
    case.links
        .push(link("u1", &target("t1", "ann@x.com", true, &[])));
    // Not desired and gone from the target too: nothing left to deprovision.
    case.links
        .push(link("u2", &target("t2", "bob@x.com", true, &[])));
    let out = case.policy(OnUnassign::Delete, OnDelete::Delete).run();
    assert!(matches!(
        only_op(&out.plan.ops),
        Op::Create { source_id, .. } if source_id.as_str() == "u1"
    ));
}

#[test]
fn user_removed_from_a_complete_target_is_adopted_if_its_user_name_is_there() {
    let mut case = Case::full(vec![target("t7", "ann@x.com", true, &[])]).desire(desired(
        "u1",
        "ann@x.com",
        true,
        &[],
    ));
    case.links
        .push(link("u1", &target("t1", "ann@x.com", true, &[])));
    assert!(matches!(
        only_op(&case.run().plan.ops),
        Op::Adopt { target_id, .. } if target_id.as_str() == "t7"
    ));
}

#[test]
fn incremental_view_missing_a_linked_user_trusts_the_link() {
    let mut case =
        Case::incremental(vec![]).desire(desired("u1", "ann@x.com", true, &[(DEPT, "Ops")]));
    case.links.push(link(
        "u1",
        &target("t1", "ann@x.com", true, &[(DEPT, "Eng")]),
    ));
    let out = case.run();
    assert_eq!(
        changes_of(only_op(&out.plan.ops)),
        [Change {
            path: DEPT.to_owned(),
            old: text("Eng"),
            new: text("Ops"),
        }]
    );
}

#[test]
fn incremental_cycle_trusts_an_unchanged_fingerprint() {
    // The view lacks the user: an incremental cycle does not compare attributes of a user
    // whose desired state hashes like the link.
    let linked = target("t1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let mut case =
        Case::incremental(vec![]).desire(desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]));
    case.links.push(link("u1", &linked));
    let out = case.run();
    assert!(out.plan.ops.is_empty());
    assert!(out.relinks.is_empty());
}

#[test]
fn a_linked_user_read_this_cycle_is_compared_with_what_was_read() {
    // An incremental view holds a linked user only when the cycle read it (an uncertain
    // user, verified): the link is stale (a deactivation whose answer was lost landed), so
    // the user is compared with the read, never taken from the link, even though the desired
    // state hashes like the link.
    let linked = target("t1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let read = target("t1", "ann@x.com", false, &[(DEPT, "Hand-edited")]);
    let mut case =
        Case::incremental(vec![read]).desire(desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]));
    case.links.push(link("u1", &linked));
    let out = case.run();
    let changes = changes_of(only_op(&out.plan.ops));
    assert_eq!(changes[0].path, paths::ACTIVE);
    assert_eq!(changes[0].new, text("true"));
    assert_eq!(changes[1].new, text("Eng"));
    // The link already is the desired state: nothing to confirm beyond the update.
    assert!(out.relinks.is_empty());
    // The store marks an uncertain user's link without a fingerprint: once the update
    // succeeds, the link is the desired state.
    case.links[0].hash = String::new();
    let out = case.run();
    assert_eq!(out.plan.ops.len(), 1);
    assert_eq!(out.relinks.len(), 1);
    assert!(out.relinks[0].active);
    assert_eq!(out.relinks[0].attrs.get(DEPT), text("Eng").as_ref());
    // A full read compares too.
    case.target.complete = true;
    assert_eq!(case.run().plan.ops.len(), 1);
}

#[test]
fn a_departed_user_read_inactive_has_its_link_confirmed_and_nothing_sent() {
    // Unassigned; its deactivation's answer was lost (the link still says active), and the
    // read shows the deactivation landed: nothing to send, the link confirmed as read.
    let linked = target("t1", "ann@example.com", true, &[(DEPT, "Eng")]);
    let read = target("t1", "ann@example.com", false, &[(DEPT, "Eng")]);
    let mut case = Case::incremental(vec![read]);
    case.links.push(link("u1", &linked));
    case.links[0].hash = String::new();
    case.out_of_scope
        .push(out("u1", "ann@example.com", OutOfScopeReason::Unassigned));
    let planned = case.run();
    assert!(planned.plan.ops.is_empty(), "{:?}", planned.plan);
    assert_eq!(planned.relinks.len(), 1);
    assert!(!planned.relinks[0].active);
    assert_eq!(planned.relinks[0].attrs, case.links[0].attrs);
    // Not read: nothing is confirmed (the link is all there is).
    let mut unread = Case::incremental(vec![]);
    unread
        .links
        .push(link("u1", &target("t1", "ann@example.com", false, &[])));
    unread
        .out_of_scope
        .push(out("u1", "ann@example.com", OutOfScopeReason::Unassigned));
    assert!(unread.run().relinks.is_empty());
}

#[test]
fn a_full_read_confirms_a_stale_link_where_the_target_already_holds_the_desired_state() {
    // The link is stale (an update whose answer was lost, but which landed): the full read
    // finds nothing to do, and the link is confirmed as the desired state, so the next
    // incremental cycle does not re-send what the target already holds.
    let stale = target("t1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let now = target("t1", "ann@x.com", true, &[(DEPT, "Ops")]);
    let mut case = Case::full(vec![now]).desire(desired("u1", "ann@x.com", true, &[(DEPT, "Ops")]));
    case.links.push(link("u1", &stale));
    let out = case.run();
    assert!(out.plan.ops.is_empty());
    assert_eq!(out.relinks.len(), 1);
    let relink = &out.relinks[0];
    assert_eq!(relink.attrs.get(DEPT), text("Ops").as_ref());
    // The next incremental cycle over the confirmed link plans nothing.
    let mut next =
        Case::incremental(vec![]).desire(desired("u1", "ann@x.com", true, &[(DEPT, "Ops")]));
    next.links.push(relink.clone());
    let next = next.run();
    assert!(next.plan.ops.is_empty(), "{:?}", next.plan);
    assert!(next.relinks.is_empty());
    // Without the confirmation it would send a no-op update.
    let mut stale_next =
        Case::incremental(vec![]).desire(desired("u1", "ann@x.com", true, &[(DEPT, "Ops")]));
    stale_next.links.push(link("u1", &stale));
    assert_eq!(stale_next.run().plan.ops.len(), 1);
}

#[test]
fn same_user_name_twice_goes_to_the_smaller_source_id() {
    let out = Case::full(vec![])
        .desire(desired("u2", "ann@x.com", true, &[]))
        .desire(desired("u1", "ANN@x.com", true, &[]))
        .run();
    assert_eq!(out.plan.ops.len(), 2);
    assert!(matches!(&out.plan.ops[0], Op::Create { source_id, .. } if source_id.as_str() == "u1"));
    assert_eq!(
        out.plan.ops[1],
        Op::Skip {
            source_id: SourceId::from("u2"),
            user_name: "ann@x.com".to_owned(),
            reason: SkipReason::DuplicateUserName {
                other: SourceId::from("u1")
            },
        }
    );
}

#[test]
fn ops_are_in_phase_order_and_by_user_name_within_a_phase() {
    let out = Case::full(vec![
        target("t1", "zed@x.com", true, &[(DEPT, "Eng")]),
        target("t2", "amy@x.com", true, &[(DEPT, "Eng")]),
        target("t3", "old@x.com", true, &[]),
        target("t4", "adopt@x.com", true, &[]),
    ])
    .linked("u1", "t1")
    .linked("u2", "t2")
    .linked("u3", "t3")
    .desire(desired("u1", "zed@x.com", true, &[(DEPT, "Ops")]))
    .desire(desired("u2", "amy@x.com", true, &[(DEPT, "Ops")]))
    .desire(desired("u4", "adopt@x.com", true, &[]))
    .desire(desired("u5", "new@x.com", true, &[]))
    .desire(desired("u6", "sus@x.com", false, &[]))
    .run();
    let phases: Vec<Phase> = out.plan.ops.iter().map(Op::phase).collect();
    assert!(phases.is_sorted(), "{phases:?}");
    let kinds: Vec<(OpKind, &str)> = out
        .plan
        .ops
        .iter()
        .map(|o| (o.kind(), o.user_name()))
        .collect();
    assert_eq!(
        kinds,
        [
            (OpKind::Adopt, "adopt@x.com"),
            (OpKind::Create, "new@x.com"),
            (OpKind::Update, "amy@x.com"),
            (OpKind::Update, "zed@x.com"),
            (OpKind::Deactivate, "old@x.com"),
            (OpKind::Skip, "sus@x.com"),
        ]
    );
}

#[test]
fn a_known_guest_is_skipped_not_created_again() {
    let mut case =
        Case::incremental(vec![]).desire(desired("u1", "noor@agency.example", true, &[]));
    case.guests.push("Noor@Agency.example".to_owned());
    let out = case.run();
    match only_op(&out.plan.ops) {
        Op::Skip {
            reason, user_name, ..
        } => {
            assert_eq!(reason, &SkipReason::TargetGuest);
            assert_eq!(user_name, "noor@agency.example");
        }
        other => panic!("expected a skip, got {other:?}"),
    }
    assert!(out.plan.is_empty(), "a skip sends nothing");
}

#[test]
fn a_former_guest_now_visible_in_the_target_is_adopted() {
    let t = target("t1", "noor@agency.example", true, &[]);
    let mut case = Case::full(vec![t]).desire(desired("u1", "noor@agency.example", true, &[]));
    case.guests.push("noor@agency.example".to_owned());
    let out = case.run();
    assert_eq!(out.plan.ops[0].kind(), OpKind::Adopt, "{:#?}", out.plan.ops);
}

fn grace_case(active: bool, expired: bool) -> Case {
    let t = target("t1", "dee@example.com", active, &[]);
    let mut case = Case::incremental(vec![t.clone()]);
    case.links.push(link("u4", &t));
    case.out_of_scope
        .push(out("u4", "dee@example.com", OutOfScopeReason::Unassigned));
    case.policy.on_unassign = OnUnassign::Delete;
    case.policy.deactivate_first = true;
    if expired {
        case.grace_expired.push(SourceId::from("u4"));
    }
    case
}

#[test]
fn delete_after_deactivates_first() {
    let out = grace_case(true, false).run();
    match only_op(&out.plan.ops) {
        Op::Deactivate { reason, .. } => assert_eq!(reason, &DeprovisionReason::Unassigned),
        other => panic!("expected a deactivation, got {other:?}"),
    }
}

#[test]
fn delete_after_waits_out_the_grace_period() {
    assert!(grace_case(false, false).run().plan.ops.is_empty());
}

#[test]
fn delete_after_deletes_once_the_grace_period_expired() {
    let out = grace_case(false, true).run();
    match only_op(&out.plan.ops) {
        Op::Delete { reason, .. } => assert_eq!(reason, &DeprovisionReason::GraceExpired),
        other => panic!("expected a delete, got {other:?}"),
    }
}

#[test]
fn without_delete_after_the_delete_policy_deletes_at_once() {
    let mut case = grace_case(true, false);
    case.policy.deactivate_first = false;
    assert_eq!(only_op(&case.run().plan.ops).kind(), OpKind::Delete);
}
