//! The `generic` profile against real SCIM servers we did not write: scim2-server (PyPI),
//! started by scripts/setup.d/scim2-server.sh with `--dynamic-tenants`, and SCIMMY (npm),
//! started by scripts/setup.d/scimmy.sh (case-sensitive userName filter, no enterprise
//! extension, pages of 20). Each test uses its own tenant (`/<tenant>/v2`), so tests run in
//! parallel without seeing each other's users. Without a server's variables (not run through
//! scripts/test.sh) its tests say so and pass.

use crate::kit::{company, user};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Which server a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Server {
    Scim2,
    Scimmy,
}

impl Server {
    fn vars(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Server::Scim2 => (
                "SCIMSYNC_TEST_SCIM2_URL",
                "SCIMSYNC_TEST_SCIM2_TOKEN",
                "scripts/setup.d/scim2-server.sh",
            ),
            Server::Scimmy => (
                "SCIMSYNC_TEST_SCIMMY_URL",
                "SCIMSYNC_TEST_SCIMMY_TOKEN",
                "scripts/setup.d/scimmy.sh",
            ),
        }
    }

    /// Whether the server declares (and stores) the enterprise extension.
    fn has_enterprise(self) -> bool {
        self == Server::Scim2
    }
}

pub(crate) struct Peer {
    pub(crate) server: Server,
    /// `http://127.0.0.1:PORT/<tenant>` (SCIMMY's request log is at `<root>/_log`).
    root: String,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/<tenant>/v2`
    base: String,
    token: String,
    http: reqwest::Client,
    /// Extra sync.toml lines (e.g. `[target.capabilities]`), after [state].
    pub(crate) extra: String,
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The scim2-server peer for one test, or `None` (with a message) when it was not started.
fn peer(test: &str) -> Option<Peer> {
    peer_on(Server::Scim2, test)
}

/// The peer on `server` for one test, or `None` (with a message) when it was not started.
pub(crate) fn peer_on(server: Server, test: &str) -> Option<Peer> {
    let (url_var, token_var, script) = server.vars();
    let (Ok(url), Ok(token)) = (std::env::var(url_var), std::env::var(token_var)) else {
        eprintln!(
            "skipping generic::{test}: {url_var} is unset (scripts/test.sh runs {script}, \
             which starts the server and sets it)"
        );
        return None;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let tenant = format!("{test}-{}-{nanos}", std::process::id()).replace('_', "-");
    let root = format!("{}/{tenant}", url.trim_end_matches('/'));
    let peer = Peer {
        server,
        base: format!("{root}/v2"),
        root,
        dir: tempfile::tempdir().unwrap(),
        token,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        extra: String::new(),
    };
    peer.write_directory(&company());
    Some(peer)
}

impl Peer {
    pub(crate) fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write_directory(&self, directory: &Value) {
        std::fs::write(
            self.path("directory.json"),
            serde_json::to_vec_pretty(directory).unwrap(),
        )
        .unwrap();
    }

    fn write_config(&self) {
        let config = format!(
            r#"
[source]
kind = "json"
path = "directory.json"

[target]
url = "{base}"
token_env = "E2E_SCIM2_TOKEN"
profile = "generic"

[scope]
groups = ["Miro Users"]

[mapping]
preset = "jumpcloud"

[policy]
on_delete = "delete"
max_deprovisions = "100%"
max_shrink = "100%"

[state]
path = "state.db"
{extra}
"#,
            base = self.base,
            extra = self.extra,
        );
        std::fs::write(self.path("sync.toml"), config).unwrap();
    }

    /// Runs the real binary with a 120 s bound.
    pub(crate) async fn run(&self, args: &[&str]) -> Run {
        self.write_config();
        let mut cmd = tokio::process::Command::new(crate::kit::bin());
        cmd.arg("--config")
            .arg(self.path("sync.toml"))
            .args(args)
            .env("E2E_SCIM2_TOKEN", &self.token)
            .env("RUST_LOG", "info")
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("scimsync did not finish within 120 s")
            .expect("cannot run scimsync");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// One cycle that must succeed (exit 0).
    pub(crate) async fn sync(&self) -> Run {
        let run = self.run(&["sync", "--now"]).await;
        assert_eq!(run.code, 0, "sync failed:\n{}\n{}", run.stdout, run.stderr);
        run
    }

    /// Every user of the tenant, read directly from the server, page by page.
    pub(crate) async fn users(&self) -> Vec<Value> {
        self.list("Users").await
    }

    /// Every resource of `endpoint`, page by page (SCIMMY's pages hold 20).
    async fn list(&self, endpoint: &str) -> Vec<Value> {
        let mut all = Vec::new();
        // Bounded: 100 pages of at least one resource each.
        for _ in 0..100 {
            let start = (all.len() + 1).to_string();
            let page: Value = self
                .http
                .get(format!("{}/{endpoint}", self.base))
                .bearer_auth(&self.token)
                .query(&[("startIndex", start.as_str()), ("count", "1000")])
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            let resources = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap_or_default() as usize;
            if resources.is_empty() {
                break;
            }
            all.extend(resources);
            if all.len() >= total {
                break;
            }
        }
        all
    }

    /// The users whose userName equals `name` case-insensitively.
    pub(crate) async fn users_named(&self, name: &str) -> Vec<Value> {
        self.users()
            .await
            .into_iter()
            .filter(|u| {
                u["userName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .collect()
    }

    pub(crate) async fn user(&self, name: &str) -> Value {
        let mut found = self.users_named(name).await;
        assert_eq!(found.len(), 1, "exactly one {name} expected: {found:?}");
        found.remove(0)
    }

    /// id → meta.version of every user: equal before and after a cycle means it wrote nothing.
    pub(crate) async fn versions(&self) -> BTreeMap<String, String> {
        self.users()
            .await
            .iter()
            .map(|u| {
                (
                    u["id"].as_str().unwrap_or_default().to_owned(),
                    u["meta"]["version"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    pub(crate) async fn post_user(&self, body: Value) -> Value {
        self.http
            .post(format!("{}/Users", self.base))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/scim+json")
            .json(&body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub(crate) fn work_email(user: &Value) -> Option<&str> {
    user["emails"]
        .as_array()?
        .iter()
        .find(|e| e["type"] == "work")?["value"]
        .as_str()
}

fn department(user: &Value) -> Option<&str> {
    user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"].as_str()
}

/// Create, second cycle silent, update, email rename, deactivate, reactivate, delete.
pub(crate) async fn lifecycle(peer: &Peer) {
    let run = peer.sync().await;
    let users = peer.users().await;
    assert_eq!(users.len(), 4, "{}", run.stderr);
    let ann = peer.user("ann@example.com").await;
    assert_eq!(ann["active"], true);
    assert_eq!(ann["displayName"], "Ann Lee");
    assert_eq!(ann["name"]["givenName"], "Ann");
    assert_eq!(work_email(&ann), Some("ann@example.com"));
    let enterprise = peer.server.has_enterprise();
    assert_eq!(department(&ann), enterprise.then_some("Eng"));

    let before = peer.versions().await;
    peer.sync().await;
    assert_eq!(
        peer.versions().await,
        before,
        "a second cycle over an unchanged directory must not write"
    );

    // Update, email rename, deactivate.
    let cy_id = peer.user("cy@example.com").await["id"].clone();
    let mut dir = company();
    dir["users"][1]["department"] = json!("Platform");
    dir["users"][2]["email"] = json!("cyrus@example.com");
    dir["users"][3]["state"] = json!("SUSPENDED");
    peer.write_directory(&dir);
    peer.sync().await;
    assert_eq!(
        department(&peer.user("bob@example.com").await),
        enterprise.then_some("Platform")
    );
    let cyrus = peer.user("cyrus@example.com").await;
    assert_eq!(
        cyrus["id"], cy_id,
        "an email change renames, never recreates"
    );
    assert_eq!(work_email(&cyrus), Some("cyrus@example.com"));
    assert!(peer.users_named("cy@example.com").await.is_empty());
    assert_eq!(peer.user("dee@example.com").await["active"], false);

    // Reactivate.
    dir["users"][3]["state"] = json!("ACTIVATED");
    peer.write_directory(&dir);
    peer.sync().await;
    assert_eq!(peer.user("dee@example.com").await["active"], true);

    // Delete (policy.on_delete = "delete"): Bob leaves the directory.
    let bob = dir["users"].as_array_mut().unwrap().remove(1);
    assert_eq!(bob["id"], "u2");
    dir["groups"][0]["members"] = json!(["u1", "u3", "u4"]);
    peer.write_directory(&dir);
    peer.sync().await;
    assert!(peer.users_named("bob@example.com").await.is_empty());
    assert_eq!(peer.users().await.len(), 3);

    let before = peer.versions().await;
    let run = peer.run(&["sync", "--now", "--full"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        peer.versions().await,
        before,
        "a full cycle after the changes must not write"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn full_lifecycle_with_patch() {
    let Some(peer) = peer("lifecycle_patch") else {
        return;
    };
    lifecycle(&peer).await;
}

/// The same lifecycle with PATCH turned off: every update goes as GET + PUT, with If-Match
/// (scim2-server announces ETags).
#[tokio::test(flavor = "multi_thread")]
async fn full_lifecycle_with_put_fallback() {
    let Some(mut peer) = peer("lifecycle_put") else {
        return;
    };
    peer.extra = "[target.capabilities]\npatch = false\n".into();
    lifecycle(&peer).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pre_existing_user_is_adopted_not_duplicated() {
    let Some(peer) = peer("adopt") else {
        return;
    };
    // Created behind scimsync's back, in another case (scim2-server's userName is caseExact
    // false: it refuses the lower-case twin with 409 uniqueness, and its filter matches it).
    let existing = peer
        .post_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Ann@Example.COM",
            "displayName": "Ann (old)",
            "active": true,
        }))
        .await;
    let run = peer.sync().await;
    let anns = peer.users_named("ann@example.com").await;
    assert_eq!(
        anns.len(),
        1,
        "adopted, not duplicated: {anns:?}\n{}",
        run.stderr
    );
    assert_eq!(anns[0]["id"], existing["id"]);
    // Adopted, then brought in line with the directory.
    assert_eq!(anns[0]["displayName"], "Ann Lee");
    assert_eq!(peer.users().await.len(), 4);

    let before = peer.versions().await;
    peer.sync().await;
    assert_eq!(peer.versions().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_refused_as_not_unique_is_adopted() {
    let Some(peer) = peer("conflict") else {
        return;
    };
    // First cycle creates everyone; then the store forgets them (a new state file), so the
    // next cycle sees four unlinked directory users whose userNames the server holds.
    peer.sync().await;
    let ids: Vec<Value> = peer.users().await.iter().map(|u| u["id"].clone()).collect();
    std::fs::remove_file(peer.path("state.db")).unwrap();
    let mut dir = company();
    dir["users"]
        .as_array_mut()
        .unwrap()
        .push(user("u5", "eve@example.com", "Eve", "Moss", "Eng"));
    dir["groups"][0]["members"] = json!(["u1", "u2", "u3", "u4", "u5"]);
    peer.write_directory(&dir);
    peer.sync().await;
    let users = peer.users().await;
    assert_eq!(users.len(), 5, "no duplicate: {users:?}");
    for id in ids {
        assert!(users.iter().any(|u| u["id"] == id), "{id} kept");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_the_discovered_capabilities_and_the_overrides() {
    let Some(mut peer) = peer("check") else {
        return;
    };
    let run = peer.run(&["check"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for line in [
        "patch: supported (discovered)",
        "filter: supported (discovered)",
        "filter_max_results: 1000 (discovered)",
        "etag: supported (discovered)",
        "bulk: supported (discovered)",
        "sort: supported (discovered)",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in:\n{}", run.stdout);
    }

    peer.extra = "[target.capabilities]\npatch = false\nfilter_max_results = 50\n".into();
    let run = peer.run(&["check", "--output", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["capabilities"]["patch"], false);
    assert_eq!(report["capabilities"]["etag"], true);
    assert_eq!(report["capabilities"]["filter_max_results"], 50);
    assert_eq!(
        report["capabilities_overridden"],
        json!(["patch", "filter_max_results"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_follows_total_results_with_small_pages() {
    let Some(mut peer) = peer("paging") else {
        return;
    };
    // Pages of 2 for 4 users, then a full cycle must see them all and write nothing.
    peer.extra = "[target.capabilities]\nfilter_max_results = 2\n".into();
    peer.sync().await;
    let before = peer.versions().await;
    assert_eq!(before.len(), 4);
    let run = peer.run(&["sync", "--now", "--full"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(peer.versions().await, before);
}

impl Peer {
    /// Every group of the tenant, with members.
    pub(crate) async fn groups(&self) -> Vec<Value> {
        self.list("Groups").await
    }

    /// The SCIM requests the tenant received (SCIMMY only: its request log), in order.
    pub(crate) async fn requests(&self) -> Vec<Value> {
        assert_eq!(
            self.server,
            Server::Scimmy,
            "only the SCIMMY peer logs requests"
        );
        self.http
            .get(format!("{}/_log", self.root))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) async fn group(&self, name: &str) -> Value {
        let mut found: Vec<Value> = self
            .groups()
            .await
            .into_iter()
            .filter(|g| g["displayName"] == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one group {name} expected: {found:?}"
        );
        found.remove(0)
    }

    /// id → meta.version of every group, as `versions` is for users.
    async fn group_versions(&self) -> BTreeMap<String, String> {
        self.groups()
            .await
            .iter()
            .map(|g| {
                (
                    g["id"].as_str().unwrap_or_default().to_owned(),
                    g["meta"]["version"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The ids of the users named (userNames), as the server holds them.
    pub(crate) async fn ids_of(&self, names: &[&str]) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for name in names {
            let user = self.user(name).await;
            ids.insert(user["id"].as_str().unwrap().to_owned());
        }
        ids
    }

    /// The events of one type, from the store, through `scimsync events`.
    pub(crate) async fn events(&self, event_type: &str) -> Vec<Value> {
        let run = self
            .run(&["events", "--output", "json", "--type", event_type])
            .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The run id of the last cycle (its `sync_cycle_end` event).
    pub(crate) async fn last_run_id(&self) -> Value {
        let ends = self.events("sync_cycle_end").await;
        ends.last().expect("a cycle ran")["run_id"].clone()
    }
}

/// `members[].value` of a SCIM group.
pub(crate) fn member_ids(group: &Value) -> BTreeSet<String> {
    group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The small company plus two synced groups, Eng and Sales, with these members.
pub(crate) fn with_groups(eng: &[&str], sales: &[&str]) -> Value {
    let mut dir = company();
    let groups = dir["groups"].as_array_mut().unwrap();
    groups.push(json!({"id": "g3", "name": "Eng", "members": eng}));
    groups.push(json!({"id": "g4", "name": "Sales", "members": sales}));
    dir
}

/// Groups on an RFC server (the generic profile creates and deletes them): create with
/// members, a move as one add and one remove, a silent cycle, and a delete when a group leaves
/// `[groups] sync`.
#[tokio::test(flavor = "multi_thread")]
async fn groups_are_created_kept_in_step_and_deleted() {
    let Some(mut peer) = peer("groups") else {
        return;
    };
    peer.extra = "[groups]\nsync = [\"Eng\", \"Sales\"]\n".into();
    peer.write_directory(&with_groups(&["u1", "u2"], &["u3"]));

    // First cycle: users created, then both groups created with their members.
    let run = peer.sync().await;
    let groups = peer.groups().await;
    assert_eq!(
        groups.len(),
        2,
        "only the synced groups, not the scope's: {groups:?}\n{}",
        run.stderr
    );
    let eng = peer.group("Eng").await;
    let sales = peer.group("Sales").await;
    assert_eq!(
        member_ids(&eng),
        peer.ids_of(&["ann@example.com", "bob@example.com"]).await
    );
    assert_eq!(member_ids(&sales), peer.ids_of(&["cy@example.com"]).await);
    let creates = peer.events("group_create_provision").await;
    assert_eq!(creates.len(), 2, "{creates:?}");
    assert!(creates.iter().all(|e| e["success"] == true), "{creates:?}");

    // Bob moves from Eng to Sales: one add and one remove, nothing else written.
    peer.write_directory(&with_groups(&["u1"], &["u3", "u2"]));
    let users_before = peer.versions().await;
    peer.sync().await;
    let run_id = peer.last_run_id().await;
    let moved: Vec<Value> = peer
        .events("group_update_provision")
        .await
        .into_iter()
        .filter(|e| e["run_id"] == run_id)
        .collect();
    assert_eq!(moved.len(), 2, "one add and one remove: {moved:?}");
    assert!(moved.iter().all(|e| e["success"] == true), "{moved:?}");
    let touched: BTreeSet<&str> = moved
        .iter()
        .filter_map(|e| e["resource"]["display_name"].as_str())
        .collect();
    assert_eq!(touched, BTreeSet::from(["Eng", "Sales"]), "{moved:?}");
    let eng_after = peer.group("Eng").await;
    let sales_after = peer.group("Sales").await;
    assert_eq!(
        eng_after["id"], eng["id"],
        "a membership change never recreates"
    );
    assert_eq!(sales_after["id"], sales["id"]);
    assert_eq!(
        member_ids(&eng_after),
        peer.ids_of(&["ann@example.com"]).await
    );
    assert_eq!(
        member_ids(&sales_after),
        peer.ids_of(&["bob@example.com", "cy@example.com"]).await
    );
    assert_eq!(
        peer.versions().await,
        users_before,
        "a group move does not touch users"
    );

    // Nothing changed: neither an incremental nor a full cycle writes a user or a group.
    let users_before = peer.versions().await;
    let groups_before = peer.group_versions().await;
    assert!(
        groups_before.values().all(|v| !v.is_empty()),
        "the server versions groups (else the check below proves nothing): {groups_before:?}"
    );
    peer.sync().await;
    let run = peer.run(&["sync", "--now", "--full"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(peer.versions().await, users_before);
    assert_eq!(
        peer.group_versions().await,
        groups_before,
        "unchanged groups must not be written"
    );

    // Sales leaves `[groups] sync`: deleted on the server; Eng and every user stay.
    peer.extra = "[groups]\nsync = [\"Eng\"]\n".into();
    let users_before = peer.versions().await;
    peer.sync().await;
    let status = peer
        .http
        .get(format!(
            "{}/Groups/{}",
            peer.base,
            sales["id"].as_str().unwrap()
        ))
        .bearer_auth(&peer.token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let deletes = peer.events("group_delete_provision").await;
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0]["success"], true);
    assert_eq!(peer.group("Eng").await["id"], eng["id"]);
    assert_eq!(peer.groups().await.len(), 1);
    assert_eq!(
        peer.versions().await,
        users_before,
        "deleting a group leaves its members alone"
    );
}
