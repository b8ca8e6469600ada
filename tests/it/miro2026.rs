//! Miro as it is in 2026, end to end: the real binary against the emulator (its SCIM API and
//! its REST team-assignment API, each with its own token). The user-group model by default and
//! a legacy store kept on teams; `check` telling the org's model; `[teams]` over REST, planned,
//! evented and guarded; nobody deactivated, leaving or a guest added to a group; licences only
//! upgraded; a reactivation before what Miro freezes; admin roles; values over Miro's limits.

use crate::kit::{Env, Run, TOKEN, members, names, user};
use scimsync_emulator::{EmulatorConfig, GroupModel, RateLimits, Seed};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const REST_TOKEN: &str = "e2e-rest-token-51c0";
const WINDOW_MS: u64 = 400;

async fn env(seed: Value, model: GroupModel) -> Env {
    let seed: Seed = serde_json::from_value(seed).unwrap();
    Env::with_config(EmulatorConfig {
        token: TOKEN.into(),
        rest_token: REST_TOKEN.into(),
        seed,
        group_model: model,
        limits: Some(RateLimits::miro_scaled(Duration::from_millis(WINDOW_MS))),
        ..EmulatorConfig::default()
    })
    .await
}

/// What a test's sync.toml says besides the source, target and state.
#[derive(Clone, Default)]
struct Cfg {
    group_model: Option<&'static str>,
    rest: bool,
    groups: Vec<&'static str>,
    /// Raw TOML appended (`[teams]`, `[roles.admin_roles]`, `[mapping]` entries, …).
    extra: String,
    mapping: String,
    policy: String,
}

fn write(env: &Env, cfg: &Cfg) {
    let token_file = env.path("rest.token");
    std::fs::write(&token_file, REST_TOKEN).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let model = cfg
        .group_model
        .map(|m| format!("group_model = \"{m}\"\n"))
        .unwrap_or_default();
    let rest = if cfg.rest {
        format!(
            "[target.rest]\nurl = \"http://{}\"\norg_id = \"{}\"\ntoken_file = \"rest.token\"\n",
            env.emu.addr,
            scimsync_emulator::DEFAULT_ORG_ID
        )
    } else {
        String::new()
    };
    let config = format!(
        r#"
[source]
kind = "json"
path = "directory.json"

[target]
url = "{url}"
token_env = "E2E_SCIM_TOKEN"
profile = "miro"
{model}
[target.rate_limits]
window = "{WINDOW_MS}ms"

{rest}
[scope]
groups = ["Miro Users"]

[groups]
sync = {groups}

[mapping]
preset = "jumpcloud"
{mapping}

[policy]
max_deprovisions = "50%"
{policy}

[state]
path = "state.db"

{extra}
"#,
        url = env.emu.base_url,
        groups = serde_json::to_string(&cfg.groups).unwrap(),
        mapping = cfg.mapping,
        policy = cfg.policy,
        extra = cfg.extra,
    );
    std::fs::write(env.path("miro.toml"), config).unwrap();
}

/// `cfg` with `max_deprovisions = 0`: the guard holds every loss (run it with
/// `env.run_with_config(&env.path("miro.toml"), …)`).
fn write_strict(env: &Env, cfg: &Cfg) {
    write(env, cfg);
    let text = std::fs::read_to_string(env.path("miro.toml"))
        .unwrap()
        .replace("max_deprovisions = \"50%\"", "max_deprovisions = 0");
    std::fs::write(env.path("miro.toml"), text).unwrap();
}

async fn run(env: &Env, cfg: &Cfg, args: &[&str]) -> Run {
    write(env, cfg);
    env.run_with_config(&env.path("miro.toml"), args).await
}

async fn sync(env: &Env, cfg: &Cfg) -> Run {
    let run = run(env, cfg, &["sync", "--now"]).await;
    assert_eq!(run.code, 0, "sync failed:\n{}\n{}", run.stdout, run.stderr);
    run
}

