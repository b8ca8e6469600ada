//! The decisions of one user op, sans-IO (quinn's split): a state machine per op that is
//! handed the classified answer to each request it asked for and `now`, and says what comes
//! next: a request to send, a time to wait until, a case-insensitive search of the target's
//! users, or the op's end (`Done`). It reads no clock, opens no socket, sleeps never; its
//! retries' backoff and jitter run on the `now` it is given and a seed. The async shell
//! (`Executor::drive`) loops: take a slot of the bucket, send, hand the answer back.
//!
//! What each op decides:
//! - create: `userName eq` lookup (unless this cycle's read stands for it), the case-insensitive
//!   search where the target's userName is caseExact, the POST; a POST refused as not unique is
//!   resolved by lookup and adoption, a 404 is a guest, a 400 naming one attribute drops it and
//!   posts the rest, a retryable failure waits and (unless it was a 429) looks up again first;
//!   a user found instead of created is brought in line (`Update`).
//! - adopt: read the user (unless this cycle read it).
//! - update and deactivate: `Update` (PATCH or GET + PUT, 412, 400 attribute), a reactivation
//!   with what the target freezes while deactivated going first, apart.
//! - delete: DELETE; a 404 means already gone.
//! - a group's create (`GroupCreate`): POST; a duplicate name links the group found by name,
//!   an unknown outcome looks the name up before any second POST.
//!
//! The other group writes (rename, member PATCHes, delete) are one retried request each, sent
//! by `groups.rs` through the client's retry loop: they have nothing else to decide.

use crate::client::{Expect, Reply, Request, user_path, version_in};
use crate::error::{ErrorClass, ScimError};
use crate::retry::{RetryPolicy, RetryState};
use crate::update::{Applied, Dropped, UpNext, Update, Writes, named_path};
use reqwest::Method;
use scimsync_model::{Attrs, Change, ScimId, TargetUser, fold_user_name, paths};
use scimsync_scim::{ListResponse, Profile, filter_eq, target_user, user_resource};
use serde_json::Value;
use std::time::Duration;

/// Attempts of one create (lookups and POSTs), whatever else bounds it: a second guard.
const MAX_CREATE_ROUNDS: u32 = 64;

/// One request the machine asks for.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub(crate) request: Request,
    pub(crate) if_match: Option<IfMatch>,
}

impl Outgoing {
    pub(crate) fn plain(request: Request) -> Self {
        Outgoing {
            request,
            if_match: None,
        }
    }
}

/// The `If-Match` a write carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IfMatch {
    /// The latest version the client knows of this user when the request goes (read this
    /// cycle, or returned by its last write).
    VersionOf(ScimId),
}

/// An op's decisions as the shell drives them (`execute::drive`): `poll` for what to do at
/// `now`, `handle` what came of it.
pub(crate) trait Decide {
    /// How the op ends.
    type Outcome: Outcome;
    /// What to do next at `now`. The outcome is handed out once.
    fn poll(&mut self, now: Duration) -> Step<'_, Self::Outcome>;
    /// Takes what came of the last `Step::Send` or `Step::FindAnyCase`, at `now`.
    fn handle(&mut self, now: Duration, input: Input);
    /// Attempts beyond a request's first since the last call.
    fn take_retries(&mut self) -> u64;
    /// Versions of users (for `If-Match`) learned since the last call.
    fn take_learned(&mut self) -> Vec<(ScimId, String)>;
}

/// An outcome that can say a machine was misused (a bug, reported as that op's failure).
pub(crate) trait Outcome {
    fn internal(what: &str) -> Self;
}

impl Outcome for Done {
    fn internal(what: &str) -> Self {
        Done::Failed(format!("internal error: {what}"))
    }
}

impl Outcome for Result<ScimId, ScimError> {
    fn internal(what: &str) -> Self {
        Err(ScimError::Decode {
            message: format!("internal error: {what}"),
        })
    }
}

/// What the machine wants next.
#[derive(Debug)]
pub(crate) enum Step<'a, O = Done> {
    /// Send this request (once a slot of its bucket is free) and `handle` what came of it.
    Send(&'a Outgoing),
    /// Nothing before this time (a retry's backoff); poll again then.
    Wait(Duration),
    /// The target user whose userName equals this one in any case (`Input::Found`): one
    /// paged read shared by the run's creates, read again when older than `newer_than`.
    FindAnyCase {
        user_name: &'a str,
        newer_than: Option<Duration>,
    },
    /// The op's end.
    Done(O),
}

/// What the shell hands back.
#[derive(Debug)]
pub(crate) enum Input {
    /// The answer to `Step::Send`'s request, classified (`ScimError::Halted`: not sent, the
    /// run halted).
    Answer(Result<Reply, ScimError>),
    /// The result of `Step::FindAnyCase`.
    Found(Result<Option<TargetUser>, ScimError>),
}

