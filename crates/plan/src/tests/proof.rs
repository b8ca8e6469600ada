//! The proof of unchanged users (`LiveLinks::settle`, `LiveLinks::prove`) and the planner's
//! contract with links whose attributes were not loaded.

use super::fixture::*;
use crate::{LiveLinks, Proof, ProofError};
use scimsync_model::{
    AttrValue, Change, Claims, DesiredUser, Link, Op, PushedLinks, ScimId, paths,
};

const DEPT: &str = paths::DEPARTMENT;
const TITLE: &str = paths::TITLE;

/// The proof for `desired` without mapping's claims: every linked user compared by it.
fn prove(desired: &[DesiredUser], links: &[Link]) -> Proof {
    LiveLinks::new(links).prove(&mut desired.to_vec())
}

/// The source ids flagged unchanged, checking that the link flags agree with them.
fn ids(desired: &[DesiredUser], links: &[Link]) -> Vec<String> {
    let found = prove(desired, links);
    let mut ids: Vec<String> = (0..desired.len())
        .filter(|&i| found.desired(i))
        .map(|i| desired[i].source_id.to_string())
        .collect();
    let mut from_links: Vec<String> = (0..links.len())
        .filter(|&i| found.link(i))
        .map(|i| links[i].source_id.to_string())
        .collect();
    ids.sort();
    from_links.sort();
    assert_eq!(ids, from_links, "desired and link flags disagree");
    assert_eq!(found.count(), ids.len());
    ids
}

/// The link of `user` as a cycle that pushed exactly this state would have stored it.
fn pushed(user: &scimsync_model::DesiredUser, target_id: &str) -> Link {
    link(
        user.source_id.as_str(),
        &target(target_id, &user.user_name, user.active, &[]),
    )
    .with_attrs(user.attrs.clone())
}

trait WithAttrs {
    fn with_attrs(self, attrs: scimsync_model::Attrs) -> Self;
}

impl WithAttrs for Link {
    fn with_attrs(mut self, attrs: scimsync_model::Attrs) -> Self {
        self.hash = scimsync_model::fingerprint(&self.user_name, self.active, &attrs);
        self.attrs = attrs;
        self
    }
}

#[test]
fn unchanged_finds_exactly_the_users_whose_pushed_state_is_desired() {
    let same = desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let edited = desired("u2", "bob@x.com", true, &[(DEPT, "Ops")]);
    let suspended = desired("u3", "cy@x.com", false, &[(DEPT, "Eng")]);
    let new = desired("u4", "dee@x.com", true, &[]);
    let links = vec![
        pushed(&same, "t1"),
        pushed(&desired("u2", "bob@x.com", true, &[(DEPT, "Eng")]), "t2"),
        pushed(&desired("u3", "cy@x.com", true, &[(DEPT, "Eng")]), "t3"),
    ];
    let all = [same, edited, suspended, new];
    assert_eq!(ids(&all, &links), ["u1"]);
}

#[test]
fn a_manager_reference_is_compared_as_the_id_it_was_sent_as() {
    let boss = desired("b", "boss@x.com", true, &[]);
    let ann = with_manager(desired("u1", "ann@x.com", true, &[]), "b");
    let mut sent = ann.attrs.clone();
    sent.insert(paths::MANAGER.into(), AttrValue::text("t-boss"));
    let links = vec![
        pushed(&boss, "t-boss"),
        pushed(&desired("u1", "ann@x.com", true, &[]), "t1").with_attrs(sent),
    ];
    let both = [boss.clone(), ann.clone()];
    assert_eq!(ids(&both, &links), ["b", "u1"]);

    // The manager re-linked to another account: ann's manager must be sent again.
    let mut moved = links.clone();
    moved[0].target_id = ScimId::from("t-boss-2");
    assert_eq!(ids(&both, &moved), ["b"]);

    // The manager not linked at all: ann cannot be proved unchanged.
    assert!(ids(std::slice::from_ref(&ann), &links[1..]).is_empty());

    // The manager linked but no longer desired (this plan deprovisions, maybe deletes, them):
    // the planner decides what ann's manager becomes, so ann is left to it.
    assert!(ids(&[ann], &links).is_empty());
}

