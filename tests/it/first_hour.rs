//! A new admin's first hour: the demo's commands read well (no Rust Debug text, every error
//! once and in words, the same counts everywhere), and the texts people read are pinned as
//! golden files under `tests/it/golden/` (`UPDATE_EXPECT=1` rewrites them).

use crate::kit::{Env, Run, TOKEN};
use scimsync_emulator::{EmulatorConfig, GroupModel, Seed};
use std::path::{Path, PathBuf};

const REST_TOKEN: &str = "e2e-first-hour-rest";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Compares `actual` with the golden file `name`, or rewrites it under `UPDATE_EXPECT=1`.
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("it/golden")
        .join(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {} (UPDATE_EXPECT=1 writes it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its golden file (UPDATE_EXPECT=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// What varies from run to run: the emulator's address, timestamps, durations.
pub fn normalize(env: &Env, text: &str) -> String {
    let text = text
        .replace(&env.emu.addr.to_string(), "127.0.0.1:PORT")
        .replace(&env.dir.path().display().to_string(), "DIR");
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    let is_time = word.len() >= 20
                        && word.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                        && word.as_bytes()[4] == b'-'
                        && word.contains('T');
                    if is_time {
                        "TIME".to_owned()
                    } else {
                        without_ids(word)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
                + "\n"
        })
        .collect()
}

/// Target ids (19 digits, given in the order concurrent creates land) as `ID`.
fn without_ids(word: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in word.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() >= 15 {
            out.push_str("ID");
        } else {
            out.push_str(&digits);
        }
        digits.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Rust's Debug text in output meant for people: `Some(…)`, `None`, `Ok(…)`, `Err(…)`, `[]`.
pub fn assert_tidy(what: &str, text: &str) {
    for needle in ["Some(", "None", "Ok(", "Err(", "=[]", "\\\""] {
        assert!(
            !text.contains(needle),
            "{what} prints Rust Debug text ({needle}):\n{text}"
        );
    }
}

/// The demo: the repository's sync.toml, examples/directory.json and the emulator's seed, with
/// the emulator on a port of its own and the store in a temp dir.
async fn demo() -> Env {
    let seed: Seed = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/emulator-seed.json")).unwrap(),
    )
    .unwrap();
    let env = Env::with_config(EmulatorConfig {
        token: TOKEN.into(),
        rest_token: REST_TOKEN.into(),
        seed,
        group_model: GroupModel::UserGroup,
        ..EmulatorConfig::default()
    })
    .await;
    let config = std::fs::read_to_string(repo().join("sync.toml"))
        .unwrap()
        .replace("http://127.0.0.1:8790", &format!("http://{}", env.emu.addr))
        .replace(
            "examples/directory.json",
            &repo().join("examples/directory.json").display().to_string(),
        )
        .replace("\"MIRO_SCIM_TOKEN\"", "\"E2E_SCIM_TOKEN\"")
        .replace("\"MIRO_REST_TOKEN\"", "\"E2E_REST_TOKEN\"")
        .replace("path = \"scimsync.db\"", "path = \"state.db\"");
    std::fs::write(env.path("demo.toml"), config).unwrap();
    env
}

async fn run(env: &Env, args: &[&str]) -> Run {
    exec(
        env.path("demo.toml"),
        args.iter().map(|s| (*s).to_owned()).collect(),
    )
    .await
}

/// The real binary on `config`, with both tokens in the environment as the demo sets them, and
/// `NO_COLOR` unset so colour is the flags' decision.
async fn exec(config: PathBuf, args: Vec<String>) -> Run {
    let mut cmd = tokio::process::Command::new(crate::kit::bin());
    cmd.arg("--config")
        .arg(&config)
        .args(&args)
        .env("E2E_SCIM_TOKEN", TOKEN)
        .env("E2E_REST_TOKEN", REST_TOKEN)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("scimsync did not finish within 120 s")
        .expect("cannot run scimsync");
    Run::from(out)
}

/// `n` people, all in "Miro Users".
fn people(n: usize) -> serde_json::Value {
    let users: Vec<_> = (0..n)
        .map(|i| {
            crate::kit::user(
                &format!("u{i:03}"),
                &format!("person{i:03}@example.com"),
                "Person",
                &format!("N{i:03}"),
                "Eng",
            )
        })
        .collect();
    let ids: Vec<_> = (0..n).map(|i| format!("u{i:03}")).collect();
    serde_json::json!({
        "users": users,
        "groups": [{"id": "g1", "name": "Miro Users", "members": ids}],
    })
}

fn count_after(text: &str, word: &str) -> usize {
    // "54 succeeded, 1 failed, 3 skipped": the number before `word`.
    let at = text
        .find(&format!(" {word}"))
        .unwrap_or_else(|| panic!("no {word} in {text}"));
    text[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_reads_well_and_counts_alike() {
    let env = demo().await;
    let check = run(&env, &["check"]).await;
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
    let plan = run(&env, &["plan"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let first = run(&env, &["sync", "--now"]).await;
    let second = run(&env, &["sync", "--now"]).await;
    let status = run(&env, &["status"]).await;
    let events = run(&env, &["events", "--run", "1"]).await;
    let failed = run(&env, &["events", "--failed"]).await;
    let list = run(&env, &["approve-deletes", "--list"]).await;
    for (what, r) in [
        ("check", &check),
        ("plan", &plan),
        ("sync", &first),
        ("second sync", &second),
        ("status", &status),
        ("events", &events),
        ("events --failed", &failed),
        ("approve-deletes --list", &list),
    ] {
        assert_tidy(what, &r.stdout);
        assert_tidy(what, &r.stderr);
        // Not a terminal, no --color: no escape codes in logs.
        assert!(
            !r.stderr.contains('\u{1b}'),
            "{what}: colour in a log:\n{}",
            r.stderr
        );
    }
    assert_eq!(second.code, 0, "{}", second.stderr);

    // The group Miro already had is logged as adopted, not as a create.
    assert!(
        first
            .stderr
            .lines()
            .any(|l| l.contains("adopted event=group_create_provision group=Engineering")),
        "{}",
        first.stderr
    );
    // One definition of failed and skipped: the run's summary, `events` and `status` agree.
    let summary = first
        .stderr
        .lines()
        .find(|l| l.starts_with("run 1:"))
        .unwrap_or_else(|| panic!("no summary:\n{}", first.stderr));
    let fails = events
        .stdout
        .lines()
        .filter(|l| l.contains(" FAIL "))
        .count();
    let skips = events
        .stdout
        .lines()
        .filter(|l| l.contains(" SKIP "))
        .count();
    let plan_skips = plan
        .stdout
        .lines()
        .filter(|l| l.starts_with("! skip"))
        .count();
    assert_eq!(
        count_after(summary, "failed"),
        fails,
        "{summary}\n{}",
        events.stdout
    );
    assert_eq!(
        count_after(summary, "skipped"),
        skips + plan_skips,
        "{summary}\n{}\n{}",
        events.stdout,
        plan.stdout
    );
    let run1 = status
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("run 1 "))
        .unwrap();
    assert!(
        run1.contains(&format!(
            "failed {} skipped {}",
            count_after(summary, "failed"),
            count_after(summary, "skipped")
        )),
        "{run1}\n{summary}"
    );
    // The guest Miro refused: a skip, listed by `events --failed` as needing a look.
    assert!(
        failed
            .stdout
            .lines()
            .any(|l| l.contains(" SKIP ") && l.contains("noor.aziz@agency.example")),
        "{}",
        failed.stdout
    );
    golden("status.txt", &normalize(&env, &status.stdout));
}

/// Each error a newcomer meets: printed once, in words, with the right exit code.
#[tokio::test(flavor = "multi_thread")]
async fn errors_are_printed_once_in_words() {
    let env = demo().await;
    let config = env.path("demo.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut cases: Vec<(&str, PathBuf, Vec<&str>, i32)> = Vec::new();
    // A mistyped state path: no store is created.
    let typo = env.path("typo.toml");
    std::fs::write(
        &typo,
        text.replace("path = \"state.db\"", "path = \"stat.db\""),
    )
    .unwrap();
    cases.push(("status-no-store", typo.clone(), vec!["status"], 1));
    cases.push(("events-no-store", typo.clone(), vec!["events"], 1));
    cases.push(("sync-without-now", config.clone(), vec!["sync"], 2));
    cases.push((
        "events-bad-since",
        config.clone(),
        vec!["events", "--since", "5x"],
        2,
    ));
    let relative = env.path("relative.toml");
    let url = format!("http://{}/api/v1/scim", env.emu.addr);
    std::fs::write(&relative, text.replace(&url, "miro.com/api/v1/scim")).unwrap();
    cases.push(("url-without-scheme", relative, vec!["check"], 1));
    let tls = env.path("tls.toml");
    std::fs::write(
        &tls,
        text.replace(&url, &format!("https://{}/api/v1/scim", env.emu.addr)),
    )
    .unwrap();
    cases.push(("https-to-plain-http", tls, vec!["plan"], 1));
    let runs = run_all(&cases).await;
    for ((name, _, args, code), r) in cases.iter().zip(&runs) {
        assert_eq!(r.code, *code, "{name} {args:?}:\n{}", r.stderr);
        assert_tidy(name, &r.stderr);
        let errors: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{name}: printed once:\n{}", r.stderr);
        assert!(
            !r.stderr.contains(" ERROR "),
            "{name}: logged too:\n{}",
            r.stderr
        );
        golden(&format!("error-{name}.txt"), &normalize(&env, errors[0]));
    }
    assert!(!env.path("stat.db").exists(), "status created a store");
    // The retries before giving up on the handshake are not silent.
    let tls = &runs[5];
    assert!(tls.stderr.contains("; retrying in "), "{}", tls.stderr);
}

/// All the cases at once, so the slow ones (a retried TLS handshake) overlap.
async fn run_all(cases: &[(&str, PathBuf, Vec<&str>, i32)]) -> Vec<Run> {
    let handles: Vec<_> = cases
        .iter()
        .map(|(_, config, args, _)| {
            let args = args.iter().map(|s| (*s).to_owned()).collect();
            tokio::spawn(exec(config.clone(), args))
        })
        .collect();
    let mut runs = Vec::new();
    for h in handles {
        runs.push(h.await.unwrap());
    }
    runs
}

/// The plan's text for people: the summary first, then the ops by kind; a small plan in full,
/// a large one cut at 200 a kind (with `--full-list` for all), and one the guard would hold.
#[tokio::test(flavor = "multi_thread")]
async fn plan_text_small_large_and_held() {
    // Small: the demo's first plan.
    let env = demo().await;
    let small = run(&env, &["plan"]).await;
    assert_eq!(small.code, 0, "{}", small.stderr);
    golden("plan-small.txt", &normalize(&env, &small.stdout));

    // Large: 250 people to create, one already there to adopt.
    let env = Env::new(Seed::default()).await;
    env.write_directory(&people(250));
    let large = env.run(&["plan"]).await;
    assert_eq!(large.code, 0, "{}", large.stderr);
    assert_tidy("plan", &large.stdout);
    let creates = large
        .stdout
        .lines()
        .filter(|l| l.starts_with("+ create"))
        .count();
    assert_eq!(creates, LIMIT, "{}", large.stdout);
    golden("plan-large.txt", &normalize(&env, &large.stdout));
    let full = env.run(&["plan", "--full-list"]).await;
    let creates = full
        .stdout
        .lines()
        .filter(|l| l.starts_with("+ create"))
        .count();
    assert_eq!(creates, 250);
    assert!(!full.stdout.contains("more create"), "{}", full.stdout);

    // Held: four users synced, three gone from the directory, one deprovision allowed.
    let mut env = Env::new(Seed::default()).await;
    env.sync().await;
    env.policy = "max_deprovisions = 1".to_owned();
    let mut company = crate::kit::company();
    company["groups"][0]["members"] = serde_json::json!(["u1"]);
    env.write_directory(&company);
    let held = env.run(&["plan", "--detailed-exitcode"]).await;
    assert_eq!(held.code, 4, "{}\n{}", held.stdout, held.stderr);
    let summary_at = held.stdout.find("\nPlan: ").unwrap();
    let held_at = held.stdout.find("HELD").unwrap();
    let first_op = held.stdout.find("\n- deactivate").unwrap();
    assert!(
        summary_at < held_at && held_at < first_op,
        "{}",
        held.stdout
    );
    golden("plan-held.txt", &normalize(&env, &held.stdout));
}

/// The text's cut per kind (render::LIST_LIMIT).
const LIMIT: usize = 200;

/// A wait over 2 s says what it waits for, once for all the requests queued behind it.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_wait_says_what_it_waits_for() {
    let mut env = Env::with_config(EmulatorConfig {
        token: TOKEN.into(),
        limits: Some(scimsync_emulator::RateLimits::miro_scaled(
            std::time::Duration::from_secs(3),
        )),
        ..EmulatorConfig::default()
    })
    .await;
    env.target_extra = "[target.rate_limits]\nwindow = \"3s\"\n".to_owned();
    env.write_directory(&people(210));
    let run = env.sync().await;
    assert_tidy("sync", &run.stderr);
    let waits: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("waiting") && l.contains("users_post budget (200 per 3s)"))
        .collect();
    assert_eq!(waits.len(), 1, "{}", run.stderr);
}

/// `check` reads the directory as a cycle would and gives one verdict across both sides: a
/// target it cannot reach does not hide the directory's problems, nor the reverse.
#[tokio::test(flavor = "multi_thread")]
async fn check_gives_one_verdict_across_directory_and_target() {
    let env = demo().await;
    let config = env.path("demo.toml");
    let ok = run(&env, &["check"]).await;
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    // Log lines: colour only when asked for (stderr is not a terminal here).
    assert!(!ok.stderr.contains('\u{1b}'), "{}", ok.stderr);
    let coloured = run(&env, &["--color", "always", "check"]).await;
    assert!(coloured.stderr.contains("\u{1b}["), "{}", coloured.stderr);
    assert!(
        ok.stdout
            .ends_with("verdict: ready: the target and the directory are as a cycle needs them\n"),
        "{}",
        ok.stdout
    );

    // A record without an email, and an admin group name that matches nothing; the target
    // answers on a scheme it does not speak.
    let mut directory: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/directory.json")).unwrap(),
    )
    .unwrap();
    directory["users"][0]["email"] = serde_json::json!("not-an-email");
    env.write_directory(&directory);
    let url = format!("http://{}/api/v1/scim", env.emu.addr);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            &repo().join("examples/directory.json").display().to_string(),
            &env.path("directory.json").display().to_string(),
        )
        .replace(
            "admin_groups = [\"Miro Admins\"]",
            "admin_groups = [\"Miro Admin\"]",
        )
        .replace(&url, &format!("https://{}/api/v1/scim", env.emu.addr));
    let broken = env.path("broken.toml");
    std::fs::write(&broken, text).unwrap();
    let bad = exec(broken, vec!["check".into()]).await;
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);
    assert_tidy("check", &bad.stdout);
    let out = normalize(&env, &bad.stdout);
    assert!(out.contains("does not speak TLS"), "{out}");
    assert!(out.contains("1 invalid"), "{out}");
    assert!(out.contains("Miro Admin"), "{out}");
    assert!(out.contains("verdict: NOT READY: 2 error(s)"), "{out}");
    golden("check-not-ready.txt", &out);
}
