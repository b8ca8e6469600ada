//! Team assignment over Miro's REST API (the emulator's, in-process): paced on its own bucket,
//! its own token, and a refusal that stops the REST requests, not the SCIM ones.

use crate::{Call, Rec, TOKEN, client, ctx, tuning};
use scimsync_emulator::{Emulator, EmulatorConfig, RateLimits, RunningEmulator, Seed};
use scimsync_executor::{Executor, OpOutcome, RestClient, RestConfig};
use scimsync_model::{Attrs, Op, Plan, ScimId, SourceId, TeamAction, TeamId, TeamRef};
use scimsync_scim::{Bucket, Budgets, Profile};
use secrecy::SecretString;
use std::time::Duration;

const REST: &str = "rest-tok-8e21";
const WINDOW: Duration = Duration::from_millis(300);
const PER_WINDOW: u32 = 4;

async fn start(teams: usize) -> RunningEmulator {
    let seed: Seed = serde_json::from_value(serde_json::json!({
        "groups": [{"displayName": "Engineering"}],
        "teams": (0..teams).map(|i| serde_json::json!({"name": format!("T{i}")})).collect::<Vec<_>>(),
    }))
    .unwrap();
    Emulator::new(EmulatorConfig {
        token: TOKEN.into(),
        rest_token: REST.into(),
        seed,
        limits: Some(RateLimits {
            rest_level1: PER_WINDOW,
            ..RateLimits::miro_scaled(WINDOW)
        }),
        ..EmulatorConfig::default()
    })
    .serve("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap()
}

fn rest(emu: &RunningEmulator, token: &str, per_window: u32) -> RestClient {
    RestClient::with_retry(
        RestConfig {
            base_url: format!("http://{}", emu.addr),
            org_id: emu.emulator.config().org_id.clone(),
            timeout: Duration::from_secs(10),
            budget: Budgets {
                window: WINDOW,
                buckets: [(Bucket::RestLevel1, per_window)].into(),
            },
            user_agent: "scimsync-test".into(),
        },
        SecretString::from(token.to_owned()),
        tuning().retry,
    )
    .unwrap()
}

/// An assignment of the emulator's Engineering user group to each of its teams.
fn assignments(emu: &RunningEmulator) -> Plan {
    let group = emu.emulator.groups()[0].id.clone();
    Plan {
        ops: emu
            .emulator
            .teams()
            .into_iter()
            .map(|t| Op::TeamAssignment {
                source_id: SourceId::new("g1"),
                group_id: Some(ScimId::new(group.clone())),
                display_name: "Engineering".into(),
                team: TeamRef {
                    id: Some(TeamId::new(t.id)),
                    name: t.name,
                },
                action: TeamAction::Assign,
            })
            .collect(),
    }
}

fn executor(emu: &RunningEmulator, rest: RestClient) -> Executor {
    Executor::new(client(
        &emu.base_url,
        TOKEN,
        Profile::miro(),
        Budgets::unlimited(),
    ))
    .with_rest(Some(rest))
}

#[tokio::test]
async fn assignments_are_paced_under_the_rest_budget_and_linked() {
    let emu = start(10).await;
    let plan = assignments(&emu);
    let rest = rest(&emu, REST, PER_WINDOW);
    let started = tokio::time::Instant::now();
    let mut rec = Rec::default();
    let report = executor(&emu, rest.clone())
        .execute(&plan, Vec::new(), &ctx(), &mut rec)
        .await;
    assert_eq!(report.succeeded, 10, "{:?}", report.failures);
    assert_eq!(
        emu.emulator.stats().rate_limited,
        0,
        "never over the budget"
    );
    // Ten requests at four a window: at least two windows.
    assert!(started.elapsed() >= WINDOW * 2, "{:?}", started.elapsed());
    assert!(emu.emulator.teams().iter().all(|t| t.groups.len() == 1));
    assert_eq!(rest.requests(), 10);
    // Each one journaled and evented with its team.
    for (i, op) in plan.ops.iter().enumerate() {
        assert_eq!(rec.outcome(i), Some(&OpOutcome::Succeeded));
        let Op::TeamAssignment { team, .. } = op else {
            unreachable!()
        };
        assert!(
            rec.events()
                .iter()
                .any(|e| e.detail["team"]["name"] == team.name.as_str()
                    && e.detail["action"] == "assign")
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn an_unpaced_client_meets_429s_the_paced_one_never_does() {
    let emu = start(10).await;
    let plan = assignments(&emu);
    let mut rec = Rec::default();
    let report = executor(&emu, rest(&emu, REST, 1000))
        .execute(&plan, Vec::new(), &ctx(), &mut rec)
        .await;
    // Retried after the 429s (X-RateLimit-Reset), so it still gets there: pacing is what
    // keeps the token out of trouble.
    assert_eq!(report.succeeded, 10, "{:?}", report.failures);
    assert!(emu.emulator.stats().rate_limited > 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_refused_rest_token_fails_the_assignments_not_the_scim_side() {
    let emu = start(2).await;
    let mut plan = assignments(&emu);
    plan.ops.insert(
        0,
        Op::Create {
            source_id: SourceId::new("u1"),
            user_name: "ann@example.com".into(),
            attrs: Attrs::new(),
        },
    );
    let rest = rest(&emu, "not-the-rest-token", PER_WINDOW);
    let mut rec = Rec::default();
    let report = executor(&emu, rest.clone())
        .execute(&plan, Vec::new(), &ctx(), &mut rec)
        .await;
    assert!(report.halted.is_none(), "the SCIM side goes on");
    assert_eq!(report.succeeded, 1);
    assert_eq!(report.failed, 2);
    assert_eq!(
        rest.requests(),
        1,
        "after the refusal, nothing more is sent"
    );
    let errors: Vec<&str> = rec
        .events()
        .into_iter()
        .filter_map(|e| e.error.as_deref())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("refused the [target.rest] token") && errors[0].contains("401"));
    assert!(errors[1].starts_with("not sent"), "{errors:?}");
    assert!(
        rec.calls
            .iter()
            .any(|c| matches!(c, Call::Link(l) if l.user_name == "ann@example.com"))
    );
    emu.shutdown().await;
}
