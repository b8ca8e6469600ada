//! `scimsync`: plan, sync, daemon, events, status, check, approve-deletes.
//!
//! Architecture Invariant: this is the only crate that uses `anyhow`, reads the environment, or
//! decides exit codes. It wires the pipeline crates together and adds nothing to their logic.

// First: its macros are visible only to the modules declared after it.
#[macro_use]
mod output;
mod commands;
mod config;
mod cycle;
mod daemon;
mod discovery;
#[cfg(test)]
mod doc_config;
mod groups;
mod guard;
mod health;
mod integration;
mod journal;
mod ldap_source;
mod lookups;
mod manual;
mod meta;
mod metrics;
mod progress;
mod quarantine;
mod recent;
mod recorder;
mod render;
mod saved;
mod secret;
mod source;
mod teams;
mod verify;

use clap::{Parser, Subcommand, ValueEnum};

// A cycle allocates and frees millions of small strings (snapshot records, mapped attributes,
// links); glibc's malloc keeps the freed memory fragmented and resident, mimalloc returns it
// and serves small allocations faster (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use recorder::LogFormat;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Colour in log lines and progress: auto (on a terminal, unless NO_COLOR is set), always,
    /// never.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: Color,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to write ANSI colours to stderr: `NO_COLOR` (any non-empty value, no-color.org)
    /// turns `auto` off; an explicit `always` wins over it.
    pub fn ansi(self) -> bool {
        use std::io::IsTerminal;
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        }
    }
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
        /// List every operation; by default the text shows the first 200 of each kind and a
        /// count (the summary always counts them all).
        #[arg(long)]
        full_list: bool,
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

fn init_tracing(format: LogFormat, color: Color) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(format == LogFormat::Text && color.ansi());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

/// A command line clap accepts but that cannot mean anything (exit 2, as clap's own errors).
const USAGE: i32 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format, cli.color);
    progress::init(cli.log_format == LogFormat::Text);
    let log_format = cli.log_format;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        // `scimsync events | head`: the reader has what it wanted.
        Err(err) if output::closed_pipe(&err) => cycle::exit::OK,
        Err(err) => {
            // Once: a JSON log line for machines, or one `error:` line for people.
            match log_format {
                LogFormat::Json => tracing::error!("{err:#}"),
                LogFormat::Text => eprintln!("error: {err:#}"),
            }
            if err.downcast_ref::<commands::Usage>().is_some() {
                USAGE
            } else {
                cycle::exit::ERROR
            }
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
