#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test]
async fn auth_content_type_and_discovery() {
    let h = Harness::new(EmulatorConfig::default());
    let no_auth = Request::get("/api/v1/scim/Users")
        .body(Body::empty())
        .unwrap();
    let r = h.raw(no_auth).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.body["detail"],
        "Miro cannot authorize the organization with the authorization token"
    );
    let wrong = Request::get("/api/v1/scim/Users")
        .header("authorization", "Bearer nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.raw(wrong).await.unwrap().status, StatusCode::UNAUTHORIZED);

    let text = Request::post("/api/v1/scim/Users")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"userName":"a@example.com"}"#))
        .unwrap();
    assert_eq!(
        h.raw(text).await.unwrap().status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let plain_json = Request::post("/api/v1/scim/Users")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(r#"{"userName":"a@example.com"}"#))
        .unwrap();
    assert_eq!(h.raw(plain_json).await.unwrap().status, StatusCode::CREATED);
    let broken = Request::post("/api/v1/scim/Users")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/scim+json")
        .body(Body::from("{nope"))
        .unwrap();
    assert_eq!(
        h.raw(broken).await.unwrap().body["scimType"],
        "invalidSyntax"
    );

    let spc = h.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], false);
    assert_eq!(spc.body["filter"]["maxResults"], 200);
    assert_eq!(spc.body["etag"]["supported"], false);
    assert_eq!(h.get("/ResourceTypes").await.body["totalResults"], 2);
    let schema = h
        .get("/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        .await;
    assert_eq!(schema.status, StatusCode::OK);
    assert_eq!(h.get("/Nope").await.status, StatusCode::NOT_FOUND);

    h.emu.set_faults(Faults {
        fail_auth: true,
        ..Faults::default()
    });
    assert_eq!(h.get("/Users").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn stats_count_scim_requests_only() {
    let h = Harness::new(EmulatorConfig::default());
    let id = h.create("s@example.com").await;
    h.get("/Users").await;
    h.get(&format!("/Users/{id}")).await;
    h.patch_user(
        &id,
        json!([{"op": "replace", "path": "displayName", "value": "S"}]),
    )
    .await;
    h.call("DELETE", &format!("/Users/{id}"), None).await;
    h.get("/Groups").await;
    let admin = Request::get("/_emulator/stats")
        .body(Body::empty())
        .unwrap();
    let via_http = h.raw(admin).await.unwrap().body;
    let s = h.emu.stats();
    assert_eq!(serde_json::to_value(&s).unwrap(), via_http);
    assert_eq!(s.requests, 6);
    assert_eq!(s.writes, 3);
    assert_eq!(s.by_bucket["users_get"], 2);
    assert_eq!(s.by_bucket["users_post"], 1);
    assert_eq!(s.by_bucket["users_put_patch"], 1);
    assert_eq!(s.by_bucket["users_delete"], 1);
    assert_eq!(s.by_bucket["groups_list"], 1);
    assert_eq!(s.by_method["GET"], 3);
    h.emu.reset_stats();
    assert_eq!(h.emu.stats(), Stats::default());
}

#[tokio::test]
async fn sliding_window_admits_budget_then_429s() {
    let window = Duration::from_millis(300);
    let h = Harness::new(EmulatorConfig {
        limits: Some(RateLimits {
            retry_after: true,
            ..RateLimits::miro_scaled(window)
        }),
        ..EmulatorConfig::default()
    });
    for i in 0..5 {
        assert_eq!(h.get("/Groups").await.status, StatusCode::OK, "request {i}");
    }
    let limited = h.get("/Groups").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.body["scimType"], "tooManyRequests");
    assert_eq!(
        limited.body["detail"],
        "The user has sent too many requests in a given amount of time"
    );
    assert_eq!(limited.headers["retry-after"], "1");
    // Other buckets are unaffected.
    assert_eq!(h.get("/Users").await.status, StatusCode::OK);
    tokio::time::sleep(window + Duration::from_millis(50)).await;
    assert_eq!(
        h.get("/Groups").await.status,
        StatusCode::OK,
        "admitted again after the window"
    );
    let s = h.emu.stats();
    assert_eq!(s.rate_limited, 1);
    assert_eq!(s.max_in_window["groups_list"], 5);
    assert_eq!(s.by_bucket["groups_list"], 7);
}

#[tokio::test]
async fn rate_limit_headers_and_an_http_date_retry_after_when_asked_for() {
    let window = Duration::from_secs(30);
    let h = Harness::new(EmulatorConfig {
        limits: Some(RateLimits {
            retry_after: true,
            retry_after_http_date: true,
            rate_limit_headers: true,
            ..RateLimits::miro_scaled(window)
        }),
        ..EmulatorConfig::default()
    });
    let unix = |v: &axum::http::HeaderValue| -> u64 { v.to_str().unwrap().parse().unwrap() };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for left in (0..5).rev() {
        let r = h.get("/Groups").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["x-ratelimit-limit"], "5");
        assert_eq!(
            r.headers["x-ratelimit-remaining"],
            left.to_string().as_str()
        );
        // The first request's slot frees a window after it.
        let reset = unix(&r.headers["x-ratelimit-reset"]);
        assert!((now + 29..=now + 32).contains(&reset), "{reset} vs {now}");
    }
    let limited = h.get("/Groups").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    let date = limited.headers["retry-after"].to_str().unwrap();
    assert!(date.ends_with(" GMT"), "{date}");
    // The date and the reset name the same second: when the oldest request leaves the window.
    let at = httpdate::parse_http_date(date).unwrap();
    assert_eq!(
        at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        unix(&limited.headers["x-ratelimit-reset"])
    );
    // Without the option, Miro's SCIM API as documented: no such headers.
    let plain = Harness::new(EmulatorConfig {
        limits: Some(RateLimits::miro_scaled(window)),
        ..EmulatorConfig::default()
    });
    let r = plain.get("/Users").await;
    assert!(!r.headers.contains_key("x-ratelimit-remaining"));
}

