//! The whole cycle for users, as issue "the whole pipeline" demands it.

use crate::kit::{Env, attr, company, user};
use scimsync_emulator::{Seed, SeedUser};
use serde_json::{Value, json};

fn writes(before: &scimsync_emulator::Stats, after: &scimsync_emulator::Stats) -> u64 {
    after.writes - before.writes
}

fn seed_user(user_name: &str) -> SeedUser {
    serde_json::from_value(json!({"userName": user_name, "displayName": "Pre Existing"})).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_cycle_creates_everyone_in_scope_and_second_sends_nothing() {
    let env = Env::new(Seed::default()).await;
    let run = env.sync().await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let users = env.users();
    let mut names: Vec<_> = users.iter().map(|u| u.user_name.to_lowercase()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ann@example.com",
            "bob@example.com",
            "cy@example.com",
            "dee@example.com"
        ]
    );
    let ann = env.user("ann@example.com").unwrap();
    assert_eq!(ann.display_name, "Ann Lee");
    assert_eq!(ann.role, "ORGANIZATION_INTERNAL_ADMIN");
    assert_eq!(
        env.user("bob@example.com").unwrap().role,
        "ORGANIZATION_INTERNAL_USER"
    );
    assert_eq!(attr(&ann, "department"), Some("Eng"));

    let before = env.stats();
    let run = env.sync().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after = env.stats();
    assert_eq!(
        writes(&before, &after),
        0,
        "a second cycle over an unchanged directory must not write"
    );
    assert_eq!(env.users().len(), 4);
}

