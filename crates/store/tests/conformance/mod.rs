//! The conformance suite: every behaviour of the state store, through [`Store`] alone, so it
//! holds for any backend. A backend's test file instantiates it with one line,
//!
//! ```ignore
//! mod conformance;
//! conformance::suite!(MyHarness::new());
//! ```
//!
//! which expands to one `#[test]` per behaviour, each on a fresh database from the harness.
//! What only one backend has (SQLite's file modes, WAL, its migrations) is tested beside its
//! instantiation, not here.
#![allow(clippy::unwrap_used, dead_code)]

use scimsync_model::{
    AttrValue, Attrs, Event, EventResource, EventType, HeldSet, InitiatedBy, Link, Loss, LossId,
    LossKind, Op, RecordContext, RecordStamp, RunId, ScimId, SourceId, fingerprint, paths,
};
use scimsync_store::{
    ApprovalGrant, ApproveOutcome, EventQuery, IntentOutcome, Mark, QuarantineRecord, RunOutcome,
    RunStatus, SCHEMA_VERSION, Setting, StampedLink, Store, StoreError,
};

/// A database to run one behaviour on: fresh and empty when made, shared by every store
/// opened from it (as processes share one state).
pub trait Harness {
    /// A new connection to this database, bound to the default integration.
    fn open(&self) -> Store;
    /// A new connection bound to the integration `name` (made on first use).
    fn open_as(&self, name: &str) -> Store;
}

/// One `#[test]` per behaviour below, each on `$harness` (an expression, evaluated per test).
macro_rules! suite {
    ($harness:expr) => {
        $crate::conformance::tests!($harness;
            links_round_trip_with_unicode_and_quotes,
            upsert_replaces_the_link_of_the_same_source_id,
            a_target_id_moves_to_the_newest_source_id,
            a_batch_applies_in_order_with_later_entries_winning,
            a_batch_ends_like_upserting_one_by_one,
            remove_link_forgets_one_and_tolerates_absent_ones,
            upsert_links_stores_100_000_links_in_one_call,
            link_heads_carry_everything_but_attributes_until_filled,
            a_record_stamp_is_stored_only_against_the_link_it_was_proved_on_and_forgotten_on_upsert,
            a_run_goes_from_running_to_its_outcome,
            runs_are_listed_newest_first_up_to_the_limit,
            finishing_an_unknown_run_is_an_error,
            runs_left_running_are_marked_interrupted,
            run_status_names_match_serde,
            events_round_trip_whole,
            events_filter_by_type_failure_user_run_and_since,
            a_limit_keeps_the_most_recent_events_oldest_first,
            event_timestamps_are_stamped_or_normalized,
            a_failing_event_batch_stores_nothing,
            intents_stay_open_until_completed,
            uncertain_marks_invalidate_the_link_until_cleared,
            completing_an_unknown_intent_is_an_error,
            an_intent_must_belong_to_a_run,
            open_intents_survive_a_crash,
            pruning_keeps_open_intents,
            settings_are_set_overwritten_and_cleared,
            a_quarantine_is_recorded_whole_and_lifted,
            marks_are_read_in_bulk_and_keep_their_first_time,
            nothing_held_approves_nothing_and_changes_nothing,
            an_approval_copies_exactly_the_held_set_and_narrows_as_it_is_applied,
            a_hold_and_an_approval_survive_reopening,
            reopening_keeps_data_and_the_schema_version,
            team_links_round_trip_and_go_with_their_group,
            a_target_group_moves_to_the_newest_group,
            the_discovery_is_read_back_newest_first,
            integrations_share_a_database_but_no_rows,
            the_cycle_lock_admits_one_holder_until_dropped,
            a_reader_sees_what_a_writer_committed,
        );
    };
}

macro_rules! tests {
    ($harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&$harness);
            }
        )*
    };
}

pub(crate) use {suite, tests};

/// A link with a text and a reference attribute, fingerprinted as the planner would.
pub fn link(source: &str, target: &str, user_name: &str) -> Link {
    let mut attrs = Attrs::new();
    attrs.insert(
        paths::DISPLAY_NAME.into(),
        AttrValue::text(format!("User {source}")),
    );
    attrs.insert(
        paths::MANAGER.into(),
        AttrValue::Ref {
            user: SourceId::new("boss"),
        },
    );
    let hash = fingerprint(user_name, true, &attrs);
    Link {
        source_id: SourceId::new(source),
        target_id: ScimId::new(target),
        user_name: user_name.into(),
        active: true,
        attrs,
        hash,
    }
}

fn event(event_type: EventType, success: bool, run: Option<i64>, user: Option<&str>) -> Event {
    Event {
        ts: String::new(),
        event_type,
        success,
        run_id: run.map(RunId),
        initiated_by: Some(InitiatedBy::Manual),
        integration: "miro.com/miro".into(),
        resource: user.map(|u| EventResource {
            kind: "user".into(),
            source_id: Some(SourceId::new(format!("src-{u}"))),
            user_name: Some(u.into()),
            ..EventResource::default()
        }),
        changes: Default::default(),
        http: None,
        error: (!success).then(|| "409 conflict".to_owned()),
        detail: serde_json::Value::Null,
    }
}

fn at(ts: &str, mut e: Event) -> Event {
    e.ts = ts.into();
    e
}

fn create_op(source: &str, user_name: &str) -> Op {
    Op::Create {
        source_id: SourceId::new(source),
        user_name: user_name.into(),
        attrs: link(source, "t", user_name).attrs,
    }
}

// ---------------------------------------------------------------------------------------------
// links

pub fn links_round_trip_with_unicode_and_quotes(h: &dyn Harness) {
    let mut store = h.open();
    let mut tricky = link(
        "o'brien \"x\"; DROP TABLE links;--",
        "tgt-1",
        "søren.ødegård@例え.jp",
    );
    tricky.attrs.insert(
        paths::TITLE.into(),
        AttrValue::text("Chef d'équipe \"senior\" 🚀\n\\"),
    );
    tricky.active = false;
    let plain = link("a-1", "tgt-2", "ann@example.com");
    store.upsert_link(&tricky).unwrap();
    store.upsert_link(&plain).unwrap();

    assert_eq!(store.link(&tricky.source_id).unwrap(), Some(tricky.clone()));
    assert_eq!(store.link(&plain.source_id).unwrap(), Some(plain.clone()));
    assert_eq!(store.link(&SourceId::new("nobody")).unwrap(), None);

    let mut expected = vec![tricky, plain];
    expected.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    assert_eq!(store.links().unwrap(), expected);
    assert_eq!(store.link_count().unwrap(), 2);
}

