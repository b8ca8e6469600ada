#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[tokio::test]
async fn create_get_and_page() {
    let h = Harness::new(EmulatorConfig::default());
    let first = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": "u0@example.com"})),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.headers["content-type"], "application/scim+json");
    let id = first.body["id"].as_str().unwrap();
    assert!(id.chars().all(|c| c.is_ascii_digit()) && id.starts_with("3074457345"));
    let loc = first.headers["location"].to_str().unwrap();
    assert!(loc.ends_with(&format!("/api/v1/scim/Users/{id}")), "{loc}");
    for i in 1..120 {
        h.create(&format!("u{i}@example.com")).await;
    }
    let got = h.get(&format!("/Users/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["userName"], "u0@example.com");

    let page = h.get("/Users").await;
    assert_eq!(page.body["totalResults"], 120);
    assert_eq!(page.body["itemsPerPage"], 100);
    assert_eq!(page.body["Resources"].as_array().unwrap().len(), 100);
    assert_eq!(
        page.body["Resources"][0]["userName"], "u0@example.com",
        "creation order"
    );
    let capped = h.get("/Users?count=1000").await;
    assert_eq!(
        capped.body["Resources"].as_array().unwrap().len(),
        100,
        "count is capped"
    );
    let tail = h.get("/Users?startIndex=101&count=50").await;
    assert_eq!(tail.body["startIndex"], 101);
    assert_eq!(tail.body["Resources"].as_array().unwrap().len(), 20);
    assert_eq!(tail.body["Resources"][0]["userName"], "u100@example.com");
    let counted = h.get("/Users?count=0").await;
    assert_eq!(counted.body["totalResults"], 120);
    assert!(counted.body.get("Resources").is_none());
    assert_eq!(
        h.get("/Users?count=abc").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(h.get("/Users/999").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn username_unique_case_insensitively_with_400() {
    let h = Harness::new(EmulatorConfig::default());
    h.create("Ann@Example.com").await;
    let dup = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": "ann@example.COM"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert_eq!(dup.body["scimType"], "invalidValue");
    assert_eq!(dup.body["status"], "400");
    assert_eq!(
        detail(&dup),
        "User name 'ann@example.COM' is invalid: 'not unique'"
    );
    let not_email = h
        .call("POST", "/Users", Some(json!({"userName": "ann"})))
        .await;
    assert_eq!(not_email.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_email.body["scimType"], "invalidValue");
    let missing = h
        .call("POST", "/Users", Some(json!({"displayName": "x"})))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    let bob = h.create("bob@example.com").await;
    let rename = h
        .patch_user(
            &bob,
            json!([{"op": "replace", "path": "userName", "value": "ANN@example.com"}]),
        )
        .await;
    assert_eq!(rename.status, StatusCode::BAD_REQUEST);
    assert!(detail(&rename).contains("not unique"));
    // userName is stored as sent.
    assert_eq!(h.emu.users()[0].user_name, "Ann@Example.com");
}

#[tokio::test]
async fn emails_are_derived_and_read_only() {
    let h = Harness::new(EmulatorConfig::default());
    let r = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": "c@example.com", "externalId": "ext-1",
            "emails": [{"value": "other@example.com", "primary": true}], "nickName": "cc"})),
        )
        .await;
    assert_eq!(
        r.body["emails"],
        json!([{"value": "c@example.com", "primary": true, "type": "work"}])
    );
    assert!(r.body.get("externalId").is_none() && r.body.get("nickName").is_none());
    let id = r.body["id"].as_str().unwrap();
    let p = h.patch_user(id, json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@example.com"}])).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(detail(&p).contains("emails"));
    let p = h
        .patch_user(
            id,
            json!([{"op": "replace", "path": "userName", "value": "d@example.com"}]),
        )
        .await;
    assert_eq!(p.body["emails"][0]["value"], "d@example.com");
    assert_eq!(
        h.filter_users(r#"externalId eq "ext-1""#).await.body["totalResults"],
        0
    );
}

#[tokio::test]
async fn display_name_precedence_and_derived_name_parts() {
    let h = Harness::new(EmulatorConfig::default());
    let cases = [
        (
            json!({"userName": "a@x.io", "displayName": "Mary Ann Smith", "name": {"formatted": "No"}}),
            "Mary Ann Smith",
        ),
        (
            json!({"userName": "b@x.io", "name": {"formatted": "Bo Diddley", "givenName": "X", "familyName": "Y"}}),
            "Bo Diddley",
        ),
        (
            json!({"userName": "c@x.io", "name": {"givenName": "Cy", "familyName": "Young"}}),
            "Cy Young",
        ),
        (json!({"userName": "d@x.io"}), "d@x.io"),
    ];
    for (body, expected) in cases {
        let r = h.call("POST", "/Users", Some(body)).await;
        assert_eq!(r.body["displayName"], expected);
    }
    let mary = h.filter_users(r#"displayName eq "mary ann smith""#).await;
    let user = &mary.body["Resources"][0];
    assert_eq!(user["name"]["givenName"], "Mary");
    assert_eq!(user["name"]["familyName"], "Ann Smith");
    let id = user["id"].as_str().unwrap();
    let p = h
        .patch_user(
            id,
            json!([{"op": "Replace", "path": "name.givenName", "value": "Maria"}]),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(
        p.body["name"]["givenName"], "Mary",
        "name parts are derived, not stored"
    );
}

#[tokio::test]
async fn patch_ops_any_case_and_atomic() {
    let h = Harness::new(EmulatorConfig::default());
    let id = h.create("e@example.com").await;
    let p = h
        .patch_user(&id, json!([
            {"op": "Replace", "path": "displayName", "value": "Eve One"},
            {"op": "replace", "path": "userType", "value": "Full"},
            {"op": "add", "path": "preferredLanguage", "value": "en_US"},
            {"op": "REPLACE", "path": "roles[primary eq true].value", "value": "ORGANIZATION_INTERNAL_ADMIN"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Eng"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "3074457345000000001"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName", "value": "Boss"},
        ]))
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(p.body["displayName"], "Eve One");
    assert_eq!(p.body["preferredLanguage"], "en_US");
    assert_eq!(p.body["roles"][0]["value"], "ORGANIZATION_INTERNAL_ADMIN");
    let ent = &p.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ent["department"], "Eng");
    assert_eq!(
        ent["manager"],
        json!({"value": "3074457345000000001", "displayName": "Boss"})
    );
    assert!(p.body["schemas"].as_array().unwrap().len() == 2);

    // A later bad op discards the earlier good one.
    let bad = h
        .patch_user(
            &id,
            json!([
                {"op": "replace", "path": "displayName", "value": "Changed"},
                {"op": "replace", "path": "nickName", "value": "x"},
            ]),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["scimType"], "invalidPath");
    assert_eq!(
        h.get(&format!("/Users/{id}")).await.body["displayName"],
        "Eve One"
    );

    let pathless = h
        .patch_user(&id, json!([{"op": "replace", "value": {"active": false}}]))
        .await;
    assert_eq!(pathless.status, StatusCode::BAD_REQUEST);
    let no_schema = h
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"Operations": []})),
        )
        .await;
    assert_eq!(no_schema.status, StatusCode::BAD_REQUEST);
    let bad_op = h
        .patch_user(
            &id,
            json!([{"op": "merge", "path": "displayName", "value": "x"}]),
        )
        .await;
    assert_eq!(bad_op.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn enterprise_manager_value_kept_only_if_numeric() {
    let h = Harness::new(EmulatorConfig::default());
    let r = h
        .call("POST", "/Users", Some(json!({"userName": "m@example.com",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "E1", "costCenter": "C1", "manager": {"value": "u9", "displayName": "Nine"}}})))
        .await;
    let ent = &r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ent["employeeNumber"], "E1");
    assert_eq!(ent["manager"], json!({"displayName": "Nine"}));
    let rec = &h.emu.users()[0];
    assert_eq!(
        rec.attributes["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["costCenter"],
        "C1"
    );
}

#[tokio::test]
async fn deactivate_freeze_and_reactivate() {
    let h = Harness::new(EmulatorConfig::default());
    let id = h.create("f@example.com").await;
    let off = h
        .patch_user(
            &id,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(off.body["active"], false);
    assert_eq!(
        h.get("/Users").await.body["totalResults"],
        1,
        "deactivated users are listed"
    );
    assert_eq!(
        h.filter_users("active eq false").await.body["totalResults"],
        1
    );

    for (path, value) in [
        ("userName", "g@example.com"),
        ("userType", "Free"),
        (
            "roles[primary eq true].value",
            "ORGANIZATION_INTERNAL_ADMIN",
        ),
    ] {
        let r = h
            .patch_user(
                &id,
                json!([{"op": "replace", "path": path, "value": value}]),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}");
        assert!(detail(&r).contains("deactivated"));
    }
    let put = h
        .call(
            "PUT",
            &format!("/Users/{id}"),
            Some(json!({"userName": "g@example.com", "active": false})),
        )
        .await;
    assert_eq!(put.status, StatusCode::CONFLICT);
    // Other attributes still change while deactivated.
    let r = h
        .patch_user(
            &id,
            json!([{"op": "replace", "path": "displayName", "value": "F"}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // A reactivation does not unfreeze the rest of its own PATCH (Miro does not document that
    // it would): reactivate first, then update.
    let both = h
        .patch_user(
            &id,
            json!([
                {"op": "replace", "path": "active", "value": true},
                {"op": "replace", "path": "userName", "value": "g@example.com"},
            ]),
        )
        .await;
    assert_eq!(both.status, StatusCode::CONFLICT, "{}", both.body);
    let back = h
        .patch_user(
            &id,
            json!([{"op": "replace", "path": "active", "value": true}]),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    let renamed = h
        .patch_user(
            &id,
            json!([{"op": "replace", "path": "userName", "value": "g@example.com"}]),
        )
        .await;
    assert_eq!(renamed.body["active"], true);
    assert_eq!(renamed.body["userName"], "g@example.com");
}

#[tokio::test]
async fn put_replaces_user() {
    let h = Harness::new(EmulatorConfig::default());
    let id = h.create("p@example.com").await;
    let r = h
        .call(
            "PUT",
            &format!("/Users/{id}"),
            Some(json!({"userName": "p2@example.com",
            "name": {"givenName": "Pat", "familyName": "Q"}, "preferredLanguage": "de"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["displayName"], "Pat Q");
    assert_eq!(r.body["userName"], "p2@example.com");
    assert_eq!(r.body["active"], true);
}

#[tokio::test]
async fn guests_are_invisible() {
    let h = Harness::default_with(Seed {
        users: vec![
            SeedUser {
                guest: true,
                ..seed_user("guest@partner.com")
            },
            seed_user("m@example.com"),
        ],
        groups: vec![],
        teams: vec![],
    });
    let guest_id = h.emu.users()[0].id.clone();
    assert_eq!(h.get("/Users").await.body["totalResults"], 1);
    assert_eq!(
        h.filter_users(r#"userName eq "guest@partner.com""#)
            .await
            .body["totalResults"],
        0
    );
    assert_eq!(
        h.filter_users(r#"userName co "partner""#).await.body["totalResults"],
        0
    );
    assert_eq!(
        h.get(&format!("/Users/{guest_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let p = h
        .patch_user(
            &guest_id,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.call("DELETE", &format!("/Users/{guest_id}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let post = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": "Guest@Partner.com"})),
        )
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
    assert_eq!(
        detail(&post),
        "User Guest@Partner.com is a guest or external user of the organization"
    );
    assert_eq!(h.emu.users().len(), 2, "admin view still has the guest");
}

#[tokio::test]
async fn last_admin_cannot_be_deactivated_or_deleted() {
    let h = Harness::default_with(Seed {
        users: vec![
            SeedUser {
                admin: true,
                ..seed_user("root@example.com")
            },
            seed_user("u@example.com"),
        ],
        groups: vec![],
        teams: vec![],
    });
    let admin = h.emu.users()[0].id.clone();
    let off = h
        .patch_user(
            &admin,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(off.status, StatusCode::CONFLICT);
    assert_eq!(
        detail(&off),
        "Cannot deactivate or delete the last admin of the organization"
    );
    let del = h.call("DELETE", &format!("/Users/{admin}"), None).await;
    assert_eq!(del.status, StatusCode::CONFLICT);

    let second = h.create("root2@example.com").await;
    h.patch_user(&second, json!([{"op": "replace", "path": "roles[primary eq true].value", "value": "ORGANIZATION_INTERNAL_ADMIN"}]))
        .await;
    let off = h
        .patch_user(
            &admin,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    // `second` is now the only active admin.
    assert_eq!(
        h.call("DELETE", &format!("/Users/{second}"), None)
            .await
            .status,
        StatusCode::CONFLICT
    );
    let plain = h.emu.users()[1].id.clone();
    assert_eq!(
        h.call("DELETE", &format!("/Users/{plain}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get(&format!("/Users/{plain}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn filters_decode_escapes_and_reject_garbage() {
    let h = Harness::new(EmulatorConfig::default());
    let tricky = r#"o"brien\x@example.com"#;
    let r = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": tricky, "displayName": "Owen"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    h.create("obrien@example.com").await;

    let hit = h
        .filter_users(r#"userName eq "O\"BRIEN\\x@example.com""#)
        .await;
    assert_eq!(hit.body["totalResults"], 1, "{}", hit.body);
    assert_eq!(hit.body["Resources"][0]["userName"], tricky);
    let sw = h.filter_users(r#"USERNAME SW "o\"b""#).await;
    assert_eq!(sw.body["totalResults"], 1);
    let or = h
        .filter_users(
            r#"(userName eq "obrien@example.com" or displayName eq "owen") and active eq true"#,
        )
        .await;
    assert_eq!(or.body["totalResults"], 2);

    for bad in [
        r#"userName eq "o"brien@example.com""#,
        "userName eq",
        r#"userName xx "a""#,
        r#"userName eq "a\q""#,
    ] {
        let r = h.filter_users(bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["scimType"], "invalidFilter", "{bad}");
    }
}

#[tokio::test]
async fn business_rule_conflicts() {
    let h = Harness::new(EmulatorConfig {
        allowed_domains: Some(vec!["example.com".into()]),
        max_full_users: Some(1),
        ..EmulatorConfig::default()
    });
    let r = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": "x@elsewhere.org"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(detail(&r), "x@elsewhere.org is not whitelisted");
    let id = h.create("a@example.com").await;
    let r = h
        .call("POST", "/Users", Some(json!({"userName": "b@example.com"})))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(detail(&r), "Full users limit reached for organization");
    let r = h
        .call(
            "POST",
            "/Users",
            Some(json!({"userName": "b@example.com", "active": false})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "inactive users take no licence"
    );
    let r = h
        .patch_user(
            &id,
            json!([{"op": "replace", "path": "userName", "value": "a@elsewhere.org"}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}