#[test]
fn a_link_the_planner_ignores_proves_nothing() {
    let ann = desired("u1", "ann@x.com", true, &[]);
    let bob = desired("u2", "bob@x.com", true, &[]);
    // bob's link claims ann's target user: the planner ignores it (first link wins).
    let mut stolen = pushed(&bob, "t1");
    stolen.target_id = ScimId::from("t1");
    let links = vec![pushed(&ann, "t1"), stolen];
    assert_eq!(ids(&[ann.clone(), bob.clone()], &links), ["u1"]);
    // A second link for the same source id is ignored too.
    let links = vec![pushed(&ann, "t1"), pushed(&ann, "t9")];
    assert_eq!(ids(&[ann], &links), ["u1"]);
}

#[test]
fn the_planner_takes_proved_users_as_they_are_without_their_attributes() {
    let same = desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let edited = desired("u2", "bob@x.com", true, &[(DEPT, "Ops")]);
    let links = vec![
        pushed(&same, "t1"),
        pushed(&desired("u2", "bob@x.com", true, &[(DEPT, "Eng")]), "t2"),
    ];
    let mut case = Case::incremental(vec![]).desire(same).desire(edited);
    case.links = links;
    let expected = case.run();
    // The proof drops the proved users' attributes, to save a cycle's memory.
    let proved = LiveLinks::new(&case.links).prove(&mut case.desired);
    assert!(proved.desired(0) && case.desired[0].attrs.is_empty());
    assert!(!proved.desired(1) && !case.desired[1].attrs.is_empty());
    let with_proof = crate::plan(
        &crate::PlanInput {
            desired: &case.desired,
            out_of_scope: &case.out_of_scope,
            held: &case.held,
            links: &case.links,
            target: &case.target,
            guests: &case.guests,
            grace_expired: &case.grace_expired,
            unchanged: Some(&proved),
        },
        &case.policy,
    );
    assert_eq!(with_proof, expected);
    assert_eq!(expected.plan.ops.len(), 1, "{:?}", expected.plan.ops);
}

#[test]
fn a_link_whose_attributes_were_not_loaded_gets_every_desired_value_and_loses_none() {
    // What the planner does when the pre-pass and the plan disagree (rare: a reference the
    // plan resolves differently): the pushed attributes are unknown, so every desired value
    // is sent and nothing is removed.
    let mut case = Case::incremental(vec![]).desire(desired(
        "u1",
        "ann@x.com",
        true,
        &[(DEPT, "Ops"), (TITLE, "SRE")],
    ));
    let mut head = link(
        "u1",
        &target("t1", "ann@x.com", true, &[(DEPT, "Eng"), ("x", "gone")]),
    );
    head.attrs.clear();
    case.links.push(head);
    let out = case.run();
    let [Op::Update { changes, .. }] = out.plan.ops.as_slice() else {
        panic!("one update expected: {:?}", out.plan.ops);
    };
    let mut sent: Vec<(&str, Option<&str>)> = changes
        .iter()
        .map(|c: &Change| (c.path.as_str(), c.new.as_ref().and_then(|v| v.as_text())))
        .collect();
    sent.sort();
    let mut expected = vec![(DEPT, Some("Ops")), (TITLE, Some("SRE"))];
    expected.sort();
    assert_eq!(sent, expected);
}