/// How a job ended, before the driver turns it into links, events and counts.
#[derive(Debug, PartialEq)]
pub(crate) enum Done {
    /// Created as `id` with `attrs` (what was sent: the refused ones left out).
    Created {
        id: ScimId,
        attrs: Attrs,
        dropped: Vec<Dropped>,
    },
    /// A create that found the user (lookup, or after "not unique").
    AdoptedExisting(TargetUser),
    /// A create that found the user and brought its attributes in line.
    AdoptedAligned {
        user: TargetUser,
        applied: Applied,
    },
    /// An adopt op; `Err` when the user's attributes could not be read (with why).
    Linked(Result<TargetUser, String>),
    /// The changes the target took; the refused ones left out. `failed`: what failed after
    /// them (a reactivation went, the update after it did not): the link takes what went, the
    /// op fails, and the next cycle sends the rest.
    Patched {
        changes: Vec<Change>,
        dropped: Vec<Dropped>,
        failed: Option<String>,
    },
    /// Every change was refused as an attribute the target does not take: nothing sent
    /// applies, and the attributes are remembered as unsupported.
    Refused(Vec<Dropped>),
    Deleted {
        already_gone: bool,
    },
    Skipped {
        reason: String,
        unlink: bool,
    },
    Guest(String),
    Failed(String),
    Halted(String),
    NotSent,
}

/// What the machines know of the target and the run, fixed for an op.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setup<'p> {
    pub(crate) profile: &'p Profile,
    pub(crate) writes: Writes,
    /// The target says userName is caseExact: its filter cannot find "Ann@x.com" for
    /// "ann@x.com", so a create also searches case-insensitively before it POSTs.
    pub(crate) case_exact: bool,
    /// This cycle's own read did not find the creates' userNames (`with_creates_checked`).
    pub(crate) creates_checked: bool,
    pub(crate) retry: &'p RetryPolicy,
    /// Seeds the op's retry schedules (`None`: from the OS).
    pub(crate) seed: Option<u64>,
}

/// One user op's decisions.
pub(crate) struct UserOp<'p> {
    io: Io<'p, Done>,
    flow: Flow,
}

/// What every flow shares: the setup, what is wanted next, and what the shell collects.
struct Io<'p, O> {
    setup: Setup<'p>,
    want: Want<O>,
    /// Attempts beyond a request's first, not yet collected by the shell.
    retries: u64,
    /// Versions of users read or written, not yet collected by the shell.
    learned: Vec<(ScimId, String)>,
    /// Retry schedules started, for their seeds.
    schedules: u64,
    /// When the last request was handed out (before its slot and its send).
    sent_at: Duration,
}

// One per op in flight, never in a collection: boxing the request would only add an
// allocation per attempt.
#[allow(clippy::large_enum_variant)]
enum Want<O> {
    Send {
        out: Outgoing,
        retry: Retry,
        until: Option<Duration>,
    },
    Find {
        user_name: String,
        newer_than: Option<Duration>,
    },
    Done(O),
    Taken,
}

/// How the request of a `Want::Send` is retried.
enum Retry {
    /// Its own schedule (429, 5xx, transport), started at the first attempt: a read, or a
    /// write that is safe to repeat (PATCH of replace/remove ops, PUT, DELETE).
    Schedule(Option<RetryState>),
    /// Once: its flow decides (a POST, whose lost answer may have created the user).
    Once,
}

/// What a flow's handler decided.
enum Then {
    Send(Outgoing, Retry),
    /// The create's POST again, or its lookup, after a backoff.
    SendAt(Outgoing, Retry, Duration),
    Find(String, Option<Duration>),
    /// A create found the user: adopt it and bring it in line.
    Found(TargetUser),
    Done(Done),
}

enum Flow {
    Create(Create),
    Align { user: TargetUser, update: Update },
    Adopt { target_id: ScimId },
    Patch(Patch),
    Delete,
    Over,
}

impl<'p> UserOp<'p> {
    /// A create of `user_name` with `attrs` (references resolved), starting at `now`.
    pub(crate) fn create(setup: Setup<'p>, now: Duration, user_name: &str, attrs: &Attrs) -> Self {
        let mut io = Io::new(setup);
        let retry = io.schedule(now);
        let mut create = Create {
            user_name: user_name.to_owned(),
            wanted: attrs.clone(),
            attrs: attrs.clone(),
            dropped: Vec::new(),
            retry,
            look_first: !(setup.creates_checked && setup.profile.refuses_duplicate_user_names),
            rounds: 0,
            stage: CreateStage::Lookup,
            sent_at: Duration::ZERO,
        };
        let then = create.round(&io, None);
        let mut op = UserOp {
            io,
            flow: Flow::Create(create),
        };
        op.apply(then);
        op
    }

