//! Against the Miro-faithful emulator, in-process on 127.0.0.1:0.

use crate::{Call, Rec, TOKEN, client, create, ctx};
use scimsync_emulator::{
    Emulator, EmulatorConfig, Faults, RateLimits, RunningEmulator, Seed, SeedUser,
};
use scimsync_executor::{Executor, OpOutcome};
use scimsync_model::{
    AttrValue, Attrs, Change, DeprovisionReason, EventType, Link, Op, Plan, ScimId, SourceId,
    fingerprint, paths,
};
use scimsync_scim::{Budgets, Profile};
use std::collections::HashSet;
use std::time::Duration;

async fn start(seed: Vec<SeedUser>, faults: Faults) -> RunningEmulator {
    let cfg = EmulatorConfig {
        token: TOKEN.into(),
        faults,
        seed: Seed {
            users: seed,
            ..Seed::default()
        },
        rng_seed: 11,
        ..EmulatorConfig::default()
    };
    Emulator::new(cfg)
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// An emulator enforcing `limits`, with no fault and no seed.
async fn start_limited(limits: RateLimits) -> RunningEmulator {
    let cfg = EmulatorConfig {
        token: TOKEN.into(),
        limits: Some(limits),
        ..EmulatorConfig::default()
    };
    Emulator::new(cfg)
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn executor(emu: &RunningEmulator) -> Executor {
    Executor::new(client(
        &emu.base_url,
        TOKEN,
        Profile::miro(),
        Budgets::unlimited(),
    ))
}

fn id_of(emu: &RunningEmulator, user_name: &str) -> ScimId {
    let user = emu
        .emulator
        .users()
        .into_iter()
        .find(|u| u.user_name.eq_ignore_ascii_case(user_name))
        .unwrap();
    ScimId::new(user.id)
}

fn link(source: &str, target: &ScimId, user_name: &str) -> Link {
    Link {
        source_id: SourceId::new(source),
        target_id: target.clone(),
        user_name: user_name.into(),
        active: true,
        attrs: Attrs::new(),
        hash: fingerprint(user_name, true, &Attrs::new()),
    }
}

#[tokio::test]
async fn create_then_adopt_an_existing_user_of_another_case_without_duplicate() {
    let emu = start(
        vec![SeedUser::new("Ann.Lee@Example.com")],
        Faults::default(),
    )
    .await;
    let exec = executor(&emu);
    let mut attrs = Attrs::new();
    attrs.insert(paths::DISPLAY_NAME.into(), AttrValue::text("Bob Stone"));
    let plan = Plan {
        ops: vec![
            create("s-ann", "ann.lee@example.com"),
            Op::Create {
                source_id: SourceId::new("s-bob"),
                user_name: "bob@example.com".into(),
                attrs,
            },
        ],
    };
    let mut rec = Rec::default();
    let report = exec.execute(&plan, Vec::new(), &ctx(), &mut rec).await;

    assert_eq!(rec.outcome(0), Some(&OpOutcome::Adopted));
    assert_eq!(rec.outcome(1), Some(&OpOutcome::Succeeded));
    assert_eq!((report.succeeded, report.failed), (2, 0));
    assert_eq!(emu.emulator.users().len(), 2, "no duplicate of ann");
    let links = rec.links();
    let ann = links
        .iter()
        .find(|l| l.source_id.as_str() == "s-ann")
        .unwrap();
    assert_eq!(ann.target_id, id_of(&emu, "ann.lee@example.com"));
    assert_eq!(
        ann.user_name, "Ann.Lee@Example.com",
        "linked as the target holds it"
    );
    let bob = links
        .iter()
        .find(|l| l.source_id.as_str() == "s-bob")
        .unwrap();
    assert_eq!(bob.target_id, id_of(&emu, "bob@example.com"));
    assert_eq!(
        bob.hash,
        fingerprint(&bob.user_name, bob.active, &bob.attrs)
    );
    assert_eq!(emu.emulator.stats().by_method.get("POST"), Some(&1));

    let bob_event = rec.event_for("s-bob").unwrap();
    assert_eq!(bob_event.event_type, EventType::UserCreateProvision);
    assert!(bob_event.success);
    let http = bob_event.http.as_ref().unwrap();
    assert_eq!(
        (http.method.as_str(), http.status, http.attempts),
        ("POST", Some(201), 2)
    );
    assert_eq!(bob_event.changes[paths::DISPLAY_NAME]["new"], "Bob Stone");
    assert_eq!(
        bob_event.resource.as_ref().unwrap().target_id,
        Some(bob.target_id.clone())
    );
    // Journal: intent before, completion after, for each write.
    for i in 0..2 {
        let before = rec
            .calls
            .iter()
            .position(|c| matches!(c, Call::Before(j, _) if *j == i))
            .unwrap();
        let after = rec
            .calls
            .iter()
            .position(|c| matches!(c, Call::After(j, _) if *j == i))
            .unwrap();
        assert!(before < after);
    }

    // The same plan again (a crash before the store kept the links): adopts both, creates none.
    let mut again = Rec::default();
    exec.execute(&plan, Vec::new(), &ctx(), &mut again).await;
    assert_eq!(again.outcome(1), Some(&OpOutcome::Adopted));
    assert_eq!(emu.emulator.users().len(), 2);
}

#[tokio::test]
async fn a_guest_answering_404_is_skipped_without_retry_or_link() {
    let mut guest = SeedUser::new("guest@example.com");
    guest.guest = true;
    let emu = start(vec![guest], Faults::default()).await;
    let mut rec = Rec::default();
    let report = executor(&emu)
        .execute(
            &Plan {
                ops: vec![create("g", "guest@example.com")],
            },
            Vec::new(),
            &ctx(),
            &mut rec,
        )
        .await;
    assert!(matches!(rec.outcome(0), Some(OpOutcome::TargetGuest(_))));
    assert_eq!((report.skipped, report.failed, report.retries), (1, 0, 0));
    assert!(rec.links().is_empty());
    let event = rec.event_for("g").unwrap();
    assert!(!event.success);
    assert!(
        event.error.as_deref().unwrap().contains("guest"),
        "the SP's detail: {event:?}"
    );
    assert_eq!(event.http.as_ref().unwrap().status, Some(404));
    assert_eq!(emu.emulator.stats().by_method.get("POST"), Some(&1));
}

#[tokio::test]
async fn last_admin_409_fails_only_that_op() {
    let mut admin = SeedUser::new("boss@example.com");
    admin.admin = true;
    let emu = start(
        vec![admin, SeedUser::new("worker@example.com")],
        Faults::default(),
    )
    .await;
    let boss = id_of(&emu, "boss@example.com");
    let worker = id_of(&emu, "worker@example.com");
    let deactivate = |s: &str, id: &ScimId, name: &str| Op::Deactivate {
        source_id: SourceId::new(s),
        target_id: id.clone(),
        user_name: name.into(),
        reason: DeprovisionReason::Unassigned,
    };
    let plan = Plan {
        ops: vec![
            deactivate("b", &boss, "boss@example.com"),
            deactivate("w", &worker, "worker@example.com"),
        ],
    };
    let links = vec![
        link("b", &boss, "boss@example.com"),
        link("w", &worker, "worker@example.com"),
    ];
    let mut rec = Rec::default();
    let report = executor(&emu).execute(&plan, links, &ctx(), &mut rec).await;

    assert!(matches!(rec.outcome(0), Some(OpOutcome::Failed(m)) if m.contains("last admin")));
    assert_eq!(rec.outcome(1), Some(&OpOutcome::Succeeded));
    assert_eq!((report.succeeded, report.failed, report.retries), (1, 1, 0));
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].0.as_str(), "b");
    let users = emu.emulator.users();
    assert!(
        users
            .iter()
            .find(|u| u.user_name == "boss@example.com")
            .unwrap()
            .active
    );
    assert!(
        !users
            .iter()
            .find(|u| u.user_name == "worker@example.com")
            .unwrap()
            .active
    );
    let w = rec
        .links()
        .into_iter()
        .find(|l| l.source_id.as_str() == "w")
        .unwrap();
    assert!(!w.active);
    let boss_event = rec.event_for("b").unwrap();
    assert_eq!(boss_event.event_type, EventType::UserDeprovision);
    assert!(!boss_event.success);
    assert_eq!(boss_event.http.as_ref().unwrap().status, Some(409));
}

