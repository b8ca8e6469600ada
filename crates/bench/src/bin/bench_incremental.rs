//! A no-change incremental cycle over a large directory: what scimsync costs when nothing
//! changed. A first (full) cycle provisions N users into the emulator with the client's budgets
//! scaled out of the way; the measured second cycle runs under Miro's real 30 s budgets and
//! should send no write and no request at all (every user is linked and unchanged).
//!
//! ```sh
//! cargo build --release -p scimsync
//! cargo run --release -p scimsync-bench --bin bench-incremental -- --users 100000
//! ```

use anyhow::{Result, bail};
use clap::Parser;
use scimsync_bench::{generate, harness, rss};
use std::time::Duration;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    #[arg(long, default_value_t = 100)]
    groups: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
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
    let before = emu.emulator.stats();
    let run = harness::run_scimsync(&config, &["sync", "--now"]).await?;
    let after = emu.emulator.stats();
    if run.code != 0 {
        bail!("incremental cycle exited {}:\n{}", run.code, run.stderr);
    }
    println!(
        "users={} requests={} writes={} wall_s={:.2} peak_rss_mib={:.0}",
        args.users,
        after.requests - before.requests,
        after.writes - before.writes,
        run.elapsed.as_secs_f64(),
        run.peak_rss.map_or(f64::NAN, rss::mib),
    );
    eprintln!("{}", run.stderr.trim_end());
    emu.shutdown().await;
    Ok(())
}