async fn events(env: &Env, cfg: &Cfg, event_type: &str) -> Vec<Value> {
    let r = run(
        env,
        cfg,
        &["events", "--output", "json", "--type", event_type],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn directory(users: Vec<Value>, groups: Value) -> Value {
    json!({"users": users, "groups": groups})
}

fn four() -> Vec<Value> {
    vec![
        user("u1", "ann@example.com", "Ann", "Lee", "Eng"),
        user("u2", "bob@example.com", "Bob", "Stone", "Eng"),
        user("u3", "cy@example.com", "Cy", "Park", "Sales"),
        user("u4", "dee@example.com", "Dee", "Ruiz", "Ops"),
    ]
}

fn bucket(env: &Env, name: &str) -> u64 {
    env.stats().by_bucket.get(name).copied().unwrap_or(0)
}

/// Assigns the emulator's user group `group` to its team `team` through the REST API, as an
/// admin would by hand in Miro.
async fn assign_by_hand(env: &Env, team: &str, group: &str) {
    let id_of_team = env
        .emu
        .emulator
        .teams()
        .into_iter()
        .find(|t| t.name == team)
        .unwrap()
        .id;
    let id_of_group = env
        .emu
        .emulator
        .groups()
        .into_iter()
        .find(|g| g.display_name == group)
        .unwrap()
        .id;
    let r = reqwest::Client::new()
        .post(format!(
            "http://{}/v2/orgs/{}/teams/{id_of_team}/groups",
            env.emu.addr,
            scimsync_emulator::DEFAULT_ORG_ID
        ))
        .bearer_auth(REST_TOKEN)
        .json(&json!({"userGroupId": id_of_group, "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// The user groups assigned to the emulator's team `name`, by displayName.
fn team(env: &Env, name: &str) -> BTreeSet<String> {
    let groups = env.emu.emulator.groups();
    let team = env
        .emu
        .emulator
        .teams()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no team {name}"));
    team.groups
        .iter()
        .filter_map(|id| groups.iter().find(|g| &g.id == id))
        .map(|g| g.display_name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_install_syncs_user_groups_and_a_legacy_store_keeps_its_teams() {
    // New: no group_model in sync.toml, an empty store: Miro's user groups, created.
    let env = env(json!({}), GroupModel::UserGroup).await;
    env.write_directory(&directory(
        four(),
        json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]},
               {"id": "g1", "name": "Eng", "members": ["u1", "u2"]}]),
    ));
    let cfg = Cfg {
        groups: vec!["Eng"],
        ..Cfg::default()
    };
    let plan = run(&env, &cfg, &["plan"]).await;
    assert!(
        plan.stdout.contains("+ create     Eng [g1]"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("warning"), "{}", plan.stdout);
    sync(&env, &cfg).await;
    assert_eq!(
        members(&env, "Eng"),
        names(&["ann@example.com", "bob@example.com"])
    );

    // Legacy: a store whose groups were synced as teams, then the key removed (an upgrade
    // from before 2026): kept on teams, with a warning; never a user group created.
    let env = self::env(
        json!({"groups": [{"displayName": "Eng"}]}),
        GroupModel::Team,
    )
    .await;
    env.write_directory(&directory(
        four(),
        json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]},
               {"id": "g1", "name": "Eng", "members": ["u1"]},
               {"id": "g2", "name": "Sales", "members": ["u3"]}]),
    ));
    let legacy = Cfg {
        group_model: Some("team"),
        groups: vec!["Eng", "Sales"],
        ..Cfg::default()
    };
    sync(&env, &legacy).await;
    assert_eq!(members(&env, "Eng"), names(&["ann@example.com"]));
    let unset = Cfg {
        group_model: None,
        ..legacy.clone()
    };
    let plan = run(&env, &unset, &["plan"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains("keeping \"team\""),
        "the plan says why: {}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("+ create     Sales"),
        "{}",
        plan.stdout
    );
    let before = bucket(&env, "groups_post_delete");
    let run = sync(&env, &unset).await;
    assert!(run.stderr.contains("keeping \"team\""), "{}", run.stderr);
    assert_eq!(
        bucket(&env, "groups_post_delete"),
        before,
        "no user group created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_tells_which_model_the_org_answers_to_and_how_to_tell_without_rest() {
    let dir = directory(
        four(),
        json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]},
               {"id": "g1", "name": "Eng", "members": ["u1"]}]),
    );
    let env = self::env(
        json!({"groups": [{"displayName": "Eng"}], "teams": [{"name": "Product"}]}),
        GroupModel::UserGroup,
    )
    .await;
    env.write_directory(&dir);
    let with_rest = Cfg {
        rest: true,
        groups: vec!["Eng"],
        ..Cfg::default()
    };
    let check = run(&env, &with_rest, &["check"]).await;
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
    assert!(
        check
            .stdout
            .contains("org answers to: user_group (its SCIM groups are its user groups)"),
        "{}",
        check.stdout
    );
    let json = run(&env, &with_rest, &["check", "--output", "json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["miro"]["org"], "user_group");
    assert_eq!(v["miro"]["teams_visible"], 1);
    // Without REST: SCIM does not say; check says how to tell.
    let without = Cfg {
        rest: false,
        ..with_rest.clone()
    };
    let check = run(&env, &without, &["check"]).await;
    assert!(
        check.stdout.contains("SCIM does not say which group model"),
        "{}",
        check.stdout
    );

    // A legacy org, and a sync.toml that says user_group: an error, naming the fix.
    let env = self::env(
        json!({"groups": [{"displayName": "Eng"}]}),
        GroupModel::Team,
    )
    .await;
    env.write_directory(&dir);
    let wrong = Cfg {
        group_model: Some("user_group"),
        ..with_rest
    };
    let check = run(&env, &wrong, &["check"]).await;
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(
        check.stdout.contains("set [target] group_model = \"team\""),
        "{}",
        check.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn teams_are_assigned_over_rest_planned_evented_and_their_removal_guarded() {
    let env = env(
        json!({"teams": [{"name": "Product"}, {"name": "Platform"}, {"name": "Old"}]}),
        GroupModel::UserGroup,
    )
    .await;
    env.write_directory(&directory(
        four(),
        json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]},
               {"id": "g1", "name": "Engineering", "members": ["u1", "u2"]}]),
    ));
    let mut cfg = Cfg {
        rest: true,
        groups: vec!["Engineering"],
        extra: "[teams]\n\"Engineering\" = [\"Product\", \"Platform\"]\n".into(),
        ..Cfg::default()
    };
    let plan = run(&env, &cfg, &["plan"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    for team in ["Platform", "Product"] {
        let line = format!("+ assign     Engineering [g1] -> team \"{team}\"");
        assert!(plan.stdout.contains(&line), "{line}\n{}", plan.stdout);
    }
    assert!(
        plan.stdout.contains("2 team assignments"),
        "{}",
        plan.stdout
    );
    sync(&env, &cfg).await;
    assert_eq!(team(&env, "Product"), names(&["Engineering"]));
    assert_eq!(team(&env, "Platform"), names(&["Engineering"]));
    let updates = events(&env, &cfg, "group_update_provision").await;
    let assigned: BTreeSet<String> = updates
        .iter()
        .filter(|e| e["detail"]["action"] == "assign" && e["success"] == true)
        .map(|e| e["detail"]["team"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(assigned, names(&["Platform", "Product"]));

    // Nothing changed: an incremental cycle asks the REST API nothing.
    let rest_before = env.stats().rest_requests;
    sync(&env, &cfg).await;
    assert_eq!(env.stats().rest_requests, rest_before);

    // An assignment made by hand in Miro is Miro's: never undone. One [teams] asks for and
    // finds made is adopted, not made twice.
    assign_by_hand(&env, "Old", "Engineering").await;

    // Platform leaves [teams]: an unassignment, a loss the guard counts and holds.
    cfg.extra = "[teams]\n\"Engineering\" = [\"Product\"]\n".into();
    write_strict(&env, &cfg);
    let plan = env
        .run_with_config(&env.path("miro.toml"), &["plan", "--detailed-exitcode"])
        .await;
    assert_eq!(plan.code, 4, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("- unassign   Engineering [g1]"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("team \"Platform\""), "{}", plan.stdout);
    let sync_held = env
        .run_with_config(&env.path("miro.toml"), &["sync", "--now"])
        .await;
    assert_eq!(sync_held.code, 4, "{}", sync_held.stderr);
    assert_eq!(team(&env, "Platform"), names(&["Engineering"]), "held");
    let approve = env
        .run_with_config(&env.path("miro.toml"), &["approve-deletes"])
        .await;
    assert_eq!(approve.code, 0, "{}\n{}", approve.stdout, approve.stderr);
    let done = env
        .run_with_config(&env.path("miro.toml"), &["sync", "--now"])
        .await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(team(&env, "Platform").is_empty());
    assert_eq!(team(&env, "Product"), names(&["Engineering"]));
    assert_eq!(
        team(&env, "Old"),
        names(&["Engineering"]),
        "made by hand: kept"
    );
    let unassigned = events(&env, &cfg, "group_update_provision")
        .await
        .into_iter()
        .filter(|e| e["detail"]["action"] == "unassign" && e["success"] == true)
        .count();
    assert_eq!(unassigned, 1);

    // Platform back in [teams] after someone assigned it by hand: adopted, no request.
    assign_by_hand(&env, "Platform", "Engineering").await;
    cfg.extra = "[teams]\n\"Engineering\" = [\"Product\", \"Platform\"]\n".into();
    let plan = run(&env, &cfg, &["plan"]).await;
    assert!(
        plan.stdout.contains("= adopt      Engineering [g1]")
            && plan.stdout.contains("already assigned in Miro"),
        "{}",
        plan.stdout
    );
    let writes = env.stats().writes;
    sync(&env, &cfg).await;
    assert_eq!(env.stats().writes, writes, "adopted without a request");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_rest_token_the_plan_says_what_it_cannot_do() {
    let env = env(
        json!({"teams": [{"name": "Product"}]}),
        GroupModel::UserGroup,
    )
    .await;
    env.write_directory(&directory(
        four(),
        json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]},
               {"id": "g1", "name": "Engineering", "members": ["u1"]}]),
    ));
    let cfg = Cfg {
        rest: false,
        groups: vec!["Engineering"],
        extra: "[teams]\n\"Engineering\" = [\"Product\"]\n".into(),
        ..Cfg::default()
    };
    let plan = run(&env, &cfg, &["plan"]).await;
    assert!(
        plan.stdout.contains("! skip       Engineering [g1]")
            && plan
                .stdout
                .contains("team assignment goes through Miro's REST API")
            && plan.stdout.contains("[target.rest]"),
        "{}",
        plan.stdout
    );
    sync(&env, &cfg).await;
    assert_eq!(env.stats().rest_requests, 0);
    assert!(team(&env, "Product").is_empty());
    let skipped = events(&env, &cfg, "group_update_provision")
        .await
        .into_iter()
        .filter(|e| e["detail"]["skipped"] == true)
        .count();
    assert_eq!(skipped, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_deactivated_leaving_suspended_or_a_guest_is_added_to_a_group() {
    let env = env(
        json!({"users": [{"userName": "gil@example.com", "guest": true, "userType": "Free"}]}),
        GroupModel::UserGroup,
    )
    .await;
    let mut users = four();
    users.push(user("u9", "gil@example.com", "Gil", "Guest", "Eng"));
    let everyone = json!(["u1", "u2", "u3", "u4", "u9"]);
    env.write_directory(&directory(
        users.clone(),
        json!([{"id": "g0", "name": "Miro Users", "members": everyone},
               {"id": "g1", "name": "Eng", "members": ["u1"]}]),
    ));
    let cfg = Cfg {
        groups: vec!["Eng"],
        ..Cfg::default()
    };
    let first = run(&env, &cfg, &["sync", "--now"]).await;
    assert!(first.code == 0 || first.code == 3, "{}", first.stderr);
    assert_eq!(members(&env, "Eng"), names(&["ann@example.com"]));

    // Bob is suspended, Cy unassigned (both deactivated this cycle), Gil a guest: all three
    // join Eng in the directory. None is added: the add would reactivate Bob and Cy, and make
    // Gil a paid internal user.
    users[1]["state"] = json!("SUSPENDED");
    env.write_directory(&directory(
        users.clone(),
        json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u4", "u9"]},
               {"id": "g1", "name": "Eng", "members": ["u1", "u2", "u3", "u9"]}]),
    ));
    let plan = run(&env, &cfg, &["plan"]).await;
    assert!(
        plan.stdout.contains("! skip       gil@example.com [u9]")
            && plan
                .stdout
                .contains("adding them to Eng would make them an internal user"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("+ bob") && !plan.stdout.contains("+ cy"));
    let run2 = run(&env, &cfg, &["sync", "--now"]).await;
    assert!(run2.code == 0 || run2.code == 3, "{}", run2.stderr);
    assert_eq!(members(&env, "Eng"), names(&["ann@example.com"]));
    assert!(!env.user("bob@example.com").unwrap().active);
    assert!(!env.user("cy@example.com").unwrap().active);
    let gil = env
        .emu
        .emulator
        .users()
        .into_iter()
        .find(|u| u.user_name == "gil@example.com")
        .unwrap();
    assert!(gil.guest && gil.user_type == "Free", "{gil:?}");

    // Next cycle, Bob still suspended and in Eng: still not added.
    let run3 = run(&env, &cfg, &["sync", "--now"]).await;
    assert!(run3.code == 0 || run3.code == 3, "{}", run3.stderr);
    assert!(!members(&env, "Eng").contains("bob@example.com"));
    assert!(!env.user("bob@example.com").unwrap().active);

    // Bob comes back: reactivated, then added, in one cycle.
    users[1]["state"] = json!("ACTIVATED");
    env.write_directory(&directory(
        users,
        json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u4", "u9"]},
               {"id": "g1", "name": "Eng", "members": ["u1", "u2", "u9"]}]),
    ));
    let run4 = run(&env, &cfg, &["sync", "--now"]).await;
    assert!(run4.code == 0 || run4.code == 3, "{}", run4.stderr);
    assert!(env.user("bob@example.com").unwrap().active);
    assert_eq!(
        members(&env, "Eng"),
        names(&["ann@example.com", "bob@example.com"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn licences_only_go_up_and_a_reactivation_goes_before_what_miro_freezes() {
    let env = env(json!({}), GroupModel::UserGroup).await;
    let mut users = four();
    users[0]["licence"] = json!("Free");
    users[1]["licence"] = json!("Full");
    users[2]["licence"] = json!("Enterprise");
    users[3]["licence"] = json!("free");
    let groups = json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]}]);
    env.write_directory(&directory(users.clone(), groups.clone()));
    let cfg = Cfg {
        mapping: "userType = \"licence\"\n".into(),
        policy: "max_invalid = \"50%\"\n".into(),
        ..Cfg::default()
    };
    sync(&env, &cfg).await;
    assert_eq!(env.user("ann@example.com").unwrap().user_type, "Free");
    assert_eq!(env.user("bob@example.com").unwrap().user_type, "Full");
    assert_eq!(
        env.user("dee@example.com").unwrap().user_type,
        "Free",
        "in Miro's spelling"
    );
    assert!(
        env.user("cy@example.com").is_none(),
        "an unknown licence is never sent"
    );
    let lookups = events(&env, &cfg, "user_lookup_provision").await;
    assert!(
        lookups.iter().any(|e| e["resource"]["source_id"] == "u3"
            && e["error"].as_str().unwrap().contains("userType")
            && e["error"].as_str().unwrap().contains("Free Restricted")),
        "{lookups:#?}"
    );

    // Ann up to Full (sent), Bob down to Free (never sent: a skip saying why).
    users[0]["licence"] = json!("Full");
    users[1]["licence"] = json!("Free");
    env.write_directory(&directory(users.clone(), groups.clone()));
    let plan = run(&env, &cfg, &["plan"]).await;
    assert!(
        plan.stdout.contains("userType: \"Free\" -> \"Full\""),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("! skip       bob@example.com [u2]: userType \"Full\" -> \"Free\" not sent"),
        "{}",
        plan.stdout
    );
    sync(&env, &cfg).await;
    assert_eq!(env.user("ann@example.com").unwrap().user_type, "Full");
    assert_eq!(env.user("bob@example.com").unwrap().user_type, "Full");
    let failed = run(
        &env,
        &cfg,
        &["events", "--failed", "--type", "user_update_provision"],
    )
    .await;
    assert!(
        !failed.stdout.contains("bob@example.com"),
        "no 400 from Miro: {}",
        failed.stdout
    );

    // Dee is suspended (deactivated), then comes back with a new email and Full: Miro freezes
    // userName and userType while she is deactivated, so the reactivation goes first.
    users[3]["state"] = json!("SUSPENDED");
    env.write_directory(&directory(users.clone(), groups.clone()));
    sync(&env, &cfg).await;
    assert!(!env.user("dee@example.com").unwrap().active);
    users[3]["state"] = json!("ACTIVATED");
    users[3]["email"] = json!("dee.ruiz@example.com");
    users[3]["licence"] = json!("Full");
    env.write_directory(&directory(users, groups));
    let patches = bucket(&env, "users_put_patch");
    sync(&env, &cfg).await;
    let dee = env
        .user("dee.ruiz@example.com")
        .expect("renamed in one cycle");
    assert!(dee.active && dee.user_type == "Full", "{dee:?}");
    assert_eq!(
        bucket(&env, "users_put_patch") - patches,
        2,
        "reactivate, then update"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_roles_follow_their_groups_and_taking_one_away_is_guarded() {
    let env = env(json!({}), GroupModel::UserGroup).await;
    let groups = |helpdesk: Value| {
        json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]},
               {"id": "g5", "name": "Helpdesk", "members": helpdesk},
               {"id": "g6", "name": "SecOps", "members": ["u3"]}])
    };
    env.write_directory(&directory(four(), groups(json!(["u2"]))));
    let cfg = Cfg {
        extra: "[roles.admin_roles]\n\"Helpdesk\" = [\"User Admin\"]\n\
                \"SecOps\" = [\"Security Admin\", \"User Admin\"]\n"
            .into(),
        ..Cfg::default()
    };
    sync(&env, &cfg).await;
    let roles = |email: &str| -> BTreeSet<String> {
        env.user(email).unwrap().admin_roles.into_iter().collect()
    };
    assert_eq!(roles("bob@example.com"), names(&["User Admin"]));
    assert_eq!(
        roles("cy@example.com"),
        names(&["Security Admin", "User Admin"])
    );

    // A role given by hand in Miro (not mapped) is left alone.
    let ann = env.user("ann@example.com").unwrap().id;
    let r = reqwest::Client::new()
        .patch(format!("{}/Users/{ann}", env.emu.base_url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "add", "path": "roles", "value": [
                       {"value": "Content Admin", "type": "organization_admin_role", "primary": false}]}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Bob leaves the helpdesk: his role goes, with Miro's path, as an admin demotion the
    // guard counts (held at max_deprovisions = 0, until approved).
    env.write_directory(&directory(four(), groups(json!([]))));
    write_strict(&env, &cfg);
    let plan = env.run_with_config(&env.path("miro.toml"), &["plan"]).await;
    assert!(
        plan.stdout
            .contains("roles[value eq \"User Admin\"]: \"organization_admin_role\" -> (none)"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("admin demotion"), "{}", plan.stdout);
    let held = env
        .run_with_config(&env.path("miro.toml"), &["sync", "--now"])
        .await;
    assert_eq!(held.code, 4, "{}", held.stderr);
    assert_eq!(roles("bob@example.com"), names(&["User Admin"]));
    let approve = env
        .run_with_config(&env.path("miro.toml"), &["approve-deletes"])
        .await;
    assert_eq!(approve.code, 0, "{}", approve.stderr);
    let done = env
        .run_with_config(&env.path("miro.toml"), &["sync", "--now"])
        .await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(roles("bob@example.com").is_empty());
    assert_eq!(
        roles("ann@example.com"),
        names(&["Content Admin"]),
        "not ours"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn values_over_miros_limits_are_errors_naming_the_record_never_a_400() {
    let env = env(json!({}), GroupModel::UserGroup).await;
    let mut users = four();
    let long = format!("Ann {}", "Lee-".repeat(17));
    users[0]["displayname"] = json!(long);
    users[1]["employeeidentifier"] = json!("E".repeat(21));
    let groups = json!([{"id": "g0", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]}]);
    env.write_directory(&directory(users, groups));
    let cfg = Cfg {
        policy: "max_invalid = \"50%\"\n".into(),
        ..Cfg::default()
    };
    let plan = run(&env, &cfg, &["plan"]).await;
    assert!(
        plan.stdout.contains(
            "invalid: user u1: displayName: is 72 characters, over the target's limit of 60"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("user u2: urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber: is 21 characters, over the target's limit of 20"),
        "{}",
        plan.stdout
    );
    sync(&env, &cfg).await;
    assert!(env.user("ann@example.com").is_none() && env.user("bob@example.com").is_none());
    let failed = run(&env, &cfg, &["events", "--failed", "--output", "json"]).await;
    assert!(
        !failed.stdout.contains("\"status\":400"),
        "never a 400 from Miro: {}",
        failed.stdout
    );

    // truncate = true: cut to Miro's limit instead.
    let cut = Cfg {
        mapping: "displayName = { truncate = true }\n\
                  \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber\" = { truncate = true }\n"
            .into(),
        ..cfg
    };
    sync(&env, &cut).await;
    let ann = env.user("ann@example.com").unwrap();
    assert_eq!(ann.display_name.chars().count(), 60, "{}", ann.display_name);
    assert!(env.user("bob@example.com").is_some());
}
