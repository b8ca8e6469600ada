//! The engine's unit tests that need a target: the cycle's steps driven in process, against the
//! emulator on 127.0.0.1 (no binary, no subprocess). Each test builds a `World`: a temp dir
//! with a directory, a sync.toml and a token file, and an emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod doc_config;
mod groups;
mod guard;
mod journal;
mod quarantine;

use crate::config::Config;
use crate::emit::{Emitter, EventSink};
use crate::{CycleOptions, CycleReport, EngineError};
use scimsync_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use scimsync_model::{Event, EventType, InitiatedBy};
use scimsync_store::{RunStatus, Store};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "engine-test-token-5b2e";

/// Every event the emit point told its sinks, in order.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<Event>>>);

impl EventSink for Seen {
    fn observe(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Seen {
    pub fn of(&self, event_type: EventType) -> Vec<Event> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.event_type == event_type)
            .cloned()
            .collect()
    }
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub emu: RunningEmulator,
    pub seen: Seen,
    pub emitter: Emitter,
}

pub fn user(id: &str, email: &str, first: &str, dept: &str) -> Value {
    json!({"id": id, "email": email, "firstname": first, "lastname": "Test",
           "displayname": format!("{first} Test"), "department": dept, "state": "ACTIVATED"})
}

/// Four people in "Miro Users", Ann an admin.
pub fn company() -> Value {
    json!({
        "users": [
            user("u1", "ann@example.com", "Ann", "Eng"),
            user("u2", "bob@example.com", "Bob", "Eng"),
            user("u3", "cy@example.com", "Cy", "Sales"),
            user("u4", "dee@example.com", "Dee", "Ops"),
        ],
        "groups": [
            {"id": "g1", "name": "Miro Users", "members": ["u1", "u2", "u3", "u4"]},
            {"id": "g2", "name": "Miro Admins", "members": ["u1"]},
        ]
    })
}

impl World {
    pub async fn new() -> World {
        World::with(EmulatorConfig::default()).await
    }

    pub async fn with(config: EmulatorConfig) -> World {
        let emu = Emulator::new(EmulatorConfig {
            token: TOKEN.into(),
            ..config
        })
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
        let seen = Seen::default();
        let world = World {
            dir: tempfile::tempdir().unwrap(),
            emu,
            emitter: Emitter::new().with_sink(seen.clone()),
            seen,
        };
        world.write_directory(&company());
        world.write_token(TOKEN);
        world
    }

    pub fn write_directory(&self, directory: &Value) {
        std::fs::write(
            self.dir.path().join("directory.json"),
            serde_json::to_vec_pretty(directory).unwrap(),
        )
        .unwrap();
    }

    pub fn write_token(&self, token: &str) {
        let path = self.dir.path().join("token");
        std::fs::write(&path, token).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// sync.toml against the emulator; `policy` is the body of `[policy]`, `extra` more tables.
    pub fn config(&self, policy: &str, extra: &str) -> Config {
        let text = format!(
            r#"[source]
kind = "json"
path = "directory.json"

[target]
url = "{url}"
token_file = "token"
profile = "miro"

[scope]
groups = ["Miro Users"]

[roles]
admin_groups = ["Miro Admins"]

# The user side only: with Miro's 2026 default (user groups), "Miro Users" would be synced as
# a user group too. Groups have their own tests (groups.rs).
[groups]
sync = []

[policy]
{policy}

[state]
path = "state.db"
{extra}"#,
            url = self.emu.base_url
        );
        let path = self.dir.path().join("sync.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap()
    }

    pub fn store(&self) -> Store {
        Store::open(&self.dir.path().join("state.db")).unwrap()
    }

    /// One manual cycle, exit codes as the binary gives them.
    pub async fn cycle(
        &self,
        config: &Config,
        store: &mut Store,
    ) -> Result<CycleReport, EngineError> {
        crate::run_cycle(
            config,
            store,
            &self.emitter,
            CycleOptions {
                full: false,
                initiated_by: InitiatedBy::Manual,
                saved_plan: None,
                read_progress: None,
                exit_code: |status| match status {
                    RunStatus::Succeeded => 0,
                    RunStatus::Partial => 3,
                    RunStatus::Held => 4,
                    _ => 1,
                },
            },
        )
        .await
    }

    /// The plan a first (full) cycle would send now.
    pub async fn first_plan(&self, config: &Config, store: &Store) -> scimsync_model::Plan {
        let client = crate::target::client(config, config.token().unwrap()).unwrap();
        crate::prepare(config, store, &client, true, false)
            .await
            .unwrap()
            .output
            .plan
    }

    /// userName → active, as the target holds them.
    pub fn target_users(&self) -> Vec<(String, bool)> {
        let mut users: Vec<(String, bool)> = self
            .emu
            .emulator
            .users()
            .into_iter()
            .map(|u| (u.user_name, u.active))
            .collect();
        users.sort();
        users
    }
}
