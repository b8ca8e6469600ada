//! What counts as a success: a 2xx only with the content the profile promises for it. A raw
//! HTTP server answers each request with bytes the test chooses (an HTML page, JSON of another
//! shape, a body cut short, a body larger than the cap), which neither the emulator nor a real
//! SCIM server would send on purpose.

use crate::{Rec, ctx, tuning};
use scimsync_executor::{
    ClientConfig, ExecutionReport, Executor, OpOutcome, ScimClient, ScimError,
};
use scimsync_model::{AttrValue, Change, Link, Op, Plan, ScimId, SourceId, paths};
use scimsync_scim::{Budgets, Profile};
use secrecy::SecretString;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server read it.
pub struct Seen {
    pub method: String,
    pub target: String,
    pub authorization: Option<String>,
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

/// The raw response to a request: (method, target, index among all requests).
pub type Answer = dyn Fn(&str, &str, usize) -> Vec<u8> + Send + Sync;

/// A raw HTTP/1.1 server on 127.0.0.1: each request (head, then the body by Content-Length)
/// logged and answered with the bytes `answer` returns, one connection per request. Serves
/// until the test's runtime stops; returns the base URL and the log.
pub async fn serve(answer: Arc<Answer>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Log = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_owned())
                    })
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut first = head.lines().next().unwrap_or_default().split(' ');
                let method = first.next().unwrap_or_default().to_owned();
                let target = first.next().unwrap_or_default().to_owned();
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(Seen {
                        method: method.clone(),
                        target: target.clone(),
                        authorization: header("authorization"),
                    });
                    log.len() - 1
                };
                let bytes = answer(&method, &target, index);
                let _ = sock.write_all(&bytes).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}/scim"), seen)
}

pub fn http(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn scim(status: u16, body: &str) -> Vec<u8> {
    http(status, "application/scim+json", body)
}

fn user_json(id: &str, user_name: &str, active: bool) -> String {
    serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": id, "userName": user_name, "active": active, "displayName": user_name})
    .to_string()
}

fn list(users: &[(&str, &str)]) -> String {
    let resources: Vec<_> = users
        .iter()
        .map(|(id, name)| serde_json::json!({"id": id, "userName": name, "active": true}))
        .collect();
    serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": resources.len(), "Resources": resources})
    .to_string()
}

const HTML: &str =
    "<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>";

fn client_with(base: &str, profile: Profile, max_response_bytes: usize) -> ScimClient {
    let cfg = ClientConfig {
        base_url: base.to_owned(),
        profile,
        timeout: Duration::from_secs(5),
        user_agent: "scimsync-test".into(),
        max_response_bytes,
    };
    ScimClient::with_tuning(
        cfg,
        SecretString::from(crate::TOKEN.to_owned()),
        Budgets::unlimited(),
        tuning(),
    )
    .unwrap()
}

fn linked(source: &str, target: &str) -> Link {
    let attrs = scimsync_model::Attrs::new();
    Link {
        source_id: SourceId::new(source),
        target_id: ScimId::new(target),
        user_name: format!("{source}@x.com"),
        active: true,
        hash: scimsync_model::fingerprint(&format!("{source}@x.com"), true, &attrs),
        attrs,
    }
}

fn deactivate(source: &str, target: &str) -> Op {
    Op::Deactivate {
        source_id: SourceId::new(source),
        target_id: ScimId::new(target),
        user_name: format!("{source}@x.com"),
        reason: scimsync_model::DeprovisionReason::Unassigned,
    }
}

fn update(source: &str, target: &str) -> Op {
    Op::Update {
        source_id: SourceId::new(source),
        target_id: ScimId::new(target),
        user_name: format!("{source}@x.com"),
        changes: vec![Change {
            path: paths::DEPARTMENT.into(),
            old: Some(AttrValue::text("Eng")),
            new: Some(AttrValue::text("Ops")),
        }],
    }
}

/// Runs `op` against the server at `base`, with s1 linked to target 7.
async fn execute_one(base: &str, profile: Profile, op: Op) -> (ExecutionReport, Rec) {
    let exec = Executor::new(client_with(base, profile, 1 << 20));
    let mut rec = Rec::default();
    let report = exec
        .execute(
            &Plan { ops: vec![op] },
            vec![linked("s1", "7")],
            &ctx(),
            &mut rec,
        )
        .await;
    (report, rec)
}

/// Runs one op against answers that never confirm it: it must fail after the whole retry
/// budget (every attempt evented as a write), never link, and leave its user uncertain.
async fn never_confirmed(profile: Profile, answer: Arc<Answer>, expect: &str) {
    let (base, seen) = serve(answer).await;
    let (report, rec) = execute_one(&base, profile, deactivate("s1", "7")).await;
    assert_eq!(report.failed, 1, "{:?}", rec.calls);
    assert!(
        matches!(rec.outcome(0), Some(OpOutcome::Failed(m)) if m.contains(expect)),
        "{:?}",
        rec.outcome(0)
    );
    assert!(
        rec.links().is_empty(),
        "an unconfirmed write is never linked"
    );
    let patches = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "PATCH")
        .count();
    // Retried as a retryable failure, within the budget.
    assert_eq!(patches, tuning().retry.max_attempts as usize);
    let event = rec.event_for("s1").unwrap();
    assert!(!event.success);
    let http = event.http.as_ref().unwrap();
    assert_eq!(http.writes as usize, patches, "each request the target saw");
    assert!(http.outcome_unknown);
    let marks = rec.uncertain();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].source_id.as_str(), "s1");
    assert_eq!(marks[0].target_id.as_ref().unwrap().as_str(), "7");
}

