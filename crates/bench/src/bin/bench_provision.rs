//! Throughput under Miro's budgets: the real `scimsync sync --now` against an emulated org whose
//! limits run on a (possibly scaled) window, measured against the **burst bound**: n requests of
//! a bucket allowed N per window need `(n - 1) div N` windows from the first to the last, because
//! an SP counting per fixed window, per sliding window or with a token bucket of that size lets a
//! whole budget through at once. The bound of a cycle is its slowest bucket's; the ratio printed
//! is bound / elapsed (1.0 is the floor's own time; the time to send one burst and the process's
//! start, read, plan and store are in elapsed but not in the bound, so it stays below 1).
//!
//! ```sh
//! cargo build --release -p scimsync -p scimsync-bench
//! ./target/release/bench-provision --op create --users 600 --window-ms 30000
//! ./target/release/bench-provision --op create --users 2000 --window-ms 3000
//! ./target/release/bench-provision --op update --users 1000 --window-ms 3000
//! ./target/release/bench-provision --op delete --users 1000 --count 100 --window-ms 3000
//! ```
//!
//! `create` measures the first cycle into an empty org. `update` and `delete` first provision
//! the org with no limits at all (the emulator's off, the client's over 1 ms), then change the
//! directory (every user's department, or the last `--count` users gone with
//! `on_delete = "delete"`) and measure the incremental cycle with the limits on.

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use scimsync_bench::{generate, harness};
use scimsync_emulator::RateLimits;
use scimsync_model::SourceId;
use scimsync_scim::{Bucket, Budgets};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Operation {
    /// Create `--users` users in an empty org (a POST each).
    Create,
    /// Change the department of `--count` of `--users` provisioned users (a PATCH each).
    Update,
    /// Remove `--count` of `--users` provisioned users from the directory (a DELETE each).
    Delete,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum, default_value = "create")]
    op: Operation,
    /// Users in the directory.
    #[arg(long, default_value_t = 2000)]
    users: usize,
    /// Users updated or deleted (default: every user for update, 100 for delete).
    #[arg(long)]
    count: Option<usize>,
    /// Miro's 30 s window, or a scaled one (both the emulator's limits and the client's budgets).
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
    let count = match args.op {
        Operation::Create => args.users,
        Operation::Update => args.count.unwrap_or(args.users).min(args.users),
        Operation::Delete => args.count.unwrap_or(100).min(args.users),
    };
    let limited = Some(RateLimits::miro_scaled(window));
    let emu = harness::emulator(None).await?;
    let dir = tempfile::tempdir()?;
    let policy = if args.op == Operation::Delete {
        "on_delete = \"delete\""
    } else {
        ""
    };
    let mut snapshot = generate::directory(args.users, 2, args.seed);
    write_directory(dir.path(), &snapshot)?;

    if args.op != Operation::Create {
        // Setup: everyone provisioned, nothing limited (budgets over 1 ms are no limit at all).
        let config = harness::write_config_with(
            dir.path(),
            &emu.base_url,
            Some(Duration::from_millis(1)),
            "",
            policy,
            "",
        )?;
        let setup = harness::run_scimsync(&config, &["sync", "--now"]).await?;
        if setup.code != 0 {
            bail!("setup cycle exited {}:\n{}", setup.code, setup.stderr);
        }
        eprintln!(
            "setup: {} users provisioned in {:.1} s",
            emu.emulator.users().len(),
            setup.elapsed.as_secs_f64()
        );
        match args.op {
            Operation::Update => {
                let mut changed = 0;
                for user in snapshot.users.iter_mut().take(count) {
                    user.attrs
                        .insert("department".into(), format!("Bench {}", args.seed));
                    changed += 1;
                }
                eprintln!("{changed} users change department");
            }
            Operation::Delete => {
                let gone: HashSet<SourceId> = snapshot
                    .users
                    .split_off(args.users - count)
                    .into_iter()
                    .map(|u| u.id)
                    .collect();
                for group in &mut snapshot.groups {
                    group.members.retain(|m| !gone.contains(m));
                }
                eprintln!("{} users leave the directory", gone.len());
            }
            Operation::Create => {}
        }
        write_directory(dir.path(), &snapshot)?;
    }

    emu.emulator.set_limits(limited);
    emu.emulator.reset_stats();
    let config =
        harness::write_config_with(dir.path(), &emu.base_url, Some(window), "", policy, "")?;
    let run = harness::run_scimsync(&config, &["sync", "--now"]).await?;
    if run.code != 0 {
        bail!("scimsync sync exited {}:\n{}", run.code, run.stderr);
    }
    let stats = emu.emulator.stats();

    // Buckets run concurrently: the cycle's floor is its slowest bucket's.
    let mut burst_bound = Duration::ZERO;
    let mut spread_bound = Duration::ZERO;
    println!("bucket               requests  budget  burst windows  n/N windows  max_in_window");
    for (name, &requests) in &stats.by_bucket {
        let budget = Bucket::parse(name).and_then(|b| budgets.limit(b));
        if let Some(n) = budget {
            let windows = u32::try_from(requests.saturating_sub(1) / u64::from(n))?;
            burst_bound = burst_bound.max(window * windows);
            spread_bound = spread_bound.max(window.mul_f64(requests as f64 / f64::from(n)));
        }
        let max = stats.max_in_window.get(name).copied().unwrap_or(0);
        println!(
            "{name:<20} {requests:>8}  {:>6}  {:>13}  {:>11}  {max:>5} / {}",
            budget.map_or("-".into(), |n| n.to_string()),
            budget.map_or("-".into(), |n| (requests.saturating_sub(1) / u64::from(n))
                .to_string()),
            budget.map_or("-".into(), |n| format!(
                "{:.2}",
                requests as f64 / f64::from(n)
            )),
            budget.map_or("-".into(), |n| n.to_string()),
        );
        if let Some(n) = budget
            && max > u64::from(n)
        {
            bail!("{name}: {max} requests in one window exceed the budget of {n}");
        }
    }
    let elapsed = run.elapsed.as_secs_f64();
    println!(
        "operation            {:?} x {count} (of {} users)",
        args.op, args.users
    );
    println!("users in the target  {}", emu.emulator.users().len());
    println!(
        "elapsed              {elapsed:.2} s (whole process: start, read, plan, writes, store)"
    );
    println!(
        "burst bound          {:.2} s ({:.0} windows of {} ms)",
        burst_bound.as_secs_f64(),
        burst_bound.as_secs_f64() / window.as_secs_f64(),
        args.window_ms
    );
    println!(
        "achieved / burst bound  {:.3}",
        burst_bound.as_secs_f64() / elapsed
    );
    println!(
        "(n/N bound {:.2} s, which even spacing would approach: {:.3})",
        spread_bound.as_secs_f64(),
        spread_bound.as_secs_f64() / elapsed
    );
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
    let users_left = emu.emulator.users().len();
    emu.shutdown().await;
    let expected = match args.op {
        Operation::Delete => args.users - count,
        _ => args.users,
    };
    if users_left != expected {
        bail!("{users_left} users in the target, {expected} expected");
    }
    if stats.rate_limited > 0 {
        bail!("{} 429s received", stats.rate_limited);
    }
    Ok(())
}

fn write_directory(dir: &Path, snapshot: &scimsync_model::Snapshot) -> Result<()> {
    generate::write_json(snapshot, std::fs::File::create(dir.join("directory.json"))?)?;
    Ok(())
}