pub fn upsert_replaces_the_link_of_the_same_source_id(h: &dyn Harness) {
    let mut store = h.open();
    store
        .upsert_link(&link("u1", "t1", "ann@example.com"))
        .unwrap();
    let renamed = link("u1", "t1", "ann.lee@example.com");
    store.upsert_link(&renamed).unwrap();
    assert_eq!(store.links().unwrap(), vec![renamed]);
}

pub fn a_target_id_moves_to_the_newest_source_id(h: &dyn Harness) {
    let mut store = h.open();
    store
        .upsert_link(&link("old", "t1", "ann@example.com"))
        .unwrap();
    store
        .upsert_link(&link("other", "t2", "bob@example.com"))
        .unwrap();
    let newer = link("new", "t1", "ann@example.com");
    store.upsert_link(&newer).unwrap();

    assert_eq!(store.link(&SourceId::new("old")).unwrap(), None);
    assert_eq!(store.link(&SourceId::new("new")).unwrap(), Some(newer));
    assert_eq!(store.link_count().unwrap(), 2);
}

pub fn a_batch_applies_in_order_with_later_entries_winning(h: &dyn Harness) {
    let mut store = h.open();
    let batch = vec![
        link("a", "t1", "a@example.com"),
        link("b", "t2", "b@example.com"),
        link("c", "t1", "c@example.com"),
    ];
    store.upsert_links(&batch).unwrap();
    let ids: Vec<_> = store
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.source_id.0)
        .collect();
    assert_eq!(ids, ["b", "c"]);
    store.upsert_links(&[]).unwrap();
    assert_eq!(store.link_count().unwrap(), 2);
}

/// Small key spaces make collisions on both ids frequent, inside the batch and with the rows
/// already stored.
pub fn a_batch_ends_like_upserting_one_by_one(h: &dyn Harness) {
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for case in 0..200 {
        let mut random_links = |count: u64| -> Vec<Link> {
            (0..count)
                .map(|i| {
                    let mut l = link(
                        &format!("s{}", next(6)),
                        &format!("t{}", next(6)),
                        "x@example.com",
                    );
                    l.user_name = format!("case{case}-{i}@example.com");
                    l
                })
                .collect()
        };
        let stored = random_links(4);
        let batch = random_links(6);
        // Two integrations: two independent sets of links in one database.
        let mut one_by_one = h.open_as(&format!("one-by-one-{case}"));
        let mut batched = h.open_as(&format!("batched-{case}"));
        for l in &stored {
            one_by_one.upsert_link(l).unwrap();
            batched.upsert_link(l).unwrap();
        }
        for l in &batch {
            one_by_one.upsert_link(l).unwrap();
        }
        batched.upsert_links(&batch).unwrap();
        assert_eq!(
            batched.links().unwrap(),
            one_by_one.links().unwrap(),
            "case {case}: {stored:?} then {batch:?}"
        );
    }
}

pub fn remove_link_forgets_one_and_tolerates_absent_ones(h: &dyn Harness) {
    let mut store = h.open();
    store
        .upsert_links(&[
            link("a", "t1", "a@example.com"),
            link("b", "t2", "b@example.com"),
        ])
        .unwrap();
    store.remove_link(&SourceId::new("a")).unwrap();
    store.remove_link(&SourceId::new("never-linked")).unwrap();
    assert_eq!(store.link(&SourceId::new("a")).unwrap(), None);
    assert_eq!(store.link_count().unwrap(), 1);
    // The target id is free again.
    store
        .upsert_link(&link("z", "t1", "z@example.com"))
        .unwrap();
    assert_eq!(store.link_count().unwrap(), 2);
}

pub fn upsert_links_stores_100_000_links_in_one_call(h: &dyn Harness) {
    let mut store = h.open();
    let links: Vec<Link> = (0..100_000)
        .map(|i| {
            link(
                &format!("u{i:06}"),
                &format!("t{i}"),
                &format!("user{i}@example.com"),
            )
        })
        .collect();
    store.upsert_links(&links).unwrap();
    assert_eq!(store.link_count().unwrap(), links.len());
    let sample = &links[54_321];
    assert_eq!(
        store.link(&sample.source_id).unwrap().as_ref(),
        Some(sample)
    );
    let read = store.links().unwrap();
    assert_eq!(read.len(), links.len());
    assert!(read.windows(2).all(|w| w[0].source_id < w[1].source_id));
}

pub fn link_heads_carry_everything_but_attributes_until_filled(h: &dyn Harness) {
    let mut store = h.open();
    let links: Vec<Link> = (0..40)
        .map(|i| {
            link(
                &format!("u{i:02}"),
                &format!("t{i}"),
                &format!("u{i}@x.com"),
            )
        })
        .collect();
    store.upsert_links(&links).unwrap();

    let loaded = store.link_heads().unwrap();
    assert_eq!(loaded.stamps, vec![None; links.len()]);
    let heads = loaded.links;
    assert_eq!(heads.len(), links.len());
    for (head, full) in heads.iter().zip(&links) {
        assert!(head.attrs.is_empty());
        let mut expected = full.clone();
        expected.attrs.clear();
        assert_eq!(head, &expected);
    }

    // A few (point queries) and many (one scan) take different paths; both fill exactly the
    // picked links with what was stored.
    for every in [13, 2] {
        let mut filled = heads.clone();
        let picked = |l: &Link| l.source_id.as_str()[1..].parse::<usize>().unwrap() % every == 0;
        let count = store
            .fill_link_attrs(&mut filled, |_, l| picked(l))
            .unwrap();
        assert_eq!(count, links.iter().filter(|l| picked(l)).count());
        for (got, full) in filled.iter().zip(&links) {
            if picked(full) {
                assert_eq!(got, full);
            } else {
                assert!(got.attrs.is_empty(), "{} was not picked", got.source_id);
            }
        }
    }
}

