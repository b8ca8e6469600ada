//! The decisions of user ops, driven by scripted answers on a fake clock: no runtime, no
//! socket. Each case says what the target answers, in order; the run checks the requests the
//! machine asked for, and how the op ended.

#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use scimsync_model::{AttrValue, paths};
use scimsync_scim::parse_error_body;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::LazyLock;

/// The fake clock's start, and how long every answer takes.
const T0: Duration = Duration::from_secs(1_000);
const LATENCY: Duration = Duration::from_millis(40);

static POLICY: LazyLock<RetryPolicy> = LazyLock::new(|| RetryPolicy {
    jitter_seed: Some(7),
    ..RetryPolicy::default()
});

/// One scripted answer.
enum A {
    /// A 2xx with this body.
    Ok(u16, Value),
    /// A 2xx with this body and `ETag` header.
    Tagged(u16, Value, &'static str),
    /// An error as the client classifies it.
    Err(ScimError),
    /// The case-insensitive search's result.
    Found(Option<TargetUser>),
}

/// An error answer as the client would classify the target's status and body.
fn status(status: u16, body: &str) -> A {
    A::Err(ScimError::from_response(
        status,
        &parse_error_body(body.as_bytes()),
        None,
    ))
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "userName": name, "active": true})
}

fn list(users: &[Value]) -> A {
    A::Ok(
        200,
        json!({"totalResults": users.len(), "Resources": users}),
    )
}

fn server_error() -> A {
    A::Err(ScimError::Server {
        status: 503,
        detail: None,
    })
}

fn target(id: &str, name: &str) -> TargetUser {
    TargetUser {
        id: ScimId::new(id),
        user_name: name.into(),
        active: true,
        attrs: Attrs::new(),
    }
}

/// What a run saw.
#[derive(Debug)]
struct Ran<O = Done> {
    /// `METHOD path` of each request asked for (`?filter` for a lookup), `FIND name` for a
    /// search.
    sent: Vec<String>,
    bodies: Vec<String>,
    if_match: Vec<Option<IfMatch>>,
    /// When each request was asked for, on the fake clock.
    at: Vec<Duration>,
    /// What each search asked to be newer than.
    newer_than: Vec<Option<Duration>>,
    done: O,
    elapsed: Duration,
    retries: u64,
    learned: Vec<(ScimId, String)>,
}

impl<O> Ran<O> {
    fn count(&self, line: &str) -> usize {
        self.sent.iter().filter(|s| *s == line).count()
    }
}

/// Drives `op` with the script, at most 1,000 steps; every answer must be used.
fn run<M: Decide>(mut op: M, script: Vec<A>) -> Ran<M::Outcome> {
    let mut script: VecDeque<A> = script.into();
    let mut now = T0;
    let (mut sent, mut bodies, mut if_match) = (Vec::new(), Vec::new(), Vec::new());
    let (mut retries, mut learned) = (0, Vec::new());
    let (mut at, mut searches) = (Vec::new(), Vec::new());
    for _ in 0..1_000 {
        let input = match op.poll(now) {
            Step::Done(done) => {
                assert!(script.is_empty(), "{} answers left unused", script.len());
                return Ran {
                    sent,
                    bodies,
                    if_match,
                    at,
                    newer_than: searches,
                    done,
                    elapsed: now - T0,
                    retries,
                    learned,
                };
            }
            Step::Wait(until) => {
                assert!(until > now, "a wait that is over already");
                now = until;
                continue;
            }
            Step::Send(out) => {
                let req = &out.request;
                let query = if req.query.iter().any(|(k, _)| *k == "filter") {
                    "?filter"
                } else {
                    ""
                };
                sent.push(format!("{} {}{query}", req.method, req.path));
                bodies.push(
                    String::from_utf8_lossy(req.body.as_deref().unwrap_or_default()).into_owned(),
                );
                if_match.push(out.if_match.clone());
                at.push(now);
                now += LATENCY;
                match script.pop_front() {
                    Some(A::Ok(status, json)) => Input::Answer(Ok(Reply {
                        status,
                        json: Some(json),
                        etag: None,
                    })),
                    Some(A::Tagged(status, json, etag)) => Input::Answer(Ok(Reply {
                        status,
                        json: Some(json),
                        etag: Some(etag.into()),
                    })),
                    Some(A::Err(e)) => Input::Answer(Err(e)),
                    Some(A::Found(_)) => panic!("a search result scripted for {sent:?}"),
                    None => panic!("no answer scripted for {sent:?}"),
                }
            }
            Step::FindAnyCase {
                user_name,
                newer_than,
            } => {
                sent.push(format!("FIND {user_name}"));
                searches.push(newer_than);
                match script.pop_front() {
                    Some(A::Found(user)) => Input::Found(Ok(user)),
                    Some(A::Err(e)) => Input::Found(Err(e)),
                    _ => panic!("no search result scripted for {sent:?}"),
                }
            }
        };
        op.handle(now, input);
        retries += op.take_retries();
        learned.extend(op.take_learned());
    }
    panic!("the op never ended: {sent:?}");
}