#[tokio::test]
async fn an_html_200_to_a_patch_is_not_a_success() {
    never_confirmed(
        Profile::miro(),
        Arc::new(|_: &str, _: &str, _| http(200, "text/html; charset=utf-8", HTML)),
        "HTML page",
    )
    .await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_not_a_success() {
    never_confirmed(
        Profile::miro(),
        Arc::new(|_: &str, _: &str, _| scim(200, r#"{"status":"ok"}"#)),
        "without an id",
    )
    .await;
}

#[tokio::test]
async fn another_users_resource_is_not_a_success() {
    never_confirmed(
        Profile::miro(),
        Arc::new(|_: &str, _: &str, _| scim(200, &user_json("8", "other@x.com", false))),
        "the resource \"8\"",
    )
    .await;
}

#[tokio::test]
async fn a_truncated_body_is_not_a_success() {
    // Content-Length promises more than is sent, then the connection closes.
    never_confirmed(
        Profile::miro(),
        Arc::new(|_: &str, _: &str, _| {
            let body = user_json("7", "s1@x.com", false);
            let cut = &body[..body.len() / 2];
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{cut}",
                body.len()
            )
            .into_bytes()
        }),
        "transport error",
    )
    .await;
}

#[tokio::test]
async fn a_truncated_chunked_json_body_is_not_a_success() {
    // A complete chunked body whose JSON stops halfway.
    never_confirmed(
        Profile::miro(),
        Arc::new(|_: &str, _: &str, _| {
            let body = user_json("7", "s1@x.com", false);
            scim(200, &body[..body.len() / 2])
        }),
        "truncated JSON body",
    )
    .await;
}

#[tokio::test]
async fn an_empty_204_to_a_patch_confirms_nothing_on_miro_but_does_on_a_generic_sp() {
    let no_content: Arc<Answer> = Arc::new(|_: &str, _: &str, _| {
        b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec()
    });
    never_confirmed(Profile::miro(), Arc::clone(&no_content), "no content").await;

    // RFC 7644 §3.5.2 lets a PATCH answer 204: the generic profile takes it.
    let (base, _) = serve(Arc::new(|method: &str, _: &str, _| match method {
        // Capability discovery: not served.
        "GET" => scim(404, r#"{"status":"404"}"#),
        _ => b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec(),
    }))
    .await;
    let (report, rec) = execute_one(&base, Profile::generic(), update("s1", "7")).await;
    assert_eq!(report.succeeded, 1, "{:?}", rec.calls);
    assert!(rec.uncertain().is_empty());
    assert_eq!(rec.links().len(), 1);
}

#[tokio::test]
async fn a_confirmed_patch_links_and_leaves_nothing_uncertain() {
    let (base, _) = serve(Arc::new(|_: &str, _: &str, _| {
        scim(200, &user_json("7", "s1@x.com", false))
    }))
    .await;
    let (report, rec) = execute_one(&base, Profile::miro(), deactivate("s1", "7")).await;
    assert_eq!(report.succeeded, 1);
    assert!(rec.uncertain().is_empty());
    let http = rec.event_for("s1").unwrap().http.clone().unwrap();
    assert_eq!((http.attempts, http.writes), (1, 1));
    assert!(!http.outcome_unknown);
}

/// A POST answered with an HTML page may or may not have created the user: the create looks
/// the user up before posting again, and adopts what the lookup finds. Never a second POST
/// for a user the target holds.
#[tokio::test]
async fn an_html_200_to_a_create_is_resolved_by_lookup_not_by_a_second_post() {
    let posted = Arc::new(Mutex::new(false));
    let p = Arc::clone(&posted);
    let (base, seen) = serve(Arc::new(move |method: &str, _: &str, _| match method {
        "GET" if *p.lock().unwrap() => scim(200, &list(&[("42", "new@x.com")])),
        "GET" => scim(200, &list(&[])),
        _ => {
            // The page came from a proxy, but the create went through behind it.
            *p.lock().unwrap() = true;
            http(200, "text/html", HTML)
        }
    }))
    .await;
    let (report, rec) = execute_one(&base, Profile::miro(), crate::create("s1", "new@x.com")).await;
    assert_eq!(report.succeeded, 1);
    assert_eq!(rec.outcome(0), Some(&OpOutcome::Adopted));
    assert_eq!(rec.links()[0].target_id.as_str(), "42");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.iter().filter(|s| s.method == "POST").count(), 1);
    assert!(rec.uncertain().is_empty(), "the lookup settled it");
}

#[tokio::test]
async fn an_answer_over_the_cap_is_not_read_and_fails_with_a_clear_error() {
    // Announced by Content-Length: refused before a byte of the body is read.
    let huge = format!(
        r#"{{"id":"7","userName":"s1@x.com","padding":"{}"}}"#,
        "x".repeat(200_000)
    );
    let announced = huge.clone();
    let (base, _) = serve(Arc::new(move |_: &str, _: &str, _| scim(200, &announced))).await;
    let client = client_with(&base, Profile::miro(), 64 << 10);
    let err = client
        .get_user(&ScimId::new("7"))
        .await
        .expect_err("over the cap");
    assert!(
        matches!(err, ScimError::ResponseTooLarge { limit, .. } if limit == 64 << 10),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_response_bytes"), "{err}");

    // Chunked (no Content-Length): read up to the cap, then abandoned.
    let (base, _) = serve(Arc::new(move |_: &str, _: &str, _| {
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        for piece in huge.as_bytes().chunks(8192) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }))
    .await;
    let client = client_with(&base, Profile::miro(), 64 << 10);
    let err = client.get_user(&ScimId::new("7")).await.unwrap_err();
    assert!(matches!(err, ScimError::ResponseTooLarge { .. }), "{err:?}");

    // Within the cap, the same resource is read.
    let (base, _) = serve(Arc::new(|_: &str, _: &str, _| {
        scim(200, &user_json("7", "s1@x.com", true))
    }))
    .await;
    let client = client_with(&base, Profile::miro(), 64 << 10);
    assert!(client.get_user(&ScimId::new("7")).await.unwrap().is_some());
}

#[tokio::test]
async fn a_lookup_answered_with_json_of_the_wrong_shape_is_never_taken_for_no_match() {
    // `{}` would read as an empty list, and an empty list means "create": a duplicate.
    let (base, seen) = serve(Arc::new(|_: &str, _: &str, _| scim(200, "{}"))).await;
    let (report, _) = execute_one(&base, Profile::miro(), crate::create("s1", "new@x.com")).await;
    assert_eq!(report.failed, 1);
    assert!(
        seen.lock().unwrap().iter().all(|s| s.method == "GET"),
        "no POST without a lookup that says no such user"
    );
}
