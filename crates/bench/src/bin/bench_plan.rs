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

// The allocator `scimsync` uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use scimsync_bench::cpu::Phase;
use scimsync_bench::{generate, rss};
use scimsync_directory::{
    GroupsConfig, Mapping, MappingConfig, RolesConfig, Scan, ScannedJson, ScopeConfig, StampedUser,
};
use scimsync_model::{
    Claims, GroupLink, GroupView, Link, ScimId, Snapshot, SourceGroup, SourceId, TargetView,
};
use scimsync_plan::{GroupPlanInput, LiveLinks, OnDelete, OnUnassign, PlanInput, Policy, Settled};
use scimsync_scim::Profile;
use scimsync_store::{LinkHeads, StampedLink, Store};
use std::collections::{HashMap, HashSet};
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
    /// Set up links without record stamps, as before the first incremental cycle over a
    /// directory (or after a change of mapping): every record is parsed and mapped.
    #[arg(long, requires = "setup")]
    no_stamps: bool,
}

struct Configs {
    scope: ScopeConfig,
    roles: RolesConfig,
    mapping: Mapping,
    groups: GroupsConfig,
}

/// The generated teams ("Team 0", …) are synced; the scope and admin groups are not.
fn synced_groups(groups: usize) -> GroupsConfig {
    GroupsConfig {
        sync: Some(
            (0..groups.saturating_sub(2))
                .map(|g| format!("Team {g}"))
                .collect(),
        ),
        ..GroupsConfig::default()
    }
}

/// What the benchmarks' sync.toml says: scope "Miro Users", admins "Miro Admins", JumpCloud
/// names, every generated team synced.
fn configs(groups: usize) -> Result<Configs> {
    Ok(Configs {
        scope: ScopeConfig {
            groups: Some(vec![generate::SCOPE_GROUP.to_owned()]),
            ..ScopeConfig::default()
        },
        roles: RolesConfig {
            admin_groups: vec![generate::ADMIN_GROUP.to_owned()],
        },
        mapping: Mapping::compile(&MappingConfig::default())?,
        groups: synced_groups(groups),
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
    let c = configs(args.groups)?;
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
    // The teams as a first cycle would have filled and linked them.
    let target_of: HashMap<&SourceId, &ScimId> =
        links.iter().map(|l| (&l.source_id, &l.target_id)).collect();
    let group_links: Vec<GroupLink> =
        scimsync_directory::desired_groups(&snapshot, &c.groups, &c.scope, &mapped)
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
    let db = dir.join("state.db");
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
        // The record stamps an incremental cycle over the unchanged directory stores.
        generate::write_json(&snapshot, std::fs::File::create(&path)?)?;
        let Loaded { scanned, heads, .. } = load(&store, &path, &c)?;
        let live = LiveLinks::with_stamps(&heads.links, &heads.stamps);
        let (mut mapped, claims, ..) = resolve_and_map(scanned, &live, &c)?;
        let Settled { stamps, .. } = live.settle(&mut mapped.desired, claims)?;
        let stamps: Vec<StampedLink> = stamps
            .into_iter()
            .map(|(link, stamp)| StampedLink::proved(link, stamp))
            .collect();
        let started = Instant::now();
        stamped = store.stamp_records(&stamps)?;
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
    Ok(())
}

/// The directory keyed and the link heads loaded, as an incremental `scimsync` cycle does it
/// (crates/cli/src/source.rs): the users array keyed on one thread while this one loads the
/// link heads.
struct Loaded {
    scanned: ScannedJson,
    heads: LinkHeads,
    scan: Duration,
    heads_time: Duration,
}

fn load(store: &Store, path: &Path, c: &Configs) -> Result<Loaded> {
    let context = c.mapping.record_context(&c.scope);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let started = Instant::now();
            (
                scimsync_directory::scan_json(path, &context),
                started.elapsed(),
            )
        });
        let started = Instant::now();
        let heads = store.link_heads()?;
        let heads_time = started.elapsed();
        let (scanned, scan) = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reader panicked"))?;
        let Scan::Keyed(scanned) = scanned? else {
            bail!("the generated directory was not keyed");
        };
        Ok(Loaded {
            scanned,
            heads,
            scan,
            heads_time,
        })
    })
}

