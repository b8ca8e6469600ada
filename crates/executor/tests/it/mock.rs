//! A scripted HTTP/1.1 server: each request is answered by a closure, one connection per
//! request. For answers the emulator does not give (a lookup that misses but a POST "not unique").

use crate::{Rec, client, create, ctx};
use scimsync_executor::{Executor, OpOutcome};
use scimsync_model::Plan;
use scimsync_scim::{Budgets, Profile};
use std::sync::{Arc, Mutex};

type Handler = dyn Fn(&str, &str, usize) -> (u16, String) + Send + Sync;

/// The raw server of `answers.rs`, each answer a SCIM JSON body with the status the handler
/// gives.
async fn serve(handler: Arc<Handler>) -> (String, crate::answers::Log) {
    crate::answers::serve(Arc::new(move |method: &str, target: &str, index| {
        let (status, body) = handler(method, target, index);
        crate::answers::http(status, "application/scim+json", &body)
    }))
    .await
}

fn list(users: &[(&str, &str)]) -> String {
    let resources: Vec<_> = users
        .iter()
        .map(|(id, name)| serde_json::json!({"id": id, "userName": name, "active": true, "displayName": name}))
        .collect();
    serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": resources.len(), "Resources": resources})
    .to_string()
}

/// The lookup misses (the user appears in between), the POST is refused as not unique: the
/// executor adopts through a second lookup and never POSTs again.
async fn not_unique_resolved_by_adopt(status: u16, error: &'static str) {
    let lookups = Arc::new(Mutex::new(0));
    let l = Arc::clone(&lookups);
    let handler: Arc<Handler> = Arc::new(move |method: &str, target: &str, _| match method {
        "GET" if target.contains("filter=") => {
            let mut n = l.lock().unwrap();
            *n += 1;
            if *n == 1 {
                (200, list(&[]))
            } else {
                (200, list(&[("77", "Dup@X.com")]))
            }
        }
        "POST" => (status, error.to_owned()),
        _ => (500, String::new()),
    });
    let (base, seen) = serve(handler).await;
    let exec = Executor::new(client(
        &base,
        crate::TOKEN,
        Profile::miro(),
        Budgets::unlimited(),
    ));
    let plan = Plan {
        ops: vec![create("s1", "dup@x.com")],
    };
    let mut rec = Rec::default();
    let report = exec.execute(&plan, Vec::new(), &ctx(), &mut rec).await;

    assert_eq!(rec.outcome(0), Some(&OpOutcome::Adopted));
    assert_eq!(report.succeeded, 1);
    let links = rec.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].target_id.as_str(), "77");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.iter().filter(|s| s.method == "POST").count(),
        1,
        "never a second POST"
    );
    // The filter went out URL-encoded, the token only in the Authorization header.
    let lookup = seen.iter().find(|s| s.target.contains("filter=")).unwrap();
    assert!(
        lookup.target.contains("userName+eq+%22dup%40x.com%22"),
        "{}",
        lookup.target
    );
    assert!(seen.iter().all(|s| !s.target.contains(crate::TOKEN)));
    assert_eq!(
        lookup.authorization.as_deref(),
        Some(format!("Bearer {}", crate::TOKEN).as_str())
    );
    let event = rec.event_for("s1").unwrap();
    assert!(event.success);
    assert_eq!(event.detail["note"], "adopted existing user");
}

#[tokio::test]
async fn miro_400_not_unique_is_resolved_by_adopt() {
    not_unique_resolved_by_adopt(
        400,
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"User name 'dup@x.com' is invalid: 'not unique'"}"#,
    )
    .await;
}

#[tokio::test]
async fn rfc_409_uniqueness_is_resolved_by_adopt() {
    not_unique_resolved_by_adopt(
        409,
        r#"{"status":"409","scimType":"uniqueness","detail":"User already exists"}"#,
    )
    .await;
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let handler: Arc<Handler> = Arc::new(|_: &str, _: &str, _| (301, String::new()));
    let (base, seen) = serve(handler).await;
    let c = client(&base, crate::TOKEN, Profile::miro(), Budgets::unlimited());
    let err = c.find_user("a@b.c").await.unwrap_err();
    assert_eq!(err.status(), Some(301));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn paging_tolerates_small_pages_and_stops() {
    // 7 users, the SP never returns more than 2 per page whatever `count` says.
    let handler: Arc<Handler> = Arc::new(|_: &str, target: &str, _| {
        let start: usize = target
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("startIndex="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let users: Vec<(String, String)> = (start..start + 2)
            .filter(|i| *i <= 7)
            .map(|i| (i.to_string(), format!("u{i}@x.com")))
            .collect();
        let refs: Vec<(&str, &str)> = users
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut body: serde_json::Value = serde_json::from_str(&list(&refs)).unwrap();
        body["totalResults"] = 7.into();
        (200, body.to_string())
    });
    let (base, seen) = serve(handler).await;
    let c = client(&base, crate::TOKEN, Profile::miro(), Budgets::unlimited());
    let users = c.list_users().await.unwrap();
    let mut ids: Vec<_> = users
        .iter()
        .map(|u| u.id.as_str().parse::<u32>().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=7).collect::<Vec<_>>());
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_409_on_create_fails_only_that_user() {
    let handler: Arc<Handler> = Arc::new(|method: &str, _: &str, _| match method {
        "GET" => (200, list(&[])),
        _ => (
            409,
            r#"{"status":"409","detail":"Full users limit reached for organization"}"#.to_owned(),
        ),
    });
    let (base, seen) = serve(handler).await;
    let exec = Executor::new(client(
        &base,
        crate::TOKEN,
        Profile::miro(),
        Budgets::unlimited(),
    ));
    let mut rec = Rec::default();
    let report = exec
        .execute(
            &Plan {
                ops: vec![create("s1", "a@x.com")],
            },
            Vec::new(),
            &ctx(),
            &mut rec,
        )
        .await;
    assert_eq!(report.failed, 1);
    assert!(matches!(rec.outcome(0), Some(OpOutcome::Failed(m)) if m.contains("Full users limit")));
    assert!(rec.links().is_empty());
    assert_eq!(
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == "POST")
            .count(),
        1,
        "409 is never retried"
    );
}
