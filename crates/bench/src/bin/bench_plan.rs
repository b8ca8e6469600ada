//! Planner scale: an incremental cycle's work up to the plan, without the network, through the
//! product's own path: `scimsync_engine::prepare` over N users and G groups planned against
//! the state a first cycle leaves (N links, one group link per team), with
//! `--change-percent` of the users changed in the directory. The engine's phase spans
//! (`crate::phases`) say where the time goes.
//!
//! Two processes, so the peak RSS is the measured phase's alone: `--setup DIR` generates the
//! directory and writes the links to DIR/state.db; `--measure DIR` prepares the cycle and
//! reports wall time per phase and VmHWM. Without either, both run in turn. The target is an
//! emulator in process; an incremental cycle over a directory whose users are all linked sends
//! it no request (`requests=` says so).
//!
//! ```sh
//! cargo run --release -p scimsync-bench --bin bench-plan -- --users 1000000 --groups 10000 --change-percent 1
//! ```

use anyhow::{Context, Result, bail};

// The allocator `scimsync` uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use scimsync_bench::cpu::Phase;
use scimsync_bench::phases::{Phases, Timed};
use scimsync_bench::{generate, harness, rss};
use scimsync_engine::Config;
use scimsync_model::{GroupLink, Link, ScimId, SourceId};
use scimsync_store::Store;
use std::collections::HashMap;
use std::path::Path;
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
    setup: Option<std::path::PathBuf>,
    /// Only measure, on inputs a `--setup` wrote into DIR.
    #[arg(long)]
    measure: Option<std::path::PathBuf>,
    /// Set up links without record stamps, as before the first incremental cycle over a
    /// directory (or after a change of mapping): every record is parsed and mapped.
    #[arg(long, requires = "setup")]
    no_stamps: bool,
}

/// The benchmarks' sync.toml (`harness::write_config`: scope "Miro Users", admins "Miro
/// Admins", JumpCloud names, Miro's team model) with every generated team synced, against
/// `base_url`; loaded as `scimsync` loads it.
fn config(dir: &Path, base_url: &str, groups: usize) -> Result<Config> {
    let teams: Vec<String> = (0..groups.saturating_sub(2))
        .map(|g| format!("\"Team {g}\""))
        .collect();
    let synced = format!("\n[groups]\nsync = [{}]\n", teams.join(", "));
    let path = harness::write_config_with(dir, base_url, None, "", "", &synced)?;
    Ok(Config::load(&path)?)
}

/// An emulator on 127.0.0.1 and a runtime to drive the engine with.
fn target() -> Result<(tokio::runtime::Runtime, scimsync_emulator::RunningEmulator)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let emu = runtime.block_on(harness::emulator(None))?;
    Ok((runtime, emu))
}