pub fn a_record_stamp_is_stored_only_against_the_link_it_was_proved_on_and_forgotten_on_upsert(
    h: &dyn Harness,
) {
    let mut store = h.open();
    let links: Vec<Link> = (0..4)
        .map(|i| link(&format!("u{i}"), &format!("t{i}"), &format!("u{i}@x.com")))
        .collect();
    store.upsert_links(&links).unwrap();
    let context = RecordContext::new("test mapping");
    let stamp = |i: usize, admin| RecordStamp {
        key: context.key(format!("{{\"id\":\"u{i}\"}}").as_bytes()),
        admin,
    };
    let proved = |l: &Link, i| StampedLink {
        source_id: l.source_id.clone(),
        user_name: l.user_name.clone(),
        active: l.active,
        hash: l.hash.clone(),
        stamp: stamp(i, i == 1),
    };
    let mut stale_hash = proved(&links[2], 2);
    stale_hash.hash = "another fingerprint".into();
    let mut stale_name = proved(&links[3], 3);
    stale_name.user_name = "renamed@x.com".into();
    let stored = store
        .stamp_records(&[
            proved(&links[0], 0),
            proved(&links[1], 1),
            stale_hash,
            stale_name,
        ])
        .unwrap();
    assert_eq!(stored, 2);
    let heads = store.link_heads().unwrap();
    assert_eq!(
        heads.stamps,
        [Some(stamp(0, false)), Some(stamp(1, true)), None, None]
    );

    // Writing the link (a push changed it) forgets what it was proved equal to.
    let mut pushed = links[0].clone();
    pushed.hash = "pushed since".into();
    store.upsert_link(&pushed).unwrap();
    assert_eq!(
        store.link_heads().unwrap().stamps,
        [None, Some(stamp(1, true)), None, None]
    );
}

// ---------------------------------------------------------------------------------------------
// runs

fn outcome(status: RunStatus, exit_code: i32) -> RunOutcome {
    RunOutcome {
        status,
        summary: serde_json::json!({"succeeded": 3, "failed": 1}),
        error: (status == RunStatus::Failed).then(|| "auth refused".to_owned()),
        exit_code,
    }
}

pub fn a_run_goes_from_running_to_its_outcome(h: &dyn Harness) {
    let mut store = h.open();
    assert_eq!(store.last_run().unwrap(), None);

    let run = store.begin_run(InitiatedBy::Schedule, true).unwrap();
    let started = store.last_run().unwrap().unwrap();
    assert_eq!(started.id, run);
    assert_eq!(started.status, RunStatus::Running);
    assert_eq!(started.initiated_by, InitiatedBy::Schedule);
    assert!(started.full);
    assert_eq!(started.finished_at, None);
    assert_eq!(started.exit_code, None);
    assert_eq!(
        scimsync_store::normalize_rfc3339(&started.started_at),
        Some(started.started_at.clone())
    );

    let done = outcome(RunStatus::Partial, 3);
    store.finish_run(run, &done).unwrap();
    let finished = store.last_run().unwrap().unwrap();
    assert_eq!(finished.status, RunStatus::Partial);
    assert_eq!(finished.summary, done.summary);
    assert_eq!(finished.exit_code, Some(3));
    assert_eq!(finished.error, None);
    let finished_at = finished.finished_at.unwrap();
    assert!(finished_at >= finished.started_at);
}

pub fn runs_are_listed_newest_first_up_to_the_limit(h: &dyn Harness) {
    let mut store = h.open();
    let ids: Vec<RunId> = (0..4)
        .map(|i| store.begin_run(InitiatedBy::Manual, i == 0).unwrap())
        .collect();
    store
        .finish_run(ids[1], &outcome(RunStatus::Failed, 1))
        .unwrap();

    let listed: Vec<RunId> = store.runs(3).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(listed, [ids[3], ids[2], ids[1]]);
    assert_eq!(store.runs(100).unwrap().len(), 4);
    assert!(store.runs(0).unwrap().is_empty());
    let failed = store
        .runs(100)
        .unwrap()
        .into_iter()
        .find(|r| r.id == ids[1])
        .unwrap();
    assert_eq!(failed.error.as_deref(), Some("auth refused"));
}

pub fn finishing_an_unknown_run_is_an_error(h: &dyn Harness) {
    let mut store = h.open();
    let err = store
        .finish_run(RunId(42), &outcome(RunStatus::Succeeded, 0))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NoSuchRun { run: 42, .. }),
        "{err}"
    );
}

pub fn runs_left_running_are_marked_interrupted(h: &dyn Harness) {
    let mut store = h.open();
    let crashed = store.begin_run(InitiatedBy::Schedule, false).unwrap();
    let done = store.begin_run(InitiatedBy::Schedule, false).unwrap();
    store
        .finish_run(done, &outcome(RunStatus::Succeeded, 0))
        .unwrap();
    let also_crashed = store.begin_run(InitiatedBy::Manual, false).unwrap();

    assert_eq!(store.mark_interrupted_runs().unwrap(), 2);
    let status = |id| {
        store
            .runs(10)
            .unwrap()
            .into_iter()
            .find(|r| r.id == id)
            .unwrap()
            .status
    };
    assert_eq!(status(crashed), RunStatus::Interrupted);
    assert_eq!(status(also_crashed), RunStatus::Interrupted);
    assert_eq!(status(done), RunStatus::Succeeded);
    assert_eq!(store.mark_interrupted_runs().unwrap(), 0);
}

pub fn run_status_names_match_serde(_h: &dyn Harness) {
    for status in RunStatus::ALL {
        let json = serde_json::to_value(status).unwrap();
        assert_eq!(json, serde_json::Value::String(status.as_str().into()));
        assert_eq!(RunStatus::parse(status.as_str()), Some(status));
    }
}

// ---------------------------------------------------------------------------------------------
// events

fn types(events: &[Event]) -> Vec<EventType> {
    events.iter().map(|e| e.event_type).collect()
}

pub fn events_round_trip_whole(h: &dyn Harness) {
    let mut store = h.open();
    let mut e = at(
        "2025-03-01T10:00:00.000Z",
        event(
            EventType::UserUpdateProvision,
            true,
            Some(7),
            Some("Ann@Example.com"),
        ),
    );
    e.changes.insert(
        "displayName".into(),
        serde_json::json!({"old": "A", "new": "Ann"}),
    );
    e.detail = serde_json::json!({"why": "renamed"});
    store.record_event(&e).unwrap();
    assert_eq!(store.events(&EventQuery::default()).unwrap(), vec![e]);
}

