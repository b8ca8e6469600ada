//! Groups end to end: directory groups ↔ Miro teams (and user groups), membership diffs within
//! Miro's group budgets, both group models. The real binary against the emulator.

use crate::kit::{Env, Run, TOKEN, members, names, user};
use scimsync_emulator::{EmulatorConfig, GroupModel, RateLimits, Seed, Stats};
use serde_json::{Value, json};
use std::time::Duration;

/// A short window on both sides, so a test never waits for Miro's 30 s.
const WINDOW_MS: u64 = 400;

fn seed(value: Value) -> Seed {
    serde_json::from_value(value).unwrap()
}

async fn env(seed: Seed, model: GroupModel) -> Env {
    Env::with_config(EmulatorConfig {
        token: TOKEN.into(),
        seed,
        group_model: model,
        limits: Some(RateLimits::miro_scaled(Duration::from_millis(WINDOW_MS))),
        ..EmulatorConfig::default()
    })
    .await
}

/// sync.toml with `[groups]` and `[target] group_model` (the kit's config has neither).
fn write_config(env: &Env, model: &str, groups: &[&str]) {
    let config = format!(
        r#"
[source]
kind = "json"
path = "directory.json"

[target]
url = "{url}"
token_env = "E2E_SCIM_TOKEN"
profile = "miro"
group_model = "{model}"

[target.rate_limits]
window = "{WINDOW_MS}ms"

[scope]
groups = ["Miro Users"]

[groups]
sync = {groups}

[mapping]
preset = "jumpcloud"

[policy]
max_deprovisions = "50%"

[state]
path = "state.db"
"#,
        url = env.emu.base_url,
        groups = serde_json::to_string(groups).unwrap(),
    );
    std::fs::write(env.path("groups.toml"), config).unwrap();
}

async fn run(env: &Env, args: &[&str]) -> Run {
    env.run_with_config(&env.path("groups.toml"), args).await
}

async fn sync(env: &Env) -> Run {
    let run = run(env, &["sync", "--now"]).await;
    assert_eq!(run.code, 0, "sync failed:\n{}\n{}", run.stdout, run.stderr);
    run
}