    /// An adopt of `target_id`; `known` when this cycle read the user already (no request).
    pub(crate) fn adopt(setup: Setup<'p>, target_id: &ScimId, known: Option<TargetUser>) -> Self {
        let mut op = UserOp {
            io: Io::new(setup),
            flow: Flow::Adopt {
                target_id: target_id.clone(),
            },
        };
        match known {
            Some(user) => op.apply(Then::Done(Done::Linked(Ok(user)))),
            None => op.apply(Then::Send(
                Outgoing::plain(Request::get(
                    user_path(target_id),
                    Expect::User(Some(target_id.clone())),
                )),
                Retry::Schedule(None),
            )),
        }
        op
    }

    /// An update (or a deactivation: `active` to false) of `target_id`.
    pub(crate) fn patch(setup: Setup<'p>, target_id: &ScimId, changes: &[Change]) -> Self {
        let mut op = UserOp {
            io: Io::new(setup),
            flow: Flow::Over,
        };
        let (mut patch, next) = Patch::start(setup, target_id, changes);
        let then = patch.next(&mut op.io, next);
        op.flow = Flow::Patch(patch);
        op.apply(then);
        op
    }

    pub(crate) fn delete(setup: Setup<'p>, target_id: &ScimId) -> Self {
        let mut op = UserOp {
            io: Io::new(setup),
            flow: Flow::Delete,
        };
        op.apply(Then::Send(
            Outgoing::plain(Request::delete(user_path(target_id))),
            Retry::Schedule(None),
        ));
        op
    }

    fn answer(&mut self, now: Duration, answer: Result<Reply, ScimError>) -> Then {
        let io = &mut self.io;
        if let Flow::Create(create) = &mut self.flow
            && matches!(create.stage, CreateStage::Post)
        {
            create.sent_at = io.sent_at;
        }
        match &mut self.flow {
            Flow::Create(create) => create.answer(io, now, answer),
            Flow::Align { update, .. } => {
                match update.answer(io.setup.profile, answer, &mut io.learned) {
                    UpNext::Send(out) => Then::Send(out, Retry::Schedule(None)),
                    UpNext::Finished(result) => {
                        match std::mem::replace(&mut self.flow, Flow::Over) {
                            Flow::Align { user, .. } => aligned(user, result),
                            _ => Then::Done(Done::Failed("internal error: lost the user".into())),
                        }
                    }
                }
            }
            Flow::Adopt { target_id } => Then::Done(adopted(target_id, io, answer)),
            Flow::Patch(patch) => {
                let next = patch
                    .update
                    .answer(io.setup.profile, answer, &mut io.learned);
                patch.next(io, next)
            }
            Flow::Delete => Then::Done(match answer {
                Ok(_) => Done::Deleted {
                    already_gone: false,
                },
                Err(ScimError::NotFound { .. }) => Done::Deleted { already_gone: true },
                Err(e) => done_from(e),
            }),
            Flow::Over => Then::Done(Done::Failed(
                "internal error: an answer after the end".into(),
            )),
        }
    }

    fn found(&mut self, found: Result<Option<TargetUser>, ScimError>) -> Then {
        match &mut self.flow {
            Flow::Create(create) => create.found(found, self.io.setup.profile),
            _ => Then::Done(Done::Failed(
                "internal error: a search result for another op".into(),
            )),
        }
    }

    /// Carries out a handler's decision: what is wanted next, or a create turned adoption.
    fn apply(&mut self, then: Then) {
        // Bounded: `Found` leads to a `Send` or a `Done`, never back here.
        let mut then = then;
        for _ in 0..2 {
            match then {
                Then::Send(out, retry) => {
                    self.io.want = Want::Send {
                        out,
                        retry,
                        until: None,
                    };
                }
                Then::SendAt(out, retry, at) => {
                    self.io.want = Want::Send {
                        out,
                        retry,
                        until: Some(at),
                    };
                }
                Then::Find(user_name, newer_than) => {
                    self.io.want = Want::Find {
                        user_name,
                        newer_than,
                    };
                }
                Then::Done(done) => {
                    self.flow = Flow::Over;
                    self.io.want = Want::Done(done);
                }
                Then::Found(user) => {
                    let Flow::Create(create) = std::mem::replace(&mut self.flow, Flow::Over) else {
                        then = Then::Done(Done::Failed(
                            "internal error: a found user for another op".into(),
                        ));
                        continue;
                    };
                    then = self.align(user, &create.wanted);
                    continue;
                }
            }
            return;
        }
    }

    /// A user found instead of created is brought in line in the same cycle, as an adoption
    /// the planner saw would be (adopt, then update): the attributes this create would have
    /// sent that the target holds otherwise. A deactivated user is left to the next plan,
    /// which orders a reactivation with what the target freezes meanwhile.
    fn align(&mut self, user: TargetUser, attrs: &Attrs) -> Then {
        let create_only = &self.io.setup.profile.create_only;
        let changes: Vec<Change> = attrs
            .iter()
            .filter(|(path, _)| !create_only.contains(path.as_str()))
            .filter(|(path, value)| user.attrs.get(path.as_str()) != Some(*value))
            .map(|(path, value)| Change {
                path: path.to_string(),
                old: user.attrs.get(path.as_str()).cloned(),
                new: Some(value.clone()),
            })
            .collect();
        if changes.is_empty() || !user.active {
            return Then::Done(Done::AdoptedExisting(user));
        }
        let mut update = Update::new(user.id.clone(), changes, self.io.setup.writes);
        match update.start(self.io.setup.profile) {
            UpNext::Send(out) => {
                self.flow = Flow::Align { user, update };
                Then::Send(out, Retry::Schedule(None))
            }
            UpNext::Finished(result) => aligned(user, result),
        }
    }
}

