//! A no-change incremental cycle over a large directory: what scimsync costs when nothing
//! changed. A first (full) cycle provisions N users into the emulator with the client's budgets
//! scaled out of the way; the measured second cycle runs under Miro's real 30 s budgets and
//! should send no write and no request at all (every user is linked and unchanged).
//!
//! ```sh
//! cargo build --release -p scimsync
//! cargo run --release -p scimsync-bench --bin bench-incremental -- --users 100000
//! ```
//!
//! To attribute the measured cycle's cost, the same state can be cycled again, after the
//! measured run, in the same process (the emulator lives here):
//! - `--repeat N`: N more identical cycles, one result line each (run-to-run spread);
//! - `--timeline`: one more cycle with `RUST_LOG=info,scimsync_executor=debug`, its log lines
//!   printed with their offset from the spawn (cycle start event, each SCIM request, each
//!   executor event, cycle end event, then the exit);
//! - `--wrap 'perf record -g --call-graph dwarf -o /tmp/incr.perf.data'`: one more cycle under
//!   that command (split on whitespace), e.g. a profiler or `strace -f -tt -o FILE`;
//! - `--hold`: keep the emulator and the state directory until Ctrl-C (SIGINT), printing how to
//!   run scimsync against them by hand.

use anyhow::{Result, bail};
use clap::Parser;
use scimsync_bench::{generate, harness, rss};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    #[arg(long, default_value_t = 100)]
    groups: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run the measured cycle this many more times.
    #[arg(long, default_value_t = 0)]
    repeat: usize,
    /// One more cycle at RUST_LOG=info,scimsync_executor=debug, its log lines timed from spawn.
    #[arg(long)]
    timeline: bool,
    /// One more cycle under this command (split on whitespace), e.g. a profiler.
    #[arg(long)]
    wrap: Option<String>,
    /// Keep the emulator and state until SIGINT, for running scimsync by hand.
    #[arg(long)]
    hold: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let emu = harness::emulator(None).await?;
    let dir = tempfile::tempdir()?;
    let snapshot = generate::directory(args.users, args.groups, args.seed);
    generate::write_json(
        &snapshot,
        std::fs::File::create(dir.path().join("directory.json"))?,
    )?;
    drop(snapshot);

    // Setup: the first cycle creates everyone. Budgets over 1 ms are no limit at all.
    let config = harness::write_config(dir.path(), &emu.base_url, Some(Duration::from_millis(1)))?;
    let first = harness::run_scimsync(&config, &["sync", "--now"]).await?;
    if first.code != 0 {
        bail!("first cycle exited {}:\n{}", first.code, first.stderr);
    }
    let created = emu.emulator.users().len();
    eprintln!(
        "setup: first cycle created {created} users in {:.1} s",
        first.elapsed.as_secs_f64()
    );

    // Measured: Miro's real budgets, nothing changed.
    let config = harness::write_config(dir.path(), &emu.base_url, None)?;
    measured(
        &emu,
        &config,
        args.users,
        &harness::RunOptions::default(),
        "",
    )
    .await?;
    for i in 0..args.repeat {
        let label = format!(" repeat={}", i + 1);
        measured(
            &emu,
            &config,
            args.users,
            &harness::RunOptions::default(),
            &label,
        )
        .await?;
    }
    if args.timeline {
        timeline(&emu, &config).await?;
    }
    if let Some(wrap) = &args.wrap {
        let options = harness::RunOptions {
            wrapper: wrap.split_whitespace().map(str::to_owned).collect(),
            ..Default::default()
        };
        measured(&emu, &config, args.users, &options, " wrapped=1").await?;
    }
    if args.hold {
        eprintln!(
            "holding: BENCH_SCIM_TOKEN={} {} --config {} sync --now   (Ctrl-C / SIGINT {} to stop)",
            harness::TOKEN,
            harness::scimsync_bin()?.display(),
            config.display(),
            std::process::id(),
        );
        tokio::signal::ctrl_c().await?;
    }
    emu.shutdown().await;
    Ok(())
}

/// One no-change cycle: its result line on stdout (requests and writes as the emulator saw
/// them), scimsync's stderr after it.
async fn measured(
    emu: &scimsync_emulator::RunningEmulator,
    config: &Path,
    users: usize,
    options: &harness::RunOptions,
    label: &str,
) -> Result<harness::Measured> {
    let before = emu.emulator.stats();
    let run = harness::run_scimsync_with(config, &["sync", "--now"], options).await?;
    let after = emu.emulator.stats();
    if run.code != 0 {
        bail!("incremental cycle exited {}:\n{}", run.code, run.stderr);
    }
    println!(
        "users={} requests={} writes={} wall_s={:.2} peak_rss_mib={:.0}{label}",
        users,
        after.requests - before.requests,
        after.writes - before.writes,
        run.elapsed.as_secs_f64(),
        run.peak_rss.map_or(f64::NAN, rss::mib),
    );
    eprintln!("{}", run.stderr.trim_end());
    Ok(run)
}

/// One more cycle with info logs and the executor's request logs; each line that starts with a
/// timestamp is printed with its offset from the spawn, and the exit last.
async fn timeline(emu: &scimsync_emulator::RunningEmulator, config: &Path) -> Result<()> {
    let options = harness::RunOptions {
        env: vec![("RUST_LOG".into(), "info,scimsync_executor=debug".into())],
        ..Default::default()
    };
    let spawned = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let before = emu.emulator.stats();
    let run = harness::run_scimsync_with(config, &["sync", "--now"], &options).await?;
    let after = emu.emulator.stats();
    let spawned_of_day = spawned.as_secs_f64() % 86_400.0;
    println!(
        "timeline: requests={} writes={} wall_s={:.3} peak_rss_mib={:.0}",
        after.requests - before.requests,
        after.writes - before.writes,
        run.elapsed.as_secs_f64(),
        run.peak_rss.map_or(f64::NAN, rss::mib),
    );
    for line in run.stderr.lines() {
        match line.split_whitespace().next().and_then(seconds_of_day) {
            Some(at) => {
                let offset = (at - spawned_of_day).rem_euclid(86_400.0);
                println!(
                    "  {:>8.1} ms  {}",
                    offset * 1000.0,
                    &line[line.find(' ').unwrap_or(0)..].trim_start()
                );
            }
            None => println!("               {line}"),
        }
    }
    println!(
        "  {:>8.1} ms  exit {}",
        run.elapsed.as_secs_f64() * 1000.0,
        run.code
    );
    Ok(())
}

/// Seconds since midnight UTC of an RFC 3339 UTC timestamp as tracing prints it
/// (`2026-11-24T21:02:22.722131Z`).
fn seconds_of_day(ts: &str) -> Option<f64> {
    let time = ts.split_once('T')?.1.strip_suffix('Z')?;
    let mut parts = time.splitn(3, ':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}