#[test]
fn mappings_claims_stand_for_users_without_a_reference() {
    let ann = desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let links = vec![pushed(&ann, "t1")];
    let live = LiveLinks::new(&links);
    fn pairs(user: &DesiredUser) -> Vec<(&scimsync_model::AttrKey, AttrValue)> {
        user.attrs.iter().map(|(k, v)| (k, v.clone())).collect()
    }
    // The index claims exactly the state its link recorded, and nothing with a reference.
    let claim = live.claim("u1", "ann@x.com", true, &pairs(&ann));
    assert!(claim.is_some());
    assert_eq!(live.claim("u1", "ann@x.com", false, &pairs(&ann)), None);
    assert_eq!(live.claim("u2", "ann@x.com", true, &pairs(&ann)), None);
    let managed = with_manager(ann.clone(), "u9");
    assert_eq!(live.claim("u1", "ann@x.com", true, &pairs(&managed)), None);

    // A claimed user is proved without its attributes: mapping dropped them.
    let mut dropped = ann.clone();
    dropped.attrs.clear();
    let claims = Claims {
        users: vec![claim],
        stamps: Vec::new(),
    };
    let proof = live
        .settle(std::slice::from_mut(&mut dropped), claims)
        .unwrap()
        .proof;
    assert!(proof.desired(0) && proof.link(0));
    // Mapping's "changed" stands for a user without a reference: no second fingerprint.
    let claims = Claims {
        users: vec![None],
        stamps: Vec::new(),
    };
    let settled = LiveLinks::new(&links)
        .settle(&mut [ann.clone()], claims)
        .unwrap();
    assert!(!settled.proof.desired(0));
    // Without claims, the proof compares every linked user itself.
    assert!(prove(std::slice::from_ref(&ann), &links).desired(0));
}

/// A handle names a link of the index that issued it only: another index, even over the same
/// links, proves nothing with it, and refuses the claim rather than plan a user whose
/// attributes are gone.
#[test]
fn a_handle_from_one_index_is_refused_by_another() {
    let ann = desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let links = vec![pushed(&ann, "t1")];
    let pairs: Vec<_> = ann.attrs.iter().map(|(k, v)| (k, v.clone())).collect();
    let foreign = LiveLinks::new(&links).claim("u1", "ann@x.com", true, &pairs);
    assert!(foreign.is_some());
    let mut dropped = ann.clone();
    dropped.attrs.clear();
    let claims = Claims {
        users: vec![foreign],
        stamps: Vec::new(),
    };
    let refused = LiveLinks::new(&links).settle(std::slice::from_mut(&mut dropped), claims);
    assert_eq!(
        refused.err(),
        Some(ProofError::Unproved {
            source_id: "u1".into()
        })
    );
    // Claims made for another list of users are refused: of another length, or naming
    // another user's link.
    let bob = desired("u2", "bob@x.com", true, &[(DEPT, "Ops")]);
    let both = vec![pushed(&ann, "t1"), pushed(&bob, "t2")];
    let live = LiveLinks::new(&both);
    let mut users = vec![ann.clone(), bob];
    let mut claims = claim_as_mapping(&live, &mut users);
    assert!(claims.users.iter().all(Option::is_some));
    claims.users.reverse();
    assert_eq!(
        live.settle(&mut users, claims).err(),
        Some(ProofError::Unproved {
            source_id: "u1".into()
        })
    );
    let refused = LiveLinks::new(&links).settle(&mut [ann], Claims::default());
    assert_eq!(
        refused.err(),
        Some(ProofError::Misaligned {
            claims: 0,
            desired: 1
        })
    );
}

