//! `scimsync`: plan, sync, daemon, events, status, check, approve-deletes.
//!
//! Architecture Invariant: a front end of `scimsync-engine`: argument parsing, output (plan
//! text and JSON, status, events, the log and metrics sinks, the progress bar), the daemon's
//! schedule and HTTP endpoints, and exit codes. No step of a cycle is decided here, and this is
//! the only crate that uses `anyhow`.

// First: its macros are visible only to the modules declared after it.
#[macro_use]
mod output;
mod args;
mod commands;
mod daemon;
mod exit;
mod health;
mod held;
mod log;
mod manual;
mod metrics;
mod progress;
mod render;

use clap::Parser;

// A cycle allocates and frees millions of small strings (snapshot records, mapped attributes,
// links); glibc's malloc keeps the freed memory fragmented and resident, mimalloc returns it
// and serves small allocations faster (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use args::Cli;
use log::LogFormat;
use std::process::ExitCode;

fn init_tracing(format: LogFormat, color: args::Color) {
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
        Err(err) if output::closed_pipe(&err) => exit::OK,
        Err(err) => {
            // Once: a JSON log line for machines, or one `error:` line for people.
            match log_format {
                LogFormat::Json => tracing::error!("{err:#}"),
                LogFormat::Text => eprintln!("error: {err:#}"),
            }
            if err.downcast_ref::<commands::Usage>().is_some() {
                USAGE
            } else {
                exit::ERROR
            }
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