async fn events(env: &Env, event_type: &str) -> Vec<Value> {
    let run = run(env, &["events", "--output", "json", "--type", event_type]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn bucket(stats: &Stats, name: &str) -> u64 {
    stats.by_bucket.get(name).copied().unwrap_or(0)
}

fn directory(eng: &[&str], sales: &[&str]) -> Value {
    json!({
        "users": [
            user("u1", "ann@example.com", "Ann", "Lee", "Eng"),
            user("u2", "bob@example.com", "Bob", "Stone", "Eng"),
            user("u3", "cy@example.com", "Cy", "Park", "Sales"),
        ],
        "groups": [
            {"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u3"]},
            {"id": "g1", "name": "Eng", "members": eng},
            {"id": "g2", "name": "Sales", "members": sales},
        ]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn moving_a_user_between_groups_sends_one_add_and_one_remove() {
    let env = env(
        seed(json!({"groups": [{"displayName": "Eng"}, {"displayName": "Sales"}]})),
        GroupModel::Team,
    )
    .await;
    env.write_directory(&directory(&["u1", "u2"], &["u3"]));
    write_config(&env, "team", &["Eng", "Sales"]);
    // First cycle: users created, then added to their teams (in the same cycle).
    sync(&env).await;
    assert_eq!(
        members(&env, "Eng"),
        names(&["ann@example.com", "bob@example.com"])
    );
    assert_eq!(members(&env, "Sales"), names(&["cy@example.com"]));

    // Bob moves from Eng to Sales.
    env.write_directory(&directory(&["u1"], &["u3", "u2"]));
    let plan = run(&env, &["plan"]).await;
    assert!(plan.stdout.contains("Sales"), "{}", plan.stdout);
    assert!(plan.stdout.contains("+ bob@example.com"), "{}", plan.stdout);
    assert!(plan.stdout.contains("- bob@example.com"), "{}", plan.stdout);
    let before = env.stats();
    sync(&env).await;
    let after = env.stats();
    assert_eq!(after.writes - before.writes, 2, "one add and one remove");
    assert_eq!(
        bucket(&after, "groups_patch_small") - bucket(&before, "groups_patch_small"),
        2
    );
    assert_eq!(members(&env, "Eng"), names(&["ann@example.com"]));
    assert_eq!(
        members(&env, "Sales"),
        names(&["bob@example.com", "cy@example.com"])
    );
    let updates = events(&env, "group_update_provision").await;
    let moved: Vec<&Value> = updates
        .iter()
        .filter(|e| e["run_id"] == updates.last().unwrap()["run_id"])
        .collect();
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert!(moved.iter().all(|e| e["success"] == json!(true)));

    // Nothing changed: nothing is sent, and no group is read.
    let before = env.stats();
    sync(&env).await;
    let after = env.stats();
    assert_eq!(after.writes, before.writes);
    assert_eq!(bucket(&after, "groups_get"), bucket(&before, "groups_get"));
    assert_eq!(
        bucket(&after, "groups_list"),
        bucket(&before, "groups_list")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_missing_in_miro_is_skipped_with_an_event_and_no_request() {
    let env = env(
        seed(json!({"groups": [{"displayName": "Eng"}]})),
        GroupModel::Team,
    )
    .await;
    env.write_directory(&directory(&["u1"], &["u3"]));
    write_config(&env, "team", &["Eng", "Sales"]);
    sync(&env).await;
    let stats = env.stats();
    assert_eq!(
        bucket(&stats, "groups_post_delete"),
        0,
        "no POST /Groups in the team model"
    );
    assert_eq!(env.emu.emulator.groups().len(), 1);
    let created = events(&env, "group_create_provision").await;
    let skipped: Vec<&Value> = created
        .iter()
        .filter(|e| e["resource"]["display_name"] == json!("Sales"))
        .collect();
    assert_eq!(skipped.len(), 1, "{created:?}");
    assert_eq!(skipped[0]["success"], json!(false));
    assert!(
        skipped[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("team"),
        "{:?}",
        skipped[0]
    );
    assert!(skipped[0].get("http").is_none_or(Value::is_null));

    // Remembered: an incremental cycle neither lists the groups again nor repeats the event.
    let before = env.stats();
    sync(&env).await;
    let after = env.stats();
    assert_eq!(after.requests, before.requests, "no request at all");
    let again = events(&env, "group_create_provision").await;
    assert_eq!(again.len(), created.len(), "{again:?}");

    // Once the team exists, a full cycle finds it, links it and fills it.
    env.emu
        .emulator
        .seed(&seed(json!({"groups": [{"displayName": "Sales"}]})));
    let run = run(&env, &["sync", "--now", "--full"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(members(&env, "Sales"), names(&["cy@example.com"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_group_model_creates_renames_and_deletes_groups() {
    let env = env(Seed::default(), GroupModel::UserGroup).await;
    env.write_directory(&directory(&["u1", "u2"], &["u3"]));
    write_config(&env, "user_group", &["Eng", "Sales"]);
    sync(&env).await;
    assert_eq!(
        members(&env, "Eng"),
        names(&["ann@example.com", "bob@example.com"])
    );
    assert_eq!(members(&env, "Sales"), names(&["cy@example.com"]));

    // Renamed in the directory: renamed in the target, same group.
    let id_before = env
        .emu
        .emulator
        .groups()
        .into_iter()
        .find(|g| g.display_name == "Eng")
        .unwrap()
        .id;
    let mut dir = directory(&["u1", "u2"], &["u3"]);
    dir["groups"][1]["name"] = json!("Engineering");
    env.write_directory(&dir);
    write_config(&env, "user_group", &["Engineering", "Sales"]);
    sync(&env).await;
    let renamed = env
        .emu
        .emulator
        .groups()
        .into_iter()
        .find(|g| g.display_name == "Engineering")
        .unwrap();
    assert_eq!(renamed.id, id_before);

    // No longer synced: deleted.
    write_config(&env, "user_group", &["Engineering"]);
    sync(&env).await;
    let left: Vec<String> = env
        .emu
        .emulator
        .groups()
        .into_iter()
        .map(|g| g.display_name)
        .collect();
    assert_eq!(left, vec!["Engineering".to_owned()]);
    let deletes = events(&env, "group_delete_provision").await;
    assert!(
        deletes.iter().any(|e| e["success"] == json!(true)),
        "{deletes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_twenty_thousand_member_team_is_filled_within_the_budgets() {
    const N: usize = 20_000;
    let users: Vec<Value> = (0..N)
        .map(|i| json!({"userName": format!("p{i}@example.com"), "displayName": format!("P {i}")}))
        .collect();
    let env = env(
        seed(json!({"users": users, "groups": [{"displayName": "Everyone"}]})),
        GroupModel::Team,
    )
    .await;
    let dir_users: Vec<Value> = (0..N)
        .map(|i| {
            json!({"id": format!("p{i}"), "email": format!("p{i}@example.com"),
                        "displayname": format!("P {i}"), "state": "ACTIVATED"})
        })
        .collect();
    let ids: Vec<String> = (0..N).map(|i| format!("p{i}")).collect();
    env.write_directory(&json!({
        "users": dir_users,
        "groups": [
            {"id": "g0", "name": "Miro Users", "members": ids},
            {"id": "g1", "name": "Everyone", "members": ids},
        ]
    }));
    write_config(&env, "team", &["Everyone"]);
    sync(&env).await;
    let stats = env.stats();
    assert_eq!(members(&env, "Everyone").len(), N);
    assert_eq!(stats.rate_limited, 0, "paced under every budget");
    let large = bucket(&stats, "groups_patch_large");
    assert!(
        (3..=5).contains(&large),
        "8,000-member PATCHes in the large bucket: {large}"
    );
    for (name, budget) in [
        ("groups_patch_large", 5),
        ("groups_patch_small", 100),
        ("groups_list", 5),
        ("groups_get", 20),
    ] {
        assert!(
            stats.max_in_window.get(name).copied().unwrap_or(0) <= budget,
            "{name}: {stats:?}"
        );
    }
    let updates = events(&env, "group_update_provision").await;
    assert!(
        updates.iter().all(|e| e["success"] == json!(true)),
        "no 413"
    );

    let before = env.stats();
    sync(&env).await;
    assert_eq!(
        env.stats().writes,
        before.writes,
        "a second cycle sends nothing"
    );
}
