//! Runs the real `scimsync` binary against an in-process emulator, as an operator would, and
//! measures it from outside: wall time, peak RSS, and what the emulator received.

use anyhow::{Context, Result, bail};
use scimsync_emulator::{Emulator, EmulatorConfig, RateLimits, RunningEmulator};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "bench-token-5d1e";

/// The `scimsync` binary next to this one (`cargo build --release -p scimsync` puts both in
/// target/release), or the path in `SCIMSYNC_BIN`.
pub fn scimsync_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("SCIMSYNC_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating this benchmark")?;
    let sibling = exe.with_file_name("scimsync");
    if !sibling.exists() {
        bail!(
            "{} not found: run `cargo build --release -p scimsync` first, or set SCIMSYNC_BIN",
            sibling.display()
        );
    }
    Ok(sibling)
}

/// An emulator on 127.0.0.1 with Miro's budgets over `window` (none when `window` is None).
pub async fn emulator(window: Option<Duration>) -> Result<RunningEmulator> {
    let config = EmulatorConfig {
        token: TOKEN.into(),
        limits: window.map(RateLimits::miro_scaled),
        ..EmulatorConfig::default()
    };
    Emulator::new(config)
        .serve("127.0.0.1:0".parse()?)
        .await
        .context("starting the emulator")
}

/// A sync.toml for `directory` against `base_url`, with the client's budgets over `window`
/// (the same scaled window as the emulator's) and the deletion guard off (benchmarks create).
pub fn write_config(dir: &Path, base_url: &str, window: Option<Duration>) -> Result<PathBuf> {
    write_config_with(dir, base_url, window, "", "", "")
}

/// `write_config` with more `[target]` keys (`max_response_bytes = "64MiB"`), `[policy]` keys,
/// and `extra` tables appended (bench-plan's `[groups] sync`). The token is in
/// `BENCH_SCIM_TOKEN` for a `scimsync` process (`run_scimsync` sets it) and in DIR/token for the
/// engine called in process, which does not set its own environment.
pub fn write_config_with(
    dir: &Path,
    base_url: &str,
    window: Option<Duration>,
    target_extra: &str,
    policy_extra: &str,
    extra: &str,
) -> Result<PathBuf> {
    let limits = window
        .map(|w| format!("\n[target.rate_limits]\nwindow = \"{}ms\"\n", w.as_millis()))
        .unwrap_or_default();
    let config = format!(
        r#"[source]
kind = "json"
path = "directory.json"

[target]
url = "{base_url}"
token_env = "BENCH_SCIM_TOKEN"
token_file = "token"
profile = "miro"
{target_extra}
{limits}
[scope]
groups = ["Miro Users"]

[roles]
admin_groups = ["Miro Admins"]

[mapping]
preset = "jumpcloud"

[policy]
max_deprovisions = "100%"
{policy_extra}

[state]
path = "state.db"
{extra}"#
    );
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).context("writing the token file")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600))?;
    let path = dir.join("sync.toml");
    std::fs::write(&path, config).context("writing sync.toml")?;
    Ok(path)
}

pub struct Measured {
    pub code: i32,
    pub elapsed: Duration,
    pub peak_rss: Option<u64>,
    pub stderr: String,
}

/// Runs `scimsync --config CONFIG ARGS…`, polling its /proc status for the RSS high-water mark.
pub async fn run_scimsync(config: &Path, args: &[&str]) -> Result<Measured> {
    run_scimsync_with(config, args, &RunOptions::default()).await
}

/// What `run_scimsync_with` changes about a run, for diagnosis: extra environment (e.g.
/// `RUST_LOG=debug`), a wrapper command (e.g. `perf record -g --call-graph dwarf -o FILE`),
/// and a file for scimsync's stdout (events as JSON lines with `--log-format json`).
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Set after the defaults (`BENCH_SCIM_TOKEN`, `RUST_LOG=warn`), so they can override them.
    pub env: Vec<(String, String)>,
    /// Program and arguments put before scimsync's own command line.
    pub wrapper: Vec<String>,
    /// Where scimsync's stdout goes (discarded when None).
    pub stdout: Option<PathBuf>,
}

/// `run_scimsync` with `options`. Under a wrapper the RSS polled is the wrapper's first child's
/// (scimsync itself), found through /proc once it has started.
pub async fn run_scimsync_with(
    config: &Path,
    args: &[&str],
    options: &RunOptions,
) -> Result<Measured> {
    let bin = scimsync_bin()?;
    let mut cmd = match options.wrapper.split_first() {
        Some((program, rest)) => {
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(rest).arg(&bin);
            cmd
        }
        None => tokio::process::Command::new(&bin),
    };
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("BENCH_SCIM_TOKEN", TOKEN)
        .env("RUST_LOG", "warn");
    for (key, value) in &options.env {
        cmd.env(key, value);
    }
    match &options.stdout {
        Some(path) => {
            cmd.stdout(std::fs::File::create(path).context("creating the stdout file")?);
        }
        None => {
            cmd.stdout(Stdio::null());
        }
    }
    cmd.stderr(Stdio::piped()).kill_on_drop(true);
    let wrapped = !options.wrapper.is_empty();
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting scimsync")?;
    let mut pid = child.id();
    let mut found_child = !wrapped;
    let mut stderr = child.stderr.take().context("scimsync stderr")?;
    let reader = tokio::spawn(async move {
        let mut buf = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut buf).await;
        buf
    });
    let mut peak = None;
    let status = loop {
        if !found_child
            && let Some(wrapper) = pid
            && let Some(inner) = first_child_of(wrapper)
        {
            pid = Some(inner);
            found_child = true;
        }
        if found_child
            && let Some(pid) = pid
            && let Some(hwm) = crate::rss::peak_rss_of(pid)
        {
            peak = Some(hwm);
        }
        tokio::select! {
            status = child.wait() => break status.context("waiting for scimsync")?,
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    };
    let elapsed = started.elapsed();
    let stderr = reader.await.unwrap_or_default();
    Ok(Measured {
        code: status.code().unwrap_or(-1),
        elapsed,
        peak_rss: peak,
        stderr,
    })
}

/// The first child process of `pid` (from /proc/PID/task/PID/children), if any.
fn first_child_of(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}
