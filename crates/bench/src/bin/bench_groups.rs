//! Group membership throughput under Miro's two group-PATCH buckets: the executor fills teams in
//! an emulated org whose limits run on a scaled window, and the achieved time is compared with
//! the least time the buckets allow for the split it chose (the lower bound of the two buckets:
//! small bodies at 100 per window, large ones at 5, running concurrently).
//!
//! Two shapes: one big team filled from empty (large bodies win), and many teams with a few
//! changes each (small bodies win).
//!
//! ```sh
//! cargo run --release -p scimsync-bench --bin bench_groups -- --members 20000 --teams 300 --window-ms 3000
//! ```

use anyhow::{Context, Result};
use clap::Parser;
use scimsync_bench::harness;
use scimsync_executor::{ClientConfig, ExecContext, Executor, Recorder, ScimClient};
use scimsync_model::{
    Event, GroupLink, InitiatedBy, Link, Member, Op, Plan, RunId, ScimId, SourceId,
};
use scimsync_scim::{Budgets, MemberChangeShape, Profile, choose_sizes};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Members of the one big team.
    #[arg(long, default_value_t = 20_000)]
    members: usize,
    /// Teams in the many-small-changes shape (3 new members each).
    #[arg(long, default_value_t = 300)]
    teams: usize,
    /// Miro's 30 s window, scaled (both the emulator's limits and the client's budgets).
    #[arg(long, default_value_t = 3000)]
    window_ms: u64,
}

#[derive(Default)]
struct Count {
    events: usize,
    failed: usize,
}

impl Recorder for Count {
    fn before_write(&mut self, _: usize, _: &Op, _: &str) {}
    fn after_write(&mut self, _: usize, _: &scimsync_executor::OpOutcome) {}
    fn link(&mut self, _: Link) {}
    fn unlink(&mut self, _: &SourceId) {}
    fn event(&mut self, event: Event) {
        self.events += 1;
        if !event.success {
            self.failed += 1;
        }
    }
}

struct Shape {
    name: &'static str,
    plan: Plan,
    links: Vec<GroupLink>,
    members: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let window = Duration::from_millis(args.window_ms);
    let budgets = Budgets::miro_scaled(window);
    let per_team = 3;
    let users = args.members.max(args.teams * per_team);

    let emu = harness::emulator(Some(window)).await?;
    let mut seed_groups = vec![serde_json::json!({"displayName": "Everyone"})];
    seed_groups
        .extend((0..args.teams).map(|t| serde_json::json!({"displayName": format!("team-{t}")})));
    let seed: scimsync_emulator::Seed = serde_json::from_value(serde_json::json!({
        "users": (0..users).map(|i| serde_json::json!({"userName": format!("m{i}@example.com")})).collect::<Vec<_>>(),
        "groups": seed_groups,
    }))?;
    emu.emulator.seed(&seed);
    let ids: BTreeMap<String, String> = emu
        .emulator
        .users()
        .into_iter()
        .map(|u| (u.user_name.to_lowercase(), u.id))
        .collect();
    let groups: BTreeMap<String, String> = emu
        .emulator
        .groups()
        .into_iter()
        .map(|g| (g.display_name, g.id))
        .collect();
    let member = |i: usize| -> Result<Member> {
        let name = format!("m{i}@example.com");
        let id = ids.get(&name).context("seeded user missing")?;
        Ok(Member {
            source_id: SourceId::new(format!("m{i}")),
            user_name: name,
            target_id: Some(ScimId::new(id.as_str())),
        })
    };
    let link = |name: &str| -> Result<GroupLink> {
        Ok(GroupLink {
            source_id: SourceId::new(name),
            target_id: ScimId::new(groups.get(name).context("seeded group missing")?.as_str()),
            display_name: name.to_owned(),
            members: Vec::new(),
        })
    };

    let big = Shape {
        name: "one team filled from empty",
        plan: Plan {
            ops: vec![Op::GroupMembers {
                source_id: SourceId::new("Everyone"),
                target_id: Some(link("Everyone")?.target_id),
                display_name: "Everyone".into(),
                add: (0..args.members).map(member).collect::<Result<_>>()?,
                remove: Vec::new(),
                renamed_from: None,
            }],
        },
        links: vec![link("Everyone")?],
        members: args.members,
    };
    let mut ops = Vec::new();
    let mut links = Vec::new();
    for t in 0..args.teams {
        let name = format!("team-{t}");
        links.push(link(&name)?);
        ops.push(Op::GroupMembers {
            source_id: SourceId::new(name.as_str()),
            target_id: Some(link(&name)?.target_id),
            display_name: name.clone(),
            add: (t * per_team..(t + 1) * per_team)
                .map(member)
                .collect::<Result<_>>()?,
            remove: Vec::new(),
            renamed_from: None,
        });
    }
    let many = Shape {
        name: "many teams, 3 new members each",
        plan: Plan { ops },
        links,
        members: args.teams * per_team,
    };

    let mut profile = Profile::miro();
    profile.budgets = budgets.clone();
    println!("window {} ms (Miro's 30 s scaled)", args.window_ms);
    for shape in [big, many] {
        let shapes: Vec<MemberChangeShape> = shape
            .plan
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::GroupMembers { add, remove, .. } => Some(MemberChangeShape {
                    add: add.iter().filter_map(|m| m.target_id.clone()).collect(),
                    remove: remove.iter().filter_map(|m| m.target_id.clone()).collect(),
                    rename: None,
                }),
                _ => None,
            })
            .collect();
        let (_, bound) = choose_sizes(&shapes, &profile);
        let client = ScimClient::new(
            ClientConfig::new(emu.base_url.clone(), profile.clone()),
            SecretString::from(harness::TOKEN.to_owned()),
            budgets.clone(),
        )?;
        let executor = Executor::new(client).with_group_links(shape.links.clone());
        let ctx = ExecContext::new(RunId(1), InitiatedBy::Manual, "bench");
        let mut rec = Count::default();
        let started = Instant::now();
        let report = executor
            .execute(&shape.plan, Vec::new(), &ctx, &mut rec)
            .await;
        let elapsed = started.elapsed();
        let small = report
            .buckets
            .get(&scimsync_scim::Bucket::GroupsPatchSmall)
            .map_or(0, |b| b.requests);
        let large = report
            .buckets
            .get(&scimsync_scim::Bucket::GroupsPatchLarge)
            .map_or(0, |b| b.requests);
        let secs = elapsed.as_secs_f64().max(1e-9);
        println!(
            "{}: {} members in {:.2} s ({:.0} members/s); PATCHes small {small}, large {large}; \
             lower bound {:.2} s; achieved/bound {:.2}; 429s {}; failed events {}",
            shape.name,
            shape.members,
            secs,
            shape.members as f64 / secs,
            bound.as_secs_f64(),
            secs / bound.as_secs_f64().max(1e-9),
            report.rate_limited,
            rec.failed,
        );
    }
    Ok(())
}