#[tokio::test]
async fn a_401_halts_the_run_with_an_event_per_request_sent() {
    let emu = start(Vec::new(), Faults::default()).await;
    let exec = Executor::new(client(
        &emu.base_url,
        "wrong-token",
        Profile::miro(),
        Budgets::unlimited(),
    ));
    let plan = Plan {
        ops: (0..40)
            .map(|i| create(&format!("s{i}"), &format!("u{i}@example.com")))
            .collect(),
    };
    let mut rec = Rec::default();
    let report = exec.execute(&plan, Vec::new(), &ctx(), &mut rec).await;

    let halted = report.halted.as_deref().unwrap();
    assert!(halted.contains("authentication"), "{halted}");
    // Every request that reached the target (each op in flight sent its lookup and got the
    // 401) has its own event; the ops the halt kept from sending have none.
    let events = rec.events();
    assert!(!events.is_empty());
    assert_eq!(
        events.len() as u64,
        emu.emulator.stats().requests,
        "{events:?}"
    );
    for event in &events {
        assert!(!event.success);
        assert!(
            event.error.as_deref().unwrap().contains("authentication"),
            "{event:?}"
        );
        assert_eq!(event.http.as_ref().unwrap().status, Some(401));
    }
    assert!(report.not_attempted > 0);
    assert_eq!(
        report.succeeded + report.failed + report.skipped + report.not_attempted,
        40
    );
    // Stopped at once: at most the ops already in flight reached the SP.
    assert!(
        emu.emulator.stats().requests <= 16,
        "{:?}",
        emu.emulator.stats()
    );
    assert!(emu.emulator.users().is_empty());
    // Every intent opened is closed.
    let opened = rec
        .calls
        .iter()
        .filter(|c| matches!(c, Call::Before(..)))
        .count();
    let closed = rec
        .calls
        .iter()
        .filter(|c| matches!(c, Call::After(..)))
        .count();
    assert_eq!(opened, closed);
}