#[test]
fn a_stamp_names_its_live_link_only_and_is_stored_only_when_it_fits_and_is_new() {
    use scimsync_model::{RecordContext, RecordStamp};
    let context = RecordContext::new("test");
    let stamp = |n: &str| RecordStamp {
        key: context.key(n.as_bytes()),
        admin: false,
    };
    let ann = desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let bob = desired("u2", "bob@x.com", true, &[(DEPT, "Eng")]);
    // u2's link lost its target to u1's: u2 is not linked, so its stamp names nothing.
    let mut stolen = pushed(&bob, "t1");
    stolen.source_id = "u2".into();
    let links = vec![pushed(&ann, "t1"), stolen];
    let stamps = vec![Some(stamp("ann")), Some(stamp("bob"))];
    let live = LiveLinks::with_stamps(&links, &stamps);
    let (handle, found, got) = live.stamped(&stamp("ann").key).unwrap();
    assert_eq!((found.source_id.as_str(), got), ("u1", stamp("ann")));
    assert!(live.stamped(&stamp("bob").key).is_none());
    assert!(live.stamped(&stamp("nobody").key).is_none());

    // Mapping proposes stamps for users it claims from a parsed record: stored only for a
    // proved user's link that has the user's userName (exactly: a recognised record is rebuilt
    // from it) and active flag, and does not hold that stamp already.
    let mut cy_link = pushed(&desired("u3", "cy@x.com", true, &[]), "t3");
    cy_link.user_name = "Cy@x.com".to_owned();
    let links = vec![links[0].clone(), links[1].clone(), cy_link];
    let stamps = vec![Some(stamp("ann")), Some(stamp("bob")), None];
    let live = LiveLinks::with_stamps(&links, &stamps);
    let mut users = vec![ann, bob, desired("u3", "cy@x.com", true, &[])];
    let mut claims = claim_as_mapping(&live, &mut users);
    assert!(claims.users[0].is_some() && claims.users[1].is_none() && claims.users[2].is_some());
    assert_eq!(
        live.stamped(&stamp("ann").key).map(|s| s.0),
        claims.users[0]
    );
    assert_ne!(
        Some(handle),
        claims.users[0],
        "another index, another handle"
    );
    let (ann_link, cy_link) = (claims.users[0].unwrap(), claims.users[2].unwrap());
    claims.stamps = vec![
        (ann_link, stamp("ann")),
        (ann_link, stamp("ann v2")),
        (cy_link, stamp("cy")),
        (handle, stamp("x")),
    ];
    let settled = live.settle(&mut users, claims).unwrap();
    assert!(settled.proof.desired(0) && settled.proof.desired(2));
    let stored: Vec<(&str, _)> = settled
        .stamps
        .iter()
        .map(|(link, stamp)| (link.source_id.as_str(), *stamp))
        .collect();
    assert_eq!(stored, [("u1", stamp("ann v2"))]);
}

/// With the proof, departed users are found among the links of users not proved unchanged:
/// a departed user with two links (the second ignored) is still deprovisioned once.
#[test]
fn a_departed_user_with_two_links_is_deprovisioned_once_with_the_proof() {
    let ann = target("t1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let gone = target("t2", "bob@x.com", true, &[]);
    let other = target("t3", "bob2@x.com", true, &[]);
    let case = Case::incremental(vec![]).desire(desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]));
    let links = vec![link("u1", &ann), link("u2", &gone), link("u2", &other)];
    let (with, without, proof) = with_and_without_proof(&case, &links);
    assert!(proof.desired(0));
    assert_eq!(with, without);
    let deprovisions: Vec<&Op> = with
        .plan
        .ops
        .iter()
        .filter(|op| op.is_deprovision())
        .collect();
    assert_eq!(deprovisions.len(), 1, "{:?}", with.plan.ops);
}

/// The plan of `case` against `links` with and without the proof of unchanged users, and
/// the proof.
fn with_and_without_proof(
    case: &Case,
    links: &[Link],
) -> (crate::PlanOutput, crate::PlanOutput, Proof) {
    let mut proved = case.desired.clone();
    let proof = LiveLinks::new(links).prove(&mut proved);
    let input = |desired, unchanged| crate::PlanInput {
        desired,
        out_of_scope: &case.out_of_scope,
        held: &case.held,
        links,
        target: &case.target,
        guests: &[],
        grace_expired: &[],
        unchanged,
    };
    let with = crate::plan(&input(&proved, Some(&proof)), &case.policy);
    let without = crate::plan(&input(&case.desired, None), &case.policy);
    (with, without, proof)
}

