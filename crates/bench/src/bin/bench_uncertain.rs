//! Hostile answers and uncertain outcomes (issue 17): the real `scimsync sync --now` against
//! the emulator, measured from outside.
//!
//! 1. Peak memory while every answer is 50 MB (`--answer-mb`): writes answered with a padded
//!    200 announced by Content-Length, the same sent chunked (read up to the cap), and a full
//!    read whose every page is that large; beside a clean cycle of the same size. With
//!    `--uncapped`, the same chunked answers with the cap raised above them, to show what the
//!    cap prevents.
//! 2. The cost of verifying uncertain users: `--uncertain` users marked uncertain in the store
//!    (as a lost answer, a crash or a halt would leave them), then a clean incremental cycle:
//!    the reads it spends per uncertain user, its time, and the next cycle's reads (none).
//!
//! ```sh
//! cargo build --release -p scimsync -p scimsync-bench
//! target/release/bench-uncertain --users 2000 --uncertain 400 --updates 40 --answer-mb 50
//! ```

use anyhow::{Result, bail};
use clap::Parser;
use scimsync_bench::{generate, harness, rss};
use scimsync_emulator::Faults;
use scimsync_model::{OpKind, ResourceKind, ScimId, SourceId, Uncertain};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 2000)]
    users: usize,
    /// Users marked uncertain for the verification cost.
    #[arg(long, default_value_t = 400)]
    uncertain: usize,
    /// Users updated in each hostile-answer cycle.
    #[arg(long, default_value_t = 40)]
    updates: usize,
    /// Size of each hostile answer.
    #[arg(long, default_value_t = 50)]
    answer_mb: u64,
    /// Miro's 30 s window, scaled (emulator limits and client budgets).
    #[arg(long, default_value_t = 3000)]
    window_ms: u64,
    /// Also run the chunked answers with the cap above their size (memory grows with them).
    #[arg(long)]
    uncapped: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The harness's sync.toml with `target_extra`; failures never quarantine (they are the point).
fn config(dir: &Path, base_url: &str, window: Duration, target_extra: &str) -> Result<()> {
    harness::write_config_with(
        dir,
        base_url,
        Some(window),
        target_extra,
        "quarantine_ratio = 1.0",
        "",
    )?;
    Ok(())
}

fn write_directory(dir: &Path, snapshot: &scimsync_model::Snapshot) -> Result<()> {
    generate::write_json(snapshot, std::fs::File::create(dir.join("directory.json"))?)?;
    Ok(())
}

/// Gives `n` users a new department (the first `n`, deterministic), so a cycle updates them.
fn update(snapshot: &mut scimsync_model::Snapshot, n: usize, round: usize) {
    for user in snapshot.users.iter_mut().take(n) {
        user.attrs
            .insert("department".into(), format!("Round {round}"));
    }
}

fn show(label: &str, m: &harness::Measured) {
    println!(
        "{label:<58} exit {}  {:>7.2} s  peak RSS {:>7.1} MiB",
        m.code,
        m.elapsed.as_secs_f64(),
        m.peak_rss.map_or(f64::NAN, rss::mib)
    );
}

