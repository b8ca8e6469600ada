//! A scripted HTTP/1.1 server: each request is answered by a closure, one connection per
//! request. For answers the emulator does not give (a lookup that misses but a POST "not unique").

use crate::answers::Seen;
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

fn update(source: &str, target: &str, changes: &[(&str, &str)]) -> scimsync_model::Op {
    scimsync_model::Op::Update {
        source_id: scimsync_model::SourceId::new(source),
        target_id: scimsync_model::ScimId::new(target),
        user_name: format!("{source}@x.com"),
        changes: changes
            .iter()
            .map(|(path, new)| scimsync_model::Change {
                path: (*path).to_owned(),
                old: None,
                new: Some(scimsync_model::AttrValue::text(*new)),
            })
            .collect(),
    }
}

const DEPT: &str = scimsync_model::paths::DEPARTMENT;

/// A PATCH refused with 400 invalidPath for one attribute: that attribute is dropped and the
/// rest sent again in the same cycle; the user's op succeeds, the refusal is recorded once.
#[tokio::test]
async fn a_400_naming_one_attribute_drops_it_and_sends_the_rest() {
    let handler: Arc<Handler> = Arc::new(|method: &str, _: &str, index| match method {
        "PATCH" if index <= 1 => (
            400,
            format!(
                r#"{{"status":"400","scimType":"invalidPath","detail":"Invalid path '{DEPT}' for 'replace' op of operation 2"}}"#
            ),
        ),
        "PATCH" => (204, String::new()),
        _ => (404, String::new()),
    });
    let (base, seen) = serve(handler).await;
    let exec = Executor::new(client(
        &base,
        crate::TOKEN,
        Profile::generic(),
        Budgets::unlimited(),
    ));
    let plan = Plan {
        ops: vec![update(
            "s1",
            "9",
            &[("displayName", "Ann Lee"), (DEPT, "Eng")],
        )],
    };
    let mut rec = Rec::default();
    let report = exec.execute(&plan, Vec::new(), &ctx(), &mut rec).await;
    assert_eq!((report.succeeded, report.failed), (1, 0));
    let seen = seen.lock().unwrap();
    let patches: Vec<&Seen> = seen.iter().filter(|s| s.method == "PATCH").collect();
    assert_eq!(patches.len(), 2);
    assert!(patches[0].body.contains(DEPT));
    assert!(!patches[1].body.contains(DEPT), "{}", patches[1].body);
    assert!(patches[1].body.contains("Ann Lee"));
    let link = rec.links()[0];
    assert_eq!(
        link.attrs.get("displayName").and_then(|v| v.as_text()),
        Some("Ann Lee")
    );
    assert_eq!(link.attrs.get(DEPT), None, "not recorded as pushed");
    let event = rec.event_for("s1").unwrap();
    assert!(event.success);
    assert_eq!(event.detail["dropped"][0]["path"], DEPT);
    assert!(
        rec.calls
            .iter()
            .any(|c| matches!(c, crate::Call::Refused(p) if p == DEPT))
    );
}

/// When the refused attribute was all there was to send, the user is not failed (the
/// attribute is the target's limit, not the user's fault): skipped, and the refusal recorded.
#[tokio::test]
async fn a_write_of_only_refused_attributes_is_not_a_failure() {
    let handler: Arc<Handler> = Arc::new(|method: &str, _: &str, _| match method {
        "PATCH" => (
            400,
            format!(
                r#"{{"status":"400","scimType":"invalidPath","detail":"Invalid path '{DEPT}'"}}"#
            ),
        ),
        _ => (404, String::new()),
    });
    let (base, seen) = serve(handler).await;
    let exec = Executor::new(client(
        &base,
        crate::TOKEN,
        Profile::generic(),
        Budgets::unlimited(),
    ));
    let plan = Plan {
        ops: vec![update("s1", "9", &[(DEPT, "Eng")])],
    };
    let mut rec = Rec::default();
    let report = exec.execute(&plan, Vec::new(), &ctx(), &mut rec).await;
    assert_eq!((report.failed, report.skipped), (0, 1));
    assert_eq!(
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == "PATCH")
            .count(),
        1
    );
    assert!(
        rec.calls
            .iter()
            .any(|c| matches!(c, crate::Call::Refused(p) if p == DEPT))
    );
}

/// A POST refused for one attribute (400 invalidValue naming it) posts the rest at once;
/// the link holds what was sent.
#[tokio::test]
async fn a_create_refused_for_one_attribute_posts_the_rest() {
    // The first POST is refused, whatever reads (discovery, the lookup) come before it.
    let posts = std::sync::atomic::AtomicUsize::new(0);
    let handler: Arc<Handler> = Arc::new(move |method: &str, target: &str, _| {
        let first_post =
            method == "POST" && posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        match method {
        "GET" if target.contains("filter=") => (200, list(&[])),
        "POST" if first_post => (
            400,
            r#"{"status":"400","scimType":"invalidValue","detail":"Attribute 'title' is too long"}"#.to_owned(),
        ),
        "POST" => (201, r#"{"id":"42","userName":"a@x.com"}"#.to_owned()),
        _ => (404, String::new()),
    }
    });
    let (base, seen) = serve(handler).await;
    let exec = Executor::new(client(
        &base,
        crate::TOKEN,
        Profile::generic(),
        Budgets::unlimited(),
    ));
    let mut op = create("s1", "a@x.com");
    if let scimsync_model::Op::Create { attrs, .. } = &mut op {
        attrs.insert(
            "title".into(),
            scimsync_model::AttrValue::text("x".repeat(300)),
        );
        attrs.insert("displayName".into(), scimsync_model::AttrValue::text("Ann"));
    }
    let mut rec = Rec::default();
    let report = exec
        .execute(&Plan { ops: vec![op] }, Vec::new(), &ctx(), &mut rec)
        .await;
    assert_eq!((report.succeeded, report.failed), (1, 0));
    let seen = seen.lock().unwrap();
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(posts.len(), 2);
    assert!(!posts[1].body.contains("title"), "{}", posts[1].body);
    let link = rec.links()[0];
    assert_eq!(link.target_id.as_str(), "42");
    assert!(!link.attrs.contains_key("title") && link.attrs.contains_key("displayName"));
    // invalidValue is this user's value, not the attribute: nothing remembered for all.
    assert!(
        !rec.calls
            .iter()
            .any(|c| matches!(c, crate::Call::Refused(_)))
    );
    assert_eq!(
        rec.event_for("s1").unwrap().detail["dropped"][0]["path"],
        "title"
    );
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
