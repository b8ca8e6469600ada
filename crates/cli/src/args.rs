//! The command line (clap): what `scimsync` accepts. The names are a contract (README.md,
//! "Commands"): scripts outside the project drive the binary through them; never rename one.

use crate::log::LogFormat;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "scimsync",
    version,
    about = "Provision users from a directory to Miro (or any SCIM 2.0 app)"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        default_value = "sync.toml",
        env = "SCIMSYNC_CONFIG"
    )]
    pub config: PathBuf,
    /// Log format on stderr; with json, events are also printed to stdout one JSON object a line.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Dry run: print every operation a sync would send. Sends no write request.
    Plan {
        /// Read every user from the target instead of trusting the store's links.
        #[arg(long)]
        full: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Save the plan for `sync --now --plan FILE`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit 4 when the deletion guard would hold part of the plan, else 5 when the plan is
        /// not empty.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Run one cycle.
    Sync {
        /// Run now (the only mode; scheduled runs are `daemon`).
        #[arg(long)]
        now: bool,
        #[arg(long)]
        full: bool,
        /// Apply exactly this saved plan; refused if the directory or target changed under it.
        #[arg(long)]
        plan: Option<PathBuf>,
    },
    /// Run a cycle every schedule.interval until SIGTERM or SIGINT.
    Daemon,
    /// Query the audit log.
    Events {
        /// Only events newer than this (e.g. 1h, 2d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long = "type")]
        event_type: Option<String>,
        #[arg(long)]
        failed: bool,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        run: Option<i64>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Last runs, their counts, held deletes.
    Status {
        #[arg(long, default_value_t = 10)]
        runs: usize,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Read-only probe of the target with the token.
    Check {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Approve exactly the access-removing changes the deletion guard held in its last hold
    /// (for policy.approval_ttl). Nothing held: says so and exits 1.
    ApproveDeletes {
        /// Show the held set (and any approval) instead of approving.
        #[arg(long)]
        list: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Approve only if the held set still has this digest (its first 8 or more hex digits,
        /// as `--list` shows): a cycle that changed the set since it was reviewed is refused.
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
    /// Print a shell completion script (e.g. `scimsync completions bash > /etc/bash_completion.d/scimsync`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man page (roff) to stdout, or into DIR as scimsync.1.
    Man {
        /// A directory to write scimsync.1 into.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}
