//! Journal recovery: an intent still open marks a write that may have reached the target with
//! no event saying so. The next cycle (or the shutdown that dropped it) closes it with that
//! event, marks its user uncertain, and the next cycle reads that user from the target before
//! planning it, instead of replaying the write.

use super::World;
use crate::journal::is_abandoned;
use scimsync_model::{EventType, InitiatedBy, Op};
use scimsync_store::RunStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_in_flight_at_a_crash_gets_its_event_and_is_adopted_not_repeated() {
    let world = World::new().await;
    let config = world.config("max_deprovisions = \"50%\"", "");
    let mut store = world.store();
    // The plan a first cycle would send, then a crash right after Bob's create was sent and
    // applied: its intent stays open, no event says it happened, no link records it.
    let create = world
        .first_plan(&config, &store)
        .await
        .ops
        .into_iter()
        .find(|op| matches!(op, Op::Create { user_name, .. } if user_name == "bob@example.com"))
        .unwrap();
    let crashed = store.begin_run(InitiatedBy::Schedule, true).unwrap();
    store.open_intent(crashed, &create, "POST /Users").unwrap();
    world.emu.emulator.seed(&scimsync_emulator::Seed {
        users: vec![scimsync_emulator::SeedUser::new("bob@example.com")],
        groups: Vec::new(),
        teams: Vec::new(),
    });

    let report = world.cycle(&config, &mut store).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    // The missing event, for the crashed run, before anything else of this cycle.
    let abandoned: Vec<_> = world
        .seen
        .of(EventType::UserCreateProvision)
        .into_iter()
        .filter(is_abandoned)
        .collect();
    assert_eq!(abandoned.len(), 1, "{abandoned:?}");
    let event = &abandoned[0];
    assert!(!event.success);
    assert_eq!(event.run_id, Some(crashed));
    assert_eq!(event.detail["closed"], "after_crash");
    assert_eq!(
        event.resource.as_ref().unwrap().user_name.as_deref(),
        Some("bob@example.com")
    );
    let start = &world.seen.of(EventType::SyncCycleStart)[0];
    assert_eq!(start.detail["abandoned_intents"], 1);
    assert!(store.open_intents().unwrap().is_empty());
    // Bob is not created twice: his create is uncertain, so the cycle reads him by name before
    // planning (issue 17), links him as found and brings him in line, rather than adopting him.
    let verified = world.seen.of(EventType::UserLookupProvision);
    assert_eq!(verified.len(), 1, "{verified:?}");
    assert_eq!(verified[0].detail["found"], "created");
    let counts = report.summary.counts.unwrap();
    assert_eq!(
        (
            counts.planned.create,
            counts.planned.adopt,
            counts.planned.update
        ),
        (3, 0, 1)
    );
    assert_eq!(counts.uncertain_verified, 1);
    assert!(store.uncertain().unwrap().is_empty());
    let bobs = world
        .target_users()
        .iter()
        .filter(|(name, _)| name == "bob@example.com")
        .count();
    assert_eq!(bobs, 1);
    assert_eq!(store.link_count().unwrap(), 4);
    // The crashed run is marked as such.
    let crashed_run = store
        .runs(10)
        .unwrap()
        .into_iter()
        .find(|r| r.id == crashed);
    assert_eq!(crashed_run.unwrap().status, RunStatus::Interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_mid_cycle_closes_its_writes_and_marks_the_run() {
    let world = World::new().await;
    let config = world.config("max_deprovisions = \"50%\"", "");
    let mut store = world.store();
    let plan = world.first_plan(&config, &store).await;
    let run = store.begin_run(InitiatedBy::Schedule, true).unwrap();
    for op in plan.ops.iter().take(2) {
        store.open_intent(run, op, "PATCH /Users").unwrap();
    }

    let abandoned = crate::cycle::interrupted(&config, &mut store, &world.emitter).unwrap();
    assert_eq!(abandoned, 2);
    assert!(store.open_intents().unwrap().is_empty());
    let closed: Vec<_> = world
        .seen
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| is_abandoned(e))
        .map(|e| e.detail["closed"].clone())
        .collect();
    assert_eq!(closed, ["on_shutdown", "on_shutdown"]);
    let end = &world.seen.of(EventType::SyncCycleEnd)[0];
    assert_eq!(end.run_id, Some(run));
    assert_eq!(end.detail["status"], "interrupted");
    assert_eq!(end.detail["abandoned_intents"], 2);
    assert_eq!(
        store.last_run().unwrap().unwrap().status,
        RunStatus::Interrupted
    );
    // Nothing open: closing again is a no-op.
    assert_eq!(
        crate::cycle::interrupted(&config, &mut store, &world.emitter).unwrap(),
        0
    );
}
