//! `scimsync-emulator`: serves an emulated Miro SCIM API until SIGTERM/SIGINT.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use scimsync_emulator::{Emulator, EmulatorConfig, GroupModel, RateLimits, Seed};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModelArg {
    Team,
    UserGroup,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LimitsArg {
    Miro,
    None,
}

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A Miro-faithful SCIM 2.0 server for tests, benchmarks and demos"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// 0 picks a free port; the chosen one is printed on stdout.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Required bearer token; empty disables the check.
    #[arg(
        long,
        env = "SCIMSYNC_EMULATOR_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    token: String,
    /// Bearer token Miro's REST API (`/v2/...`, team assignment) requires; its own credential.
    #[arg(
        long,
        env = "SCIMSYNC_EMULATOR_REST_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    rest_token: String,
    /// The organization id REST paths carry (`/v2/orgs/{org_id}/...`).
    #[arg(long, default_value = scimsync_emulator::DEFAULT_ORG_ID)]
    org_id: String,
    /// JSON seed file: {"users": [{"userName": …}], "groups": [{"displayName": …, "members": […]}],
    /// "teams": [{"name": …, "groups": […]}]}.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Miro's group model: user groups (2026), or legacy teams.
    #[arg(long, value_enum, default_value = "user-group")]
    group_model: ModelArg,
    #[arg(long, value_enum, default_value = "miro")]
    limits: LimitsArg,
    /// Rate-limit window; Miro's is 30 000 ms.
    #[arg(long, default_value_t = 30_000)]
    window_ms: u64,
    /// Send Retry-After on rate-limit 429s (Miro does not document one).
    #[arg(long)]
    retry_after: bool,
    /// Send Retry-After as an HTTP-date rather than seconds (with --retry-after).
    #[arg(long)]
    retry_after_http_date: bool,
    /// Send X-RateLimit-Limit/-Remaining/-Reset on every answer of a limited bucket (as Miro's
    /// REST API does; its SCIM documentation is silent).
    #[arg(long)]
    rate_limit_headers: bool,
    #[arg(long, default_value_t = 0)]
    rng_seed: u64,
    #[arg(long, default_value = "/api/v1/scim")]
    base_path: String,
    #[arg(long, default_value_t = 100)]
    page_cap: usize,
    /// Allow binding a non-loopback address (the emulator has no TLS and a known token).
    #[arg(long)]
    allow_remote: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    if !args.host.is_loopback() && !args.allow_remote {
        bail!(
            "refusing to bind non-loopback host {} without --allow-remote",
            args.host
        );
    }
    let seed = match &args.seed {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<Seed>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => Seed::default(),
    };
    let limits = match args.limits {
        LimitsArg::Miro => Some(RateLimits {
            retry_after: args.retry_after,
            retry_after_http_date: args.retry_after_http_date,
            rate_limit_headers: args.rate_limit_headers,
            ..RateLimits::miro_scaled(Duration::from_millis(args.window_ms))
        }),
        LimitsArg::None => None,
    };
    let config = EmulatorConfig {
        token: args.token,
        base_path: args.base_path,
        group_model: match args.group_model {
            ModelArg::Team => GroupModel::Team,
            ModelArg::UserGroup => GroupModel::UserGroup,
        },
        limits,
        page_cap: args.page_cap,
        seed,
        rng_seed: args.rng_seed,
        rest_token: args.rest_token,
        org_id: args.org_id,
        ..EmulatorConfig::default()
    };
    let running = Emulator::new(config)
        .serve(SocketAddr::new(args.host, args.port))
        .await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", running.base_url)?;
    out.flush()?;
    // A reader may take the first line and hang up: the second is only a courtesy (EPIPE is
    // not a reason to stop serving).
    let _ = writeln!(
        out,
        "REST API on http://{}/v2/orgs/{}",
        running.addr,
        running.emulator.config().org_id
    );
    let _ = out.flush();
    drop(out);
    shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
