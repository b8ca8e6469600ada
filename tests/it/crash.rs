//! Crash safety: the real binary killed with SIGKILL at 20 seeded random points during cycles
//! over a 500-user directory, restarted each time, then one cycle to the end.
//!
//! The emulator runs in the test process, a different process from the scimsync that is killed,
//! so it sees exactly what a real target would: requests whose sender died mid-flight.
//!
//! The invariants checked at the end:
//! - the target equals the desired state: every desired user present exactly once
//!   (case-insensitively), active, with the desired department; nobody else;
//! - no journal intent is left open;
//! - every write the target received has an event: `writes received <= events of user ops
//!   whose last attempt was a write (POST/PATCH/DELETE) + events of abandoned intents`. A kill
//!   between a request and its event leaves the intent open, and the next cycle closes it with an
//!   event (`detail.journal = "abandoned"`), so a write is never unaccounted for; a kill between
//!   the event and the intent's completion only adds an event, hence `<=`;
//! - every user the target holds has a create event (its own, or its abandoned intent's).

use crate::kit::{Env, attr, user};
use rand::{Rng, SeedableRng};
use scimsync_emulator::Seed;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const USERS: usize = 500;
const KILLS: usize = 20;

/// Round `r`'s directory: everyone, with a department that changes for a tenth of them each
/// round, and every fourth round 20 people out of scope (deactivated, then reactivated).
fn directory(round: usize) -> Value {
    let users: Vec<Value> = (0..USERS)
        .map(|i| {
            let dept = department(round, i);
            user(
                &format!("c{i}"),
                &format!("crash{i}@example.com"),
                "Cy",
                &format!("No{i}"),
                &dept,
            )
        })
        .collect();
    let members: Vec<String> = (0..USERS)
        .filter(|i| !(round % 4 == 1 && i % 25 == 0))
        .map(|i| format!("c{i}"))
        .collect();
    json!({"users": users, "groups": [
        {"id": "g1", "name": "Miro Users", "members": members},
        {"id": "g2", "name": "Miro Admins", "members": ["c0"]},
    ]})
}

fn department(round: usize, i: usize) -> String {
    if i % 10 == round % 10 {
        format!("R{round}")
    } else {
        "Eng".into()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_twenty_random_points_converges_without_duplicates_or_unaccounted_writes() {
    let started = Instant::now();
    let mut env = Env::new(Seed::default()).await;
    // Miro's budgets per second instead of per 30 s: the same pacing code, a test-sized clock.
    env.extra_config = "\n[target.rate_limits]\nwindow = \"1s\"\n".into();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5c1a_5eed);
    let mut completed = 0;
    for round in 0..KILLS {
        env.write_directory(&directory(round));
        // The killed process is spawned directly, on the kit's sync.toml.
        if round == 0 {
            env.write_config();
        }
        let mut child = env.spawn_sync(std::process::Stdio::null());
        let delay = Duration::from_millis(rng.random_range(50..1500));
        tokio::select! {
            _ = child.wait() => completed += 1,
            _ = tokio::time::sleep(delay) => {
                child.start_kill().unwrap(); // SIGKILL
                child.wait().await.unwrap();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(70),
            "round {round}: too slow"
        );
    }
    let last = KILLS;
    env.write_directory(&directory(last));
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "the final cycle: {}", run.stderr);

    // The target equals the desired state.
    let users = env.users();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for u in &users {
        *by_name.entry(u.user_name.to_lowercase()).or_default() += 1;
    }
    assert!(
        by_name.values().all(|&n| n == 1),
        "duplicates: {:?}",
        by_name.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(users.len(), USERS);
    for i in 0..USERS {
        let name = format!("crash{i}@example.com");
        let u = env.user(&name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(u.active, "{name} inactive");
        assert_eq!(
            attr(&u, "department"),
            Some(department(last, i).as_str()),
            "{name}"
        );
    }

    // The journal is closed and every write has an event.
    let store = scimsync_store::Store::open(&env.path("state.db")).unwrap();
    assert!(store.open_intents().unwrap().is_empty());
    drop(store);
    let events = env.events(&["--limit", "1000000"]).await;
    let abandoned = events
        .iter()
        .filter(|e| e["detail"]["journal"] == "abandoned")
        .count() as u64;
    let written = events
        .iter()
        .filter(|e| {
            e["event_type"].as_str().unwrap().starts_with("user_")
                && matches!(
                    e["http"]["method"].as_str(),
                    Some("POST" | "PATCH" | "DELETE")
                )
        })
        .count() as u64;
    let stats = env.stats();
    assert!(
        stats.writes <= written + abandoned,
        "{} writes received, {written} write events + {abandoned} abandoned",
        stats.writes
    );
    for u in &users {
        assert!(
            events
                .iter()
                .any(|e| e["event_type"] == "user_create_provision"
                    && e["resource"]["user_name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&u.user_name))),
            "{} exists without a create event",
            u.user_name
        );
    }
    eprintln!(
        "crash test: {KILLS} kills ({completed} rounds finished first), {} writes, {written} write \
         events, {abandoned} abandoned intents, {:?}",
        stats.writes,
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(90));
}