impl Decide for UserOp<'_> {
    type Outcome = Done;

    fn poll(&mut self, now: Duration) -> Step<'_> {
        self.io.poll(now)
    }

    fn handle(&mut self, now: Duration, input: Input) {
        let then = match self.io.retried(now, input) {
            None => return,
            Some(Input::Answer(answer)) => self.answer(now, answer),
            Some(Input::Found(found)) => self.found(found),
        };
        self.apply(then);
    }

    fn take_retries(&mut self) -> u64 {
        std::mem::take(&mut self.io.retries)
    }

    fn take_learned(&mut self) -> Vec<(ScimId, String)> {
        std::mem::take(&mut self.io.learned)
    }
}

impl<'p, O: Outcome> Io<'p, O> {
    fn new(setup: Setup<'p>) -> Self {
        Io {
            setup,
            want: Want::Taken,
            retries: 0,
            learned: Vec::new(),
            schedules: 0,
            sent_at: Duration::ZERO,
        }
    }

    /// What is wanted at `now`: the request (once its backoff is over; its retry schedule
    /// starts with its first attempt), the search, or the outcome, handed out once.
    fn poll(&mut self, now: Duration) -> Step<'_, O> {
        if let Want::Done(_) = self.want {
            return match std::mem::replace(&mut self.want, Want::Taken) {
                Want::Done(done) => Step::Done(done),
                _ => Step::Done(O::internal("no outcome")),
            };
        }
        match &mut self.want {
            Want::Send { out, retry, until } => {
                if let Some(at) = *until {
                    if now < at {
                        return Step::Wait(at);
                    }
                    *until = None;
                }
                if let Retry::Schedule(schedule @ None) = retry {
                    let seed = self
                        .setup
                        .seed
                        .map(|seed| seed.wrapping_add(self.schedules));
                    self.schedules += 1;
                    *schedule = Some(RetryState::new(self.setup.retry, seed, now));
                }
                self.sent_at = now;
                Step::Send(out)
            }
            Want::Find {
                user_name,
                newer_than,
            } => Step::FindAnyCase {
                user_name,
                newer_than: *newer_than,
            },
            Want::Done(_) | Want::Taken => Step::Done(O::internal("polled after its end")),
        }
    }

    /// A retryable failure of a request with its own schedule waits and goes again (`None`:
    /// nothing for the flow to decide); anything else is the flow's.
    fn retried(&mut self, now: Duration, input: Input) -> Option<Input> {
        let want = std::mem::replace(&mut self.want, Want::Taken);
        match (want, input) {
            (
                Want::Send {
                    out,
                    retry: Retry::Schedule(Some(mut schedule)),
                    ..
                },
                Input::Answer(Err(e)),
            ) if e.class() == ErrorClass::Retryable => match schedule.after(now, &e) {
                Some(delay) => {
                    self.retries += 1;
                    tracing::debug!(method = %out.request.method, path = %out.request.path, ?delay, "retrying after: {e}");
                    self.want = Want::Send {
                        out,
                        retry: Retry::Schedule(Some(schedule)),
                        until: Some(now + delay),
                    };
                    None
                }
                None => Some(Input::Answer(Err(e))),
            },
            (Want::Send { .. }, input @ Input::Answer(_))
            | (Want::Find { .. }, input @ Input::Found(_)) => Some(input),
            (want, _) => {
                self.want = want;
                tracing::error!("internal error: an input the op did not ask for");
                None
            }
        }
    }

    /// A retry schedule started at `now`, seeded from the op's seed and the schedules before.
    fn schedule(&mut self, now: Duration) -> RetryState {
        let seed = self
            .setup
            .seed
            .map(|seed| seed.wrapping_add(self.schedules));
        self.schedules += 1;
        RetryState::new(self.setup.retry, seed, now)
    }
}

/// The end of an alignment, from its update's: adopted and brought in line, or adopted only
/// (the next plan diffs it again), or the run halted.
fn aligned(user: TargetUser, result: Result<Applied, ScimError>) -> Then {
    Then::Done(match result {
        Ok(applied) => Done::AdoptedAligned { user, applied },
        Err(e) if e.class() != ErrorClass::Halt => {
            tracing::warn!(user = %user.user_name, "adopted, but not brought in line yet: {e}");
            Done::AdoptedExisting(user)
        }
        Err(e) => done_from(e),
    })
}

