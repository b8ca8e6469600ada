//! Quarantine: a target that refuses the token, or a cycle whose operations mostly fail, backs
//! the integration off (escalating); a clean cycle lifts it; a failure that says nothing about
//! the target leaves it as it is.

use super::{TOKEN, World};
use crate::quarantine::{Verdict, after_cycle, current};
use scimsync_emulator::EmulatorConfig;
use scimsync_model::EventType;
use scimsync_store::RunStatus;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds from now to a quarantine's end.
fn remaining(until: &str) -> i64 {
    (OffsetDateTime::parse(until, &Rfc3339).unwrap() - OffsetDateTime::now_utc()).whole_seconds()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_quarantines_escalates_and_a_clean_cycle_lifts_it() {
    let world = World::new().await;
    let config = world.config("", "");
    let mut store = world.store();
    world.write_token("a-revoked-token");

    let err = world.cycle(&config, &mut store).await.unwrap_err();
    assert!(err.refusal().is_some(), "{err}");
    let q = current(&store).unwrap().unwrap();
    assert_eq!(q.level, 1);
    assert!(q.reason.contains("refused access"), "{}", q.reason);
    assert!(q.reason.contains("token_env/token_file"), "{}", q.reason);
    assert!((3500..=3600).contains(&remaining(&q.until)), "{}", q.until);
    assert!(q.active(OffsetDateTime::now_utc()));
    assert_eq!(world.seen.of(EventType::SyncQuarantined).len(), 1);
    assert_eq!(store.last_run().unwrap().unwrap().status, RunStatus::Failed);

    // Still refused: the next step of the back-off (6 h by default).
    world.cycle(&config, &mut store).await.unwrap_err();
    let q = current(&store).unwrap().unwrap();
    assert_eq!(q.level, 2);
    assert!(remaining(&q.until) > 5 * 3600, "{}", q.until);

    world.write_token(TOKEN);
    let report = world.cycle(&config, &mut store).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(current(&store).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_heavy_cycle_quarantines_and_an_unreadable_directory_changes_nothing() {
    // Every create refused (409: the domain is not allowed).
    let world = World::with(EmulatorConfig {
        allowed_domains: Some(vec!["elsewhere.example".into()]),
        ..EmulatorConfig::default()
    })
    .await;
    let config = world.config("quarantine_min_failures = 2", "");
    let mut store = world.store();
    let report = world.cycle(&config, &mut store).await.unwrap();
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    let q = current(&store).unwrap().unwrap();
    assert_eq!(q.level, 1);
    assert!(
        q.reason.starts_with("4 of 4 operations failed (100%)"),
        "{}",
        q.reason
    );

    // A broken export says nothing about the target: the quarantine stands, not escalated.
    std::fs::write(world.dir.path().join("directory.json"), "{\"users\": [").unwrap();
    let err = world.cycle(&config, &mut store).await.unwrap_err();
    assert!(err.refusal().is_none(), "{err}");
    assert_eq!(current(&store).unwrap(), Some(q));
}

#[test]
fn the_threshold_counts_failures_against_attempts() {
    let mut store = scimsync_store::Store::open_in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    let path = dir.path().join("sync.toml");
    std::fs::write(
        &path,
        "[source]\nkind = \"json\"\npath = \"d.json\"\n[target]\nurl = \"https://scim.example.com\"\n\
         token_file = \"token\"\n[policy]\nquarantine_ratio = 0.5\nquarantine_min_failures = 3\n",
    )
    .unwrap();
    let config = crate::Config::load(&path).unwrap();
    let emitter = crate::Emitter::new();
    let ctx = crate::emit::EventContext {
        run_id: scimsync_model::RunId(1),
        initiated_by: scimsync_model::InitiatedBy::Schedule,
        integration: config.integration(),
    };
    let mut judge = |succeeded, failed| {
        let verdict = Verdict {
            succeeded,
            failed,
            ..Verdict::default()
        };
        after_cycle(&config, &mut store, &emitter, &ctx, &verdict).unwrap();
        current(&store).unwrap().map(|q| q.level)
    };
    // Too few failures, however high the ratio.
    assert_eq!(judge(0, 2), None);
    // Enough failures, but not over half.
    assert_eq!(judge(3, 3), None);
    assert_eq!(judge(2, 3), Some(1));
    assert_eq!(judge(1, 9), Some(2));
    // A cycle under the threshold lifts it.
    assert_eq!(judge(10, 0), None);
}
