//! The LDAP source against a real OpenLDAP slapd (scripts/setup.d/slapd.sh starts one and sets
//! SCIMSYNC_TEST_LDAP_*): the real binary syncs from it into the in-process emulator while the
//! tests add, modify, lock and delete entries between cycles, and a connection cut midway
//! through a read fails the cycle without a single write. Each test works in its own subtree
//! (ou=test-<unique>), so tests run in parallel.

use crate::kit::{Env, Run, TOKEN, attr};
use scimsync_emulator::Seed;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Slapd {
    url: String,
    bind_dn: String,
    password: String,
    /// This test's subtree.
    base: String,
}

/// The test's LDAP server, or `None` (and a note) when the setup did not start one.
fn slapd(test: &str) -> Option<Slapd> {
    let Ok(url) = std::env::var("SCIMSYNC_TEST_LDAP_URL") else {
        eprintln!("{test}: skipped: SCIMSYNC_TEST_LDAP_URL not set; run scripts/test.sh");
        return None;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"));
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let unique = format!(
        "{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let suffix = var("SCIMSYNC_TEST_LDAP_BASE");
    let slapd = Slapd {
        url,
        bind_dn: var("SCIMSYNC_TEST_LDAP_BIND_DN"),
        password: var("SCIMSYNC_TEST_LDAP_PASSWORD"),
        base: format!("ou=test-{unique},{suffix}"),
    };
    slapd.modify(&format!(
        "dn: {base}\nchangetype: add\nobjectClass: organizationalUnit\nou: test-{unique}\n",
        base = slapd.base
    ));
    Some(slapd)
}

impl Slapd {
    /// Applies an LDIF change record set with ldapmodify (from ldap-utils, which the setup
    /// installs with slapd).
    fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args([
                "-x",
                "-H",
                &self.url,
                "-D",
                &self.bind_dn,
                "-w",
                &self.password,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (ldap-utils) is needed for the LDAP tests");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify failed: {}\n{ldif}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn dn(&self, uid: &str) -> String {
        format!("uid={uid},{}", self.base)
    }

    fn add_person(&self, uid: &str, given: &str, sn: &str, dept: &str) -> String {
        let dn = self.dn(uid);
        format!(
            "dn: {dn}\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: scimsyncLockable\n\
             uid: {uid}\ncn: {given} {sn}\ngivenName: {given}\nsn: {sn}\n\
             mail: {uid}@example.com\ndepartmentNumber: {dept}\nemployeeNumber: E-{uid}\n\n"
        )
    }

    fn add_group(&self, name: &str, uids: &[&str]) -> String {
        let members: String = uids
            .iter()
            .map(|u| format!("member: {}\n", self.dn(u)))
            .collect();
        format!(
            "dn: cn={name},{}\nchangetype: add\nobjectClass: groupOfNames\ncn: {name}\n{members}\n",
            self.base
        )
    }

    /// sync.toml reading this subtree through `url` (the server, or a proxy in front of it).
    fn write_config(&self, env: &Env, url: &str, max_deprovisions: &str) {
        let config = format!(
            r#"
[source]
kind = "ldap"

[source.ldap]
url = "{url}"
bind_dn = "{bind_dn}"
password_env = "E2E_LDAP_PASSWORD"
base_dn = "{base}"
page_size = 25
timeout = "20s"

[target]
url = "{target}"
token_env = "E2E_SCIM_TOKEN"
profile = "miro"

[scope]
groups = ["Miro Users"]

[roles]
admin_groups = ["Miro Admins"]

[policy]
max_deprovisions = "{max_deprovisions}"

[state]
path = "state.db"
"#,
            bind_dn = self.bind_dn,
            base = self.base,
            target = env.emu.base_url,
        );
        std::fs::write(env.path("ldap.toml"), config).unwrap();
    }

    async fn run(&self, env: &Env, args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new(crate::kit::bin());
        cmd.arg("--config")
            .arg(env.path("ldap.toml"))
            .args(args)
            .env("E2E_SCIM_TOKEN", TOKEN)
            .env("E2E_LDAP_PASSWORD", &self.password)
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
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "sync failed:\n{}\n{}", run.stdout, run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_lifecycle_add_modify_lock_delete() {
    let Some(ldap) = slapd("ldap_lifecycle_add_modify_lock_delete") else {
        return;
    };
    let env = Env::new(Seed::default()).await;
    let mut ldif = String::new();
    for (uid, given, sn, dept) in [
        ("ann", "Ann", "Lee", "Eng"),
        ("bob", "Bob", "Stone", "Eng"),
        ("cy", "Cy", "Park", "Sales"),
        ("dee", "Dee", "Ruiz", "Ops"),
    ] {
        ldif.push_str(&ldap.add_person(uid, given, sn, dept));
    }
    ldif.push_str(&ldap.add_group("Miro Users", &["ann", "bob", "cy", "dee"]));
    ldif.push_str(&ldap.add_group("Miro Admins", &["ann"]));
    ldap.modify(&ldif);
    ldap.write_config(&env, &ldap.url, "50%");

    ok(&ldap.run(&env, &["sync", "--now"]).await);
    let users = env.users();
    assert_eq!(users.len(), 4, "{users:?}");
    let ann = env.user("ann@example.com").unwrap();
    assert_eq!(ann.display_name, "Ann Lee");
    assert_eq!(ann.role, "ORGANIZATION_INTERNAL_ADMIN");
    assert_eq!(attr(&ann, "department"), Some("Eng"));
    assert_eq!(attr(&ann, "employeeNumber"), Some("E-ann"));

    // Between cycles: a new hire, a department change, a lock, and a departure.
    let mut ldif = ldap.add_person("eve", "Eve", "Moss", "Eng");
    ldif.push_str(&format!(
        "dn: cn=Miro Users,{}\nchangetype: modify\nadd: member\nmember: {}\n\n",
        ldap.base,
        ldap.dn("eve")
    ));
    ldif.push_str(&format!(
        "dn: {}\nchangetype: modify\nreplace: departmentNumber\ndepartmentNumber: Sales\n\n",
        ldap.dn("bob")
    ));
    ldif.push_str(&format!(
        "dn: {}\nchangetype: modify\nadd: nsAccountLock\nnsAccountLock: TRUE\n\n",
        ldap.dn("cy")
    ));
    ldif.push_str(&format!("dn: {}\nchangetype: delete\n\n", ldap.dn("dee")));
    ldap.modify(&ldif);

    let plan = ldap.run(&env, &["plan"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    ok(&ldap.run(&env, &["sync", "--now"]).await);

    let eve = env.user("eve@example.com").expect("eve was created");
    assert!(eve.active);
    let bob = env.user("bob@example.com").unwrap();
    assert_eq!(attr(&bob, "department"), Some("Sales"));
    assert!(bob.active);
    assert!(
        !env.user("cy@example.com").unwrap().active,
        "locked: deactivated"
    );
    assert!(
        !env.user("dee@example.com").unwrap().active,
        "deleted: deactivated"
    );
    assert!(env.user("ann@example.com").unwrap().active);

    // The operations, as the audit log names them.
    let events = env_events(&ldap, &env).await;
    for (kind, who) in [
        ("user_create_provision", "eve@example.com"),
        ("user_update_provision", "bob@example.com"),
        ("user_deprovision", "cy@example.com"),
        ("user_deprovision", "dee@example.com"),
    ] {
        assert!(
            events
                .iter()
                .any(|e| e["event_type"] == kind && e.to_string().contains(who)),
            "no {kind} event for {who}: {events:#?}"
        );
    }

    // Unlocking reactivates; a third cycle with no change sends nothing.
    ldap.modify(&format!(
        "dn: {}\nchangetype: modify\ndelete: nsAccountLock\n\n",
        ldap.dn("cy")
    ));
    ok(&ldap.run(&env, &["sync", "--now"]).await);
    assert!(env.user("cy@example.com").unwrap().active);
    let writes = env.stats().writes;
    ok(&ldap.run(&env, &["sync", "--now"]).await);
    assert_eq!(
        env.stats().writes,
        writes,
        "an unchanged directory sends nothing"
    );
}

async fn env_events(ldap: &Slapd, env: &Env) -> Vec<serde_json::Value> {
    let run = ldap.run(env, &["events", "--output", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A TCP proxy on 127.0.0.1 that forwards to `upstream` and, on every connection, closes both
/// sides once `cut_after` bytes have come back from the server.
async fn cutting_proxy(upstream: String, cut_after: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Bounded: a handful of connections is all a test makes.
        for _ in 0..16 {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut sent = 0usize;
                let mut buf = vec![0u8; 4096];
                while sent < cut_after {
                    let want = buf.len().min(cut_after - sent);
                    match sr.read(&mut buf[..want]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            sent += n;
                        }
                    }
                }
                up.abort();
                // Dropping both halves closes the client's connection mid-response.
            });
        }
    });
    format!("ldap://{addr}/")
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_connection_cut_midway_fails_the_cycle_without_writes() {
    let Some(ldap) = slapd("ldap_connection_cut_midway_fails_the_cycle_without_writes") else {
        return;
    };
    let env = Env::new(Seed::default()).await;
    let uids: Vec<String> = (0..120).map(|i| format!("p{i:03}")).collect();
    let mut ldif: String = uids
        .iter()
        .map(|u| ldap.add_person(u, "Pat", u, "Eng"))
        .collect();
    let refs: Vec<&str> = uids.iter().map(String::as_str).collect();
    ldif.push_str(&ldap.add_group("Miro Users", &refs));
    ldap.modify(&ldif);

    // 100%: nothing but the reader's all-or-nothing stands between a short read and a purge.
    ldap.write_config(&env, &ldap.url, "100%");
    ok(&ldap.run(&env, &["sync", "--now"]).await);
    assert_eq!(env.users().len(), 120);
    let writes = env.stats().writes;

    // The same directory through a proxy that cuts the connection partway through the users.
    let upstream = ldap
        .url
        .trim_start_matches("ldap://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = cutting_proxy(upstream, 12_000).await;
    ldap.write_config(&env, &proxy, "100%");
    let run = ldap.run(&env, &["sync", "--now"]).await;
    assert_eq!(
        run.code, 1,
        "a cut read must fail the cycle:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains("no snapshot was taken") || run.stderr.contains("stopped after"),
        "the error says what happened: {}",
        run.stderr
    );
    assert_eq!(env.stats().writes, writes, "no write after a cut read");
    assert!(env.users().iter().all(|u| u.active), "nobody deprovisioned");
}

/// A member DN spelled otherwise than its entry's (attribute types in capitals, spaces around
/// the separators) still names that user; a member DN that names no user read is a warning
/// event naming the group and the value, and counted in the plan, instead of a silent drop.
#[tokio::test(flavor = "multi_thread")]
async fn ldap_member_dns_match_however_spelled_and_unresolved_ones_are_reported() {
    let Some(ldap) =
        slapd("ldap_member_dns_match_however_spelled_and_unresolved_ones_are_reported")
    else {
        return;
    };
    let env = Env::new(Seed::default()).await;
    let mut ldif = ldap.add_person("ann", "Ann", "Lee", "Eng");
    ldif.push_str(&ldap.add_person("bob", "Bob", "Stone", "Eng"));
    ldif.push_str(&format!(
        "dn: cn=Miro Users,{base}\nchangetype: add\nobjectClass: groupOfNames\ncn: Miro Users\n\
         member: {ann}\nmember: UID=bob , {base}\nmember: uid=ghost,{base}\n\n",
        base = ldap.base,
        ann = ldap.dn("ann"),
    ));
    ldap.modify(&ldif);
    ldap.write_config(&env, &ldap.url, "50%");

    let plan = ldap.run(&env, &["plan"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains("1 unresolved group members"),
        "{}",
        plan.stdout
    );
    ok(&ldap.run(&env, &["sync", "--now"]).await);
    assert!(env.user("bob@example.com").is_some(), "bob is in scope");
    let warnings: Vec<serde_json::Value> = env_events(&ldap, &env)
        .await
        .into_iter()
        .filter(|e| e["detail"]["warning"] == "unresolved_member")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["detail"]["group"], "Miro Users");
    assert!(
        warnings[0]["detail"]["value"]
            .as_str()
            .unwrap()
            .starts_with("uid=ghost,"),
        "{warnings:?}"
    );
}