/// Which answer a create waits for.
enum CreateStage {
    /// The `userName eq` lookup before the POST.
    Lookup,
    /// The case-insensitive search before the POST.
    AnyCase,
    Post,
    /// The lookup after a POST refused as not unique (the refusal kept for the outcome).
    NotUniqueLookup(ScimError),
    /// The case-insensitive search after it.
    NotUniqueAnyCase(ScimError),
}

/// Lookup, then POST only if nobody has the userName. A POST whose answer was lost (5xx,
/// dropped connection) may have been applied, so its retry starts with a lookup again; a 429
/// was not applied and is retried as is. A POST refused as not unique is resolved in this
/// cycle: the filter again, then (a filter may compare case-sensitively) a paged read compared
/// case-insensitively; the user found is adopted, never POSTed twice. A 400 naming one
/// attribute drops it and posts the rest.
struct Create {
    user_name: String,
    /// The attributes asked for (what an adoption is brought in line with).
    wanted: Attrs,
    /// The attributes a POST sends: those the target refused left out.
    attrs: Attrs,
    dropped: Vec<Dropped>,
    /// The create's own schedule, for its POSTs' retryable failures.
    retry: RetryState,
    look_first: bool,
    rounds: u32,
    stage: CreateStage,
    /// When the last POST went: the holder of a refused userName may be newer than a read
    /// made before it.
    sent_at: Duration,
}

impl Create {
    /// A round: the lookups (when due), then the POST; at `at` when after a backoff.
    fn round(&mut self, io: &Io<'_, Done>, at: Option<Duration>) -> Then {
        self.rounds += 1;
        if self.rounds > MAX_CREATE_ROUNDS {
            return Then::Done(Done::Failed("gave up after too many attempts".into()));
        }
        let (out, retry) = if self.look_first {
            self.stage = CreateStage::Lookup;
            (lookup(&self.user_name), Retry::Schedule(None))
        } else {
            self.stage = CreateStage::Post;
            (self.post(io.setup.profile), Retry::Once)
        };
        match at {
            Some(at) => Then::SendAt(out, retry, at),
            None => Then::Send(out, retry),
        }
    }

    fn post(&self, profile: &Profile) -> Outgoing {
        let body = user_resource(&self.user_name, true, &self.attrs, profile);
        Outgoing::plain(Request::with_json(
            Method::POST,
            "/Users",
            &body,
            Expect::User(None),
        ))
    }

    fn post_now(&mut self, profile: &Profile) -> Then {
        self.stage = CreateStage::Post;
        Then::Send(self.post(profile), Retry::Once)
    }

    fn answer(
        &mut self,
        io: &mut Io<'_, Done>,
        now: Duration,
        answer: Result<Reply, ScimError>,
    ) -> Then {
        let profile = io.setup.profile;
        match std::mem::replace(&mut self.stage, CreateStage::Lookup) {
            CreateStage::Lookup => match matching_user(answer, &self.user_name, io) {
                Ok(Some(user)) => Then::Found(user),
                Ok(None) if io.setup.case_exact => {
                    self.stage = CreateStage::AnyCase;
                    Then::Find(self.user_name.clone(), None)
                }
                Ok(None) => self.post_now(profile),
                Err(e) => Then::Done(done_from(e)),
            },
            CreateStage::NotUniqueLookup(refusal) => {
                match matching_user(answer, &self.user_name, io) {
                    Ok(Some(user)) => Then::Found(user),
                    Ok(None) => {
                        self.stage = CreateStage::NotUniqueAnyCase(refusal);
                        Then::Find(self.user_name.clone(), Some(self.sent_at))
                    }
                    Err(e) => Then::Done(done_from(e)),
                }
            }
            CreateStage::Post => self.posted(io, now, answer),
            CreateStage::AnyCase | CreateStage::NotUniqueAnyCase(_) => Then::Done(Done::Failed(
                "internal error: an answer where a search result was due".into(),
            )),
        }
    }

    fn found(&mut self, found: Result<Option<TargetUser>, ScimError>, profile: &Profile) -> Then {
        match std::mem::replace(&mut self.stage, CreateStage::Lookup) {
            CreateStage::AnyCase => match found {
                Ok(Some(user)) => Then::Found(user),
                Ok(None) => self.post_now(profile),
                Err(e) => Then::Done(done_from(e)),
            },
            CreateStage::NotUniqueAnyCase(refusal) => match found {
                Ok(Some(user)) => Then::Found(user),
                // Nobody the target shows holds it: as with a guest (404), the userName is
                // remembered and not tried again until a full read finds its holder, rather
                // than refused anew every cycle.
                Ok(None) => Then::Done(Done::Guest(format!(
                    "{refusal}; yet no user the target shows has this userName in any case \
                     (held by a guest, a hidden or another org's user?); not retried until a \
                     full read finds it"
                ))),
                Err(e) => Then::Done(done_from(e)),
            },
            _ => Then::Done(Done::Failed(
                "internal error: a search result where an answer was due".into(),
            )),
        }
    }

