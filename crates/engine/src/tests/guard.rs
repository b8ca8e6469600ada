//! The deletion guard in a real cycle: a hold keeps every loss away from the target, an
//! approval releases exactly that set, and the executor's recorder sees everything through
//! the guard's tracking.

use super::{World, company};
use crate::guard::{Operator, Tracking};
use scimsync_executor::{Dropped, OpOutcome, Recorder};
use scimsync_model::{Event, EventType, GroupLink, Link, Op, ScimId, SourceId};
use scimsync_store::{ApproveOutcome, RunStatus};

fn operator() -> Operator {
    Operator {
        user: "alice".into(),
        sudo: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_purge_reaches_the_target_only_once_approved() {
    let world = World::new().await;
    let config = world.config("max_deprovisions = \"50%\"", "");
    let mut store = world.store();
    let first = world.cycle(&config, &mut store).await.unwrap();
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert_eq!(world.target_users().len(), 4);

    // Three of four leave: over max_deprovisions, so the guard holds all three.
    let mut directory = company();
    directory["users"].as_array_mut().unwrap().truncate(1);
    directory["groups"][0]["members"] = serde_json::json!(["u1"]);
    world.write_directory(&directory);
    let held = world.cycle(&config, &mut store).await.unwrap();
    assert_eq!(held.status, RunStatus::Held, "{held:?}");
    let counts = held.summary.counts.as_ref().unwrap();
    assert_eq!(counts.held_deprovisions, 3);
    assert!(world.target_users().iter().all(|(_, active)| *active));
    assert_eq!(store.hold().unwrap().unwrap().losses.len(), 3);
    assert_eq!(world.seen.of(EventType::SyncHeld).len(), 1);
    assert!(world.seen.of(EventType::UserDeprovision).is_empty());

    // Held again while nobody approves: nothing reaches the target.
    let again = world.cycle(&config, &mut store).await.unwrap();
    assert_eq!(again.status, RunStatus::Held);
    assert!(world.target_users().iter().all(|(_, active)| *active));

    let approved =
        crate::guard::approve(&config, &mut store, &world.emitter, &operator(), None).unwrap();
    let ApproveOutcome::Approved(approval) = approved else {
        panic!("{approved:?}");
    };
    assert_eq!(approval.losses.len(), 3);
    assert_eq!(
        world.seen.of(EventType::SyncApproved)[0].detail["approved_by"],
        "alice"
    );

    let released = world.cycle(&config, &mut store).await.unwrap();
    assert_eq!(released.status, RunStatus::Succeeded, "{released:?}");
    let inactive: Vec<String> = world
        .target_users()
        .into_iter()
        .filter(|(_, active)| !active)
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        inactive,
        ["bob@example.com", "cy@example.com", "dee@example.com"]
    );
    assert!(store.hold().unwrap().is_none(), "nothing held any more");
    assert!(
        store.approval().unwrap().is_none(),
        "the approval is used up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_naming_another_set_releases_nothing() {
    let world = World::new().await;
    let config = world.config("max_deprovisions = 1", "");
    let mut store = world.store();
    world.cycle(&config, &mut store).await.unwrap();
    let mut directory = company();
    directory["users"].as_array_mut().unwrap().truncate(2);
    directory["groups"][0]["members"] = serde_json::json!(["u1", "u2"]);
    world.write_directory(&directory);
    assert_eq!(
        world.cycle(&config, &mut store).await.unwrap().status,
        RunStatus::Held
    );
    let digest = store.hold().unwrap().unwrap().digest();
    // A digest that is not the held set's: refused, nothing approved.
    let wrong = if digest.starts_with('0') {
        "11111111"
    } else {
        "00000000"
    };
    let outcome = crate::guard::approve(
        &config,
        &mut store,
        &world.emitter,
        &operator(),
        Some(wrong),
    )
    .unwrap();
    assert!(
        matches!(outcome, ApproveOutcome::DigestMismatch { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        world.cycle(&config, &mut store).await.unwrap().status,
        RunStatus::Held
    );
    assert!(world.target_users().iter().all(|(_, active)| *active));
}

/// Records which of its methods were called.
#[derive(Default)]
struct Calls(Vec<&'static str>);

impl Recorder for Calls {
    fn before_write(&mut self, _: usize, _: &Op, _: &str) {
        self.0.push("before_write");
    }
    fn after_write(&mut self, _: usize, _: &OpOutcome) {
        self.0.push("after_write");
    }
    fn link(&mut self, _: Link) {
        self.0.push("link");
    }
    fn unlink(&mut self, _: &SourceId) {
        self.0.push("unlink");
    }
    fn event(&mut self, _: Event) {
        self.0.push("event");
    }
    fn group_link(&mut self, _: GroupLink) {
        self.0.push("group_link");
    }
    fn group_unlink(&mut self, _: &SourceId) {
        self.0.push("group_unlink");
    }
    fn attribute_refused(&mut self, _: &Dropped) {
        self.0.push("attribute_refused");
    }
    fn uncertain(&mut self, _: &scimsync_model::Uncertain) {
        self.0.push("uncertain");
    }
    fn team_link(&mut self, _: scimsync_model::TeamLink) {
        self.0.push("team_link");
    }
    fn team_unlink(&mut self, _: &SourceId, _: &scimsync_model::TeamId) {
        self.0.push("team_unlink");
    }
}

/// The guard's `Tracking` sits between the executor and the cycle's recorder: whatever it
/// does not pass on is lost (it once dropped `attribute_refused`, so an attribute the target
/// refused mid-run was neither remembered nor announced).
#[test]
fn tracking_passes_every_call_on_and_notes_what_succeeded() {
    let mut calls = Calls::default();
    let op = Op::Create {
        source_id: SourceId::new("u1"),
        user_name: "ann@example.com".into(),
        attrs: Default::default(),
    };
    let link = Link {
        source_id: SourceId::new("u1"),
        target_id: ScimId::new("t1"),
        user_name: "ann@example.com".into(),
        active: true,
        attrs: Default::default(),
        hash: Default::default(),
    };
    let group = GroupLink {
        source_id: SourceId::new("g1"),
        target_id: ScimId::new("tg1"),
        display_name: "Eng".into(),
        members: Vec::new(),
    };
    let dropped = Dropped {
        path: "title".into(),
        scim_type: Some("invalidPath".into()),
        detail: "no such attribute".into(),
    };
    let uncertain = scimsync_model::Uncertain {
        kind: scimsync_model::ResourceKind::User,
        source_id: SourceId::new("u1"),
        target_id: None,
        name: "ann@example.com".into(),
        op: scimsync_model::OpKind::Create,
        reason: "timed out".into(),
    };
    let team_link = scimsync_model::TeamLink {
        group: SourceId::new("g1"),
        team_id: scimsync_model::TeamId::new("team1"),
        team_name: "Eng".into(),
    };
    let succeeded = {
        let mut tracking = Tracking::new(&mut calls);
        tracking.before_write(0, &op, "POST /Users");
        tracking.after_write(0, &OpOutcome::Succeeded);
        tracking.after_write(1, &OpOutcome::Failed("409".into()));
        tracking.link(link);
        tracking.unlink(&SourceId::new("u1"));
        tracking.event(
            super::super::emit::EventContext {
                run_id: scimsync_model::RunId(1),
                initiated_by: scimsync_model::InitiatedBy::Manual,
                integration: "miro@test".into(),
            }
            .event(EventType::SyncCycleStart, true),
        );
        tracking.group_link(group);
        tracking.group_unlink(&SourceId::new("g1"));
        tracking.attribute_refused(&dropped);
        tracking.uncertain(&uncertain);
        tracking.team_link(team_link);
        tracking.team_unlink(&SourceId::new("g1"), &scimsync_model::TeamId::new("team1"));
        std::mem::take(&mut tracking.succeeded)
    };
    assert_eq!(
        calls.0,
        [
            "before_write",
            "after_write",
            "after_write",
            "link",
            "unlink",
            "event",
            "group_link",
            "group_unlink",
            "attribute_refused",
            "uncertain",
            "team_link",
            "team_unlink"
        ]
    );
    assert_eq!(succeeded.into_iter().collect::<Vec<_>>(), [0]);
}
