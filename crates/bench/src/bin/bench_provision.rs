//! Provisioning throughput under Miro's budgets: the real `scimsync sync --now` creates N users
//! in an empty emulated org whose limits run on a scaled window, and the achieved time is
//! compared with the least time the budgets allow.
//!
//! ```sh
//! cargo build --release -p scimsync
//! cargo run --release -p scimsync-bench --bin bench-provision -- --users 2000 --window-ms 3000
//! ```

use anyhow::{Result, bail};
use clap::Parser;
use scimsync_bench::{generate, harness};
use scimsync_scim::{Bucket, Budgets};
use std::time::Duration;

#[derive(Parser)]
struct Args {
    /// Users to create.
    #[arg(long, default_value_t = 2000)]
    users: usize,
    /// Miro's 30 s window, scaled (both the emulator's limits and the client's budgets).
    #[arg(long, default_value_t = 3000)]
    window_ms: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let window = Duration::from_millis(args.window_ms);
    let budgets = Budgets::miro_scaled(window);
    let emu = harness::emulator(Some(window)).await?;
    let dir = tempfile::tempdir()?;
    let snapshot = generate::directory(args.users, 2, args.seed);
    generate::write_json(
        &snapshot,
        std::fs::File::create(dir.path().join("directory.json"))?,
    )?;
    let config = harness::write_config(dir.path(), &emu.base_url, Some(window))?;

    let run = harness::run_scimsync(&config, &["sync", "--now"]).await?;
    if run.code != 0 {
        bail!("scimsync sync exited {}:\n{}", run.code, run.stderr);
    }
    let stats = emu.emulator.stats();
    let created = emu.emulator.users().len();

    // Each bucket alone needs requests/budget windows; buckets run concurrently, so the
    // plan's floor is the slowest bucket's.
    let mut bound = Duration::ZERO;
    println!("bucket               requests  budget  windows  max_in_window");
    for (name, &requests) in &stats.by_bucket {
        let budget = Bucket::parse(name).and_then(|b| budgets.limit(b));
        let windows = budget.map(|n| requests as f64 / f64::from(n));
        if let Some(w) = windows {
            bound = bound.max(window.mul_f64(w));
        }
        let max = stats.max_in_window.get(name).copied().unwrap_or(0);
        println!(
            "{name:<20} {requests:>8}  {:>6}  {:>7}  {max:>5} / {}",
            budget.map_or("-".into(), |n| n.to_string()),
            windows.map_or("-".into(), |w| format!("{w:.2}")),
            budget.map_or("-".into(), |n| n.to_string()),
        );
        if let Some(n) = budget
            && max > u64::from(n)
        {
            bail!("{name}: {max} requests in one window exceed the budget of {n}");
        }
    }
    let ratio = bound.as_secs_f64() / run.elapsed.as_secs_f64();
    println!("users created        {created} of {}", args.users);
    println!(
        "elapsed              {:.2} s (whole process: start, read, plan, writes, store)",
        run.elapsed.as_secs_f64()
    );
    println!(
        "lower bound          {:.2} s ({:.2} windows of {} ms)",
        bound.as_secs_f64(),
        bound.as_secs_f64() / window.as_secs_f64(),
        args.window_ms
    );
    println!("achieved / bound     {ratio:.3}");
    println!(
        "429s received        {} (budget) + {} (injected)",
        stats.rate_limited, stats.injected_429
    );
    if let Some(rss) = run.peak_rss {
        println!(
            "scimsync peak RSS    {:.1} MiB",
            scimsync_bench::rss::mib(rss)
        );
    }
    let summary = run
        .stderr
        .lines()
        .filter(|l| {
            l.starts_with("run ") || l.starts_with("  users_") || l.starts_with("  groups_")
        })
        .collect::<Vec<_>>()
        .join("\n");
    println!("scimsync's summary:\n{summary}");
    emu.shutdown().await;
    if created != args.users {
        bail!("{created} users created, {} expected", args.users);
    }
    if stats.rate_limited > 0 {
        bail!("{} 429s received", stats.rate_limited);
    }
    Ok(())
}