/// The planner takes a proved user as its source id's only record: a source id desired twice
/// is not proved, whichever record comes first, and is planned as without the proof.
#[test]
fn a_source_id_desired_twice_is_not_proved() {
    let ann = target("t1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let bob = target("t2", "bob@x.com", true, &[]);
    let links = vec![link("u1", &ann), link("u2", &bob)];
    let same = desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let other = desired("u1", "ann.other@x.com", true, &[(DEPT, "Ops")]);
    for records in [[same.clone(), other.clone()], [other, same]] {
        let mut case = Case::incremental(vec![]);
        case.desired = records.to_vec();
        case.desired.push(desired("u2", "bob@x.com", true, &[]));
        let (with, without, proof) = with_and_without_proof(&case, &links);
        assert!(!proof.desired(0) && !proof.desired(1) && !proof.link(0));
        assert!(proof.desired(2) && proof.link(1));
        assert_eq!(with, without);
        assert!(
            with.diagnostics
                .iter()
                .any(|d| d.source_id.as_str() == "u1" && d.field == "id"),
            "{:?}",
            with.diagnostics
        );
    }
    // Had mapping claimed one of the records (its attributes dropped), no plan could be made
    // of it: the proof refuses the claims.
    let mut users = vec![
        desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]),
        desired("u1", "ann.other@x.com", true, &[(DEPT, "Ops")]),
    ];
    let live = LiveLinks::new(&links);
    let claims = claim_as_mapping(&live, &mut users);
    assert!(claims.users[0].is_some());
    assert_eq!(
        live.settle(&mut users, claims).err(),
        Some(ProofError::Unproved {
            source_id: "u1".into()
        })
    );
}

/// With the proof the planner takes its live links from the proof's index: a second link of
/// a source and a link to a target user another link claims are ignored and reported as when
/// it indexes the links itself.
#[test]
fn ignored_links_are_reported_alike_with_the_proof() {
    let ann = target("t1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let old = target("t9", "ann.old@x.com", true, &[]);
    let cy = target("t3", "cy@x.com", true, &[]);
    let links = vec![
        link("u1", &ann),
        link("u1", &old),
        link("u2", &ann),
        link("u3", &cy),
    ];
    let case = Case::incremental(vec![cy.clone()])
        .desire(desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]))
        .desire(desired("u2", "bea@x.com", true, &[]))
        .desire(desired("u3", "cy@x.com", true, &[]));
    let (with, without, proof) = with_and_without_proof(&case, &links);
    assert!(proof.desired(0) && proof.desired(2));
    assert_eq!(with, without);
    let reported: Vec<&str> = with
        .diagnostics
        .iter()
        .filter(|d| d.field == "link")
        .map(|d| d.source_id.as_str())
        .collect();
    assert_eq!(reported, ["u1", "u2"], "{:?}", with.diagnostics);
    // u2 is not linked: it is created, not taken for ann.
    assert!(
        with.plan
            .ops
            .iter()
            .any(|op| matches!(op, Op::Create { source_id, .. } if source_id.as_str() == "u2"))
    );
}