pub fn events_filter_by_type_failure_user_run_and_since(h: &dyn Harness) {
    let mut store = h.open();
    let all = vec![
        at(
            "2025-03-01T10:00:00.000Z",
            event(EventType::SyncCycleStart, true, Some(1), None),
        ),
        at(
            "2025-03-01T10:00:01.000Z",
            event(
                EventType::UserCreateProvision,
                true,
                Some(1),
                Some("ann@example.com"),
            ),
        ),
        at(
            "2025-03-01T10:00:02.000Z",
            event(
                EventType::UserCreateProvision,
                false,
                Some(1),
                Some("BOB@example.com"),
            ),
        ),
        at(
            "2025-03-01T11:00:00.000Z",
            event(
                EventType::UserDeprovision,
                false,
                Some(2),
                Some("Ann@Example.COM"),
            ),
        ),
        at(
            "2025-03-01T11:00:01.000Z",
            event(
                EventType::UserUpdateProvision,
                true,
                Some(2),
                Some("ÅSA@example.com"),
            ),
        ),
    ];
    store.record_events(&all).unwrap();

    let q = |query: EventQuery| store.events(&query).unwrap();
    assert_eq!(q(EventQuery::default()), all);
    assert_eq!(
        q(EventQuery {
            event_type: Some(EventType::UserCreateProvision),
            ..Default::default()
        }),
        all[1..3]
    );
    assert_eq!(
        q(EventQuery {
            failed_only: true,
            ..Default::default()
        }),
        [all[2].clone(), all[3].clone()]
    );
    assert_eq!(
        q(EventQuery {
            user: Some("ANN@example.com".into()),
            ..Default::default()
        }),
        [all[1].clone(), all[3].clone()]
    );
    assert_eq!(
        q(EventQuery {
            user: Some("åsa@EXAMPLE.com".into()),
            ..Default::default()
        }),
        all[4..]
    );
    assert_eq!(
        q(EventQuery {
            run: Some(RunId(2)),
            ..Default::default()
        }),
        all[3..]
    );
    assert_eq!(
        q(EventQuery {
            since: Some("2025-03-01T10:00:01Z".into()),
            ..Default::default()
        }),
        all[1..]
    );
    // Another offset names the same instant.
    assert_eq!(
        q(EventQuery {
            since: Some("2025-03-01T12:00:00+01:00".into()),
            ..Default::default()
        }),
        all[3..]
    );
    assert_eq!(
        q(EventQuery {
            user: Some("ann@example.com".into()),
            failed_only: true,
            run: Some(RunId(2)),
            ..Default::default()
        }),
        all[3..4]
    );
    assert!(
        q(EventQuery {
            user: Some("nobody@example.com".into()),
            ..Default::default()
        })
        .is_empty()
    );
}