/// Then only the records no stamp recognises parsed, and all mapped: the mapped users, the
/// links' claims, the groups, how many users and how many were parsed.
fn resolve_and_map(
    scanned: ScannedJson,
    live: &LiveLinks<'_>,
    c: &Configs,
) -> Result<(
    scimsync_directory::Mapped,
    Claims,
    Vec<SourceGroup>,
    usize,
    usize,
)> {
    let keyed = scanned.resolve(&c.roles, |key| {
        live.stamped(key)
            .map(|(handle, link, stamp)| StampedUser::of(handle, link, stamp))
    })?;
    let users = keyed.snapshot.users.len();
    let parsed = keyed.records.iter().filter(|r| r.known.is_none()).count();
    let (mapped, claims, groups) =
        scimsync_directory::map_keyed(keyed, &c.scope, &c.roles, &c.mapping, live);
    Ok((mapped, claims, groups, users, parsed))
}

fn now_mib() -> f64 {
    rss::current_rss_bytes().map_or(f64::NAN, rss::mib)
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// What the phases before planning leave, and what they took (wall, CPU).
struct Measured {
    users: usize,
    groups: usize,
    mapped: scimsync_directory::Mapped,
    desired_groups: Vec<scimsync_model::DesiredGroup>,
    links: Vec<Link>,
    unchanged: scimsync_plan::Proof,
    group_links: Vec<GroupLink>,
    filled: usize,
    parsed: usize,
    stamped: usize,
    parse: Duration,
    heads: Duration,
    read: (Duration, Duration),
    map: (Duration, Duration),
    load: (Duration, Duration),
    rss: [f64; 3],
}

/// The incremental cycle's work up to the plan, phase by phase, as `scimsync` does it.
fn measure(dir: &Path, groups: usize) -> Result<()> {
    let c = configs(groups)?;
    let store = Store::open(&dir.join("state.db"))?;
    // As `scimsync` does (crates/cli/src/source.rs): the users array is keyed on its own
    // thread while this one loads and indexes the link heads; the records no stamp recognises
    // are parsed, and mapping compares each with what was last pushed; the unchanged users are
    // settled, then the synced groups are built while the changed users' pushed attributes
    // are decoded and the group links loaded.
    let t = Phase::start();
    let Loaded {
        scanned,
        heads: LinkHeads { mut links, stamps },
        scan,
        heads_time,
    } = load(&store, &dir.join("directory.json"), &c)?;
    let measured = {
        let live = LiveLinks::with_stamps(&links, &stamps);
        let read = t.end();
        let rss_read = now_mib();

        let t = Phase::start();
        let (mut mapped, claims, source_groups, users, parsed) =
            resolve_and_map(scanned, &live, &c)?;
        let map = t.end();
        let rss_map = now_mib();

        let t = Phase::start();
        let groups = source_groups.len();
        let rest = Snapshot {
            users: Vec::new(),
            groups: source_groups,
        };
        // The proof, and the stamps `scimsync` would store after the cycle
        // (`source::Directory::stamps`).
        let Settled {
            proof: unchanged,
            stamps: to_stamp,
        } = live.settle(&mut mapped.desired, claims)?;
        let to_stamp: Vec<StampedLink> = to_stamp
            .into_iter()
            .map(|(link, stamp)| StampedLink::proved(link, stamp))
            .collect();
        let stamped = to_stamp.len();
        // Every synced team is linked: as in `scimsync`, the incremental group view is empty
        // and the planner takes each linked team as its link says (no request).
        let (desired_groups, filled, group_links) = std::thread::scope(|inner| {
            let groups = inner
                .spawn(|| scimsync_directory::desired_groups(&rest, &c.groups, &c.scope, &mapped));
            let filled = store.fill_link_attrs(&mut links, |at, _| !unchanged.link(at));
            let group_links = store.group_links();
            let groups = groups
                .join()
                .map_err(|_| anyhow::anyhow!("desired_groups panicked"));
            anyhow::Ok((groups?, filled?, group_links?))
        })?;
        drop(rest);
        drop(stamps);
        let load = t.end();
        let rss_load = now_mib();
        Measured {
            users,
            groups,
            mapped,
            desired_groups,
            links,
            unchanged,
            group_links,
            filled,
            parsed,
            stamped,
            parse: scan,
            heads: heads_time,
            read,
            map,
            load,
            rss: [rss_read, rss_map, rss_load],
        }
    };
    let Measured {
        users,
        groups,
        mapped,
        desired_groups,
        mut links,
        unchanged,
        group_links,
        filled,
        parsed,
        stamped,
        parse,
        heads: heads_only,
        read: (read, read_cpu),
        map: (map, map_cpu),
        load: (load, load_cpu),
        rss: [rss_read, rss_map, rss_load],
    } = measured;
    let group_view = GroupView {
        groups: Vec::new(),
        complete: false,
    };

    let t = Phase::start();
    // As `scimsync` prepares an incremental cycle: managed paths only, and a target view of
    // lookups (none: every user is linked), the links standing for the linked users.
    let managed: HashSet<&str> = c.mapping.paths().collect();
    for link in &mut links {
        link.attrs.retain(|path, _| managed.contains(path.as_str()));
    }
    // Every generated user is linked: nobody to look up.
    let unlinked = scimsync_plan::unlinked(&mapped.desired, &links, Some(&unchanged)).len();
    if unlinked > 0 {
        bail!("{unlinked} desired users have no link: the bench's target view would need lookups");
    }
    let target = TargetView {
        users: Vec::new(),
        complete: false,
    };
    let held: Vec<SourceId> = mapped.invalid.iter().map(|r| r.source_id.clone()).collect();
    let input = PlanInput {
        desired: &mapped.desired,
        out_of_scope: &mapped.out_of_scope,
        held: &held,
        links: &links,
        target: &target,
        guests: &[],
        grace_expired: &[],
        unchanged: Some(&unchanged),
    };
    let group_input = GroupPlanInput {
        desired: &desired_groups,
        links: &group_links,
        target: &group_view,
        user_links: &links,
        held: &held,
        can_create: false,
        name_match: c.groups.name_match,
    };
    let output = scimsync_plan::plan_with_groups(&input, &group_input, &policy());
    let (plan, plan_cpu) = t.end();

    let total = read + map + load + plan;
    let total_cpu = read_cpu + map_cpu + load_cpu + plan_cpu;
    let counts = output.plan.counts();
    println!(
        "users={users} groups={groups} synced_groups={} links={} parsed={parsed} to_stamp={stamped} attrs_loaded={filled} ops={} read_s={} (keying {}, heads {}) map_s={} settle_s={} plan_s={} total_s={} peak_rss_mib={:.0} cpu: read_s={} map_s={} settle_s={} plan_s={} total_s={}",
        group_links.len(),
        links.len(),
        output.plan.ops.len(),
        secs(read),
        secs(parse),
        secs(heads_only),
        secs(map),
        secs(load),
        secs(plan),
        secs(total),
        rss::peak_rss_bytes().map_or(f64::NAN, rss::mib),
        secs(read_cpu),
        secs(map_cpu),
        secs(load_cpu),
        secs(plan_cpu),
        secs(total_cpu),
    );
    eprintln!("planned: {counts:?}");
    eprintln!(
        "rss after: read {rss_read:.0} MiB, map (snapshot dropped) {rss_map:.0} MiB, load {rss_load:.0} MiB, plan {:.0} MiB",
        now_mib()
    );
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
