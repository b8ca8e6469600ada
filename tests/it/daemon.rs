//! The daemon as an admin runs it: the real binary, /healthz, /readyz and /metrics scraped
//! during and after a cycle, counters checked against the events, SIGTERM mid-cycle, and
//! quarantine.

use crate::kit::{Env, TOKEN, user};
use scimsync_emulator::{EmulatorConfig, Faults, Seed};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// `n` people, all in "Miro Users", the first an admin.
fn people(n: usize) -> Value {
    let users: Vec<Value> = (0..n)
        .map(|i| {
            user(
                &format!("p{i}"),
                &format!("person{i}@example.com"),
                "Pat",
                &format!("No{i}"),
                "Eng",
            )
        })
        .collect();
    let ids: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    json!({"users": users, "groups": [
        {"id": "g1", "name": "Miro Users", "members": ids},
        {"id": "g2", "name": "Miro Admins", "members": ["p0"]},
    ]})
}

struct Daemon {
    child: tokio::process::Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `scimsync daemon` and waits (at most 30 s) for its endpoints' address.
    async fn start(env: &Env) -> Daemon {
        env.write_config();
        let mut child = tokio::process::Command::new(crate::kit::bin())
            .arg("--config")
            .arg(env.path("sync.toml"))
            .arg("daemon")
            .env("E2E_SCIM_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start the daemon");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("on http://") {
                    let addr = line[at + 3..].split_whitespace().next().unwrap_or("");
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.to_owned());
                    }
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let base = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("the daemon did not announce its endpoints within 30 s")
            .expect("the daemon exited before serving");
        Daemon {
            child,
            base,
            stderr,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let resp = reqwest::get(&url).await.expect("endpoint unreachable");
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// /metrics once the first cycle has ended (at most 60 s).
    async fn metrics_after_a_cycle(&self) -> String {
        assert!(
            // Every series is there at zero from the start: wait for a cycle counted.
            wait_for(Duration::from_secs(60), || async {
                self.get("/metrics")
                    .await
                    .1
                    .lines()
                    .any(|l| l.starts_with("scimsync_cycles_total") && !l.ends_with(" 0"))
            })
            .await,
            "the cycle never finished:\n{}",
            self.stderr()
        );
        self.get("/metrics").await.1
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    async fn sigterm(&mut self) -> (i32, Duration) {
        let pid = self.child.id().expect("daemon already gone");
        let sent = Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the daemon did not stop within 10 s of SIGTERM")
            .unwrap();
        (exit.code().unwrap_or(-1), sent.elapsed())
    }
}

/// Polls `cond` every 100 ms for at most `limit`.
async fn wait_for<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `name{labels} value` lines of the exposition, keyed by the whole series.
fn series(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn daemon_env(env: &mut Env, interval: &str) {
    env.extra_config =
        format!("\n[schedule]\ninterval = \"{interval}\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_health_agree_with_the_events_during_and_after_a_cycle() {
    let mut env = Env::new(Seed::default()).await;
    env.write_directory(&people(30));
    // One cycle at start, the next an hour later: the counters are compared after exactly one.
    daemon_env(&mut env, "1h");
    env.emu.emulator.set_faults(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    });
    let daemon = Daemon::start(&env).await;

    // During the cycle: ready, healthy, and the store readable by other processes.
    assert!(
        wait_for(Duration::from_secs(20), || async {
            daemon.get("/readyz").await.0 == 200
        })
        .await,
        "never ready"
    );
    let (code, _) = daemon.get("/healthz").await;
    assert_eq!(code, 200);
    let (code, during) = daemon.get("/metrics").await;
    assert_eq!(code, 200);
    let status = env.run(&["status", "--output", "json"]).await;
    assert_eq!(
        status.code, 0,
        "status while the daemon runs: {}",
        status.stderr
    );
    let events = env.run(&["events"]).await;
    assert_eq!(
        events.code, 0,
        "events while the daemon runs: {}",
        events.stderr
    );
    // Exported at zero from the start, and still zero.
    assert!(
        during.contains("scimsync_cycles_total{outcome=\"failed\"} 0"),
        "{during}"
    );

    let text = daemon.metrics_after_a_cycle().await;
    let m = series(&text);
    let events = env.events(&[]).await;

    // Every operation counter equals the events of that kind and outcome.
    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    for e in &events {
        let kind = e["event_type"].as_str().unwrap();
        if kind.starts_with("sync_") || kind.starts_with("idm_") {
            continue;
        }
        let outcome = if e["success"] == json!(true) {
            "succeeded"
        } else {
            "failed"
        };
        *expected
            .entry((kind.to_owned(), outcome.to_owned()))
            .or_default() += 1.0;
    }
    assert!(
        expected.get(&("user_create_provision".into(), "succeeded".into())) == Some(&30.0),
        "{expected:?}"
    );
    for ((kind, outcome), n) in &expected {
        let key = format!("scimsync_operations_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}");
        assert_eq!(m.get(&key), Some(n), "{key} in\n{text}");
    }
    let counted: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("scimsync_operations_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(counted, expected.values().sum::<f64>());
    let ends = events
        .iter()
        .filter(|e| e["event_type"] == "sync_cycle_end")
        .count();
    assert_eq!(ends, 1);
    assert_eq!(
        m.get("scimsync_cycles_total{outcome=\"succeeded\"}"),
        Some(&1.0),
        "{text}"
    );
    assert_eq!(m.get("scimsync_cycle_duration_seconds_count"), Some(&1.0));
    let summary = &events
        .iter()
        .find(|e| e["event_type"] == "sync_cycle_end")
        .unwrap()["detail"];
    assert_eq!(
        m.get("scimsync_retries_total").copied().unwrap_or(0.0),
        summary["retries"].as_f64().unwrap()
    );
    assert_eq!(
        m.get("scimsync_rate_limited_responses_total")
            .copied()
            .unwrap_or(0.0),
        summary["rate_limited"].as_f64().unwrap()
    );
    assert!(m["scimsync_last_success_timestamp_seconds"] > 1.7e9);
    assert_eq!(daemon.get("/healthz").await.0, 200);
    assert_eq!(daemon.get("/readyz").await.0, 200);
    assert_eq!(daemon.get("/nope").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_cycle_exits_0_quickly_and_leaves_no_open_intent() {
    let mut env = Env::new(Seed::default()).await;
    env.write_directory(&people(60));
    daemon_env(&mut env, "1h");
    env.emu.emulator.set_faults(Faults {
        latency: Duration::from_millis(200),
        ..Faults::default()
    });
    let mut daemon = Daemon::start(&env).await;
    // Mid-cycle: some users created, not all.
    assert!(
        wait_for(Duration::from_secs(60), || async { env.users().len() >= 5 }).await,
        "no progress:\n{}",
        daemon.stderr()
    );
    assert!(env.users().len() < 60, "the cycle finished too soon");
    let (code, took) = daemon.sigterm().await;
    assert_eq!(code, 0, "{}", daemon.stderr());
    assert!(took < Duration::from_secs(10));

    // The journal is closed: no intent left open, each in-flight write has its event.
    let store = scimsync_store::Store::open(&env.path("state.db")).unwrap();
    assert!(store.open_intents().unwrap().is_empty());
    let run = store.last_run().unwrap().unwrap();
    assert_eq!(run.status, scimsync_store::RunStatus::Interrupted);
    drop(store);
    let events = env.events(&[]).await;
    let end = events
        .iter()
        .find(|e| e["event_type"] == "sync_cycle_end")
        .expect("an interrupted run still ends with sync_cycle_end");
    assert_eq!(end["detail"]["status"], "interrupted");

    // Every user the target holds has an event: its create, or its abandoned intent.
    let stats = env.stats();
    let write_events = events
        .iter()
        .filter(|e| {
            e["event_type"].as_str().unwrap().starts_with("user_")
                && (e["detail"]["journal"] == "abandoned"
                    || matches!(
                        e["http"]["method"].as_str(),
                        Some("POST" | "PATCH" | "DELETE")
                    ))
        })
        .count() as u64;
    assert!(
        stats.writes <= write_events,
        "{} writes received, {write_events} write events",
        stats.writes
    );
    for u in env.users() {
        assert!(
            events.iter().any(|e| e["resource"]["user_name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&u.user_name))),
            "{} was created without an event",
            u.user_name
        );
    }

    // The next cycle completes the job without a duplicate.
    env.emu.emulator.set_faults(Faults::default());
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let users = env.users();
    assert_eq!(users.len(), 60);
    let mut names: Vec<String> = users.iter().map(|u| u.user_name.to_lowercase()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 60, "duplicates");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_quarantines_the_daemon_until_a_manual_sync_succeeds() {
    let mut env = Env::new(Seed::default()).await;
    daemon_env(&mut env, "1s");
    env.emu.emulator.set_faults(Faults {
        fail_auth: true,
        ..Faults::default()
    });
    let daemon = Daemon::start(&env).await;
    assert!(
        wait_for(Duration::from_secs(30), || async {
            daemon.get("/healthz").await.0 == 503
        })
        .await,
        "{}",
        daemon.stderr()
    );
    let (_, body) = daemon.get("/healthz").await;
    assert!(body.contains("quarantined until"), "{body}");
    // Several ticks pass; the daemon runs no further cycle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let starts = env.events(&["--type", "sync_cycle_start"]).await;
    assert_eq!(starts.len(), 1, "the daemon kept cycling while quarantined");
    let q = env.events(&["--type", "sync_quarantined"]).await;
    assert_eq!(q.len(), 1);
    assert!(q[0]["error"].as_str().unwrap().contains("401"));
    let status = env.run(&["status"]).await;
    assert!(
        status.stdout.contains("QUARANTINED until"),
        "{}",
        status.stdout
    );

    // The token is fixed; a manual sync still runs and lifts the quarantine.
    env.emu.emulator.set_faults(Faults::default());
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let status = env.run(&["status", "--output", "json"]).await;
    let v: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["quarantine"], Value::Null);
    assert!(
        wait_for(Duration::from_secs(10), || async {
            daemon.get("/healthz").await.0 == 200
        })
        .await,
        "{}",
        daemon.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mostly_failing_cycle_quarantines_with_an_escalating_backoff() {
    let mut env = Env::with_config(EmulatorConfig {
        token: TOKEN.into(),
        // Every create is refused: the domain is not allowed.
        allowed_domains: Some(vec!["elsewhere.example".into()]),
        ..EmulatorConfig::default()
    })
    .await;
    env.policy = "max_deprovisions = \"50%\"\nquarantine_min_failures = 2\n\
                  quarantine_backoff = [\"1h\", \"6h\"]"
        .into();
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let status = env.run(&["status", "--output", "json"]).await;
    let v: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["quarantine"]["active"], true, "{v}");
    assert_eq!(v["quarantine"]["level"], 1);
    assert!(
        v["quarantine"]["reason"]
            .as_str()
            .unwrap()
            .contains("4 of 4 operations failed")
    );
    // A manual sync still runs while quarantined; failing again escalates.
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let q = env.events(&["--type", "sync_quarantined"]).await;
    assert_eq!(q.len(), 2);
    assert_eq!(q[0]["detail"]["backoff_s"], 3600);
    assert_eq!(q[1]["detail"]["backoff_s"], 6 * 3600);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_few_failures_below_the_minimum_do_not_quarantine() {
    let mut env = Env::with_config(EmulatorConfig {
        token: TOKEN.into(),
        allowed_domains: Some(vec!["elsewhere.example".into()]),
        ..EmulatorConfig::default()
    })
    .await;
    env.policy = "max_deprovisions = \"50%\"".into();
    let run = env.run(&["sync", "--now"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(env.events(&["--type", "sync_quarantined"]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_listen_address_is_refused_without_allow_remote() {
    let mut env = Env::new(Seed::default()).await;
    env.extra_config = "\n[daemon]\nlisten = \"0.0.0.0:9464\"\n".into();
    let run = env.run(&["status"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("allow_remote"), "{}", run.stderr);
    env.extra_config = "\n[daemon]\nlisten = \"0.0.0.0:9464\"\nallow_remote = true\n".into();
    // The config loads: `status` goes on to say there is no store yet (no cycle ran).
    let run = env.run(&["status"]).await;
    assert!(run.stderr.contains("no state store"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_and_the_man_page_are_generated() {
    let env = Env::new(Seed::default()).await;
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = env.run(&["completions", shell]).await;
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("approve-deletes"), "{shell}");
    }
    let run = env
        .run(&["man", "--out-dir", env.path("").to_str().unwrap()])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let page = std::fs::read_to_string(env.path("scimsync.1")).unwrap();
    assert!(page.contains(".TH scimsync"), "{page}");
    assert!(page.contains("daemon"));
}

/// A held cycle's changes are counted on /metrics by kind, as its `sync_held` event says.
#[tokio::test(flavor = "multi_thread")]
async fn held_changes_are_counted_by_kind_on_metrics() {
    let mut env = Env::new(Seed::default()).await;
    env.write_directory(&people(6));
    env.sync().await;
    // Everyone but the admin unassigned: 5 of 6, over the kit's 50%.
    let mut dir = people(6);
    dir["groups"][0]["members"] = json!(["p0"]);
    env.write_directory(&dir);
    daemon_env(&mut env, "1h");
    let mut daemon = Daemon::start(&env).await;
    let text = daemon.metrics_after_a_cycle().await;
    let m = series(&text);
    assert_eq!(
        m.get("scimsync_held_deprovisions_total{kind=\"deactivate\"}"),
        Some(&5.0),
        "{text}"
    );
    assert_eq!(
        m.get("scimsync_cycles_total{outcome=\"held\"}"),
        Some(&1.0),
        "{text}"
    );
    assert!(env.users().iter().all(|u| u.active));
    let (code, _) = daemon.sigterm().await;
    assert_eq!(code, 0);
}

/// Every counter and histogram is exported from the start, at zero: an alert on failures,
/// holds or quarantines works before the first one.
#[tokio::test(flavor = "multi_thread")]
async fn every_counter_and_histogram_is_exported_at_zero() {
    let env = Env::new(Seed::default()).await;
    let daemon = Daemon::start(&env).await;
    let metrics = daemon.get("/metrics").await.1;
    for series in [
        "scimsync_quarantined_cycles_total 0",
        "scimsync_held_deprovisions_total{kind=\"team_unassign\"} 0",
        "scimsync_held_deprovisions_total{kind=\"deactivate\"} 0",
        "scimsync_operations_total{kind=\"user_delete_provision\",outcome=\"failed\"} 0",
        "scimsync_operations_total{kind=\"group_delete_provision\",outcome=\"abandoned\"} 0",
        "scimsync_cycles_total{outcome=\"held\"} 0",
        "scimsync_rate_limited_responses_total 0",
        "scimsync_operation_duration_seconds_count{kind=\"user_delete_provision\"} 0",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    assert!(
        metrics.contains("scimsync_cycle_duration_seconds_count"),
        "{metrics}"
    );
}