fn setup(profile: &Profile) -> Setup<'_> {
    Setup {
        profile,
        writes: Writes {
            patch: true,
            etag: false,
        },
        case_exact: false,
        creates_checked: false,
        retry: &POLICY,
        seed: Some(7),
    }
}

fn attrs(pairs: &[(&str, &str)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), AttrValue::text(*v)))
        .collect()
}

fn change(path: &str, new: &str) -> Change {
    Change {
        path: path.into(),
        old: None,
        new: Some(AttrValue::text(new)),
    }
}

const LOOKUP: &str = "GET /Users?filter";
const POST: &str = "POST /Users";
const MIRO_NOT_UNIQUE: &str = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"User name 'dup@x.com' is invalid: 'not unique'"}"#;
const RFC_UNIQUENESS: &str =
    r#"{"status":"409","scimType":"uniqueness","detail":"User already exists"}"#;

/// A create's decisions, one row per shape of the target's answers.
#[test]
fn create_decisions() {
    struct Case {
        name: &'static str,
        profile: Profile,
        case_exact: bool,
        creates_checked: bool,
        script: Vec<A>,
        sent: &'static [&'static str],
        done: fn(&Done) -> bool,
    }
    fn case(
        name: &'static str,
        profile: Profile,
        script: Vec<A>,
        sent: &'static [&'static str],
        done: fn(&Done) -> bool,
    ) -> Case {
        Case {
            name,
            profile,
            case_exact: false,
            creates_checked: false,
            script,
            sent,
            done,
        }
    }
    let cases = vec![
        case(
            "nobody has it: lookup, then POST",
            Profile::generic(),
            vec![list(&[]), A::Ok(201, user("42", "dup@x.com"))],
            &[LOOKUP, POST],
            |d| matches!(d, Done::Created { id, .. } if id.as_str() == "42"),
        ),
        case(
            "the lookup finds it (another case): adopted, no POST",
            Profile::generic(),
            vec![list(&[user("7", "Dup@X.com")])],
            &[LOOKUP],
            |d| matches!(d, Done::AdoptedExisting(u) if u.id.as_str() == "7"),
        ),
        case(
            "a loose filter's other users are not the user",
            Profile::generic(),
            vec![
                list(&[user("8", "dup@x.co")]),
                A::Ok(201, user("42", "dup@x.com")),
            ],
            &[LOOKUP, POST],
            |d| matches!(d, Done::Created { id, .. } if id.as_str() == "42"),
        ),
        case(
            "Miro's 400 not unique: looked up again and adopted, one POST",
            Profile::miro(),
            vec![
                list(&[]),
                status(400, MIRO_NOT_UNIQUE),
                list(&[user("77", "Dup@X.com")]),
            ],
            &[LOOKUP, POST, LOOKUP],
            |d| matches!(d, Done::AdoptedExisting(u) if u.id.as_str() == "77"),
        ),
        case(
            "RFC 7644's 409 uniqueness: the same",
            Profile::generic(),
            vec![
                list(&[]),
                status(409, RFC_UNIQUENESS),
                list(&[user("77", "dup@x.com")]),
            ],
            &[LOOKUP, POST, LOOKUP],
            |d| matches!(d, Done::AdoptedExisting(u) if u.id.as_str() == "77"),
        ),
        case(
            "not unique, and the filter still misses: the case-insensitive search finds it",
            Profile::miro(),
            vec![
                list(&[]),
                status(400, MIRO_NOT_UNIQUE),
                list(&[]),
                A::Found(Some(target("78", "DUP@x.com"))),
            ],
            &[LOOKUP, POST, LOOKUP, "FIND dup@x.com"],
            |d| matches!(d, Done::AdoptedExisting(u) if u.id.as_str() == "78"),
        ),
        case(
            "not unique, and nobody the target shows has it: a guest, not retried",
            Profile::miro(),
            vec![
                list(&[]),
                status(400, MIRO_NOT_UNIQUE),
                list(&[]),
                A::Found(None),
            ],
            &[LOOKUP, POST, LOOKUP, "FIND dup@x.com"],
            |d| matches!(d, Done::Guest(m) if m.contains("not unique") && m.contains("guest")),
        ),
        case(
            "a 404 to the POST: a guest holds the email",
            Profile::miro(),
            vec![list(&[]), status(404, r#"{"status":"404"}"#)],
            &[LOOKUP, POST],
            |d| matches!(d, Done::Guest(m) if m.contains("404")),
        ),
        case(
            "a 409 for a business rule fails that user only, never retried",
            Profile::miro(),
            vec![
                list(&[]),
                status(
                    409,
                    r#"{"status":"409","detail":"Full users limit reached for organization"}"#,
                ),
            ],
            &[LOOKUP, POST],
            |d| matches!(d, Done::Failed(m) if m.contains("Full users limit")),
        ),
        Case {
            creates_checked: true,
            ..case(
                "this cycle's read stands for the lookup where duplicates are refused",
                Profile::miro(),
                vec![A::Ok(201, user("42", "dup@x.com"))],
                &[POST],
                |d| matches!(d, Done::Created { .. }),
            )
        },
        Case {
            creates_checked: true,
            ..case(
                "but not where the target takes a second account of a userName",
                Profile::generic(),
                vec![list(&[]), A::Ok(201, user("42", "dup@x.com"))],
                &[LOOKUP, POST],
                |d| matches!(d, Done::Created { .. }),
            )
        },
        Case {
            case_exact: true,
            ..case(
                "a caseExact userName: searched case-insensitively before the POST",
                Profile::generic(),
                vec![list(&[]), A::Found(Some(target("9", "Dup@x.com")))],
                &[LOOKUP, "FIND dup@x.com"],
                |d| matches!(d, Done::AdoptedExisting(u) if u.id.as_str() == "9"),
            )
        },
        case(
            "a POST whose answer is lost looks up before posting again",
            Profile::miro(),
            vec![
                list(&[]),
                A::Err(ScimError::Transport {
                    message: "reset".into(),
                }),
                list(&[user("42", "dup@x.com")]),
            ],
            &[LOOKUP, POST, LOOKUP],
            |d| matches!(d, Done::AdoptedExisting(u) if u.id.as_str() == "42"),
        ),
        case(
            "a 2xx confirming another user is no success: looked up again",
            Profile::miro(),
            vec![
                list(&[]),
                A::Ok(201, user("5", "someone@else.com")),
                list(&[]),
                A::Ok(201, user("42", "dup@x.com")),
            ],
            &[LOOKUP, POST, LOOKUP, POST],
            |d| matches!(d, Done::Created { id, .. } if id.as_str() == "42"),
        ),
        case(
            "a 429 was not applied: the POST goes again, without a lookup",
            Profile::miro(),
            vec![
                list(&[]),
                A::Err(ScimError::RateLimited { retry_after: None }),
                A::Ok(201, user("42", "dup@x.com")),
            ],
            &[LOOKUP, POST, POST],
            |d| matches!(d, Done::Created { .. }),
        ),
        case(
            "a lookup's 5xx is retried as a read",
            Profile::miro(),
            vec![
                server_error(),
                list(&[]),
                A::Ok(201, user("42", "dup@x.com")),
            ],
            &[LOOKUP, LOOKUP, POST],
            |d| matches!(d, Done::Created { .. }),
        ),
        case(
            "a 401 halts",
            Profile::miro(),
            vec![status(401, r#"{"status":"401"}"#)],
            &[LOOKUP],
            |d| matches!(d, Done::Halted(m) if m.contains("401")),
        ),
        case(
            "a run halted before the send: not sent",
            Profile::miro(),
            vec![A::Err(ScimError::Halted)],
            &[LOOKUP],
            |d| *d == Done::NotSent,
        ),
    ];
    for case in cases {
        let mut s = setup(&case.profile);
        s.case_exact = case.case_exact;
        s.creates_checked = case.creates_checked;
        let op = UserOp::create(s, T0, "dup@x.com", &Attrs::new());
        let ran = run(op, case.script);
        assert_eq!(ran.sent, case.sent, "{}", case.name);
        assert!((case.done)(&ran.done), "{}: {:?}", case.name, ran.done);
        assert!(ran.count(POST) <= 2, "{}", case.name);
    }
}

/// A POST refused for one attribute (400 invalidValue naming it) posts the rest at once,
/// without a lookup (a 400 created nothing); the outcome holds what was sent.
#[test]
fn a_create_refused_for_one_attribute_posts_the_rest() {
    let profile = Profile::generic();
    let wanted = attrs(&[
        (paths::TITLE, &"x".repeat(300)),
        (paths::DISPLAY_NAME, "Ann"),
    ]);
    let op = UserOp::create(setup(&profile), T0, "a@x.com", &wanted);
    let ran = run(
        op,
        vec![
            list(&[]),
            status(
                400,
                r#"{"status":"400","scimType":"invalidValue","detail":"Attribute 'title' is too long"}"#,
            ),
            A::Ok(201, user("42", "a@x.com")),
        ],
    );
    assert_eq!(ran.sent, [LOOKUP, POST, POST]);
    assert!(ran.bodies[1].contains("title"));
    assert!(!ran.bodies[2].contains("title"), "{}", ran.bodies[2]);
    let Done::Created { id, attrs, dropped } = ran.done else {
        panic!("{:?}", ran.done);
    };
    assert_eq!(id.as_str(), "42");
    assert!(!attrs.contains_key(paths::TITLE) && attrs.contains_key(paths::DISPLAY_NAME));
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].path, paths::TITLE);
    // The user's value, not the attribute: not refused for everyone.
    assert!(!dropped[0].refuses_attribute());
}

/// A user found instead of created is brought in line with what the create would have sent
/// (but never a create-only attribute), in the same op.
#[test]
fn a_user_found_instead_of_created_is_brought_in_line() {
    let profile = Profile::generic();
    let wanted = attrs(&[(paths::DISPLAY_NAME, "Ann Lee")]);
    let op = UserOp::create(setup(&profile), T0, "ann@x.com", &wanted);
    let found = json!({"id": "7", "userName": "ann@x.com", "active": true,
        "displayName": "Ann", "meta": {"version": "W/\"3\""}});
    let ran = run(
        op,
        vec![
            list(&[found]),
            A::Ok(
                200,
                json!({"id": "7", "userName": "ann@x.com", "displayName": "Ann Lee"}),
            ),
        ],
    );
    assert_eq!(ran.sent, [LOOKUP, "PATCH /Users/7"]);
    let Done::AdoptedAligned { user, applied } = ran.done else {
        panic!("{:?}", ran.done);
    };
    assert_eq!(user.id.as_str(), "7");
    assert_eq!(applied.changes.len(), 1);
    assert_eq!(applied.changes[0].old, Some(AttrValue::text("Ann")));
    // The version the lookup showed is kept for a later If-Match.
    assert!(ran.learned.contains(&(ScimId::new("7"), "W/\"3\"".into())));

    // The alignment failing leaves the adoption standing; the next plan diffs it again.
    let op = UserOp::create(setup(&profile), T0, "ann@x.com", &wanted);
    let found = json!({"id": "7", "userName": "ann@x.com", "active": true, "displayName": "Ann"});
    let ran = run(
        op,
        vec![
            list(&[found]),
            status(409, r#"{"status":"409","detail":"no"}"#),
        ],
    );
    assert!(
        matches!(&ran.done, Done::AdoptedExisting(u) if u.id.as_str() == "7"),
        "{:?}",
        ran.done
    );

    // A deactivated user is left to the next plan (which reactivates it first).
    let op = UserOp::create(setup(&profile), T0, "ann@x.com", &wanted);
    let found = json!({"id": "7", "userName": "ann@x.com", "active": false, "displayName": "Ann"});
    let ran = run(op, vec![list(&[found])]);
    assert_eq!(ran.sent, [LOOKUP]);
    assert!(matches!(ran.done, Done::AdoptedExisting(_)));
}

/// A POST's retryable failures follow the create's own schedule on the injected clock:
/// waits that grow, a lookup before each new POST, and an end.
#[test]
fn a_create_failing_again_and_again_gives_up_within_its_policy() {
    let profile = Profile::miro();
    let op = UserOp::create(setup(&profile), T0, "dup@x.com", &Attrs::new());
    let mut script = Vec::new();
    for _ in 0..POLICY.max_attempts {
        script.push(list(&[]));
        script.push(server_error());
    }
    let ran = run(op, script);
    let attempts = POLICY.max_attempts as usize;
    assert_eq!(ran.count(POST), attempts);
    assert_eq!(ran.count(LOOKUP), attempts);
    assert_eq!(ran.retries, POLICY.max_attempts as u64 - 1);
    assert!(
        matches!(&ran.done, Done::Failed(m) if m.contains("503")),
        "{:?}",
        ran.done
    );
    // Backoff with jitter: each delay between the base and twice it, doubling from min_delay.
    let mut least = Duration::ZERO;
    let mut most = Duration::ZERO;
    let mut base = POLICY.min_delay;
    for _ in 1..attempts {
        least += base;
        most += base * 2;
        base = (base * 2).min(POLICY.max_delay);
    }
    let talk = LATENCY * (2 * attempts as u32);
    assert!(
        ran.elapsed >= least + talk && ran.elapsed <= most + talk,
        "{:?} not within {:?}..{:?}",
        ran.elapsed,
        least + talk,
        most + talk
    );
}

/// The same seed, the same schedule: a scenario replays exactly.
#[test]
fn the_same_seed_replays_the_same_waits() {
    let profile = Profile::generic();
    let ran = |seed| {
        let mut s = setup(&profile);
        s.seed = Some(seed);
        let op = UserOp::patch(s, &ScimId::new("9"), &[change(paths::TITLE, "CTO")]);
        run(
            op,
            vec![
                server_error(),
                server_error(),
                A::Ok(200, user("9", "a@x.com")),
            ],
        )
        .elapsed
    };
    assert_eq!(ran(1), ran(1));
    assert_ne!(ran(1), ran(2), "jitter is seeded, not fixed");
}

/// An update's and a deactivation's decisions.
#[test]
fn update_decisions() {
    const DEPT: &str = paths::DEPARTMENT;
    let refused_dept = format!(
        r#"{{"status":"400","scimType":"invalidPath","detail":"Invalid path '{DEPT}' for 'replace' op of operation 2"}}"#
    );
    struct Case {
        name: &'static str,
        changes: Vec<Change>,
        script: Vec<A>,
        sent: usize,
        done: Box<dyn Fn(&Done) -> bool>,
    }
    let cases = vec![
        Case {
            name: "one PATCH",
            changes: vec![change(paths::TITLE, "CTO")],
            script: vec![A::Ok(200, user("9", "a@x.com"))],
            sent: 1,
            done: Box::new(|d| {
                matches!(d, Done::Patched { changes, dropped, failed: None }
                    if changes.len() == 1 && dropped.is_empty())
            }),
        },
        Case {
            name: "a 400 naming one attribute drops it and sends the rest",
            changes: vec![change(paths::DISPLAY_NAME, "Ann Lee"), change(DEPT, "Eng")],
            script: vec![status(400, &refused_dept), A::Ok(200, user("9", "a@x.com"))],
            sent: 2,
            done: Box::new(|d| {
                matches!(d, Done::Patched { changes, dropped, failed: None }
                    if changes.len() == 1 && changes[0].path == paths::DISPLAY_NAME
                        && dropped.len() == 1 && dropped[0].path == DEPT
                        && dropped[0].refuses_attribute())
            }),
        },
        Case {
            name: "only refused attributes: refused, not failed",
            changes: vec![change(DEPT, "Eng")],
            script: vec![status(400, &refused_dept)],
            sent: 1,
            done: Box::new(|d| matches!(d, Done::Refused(dropped) if dropped[0].path == DEPT)),
        },
        Case {
            name: "only a refused value: failed (the user's value, not the target's limit)",
            changes: vec![change(paths::TITLE, "x")],
            script: vec![status(
                400,
                r#"{"status":"400","scimType":"invalidValue","detail":"Attribute 'title' is too long"}"#,
            )],
            sent: 1,
            done: Box::new(|d| matches!(d, Done::Failed(m) if m.contains("refused every change"))),
        },
        Case {
            name: "a vague 400 fails",
            changes: vec![change(paths::TITLE, "x")],
            script: vec![status(400, r#"{"status":"400","detail":"invalid"}"#)],
            sent: 1,
            done: Box::new(|d| matches!(d, Done::Failed(m) if m.contains("400"))),
        },
        Case {
            name: "a 404: gone, the link dropped",
            changes: vec![change(paths::TITLE, "x")],
            script: vec![status(404, r#"{"status":"404"}"#)],
            sent: 1,
            done: Box::new(|d| matches!(d, Done::Skipped { unlink: true, .. })),
        },
        Case {
            name: "5xx retried, then applied",
            changes: vec![change(paths::TITLE, "x")],
            script: vec![server_error(), A::Ok(200, user("9", "a@x.com"))],
            sent: 2,
            done: Box::new(|d| matches!(d, Done::Patched { failed: None, .. })),
        },
        Case {
            name: "a 403 halts",
            changes: vec![change(paths::TITLE, "x")],
            script: vec![status(403, r#"{"status":"403"}"#)],
            sent: 1,
            done: Box::new(|d| matches!(d, Done::Halted(_))),
        },
        Case {
            name: "412: re-read, re-diffed, sent once more",
            changes: vec![
                change(paths::TITLE, "CTO"),
                change(paths::DISPLAY_NAME, "Ann"),
            ],
            script: vec![
                status(412, r#"{"status":"412"}"#),
                A::Ok(
                    200,
                    json!({"id": "9", "userName": "a@x.com", "title": "CTO"}),
                ),
                A::Ok(200, user("9", "a@x.com")),
            ],
            sent: 3,
            done: Box::new(|d| {
                matches!(d, Done::Patched { changes, .. }
                    if changes.len() == 1 && changes[0].path == paths::DISPLAY_NAME)
            }),
        },
        Case {
            name: "412 twice: failed",
            changes: vec![change(paths::TITLE, "CTO")],
            script: vec![
                status(412, r#"{"status":"412"}"#),
                A::Ok(200, user("9", "a@x.com")),
                status(412, r#"{"status":"412"}"#),
            ],
            sent: 3,
            done: Box::new(|d| matches!(d, Done::Failed(m) if m.contains("changed again"))),
        },
        Case {
            name: "412, and the re-read shows it done: nothing more sent",
            changes: vec![change(paths::TITLE, "CTO")],
            script: vec![
                status(412, r#"{"status":"412"}"#),
                A::Ok(
                    200,
                    json!({"id": "9", "userName": "a@x.com", "title": "CTO"}),
                ),
            ],
            sent: 2,
            done: Box::new(|d| !matches!(d, Done::Failed(_) | Done::Patched { .. })),
        },
    ];
    let profile = Profile::generic();
    for case in cases {
        let op = UserOp::patch(setup(&profile), &ScimId::new("9"), &case.changes);
        let ran = run(op, case.script);
        assert_eq!(ran.sent.len(), case.sent, "{}: {:?}", case.name, ran.sent);
        assert!((case.done)(&ran.done), "{}: {:?}", case.name, ran.done);
    }
}

/// A 400 `noTarget` for a value path sends it again as an `add` of the entry.
#[test]
fn no_target_for_a_value_path_adds_the_entry() {
    let profile = Profile::generic();
    let op = UserOp::patch(
        setup(&profile),
        &ScimId::new("9"),
        &[change(paths::WORK_EMAIL, "a@x.com")],
    );
    let ran = run(
        op,
        vec![
            status(
                400,
                r#"{"status":"400","scimType":"noTarget","detail":"Filter 'emails[type eq \"work\"].value' does not match any values"}"#,
            ),
            A::Ok(200, user("9", "a@x.com")),
        ],
    );
    assert_eq!(ran.sent, ["PATCH /Users/9", "PATCH /Users/9"]);
    assert!(ran.bodies[0].contains("replace"), "{}", ran.bodies[0]);
    assert!(ran.bodies[1].contains("\"add\""), "{}", ran.bodies[1]);
    assert!(matches!(ran.done, Done::Patched { failed: None, .. }));
}

/// Without PATCH: GET the user, PUT it back, with If-Match where the target has ETags; the
/// version of what it read is learned before the PUT asks for it.
#[test]
fn without_patch_a_get_then_a_put_with_if_match() {
    let profile = Profile::generic();
    let mut s = setup(&profile);
    s.writes = Writes {
        patch: false,
        etag: true,
    };
    let op = UserOp::patch(s, &ScimId::new("9"), &[change(paths::TITLE, "CTO")]);
    let ran = run(
        op,
        vec![
            A::Tagged(200, user("9", "a@x.com"), "W/\"1\""),
            A::Tagged(200, user("9", "a@x.com"), "W/\"2\""),
        ],
    );
    assert_eq!(ran.sent, ["GET /Users/9", "PUT /Users/9"]);
    assert_eq!(ran.if_match[0], None);
    assert_eq!(ran.if_match[1], Some(IfMatch::VersionOf(ScimId::new("9"))));
    assert!(ran.bodies[1].contains("CTO"));
    assert_eq!(
        ran.learned,
        [
            (ScimId::new("9"), "W/\"1\"".to_owned()),
            (ScimId::new("9"), "W/\"2\"".to_owned())
        ]
    );
    assert!(matches!(ran.done, Done::Patched { failed: None, .. }));
}

/// Miro freezes userType while a user is deactivated: a reactivation with it goes first,
/// apart; what fails after it still records the reactivation.
#[test]
fn a_reactivation_goes_apart_from_what_the_target_freezes() {
    let profile = Profile::miro();
    let changes = [
        change(paths::USER_TYPE, "Full"),
        change(paths::ACTIVE, "true"),
    ];
    let op = UserOp::patch(setup(&profile), &ScimId::new("9"), &changes);
    let ran = run(
        op,
        vec![
            A::Ok(200, user("9", "a@x.com")),
            A::Ok(200, user("9", "a@x.com")),
        ],
    );
    assert_eq!(ran.sent, ["PATCH /Users/9", "PATCH /Users/9"]);
    assert!(ran.bodies[0].contains("active") && !ran.bodies[0].contains("userType"));
    assert!(ran.bodies[1].contains("userType") && !ran.bodies[1].contains("active"));
    let Done::Patched {
        changes: sent,
        failed,
        ..
    } = &ran.done
    else {
        panic!("{:?}", ran.done);
    };
    assert_eq!(sent[0].path, paths::ACTIVE, "the reactivation first");
    assert_eq!((sent.len(), failed), (2, &None));

    let op = UserOp::patch(setup(&profile), &ScimId::new("9"), &changes);
    let ran = run(
        op,
        vec![
            A::Ok(200, user("9", "a@x.com")),
            status(409, r#"{"status":"409","detail":"licence limit"}"#),
        ],
    );
    assert!(
        matches!(&ran.done, Done::Patched { changes, failed: Some(m), .. }
            if changes.len() == 1 && m.contains("reactivated, but")),
        "{:?}",
        ran.done
    );

    // A plain deactivation is one write.
    let op = UserOp::patch(
        setup(&profile),
        &ScimId::new("9"),
        &[change(paths::ACTIVE, "false")],
    );
    let ran = run(op, vec![A::Ok(200, user("9", "a@x.com"))]);
    assert_eq!(ran.sent, ["PATCH /Users/9"]);
}

/// Adopt and delete.
#[test]
fn adopt_and_delete_decisions() {
    let profile = Profile::generic();
    let id = ScimId::new("9");
    // Read this cycle: no request.
    let ran = run(
        UserOp::adopt(setup(&profile), &id, Some(target("9", "a@x.com"))),
        vec![],
    );
    assert!(ran.sent.is_empty());
    assert!(matches!(ran.done, Done::Linked(Ok(_))));
    // Read now.
    let ran = run(
        UserOp::adopt(setup(&profile), &id, None),
        vec![A::Ok(200, user("9", "a@x.com"))],
    );
    assert_eq!(ran.sent, ["GET /Users/9"]);
    assert!(matches!(&ran.done, Done::Linked(Ok(u)) if u.user_name == "a@x.com"));
    // Gone: skipped, the link kept for the planner to decide.
    let ran = run(
        UserOp::adopt(setup(&profile), &id, None),
        vec![status(404, r#"{"status":"404"}"#)],
    );
    assert!(matches!(ran.done, Done::Skipped { unlink: false, .. }));
    // Unreadable: linked all the same, without attributes.
    let ran = run(
        UserOp::adopt(setup(&profile), &id, None),
        vec![status(409, r#"{"status":"409"}"#)],
    );
    assert!(matches!(ran.done, Done::Linked(Err(_))));

    let ran = run(
        UserOp::delete(setup(&profile), &id),
        vec![A::Ok(204, Value::Null)],
    );
    assert_eq!(ran.sent, ["DELETE /Users/9"]);
    assert_eq!(
        ran.done,
        Done::Deleted {
            already_gone: false
        }
    );
    let ran = run(
        UserOp::delete(setup(&profile), &id),
        vec![status(404, r#"{"status":"404"}"#)],
    );
    assert_eq!(ran.done, Done::Deleted { already_gone: true });
}

/// A 429 spends no attempt and needs no wait of its own (the pacer's pause spaces the
/// retry), so a burst of them is ridden out where 5xx would exhaust the attempts.
#[test]
fn a_burst_of_429s_is_ridden_out_without_waiting() {
    let profile = Profile::generic();
    let op = UserOp::delete(setup(&profile), &ScimId::new("9"));
    let mut script: Vec<A> = (0..20)
        .map(|_| A::Err(ScimError::RateLimited { retry_after: None }))
        .collect();
    script.push(A::Ok(204, Value::Null));
    let ran = run(op, script);
    assert_eq!(ran.sent.len(), 21);
    assert_eq!(ran.retries, 20);
    assert_eq!(ran.elapsed, LATENCY * 21, "no backoff of its own");
    assert!(matches!(ran.done, Done::Deleted { .. }));
}

/// A group's POST: a duplicate name links the group found, an unknown outcome looks the
/// name up before any second POST, and a lookup that cannot tell sends none.
#[test]
fn group_create_decisions() {
    const POST_GROUP: &str = "POST /Groups";
    const FIND_GROUP: &str = "GET /Groups?filter";
    let group = |id: &str| json!({"id": id, "displayName": "Eng"});
    let groups = |found: &[Value]| {
        A::Ok(
            200,
            json!({"totalResults": found.len(), "Resources": found}),
        )
    };
    struct Case {
        name: &'static str,
        script: Vec<A>,
        sent: &'static [&'static str],
        done: fn(&Result<ScimId, ScimError>) -> bool,
    }
    let cases = vec![
        Case {
            name: "created",
            script: vec![A::Ok(201, group("g1"))],
            sent: &[POST_GROUP],
            done: |d| matches!(d, Ok(id) if id.as_str() == "g1"),
        },
        Case {
            name: "409: the group of that name is linked",
            script: vec![
                status(409, r#"{"status":"409","detail":"exists"}"#),
                groups(&[group("g7")]),
            ],
            sent: &[POST_GROUP, FIND_GROUP],
            done: |d| matches!(d, Ok(id) if id.as_str() == "g7"),
        },
        Case {
            name: "409 and no such group: the refusal",
            script: vec![
                status(409, r#"{"status":"409","detail":"exists"}"#),
                groups(&[]),
            ],
            sent: &[POST_GROUP, FIND_GROUP],
            done: |d| matches!(d, Err(ScimError::Conflict { .. })),
        },
        Case {
            name: "an answer lost: looked up, not there, posted again",
            script: vec![
                A::Err(ScimError::Transport {
                    message: "reset".into(),
                }),
                groups(&[]),
                A::Ok(201, group("g2")),
            ],
            sent: &[POST_GROUP, FIND_GROUP, POST_GROUP],
            done: |d| matches!(d, Ok(id) if id.as_str() == "g2"),
        },
        Case {
            name: "an answer lost, and the group is there: linked, no second POST",
            script: vec![server_error(), groups(&[group("g3")])],
            sent: &[POST_GROUP, FIND_GROUP],
            done: |d| matches!(d, Ok(id) if id.as_str() == "g3"),
        },
        Case {
            name: "an answer lost, and the lookup cannot tell: no second POST",
            script: vec![
                A::Ok(200, json!({"unexpected": true})),
                status(400, r#"{"status":"400","detail":"no filter"}"#),
            ],
            sent: &[POST_GROUP, FIND_GROUP],
            done: |d| matches!(d, Err(ScimError::Unconfirmed { .. })),
        },
        Case {
            name: "a 429 was not applied: posted again without a lookup",
            script: vec![
                A::Err(ScimError::RateLimited { retry_after: None }),
                A::Ok(201, group("g4")),
            ],
            sent: &[POST_GROUP, POST_GROUP],
            done: |d| matches!(d, Ok(id) if id.as_str() == "g4"),
        },
    ];
    let profile = Profile::generic();
    for case in cases {
        let op = GroupCreate::new(setup(&profile), T0, "Eng", &[ScimId::new("u1")]);
        let ran = run(op, case.script);
        assert_eq!(ran.sent, case.sent, "{}", case.name);
        assert!(
            ran.bodies[0].contains("u1"),
            "{}: the members go with the POST",
            case.name
        );
        assert!((case.done)(&ran.done), "{}: {:?}", case.name, ran.done);
    }
}

/// The search after a refused POST asks for a read newer than that POST (its holder may have
/// appeared after the run's read); the search before a POST takes any read.
#[test]
fn the_search_after_not_unique_reads_past_the_post() {
    let profile = Profile::miro();
    let mut s = setup(&profile);
    s.case_exact = true;
    let op = UserOp::create(s, T0, "dup@x.com", &Attrs::new());
    let ran = run(
        op,
        vec![
            list(&[]),
            A::Found(None),
            status(400, MIRO_NOT_UNIQUE),
            list(&[]),
            A::Found(Some(target("78", "DUP@x.com"))),
        ],
    );
    assert_eq!(
        ran.sent,
        [LOOKUP, "FIND dup@x.com", POST, LOOKUP, "FIND dup@x.com"]
    );
    let post_at = ran.at[1];
    assert_eq!(ran.newer_than, [None, Some(post_at)]);
    assert!(matches!(ran.done, Done::AdoptedExisting(_)));
}