/// How many links hold a record stamp (what lets a cycle skip parsing an unchanged record).
fn stamped_links(env: &Env) -> usize {
    let store = scimsync_store::Store::open(&env.path("state.db")).unwrap();
    store.link_heads().unwrap().stamps.iter().flatten().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_records_are_recognised_by_their_stamps_and_changes_still_land() {
    let env = Env::new(Seed::default()).await;
    assert_eq!(env.sync().await.code, 0);
    // The first cycle reads the target whole; the second, incremental, proves every user
    // unchanged and stamps its link with the record.
    assert_eq!(stamped_links(&env), 0);
    let before = env.stats();
    assert_eq!(env.sync().await.code, 0);
    assert_eq!(writes(&before, &env.stats()), 0);
    assert_eq!(stamped_links(&env), 4);

    // Bob's record changes; Cy's does not, but she joins the admin group, which a recognised
    // record must not hide.
    let mut dir = company();
    dir["users"][1]["department"] = json!("Platform");
    dir["groups"][1]["members"] = json!(["u1", "u3"]);
    env.write_directory(&dir);
    let before = env.stats();
    let run = env.sync().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(writes(&before, &env.stats()), 2);
    let bob = env.user("bob@example.com").unwrap();
    assert_eq!(attr(&bob, "department"), Some("Platform"));
    assert_eq!(
        env.user("cy@example.com").unwrap().role,
        "ORGANIZATION_INTERNAL_ADMIN"
    );
    // Their links were written: stamped again only once proved unchanged.
    assert_eq!(stamped_links(&env), 2);
    let before = env.stats();
    assert_eq!(env.sync().await.code, 0);
    assert_eq!(writes(&before, &env.stats()), 0);
    assert_eq!(stamped_links(&env), 4);

    // Leaving the scope is not in the record either.
    dir["groups"][0]["members"] = json!(["u1", "u2", "u3"]);
    env.write_directory(&dir);
    assert_eq!(env.sync().await.code, 0);
    assert!(!env.user("dee@example.com").unwrap().active);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_department_change_sends_one_patch_with_one_op() {
    let env = Env::new(Seed::default()).await;
    env.sync().await;
    let mut dir = company();
    dir["users"][1]["department"] = json!("Platform");
    env.write_directory(&dir);

    let before = env.stats();
    env.sync().await;
    let after = env.stats();
    assert_eq!(writes(&before, &after), 1);
    assert_eq!(
        after.by_bucket.get("users_put_patch").copied().unwrap_or(0)
            - before
                .by_bucket
                .get("users_put_patch")
                .copied()
                .unwrap_or(0),
        1
    );
    assert_eq!(
        attr(&env.user("bob@example.com").unwrap(), "department"),
        Some("Platform")
    );

    let updates = env.events(&["--type", "user_update_provision"]).await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    let changes = updates[0]["changes"].as_object().unwrap();
    assert_eq!(changes.len(), 1, "one op in the PATCH: {changes:?}");
    let (path, change) = changes.iter().next().unwrap();
    assert!(path.ends_with(":department"), "{path}");
    assert_eq!(change["old"], json!("Eng"));
    assert_eq!(change["new"], json!("Platform"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_applies_as_planned_and_is_refused_once_the_directory_moves() {
    let env = Env::new(Seed::default()).await;
    env.sync().await;
    let mut dir = company();
    dir["users"][1]["department"] = json!("Platform");
    env.write_directory(&dir);
    let saved = env.path("plan.json");
    let saved = saved.to_str().unwrap();
    let planned = env.run(&["plan", "--out", saved]).await;
    assert_eq!(planned.code, 0, "{}", planned.stderr);

    // The directory moves on: the saved plan no longer describes it, and nothing is sent.
    dir["users"][1]["department"] = json!("Sales");
    env.write_directory(&dir);
    let before = env.stats();
    let refused = env.run(&["sync", "--now", "--plan", saved]).await;
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("directory snapshot changed"),
        "{}",
        refused.stderr
    );
    assert_eq!(writes(&before, &env.stats()), 0);

    // Back to what was planned: the saved plan applies, exactly.
    dir["users"][1]["department"] = json!("Platform");
    env.write_directory(&dir);
    let applied = env.run(&["sync", "--now", "--plan", saved]).await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert_eq!(writes(&before, &env.stats()), 1);
    assert_eq!(
        attr(&env.user("bob@example.com").unwrap(), "department"),
        Some("Platform")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_change_replaces_user_name_on_the_same_user() {
    let env = Env::new(Seed::default()).await;
    env.sync().await;
    let old_id = env.user("cy@example.com").unwrap().id;
    let mut dir = company();
    dir["users"][2]["email"] = json!("cy.park@example.com");
    env.write_directory(&dir);

    let before = env.stats();
    env.sync().await;
    assert_eq!(writes(&before, &env.stats()), 1);
    assert!(env.user("cy@example.com").is_none());
    let renamed = env.user("cy.park@example.com").unwrap();
    assert_eq!(
        renamed.id, old_id,
        "the same target user, renamed, not a new one"
    );
    assert_eq!(env.users().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn unassigning_deactivates_and_reassigning_reactivates() {
    let env = Env::new(Seed::default()).await;
    env.sync().await;
    let mut dir = company();
    dir["groups"][0]["members"] = json!(["u1", "u2", "u3"]);
    env.write_directory(&dir);
    let run = env.sync().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dee = env.user("dee@example.com").unwrap();
    assert!(
        !dee.active,
        "unassigned user must be deactivated, not deleted"
    );
    let deprov = env.events(&["--type", "user_deprovision"]).await;
    assert_eq!(deprov.len(), 1);
    assert_eq!(deprov[0]["resource"]["user_name"], json!("dee@example.com"));

    env.write_directory(&company());
    let before = env.stats();
    env.sync().await;
    assert_eq!(writes(&before, &env.stats()), 1);
    let dee_again = env.user("dee@example.com").unwrap();
    assert!(dee_again.active);
    assert_eq!(dee_again.id, dee.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pre_existing_user_with_different_case_is_adopted_not_duplicated() {
    let env = Env::new(Seed {
        users: vec![seed_user("BOB@Example.COM")],
        groups: vec![],
        teams: vec![],
    })
    .await;
    let pre = env.user("bob@example.com").unwrap();
    env.sync().await;
    let bobs: Vec<_> = env
        .users()
        .into_iter()
        .filter(|u| u.user_name.eq_ignore_ascii_case("bob@example.com"))
        .collect();
    assert_eq!(bobs.len(), 1, "no duplicate");
    assert_eq!(bobs[0].id, pre.id);
    assert_eq!(
        bobs[0].display_name, "Bob Stone",
        "adopted, then updated to the directory's values"
    );
    let before = env.stats();
    env.sync().await;
    assert_eq!(writes(&before, &env.stats()), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unmanaged_users_are_never_touched() {
    let env = Env::new(Seed {
        users: vec![seed_user("someone.else@example.com")],
        groups: vec![],
        teams: vec![],
    })
    .await;
    let before = env.user("someone.else@example.com").unwrap();
    env.sync().await;
    env.run(&["sync", "--now", "--full"]).await;
    assert_eq!(env.user("someone.else@example.com").unwrap(), before);
}

fn ops_of_plan(plan: &Value) -> Vec<(String, String)> {
    let mut ops: Vec<_> = plan["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| op["kind"] != json!("skip"))
        .map(|op| {
            (
                op["kind"].as_str().unwrap().to_owned(),
                op["user_name"].as_str().unwrap().to_lowercase(),
            )
        })
        .collect();
    ops.sort();
    ops
}

fn event_kind(event: &Value) -> Option<String> {
    let kind = match event["event_type"].as_str()? {
        "user_create_provision" => "create",
        "user_lookup_provision" => "adopt",
        "user_update_provision" => {
            let reactivates = event["changes"]
                .get("active")
                .map(|c| c["new"] == json!("true") || c["new"] == json!(true));
            if reactivates == Some(true) {
                "reactivate"
            } else {
                "update"
            }
        }
        "user_deprovision" => "deactivate",
        "user_delete_provision" => "delete",
        _ => return None,
    };
    Some(kind.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_sends_no_write_and_predicts_sync_operation_for_operation() {
    let env = Env::new(Seed {
        users: vec![seed_user("BOB@example.com")],
        groups: vec![],
        teams: vec![],
    })
    .await;
    env.sync().await;
    // A mix of everything: an update, an email change, a deactivation, a create, a reactivation.
    let mut dir = company();
    dir["users"][0]["department"] = json!("Research");
    dir["users"][2]["email"] = json!("cy.park@example.com");
    dir["users"]
        .as_array_mut()
        .unwrap()
        .push(user("u5", "eve@example.com", "Eve", "Moss", "Eng"));
    dir["groups"][0]["members"] = json!(["u1", "u2", "u3", "u5"]);
    env.write_directory(&dir);

    let before = env.stats();
    let planned = env.run(&["plan", "--output", "json"]).await;
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    assert_eq!(writes(&before, &env.stats()), 0, "plan must not write");
    let plan: Value = serde_json::from_str(&planned.stdout).unwrap();
    let text = env.run(&["plan"]).await;
    assert!(text.stdout.contains("+ create"), "{}", text.stdout);
    assert!(text.stdout.contains("- deactivate"), "{}", text.stdout);
    assert!(text.stdout.contains("-> \"Research\""), "{}", text.stdout);

    let sync = env.sync().await;
    let events = env.events(&["--run", &last_run(&env).await]).await;
    let mut done: Vec<_> = events
        .iter()
        .filter_map(|e| {
            Some((
                event_kind(e)?,
                e["resource"]["user_name"].as_str()?.to_lowercase(),
            ))
        })
        .collect();
    done.sort();
    let mut predicted = ops_of_plan(&plan);
    // An email change is planned under the new userName; the event names it too.
    predicted.sort();
    assert_eq!(done, predicted, "sync output: {}", sync.stderr);
    assert_eq!(
        writes(&before, &env.stats()) as usize,
        plan["writes"].as_u64().unwrap() as usize
    );
}

async fn last_run(env: &Env) -> String {
    let status = env.run(&["status", "--output", "json"]).await;
    let v: Value = serde_json::from_str(&status.stdout).unwrap();
    v["runs"][0]["id"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_is_skipped_and_last_admin_failure_is_that_user_only() {
    let seed: Seed = serde_json::from_value(json!({"users": [
        {"userName": "cy@example.com", "displayName": "Cy Guest", "guest": true}
    ]}))
    .unwrap();
    let mut env = Env::new(seed).await;
    env.policy = "max_deprovisions = \"100%\"".to_owned();
    let run = env.sync().await;
    // The guest is skipped with an event; everyone else is created.
    assert!(env.user("ann@example.com").is_some());
    assert!(env.user("dee@example.com").is_some());
    let failed = env
        .events(&["--failed", "--type", "user_create_provision"])
        .await;
    assert_eq!(failed.len(), 1, "{failed:?}\n{}", run.stderr);
    assert_eq!(failed[0]["resource"]["user_name"], json!("cy@example.com"));
    assert_eq!(failed[0]["http"]["status"], json!(404));
    // Never retried: the next cycle knows the guest and sends nothing for them.
    let before = env.stats();
    let again = env.sync().await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(writes(&before, &env.stats()), 0);
    let lookups = |s: &scimsync_emulator::Stats| s.by_bucket.get("users_get").copied().unwrap_or(0);
    assert_eq!(
        lookups(&env.stats()),
        lookups(&before),
        "not even looked up again"
    );
    let plan = env.run(&["plan"]).await;
    assert!(plan.stdout.contains("! skip"), "{}", plan.stdout);
    assert!(plan.stdout.contains("guest"), "{}", plan.stdout);

    // Ann is the only admin: deactivating her is refused by the target (409), the others go.
    let mut dir = company();
    dir["groups"][0]["members"] = json!(["u3"]);
    env.write_directory(&dir);
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 3, "some operations failed: {}", run.stderr);
    assert!(env.user("ann@example.com").unwrap().active);
    assert!(!env.user("bob@example.com").unwrap().active);
    assert!(!env.user("dee@example.com").unwrap().active);
    let failed = env
        .events(&["--failed", "--type", "user_deprovision"])
        .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["http"]["status"], json!(409));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_attempt_has_an_event_and_cycles_start_and_end() {
    let env = Env::new(Seed::default()).await;
    env.sync().await;
    let events = env.events(&[]).await;
    let count = |t: &str| {
        events
            .iter()
            .filter(|e| e["event_type"] == json!(t))
            .count()
    };
    assert_eq!(count("sync_cycle_start"), 1);
    assert_eq!(count("sync_cycle_end"), 1);
    assert_eq!(count("idm_integration_activate"), 1);
    assert_eq!(count("user_create_provision"), 4);
    assert_eq!(env.stats().by_bucket.get("users_post").copied(), Some(4));
    for e in events
        .iter()
        .filter(|e| e["event_type"] == json!("user_create_provision"))
    {
        assert_eq!(e["success"], json!(true));
        assert_eq!(e["initiated_by"], json!("manual"));
        assert!(e["resource"]["target_id"].is_string(), "{e}");
        assert_eq!(e["http"]["method"], json!("POST"));
        assert_eq!(e["http"]["status"], json!(201));
    }
}
