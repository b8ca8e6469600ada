//! The executor against a misbehaving SP: injected 5xx and dropped connections (with the write
//! applied and its response lost), 429 bursts with and without Retry-After, all under Miro's
//! budgets on a 300 ms window so a cycle of ~60 users takes seconds.

use crate::kit::{Env, TOKEN, attr, user};
use scimsync_emulator::{EmulatorConfig, Faults, RateLimits, Seed};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WINDOW_MS: u64 = 300;
const PEOPLE: usize = 60;

fn people() -> Value {
    let users: Vec<Value> = (0..PEOPLE)
        .map(|i| {
            user(
                &format!("p{i:03}"),
                &format!("person{i:03}@example.com"),
                &format!("First{i}"),
                "Doe",
                ["Eng", "Ops", "Sales"][i % 3],
            )
        })
        .collect();
    let members: Vec<String> = (0..PEOPLE).map(|i| format!("p{i:03}")).collect();
    json!({"users": users, "groups": [
        {"id": "g1", "name": "Miro Users", "members": members},
        {"id": "g2", "name": "Miro Admins", "members": ["p000"]},
    ]})
}

/// An emulator with Miro's budgets over `WINDOW_MS`, the client paced over the same window,
/// `faults` on from the first request, and the 60-person directory.
async fn faulty(faults: Faults, rng_seed: u64) -> Env {
    let mut env = Env::with_config(EmulatorConfig {
        token: TOKEN.into(),
        seed: Seed::default(),
        limits: Some(RateLimits::miro_scaled(Duration::from_millis(WINDOW_MS))),
        faults,
        rng_seed,
        ..EmulatorConfig::default()
    })
    .await;
    env.extra_config = format!("\n[target.rate_limits]\nwindow = \"{WINDOW_MS}ms\"\n");
    env.write_directory(&people());
    env
}

/// Every desired person is in the target exactly once, active, with the directory's attributes.
fn assert_converged(env: &Env, context: &str) {
    let users = env.users();
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for u in &users {
        *by_name.entry(u.user_name.to_lowercase()).or_default() += 1;
    }
    let duplicates: Vec<_> = by_name.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "duplicate userNames {duplicates:?}\n{context}"
    );
    for i in 0..PEOPLE {
        let name = format!("person{i:03}@example.com");
        let u = env
            .user(&name)
            .unwrap_or_else(|| panic!("{name} missing\n{context}"));
        assert!(u.active, "{name} inactive");
        assert_eq!(
            attr(&u, "department"),
            Some(["Eng", "Ops", "Sales"][i % 3]),
            "{name}"
        );
        assert_eq!(
            attr(&u, "employeeNumber"),
            Some(format!("E-p{i:03}").as_str()),
            "{name}: {:?}",
            u.attributes
        );
    }
}

async fn converges_despite(faults: Faults, rng_seed: u64) {
    let env = faulty(faults, rng_seed).await;
    let first = env.run(&["sync", "--now"]).await;
    assert!(
        first.code == 0 || first.code == 3,
        "first cycle exited {}:\n{}",
        first.code,
        first.stderr
    );
    let injected = env.stats();
    assert!(
        injected.injected_errors + injected.dropped > 0,
        "no fault was injected: {injected:?}"
    );
    let mut log = format!("cycle 1 ({}):\n{}", first.code, first.stderr);
    if first.code != 0 {
        // A failed operation is retried by the next cycle, faults still on.
        let second = env.run(&["sync", "--now"]).await;
        log.push_str(&format!("cycle 2 ({}):\n{}", second.code, second.stderr));
        assert_eq!(second.code, 0, "{log}");
    }
    assert_converged(&env, &log);
    assert_eq!(
        env.stats().rate_limited,
        0,
        "paced under the budgets: {log}"
    );

    // Every write that reached the SP belongs to an operation with an event: each person has a
    // create (or, after a lost response, an adoption) recorded.
    let events = env.events(&["--limit", "100000"]).await;
    let recorded: BTreeSet<String> = events
        .iter()
        .filter(|e| {
            matches!(
                e["event_type"].as_str(),
                Some("user_create_provision" | "user_lookup_provision")
            )
        })
        .filter_map(|e| e["resource"]["user_name"].as_str().map(str::to_lowercase))
        .collect();
    for i in 0..PEOPLE {
        let name = format!("person{i:03}@example.com");
        assert!(recorded.contains(&name), "no event for {name}\n{log}");
    }
    // And every failed attempt is in the audit log with its cause.
    for e in events.iter().filter(|e| e["outcome"] == json!("failed")) {
        assert!(e["resource"]["user_name"].is_string(), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn five_xx_and_dropped_connections_converge_without_duplicates() {
    converges_despite(
        Faults {
            error_rate: 0.10,
            drop_rate: 0.05,
            ..Faults::default()
        },
        11,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_responses_to_applied_writes_do_not_duplicate() {
    converges_despite(
        Faults {
            error_rate: 0.10,
            drop_rate: 0.05,
            drop_after_apply: true,
            ..Faults::default()
        },
        23,
    )
    .await;
}

async fn rides_out_burst(retry_after_secs: Option<u64>) {
    let env = faulty(
        Faults {
            burst_429: 20,
            retry_after_secs,
            ..Faults::default()
        },
        5,
    )
    .await;
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = env.stats();
    assert_eq!(stats.injected_429, 20, "{stats:?}");
    assert_converged(&env, &run.stderr);
    // The summary counts every 429 the cycle received.
    let summary = run
        .stderr
        .lines()
        .find(|l| l.contains("rate-limited responses"))
        .unwrap_or_else(|| panic!("no summary line:\n{}", run.stderr));
    assert!(summary.contains(" 0 failed"), "{summary}");
    assert!(summary.contains("; 20 rate-limited responses"), "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_burst_without_retry_after_is_ridden_out() {
    rides_out_burst(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_burst_with_retry_after_is_ridden_out() {
    rides_out_burst(Some(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_prints_what_each_bucket_sent_against_its_bound() {
    let env = faulty(Faults::default(), 1).await;
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = env.stats();
    // The first cycle reads the whole target, so the creates need no lookup: POSTs only.
    let sent = stats.by_bucket.get("users_post").copied().unwrap_or(0);
    assert_eq!(sent, PEOPLE as u64, "{stats:?}");
    let line = run.bucket_line("users_post");
    // 60 requests fit one burst of Miro's 200: nothing is extrapolated into a rate.
    assert!(line.contains("one burst (200 per 300ms)"), "{line}");
    assert!(!line.contains('%'), "{line}");
    let reported: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"));
    assert_eq!(reported, sent, "{line}");
    let busiest: u64 = line
        .split("at most ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no busiest window in {line}"));
    assert!(busiest <= 200 && busiest <= reported, "{line}");
    assert_eq!(stats.rate_limited, 0);
}