    /// The POST's answer.
    fn posted(
        &mut self,
        io: &mut Io<'_, Done>,
        now: Duration,
        answer: Result<Reply, ScimError>,
    ) -> Then {
        let sent = answer.and_then(|reply| created_id(&reply, &self.user_name));
        let e = match sent {
            Ok(id) => {
                return Then::Done(Done::Created {
                    id,
                    attrs: std::mem::take(&mut self.attrs),
                    dropped: std::mem::take(&mut self.dropped),
                });
            }
            Err(e) => e,
        };
        match e {
            ScimError::NotUnique { .. } => {
                self.stage = CreateStage::NotUniqueLookup(e);
                Then::Send(lookup(&self.user_name), Retry::Schedule(None))
            }
            ScimError::NotFound { detail } => Then::Done(Done::Guest(format!(
                "the target answered 404 to the create (a guest or external user holds this email){}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ))),
            ScimError::BadRequest {
                scim_type: Some(ref t),
                ..
            } if e.detail().is_some()
                && !t.eq_ignore_ascii_case("noTarget")
                && !t.eq_ignore_ascii_case("uniqueness") =>
            {
                // One attribute refused: post the rest (a 400 created nothing).
                let named =
                    named_path(&e, self.attrs.keys().map(|k| k.as_str())).map(str::to_owned);
                let Some(path) = named else {
                    return Then::Done(done_from(e));
                };
                tracing::info!(user = %self.user_name, path = %path, "the target refused one attribute of a create; posting the rest");
                self.attrs.remove(path.as_str());
                self.dropped.push(Dropped {
                    path,
                    scim_type: Some(t.clone()),
                    detail: e.detail().unwrap_or_default().to_owned(),
                });
                self.look_first = false;
                self.round(io, None)
            }
            e if e.class() == ErrorClass::Retryable => match self.retry.after(now, &e) {
                Some(delay) => {
                    io.retries += 1;
                    self.look_first = !matches!(e, ScimError::RateLimited { .. });
                    tracing::debug!(user = %self.user_name, ?delay, "create will be retried after: {e}");
                    self.round(io, Some(now + delay))
                }
                None => Then::Done(Done::Failed(e.to_string())),
            },
            e => Then::Done(done_from(e)),
        }
    }
}

/// `GET /Users?filter=userName eq "…"`.
fn lookup(user_name: &str) -> Outgoing {
    let mut req = Request::get("/Users", Expect::List);
    req.query = vec![("filter", filter_eq("userName", user_name))];
    Outgoing::plain(req)
}

/// The user of a lookup's answer whose userName is `user_name` in any case: the SP's filter
/// may be case-sensitive or loose; the decision is ours.
fn matching_user(
    answer: Result<Reply, ScimError>,
    user_name: &str,
    io: &mut Io<'_, Done>,
) -> Result<Option<TargetUser>, ScimError> {
    let list: ListResponse<Value> = answer?.decode()?;
    for resource in &list.resources {
        let user = target_user(resource, io.setup.profile).map_err(|e| ScimError::Decode {
            message: e.to_string(),
        })?;
        if user.user_name.to_lowercase() == user_name.to_lowercase() {
            io.learned.extend(version_in(resource, None));
            return Ok(Some(user));
        }
    }
    Ok(None)
}

/// An adopt's read of the user. The match by userName stands whatever the read gives; the
/// next full read fills in what it could not.
fn adopted(target_id: &ScimId, io: &mut Io<'_, Done>, answer: Result<Reply, ScimError>) -> Done {
    let user = answer.and_then(|reply| {
        let etag = reply.etag.clone();
        let value: Value = reply.decode()?;
        io.learned.extend(version_in(&value, etag.as_deref()));
        target_user(&value, io.setup.profile).map_err(|e| ScimError::Decode {
            message: e.to_string(),
        })
    });
    match user {
        Ok(user) => Done::Linked(Ok(user)),
        Err(ScimError::NotFound { detail }) => Done::Skipped {
            reason: format!(
                "target user {target_id} not found (gone, or a guest){}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            unlink: false,
        },
        Err(e) if e.class() == ErrorClass::Halt => done_from(e),
        Err(e) => Done::Linked(Err(e.to_string())),
    }
}

/// An update or deactivation: the `Update`, and where the profile says so a reactivation
/// with what the target freezes while deactivated goes first, as a write of its own.
struct Patch {
    target_id: ScimId,
    update: Update,
    /// This update is the reactivation: the rest goes after it.
    rest: Option<Vec<Change>>,
    /// This update is the rest: the reactivation went first with these changes.
    reactivated: Option<Vec<Change>>,
}

impl Patch {
    fn start(setup: Setup<'_>, target_id: &ScimId, changes: &[Change]) -> (Patch, UpNext) {
        let reactivation = changes.iter().position(|c| {
            c.path == paths::ACTIVE
                && c.new.as_ref().and_then(scimsync_model::AttrValue::as_text) == Some("true")
        });
        let profile = setup.profile;
        let (first, rest) = match reactivation {
            Some(at)
                if profile.reactivate_apart
                    && changes.iter().any(|c| profile.is_frozen(&c.path)) =>
            {
                let rest: Vec<Change> = changes
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != at)
                    .map(|(_, c)| c.clone())
                    .collect();
                (vec![changes[at].clone()], Some(rest))
            }
            _ => (changes.to_vec(), None),
        };
        let mut update = Update::new(target_id.clone(), first, setup.writes);
        let next = update.start(profile);
        (
            Patch {
                target_id: target_id.clone(),
                update,
                rest,
                reactivated: None,
            },
            next,
        )
    }

    fn next(&mut self, io: &mut Io<'_, Done>, next: UpNext) -> Then {
        let result = match next {
            UpNext::Send(out) => return Then::Send(out, Retry::Schedule(None)),
            UpNext::Finished(result) => result,
        };
        if let Some(rest) = self.rest.take() {
            // The reactivation's end.
            return match result {
                Ok(reactivated) if !reactivated.changes.is_empty() => {
                    self.reactivated = Some(reactivated.changes);
                    self.update = Update::new(self.target_id.clone(), rest, io.setup.writes);
                    let next = self.update.start(io.setup.profile);
                    self.next(io, next)
                }
                Ok(refused) => Then::Done(Done::Failed(format!(
                    "the target refused the reactivation: {}",
                    describe_dropped(&refused.dropped)
                ))),
                Err(ScimError::NotFound { detail }) => Then::Done(gone(&self.target_id, detail)),
                Err(e) => Then::Done(done_from(e)),
            };
        }
        let done = match result {
            Ok(applied) if applied.changes.is_empty() => {
                if applied.dropped.iter().all(Dropped::refuses_attribute) {
                    Done::Refused(applied.dropped)
                } else {
                    Done::Failed(format!(
                        "the target refused every change: {}",
                        describe_dropped(&applied.dropped)
                    ))
                }
            }
            Ok(applied) => Done::Patched {
                changes: applied.changes,
                dropped: applied.dropped,
                failed: None,
            },
            Err(ScimError::NotFound { detail }) => gone(&self.target_id, detail),
            Err(e) => done_from(e),
        };
        let Some(reactivated) = self.reactivated.take() else {
            return Then::Done(done);
        };
        Then::Done(match done {
            Done::Patched {
                mut changes,
                dropped,
                failed,
            } => {
                changes.splice(0..0, reactivated);
                Done::Patched {
                    changes,
                    dropped,
                    failed,
                }
            }
            Done::Refused(dropped) => Done::Patched {
                changes: reactivated,
                dropped,
                failed: None,
            },
            Done::Failed(why) => Done::Patched {
                changes: reactivated,
                dropped: Vec::new(),
                failed: Some(format!(
                    "reactivated, but the update after it failed: {why}"
                )),
            },
            other => other,
        })
    }
}

/// Which answer a group create waits for.
enum GroupStage {
    Post,
    /// The lookup after a POST refused as a duplicate (the refusal kept for the outcome).
    AfterRefusal(ScimError),
    /// The lookup after a POST whose outcome is unknown (its failure kept).
    AfterUnknown(ScimError),
}

/// A group's POST, once per attempt. A POST refused because the name exists (409, or not
/// unique: an earlier create whose answer was lost) links the group found by name rather than
/// fail; an attempt whose outcome is unknown (no answer, an answer that confirms nothing) may
/// have created it, so the group is looked up by name before the next POST, as a user create
/// is: never a second group of the same name. A lookup that cannot tell sends no second POST:
/// the group stays uncertain and the next cycle looks it up.
pub(crate) struct GroupCreate<'p> {
    io: Io<'p, Result<ScimId, ScimError>>,
    display_name: String,
    post: Outgoing,
    retry: RetryState,
    posts: u32,
    stage: GroupStage,
}

impl<'p> GroupCreate<'p> {
    pub(crate) fn new(
        setup: Setup<'p>,
        now: Duration,
        display_name: &str,
        members: &[ScimId],
    ) -> Self {
        let mut io = Io::new(setup);
        let retry = io.schedule(now);
        let post = Outgoing::plain(Request::with_json(
            Method::POST,
            "/Groups",
            &scimsync_scim::group_resource(display_name, members),
            Expect::Group(None),
        ));
        io.want = Want::Send {
            out: post.clone(),
            retry: Retry::Once,
            until: None,
        };
        GroupCreate {
            io,
            display_name: display_name.to_owned(),
            post,
            retry,
            posts: 1,
            stage: GroupStage::Post,
        }
    }

    fn answer(
        &mut self,
        now: Duration,
        answer: Result<Reply, ScimError>,
    ) -> Want<Result<ScimId, ScimError>> {
        let found = |answer: Result<Reply, ScimError>, name: &str| {
            answer.and_then(|reply| crate::groups::group_named(reply, name))
        };
        match std::mem::replace(&mut self.stage, GroupStage::Post) {
            GroupStage::Post => {
                let e = match answer {
                    Ok(reply) => match reply.json.as_ref().map(crate::groups::decode_group) {
                        Some(Ok(group)) => return Want::Done(Ok(group.id)),
                        _ => ScimError::Unconfirmed {
                            status: reply.status,
                            what: "without a group resource".into(),
                        },
                    },
                    Err(e) => e,
                };
                match e {
                    ScimError::Conflict { .. } | ScimError::NotUnique { .. } => {
                        self.stage = GroupStage::AfterRefusal(e);
                        self.lookup()
                    }
                    e if e.class() == ErrorClass::Retryable && e.outcome_unknown() => {
                        self.stage = GroupStage::AfterUnknown(e);
                        self.lookup()
                    }
                    e if e.class() == ErrorClass::Retryable => self.again(now, e),
                    e => Want::Done(Err(e)),
                }
            }
            GroupStage::AfterRefusal(refusal) => match found(answer, &self.display_name) {
                Ok(Some(id)) => Want::Done(Ok(id)),
                Ok(None) | Err(_) => Want::Done(Err(refusal)),
            },
            GroupStage::AfterUnknown(failure) => match found(answer, &self.display_name) {
                Ok(Some(id)) => Want::Done(Ok(id)),
                Ok(None) => self.again(now, failure),
                Err(_) => Want::Done(Err(failure)),
            },
        }
    }

    fn lookup(&self) -> Want<Result<ScimId, ScimError>> {
        Want::Send {
            out: Outgoing::plain(crate::groups::find_group_request(&self.display_name)),
            retry: Retry::Schedule(None),
            until: None,
        }
    }

    /// The POST again after the create's backoff, or the failure when its policy is spent.
    fn again(&mut self, now: Duration, e: ScimError) -> Want<Result<ScimId, ScimError>> {
        if self.posts >= MAX_CREATE_ROUNDS {
            return Want::Done(Err(ScimError::Transport {
                message: "gave up after too many attempts".into(),
            }));
        }
        match self.retry.after(now, &e) {
            Some(delay) => {
                self.io.retries += 1;
                self.posts += 1;
                Want::Send {
                    out: self.post.clone(),
                    retry: Retry::Once,
                    until: Some(now + delay),
                }
            }
            None => Want::Done(Err(e)),
        }
    }
}

impl Decide for GroupCreate<'_> {
    type Outcome = Result<ScimId, ScimError>;

    fn poll(&mut self, now: Duration) -> Step<'_, Self::Outcome> {
        self.io.poll(now)
    }

