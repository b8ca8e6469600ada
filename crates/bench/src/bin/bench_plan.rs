//! Planner scale: an incremental cycle's work without the network. N users and G groups are
//! planned against a current state of N links (as the store holds them after a first cycle)
//! with `--change-percent` of the users changed in the directory.
//!
//! Two processes, so the peak RSS is the measured phase's alone: `--setup DIR` generates the
//! directory and writes the links to DIR/state.db; `--measure DIR` reads, maps, loads the links
//! and plans, and reports wall time per phase and VmHWM. Without either, both run in turn.
//!
//! ```sh
//! cargo run --release -p scimsync-bench --bin bench-plan -- --users 1000000 --groups 10000 --change-percent 1
//! ```

use anyhow::{Context, Result, bail};
use clap::Parser;
use scimsync_bench::{generate, rss};
use scimsync_directory::{Mapping, MappingConfig, RolesConfig, ScopeConfig};
use scimsync_model::{Link, ScimId, SourceId, TargetView};
use scimsync_plan::{OnDelete, OnUnassign, PlanInput, Policy};
use scimsync_scim::Profile;
use scimsync_store::Store;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    users: usize,
    #[arg(long, default_value_t = 10_000)]
    groups: usize,
    #[arg(long, default_value_t = 1.0)]
    change_percent: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only generate the inputs into DIR.
    #[arg(long, conflicts_with = "measure")]
    setup: Option<PathBuf>,
    /// Only measure, on inputs a `--setup` wrote into DIR.
    #[arg(long)]
    measure: Option<PathBuf>,
}

struct Configs {
    scope: ScopeConfig,
    roles: RolesConfig,
    mapping: Mapping,
}

/// What the benchmarks' sync.toml says: scope "Miro Users", admins "Miro Admins", JumpCloud names.
fn configs() -> Result<Configs> {
    Ok(Configs {
        scope: ScopeConfig {
            groups: Some(vec![generate::SCOPE_GROUP.to_owned()]),
            ..ScopeConfig::default()
        },
        roles: RolesConfig {
            admin_groups: vec![generate::ADMIN_GROUP.to_owned()],
        },
        mapping: Mapping::compile(&MappingConfig::default())?,
    })
}

fn policy() -> Policy {
    let profile = Profile::miro();
    Policy {
        on_unassign: OnUnassign::default(),
        on_delete: OnDelete::default(),
        create_only: profile.create_only,
        frozen_while_inactive: profile.frozen_while_inactive,
        deactivate_first: false,
    }
}

/// The links a first cycle would have stored for the base directory, and the changed directory.
fn setup(args: &Args, dir: &Path) -> Result<()> {
    let started = Instant::now();
    let c = configs()?;
    let mut snapshot = generate::directory(args.users, args.groups, args.seed);
    let mapped = scimsync_directory::map(&snapshot, &c.scope, &c.roles, &c.mapping);
    let links: Vec<Link> = mapped
        .desired
        .iter()
        .enumerate()
        .map(|(i, u)| Link {
            source_id: u.source_id.clone(),
            target_id: ScimId::new(format!("{i:032x}")),
            user_name: u.user_name.clone(),
            active: u.active,
            attrs: u.attrs.clone(),
            hash: u.fingerprint(),
        })
        .collect();
    drop(mapped);
    let db = dir.join("state.db");
    let _ = std::fs::remove_file(&db);
    let mut store = Store::open(&db)?;
    let write = Instant::now();
    store.upsert_links(&links)?;
    let write = write.elapsed();
    drop(links);
    let changed = generate::change(&mut snapshot, args.change_percent, args.seed);
    generate::write_json(
        &snapshot,
        std::fs::File::create(dir.join("directory.json"))?,
    )?;
    eprintln!(
        "setup: {} users, {} groups, {changed} changed; store write of the links {:.2} s; {:.1} s in all",
        snapshot.users.len(),
        snapshot.groups.len(),
        write.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// The incremental cycle's work up to the plan, phase by phase, as `scimsync` does it.
fn measure(dir: &Path) -> Result<()> {
    let c = configs()?;
    let t = Instant::now();
    let snapshot = scimsync_directory::read_json(&dir.join("directory.json"))?;
    let read = t.elapsed();

    let t = Instant::now();
    let mapped = scimsync_directory::map(&snapshot, &c.scope, &c.roles, &c.mapping);
    let users = snapshot.users.len();
    let groups = snapshot.groups.len();
    drop(snapshot);
    let map = t.elapsed();

    let t = Instant::now();
    let store = Store::open(&dir.join("state.db"))?;
    let links = store.links()?;
    let load = t.elapsed();

    let t = Instant::now();
    // The incremental view: the target as the links say it is, managed paths only.
    let managed: HashSet<&str> = c.mapping.paths().collect();
    let mut target = TargetView {
        users: links.iter().map(Link::as_target_user).collect(),
        complete: false,
    };
    for user in &mut target.users {
        user.attrs.retain(|path, _| managed.contains(path.as_str()));
    }
    let held: Vec<SourceId> = mapped.invalid.iter().map(|r| r.source_id.clone()).collect();
    let input = PlanInput {
        desired: &mapped.desired,
        out_of_scope: &mapped.out_of_scope,
        held: &held,
        links: &links,
        target: &target,
        guests: &[],
        grace_expired: &[],
    };
    let output = scimsync_plan::plan(&input, &policy());
    let plan = t.elapsed();

    let total = read + map + load + plan;
    let counts = output.plan.counts();
    println!(
        "users={users} groups={groups} links={} ops={} read_s={} map_s={} load_links_s={} plan_s={} total_s={} peak_rss_mib={:.0}",
        links.len(),
        output.plan.ops.len(),
        secs(read),
        secs(map),
        secs(load),
        secs(plan),
        secs(total),
        rss::peak_rss_bytes().map_or(f64::NAN, rss::mib),
    );
    eprintln!("planned: {counts:?}");
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.setup {
        std::fs::create_dir_all(dir)?;
        return setup(&args, dir);
    }
    if let Some(dir) = &args.measure {
        return measure(dir);
    }
    let dir = tempfile::tempdir()?;
    let me = std::env::current_exe().context("locating this benchmark")?;
    for (flag, label) in [("--setup", "setup"), ("--measure", "measure")] {
        let status = std::process::Command::new(&me)
            .args([
                "--users",
                &args.users.to_string(),
                "--groups",
                &args.groups.to_string(),
                "--change-percent",
                &args.change_percent.to_string(),
                "--seed",
                &args.seed.to_string(),
                flag,
            ])
            .arg(dir.path())
            .status()
            .with_context(|| format!("running the {label} phase"))?;
        if !status.success() {
            bail!("the {label} phase failed: {status}");
        }
    }
    Ok(())
}
