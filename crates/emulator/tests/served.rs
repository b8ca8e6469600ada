//! The emulator over real sockets, as the `scimsync` binary and the e2e tests see it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use scimsync_emulator::*;
use serde_json::{Value, json};

const TOKEN: &str = "served-token";

async fn start(config: EmulatorConfig) -> RunningEmulator {
    let emu = Emulator::new(EmulatorConfig {
        token: TOKEN.into(),
        ..config
    });
    emu.serve(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn post_user(base: &str, name: &str) -> Result<reqwest::Response, reqwest::Error> {
    client()
        .post(format!("{base}/Users"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(json!({"userName": name}).to_string())
        .send()
        .await
}

/// A dropped request must surface as a transport error from `send`, never as a status:
/// hyper aborts the connection before the response head is flushed.
async fn expect_transport_error(res: Result<reqwest::Response, reqwest::Error>) {
    if let Ok(resp) = res {
        panic!(
            "got a {} response instead of a dropped connection",
            resp.status()
        );
    }
}

#[tokio::test]
async fn serves_on_loopback_and_shuts_down() {
    let running = start(EmulatorConfig::default()).await;
    assert!(running.addr.ip().is_loopback());
    assert_eq!(
        running.base_url,
        format!("http://{}/api/v1/scim", running.addr)
    );
    let r = post_user(&running.base_url, "a@example.com").await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let body: Value = r.json().await.unwrap();
    let loc = format!(
        "{}/Users/{}",
        running.base_url,
        body["id"].as_str().unwrap()
    );
    assert_eq!(body["meta"]["location"], loc.as_str());
    let stats: Stats = client()
        .get(format!("http://{}/_emulator/stats", running.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.writes, 1);
    let base = running.base_url.clone();
    tokio::time::timeout(Duration::from_secs(10), running.shutdown())
        .await
        .unwrap();
    assert!(
        post_user(&base, "b@example.com").await.is_err(),
        "server is gone"
    );
}

#[tokio::test]
async fn dropped_connection_is_a_client_error_and_nothing_is_applied() {
    let running = start(EmulatorConfig {
        faults: Faults {
            drop_rate: 1.0,
            ..Faults::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    expect_transport_error(post_user(&running.base_url, "d@example.com").await).await;
    assert!(running.emulator.users().is_empty());
    assert_eq!(running.emulator.stats().dropped, 1);
    running.emulator.set_faults(Faults::default());
    assert_eq!(
        post_user(&running.base_url, "d@example.com")
            .await
            .unwrap()
            .status(),
        201
    );
    running.shutdown().await;
}

#[tokio::test]
async fn drop_after_apply_loses_the_response_but_keeps_the_write() {
    let running = start(EmulatorConfig {
        faults: Faults {
            drop_rate: 1.0,
            drop_after_apply: true,
            ..Faults::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    expect_transport_error(post_user(&running.base_url, "lost@example.com").await).await;
    let users = running.emulator.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].user_name, "lost@example.com");
    running.emulator.set_faults(Faults::default());
    // The client's retry now meets Miro's duplicate answer.
    let retry = post_user(&running.base_url, "lost@example.com")
        .await
        .unwrap();
    assert_eq!(retry.status(), 400);
    running.shutdown().await;
}

#[tokio::test]
async fn binary_prints_address_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimsync-emulator"))
        .args(["--port", "0", "--limits", "none", "--rng-seed", "3"])
        .env("SCIMSYNC_EMULATOR_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(20), line)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/api/v1/scim"),
        "{base}"
    );

    let spc = client()
        .get(format!("{base}/ServiceProviderConfig"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(spc.status(), 200);
    let unauth = client().get(format!("{base}/Users")).send().await.unwrap();
    assert_eq!(unauth.status(), 401);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(status) = exited else {
        child.kill().unwrap();
        panic!("emulator did not stop on SIGTERM");
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn binary_refuses_remote_host_without_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_scimsync-emulator"))
        .args(["--host", "0.0.0.0", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}