pub fn a_limit_keeps_the_most_recent_events_oldest_first(h: &dyn Harness) {
    let mut store = h.open();
    // Recorded out of time order: the result follows ts, not insertion.
    let late = at(
        "2025-03-01T10:00:03.000Z",
        event(EventType::SyncCycleEnd, true, Some(1), None),
    );
    let early = at(
        "2025-03-01T10:00:01.000Z",
        event(EventType::SyncCycleStart, true, Some(1), None),
    );
    let middle = at(
        "2025-03-01T10:00:02.000Z",
        event(EventType::UserLookupProvision, true, Some(1), None),
    );
    for e in [&late, &early, &middle] {
        store.record_event(e).unwrap();
    }
    let two = store
        .events(&EventQuery {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(two, [middle.clone(), late.clone()]);
    assert_eq!(
        types(&store.events(&EventQuery::default()).unwrap()),
        types(&[early, middle, late])
    );
    assert!(
        store
            .events(&EventQuery {
                limit: Some(0),
                ..Default::default()
            })
            .unwrap()
            .is_empty()
    );
}

pub fn event_timestamps_are_stamped_or_normalized(h: &dyn Harness) {
    let mut store = h.open();
    store
        .record_event(&event(EventType::SyncCycleStart, true, None, None))
        .unwrap();
    store
        .record_event(&at(
            "2025-03-01T12:00:00+02:00",
            event(EventType::SyncCycleEnd, true, None, None),
        ))
        .unwrap();
    let stored = store.events(&EventQuery::default()).unwrap();
    let stamped = stored
        .iter()
        .find(|e| e.event_type == EventType::SyncCycleStart)
        .unwrap();
    assert_eq!(stamped.ts.len(), scimsync_store::now_rfc3339().len());
    let converted = stored
        .iter()
        .find(|e| e.event_type == EventType::SyncCycleEnd)
        .unwrap();
    assert_eq!(
        Some(converted.ts.clone()),
        scimsync_store::normalize_rfc3339("2025-03-01T10:00:00Z")
    );

    let err = store
        .record_event(&at(
            "last tuesday",
            event(EventType::SyncCycleEnd, true, None, None),
        ))
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTimestamp { .. }), "{err}");
    let err = store
        .events(&EventQuery {
            since: Some("1h".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("\"1h\""), "{err}");
}

pub fn a_failing_event_batch_stores_nothing(h: &dyn Harness) {
    let mut store = h.open();
    let batch = [
        event(EventType::SyncCycleStart, true, None, None),
        at(
            "not a time",
            event(EventType::SyncCycleEnd, true, None, None),
        ),
    ];
    assert!(store.record_events(&batch).is_err());
    assert!(store.events(&EventQuery::default()).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// journal

pub fn intents_stay_open_until_completed(h: &dyn Harness) {
    let mut store = h.open();
    let run = store.begin_run(InitiatedBy::Schedule, false).unwrap();
    let create = create_op("u1", "ann@example.com");
    let delete = Op::Delete {
        source_id: SourceId::new("u2"),
        target_id: ScimId::new("t2"),
        user_name: "bob@example.com".into(),
        reason: scimsync_model::DeprovisionReason::Deleted,
    };
    let first = store.open_intent(run, &create, "POST /Users").unwrap();
    let second = store.open_intent(run, &delete, "DELETE /Users/1").unwrap();
    let third = store
        .open_intent(run, &create_op("u3", "cy@example.com"), "POST /Users")
        .unwrap();

    let open = store.open_intents().unwrap();
    assert_eq!(
        open.iter().map(|i| i.id).collect::<Vec<_>>(),
        [first, second, third]
    );
    assert_eq!(open[1].op, delete);
    assert_eq!(open[1].run, run);
    assert_eq!(open[1].request.as_deref(), Some("DELETE /Users/1"));

    store
        .complete_intent(first, IntentOutcome::Succeeded)
        .unwrap();
    store.complete_intent(third, IntentOutcome::Failed).unwrap();
    // Completing twice is harmless.
    store
        .complete_intent(third, IntentOutcome::Abandoned)
        .unwrap();
    let open = store.open_intents().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, second);
    assert_eq!(open[0].op, delete);

    store
        .complete_intent(second, IntentOutcome::Abandoned)
        .unwrap();
    assert!(store.open_intents().unwrap().is_empty());
}

/// A user marked uncertain loses its fingerprint and record stamp with the mark, so no cycle
/// can take it as unchanged from its link; a mark is kept (first time, last reason) until
/// cleared.
pub fn uncertain_marks_invalidate_the_link_until_cleared(h: &dyn Harness) {
    use scimsync_model::{OpKind, ResourceKind, Uncertain};
    let mut store = h.open();
    let run = store.begin_run(InitiatedBy::Schedule, false).unwrap();
    let linked = link("u1", "t1", "ann@example.com");
    store.upsert_link(&linked).unwrap();
    store
        .upsert_link(&link("u2", "t2", "bob@example.com"))
        .unwrap();
    let user = Uncertain {
        kind: ResourceKind::User,
        source_id: SourceId::new("u1"),
        target_id: Some(ScimId::new("t1")),
        name: "ann@example.com".into(),
        op: OpKind::Deactivate,
        reason: "connection reset".into(),
    };
    let create = Uncertain {
        kind: ResourceKind::User,
        source_id: SourceId::new("u9"),
        target_id: None,
        name: "new@example.com".into(),
        op: OpKind::Create,
        reason: "timed out".into(),
    };
    let group = Uncertain {
        kind: ResourceKind::Group,
        source_id: SourceId::new("g1"),
        target_id: Some(ScimId::new("grp")),
        name: "Engineering".into(),
        op: OpKind::Members,
        reason: "502".into(),
    };
    store.mark_uncertain(Some(run), &user).unwrap();
    store.mark_uncertain(Some(run), &create).unwrap();
    store.mark_uncertain(None, &group).unwrap();

    let heads = store.link_heads().unwrap();
    let head = |source: &str| {
        heads
            .links
            .iter()
            .position(|l| l.source_id.as_str() == source)
            .unwrap()
    };
    assert_eq!(heads.links[head("u1")].hash, "");
    assert_eq!(
        heads.links[head("u2")].hash,
        link("u2", "t2", "bob@example.com").hash
    );

    let marks = store.uncertain().unwrap();
    assert_eq!(
        marks.iter().map(|m| m.mark.clone()).collect::<Vec<_>>(),
        [user.clone(), create.clone(), group.clone()]
    );
    assert_eq!(marks[0].run, Some(run));
    assert_eq!(marks[2].run, None);

    // Marked again: the first time stays, the newest reason wins, a known target is kept.
    let since = marks[1].since.clone();
    store
        .mark_uncertain(
            Some(run),
            &Uncertain {
                reason: "reset again".into(),
                ..create.clone()
            },
        )
        .unwrap();
    let again = store.uncertain().unwrap();
    assert_eq!(again[1].since, since);
    assert_eq!(again[1].mark.reason, "reset again");

    assert!(
        store
            .clear_uncertain(ResourceKind::User, &SourceId::new("u1"))
            .unwrap()
    );
    assert!(
        !store
            .clear_uncertain(ResourceKind::User, &SourceId::new("u1"))
            .unwrap()
    );
    // Kinds are apart: clearing a user never settles a group of the same id.
    assert!(
        !store
            .clear_uncertain(ResourceKind::User, &SourceId::new("g1"))
            .unwrap()
    );
    assert_eq!(store.uncertain().unwrap().len(), 2);
}

pub fn completing_an_unknown_intent_is_an_error(h: &dyn Harness) {
    let mut store = h.open();
    let err = store
        .complete_intent(scimsync_store::IntentId(9), IntentOutcome::Succeeded)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NoSuchIntent { id: 9, .. }),
        "{err}"
    );
}

pub fn an_intent_must_belong_to_a_run(h: &dyn Harness) {
    let mut store = h.open();
    assert!(
        store
            .open_intent(RunId(404), &create_op("u1", "a@example.com"), "POST /Users")
            .is_err()
    );
}

pub fn open_intents_survive_a_crash(h: &dyn Harness) {
    let op = create_op("u1", "ann@example.com");
    {
        let mut store = h.open();
        let run = store.begin_run(InitiatedBy::Schedule, false).unwrap();
        store.open_intent(run, &op, "POST /Users").unwrap();
        // Dropped without completing the intent or finishing the run.
    }
    let mut store = h.open();
    let open = store.open_intents().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].op, op);
    assert_eq!(store.mark_interrupted_runs().unwrap(), 1);
}

pub fn pruning_keeps_open_intents(h: &dyn Harness) {
    let mut store = h.open();
    let run = store.begin_run(InitiatedBy::Schedule, false).unwrap();
    let done = store
        .open_intent(run, &create_op("u1", "a@example.com"), "POST /Users")
        .unwrap();
    let open = store
        .open_intent(run, &create_op("u2", "b@example.com"), "POST /Users")
        .unwrap();
    store
        .complete_intent(done, IntentOutcome::Succeeded)
        .unwrap();
    assert_eq!(
        store
            .prune_completed_intents("9999-01-01T00:00:00Z")
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .open_intents()
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>(),
        [open]
    );
}

// ---------------------------------------------------------------------------------------------
// what the cycles keep between runs

