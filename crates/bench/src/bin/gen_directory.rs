//! Writes a synthetic directory snapshot, deterministic from the seed.
//!
//! ```sh
//! cargo run --release -p scimsync-bench --bin gen-directory -- --users 100000 --groups 1000 --seed 1 --out base.json
//! cargo run --release -p scimsync-bench --bin gen-directory -- --users 100000 --groups 1000 --seed 1 \
//!     --change-percent 1 --base base.json --out changed.json
//! ```

use anyhow::{Context, Result};
use clap::Parser;
use scimsync_bench::generate;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    users: usize,
    /// Groups, including "Miro Users" (everyone) and "Miro Admins".
    #[arg(long, default_value_t = 2)]
    groups: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Change this share of the users (new department and title) of `--base`.
    #[arg(long, requires = "base")]
    change_percent: Option<f64>,
    /// The snapshot to change (otherwise a fresh one is generated from the seed).
    #[arg(long)]
    base: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut snapshot = match &args.base {
        Some(base) => scimsync_directory::read_json(base)
            .with_context(|| format!("reading {}", base.display()))?,
        None => generate::directory(args.users, args.groups, args.seed),
    };
    if let Some(percent) = args.change_percent {
        let changed = generate::change(&mut snapshot, percent, args.seed);
        eprintln!("changed {changed} of {} users", snapshot.users.len());
    }
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    generate::write_json(&snapshot, file)?;
    eprintln!(
        "wrote {} users and {} groups to {}",
        snapshot.users.len(),
        snapshot.groups.len(),
        args.out.display()
    );
    Ok(())
}
