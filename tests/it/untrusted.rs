//! Everything the target says is untrusted text. A hostile or careless service provider that
//! echoes the request's Authorization header (in error details, `scimType`, headers, and even
//! in a user's attributes) must not get the token into a log line, an event, a row of the
//! store or the terminal.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::Duration;

const TOKEN: &str = "echo-me-if-you-dare-3f9a1c7e5b";

/// A SCIM "server" that repeats the Authorization header back everywhere it can.
async fn echo(headers: HeaderMap, req: Request) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let echo_header = [("x-echo-authorization", auth.clone())];
    let error = |status: StatusCode| {
        (
            status,
            echo_header.clone(),
            axum::Json(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": status.as_u16().to_string(),
                "scimType": auth,
                "detail": format!("refused; you sent Authorization: {auth} (token {})",
                                  auth.trim_start_matches("Bearer ")),
            })),
        )
            .into_response()
    };
    match (method.as_str(), path.as_str()) {
        ("GET", "/scim/ServiceProviderConfig") => (
            echo_header.clone(),
            axum::Json(
                json!({"patch": {"supported": true}, "filter": {"supported": true},
                              "documentationUri": format!("https://x.invalid/?auth={auth}")}),
            ),
        )
            .into_response(),
        ("GET", "/scim/Users") => (
            echo_header.clone(),
            axum::Json(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": 1,
                "Resources": [{"id": "1", "userName": "ann@example.com", "active": true,
                               "displayName": format!("Ann ({auth})"),
                               "title": auth}],
            })),
        )
            .into_response(),
        ("GET", _) => error(StatusCode::NOT_FOUND),
        _ => error(StatusCode::BAD_REQUEST),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_echoing_the_token_never_gets_it_stored_logged_or_printed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let app = Router::new().fallback(echo);
        axum::serve(listener, app).await
    });

    let dir = tempfile::tempdir().unwrap();
    // Ann exists in the target (adopted, her echoed attributes read), Bob does not (his
    // create is refused with the echo).
    let directory = json!({
        "users": [
            crate::kit::user("u1", "ann@example.com", "Ann", "Lee", "Eng"),
            crate::kit::user("u2", "bob@example.com", "Bob", "Stone", "Eng"),
        ],
        "groups": []
    });
    std::fs::write(dir.path().join("directory.json"), directory.to_string()).unwrap();
    std::fs::write(
        dir.path().join("sync.toml"),
        format!(
            r#"
[source]
kind = "json"
path = "directory.json"

[target]
url = "http://{addr}/scim"
token_env = "E2E_ECHO_TOKEN"
profile = "generic"

[mapping]
preset = "jumpcloud"
title = "jobTitle"

[state]
path = "state.db"
"#
        ),
    )
    .unwrap();

    let run = |args: &'static [&'static str]| {
        let dir = dir.path().to_owned();
        async move {
            let mut cmd = tokio::process::Command::new(crate::kit::bin());
            cmd.arg("--config")
                .arg(dir.join("sync.toml"))
                .args(args)
                .env("E2E_ECHO_TOKEN", TOKEN)
                .env("RUST_LOG", "debug")
                .kill_on_drop(true);
            let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
                .await
                .expect("scimsync did not finish within 120 s")
                .expect("cannot run scimsync");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let mut printed = Vec::new();
    for args in [
        &["check"][..],
        &["check", "--output", "json"][..],
        &["plan"][..],
        &["--log-format", "json", "sync", "--now"][..],
        &["sync", "--now", "--full"][..],
        &["events", "--output", "json"][..],
        &["events"][..],
        &["status"][..],
    ] {
        let (code, stdout, stderr) = run(args).await;
        printed.push((args, code, stdout, stderr));
    }
    server.abort();

    for (args, _, stdout, stderr) in &printed {
        assert!(
            !stdout.contains(TOKEN),
            "{args:?} printed the token:\n{stdout}"
        );
        assert!(
            !stderr.contains(TOKEN),
            "{args:?} logged the token:\n{stderr}"
        );
    }
    // The cycle did meet the echo (so the checks above prove something): Bob's create was
    // refused, its event names the POST that failed, and says what the target said, redacted.
    let (_, _, events, _) = &printed[5];
    let events: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bob = events
        .iter()
        .find(|e| {
            e["event_type"] == "user_create_provision"
                && e["resource"]["user_name"] == "bob@example.com"
        })
        .expect("Bob's create has an event");
    assert_eq!(bob["success"], false);
    assert_eq!(bob["http"]["method"], "POST");
    assert_eq!(bob["http"]["path"], "/Users");
    assert_eq!(bob["http"]["status"], 400);
    let error = bob["error"].as_str().unwrap();
    assert!(error.contains("[redacted]"), "{error}");
    assert!(error.len() < 1200, "capped: {} bytes", error.len());

    // Nor in the store, in any of its files.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("state.db") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "{name} holds the token"
        );
    }
}