pub fn settings_are_set_overwritten_and_cleared(h: &dyn Harness) {
    let mut store = h.open();
    for setting in Setting::ALL {
        assert_eq!(store.setting(setting).unwrap(), None, "{setting:?}");
    }
    store
        .set_setting(Setting::LastFullAt, Some("2025-01-01T00:00:00.000Z"))
        .unwrap();
    store
        .set_setting(Setting::LastFullAt, Some("2025-01-02T00:00:00.000Z"))
        .unwrap();
    store
        .set_setting(
            Setting::RefusedAttributes,
            Some(r#"{"title":"l'été \"chaud\""}"#),
        )
        .unwrap();
    assert_eq!(
        store.setting(Setting::LastFullAt).unwrap().as_deref(),
        Some("2025-01-02T00:00:00.000Z")
    );
    assert_eq!(
        store
            .setting(Setting::RefusedAttributes)
            .unwrap()
            .as_deref(),
        Some(r#"{"title":"l'été \"chaud\""}"#)
    );
    // Each setting is its own: writing one leaves the others as they were.
    assert_eq!(store.setting(Setting::ConfigHash).unwrap(), None);
    store.set_setting(Setting::RefusedAttributes, None).unwrap();
    assert_eq!(store.setting(Setting::RefusedAttributes).unwrap(), None);
    assert!(store.setting(Setting::LastFullAt).unwrap().is_some());
    // A quarantine written beside the settings leaves them alone.
    store
        .set_quarantine(Some(&QuarantineRecord {
            until: "2025-01-03T00:00:00.000Z".into(),
            reason: "401".into(),
            level: 1,
        }))
        .unwrap();
    assert!(store.setting(Setting::LastFullAt).unwrap().is_some());
}

pub fn a_quarantine_is_recorded_whole_and_lifted(h: &dyn Harness) {
    let mut store = h.open();
    assert_eq!(store.quarantine().unwrap(), None);
    store
        .set_setting(Setting::GroupModel, Some("user_group"))
        .unwrap();
    assert_eq!(
        store.quarantine().unwrap(),
        None,
        "other state is no quarantine"
    );
    let first = QuarantineRecord {
        until: "2025-01-01T00:10:00.000Z".into(),
        reason: "the target refused access: 401".into(),
        level: 1,
    };
    store.set_quarantine(Some(&first)).unwrap();
    assert_eq!(store.quarantine().unwrap(), Some(first));
    let second = QuarantineRecord {
        until: "2025-01-01T00:30:00.000Z".into(),
        reason: "7 of 10 operations failed".into(),
        level: 2,
    };
    store.set_quarantine(Some(&second)).unwrap();
    assert_eq!(h.open().quarantine().unwrap(), Some(second));
    store.set_quarantine(None).unwrap();
    assert_eq!(store.quarantine().unwrap(), None);
    assert_eq!(
        store.setting(Setting::GroupModel).unwrap().as_deref(),
        Some("user_group"),
        "lifting a quarantine touches nothing else"
    );
}

pub fn marks_are_read_in_bulk_and_keep_their_first_time(h: &dyn Harness) {
    let mut store = h.open();
    for kind in Mark::ALL {
        assert!(store.marks(kind).unwrap().is_empty(), "{kind:?}");
    }
    store.mark(Mark::Deactivated, "u1").unwrap();
    store.mark(Mark::Deactivated, "U2").unwrap();
    let first = store.marks(Mark::Deactivated).unwrap()["u1"].clone();
    std::thread::sleep(std::time::Duration::from_millis(5));
    store.mark(Mark::Deactivated, "u1").unwrap();
    let deactivated = store.marks(Mark::Deactivated).unwrap();
    assert_eq!(deactivated.len(), 2);
    assert_eq!(
        deactivated["u1"], first,
        "marking again keeps the first time"
    );
    // Source ids are exact: "U2" is not "u2".
    assert!(deactivated.contains_key("U2"));
    assert!(!deactivated.contains_key("u2"));

    // userNames are compared as the target compares them: case-insensitively, Unicode too.
    store
        .mark(Mark::TargetGuest, "Zoë.Guest@Example.com")
        .unwrap();
    store
        .mark(Mark::TargetGuest, "zoë.guest@example.com")
        .unwrap();
    let guests = store.marks(Mark::TargetGuest).unwrap();
    assert_eq!(guests.len(), 1);
    assert!(guests.contains_key(&Mark::TargetGuest.key("ZOË.GUEST@EXAMPLE.COM")));

    // Kinds are separate: the same subject marked as two kinds is two marks.
    store.mark(Mark::MissingTeam, "u1").unwrap();
    store.unmark(Mark::Deactivated, "u1").unwrap();
    store.unmark(Mark::Deactivated, "never-marked").unwrap();
    store.unmark(Mark::AbsentInactive, "u1").unwrap();
    assert_eq!(
        store
            .marks(Mark::Deactivated)
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["U2"]
    );
    assert_eq!(store.marks(Mark::MissingTeam).unwrap().len(), 1);
    store
        .unmark(Mark::TargetGuest, "ZOË.guest@example.com")
        .unwrap();
    assert!(store.marks(Mark::TargetGuest).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// the deletion guard's held set and approval

fn loss(kind: LossKind, source: &str) -> Loss {
    Loss {
        id: LossId {
            kind,
            source_id: SourceId::new(source),
            group: None,
            target_id: Some(ScimId::new(format!("t{source}"))),
        },
        name: format!("{source}@example.com"),
        group_name: None,
        detail: "unassigned".into(),
    }
}

fn held(losses: Vec<Loss>) -> HeldSet {
    HeldSet {
        run_id: Some(RunId(7)),
        held_at: "2026-12-01T10:00:00.000Z".into(),
        reasons: vec!["the directory snapshot is empty".into()],
        losses,
    }
}

fn grant() -> ApprovalGrant {
    ApprovalGrant {
        approved_at: "2026-12-01T10:05:00.000Z".into(),
        approved_by: "alice".into(),
        expires_at: "2026-12-02T10:05:00.000Z".into(),
    }
}

pub fn nothing_held_approves_nothing_and_changes_nothing(h: &dyn Harness) {
    let mut store = h.open();
    assert_eq!(store.hold().unwrap(), None);
    assert_eq!(
        store.approve_hold(&grant(), None).unwrap(),
        ApproveOutcome::NothingHeld
    );
    assert_eq!(store.approval().unwrap(), None);
    // An empty held set is no hold.
    store.set_hold(&held(vec![])).unwrap();
    assert_eq!(store.hold().unwrap(), None);
}

pub fn an_approval_copies_exactly_the_held_set_and_narrows_as_it_is_applied(h: &dyn Harness) {
    let mut store = h.open();
    let set = held(vec![
        loss(LossKind::Deactivate, "u1"),
        loss(LossKind::Deactivate, "u2"),
        loss(LossKind::AdminDemotion, "u3"),
    ]);
    store.set_hold(&set).unwrap();
    assert_eq!(store.hold().unwrap().as_ref(), Some(&set));
    // A digest the set does not have approves nothing.
    assert!(matches!(
        store.approve_hold(&grant(), Some("00000000")).unwrap(),
        ApproveOutcome::DigestMismatch { .. }
    ));
    assert_eq!(store.approval().unwrap(), None);
    let digest = set.digest();
    let ApproveOutcome::Approved(approval) =
        store.approve_hold(&grant(), Some(&digest[..12])).unwrap()
    else {
        panic!("not approved");
    };
    assert_eq!(approval.losses, set.losses);
    assert_eq!(approval.digest, digest);
    assert_eq!(approval.hold_run, Some(RunId(7)));
    assert_eq!(store.approval().unwrap(), Some(approval.clone()));
    // A new hold does not change what was approved.
    store
        .set_hold(&held(vec![loss(LossKind::Deactivate, "u9")]))
        .unwrap();
    assert_eq!(store.approval().unwrap(), Some(approval.clone()));

    store.narrow_approval(&[&set.losses[1].id]).unwrap();
    let narrowed = store.approval().unwrap().unwrap();
    assert_eq!(narrowed.losses, vec![set.losses[1].clone()]);
    assert_eq!(narrowed.approved_by, "alice");
    store.narrow_approval(&[]).unwrap();
    assert_eq!(store.approval().unwrap(), None, "fully applied: gone");
}

pub fn a_hold_and_an_approval_survive_reopening(h: &dyn Harness) {
    {
        let mut store = h.open();
        store
            .set_hold(&held(vec![loss(LossKind::Delete, "u1")]))
            .unwrap();
        store.approve_hold(&grant(), None).unwrap();
        store.clear_hold().unwrap();
    }
    let store = h.open();
    assert_eq!(store.hold().unwrap(), None);
    assert_eq!(store.approval().unwrap().unwrap().losses.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// files, migrations, concurrency

pub fn reopening_keeps_data_and_the_schema_version(h: &dyn Harness) {
    {
        let mut store = h.open();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store
            .upsert_link(&link("u1", "t1", "ann@example.com"))
            .unwrap();
        store.set_setting(Setting::ConfigHash, Some("v")).unwrap();
    }
    for _ in 0..2 {
        let store = h.open();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.link_count().unwrap(), 1);
        assert_eq!(
            store.setting(Setting::ConfigHash).unwrap().as_deref(),
            Some("v")
        );
    }
}

pub fn team_links_round_trip_and_go_with_their_group(h: &dyn Harness) {
    use scimsync_model::{GroupLink, TeamId, TeamLink};
    let mut store = h.open();
    let team = |group: &str, team: &str, name: &str| TeamLink {
        group: SourceId::new(group),
        team_id: TeamId::new(team),
        team_name: name.into(),
    };
    store
        .upsert_group_link(&GroupLink {
            source_id: SourceId::new("g1"),
            target_id: ScimId::new("ug1"),
            display_name: "Eng".into(),
            members: vec![],
        })
        .unwrap();
    store
        .upsert_team_link(&team("g1", "t2", "Platform"))
        .unwrap();
    store
        .upsert_team_link(&team("g1", "t1", "Product"))
        .unwrap();
    store
        .upsert_team_link(&team("g2", "t1", "Product"))
        .unwrap();
    // Written again with another name: one row.
    store
        .upsert_team_link(&team("g1", "t1", "Product \"X\""))
        .unwrap();
    drop(store);
    let mut store = h.open();
    assert_eq!(
        store.team_links().unwrap(),
        vec![
            team("g1", "t1", "Product \"X\""),
            team("g1", "t2", "Platform"),
            team("g2", "t1", "Product"),
        ]
    );
    store
        .remove_team_link(&SourceId::new("g1"), &TeamId::new("t2"))
        .unwrap();
    // Rewriting the group link keeps its teams; removing it takes them.
    store
        .upsert_group_link(&GroupLink {
            source_id: SourceId::new("g1"),
            target_id: ScimId::new("ug1"),
            display_name: "Engineering".into(),
            members: vec![],
        })
        .unwrap();
    assert_eq!(store.team_links().unwrap().len(), 2);
    store.remove_group_link(&SourceId::new("g1")).unwrap();
    assert_eq!(
        store.team_links().unwrap(),
        vec![team("g2", "t1", "Product")]
    );
}

pub fn a_target_group_moves_to_the_newest_group(h: &dyn Harness) {
    use scimsync_model::{GroupLink, TeamId, TeamLink};
    let mut store = h.open();
    let group = |source: &str, target: &str, name: &str| GroupLink {
        source_id: SourceId::new(source),
        target_id: ScimId::new(target),
        display_name: name.into(),
        members: vec![ScimId::new("t1"), ScimId::new("t2")],
    };
    store.upsert_group_link(&group("g1", "ug1", "Eng")).unwrap();
    store
        .upsert_team_link(&TeamLink {
            group: SourceId::new("g1"),
            team_id: TeamId::new("team1"),
            team_name: "Eng".into(),
        })
        .unwrap();
    // The same source group renamed: one row, its team assignments kept (an update, not a
    // delete and insert).
    store
        .upsert_group_link(&group("g1", "ug1", "Engineering"))
        .unwrap();
    assert_eq!(
        store.group_links().unwrap(),
        vec![group("g1", "ug1", "Engineering")]
    );
    assert_eq!(store.team_links().unwrap().len(), 1);
    // The target group now held for another directory group: the older link is gone.
    store
        .upsert_group_link(&group("g2", "ug1", "Engineering"))
        .unwrap();
    assert_eq!(
        store.group_links().unwrap(),
        vec![group("g2", "ug1", "Engineering")]
    );
}

pub fn the_discovery_is_read_back_newest_first(h: &dyn Harness) {
    let mut store = h.open();
    assert_eq!(store.discovery().unwrap(), None);
    store.save_discovery(None, r#"{"schemas":null}"#).unwrap();
    let first = store.discovery().unwrap().unwrap();
    assert_eq!(first.run_id, None);
    assert_eq!(first.document, r#"{"schemas":null}"#);
    for i in 0..30 {
        store
            .save_discovery(Some(RunId(i)), &format!(r#"{{"n":{i}}}"#))
            .unwrap();
    }
    let newest = h.open().discovery().unwrap().unwrap();
    assert_eq!(newest.run_id, Some(RunId(29)));
    assert_eq!(newest.document, r#"{"n":29}"#);
}

/// Two integrations in one database: each store sees only its own rows, whatever the table.
pub fn integrations_share_a_database_but_no_rows(h: &dyn Harness) {
    use scimsync_model::{GroupLink, OpKind, ResourceKind, TeamId, TeamLink, Uncertain};
    let mut a = h.open();
    let mut b = h.open_as("second");
    // The same natural keys in both: no conflict across integrations.
    a.upsert_link(&link("u1", "t1", "ann@example.com")).unwrap();
    b.upsert_link(&link("u1", "t1", "ann@example.com")).unwrap();
    b.upsert_link(&link("u2", "t2", "bob@example.com")).unwrap();
    let run = a.begin_run(InitiatedBy::Manual, true).unwrap();
    a.record_event(&event(
        EventType::UserCreateProvision,
        true,
        Some(run.0),
        Some("ann"),
    ))
    .unwrap();
    a.open_intent(run, &create_op("u1", "ann@example.com"), "POST /Users")
        .unwrap();
    a.set_setting(Setting::LastFullAt, Some("2025-01-01T00:00:00.000Z"))
        .unwrap();
    a.set_quarantine(Some(&QuarantineRecord {
        until: "2025-01-01T00:10:00.000Z".into(),
        reason: "401".into(),
        level: 1,
    }))
    .unwrap();
    a.mark(Mark::Deactivated, "u1").unwrap();
    a.set_hold(&held(vec![loss(LossKind::Delete, "u1")]))
        .unwrap();
    a.mark_uncertain(
        Some(run),
        &Uncertain {
            kind: ResourceKind::User,
            source_id: SourceId::new("u1"),
            target_id: Some(ScimId::new("t1")),
            name: "ann@example.com".into(),
            op: OpKind::Update,
            reason: "timeout".into(),
        },
    )
    .unwrap();
    a.upsert_group_link(&GroupLink {
        source_id: SourceId::new("g1"),
        target_id: ScimId::new("ug1"),
        display_name: "Eng".into(),
        members: vec![],
    })
    .unwrap();
    a.upsert_team_link(&TeamLink {
        group: SourceId::new("g1"),
        team_id: TeamId::new("team1"),
        team_name: "Eng".into(),
    })
    .unwrap();
    a.save_discovery(Some(run), "{}").unwrap();

    assert_eq!(b.link_count().unwrap(), 2);
    assert_eq!(b.link_heads().unwrap().links.len(), 2);
    assert_eq!(
        b.link(&SourceId::new("u1")).unwrap().unwrap().hash,
        link("u1", "t1", "ann@example.com").hash,
        "a's uncertain mark left b's link alone"
    );
    assert!(b.runs(10).unwrap().is_empty());
    assert!(b.events(&EventQuery::default()).unwrap().is_empty());
    assert!(b.open_intents().unwrap().is_empty());
    assert_eq!(b.setting(Setting::LastFullAt).unwrap(), None);
    assert_eq!(b.quarantine().unwrap(), None);
    assert!(b.marks(Mark::Deactivated).unwrap().is_empty());
    assert_eq!(b.hold().unwrap(), None);
    assert!(b.uncertain().unwrap().is_empty());
    assert!(b.group_links().unwrap().is_empty());
    assert!(b.team_links().unwrap().is_empty());
    assert_eq!(b.discovery().unwrap(), None);
    // Nor can b's writes reach a's rows.
    assert_eq!(b.mark_interrupted_runs().unwrap(), 0);
    b.remove_link(&SourceId::new("u1")).unwrap();
    b.remove_group_link(&SourceId::new("g1")).unwrap();
    assert!(matches!(
        b.finish_run(run, &outcome(RunStatus::Succeeded, 0)),
        Err(StoreError::NoSuchRun { .. })
    ));
    assert_eq!(a.link_count().unwrap(), 1);
    assert_eq!(a.team_links().unwrap().len(), 1);
    assert_eq!(a.runs(10).unwrap()[0].status, RunStatus::Running);
    assert_eq!(a.events(&EventQuery::default()).unwrap().len(), 1);
    assert_eq!(a.open_intents().unwrap().len(), 1);
    assert_eq!(a.uncertain().unwrap().len(), 1);
    assert!(a.hold().unwrap().is_some());
}

/// One cycle at a time on a state, across connections (and so across processes); the lock
/// goes with its holder.
pub fn the_cycle_lock_admits_one_holder_until_dropped(h: &dyn Harness) {
    let daemon = h.open();
    let manual = h.open();
    let held = daemon.lock_cycles().unwrap();
    let refused = manual.lock_cycles().unwrap_err();
    assert!(
        matches!(refused, StoreError::CycleRunning { .. }),
        "{refused}"
    );
    assert!(
        refused
            .to_string()
            .contains("another scimsync cycle is running"),
        "{refused}"
    );
    // The holder's store keeps working; the other can still read.
    assert!(manual.runs(1).unwrap().is_empty());
    drop(held);
    let again = manual.lock_cycles().unwrap();
    drop(again);
    drop(daemon);
    drop(manual.lock_cycles().unwrap());
}

/// `status` opened while a daemon writes sees each write once committed.
pub fn a_reader_sees_what_a_writer_committed(h: &dyn Harness) {
    let mut daemon = h.open();
    let status = h.open();
    assert_eq!(status.link_count().unwrap(), 0);
    daemon
        .upsert_links(&[
            link("u1", "t1", "ann@example.com"),
            link("u2", "t2", "bob@example.com"),
        ])
        .unwrap();
    daemon
        .set_setting(Setting::LastGoodUsers, Some("2"))
        .unwrap();
    assert_eq!(status.link_count().unwrap(), 2);
    assert_eq!(
        status.setting(Setting::LastGoodUsers).unwrap().as_deref(),
        Some("2")
    );
}
