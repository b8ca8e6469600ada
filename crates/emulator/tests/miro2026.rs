//! Miro as it is in 2026: user groups and the REST team-assignment endpoints (their own
//! token), licences (upgrade only, the org's values), admin roles, value limits, and what
//! adding someone to a group does to them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::{Value, json};

const REST: &str = "rest-token-9d2";
const ORG: &str = DEFAULT_ORG_ID;

fn harness(model: GroupModel, seed: Value) -> Harness {
    Harness::new(EmulatorConfig {
        group_model: model,
        rest_token: REST.into(),
        seed: serde_json::from_value(seed).unwrap(),
        ..EmulatorConfig::default()
    })
}

async fn rest(h: &Harness, method: &str, path: &str, body: Option<Value>, token: &str) -> Resp {
    let b = Request::builder()
        .method(method)
        .uri(format!("/v2/orgs/{ORG}{path}"))
        .header("authorization", format!("Bearer {token}"));
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    h.raw(req).await.unwrap()
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn user_groups_are_assigned_to_teams_over_rest_with_their_own_token() {
    let h = harness(
        GroupModel::UserGroup,
        json!({"teams": [{"name": "Product"}, {"name": "Platform"}]}),
    );
    let group = h
        .call(
            "POST",
            "/Groups",
            Some(json!({"displayName": "Engineering"})),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED);
    let group = group.body["id"].as_str().unwrap().to_owned();

    // The SCIM token is not the REST one.
    assert_eq!(
        rest(&h, "GET", "/teams", None, TOKEN).await.status,
        StatusCode::UNAUTHORIZED
    );
    let teams = rest(&h, "GET", "/teams", None, REST).await;
    assert_eq!(teams.status, StatusCode::OK);
    assert_eq!(teams.body["data"][0]["name"], "Product");
    let product = teams.body["data"][0]["id"].as_str().unwrap().to_owned();
    // The name filter is a case-insensitive partial match, as Miro's.
    let plat = rest(&h, "GET", "/teams?name=PLAT", None, REST).await;
    assert_eq!(plat.body["data"].as_array().unwrap().len(), 1);

    let path = format!("/teams/{product}/groups");
    let assign = json!({"userGroupId": group, "role": "member"});
    let r = rest(&h, "POST", &path, Some(assign.clone()), REST).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        rest(&h, "POST", &path, Some(assign), REST).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        ids(&rest(&h, "GET", &path, None, REST).await.body),
        vec![group.clone()]
    );
    // The user groups, with the SCIM ids.
    assert_eq!(
        ids(&rest(&h, "GET", "/groups", None, REST).await.body),
        vec![group.clone()]
    );

    let one = format!("/teams/{product}/groups/{group}");
    assert_eq!(
        rest(&h, "DELETE", &one, None, REST).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        rest(&h, "DELETE", &one, None, REST).await.status,
        StatusCode::NOT_FOUND
    );

    // Deleting the user group takes its assignments with it.
    let r = rest(
        &h,
        "POST",
        &path,
        Some(json!({"userGroupId": group, "role": "member"})),
        REST,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        h.call("DELETE", &format!("/Groups/{group}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(h.emu.teams()[0].groups.is_empty());
    // Another org's path is not found; an error has REST's shape.
    let other = h
        .raw(
            Request::builder()
                .uri("/v2/orgs/42/teams")
                .header("authorization", format!("Bearer {REST}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.body["type"], "error");
}

#[tokio::test]
async fn in_the_team_model_the_scim_groups_are_the_teams() {
    let h = harness(
        GroupModel::Team,
        json!({"groups": [{"displayName": "Design"}]}),
    );
    let teams = rest(&h, "GET", "/teams", None, REST).await;
    assert_eq!(teams.body["data"][0]["name"], "Design");
    let scim = h.get("/Groups").await;
    assert_eq!(teams.body["data"][0]["id"], scim.body["Resources"][0]["id"]);
    assert!(ids(&rest(&h, "GET", "/groups", None, REST).await.body).is_empty());
}

#[tokio::test]
async fn cursor_paging_walks_every_team() {
    let teams: Vec<Value> = (0..7).map(|i| json!({"name": format!("T{i}")})).collect();
    let h = harness(GroupModel::UserGroup, json!({"teams": teams}));
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let r = rest(
            &h,
            "GET",
            &format!("/teams?limit=3&cursor={cursor}"),
            None,
            REST,
        )
        .await;
        seen.extend(ids(&r.body));
        match r.body["cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(
        rest(&h, "GET", "/teams?limit=101", None, REST).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn licences_are_the_orgs_and_a_patch_only_upgrades() {
    let h = harness(GroupModel::UserGroup, json!({}));
    let bad = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": "a@x.com", "userType": "Enterprise"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let r = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": "a@x.com", "userType": "Free"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let set = |t: &str| json!([{"op": "replace", "path": "userType", "value": t}]);
    assert_eq!(
        h.patch_user(&id, set("Basic")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(h.patch_user(&id, set("Full")).await.status, StatusCode::OK);
    let down = h.patch_user(&id, set("Free")).await;
    assert_eq!(down.status, StatusCode::BAD_REQUEST);
    assert!(
        detail(&down).contains("cannot be downgraded"),
        "{}",
        down.body
    );
}

#[tokio::test]
async fn admin_roles_are_added_and_removed_with_miros_paths_never_while_deactivated() {
    let h = harness(GroupModel::UserGroup, json!({}));
    let id = h.create("a@x.com").await;
    let add = |role: &str| {
        json!([{"op": "add", "path": "roles", "value": [
            {"value": role, "type": "organization_admin_role", "primary": false}]}])
    };
    assert_eq!(
        h.patch_user(&id, add("Content Admin")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.patch_user(&id, add("Space Cadet")).await.status,
        StatusCode::BAD_REQUEST
    );
    let roles = h.get(&format!("/Users/{id}")).await.body["roles"].clone();
    assert_eq!(roles[1]["value"], "Content Admin");
    assert_eq!(roles[1]["type"], "organization_admin_role");
    // Frozen while deactivated.
    let off = json!([{"op": "replace", "path": "active", "value": false}]);
    assert_eq!(h.patch_user(&id, off).await.status, StatusCode::OK);
    let remove = json!([{"op": "remove", "path": "roles[value eq \"Content Admin\"]"}]);
    assert_eq!(
        h.patch_user(&id, remove.clone()).await.status,
        StatusCode::CONFLICT
    );
    let on = json!([{"op": "replace", "path": "active", "value": true}]);
    assert_eq!(h.patch_user(&id, on).await.status, StatusCode::OK);
    assert_eq!(h.patch_user(&id, remove).await.status, StatusCode::OK);
    assert!(h.emu.users()[0].admin_roles.is_empty());
}

#[tokio::test]
async fn values_over_miros_limits_are_400s_naming_the_attribute() {
    let h = harness(GroupModel::UserGroup, json!({}));
    let long = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": "a@x.com", "displayName": "x".repeat(61)})),
        )
        .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert!(detail(&long).contains("displayName"));
    let id = h.create("a@x.com").await;
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let r = h
        .patch_user(
            &id,
            json!([{"op": "replace", "path": format!("{ext}:employeeNumber"), "value": "1".repeat(21)}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(detail(&r).contains("employeeNumber"));
}

#[tokio::test]
async fn adding_to_a_user_group_reactivates_and_licenses_and_a_guest_becomes_internal() {
    let h = harness(
        GroupModel::UserGroup,
        json!({"users": [
            {"userName": "off@x.com", "active": false, "userType": "Free"},
            {"userName": "guest@partner.com", "guest": true, "userType": "Free"},
        ]}),
    );
    let users = h.emu.users();
    let (off, guest) = (users[0].id.clone(), users[1].id.clone());
    let g = h
        .call("POST", "/Groups", Some(json!({"displayName": "G"})))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .patch_group(
            &g,
            json!([{"op": "add", "path": "members", "value": [{"value": off}, {"value": guest}]}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let users = h.emu.users();
    assert!(users[0].active && users[0].user_type == "Full");
    assert!(!users[1].guest && users[1].user_type == "Full" && users[1].role == ROLE_USER);
}