#[tokio::test]
async fn injected_5xx_are_retried_until_everything_converges() {
    let faults = Faults {
        error_rate: 0.3,
        ..Faults::default()
    };
    let emu = start(Vec::new(), faults).await;
    let plan = Plan {
        ops: (0..30)
            .map(|i| create(&format!("s{i}"), &format!("u{i}@example.com")))
            .collect(),
    };
    let mut rec = Rec::default();
    let report = executor(&emu)
        .execute(&plan, Vec::new(), &ctx(), &mut rec)
        .await;
    assert_eq!(report.failed, 0, "{:?}", report.failures);
    assert_eq!(report.succeeded, 30);
    assert!(report.retries > 0);
    assert!(emu.emulator.stats().injected_errors > 0);
    let names: HashSet<_> = emu
        .emulator
        .users()
        .into_iter()
        .map(|u| u.user_name)
        .collect();
    assert_eq!(names.len(), 30);
    assert_eq!(emu.emulator.users().len(), 30, "no duplicates");
    let retried = rec
        .events()
        .into_iter()
        .filter(|e| e.http.as_ref().is_some_and(|h| h.attempts > 2))
        .count();
    assert!(
        retried > 0,
        "some event shows more attempts than lookup + POST"
    );
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_and_adopted_not_duplicated() {
    lost_answers_are_adopted(false).await;
}

/// The same when the cycle's read stands for the lookup before each POST: the retry of a POST
/// whose answer was lost still looks up first.
#[tokio::test]
async fn a_checked_create_whose_answer_was_lost_is_adopted_not_duplicated() {
    lost_answers_are_adopted(true).await;
}

async fn lost_answers_are_adopted(checked: bool) {
    let faults = Faults {
        drop_rate: 0.3,
        drop_after_apply: true,
        ..Faults::default()
    };
    let emu = start(Vec::new(), faults).await;
    let plan = Plan {
        ops: (0..20)
            .map(|i| create(&format!("s{i}"), &format!("u{i}@example.com")))
            .collect(),
    };
    let mut rec = Rec::default();
    let report = executor(&emu)
        .with_creates_checked(checked)
        .execute(&plan, Vec::new(), &ctx(), &mut rec)
        .await;
    assert_eq!(report.failed, 0, "{:?}", report.failures);
    assert_eq!(emu.emulator.users().len(), 20, "no duplicates");
    assert!(emu.emulator.stats().dropped > 0);
    let adopted = (0..20)
        .filter(|&i| rec.outcome(i) == Some(&OpOutcome::Adopted))
        .count();
    assert!(
        adopted > 0,
        "a dropped POST was applied; its retry must adopt"
    );
    // Every link points at the one user with that userName.
    for l in rec.links() {
        assert_eq!(l.target_id, id_of(&emu, &l.user_name));
    }
}

/// `creates` creates with the client paced to the same scaled Miro budgets the emulator
/// enforces: none may draw a 429. Returns the POST bucket's report.
async fn paced_creates_draw_no_429(
    window: Duration,
    creates: usize,
) -> scimsync_executor::BucketReport {
    let emu = start_limited(RateLimits::miro_scaled(window)).await;
    let exec = Executor::new(client(
        &emu.base_url,
        TOKEN,
        Profile::miro(),
        Budgets::miro_scaled(window),
    ));
    let plan = Plan {
        ops: (0..creates)
            .map(|i| create(&format!("s{i}"), &format!("u{i}@example.com")))
            .collect(),
    };
    let mut rec = Rec::default();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        exec.execute(&plan, Vec::new(), &ctx(), &mut rec),
    )
    .await
    .expect("done within 60 s");
    let stats = emu.emulator.stats();
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert_eq!(report.rate_limited, 0);
    assert_eq!(report.succeeded, creates);
    assert_eq!(emu.emulator.users().len(), creates);
    assert!(stats.max_in_window.values().all(|&n| n <= 200), "{stats:?}");
    let posts = report.buckets[&scimsync_scim::Bucket::UsersPost];
    assert_eq!(posts.requests, creates as u64);
    // Never more than the budget in a window, so n requests span at least (n - 1) div 200
    // windows (the burst bound).
    assert!(posts.busiest_window <= 200, "{posts:?}");
    let span = posts.last.unwrap() - posts.first.unwrap();
    let least = window * u32::try_from((creates - 1) / 200).unwrap();
    assert!(span >= least, "{span:?} < {least:?}");
    posts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_creates_within_scaled_miro_limits_see_no_429() {
    paced_creates_draw_no_429(Duration::from_millis(300), 300).await;
}

/// At 300 ms a debug build on two cores cannot outrun the budget anyway (see the control
/// below); over 2 s it can, so here the pacer is what keeps the 429s away. It also sends a
/// whole budget at once instead of spreading it over the window: 300 creates take one window
/// and a little, not one and a half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_creates_see_no_429_where_unpaced_ones_do() {
    let window = Duration::from_secs(2);
    let posts = paced_creates_draw_no_429(window, 300).await;
    assert_eq!(posts.busiest_window, 200, "{posts:?}");
    let span = posts.last.unwrap() - posts.first.unwrap();
    assert!(span < window.mul_f64(1.4), "{span:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_the_bucket() {
    let faults = Faults {
        burst_429: 2,
        retry_after_secs: Some(1),
        ..Faults::default()
    };
    let emu = start(Vec::new(), faults).await;
    let started = std::time::Instant::now();
    let mut rec = Rec::default();
    let report = executor(&emu)
        .execute(
            &Plan {
                ops: vec![create("s", "a@example.com")],
            },
            Vec::new(),
            &ctx(),
            &mut rec,
        )
        .await;
    assert_eq!(rec.outcome(0), Some(&OpOutcome::Succeeded));
    assert_eq!(report.rate_limited, 2);
    // Two 429s on the lookup bucket, each with Retry-After: 1.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn update_deactivate_delete_and_the_gone_cases() {
    let emu = start(
        vec![
            SeedUser::new("a@example.com"),
            SeedUser::new("b@example.com"),
            SeedUser::new("c@example.com"),
        ],
        Faults::default(),
    )
    .await;
    let (a, b, c) = (
        id_of(&emu, "a@example.com"),
        id_of(&emu, "b@example.com"),
        id_of(&emu, "c@example.com"),
    );
    let gone = ScimId::new("999999");
    let change = |path: &str, old: Option<&str>, new: Option<&str>| Change {
        path: path.into(),
        old: old.map(AttrValue::text),
        new: new.map(AttrValue::text),
    };
    let plan = Plan {
        ops: vec![
            Op::Update {
                source_id: SourceId::new("a"),
                target_id: a.clone(),
                user_name: "a@example.com".into(),
                changes: vec![
                    change(paths::DISPLAY_NAME, Some("a@example.com"), Some("Ann Lee")),
                    change(paths::DEPARTMENT, None, Some("Eng")),
                ],
            },
            Op::Update {
                source_id: SourceId::new("x"),
                target_id: gone.clone(),
                user_name: "x@example.com".into(),
                changes: vec![change(paths::DISPLAY_NAME, None, Some("X"))],
            },
            Op::Deactivate {
                source_id: SourceId::new("b"),
                target_id: b.clone(),
                user_name: "b@example.com".into(),
                reason: DeprovisionReason::Suspended,
            },
            Op::Delete {
                source_id: SourceId::new("c"),
                target_id: c.clone(),
                user_name: "c@example.com".into(),
                reason: DeprovisionReason::Deleted,
            },
            Op::Delete {
                source_id: SourceId::new("y"),
                target_id: gone.clone(),
                user_name: "y@example.com".into(),
                reason: DeprovisionReason::Deleted,
            },
        ],
    };
    let links = vec![
        link("a", &a, "a@example.com"),
        link("b", &b, "b@example.com"),
        link("c", &c, "c@example.com"),
        link("x", &gone, "x@example.com"),
        link("y", &gone, "y@example.com"),
    ];
    let mut rec = Rec::default();
    let report = executor(&emu).execute(&plan, links, &ctx(), &mut rec).await;

    assert_eq!(rec.outcome(0), Some(&OpOutcome::Succeeded));
    assert!(matches!(rec.outcome(1), Some(OpOutcome::Skipped(_))));
    assert_eq!(rec.outcome(2), Some(&OpOutcome::Succeeded));
    assert_eq!(rec.outcome(3), Some(&OpOutcome::Succeeded));
    assert_eq!(
        rec.outcome(4),
        Some(&OpOutcome::Succeeded),
        "404 on delete: already gone"
    );
    assert_eq!((report.succeeded, report.skipped, report.failed), (4, 1, 0));

    let users = emu.emulator.users();
    let ua = users.iter().find(|u| u.id == a.as_str()).unwrap();
    assert_eq!(ua.display_name, "Ann Lee");
    assert_eq!(ua.attributes[paths::ENTERPRISE]["department"], "Eng");
    assert!(!users.iter().find(|u| u.id == b.as_str()).unwrap().active);
    assert!(users.iter().all(|u| u.id != c.as_str()));

    let la = rec
        .links()
        .into_iter()
        .find(|l| l.source_id.as_str() == "a")
        .unwrap();
    assert_eq!(
        la.attrs.get(paths::DISPLAY_NAME),
        Some(&AttrValue::text("Ann Lee"))
    );
    assert_eq!(la.hash, fingerprint(&la.user_name, la.active, &la.attrs));
    let unlinked: HashSet<_> = rec
        .calls
        .iter()
        .filter_map(|c| {
            if let Call::Unlink(s) = c {
                Some(s.as_str().to_owned())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(unlinked, ["c", "x", "y"].map(String::from).into());
    let ea = rec.event_for("a").unwrap();
    assert_eq!(ea.event_type, EventType::UserUpdateProvision);
    assert_eq!(ea.changes[paths::DISPLAY_NAME]["old"], "a@example.com");
    assert_eq!(ea.changes[paths::DISPLAY_NAME]["new"], "Ann Lee");
    assert_eq!(
        rec.event_for("c").unwrap().event_type,
        EventType::UserDeleteProvision
    );
    assert!(!rec.event_for("x").unwrap().success);
}

#[tokio::test]
async fn a_manager_created_in_the_same_plan_is_referenced_by_its_new_id() {
    let emu = start(Vec::new(), Faults::default()).await;
    let with_manager = |id: &str, name: &str, manager: &str| {
        let mut attrs = Attrs::new();
        attrs.insert(
            paths::MANAGER.into(),
            AttrValue::Ref {
                user: SourceId::new(manager),
            },
        );
        Op::Create {
            source_id: SourceId::new(id),
            user_name: name.into(),
            attrs,
        }
    };
    // The report comes first in plan order, yet must wait for its manager.
    let plan = Plan {
        ops: vec![
            with_manager("r", "report@example.com", "m"),
            create("m", "manager@example.com"),
            with_manager("o", "orphan@example.com", "not-in-plan"),
        ],
    };
    let mut rec = Rec::default();
    let report = executor(&emu)
        .execute(&plan, Vec::new(), &ctx(), &mut rec)
        .await;
    assert_eq!(report.succeeded, 3);
    let manager_id = id_of(&emu, "manager@example.com");
    let users = emu.emulator.users();
    let r = users
        .iter()
        .find(|u| u.user_name == "report@example.com")
        .unwrap();
    assert_eq!(
        r.attributes[paths::ENTERPRISE]["manager"]["value"],
        manager_id.as_str()
    );
    let o = users
        .iter()
        .find(|u| u.user_name == "orphan@example.com")
        .unwrap();
    assert!(
        o.attributes
            .get(paths::ENTERPRISE)
            .and_then(|e| e.get("manager"))
            .is_none()
    );
    let lr = rec
        .links()
        .into_iter()
        .find(|l| l.source_id.as_str() == "r")
        .unwrap();
    assert_eq!(
        lr.attrs.get(paths::MANAGER),
        Some(&AttrValue::text(manager_id.as_str()))
    );
    let lo = rec
        .links()
        .into_iter()
        .find(|l| l.source_id.as_str() == "o")
        .unwrap();
    assert!(
        !lo.attrs.contains_key(paths::MANAGER),
        "an unresolved reference is not recorded as pushed"
    );
    assert_eq!(
        rec.event_for("o").unwrap().detail["deferred"][0],
        paths::MANAGER
    );
}

#[tokio::test]
async fn adopt_links_what_the_target_holds() {
    let mut seeded = SeedUser::new("Kim@example.com");
    seeded.display_name = Some("Kim Park".into());
    seeded.department = Some("Ops".into());
    let emu = start(vec![seeded], Faults::default()).await;
    let kim = id_of(&emu, "kim@example.com");
    let plan = Plan {
        ops: vec![Op::Adopt {
            source_id: SourceId::new("k"),
            target_id: kim.clone(),
            user_name: "kim@example.com".into(),
        }],
    };

    // Unknown to the executor: it reads the user.
    let mut rec = Rec::default();
    executor(&emu)
        .execute(&plan, Vec::new(), &ctx(), &mut rec)
        .await;
    let l = rec.links()[0].clone();
    assert_eq!(l.target_id, kim);
    assert_eq!(
        l.attrs.get(paths::DISPLAY_NAME),
        Some(&AttrValue::text("Kim Park"))
    );
    assert_eq!(
        l.attrs.get(paths::DEPARTMENT),
        Some(&AttrValue::text("Ops"))
    );
    let e = rec.event_for("k").unwrap();
    assert_eq!(e.event_type, EventType::UserLookupProvision);
    assert!(e.success);
    assert!(
        rec.calls.iter().all(|c| !matches!(c, Call::Before(..))),
        "an adopt is not a write"
    );

    // Known from this cycle's read: no request at all.
    let known = exec_with_known(&emu).await;
    emu.emulator.reset_stats();
    let mut rec = Rec::default();
    known.execute(&plan, Vec::new(), &ctx(), &mut rec).await;
    assert_eq!(emu.emulator.stats().requests, 0);
    assert_eq!(rec.links()[0].attrs, l.attrs);
}

async fn exec_with_known(emu: &RunningEmulator) -> Executor {
    let c = client(&emu.base_url, TOKEN, Profile::miro(), Budgets::unlimited());
    let users = c.list_users().await.unwrap();
    Executor::new(c).with_known_users(users)
}

#[tokio::test]
async fn reads_list_find_and_check() {
    let seed: Vec<SeedUser> = (0..250)
        .map(|i| SeedUser::new(format!("p{i}@example.com")))
        .collect();
    let mut guest = SeedUser::new("guest@example.com");
    guest.guest = true;
    let emu = start(seed.into_iter().chain([guest]).collect(), Faults::default()).await;
    let c = client(&emu.base_url, TOKEN, Profile::miro(), Budgets::unlimited());

    let users = c.list_users().await.unwrap();
    assert_eq!(users.len(), 250, "every member once, guests invisible");
    let ids: HashSet<_> = users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(ids.len(), 250);

    let found = c.find_user("P7@EXAMPLE.COM").await.unwrap().unwrap();
    assert_eq!(found.user_name, "p7@example.com");
    assert!(c.find_user("nobody@example.com").await.unwrap().is_none());
    assert!(c.find_user("guest@example.com").await.unwrap().is_none());
    // A value that tries to widen the filter matches nothing.
    assert!(
        c.find_user(r#"x") or (userName pr"#)
            .await
            .unwrap()
            .is_none()
    );

    let check = c.check().await.unwrap();
    assert_eq!(check.total_users, Some(250));
    assert!(check.service_provider_config.is_some());

    let bad = client(&emu.base_url, "nope", Profile::miro(), Budgets::unlimited());
    let err = bad.check().await.unwrap_err();
    assert_eq!(err.class(), scimsync_executor::ErrorClass::Halt);
}

#[tokio::test]
async fn the_token_never_shows_in_debug_errors_or_events() {
    let emu = start(
        Vec::new(),
        Faults {
            error_rate: 0.2,
            ..Faults::default()
        },
    )
    .await;
    let exec = executor(&emu);
    assert!(!format!("{exec:?}").contains(TOKEN));
    assert!(!format!("{:?}", exec.client()).contains(TOKEN));
    let plan = Plan {
        ops: (0..5)
            .map(|i| create(&format!("s{i}"), &format!("u{i}@example.com")))
            .collect(),
    };
    let mut rec = Rec::default();
    let report = exec.execute(&plan, Vec::new(), &ctx(), &mut rec).await;
    assert!(!format!("{report:?}").contains(TOKEN));
    assert!(!format!("{rec:?}").contains(TOKEN));
    for e in rec.events() {
        assert!(!serde_json::to_string(e).unwrap().contains(TOKEN));
    }
    // A 401 error names authentication, not the token.
    let bad_token = "bad-token-abc";
    let bad = client(
        &emu.base_url,
        bad_token,
        Profile::miro(),
        Budgets::unlimited(),
    );
    let err = bad.find_user("a@example.com").await.unwrap_err();
    assert!(!err.to_string().contains(bad_token));
    assert!(!format!("{err:?}").contains(bad_token));
}

/// The control: unpaced, the same kind of load does draw 429s from the emulator, and the
/// bucket pauses and retries they trigger still bring every create home, without duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaced_load_draws_429s_that_pauses_and_retries_absorb() {
    let limits = RateLimits {
        users_get: 40,
        users_post: 40,
        ..RateLimits::miro_scaled(Duration::from_secs(1))
    };
    let emu = start_limited(limits).await;
    // No bucket limited; the window still sizes the pause after a 429 without Retry-After.
    let unpaced = Budgets {
        window: Duration::from_secs(1),
        ..Budgets::unlimited()
    };
    let exec = Executor::new(client(&emu.base_url, TOKEN, Profile::miro(), unpaced));
    let plan = Plan {
        ops: (0..100)
            .map(|i| create(&format!("s{i}"), &format!("u{i}@example.com")))
            .collect(),
    };
    let mut rec = Rec::default();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        exec.execute(&plan, Vec::new(), &ctx(), &mut rec),
    )
    .await
    .expect("done within 60 s");
    let stats = emu.emulator.stats();
    assert!(
        stats.rate_limited > 0,
        "the control must hit the limit: {stats:?}"
    );
    assert_eq!(report.rate_limited, stats.rate_limited);
    assert_eq!(report.failed, 0, "{:?}", report.failures.first());
    assert_eq!(emu.emulator.users().len(), 100);
}

/// Creates the cycle's read already checked cost their POST only; a userName taken since (here:
/// seeded, in another case) is refused as not unique and adopted, never duplicated.
#[tokio::test]
async fn checked_creates_send_no_lookup_and_still_adopt_a_taken_name() {
    let emu = start(vec![SeedUser::new("Taken@Example.com")], Faults::default()).await;
    let plan = Plan {
        ops: vec![
            create("a", "a@example.com"),
            create("b", "b@example.com"),
            create("t", "taken@example.com"),
        ],
    };
    let mut rec = Rec::default();
    let report = executor(&emu)
        .with_creates_checked(true)
        .execute(&plan, Vec::new(), &ctx(), &mut rec)
        .await;
    assert_eq!(report.failed, 0, "{:?}", report.failures);
    let stats = emu.emulator.stats();
    assert_eq!(stats.by_bucket["users_post"], 3);
    // One lookup: the one that resolves "not unique".
    assert_eq!(stats.by_bucket["users_get"], 1, "{stats:?}");
    assert_eq!(rec.outcome(2), Some(&OpOutcome::Adopted));
    assert_eq!(emu.emulator.users().len(), 3);
    // A generic target may not refuse duplicates: there the lookup stays.
    let emu = start(Vec::new(), Faults::default()).await;
    let generic = Executor::new(client(
        &emu.base_url,
        TOKEN,
        Profile::generic(),
        Budgets::unlimited(),
    ))
    .with_creates_checked(true);
    let mut rec = Rec::default();
    generic
        .execute(
            &Plan {
                ops: vec![create("a", "a@example.com")],
            },
            Vec::new(),
            &ctx(),
            &mut rec,
        )
        .await;
    assert_eq!(emu.emulator.stats().by_bucket["users_get"], 1);
}

/// An emulator limiting `users_get` to `per_window` per `window`, with the rate-limit headers
/// and Retry-After in the form asked for, and a client that knows no budget (as for a generic
/// SP): only what the target says paces it.
async fn unbudgeted_against(
    per_window: u32,
    window: Duration,
    http_date: bool,
    headers: bool,
) -> (RunningEmulator, scimsync_executor::ScimClient) {
    let emu = start_limited(RateLimits {
        users_get: per_window,
        retry_after: true,
        retry_after_http_date: http_date,
        rate_limit_headers: headers,
        ..RateLimits::miro_scaled(window)
    })
    .await;
    let unbudgeted = Budgets {
        window: Duration::from_secs(120),
        ..Budgets::unlimited()
    };
    let client = client(&emu.base_url, TOKEN, Profile::miro(), unbudgeted);
    (emu, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_http_date_is_honoured() {
    let window = Duration::from_secs(2);
    let (emu, client) = unbudgeted_against(3, window, true, false).await;
    let started = std::time::Instant::now();
    for i in 0..5 {
        let found = tokio::time::timeout(
            Duration::from_secs(30),
            client.find_user(&format!("u{i}@example.com")),
        )
        .await
        .expect("bounded");
        assert_eq!(found.unwrap(), None);
    }
    // One 429: the 4th lookup waited until the date (when its slot freed, rounded up to a
    // whole second). Without the date, the default pause of a bucket with no budget (1 s, then
    // 2 s, …) comes back too soon and draws a second one.
    let stats = emu.emulator.stats();
    assert_eq!(stats.rate_limited, 1, "{stats:?}");
    assert_eq!(client.rate_limited(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_ratelimit_remaining_and_reset_keep_an_unbudgeted_client_under_the_limit() {
    let window = Duration::from_secs(1);
    let (emu, client) = unbudgeted_against(4, window, false, true).await;
    let started = std::time::Instant::now();
    for i in 0..10 {
        client
            .find_user(&format!("u{i}@example.com"))
            .await
            .unwrap();
    }
    let stats = emu.emulator.stats();
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert!(stats.max_in_window["users_get"] <= 4);
    // Ten at four a window: the 5th and the 9th each waited for a reset.
    assert!(started.elapsed() >= window * 2, "{:?}", started.elapsed());

    // The control: without the headers, the same client runs into the limit.
    let (emu, client) = unbudgeted_against(4, window, false, false).await;
    for i in 0..5 {
        client
            .find_user(&format!("u{i}@example.com"))
            .await
            .unwrap();
    }
    assert_eq!(emu.emulator.stats().rate_limited, 1);
}