#[tokio::test]
async fn group_patch_size_selects_bucket_and_miro_sends_no_retry_after() {
    let h = Harness::new(EmulatorConfig {
        limits: Some(RateLimits::miro_scaled(Duration::from_secs(30))),
        seed: Seed {
            users: vec![],
            groups: vec![SeedGroup {
                display_name: "T".into(),
                members: vec![],
            }],
            teams: vec![],
        },
        ..EmulatorConfig::default()
    });
    let g = h.emu.groups()[0].id.clone();
    let big_name = "n".repeat(600);
    for _ in 0..5 {
        let r = h
            .patch_group(
                &g,
                json!([{"op": "replace", "path": "displayName", "value": big_name}]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = h
        .patch_group(
            &g,
            json!([{"op": "replace", "path": "displayName", "value": big_name}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!r.headers.contains_key("retry-after"));
    let small = h
        .patch_group(
            &g,
            json!([{"op": "replace", "path": "displayName", "value": "small"}]),
        )
        .await;
    assert_eq!(
        small.status,
        StatusCode::OK,
        "small patches have their own budget"
    );
}

#[tokio::test]
async fn injected_burst_errors_and_latency() {
    let h = Harness::new(EmulatorConfig::default());
    h.emu.set_faults(Faults {
        burst_429: 2,
        retry_after_secs: Some(7),
        ..Faults::default()
    });
    for _ in 0..2 {
        let r = h.get("/Users").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers["retry-after"], "7");
    }
    assert_eq!(h.get("/Users").await.status, StatusCode::OK);
    assert_eq!(h.emu.stats().injected_429, 2);

    h.emu.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let r = h
        .call("POST", "/Users", Some(json!({"userName": "e@example.com"})))
        .await;
    assert!(
        r.status == StatusCode::INTERNAL_SERVER_ERROR
            || r.status == StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert!(
        h.emu.users().is_empty(),
        "an injected error happens before the handler"
    );
    assert_eq!(h.emu.stats().writes, 0);

    h.emu.set_faults(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    });
    let t = std::time::Instant::now();
    h.get("/Users").await;
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn error_injection_replays_with_the_same_seed() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let h = Harness::new(EmulatorConfig {
            rng_seed: seed,
            faults: Faults {
                error_rate: 0.5,
                ..Faults::default()
            },
            ..EmulatorConfig::default()
        });
        let mut out = Vec::new();
        for _ in 0..32 {
            out.push(h.get("/Users").await.status.as_u16());
        }
        out
    }
    let a = pattern(42).await;
    assert_eq!(a, pattern(42).await);
    assert!(a.contains(&200) && a.iter().any(|s| *s >= 500));
}

#[tokio::test]
async fn admin_faults_and_seed_endpoints() {
    let h = Harness::new(EmulatorConfig::default());
    let put = Request::put("/_emulator/faults")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"latency_ms": 5, "burst_429": 1}"#))
        .unwrap();
    assert_eq!(h.raw(put).await.unwrap().status, StatusCode::NO_CONTENT);
    assert_eq!(h.emu.faults().latency, Duration::from_millis(5));
    let seed = Request::post("/_emulator/seed")
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"users":[{"userName":"z@example.com","admin":true,"department":"Ops"},{"userName":"g@x.io","guest":true}],
                "groups":[{"displayName":"Ops","members":["z@example.com","nobody@example.com"]}]}"#,
        ))
        .unwrap();
    let report = h.raw(seed).await.unwrap().body;
    assert_eq!(report["users_added"], 2);
    assert_eq!(report["skipped"].as_array().unwrap().len(), 1);
    let users = h
        .raw(
            Request::get("/_emulator/users")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .body;
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert_eq!(users[0]["role"], "ORGANIZATION_INTERNAL_ADMIN");
    let groups = h
        .raw(
            Request::get("/_emulator/groups")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .body;
    assert_eq!(groups[0]["members"], json!([users[0]["id"]]));
    assert_eq!(h.emu.stats().requests, 0, "admin calls are not counted");
}
