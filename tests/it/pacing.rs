//! Pacing and quiet cycles, end to end: a no-change incremental cycle sends no request at all,
//! new hires go in one burst under Miro's real 30 s budgets, and back-to-back runs share the
//! target's windows.

use crate::kit::{Env, TOKEN, user};
use scimsync_emulator::{EmulatorConfig, RateLimits, Seed, SeedGroup, SeedUser};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn users(n: usize, offset: usize) -> Vec<Value> {
    (offset..offset + n)
        .map(|i| {
            user(
                &format!("n{i}"),
                &format!("new{i}@example.com"),
                "New",
                &format!("Hire{i}"),
                "Eng",
            )
        })
        .collect()
}

fn directory(users: Vec<Value>, groups: Value) -> Value {
    json!({"users": users, "groups": groups})
}

/// A company with what makes a cycle read: a suspended person never provisioned, a guest the
/// target refuses, a synced team that exists and one that does not.
fn company() -> Value {
    let mut cy = user("u3", "cy@example.com", "Cy", "Park", "Sales");
    cy["state"] = json!("SUSPENDED");
    directory(
        vec![
            user("u1", "ann@example.com", "Ann", "Lee", "Eng"),
            user("u2", "bob@example.com", "Bob", "Stone", "Eng"),
            cy,
            user("u4", "noor@agency.example", "Noor", "Aziz", "Ops"),
        ],
        json!([
            {"id": "g1", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]},
            {"id": "g2", "name": "Miro Admins", "members": ["u1"]},
            {"id": "g3", "name": "Eng", "members": ["u1", "u2"]},
            {"id": "g4", "name": "Sales", "members": ["u2"]},
        ]),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_no_change_incremental_cycle_sends_no_request() {
    let guest = SeedUser {
        guest: true,
        ..SeedUser::new("noor@agency.example")
    };
    let mut env = Env::new(Seed {
        users: vec![guest],
        groups: vec![SeedGroup {
            display_name: "Eng".into(),
            members: vec![],
        }],
        teams: vec![],
    })
    .await;
    env.groups = "sync = [\"Eng\", \"Sales\"]".into();
    env.write_directory(&company());
    env.sync().await; // full: creates, the guest's 404, the skip, Eng filled, Sales missing
    assert!(env.user("ann@example.com").is_some());
    assert!(
        env.user("cy@example.com").is_none(),
        "suspended: not created"
    );

    for cycle in 0..2 {
        let before = env.stats();
        let run = env.sync().await;
        let after = env.stats();
        assert_eq!(
            after.requests - before.requests,
            0,
            "incremental cycle {cycle} sent {:?}\n{}",
            after.by_bucket,
            run.stderr
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
    }

    // Someone creates the suspended person in Miro by hand: incremental cycles trust what they
    // remembered (no request), and the next full read adopts and deactivates them.
    env.emu.emulator.seed(&Seed {
        users: vec![SeedUser::new("cy@example.com")],
        groups: vec![],
        teams: vec![],
    });
    let before = env.stats();
    env.sync().await;
    assert_eq!(env.stats().requests, before.requests);
    let run = env.run(&["sync", "--now", "--full"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cy = env.user("cy@example.com").unwrap();
    assert!(!cy.active, "adopted and deactivated by the full cycle");

    // Back in the directory: the linked user is reactivated by an incremental cycle, and the
    // one after it is quiet again.
    let mut dir = company();
    dir["users"][2]["state"] = json!("ACTIVATED");
    env.write_directory(&dir);
    env.sync().await;
    assert!(env.user("cy@example.com").unwrap().active);
    let before = env.stats();
    env.sync().await;
    assert_eq!(env.stats().requests, before.requests);
}

/// 150 new hires at a morning cycle, under Miro's real budgets (30 s windows, in the emulator
/// and in the client): their lookups and POSTs each go as one burst, in seconds, not spread
/// over most of a window as before.
#[tokio::test(flavor = "multi_thread")]
async fn new_hires_go_in_one_burst_under_real_thirty_second_budgets() {
    let env = Env::with_config(EmulatorConfig {
        token: TOKEN.into(),
        limits: Some(RateLimits::miro()),
        ..EmulatorConfig::default()
    })
    .await;
    let groups = |ids: Vec<String>| json!([{"id": "g1", "name": "Miro Users", "members": ids}]);
    let ids = |n: usize| (0..n).map(|i| format!("n{i}")).collect::<Vec<_>>();
    env.write_directory(&directory(users(5, 0), groups(ids(5))));
    env.sync().await;

    env.write_directory(&directory(users(155, 0), groups(ids(155))));
    let before = env.stats();
    let started = Instant::now();
    let run = env.sync().await;
    let took = started.elapsed();
    let after = env.stats();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.users().len(), 155);
    assert_eq!(after.rate_limited, 0, "{after:?}");
    let sent = |b: &str| after.by_bucket.get(b).copied().unwrap_or(0);
    let earlier = |b: &str| before.by_bucket.get(b).copied().unwrap_or(0);
    assert_eq!(
        sent("users_get") - earlier("users_get"),
        150,
        "one lookup each"
    );
    assert_eq!(
        sent("users_post") - earlier("users_post"),
        150,
        "one POST each"
    );
    // Evenly spread at 200 per 30 s, 150 lookups alone took 22 s.
    assert!(took < Duration::from_secs(12), "{took:?}\n{}", run.stderr);
    let line = run.bucket_line("users_post");
    assert!(line.contains("one burst (200 per 30s)"), "{line}");
}

/// Two runs back to back share the target's window: the second knows what the first sent (from
/// the store) and waits for those slots instead of drawing 429s.
#[tokio::test(flavor = "multi_thread")]
async fn back_to_back_runs_do_not_add_their_bursts_together() {
    let window = Duration::from_secs(2);
    let mut env = Env::with_config(EmulatorConfig {
        token: TOKEN.into(),
        limits: Some(RateLimits::miro_scaled(window)),
        ..EmulatorConfig::default()
    })
    .await;
    env.extra_config = "\n[target.rate_limits]\nwindow = \"2s\"\n".into();
    env.policy = "max_deprovisions = \"100%\"".into();
    let groups = |n: usize| {
        json!([{"id": "g1", "name": "Miro Users",
                "members": (0..n).map(|i| format!("n{i}")).collect::<Vec<_>>()}])
    };
    env.write_directory(&directory(users(150, 0), groups(150)));
    env.sync().await; // full: 150 POSTs
    // At once: 100 more, each a lookup and a POST. Alone, 100 POSTs fit a burst; on top of the
    // first run's 150 they do not.
    env.write_directory(&directory(users(250, 0), groups(250)));
    let run = env.sync().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = env.stats();
    assert_eq!(env.users().len(), 250);
    assert_eq!(stats.rate_limited, 0, "{stats:?}\n{}", run.stderr);
    assert!(stats.max_in_window["users_post"] <= 200, "{stats:?}");
}
