//! Safety nets: the deletion guard, bad input, auth failure, and the token's secrecy.

use crate::kit::{Env, TOKEN, company};
use scimsync_emulator::{Faults, Seed};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_guard_holds_mass_deprovisioning_until_approved() {
    let mut env = Env::new(Seed::default()).await;
    env.extra_config = String::new();
    env.sync().await;
    // Three of four users unassigned: 75% > the 50% the test config allows.
    let mut dir = company();
    dir["groups"][0]["members"] = json!(["u1"]);
    dir["users"][0]["department"] = json!("Still updated");
    env.write_directory(&dir);
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 4, "held: {}", run.stderr);
    assert!(
        env.users().iter().all(|u| u.active),
        "nothing deactivated while held"
    );
    assert_eq!(
        crate::kit::attr(&env.user("ann@example.com").unwrap(), "department"),
        Some("Still updated"),
        "creates and updates still go"
    );
    assert_eq!(env.events(&["--type", "sync_held"]).await.len(), 1);
    let status = env.run(&["status"]).await;
    assert!(status.stdout.contains("HELD: 3"), "{}", status.stdout);

    let approve = env.run(&["approve-deletes"]).await;
    assert_eq!(approve.code, 0);
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.users().iter().filter(|u| !u.active).count(), 3);
    // The approval covered one cycle only.
    let status = env.run(&["status", "--output", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["deletes_approved"], json!(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_directory_deprovisions_nobody() {
    let env = Env::new(Seed::default()).await;
    env.sync().await;
    env.write_directory(&json!({"users": [], "groups": []}));
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(env.users().iter().all(|u| u.active));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_snapshot_is_an_error_that_names_where_and_changes_nothing() {
    let env = Env::new(Seed::default()).await;
    env.sync().await;
    let full = serde_json::to_string_pretty(&company()).unwrap();
    std::fs::write(env.path("directory.json"), &full[..full.len() / 2]).unwrap();
    let before = env.stats();
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("directory.json"), "{}", run.stderr);
    assert!(run.stderr.contains("line"), "{}", run.stderr);
    assert_eq!(env.stats().writes, before.writes);
    assert!(env.users().iter().all(|u| u.active));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_ends_the_cycle_with_exit_1_and_one_clear_event() {
    let env = Env::new(Seed::default()).await;
    env.emu.emulator.set_faults(Faults {
        fail_auth: true,
        ..Faults::default()
    });
    let run = env.run(&["sync", "--now", "--full"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains("401") || run.stderr.to_lowercase().contains("auth"),
        "{}",
        run.stderr
    );
    let failed = env.events(&["--failed"]).await;
    let user_events = failed
        .iter()
        .filter(|e| e["event_type"].as_str().unwrap().starts_with("user_"))
        .count();
    assert!(user_events <= 1, "no event flood: {failed:?}");
    assert!(
        failed
            .iter()
            .any(|e| e["event_type"] == json!("sync_cycle_end"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_in_sync_toml_is_refused() {
    let mut env = Env::new(Seed::default()).await;
    env.extra_config = String::new();
    env.write_config();
    let config = std::fs::read_to_string(env.path("sync.toml")).unwrap();
    let config = config.replace(
        "profile = \"miro\"",
        &format!("profile = \"miro\"\ntoken = \"{TOKEN}\""),
    );
    std::fs::write(env.path("bad.toml"), config).unwrap();
    let out = std::process::Command::new(crate::kit::bin())
        .args(["--config"])
        .arg(env.path("bad.toml"))
        .args(["plan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("token"), "{stderr}");
    assert!(
        !stderr.contains(TOKEN),
        "the refusal must not echo the token"
    );
    env.extra_config.clear();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_never_reaches_output_events_or_the_database() {
    let env = Env::new(Seed::default()).await;
    let mut outputs = String::new();
    for args in [
        &["plan"][..],
        &["sync", "--now"],
        &["plan", "--output", "json"],
        &["status"],
        &["events", "--output", "json"],
        &["check"],
    ] {
        let run = env.run(args).await;
        outputs.push_str(&run.stdout);
        outputs.push_str(&run.stderr);
    }
    env.emu.emulator.set_faults(Faults {
        fail_auth: true,
        ..Faults::default()
    });
    let run = env
        .run(&["--log-format", "json", "sync", "--now", "--full"])
        .await;
    outputs.push_str(&run.stdout);
    outputs.push_str(&run.stderr);
    assert!(
        outputs.contains("user_create_provision"),
        "the runs did something"
    );
    assert!(!outputs.contains(TOKEN), "token leaked to output");
    for file in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.path(file)) {
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "token leaked into {file}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_a_remote_host_is_refused() {
    let mut env = Env::new(Seed::default()).await;
    env.write_config();
    let config = std::fs::read_to_string(env.path("sync.toml")).unwrap();
    let config = config.replace(&env.emu.base_url, "http://scim.example.com/api/v1/scim");
    std::fs::write(env.path("remote.toml"), config).unwrap();
    let out = std::process::Command::new(crate::kit::bin())
        .arg("--config")
        .arg(env.path("remote.toml"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allow_insecure_http"));
    env.extra_config.clear();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_that_shrank_beyond_max_shrink_holds_deprovisions() {
    let env = Env::new(Seed::default()).await;
    env.sync().await;
    // One of four users gone from the export: 25% > max_shrink's default 20%, though the 50%
    // max_deprovisions of the test config would let one deactivation go.
    let mut dir = company();
    dir["users"].as_array_mut().unwrap().pop();
    dir["groups"][0]["members"] = json!(["u1", "u2", "u3"]);
    env.write_directory(&dir);
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(env.users().iter().all(|u| u.active));
    let held = env.events(&["--type", "sync_held"]).await;
    assert!(
        held[0]["error"].as_str().unwrap().contains("max_shrink"),
        "{held:?}"
    );
    assert_eq!(env.run(&["approve-deletes"]).await.code, 0);
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.users().iter().filter(|u| !u.active).count(), 1);
    // The approved snapshot is the new baseline: the same directory again is not held.
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_is_escaped_or_held_never_breaking_a_request_or_the_plan() {
    let mut env = Env::new(Seed::default()).await;
    // Two invalid records of eight: above the default max_invalid (10%), which would end the
    // cycle with exit 3 (safety::too_many_invalid_records_…); this test is about escaping.
    env.policy = "max_deprovisions = \"100%\"\nmax_invalid = \"50%\"".to_owned();
    let huge = "x".repeat(100_001);
    let mut dir = company();
    let users = dir["users"].as_array_mut().unwrap();
    // Valid but hostile: names that would break a hand-built filter or log line.
    users.push(crate::kit::user(
        "h1",
        "zoe.quinn@example.com",
        "Zoë \"Z\"",
        "O'Neil) or (userName pr",
        "R&D \\ Ops",
    ));
    users.push(crate::kit::user(
        "h2",
        "li.na@example.com",
        "李",
        "娜",
        "研发",
    ));
    // Invalid: held untouched and named in the plan, not sent.
    users.push(crate::kit::user(
        "h3",
        "quote\"d@example.com",
        "Bad",
        "Email",
        "Eng",
    ));
    users.push(crate::kit::user(
        "h4",
        "huge@example.com",
        "Huge",
        "Value",
        &huge,
    ));
    dir["groups"][0]["members"] = json!(["u1", "u2", "u3", "u4", "h1", "h2", "h3", "h4"]);
    env.write_directory(&dir);

    let plan = env.run(&["plan"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("invalid: user h3"), "{}", plan.stdout);
    assert!(plan.stdout.contains("invalid: user h4"), "{}", plan.stdout);
    assert!(
        !plan.stdout.contains(&huge),
        "a 100 kB value is not echoed whole"
    );

    let run = env.sync().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let zoe = env
        .user("zoe.quinn@example.com")
        .expect("hostile-looking names are provisioned");
    assert_eq!(zoe.display_name, "Zoë \"Z\" O'Neil) or (userName pr");
    assert_eq!(crate::kit::attr(&zoe, "department"), Some("R&D \\ Ops"));
    assert_eq!(env.user("li.na@example.com").unwrap().display_name, "李 娜");
    assert!(env.user("huge@example.com").is_none());
    assert!(env.users().iter().all(|u| !u.user_name.contains('"')));

    // Unchanged on the next cycle: escaping and unicode round-trip exactly.
    let before = env.stats();
    env.sync().await;
    assert_eq!(env.stats().writes, before.writes);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_utf8_names_the_byte_offset_and_deprovisions_nobody() {
    let env = Env::new(Seed::default()).await;
    env.sync().await;
    let mut bytes = serde_json::to_vec(&company()).unwrap();
    let at = bytes.windows(3).position(|w| w == b"Lee").unwrap();
    bytes[at] = 0xFF;
    std::fs::write(env.path("directory.json"), &bytes).unwrap();
    let before = env.stats();
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("UTF-8"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&at.to_string()),
        "names the offset {at}: {}",
        run.stderr
    );
    assert_eq!(env.stats().writes, before.writes);
    assert!(env.users().iter().all(|u| u.active));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_after_deactivates_first_and_deletes_after_the_grace_period() {
    let mut env = Env::new(Seed::default()).await;
    env.policy =
        "on_unassign = \"delete\"\ndelete_after = \"2s\"\nmax_deprovisions = \"100%\"".to_owned();
    env.sync().await;
    let mut dir = company();
    dir["groups"][0]["members"] = json!(["u1", "u2", "u3"]);
    env.write_directory(&dir);

    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dee = env.user("dee@example.com").expect("not deleted yet");
    assert!(!dee.active, "deactivated first");

    // Within the grace period: nothing more happens.
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(env.user("dee@example.com").is_some());
    assert!(
        env.events(&["--type", "user_delete_provision"])
            .await
            .is_empty()
    );

    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    let plan = env.run(&["plan"]).await;
    assert!(plan.stdout.contains("x delete"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("delete_after"),
        "the reason names the policy: {}",
        plan.stdout
    );
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        env.user("dee@example.com").is_none(),
        "deleted after the grace period"
    );
    let deleted = env.events(&["--type", "user_delete_provision"]).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["success"], json!(true));
    assert_eq!(env.users().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_and_token_changes_emit_integration_events_and_a_loose_token_file_warns() {
    use scimsync_emulator::EmulatorConfig;
    // An emulator that accepts any token, so the token can change between cycles.
    let mut env = Env::with_config(EmulatorConfig::default()).await;
    env.sync().await;
    let count = |events: &[serde_json::Value], t: &str| {
        events
            .iter()
            .filter(|e| e["event_type"] == json!(t))
            .count()
    };
    let events = env.events(&[]).await;
    assert_eq!(count(&events, "idm_integration_activate"), 1);
    assert_eq!(count(&events, "idm_integration_update"), 0);
    assert_eq!(count(&events, "idm_integration_reauth"), 0);

    // The configuration changes: one update event.
    env.extra_config = "# an admin edited this file".to_owned();
    env.sync().await;
    let events = env.events(&[]).await;
    assert_eq!(count(&events, "idm_integration_update"), 1);
    assert_eq!(
        count(&events, "idm_integration_activate"),
        1,
        "still the same target"
    );

    // The token changes (read from a file this time, readable by others): one reauth event, and
    // a warning about the file's permissions.
    let token_file = env.path("token");
    std::fs::write(&token_file, "a-brand-new-token-42\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    env.run(&["status"]).await; // writes the config
    let config = std::fs::read_to_string(env.path("sync.toml")).unwrap();
    let config = config.replace("token_env = \"E2E_SCIM_TOKEN\"", "token_file = \"token\"");
    std::fs::write(env.path("file-token.toml"), config).unwrap();
    let out = std::process::Command::new(crate::kit::bin())
        .arg("--config")
        .arg(env.path("file-token.toml"))
        .args(["sync", "--now"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    #[cfg(unix)]
    assert!(stderr.contains("readable by group or others"), "{stderr}");
    assert!(!stderr.contains("a-brand-new-token-42"));
    let events = env.events(&[]).await;
    assert_eq!(count(&events, "idm_integration_reauth"), 1, "{events:?}");
}