/// The links a first cycle would have stored for the base directory (mapped with the
/// product's mapping), their record stamps unless `--no-stamps` (stored by an incremental
/// cycle over the unchanged directory, as `scimsync` stores them), then the changed directory.
fn setup(args: &Args, dir: &Path) -> Result<()> {
    let started = Instant::now();
    let (runtime, emu) = target()?;
    let config = config(dir, &emu.base_url, args.groups)?;
    let mut snapshot = generate::directory(args.users, args.groups, args.seed);
    let mapping = scimsync_engine::discovery::base_mapping(&config)?;
    let mapped = scimsync_directory::map(&snapshot, &config.scope, &config.roles, &mapping);
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
    // The teams as a first cycle would have filled and linked them.
    let target_of: HashMap<&SourceId, &ScimId> =
        links.iter().map(|l| (&l.source_id, &l.target_id)).collect();
    let group_links: Vec<GroupLink> =
        scimsync_directory::desired_groups(&snapshot, &config.groups, &config.scope, &mapped)
            .into_iter()
            .enumerate()
            .map(|(i, g)| {
                let mut members: Vec<ScimId> = g
                    .members
                    .iter()
                    .filter_map(|m| target_of.get(m).map(|id| (*id).clone()))
                    .collect();
                members.sort();
                GroupLink {
                    source_id: g.source_id,
                    target_id: ScimId::new(format!("g{i:031x}")),
                    display_name: g.display_name,
                    members,
                }
            })
            .collect();
    drop(target_of);
    drop(mapped);
    let db = config.state_path();
    let _ = std::fs::remove_file(&db);
    let mut store = Store::open(&db)?;
    let write = Instant::now();
    store.upsert_links(&links)?;
    for link in &group_links {
        store.upsert_group_link(link)?;
    }
    let write = write.elapsed();
    drop(links);
    let path = dir.join("directory.json");
    let mut stamped = 0;
    let mut stamping = Duration::ZERO;
    if !args.no_stamps {
        // An incremental cycle over the unchanged directory: it plans nothing (the links are
        // what the product's mapping gives) and stores a stamp per link after its writes.
        generate::write_json(&snapshot, std::fs::File::create(&path)?)?;
        let client = scimsync_engine::target::client(&config, config.token()?)?;
        let prepared = runtime.block_on(scimsync_engine::prepare(
            &config, &store, &client, false, false,
        ))?;
        let writes = prepared.plan().writes();
        if writes > 0 {
            bail!("the unchanged directory plans {writes} writes: the links are not the product's");
        }
        let started = Instant::now();
        stamped = store.stamp_records(&prepared.stamps)?;
        stamping = started.elapsed();
    }
    let changed = generate::change(&mut snapshot, args.change_percent, args.seed);
    generate::write_json(&snapshot, std::fs::File::create(&path)?)?;
    eprintln!(
        "setup: {} users, {} groups, {changed} changed, {stamped} links stamped in {:.2} s; store write of the links {:.2} s; {:.1} s in all",
        snapshot.users.len(),
        snapshot.groups.len(),
        stamping.as_secs_f64(),
        write.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    runtime.block_on(emu.shutdown());
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// An incremental cycle up to the plan, as `scimsync plan` and `sync` prepare it.
fn measure(dir: &Path, groups: usize) -> Result<()> {
    let phases = Phases::install()?;
    let (runtime, emu) = target()?;
    let config = config(dir, &emu.base_url, groups)?;
    let store = Store::open(&config.state_path())?;
    let client = scimsync_engine::target::client(&config, config.token()?)?;
    let before = emu.emulator.stats().requests;

    let t = Phase::start();
    let prepared = runtime.block_on(scimsync_engine::prepare(
        &config, &store, &client, false, false,
    ))?;
    let (total, total_cpu) = t.end();
    let requests = emu.emulator.stats().requests - before;
    let timed = phases.take();

    // discover (nothing to read for Miro's documented profile) counts with the read.
    let phase = |names: &[&str]| -> (Duration, Duration) {
        timed
            .iter()
            .filter(|t| names.contains(&t.name))
            .fold((Duration::ZERO, Duration::ZERO), |(w, c), t| {
                (w + t.wall, c + t.cpu)
            })
    };
    let (read, read_cpu) = phase(&["discover", "read"]);
    let (map, map_cpu) = phase(&["map"]);
    let (settle, settle_cpu) = phase(&["settle"]);
    let (plan, plan_cpu) = phase(&["plan"]);
    let mib = |name: &str| {
        timed
            .iter()
            .find(|t: &&Timed| t.name == name)
            .and_then(|t| t.rss)
            .map_or(f64::NAN, rss::mib)
    };
    let plan_out = prepared.plan();
    let attrs_loaded = prepared
        .links
        .iter()
        .filter(|l| !l.attrs.is_empty())
        .count();
    println!(
        "users={} synced_groups={} links={} to_stamp={} attrs_loaded={attrs_loaded} ops={} requests={requests} read_s={} map_s={} settle_s={} plan_s={} total_s={} peak_rss_mib={:.0} cpu: read_s={} map_s={} settle_s={} plan_s={} total_s={}",
        prepared.directory_users,
        prepared.groups.links.len(),
        prepared.links.len(),
        prepared.stamps.len(),
        plan_out.ops.len(),
        secs(read),
        secs(map),
        secs(settle),
        secs(plan),
        secs(total),
        rss::peak_rss_bytes().map_or(f64::NAN, rss::mib),
        secs(read_cpu),
        secs(map_cpu),
        secs(settle_cpu),
        secs(plan_cpu),
        secs(total_cpu),
    );
    eprintln!("planned: {:?}", plan_out.counts());
    eprintln!(
        "rss after: read {:.0} MiB, map (snapshot dropped) {:.0} MiB, settle {:.0} MiB, plan {:.0} MiB",
        mib("read"),
        mib("map"),
        mib("settle"),
        mib("plan"),
    );
    if requests > 0 {
        bail!("the incremental cycle sent {requests} requests to the target");
    }
    drop(prepared);
    runtime.block_on(emu.shutdown());
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.setup {
        std::fs::create_dir_all(dir)?;
        return setup(&args, dir);
    }
    if let Some(dir) = &args.measure {
        return measure(dir, args.groups);
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