    fn handle(&mut self, now: Duration, input: Input) {
        self.io.want = match self.io.retried(now, input) {
            None => return,
            Some(Input::Answer(answer)) => self.answer(now, answer),
            Some(Input::Found(_)) => Want::Done(Self::Outcome::internal("a search result")),
        };
    }

    fn take_retries(&mut self) -> u64 {
        std::mem::take(&mut self.io.retries)
    }

    fn take_learned(&mut self) -> Vec<(ScimId, String)> {
        std::mem::take(&mut self.io.learned)
    }
}

/// A write to a user the target no longer has: skipped, and the link dropped.
fn gone(target_id: &ScimId, detail: Option<String>) -> Done {
    Done::Skipped {
        reason: format!(
            "target user {target_id} not found (deleted in the target, or a guest){}",
            detail.map(|d| format!(": {d}")).unwrap_or_default()
        ),
        unlink: true,
    }
}

/// `path (scimType): detail; …`, for an event's error.
pub(crate) fn describe_dropped(dropped: &[Dropped]) -> String {
    dropped
        .iter()
        .map(|d| {
            format!(
                "{} ({}): {}",
                d.path,
                d.scim_type.as_deref().unwrap_or("400"),
                d.detail
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The id of the user a POST created: the answer is a User resource (checked), and it must be
/// the user sent, or the answer confirms nothing (a cached page, another user's resource).
fn created_id(reply: &Reply, user_name: &str) -> Result<ScimId, ScimError> {
    let resource = reply.json.as_ref();
    let field = |key: &str| resource.and_then(|r| r.get(key));
    let id = match field("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let same = field("userName")
        .and_then(Value::as_str)
        .is_some_and(|name| fold_user_name(name) == fold_user_name(user_name));
    if id.is_empty() || !same {
        return Err(ScimError::Unconfirmed {
            status: reply.status,
            what: "with a resource for another userName".into(),
        });
    }
    Ok(ScimId::new(id))
}

pub(crate) fn done_from(e: ScimError) -> Done {
    match e {
        ScimError::Halted => Done::NotSent,
        e if e.class() == ErrorClass::Halt => Done::Halted(e.to_string()),
        e => Done::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
