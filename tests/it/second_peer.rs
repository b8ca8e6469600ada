//! The `generic` profile against a second, independent SCIM server: SCIMMY (npm), started by
//! scripts/setup.d/scimmy.sh. Unlike scim2-server its userName filter compares exactly
//! (case-sensitive) while userName stays unique in any case (409 uniqueness), it declares no
//! enterprise extension (a PATCH naming one is refused with 400 invalidPath), and it pages by
//! 20. Its request log (`/<tenant>/_log`) shows what scimsync actually sent.

use crate::generic::{Peer, Server, lifecycle, member_ids, peer_on, with_groups};
use crate::kit::{company, user};
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn peer(test: &str) -> Option<Peer> {
    peer_on(Server::Scimmy, test)
}

/// The writes (POST, PATCH, PUT, DELETE) among `requests`.
fn writes(requests: &[Value]) -> Vec<&Value> {
    requests.iter().filter(|r| r["method"] != "GET").collect()
}

/// Whether a request carried anything of the enterprise extension: a key of its body, a
/// `schemas` entry, or a PATCH path.
fn mentions_enterprise(request: &Value) -> bool {
    request["body"].to_string().contains(ENTERPRISE)
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_on_a_second_server() {
    let Some(peer) = peer("lifecycle") else {
        return;
    };
    lifecycle(&peer).await;
    let requests = peer.requests().await;
    let sent: Vec<&Value> = requests.iter().filter(|r| mentions_enterprise(r)).collect();
    assert!(
        sent.is_empty(),
        "the server declares no enterprise extension, yet: {sent:#?}"
    );
    let refused: Vec<&Value> = requests.iter().filter(|r| r["status"] == 400).collect();
    assert!(refused.is_empty(), "{refused:#?}");
}

/// First sync, a silent second sync, then one changed attribute is one PATCH with one op;
/// nothing undeclared is sent, the plan says so once, and nothing is quarantined.
#[tokio::test(flavor = "multi_thread")]
async fn undeclared_attributes_are_left_out_and_changes_stay_minimal() {
    let Some(peer) = peer("minimal") else {
        return;
    };
    let plan = peer.run(&["plan"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let notes: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.contains("not supported by the target"))
        .collect();
    // The jumpcloud preset maps six enterprise attributes; each is named once, not per user.
    assert_eq!(notes.len(), 6, "{}", plan.stdout);
    assert!(
        notes
            .iter()
            .any(|l| l.contains(&format!("{ENTERPRISE}:department"))),
        "{notes:?}"
    );
    assert!(
        plan.stdout.contains("= \"\" under [mapping]"),
        "how to unmap it"
    );

    let first = peer.sync().await;
    assert_eq!(peer.users().await.len(), 4, "{}", first.stderr);
    let requests = peer.requests().await;
    let posts: Vec<&Value> = requests
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/Users")
        .collect();
    assert_eq!(posts.len(), 4);
    for post in &posts {
        assert_eq!(post["status"], 201, "{post}");
        let body = &post["body"];
        assert!(
            !mentions_enterprise(post),
            "undeclared extension sent: {body}"
        );
        assert_eq!(
            body["schemas"],
            json!([scimsync_scim::USER_SCHEMA]),
            "{body}"
        );
        assert!(body.get("roles").is_none(), "roles are not mapped: {body}");
        assert_eq!(body["emails"][0]["value"], body["userName"], "{body}");
    }
    let unsupported = peer.events("target_attribute_unsupported").await;
    assert_eq!(
        unsupported.len(),
        6,
        "one event per attribute: {unsupported:#?}"
    );

    // A second cycle over the same directory writes nothing.
    let before = peer.requests().await.len();
    peer.sync().await;
    let second = peer.requests().await;
    assert!(
        writes(&second[before..]).is_empty(),
        "{:#?}",
        &second[before..]
    );

    // Bob's display name changes (and his department, which the server does not take): one
    // PATCH, one operation.
    let mut dir = company();
    dir["users"][1]["displayname"] = json!("Robert Stone");
    dir["users"][1]["department"] = json!("Platform");
    peer.write_directory(&dir);
    let before = peer.requests().await.len();
    peer.sync().await;
    let third = peer.requests().await;
    let sent = writes(&third[before..]);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["method"], "PATCH");
    assert_eq!(
        sent[0]["body"]["Operations"],
        json!([{"op": "replace", "path": "displayName", "value": "Robert Stone"}])
    );
    assert_eq!(
        peer.user("bob@example.com").await["displayName"],
        "Robert Stone"
    );

    // A full cycle agrees: nothing to write, no failure, no quarantine.
    let before = peer.requests().await.len();
    let full = peer.run(&["sync", "--now", "--full"]).await;
    assert_eq!(full.code, 0, "{}", full.stderr);
    assert!(writes(&peer.requests().await[before..]).is_empty());
    assert!(peer.events("sync_quarantined").await.is_empty());
    let status = peer.run(&["status"]).await;
    assert!(!status.stdout.contains("QUARANTINED"), "{}", status.stdout);
}

/// A user the server holds as "Eve@Example.com" (created behind scimsync's back) is adopted
/// on an incremental cycle: the filter misses her, the POST is refused (409 uniqueness), and
/// the same cycle finds her in a paged read and links her. Never a second POST, never a
/// failure repeated every cycle.
#[tokio::test(flavor = "multi_thread")]
async fn a_case_only_match_is_adopted_in_an_incremental_cycle() {
    let Some(peer) = peer("case-adopt") else {
        return;
    };
    peer.sync().await;
    let eve = peer
        .post_user(json!({
            "schemas": [scimsync_scim::USER_SCHEMA],
            "userName": "Eve@Example.com",
            "displayName": "Eve (old)",
            "active": true,
        }))
        .await;
    let mut dir = company();
    dir["users"]
        .as_array_mut()
        .unwrap()
        .push(user("u5", "eve@example.com", "Eve", "Moss", "Eng"));
    dir["groups"][0]["members"] = json!(["u1", "u2", "u3", "u4", "u5"]);
    peer.write_directory(&dir);

    let before = peer.requests().await.len();
    let run = peer.sync().await;
    assert!(
        run.stderr.contains("incremental") || !run.stderr.contains("full read"),
        "the second cycle is incremental"
    );
    let sent = peer.requests().await;
    let sent = &sent[before..];
    let posts: Vec<&Value> = sent
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/Users")
        .collect();
    assert_eq!(
        posts.len(),
        1,
        "one POST, refused, never a second: {sent:#?}"
    );
    assert_eq!(posts[0]["status"], 409);
    let eves = peer.users_named("eve@example.com").await;
    assert_eq!(eves.len(), 1, "adopted, not duplicated: {eves:?}");
    assert_eq!(eves[0]["id"], eve["id"]);
    assert_eq!(eves[0]["displayName"], "Eve Moss", "then brought in line");

    let run_id = peer.last_run_id().await;
    let creates: Vec<Value> = peer
        .events("user_create_provision")
        .await
        .into_iter()
        .filter(|e| e["run_id"] == run_id)
        .collect();
    assert_eq!(creates.len(), 1, "{creates:#?}");
    assert_eq!(creates[0]["success"], true);
    assert_eq!(creates[0]["detail"]["note"], "adopted existing user");

    // The next cycle is silent.
    let before = peer.requests().await.len();
    peer.sync().await;
    assert!(writes(&peer.requests().await[before..]).is_empty());
}

/// Groups on the second server: created with their members in the POST (one request each),
/// a rename and a member change of one group as one PATCH, and the plan's request counts
/// match what is sent.
#[tokio::test(flavor = "multi_thread")]
async fn groups_are_created_with_members_and_patched_once_per_cycle() {
    let Some(mut peer) = peer("groups") else {
        return;
    };
    peer.extra = "[groups]\nsync = [\"Eng\", \"Sales\"]\n".into();
    peer.write_directory(&with_groups(&["u1", "u2"], &["u3"]));
    let plan = peer.run(&["plan", "--output", "json"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["requests"]["groups_post_delete"], 2, "{plan:#}");
    assert!(
        plan["requests"].get("groups_patch_small").is_none(),
        "{plan:#}"
    );

    let before = peer.requests().await.len();
    peer.sync().await;
    let sent = peer.requests().await;
    let group_writes: Vec<&Value> = writes(&sent[before..])
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or_default()
                .starts_with("/Groups")
        })
        .collect();
    assert_eq!(
        group_writes.len(),
        2,
        "one POST per group: {group_writes:#?}"
    );
    assert!(group_writes.iter().all(|r| r["method"] == "POST"));
    let eng = peer.group("Eng").await;
    assert_eq!(
        member_ids(&eng),
        peer.ids_of(&["ann@example.com", "bob@example.com"]).await
    );

    // Eng is renamed Engineering and loses Bob, who joins Sales.
    let mut dir = with_groups(&["u1"], &["u3", "u2"]);
    dir["groups"][2]["name"] = json!("Engineering");
    peer.write_directory(&dir);
    peer.extra = "[groups]\nsync = [\"Engineering\", \"Sales\"]\n".into();
    let plan = peer.run(&["plan", "--output", "json"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let planned = plan["requests"]["groups_patch_small"].as_u64().unwrap_or(0)
        + plan["requests"]["groups_patch_large"].as_u64().unwrap_or(0);
    let before = peer.requests().await.len();
    peer.sync().await;
    let sent = peer.requests().await;
    let patches: Vec<&Value> = writes(&sent[before..])
        .into_iter()
        .filter(|r| r["method"] == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2, "one PATCH per group: {patches:#?}");
    assert_eq!(planned, 2, "the plan counts what is sent: {plan:#}");
    let engineering = peer.group("Engineering").await;
    assert_eq!(engineering["id"], eng["id"], "renamed, not recreated");
    assert_eq!(
        member_ids(&engineering),
        peer.ids_of(&["ann@example.com"]).await
    );
    let eng_patch = patches
        .iter()
        .find(|p| p["path"] == format!("/Groups/{}", eng["id"].as_str().unwrap()))
        .expect("Eng patched");
    let ops = eng_patch["body"]["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2, "the rename and the removal together: {ops:?}");
    assert_eq!(ops[0]["path"], "displayName");
}