/// The group side takes the user links from the proof's index too, and follows the user
/// plan's adopts and creates over it: the same group ops with or without the proof.
#[test]
fn group_ops_are_the_same_with_the_proof() {
    use scimsync_model::{DesiredGroup, GroupLink, GroupView, NameMatch, SourceId};
    let ann = target("t1", "ann@x.com", true, &[]);
    let old = target("t9", "ann.old@x.com", true, &[]);
    let cy = target("t3", "cy@x.com", true, &[]);
    let dee = target("t4", "dee@x.com", true, &[]);
    let links = vec![
        link("u1", &ann),
        link("u1", &old),
        link("u2", &ann),
        link("u3", &cy),
    ];
    // dee is adopted by userName, eve created; u2's link lost its target to u1's.
    let case = Case::incremental(vec![dee])
        .desire(desired("u1", "ann@x.com", true, &[]))
        .desire(desired("u2", "bea@x.com", true, &[]))
        .desire(desired("u3", "cy@x.com", true, &[]))
        .desire(desired("u4", "dee@x.com", true, &[]))
        .desire(desired("u5", "eve@x.com", true, &[]));
    let member = |ids: &[&str]| ids.iter().map(|s| SourceId::from(*s)).collect();
    let groups = vec![
        DesiredGroup {
            source_id: SourceId::from("g1"),
            display_name: "One".into(),
            members: member(&["u1", "u3", "u4", "u5"]),
        },
        DesiredGroup {
            source_id: SourceId::from("g2"),
            display_name: "Two".into(),
            members: member(&["u1", "u3"]),
        },
    ];
    let group_links = vec![
        GroupLink {
            source_id: SourceId::from("g1"),
            target_id: ScimId::from("G1"),
            display_name: "One".into(),
            members: vec![ScimId::from("t1"), ScimId::from("t3")],
        },
        GroupLink {
            source_id: SourceId::from("g2"),
            target_id: ScimId::from("G2"),
            display_name: "Two".into(),
            members: vec![ScimId::from("t1"), ScimId::from("t3")],
        },
    ];
    let view = GroupView {
        groups: vec![],
        complete: false,
    };
    let proof = prove(&case.desired, &links);
    assert!(proof.desired(0) && proof.desired(2));
    let plan = |unchanged| {
        crate::plan_with_groups(
            &crate::PlanInput {
                desired: &case.desired,
                out_of_scope: &[],
                held: &[],
                links: &links,
                target: &case.target,
                guests: &[],
                grace_expired: &[],
                unchanged,
            },
            &crate::GroupPlanInput {
                desired: &groups,
                links: &group_links,
                target: &view,
                user_links: &links,
                held: &[],
                can_create: false,
                members_on_create: false,
                name_match: NameMatch::Exact,
                directory_groups: &[],
                max_name_chars: None,
                teams: None,
            },
            &case.policy,
        )
    };
    let with = plan(Some(&proof));
    assert_eq!(with, plan(None));
    let added: Vec<(String, Option<String>)> = with
        .plan
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::GroupMembers { add, remove, .. } => {
                assert!(remove.is_empty(), "{op:?}");
                Some(add.iter().map(|m| {
                    (
                        m.source_id.to_string(),
                        m.target_id.as_ref().map(ToString::to_string),
                    )
                }))
            }
            _ => None,
        })
        .flatten()
        .collect();
    // g2 is settled; g1 gains the adopted dee (t4) and eve (created: no id yet).
    assert_eq!(
        added,
        [
            ("u4".to_owned(), Some("t4".to_owned())),
            ("u5".to_owned(), None)
        ]
    );
}

/// The users an incremental cycle looks up: those no link names, found through the proof's
/// index as through a set of every link's source id.
#[test]
fn the_unlinked_users_are_the_same_with_the_proof() {
    let ann = target("t1", "ann@x.com", true, &[(DEPT, "Eng")]);
    let bob = target("t2", "bob@x.com", true, &[]);
    // u2's link lost its target to u1's: not live, but u2 is linked (not looked up).
    let links = vec![link("u1", &ann), link("u2", &ann), link("u3", &bob)];
    let case = Case::incremental(vec![])
        .desire(desired("u1", "ann@x.com", true, &[(DEPT, "Eng")]))
        .desire(desired("u2", "bea@x.com", true, &[]))
        .desire(desired("u3", "bob@x.com", true, &[(DEPT, "Ops")]))
        .desire(desired("u4", "dee@x.com", true, &[]));
    let proof = prove(&case.desired, &links);
    assert!(proof.desired(0) && !proof.desired(2));
    let ids = |users: Vec<&DesiredUser>| {
        users
            .iter()
            .map(|u| u.source_id.to_string())
            .collect::<Vec<_>>()
    };
    let with = ids(crate::unlinked(&case.desired, &links, Some(&proof)));
    assert_eq!(with, ["u4"]);
    assert_eq!(with, ids(crate::unlinked(&case.desired, &links, None)));
}