fn requests(
    emu: &scimsync_emulator::RunningEmulator,
) -> (u64, std::collections::BTreeMap<String, u64>) {
    let stats = emu.emulator.stats();
    (stats.requests, stats.by_bucket)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let window = Duration::from_millis(args.window_ms);
    let emu = harness::emulator(Some(window)).await?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut snapshot = generate::directory(args.users, 2, args.seed);
    write_directory(dir, &snapshot)?;
    config(dir, &emu.base_url, window, "")?;
    let cfg = dir.join("sync.toml");
    let sync = ["sync", "--now"];

    println!(
        "{} users, window {} ms, answers of {} MB\n",
        args.users, args.window_ms, args.answer_mb
    );
    let first = harness::run_scimsync(&cfg, &sync).await?;
    show("first cycle (creates every user, full read)", &first);
    if first.code != 0 {
        bail!("first cycle exited {}:\n{}", first.code, first.stderr);
    }

    // --- Hostile answers ---
    let bytes = args.answer_mb * 1_000_000;
    let oversized = |chunked: bool| Faults {
        writes_only: true,
        oversized_rate: 1.0,
        oversized_bytes: bytes,
        oversized_chunked: chunked,
        ..Faults::default()
    };
    let mut runs = vec![
        ("clean cycle, the same updates", Faults::default(), ""),
        (
            "writes answered 200 + Content-Length of 50 MB",
            oversized(false),
            "",
        ),
        ("writes answered 200, 50 MB chunked", oversized(true), ""),
    ];
    if args.uncapped {
        runs.push((
            "writes answered 200, 50 MB chunked, cap raised to 64 MiB",
            oversized(true),
            "max_response_bytes = \"64MiB\"",
        ));
    }
    for (round, (label, faults, extra)) in runs.into_iter().enumerate() {
        update(&mut snapshot, args.updates, round + 1);
        write_directory(dir, &snapshot)?;
        config(dir, &emu.base_url, window, extra)?;
        // Under the cap, every write answered 50 MB fails (exit 3); above it, they are read.
        let capped = faults.writes_only && extra.is_empty();
        emu.emulator.set_faults(faults);
        let m = harness::run_scimsync(&cfg, &sync).await?;
        emu.emulator.set_faults(Faults::default());
        show(label, &m);
        if capped && m.code != 3 {
            bail!(
                "hostile answers should fail the writes (exit 3):\n{}",
                m.stderr
            );
        }
        // The next, clean cycle verifies the users left uncertain.
        config(dir, &emu.base_url, window, "")?;
        let settle = harness::run_scimsync(&cfg, &sync).await?;
        if settle.code != 0 {
            bail!(
                "settling after {label} exited {}:\n{}",
                settle.code,
                settle.stderr
            );
        }
    }
    emu.emulator.set_faults(Faults {
        oversized_rate: 1.0,
        oversized_bytes: bytes,
        oversized_chunked: true,
        ..Faults::default()
    });
    let full = harness::run_scimsync(&cfg, &["sync", "--now", "--full"]).await?;
    emu.emulator.set_faults(Faults::default());
    show("full read, every page 50 MB chunked", &full);
    if full.code != 1 || !full.stderr.contains("max_response_bytes") {
        bail!("the full read should fail on the cap:\n{}", full.stderr);
    }

    // --- Verification cost ---
    // A clean cycle with nothing uncertain reads nothing.
    emu.emulator.reset_stats();
    let quiet = harness::run_scimsync(&cfg, &sync).await?;
    let (quiet_requests, _) = requests(&emu);
    show("clean cycle, nothing changed, nothing uncertain", &quiet);

    let k = args.uncertain.min(args.users);
    {
        let mut store = scimsync_store::Store::open(&dir.join("state.db"))?;
        let links = store.links()?;
        for link in links.iter().take(k) {
            store.mark_uncertain(
                None,
                &Uncertain {
                    kind: ResourceKind::User,
                    source_id: SourceId::new(link.source_id.as_str()),
                    target_id: Some(ScimId::new(link.target_id.as_str())),
                    name: link.user_name.clone(),
                    op: OpKind::Update,
                    reason: "benchmark".into(),
                },
            )?;
        }
    }
    emu.emulator.reset_stats();
    let started = Instant::now();
    let verify = harness::run_scimsync(&cfg, &sync).await?;
    let verify_time = started.elapsed();
    let (verify_requests, verify_buckets) = requests(&emu);
    show(
        &format!("clean cycle verifying {k} uncertain users"),
        &verify,
    );
    emu.emulator.reset_stats();
    let after = harness::run_scimsync(&cfg, &sync).await?;
    let (after_requests, _) = requests(&emu);
    show("the next clean cycle", &after);

    let reads = verify_buckets.get("users_get").copied().unwrap_or(0);
    println!();
    println!("requests, clean cycle with nothing uncertain: {quiet_requests}");
    println!(
        "requests, clean cycle with {k} uncertain users: {verify_requests} ({verify_buckets:?})"
    );
    println!(
        "reads per uncertain user: {:.2}; {:.1} ms each on average, paced at 200 per window of {} ms",
        reads as f64 / k.max(1) as f64,
        verify_time.as_secs_f64() * 1000.0 / k.max(1) as f64,
        args.window_ms
    );
    println!("requests, the cycle after: {after_requests}");
    if quiet_requests != 0 || after_requests != 0 || reads != k as u64 {
        bail!("unexpected request counts");
    }
    Ok(())
}
