//! A scripted HTTP/1.1 server: each request is answered by a closure, one connection per
//! request. Only what needs a real socket stays here: the wire form of a request (URL
//! encoding, headers), redirects, paging as the client reads it, and a refusal stopping the
//! requests still to go out (the shell, its pacer and the run's concurrency). The decisions an
//! answer leads to (not unique -> adopt, 409, 400 naming an attribute) are tested on the
//! machine (`src/machine/tests.rs`), and what the driver records of them in `execute.rs`.

use crate::{Rec, client, create, ctx};
use scimsync_executor::Executor;
use scimsync_model::Plan;
use scimsync_scim::{Budgets, Profile};
use std::sync::Arc;

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

/// A lookup as it leaves the socket: the filter URL-encoded, the token only in the
/// Authorization header. (Which lookups a create makes, and what it does with their answers,
/// is the decision machine's: `machine/tests.rs`.)
#[tokio::test]
async fn a_lookup_goes_url_encoded_with_the_token_only_in_its_header() {
    let handler: Arc<Handler> = Arc::new(|_: &str, _: &str, _| (200, list(&[("77", "Dup@X.com")])));
    let (base, seen) = serve(handler).await;
    let c = client(&base, crate::TOKEN, Profile::miro(), Budgets::unlimited());
    let found = c.find_user("dup@x.com").await.unwrap().unwrap();
    assert_eq!(found.id.as_str(), "77", "matched case-insensitively");
    let seen = seen.lock().unwrap();
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

/// Miro's "SCIM integration is disabled": a 403 on the third write stops the run there. No
/// later write goes out (before, 403 was per item and every remaining write was sent).
#[tokio::test]
async fn a_403_on_a_write_halts_the_run() {
    let handler: Arc<Handler> = Arc::new(|method: &str, _: &str, index| match method {
        "GET" => (200, list(&[])),
        // One lookup, then one POST per user: the POST at index 2k+1 creates user k.
        "POST" if index < 6 => (
            201,
            format!(
                r#"{{"id":"{index}","userName":"u{}@x.com","active":true}}"#,
                (index - 1) / 2
            ),
        ),
        _ => (
            403,
            r#"{"status":"403","detail":"SCIM integration is disabled"}"#.to_owned(),
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
    let mut ctx = ctx();
    // One op at a time, so "after" is well defined.
    ctx.max_in_flight = 1;
    let plan = Plan {
        ops: (0..30)
            .map(|i| create(&format!("s{i}"), &format!("u{i}@x.com")))
            .collect(),
    };
    let report = exec.execute(&plan, Vec::new(), &ctx, &mut rec).await;
    let halted = report.halted.as_deref().unwrap_or_default();
    assert!(halted.contains("403"), "{halted}");
    let posts = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "POST")
        .count();
    assert_eq!(posts, 4, "three created, the fourth refused, nothing after");
    assert_eq!(report.succeeded, 3);
    assert_eq!(report.not_attempted, 26);
}

/// The reads before a plan stop at the first refusal as well: once a lookup is refused, the
/// same client sends no further request.
#[tokio::test]
async fn a_refused_lookup_stops_the_clients_later_requests() {
    let handler: Arc<Handler> = Arc::new(|_: &str, _: &str, _| {
        (
            401,
            r#"{"status":"401","detail":"Miro cannot authorize"}"#.to_owned(),
        )
    });
    let (base, seen) = serve(handler).await;
    let client = client(&base, crate::TOKEN, Profile::miro(), Budgets::unlimited());
    let first = client.find_user("a@x.com").await.unwrap_err();
    assert!(first.refuses_access(), "{first:?}");
    let second = client.find_user("b@x.com").await.unwrap_err();
    assert_eq!(second, scimsync_executor::ScimError::Halted);
    assert_eq!(seen.lock().unwrap().len(), 1);
}
