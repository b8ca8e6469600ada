#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

fn org(model: GroupModel) -> Harness {
    Harness::new(EmulatorConfig {
        group_model: model,
        seed: Seed {
            users: vec![
                seed_user("a@example.com"),
                seed_user("b@example.com"),
                seed_user("c@example.com"),
            ],
            groups: vec![SeedGroup {
                display_name: "Design".into(),
                members: vec!["a@example.com".into()],
            }],
            teams: vec![],
        },
        ..EmulatorConfig::default()
    })
}

fn ids(h: &Harness) -> (String, String, String, String) {
    let u = h.emu.users();
    (
        u[0].id.clone(),
        u[1].id.clone(),
        u[2].id.clone(),
        h.emu.groups()[0].id.clone(),
    )
}

#[tokio::test]
async fn add_remove_and_membership_views() {
    let h = org(GroupModel::Team);
    let (a, b, c, g) = ids(&h);
    let r = h
        .patch_group(
            &g,
            json!([{"op": "Add", "path": "members", "value": [{"value": b}, {"value": c}]}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 3);
    assert_eq!(
        r.body["members"][1],
        json!({"value": b, "display": "b@example.com", "type": "User"})
    );
    let user = h.get(&format!("/Users/{b}")).await;
    assert_eq!(
        user.body["groups"],
        json!([{"value": g, "display": "Design"}])
    );

    // Quoted and Miro's unquoted member filters both work.
    let r = h
        .patch_group(
            &g,
            json!([{"op": "Remove", "path": format!("members[value eq \"{b}\"]")}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .patch_group(
            &g,
            json!([{"op": "remove", "path": format!("members[value eq {c}]")}]),
        )
        .await;
    assert_eq!(
        r.body["members"],
        json!([{"value": a, "display": "a@example.com", "type": "User"}])
    );
    let r = h
        .patch_group(
            &g,
            json!([{"op": "remove", "path": "members", "value": [{"value": a}]}]),
        )
        .await;
    assert_eq!(r.body["members"], json!([]));

    let r = h.patch_group(&g, json!([{"op": "add", "path": "members", "value": [{"value": a}]},
                                      {"op": "replace", "path": "members", "value": [{"value": c}]}])).await;
    assert_eq!(h.emu.groups()[0].members, vec![c.clone()], "{}", r.body);

    let r = h
        .patch_group(
            &g,
            json!([{"op": "Replace", "path": "displayName", "value": "Design 2"}]),
        )
        .await;
    assert_eq!(r.body["displayName"], "Design 2");
    let r = h
        .patch_group(
            &g,
            json!([{"op": "replace", "value": {"id": g, "displayName": "Design 3"}}]),
        )
        .await;
    assert_eq!(r.body["displayName"], "Design 3");
}

#[tokio::test]
async fn unknown_member_fails_the_whole_patch() {
    let h = org(GroupModel::Team);
    let (a, b, _, g) = ids(&h);
    let r = h
        .patch_group(&g, json!([
            {"op": "add", "path": "members", "value": [{"value": b}]},
            {"op": "remove", "path": "members", "value": [{"value": a}, {"value": "3074457345999999999"}]},
        ]))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        detail(&r),
        "No valid resources: [{memberId=3074457345999999999, display=null}]"
    );
    assert_eq!(h.emu.groups()[0].members, vec![a], "nothing applied");
}

#[tokio::test]
async fn adding_a_deactivated_user_reactivates_them() {
    let h = org(GroupModel::Team);
    let (_, b, _, g) = ids(&h);
    h.patch_user(
        &b,
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    h.patch_group(
        &g,
        json!([{"op": "add", "path": "members", "value": [{"value": b}]}]),
    )
    .await;
    assert!(h.emu.users()[1].active);
}

#[tokio::test]
async fn size_limits_give_413() {
    let h = org(GroupModel::Team);
    let (_, _, _, g) = ids(&h);
    let many: Vec<_> = (0..8001)
        .map(|i| json!({"value": format!("{i}")}))
        .collect();
    let r = h
        .patch_group(&g, json!([{"op": "add", "path": "members", "value": many}]))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let huge = "x".repeat(800_001);
    let r = h
        .patch_group(
            &g,
            json!([{"op": "replace", "path": "displayName", "value": huge}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn team_model_refuses_put_post_delete_with_miro_405() {
    let h = org(GroupModel::Team);
    let (_, _, _, g) = ids(&h);
    let expected = json!({"error": {"message": "Endpoint is found, but this method is not allowed",
        "reason": "methodNotAllowed", "code": 405}});
    let put = h
        .call(
            "PUT",
            &format!("/Groups/{g}"),
            Some(json!({"displayName": "x"})),
        )
        .await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.body, expected);
    let post = h
        .call("POST", "/Groups", Some(json!({"displayName": "x"})))
        .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    let del = h.call("DELETE", &format!("/Groups/{g}"), None).await;
    assert_eq!(del.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h.emu.groups().len(), 1);
}

#[tokio::test]
async fn user_group_model_creates_and_deletes() {
    let h = org(GroupModel::UserGroup);
    let (a, ..) = ids(&h);
    let long = "L".repeat(70);
    let r = h
        .call(
            "POST",
            "/Groups",
            Some(json!({"displayName": long, "members": [{"value": a}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["displayName"].as_str().unwrap().chars().count(), 60);
    assert!(r.headers.contains_key("location"));
    let dup = h
        .call("POST", "/Groups", Some(json!({"displayName": "Design"})))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.body["scimType"], "uniqueness");
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        h.call("DELETE", &format!("/Groups/{id}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get(&format!("/Groups/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.emu.users().len(),
        3,
        "deleting a user group keeps its users"
    );
    assert_eq!(
        h.call("PUT", "/Groups/1", Some(json!({}))).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn list_filter_and_projection() {
    let h = org(GroupModel::Team);
    h.emu.seed(&Seed {
        users: vec![],
        groups: vec![SeedGroup {
            display_name: "Product Team".into(),
            members: vec![],
        }],
        teams: vec![],
    });
    let all = h.get("/Groups").await;
    assert_eq!(all.body["totalResults"], 2);
    let one = h
        .get(&format!(
            "/Groups?filter={}&attributes=id,displayName",
            encode(r#"displayName eq "product team""#)
        ))
        .await;
    assert_eq!(one.body["totalResults"], 1);
    let g = &one.body["Resources"][0];
    assert_eq!(g["displayName"], "Product Team");
    assert!(g.get("members").is_none() && g.get("id").is_some());
    let members_filter = h
        .get(&format!(
            "/Groups?filter={}",
            encode(r#"members[value eq "1"]"#)
        ))
        .await;
    assert_eq!(members_filter.status, StatusCode::BAD_REQUEST);
}
