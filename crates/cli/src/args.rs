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
        self.ansi_with(
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stderr().is_terminal(),
        )
    }

    fn ansi_with(self, no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => no_color.is_none_or(|v| v.is_empty()) && terminal,
        }
    }
}

#[cfg(test)]
mod color_tests {
    use super::Color;
    use std::ffi::OsStr;

    #[test]
    fn no_color_turns_auto_off_and_the_flag_wins() {
        let set = Some(OsStr::new("1"));
        assert!(Color::Auto.ansi_with(None, true));
        assert!(!Color::Auto.ansi_with(set, true));
        assert!(Color::Auto.ansi_with(Some(OsStr::new("")), true));
        assert!(!Color::Auto.ansi_with(None, false));
        assert!(Color::Always.ansi_with(set, false));
        assert!(!Color::Never.ansi_with(None, true));
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
        /// text for people (the summary first), json for tools (every op, schema scimsync.plan/v1).
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
        /// Read every user and group from the target instead of trusting the store's links
        /// (a cycle is full anyway the first time and after schedule.full_every).
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
        /// Only events of this type (user_create_provision, group_update_provision, sync_held, …).
        #[arg(long = "type", value_name = "NAME")]
        event_type: Option<String>,
        /// Only what was not done: failed operations (FAIL) and skipped ones (SKIP).
        #[arg(long)]
        failed: bool,
        /// Only events about this user (userName, i.e. the email).
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
        /// Only events of this run (`status` lists the runs).
        #[arg(long, value_name = "N")]
        run: Option<i64>,
        /// At most this many events, the newest.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// text, one line an event; json, one JSON object a line.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Last runs and their counts, managed users, quarantine, what the guard holds, writes in
    /// flight, uncertain users and groups.
    Status {
        /// How many of the last runs to list.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// text for people, json for tools (schema scimsync.status/v1).
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Read-only probe of the target with the token, and the directory read as a cycle would:
    /// one report, one verdict.
    Check {
        /// text for people, json for tools (schema scimsync.check/v1).
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Approve exactly the access-removing changes the deletion guard held in its last hold
    /// (for policy.approval_ttl). Nothing held: says so and exits 1.
    ApproveDeletes {
        /// Show the held set (and any approval) instead of approving.
        #[arg(long)]
        list: bool,
        /// text for people, json for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Approve only if the held set still has this digest (its first 8 or more hex digits,
        /// as `--list` shows): a cycle that changed the set since it was reviewed is refused.
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
    /// Print a shell completion script (e.g. `scimsync completions bash > /etc/bash_completion.d/scimsync`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (roff): scimsync.1 to stdout, or every page into DIR (scimsync.1 and
    /// scimsync-<command>.1 for each command).
    Man {
        /// A directory to write every page into (e.g. /usr/local/share/man/man1).
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}
