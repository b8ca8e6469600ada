//! The test kit: a temp dir with a directory snapshot and a sync.toml, an emulator in-process on
//! 127.0.0.1:0, and a way to run the real binary against them with a bounded time.

use scimsync_emulator::{Emulator, EmulatorConfig, RunningEmulator, Seed, Stats, UserRecord};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

pub const TOKEN: &str = "e2e-secret-token-7f3a9c";

/// The `scimsync` binary under test: the workspace's own, built (once per test run) by the
/// cargo that runs these tests, with the same profile, into the same target directory. This
/// package is not the binary's, so cargo does not build it for us (`CARGO_BIN_EXE_*` exists only
/// in the tests of the package that owns the binary); building it here means
/// `cargo test -p scimsync-tests` never runs a stale binary. `SCIMSYNC_BIN` names another one.
pub fn bin() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("SCIMSYNC_BIN") {
            return PathBuf::from(path);
        }
        // This test binary is target/<profile dir>/deps/it-<hash>.
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test binary lives in target/<profile>/deps");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(other) => other,
            None => "dev",
        };
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--locked",
                "--package",
                "scimsync",
                "--bin",
                "scimsync",
            ])
            .args(["--profile", profile])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("running cargo to build scimsync");
        assert!(
            out.status.success(),
            "cargo build -p scimsync failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = profile_dir.join(format!("scimsync{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub emu: RunningEmulator,
    pub extra_config: String,
    /// The body of [policy].
    pub policy: String,
    /// More keys of [target] (`timeout = "1s"`).
    pub target_extra: String,
    /// The body of [groups]: none synced unless a test names some.
    pub groups: String,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The post-sync summary's line for `bucket` (e.g. "users_post: 60 requests in …").
    pub fn bucket_line(&self, bucket: &str) -> &str {
        self.stderr
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{bucket}:")))
            .unwrap_or_else(|| panic!("no summary line for {bucket}:\n{}", self.stderr))
    }

    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub fn user(id: &str, email: &str, first: &str, last: &str, dept: &str) -> Value {
    json!({"id": id, "email": email, "firstname": first, "lastname": last,
           "displayname": format!("{first} {last}"), "company": "Acme", "department": dept,
           "employeeidentifier": format!("E-{id}"), "state": "ACTIVATED"})
}

/// A small company: everyone in "Miro Users", Ann an admin.
pub fn company() -> Value {
    json!({
        "users": [
            user("u1", "ann@example.com", "Ann", "Lee", "Eng"),
            user("u2", "bob@example.com", "Bob", "Stone", "Eng"),
            user("u3", "cy@example.com", "Cy", "Park", "Sales"),
            user("u4", "dee@example.com", "Dee", "Ruiz", "Ops"),
        ],
        "groups": [
            {"id": "g1", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]},
            {"id": "g2", "name": "Miro Admins", "members": ["u1"]},
        ]
    })
}

impl Env {
    pub async fn new(seed: Seed) -> Env {
        Env::with_config(EmulatorConfig {
            token: TOKEN.into(),
            seed,
            ..EmulatorConfig::default()
        })
        .await
    }

    pub async fn with_config(config: EmulatorConfig) -> Env {
        let emu = Emulator::new(config)
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let env = Env {
            dir,
            emu,
            extra_config: String::new(),
            policy: "max_deprovisions = \"50%\"".to_owned(),
            target_extra: String::new(),
            groups: "sync = []".to_owned(),
        };
        env.write_directory(&company());
        env
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write_directory(&self, directory: &Value) {
        std::fs::write(
            self.path("directory.json"),
            serde_json::to_vec_pretty(directory).unwrap(),
        )
        .unwrap();
    }

    pub fn write_config(&self) {
        let config = format!(
            r#"
[source]
kind = "json"
path = "directory.json"

[target]
url = "{url}"
token_env = "E2E_SCIM_TOKEN"
profile = "miro"
{target_extra}

[scope]
groups = ["Miro Users"]

[roles]
admin_groups = ["Miro Admins"]

# The user side only: with Miro's 2026 default (user groups), "Miro Users" would be synced as
# a user group too. Groups have their own tests (groups.rs, miro2026.rs).
[groups]
{groups}

[mapping]
preset = "jumpcloud"

[policy]
{policy}

[state]
path = "state.db"
{extra}
"#,
            url = self.emu.base_url,
            extra = self.extra_config,
            policy = self.policy,
            target_extra = self.target_extra,
            groups = self.groups
        );
        std::fs::write(self.path("sync.toml"), config).unwrap();
    }

    /// Runs the real binary with a 120 s bound.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.write_config();
        self.run_with_config(&self.path("sync.toml"), args).await
    }

    /// Runs the real binary on a config file the test wrote itself, with a 120 s bound.
    pub async fn run_with_config(&self, config: &std::path::Path, args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new(crate::kit::bin());
        cmd.arg("--config")
            .arg(config)
            .args(args)
            .env("E2E_SCIM_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("scimsync did not finish within 120 s")
            .expect("cannot run scimsync");
        Run::from(out)
    }

    /// `sync --now` started and left running, for a test that kills it or acts while it runs;
    /// stdout discarded, stderr as the test wants it.
    pub fn spawn_sync(&self, stderr: std::process::Stdio) -> tokio::process::Child {
        tokio::process::Command::new(bin())
            .arg("--config")
            .arg(self.path("sync.toml"))
            .args(["sync", "--now"])
            .env("E2E_SCIM_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    pub async fn sync(&self) -> Run {
        let run = self.run(&["sync", "--now"]).await;
        assert!(
            run.code == 0 || run.code == 3,
            "sync failed with {}:\n{}\n{}",
            run.code,
            run.stdout,
            run.stderr
        );
        run
    }

    pub fn stats(&self) -> Stats {
        self.emu.emulator.stats()
    }

    /// Visible (non-guest) users of the target.
    pub fn users(&self) -> Vec<UserRecord> {
        self.emu
            .emulator
            .users()
            .into_iter()
            .filter(|u| !u.guest)
            .collect()
    }

    pub fn user(&self, user_name: &str) -> Option<UserRecord> {
        self.users()
            .into_iter()
            .find(|u| u.user_name.eq_ignore_ascii_case(user_name))
    }

    /// Events of the last run, as JSON.
    pub async fn events(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["events", "--output", "json"];
        all.extend_from_slice(args);
        let run = self.run(&all).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

pub fn attr<'a>(user: &'a UserRecord, name: &str) -> Option<&'a str> {
    // The emulator keeps the enterprise extension's attributes under their names.
    fn find<'v>(v: &'v Value, name: &str) -> Option<&'v str> {
        match v {
            Value::Object(map) => map
                .get(name)
                .and_then(Value::as_str)
                .or_else(|| map.values().find_map(|v| find(v, name))),
            _ => None,
        }
    }
    find(&user.attributes, name)
}

/// userNames of the members of the emulator's group `name`.
pub fn members(env: &Env, name: &str) -> std::collections::BTreeSet<String> {
    let users = env.emu.emulator.users();
    let group = env
        .emu
        .emulator
        .groups()
        .into_iter()
        .find(|g| g.display_name == name)
        .unwrap_or_else(|| panic!("no group {name} in the target"));
    group
        .members
        .iter()
        .filter_map(|id| users.iter().find(|u| &u.id == id))
        .map(|u| u.user_name.to_lowercase())
        .collect()
}

pub fn names(list: &[&str]) -> std::collections::BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
