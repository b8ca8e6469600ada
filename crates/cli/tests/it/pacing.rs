//! Pacing and quiet cycles, end to end: a no-change incremental cycle sends no request at all.

use crate::kit::{Env, user};
use scimsync_emulator::{Seed, SeedGroup, SeedUser};
use serde_json::{Value, json};

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
    })
    .await;
    env.extra_config = "\n[groups]\nsync = [\"Eng\", \"Sales\"]\n".into();
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
