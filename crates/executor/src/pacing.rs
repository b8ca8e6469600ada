//! Per-bucket pacing: a sliding log of the last requests of each bucket, so that no
//! window-long interval ever holds more than the budget while a whole budget may still go at
//! once (the **burst bound**: `n` requests need `(n - 1) div N` windows plus the time to send one
//! burst, which is what a fixed-window, sliding-window or token-bucket SP of that size allows).
//!
//! A request holds its slot from the moment it is sent until a window (plus a margin) after its
//! answer arrived. The SP counts a request somewhere between the two, so measuring from the
//! answer, not from the send, keeps the SP's own count under the budget whatever the network
//! and the SP's queues did to it; the margin only covers clock drift between the SP's counters.
//! A request whose answer has not arrived keeps its slot.
//!
//! A 429 pauses its bucket (`Retry-After`, `X-RateLimit-Reset`, or half a window) and teaches it
//! for the rest of the client's life (a cycle): a tenth less budget and a wider margin, once per
//! episode (429s to requests sent before the lesson teach nothing more). `X-RateLimit-Remaining`
//! and `-Reset`, when an SP sends them, only ever hold requests back.
//!
//! A new pacer can be told of the requests an earlier run answered (`Pacer::remember`): the
//! target counts them whichever process sent them.
//!
//! Sans-IO (quinn's split): `Pacing` takes `now` and answers "go" or "wake me then"; it never
//! reads a clock or sleeps, so the arithmetic is tested on a fake clock. `Pacer` is the async
//! shell: tokio's clock, sleeping, and a `Permit` that records the answer when dropped.

use crate::error::ClientError;
use scimsync_scim::{Bucket, Budgets};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The margin when sync.toml sets none: a hundredth of the window (300 ms of Miro's 30 s).
pub const DEFAULT_MARGIN_DIVISOR: u32 = 100;

/// What a 429 subtracts from the budget in force: a tenth, at least one request.
const SHRINK_DIVISOR: u32 = 10;

/// What an SP told us about a bucket in `X-RateLimit-Remaining` / `X-RateLimit-Reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpHint {
    /// Requests the SP still accepts before `reset_in`.
    pub(crate) remaining: u32,
    /// From the answer's arrival until the SP's count resets.
    pub(crate) reset_in: Duration,
}

/// Why a request may not go yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Not before this time (from the pacer's epoch).
    At(Duration),
    /// Not before a request of the bucket in flight is answered (every slot is held by one).
    OnAnswer,
}

/// A request the pacing let go; hand it back through `answered` (or `throttled`, then
/// `answered`). It is not `Clone`, so a slot is released once.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    bucket: Bucket,
    /// The bucket's lesson count when it was sent: a 429 to it teaches only if none came since.
    lesson: u32,
}

/// One bucket's state.
#[derive(Clone, Debug)]
struct Lane {
    /// The published budget per window; `None`: unlimited, paced only by 429s and SP hints.
    budget: Option<u32>,
    /// The budget in force: the published one, less what 429s taught.
    allowed: u32,
    /// A slot frees `window + margin` after the answer of the request that held it.
    margin: Duration,
    in_flight: u32,
    /// When the answers of requests that still hold a slot arrived, oldest first.
    answered: VecDeque<Duration>,
    /// Nothing of this bucket goes before this time (a 429's pause).
    paused_until: Duration,
    /// The SP's own count, while it applies: requests left, and until when.
    hint: Option<(u32, Duration)>,
    lessons: u32,
}

impl Lane {
    fn new(budget: Option<u32>, margin: Duration) -> Lane {
        Lane {
            budget,
            allowed: budget.unwrap_or(u32::MAX),
            margin,
            in_flight: 0,
            answered: VecDeque::new(),
            paused_until: Duration::ZERO,
            hint: None,
            lessons: 0,
        }
    }
}

/// The pacing of every bucket of one target (sans-IO).
#[derive(Clone, Debug)]
pub(crate) struct Pacing {
    window: Duration,
    lanes: BTreeMap<Bucket, Lane>,
}

impl Pacing {
    /// `margin`: `None` for the default, a hundredth of the window.
    pub(crate) fn new(budgets: &Budgets, margin: Option<Duration>) -> Result<Pacing, ClientError> {
        let window = budgets.window;
        if window.is_zero() {
            return Err(ClientError::InvalidPacing {
                reason: "the window is zero".into(),
            });
        }
        let margin = margin.unwrap_or(window / DEFAULT_MARGIN_DIVISOR);
        if margin >= window {
            return Err(ClientError::InvalidPacing {
                reason: format!(
                    "the margin ({}) must be shorter than the window ({})",
                    humantime::format_duration(margin),
                    humantime::format_duration(window)
                ),
            });
        }
        let mut lanes = BTreeMap::new();
        for (&bucket, &per_window) in &budgets.buckets {
            if per_window == 0 {
                return Err(ClientError::ZeroBudget { bucket });
            }
            lanes.insert(bucket, Lane::new(Some(per_window), margin));
        }
        for bucket in Bucket::ALL {
            lanes
                .entry(bucket)
                .or_insert_with(|| Lane::new(None, margin));
        }
        Ok(Pacing { window, lanes })
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// Whether `bucket` has a budget (`false`: unlimited, paced only by 429s and SP hints).
    pub(crate) fn has_budget(&self, bucket: Bucket) -> bool {
        self.lane(bucket).is_some_and(|l| l.budget.is_some())
    }

    /// The budget in force for `bucket` (less than published after 429s); `None` if unlimited.
    pub(crate) fn allowed(&self, bucket: Bucket) -> Option<u32> {
        let lane = self.lane(bucket)?;
        lane.budget.map(|_| lane.allowed)
    }

    /// The margin in force for `bucket` (wider after 429s).
    #[cfg(test)]
    pub(crate) fn margin(&self, bucket: Bucket) -> Duration {
        self.lane(bucket)
            .map_or(self.window / DEFAULT_MARGIN_DIVISOR, |l| l.margin)
    }

    fn lane(&self, bucket: Bucket) -> Option<&Lane> {
        self.lanes.get(&bucket)
    }

    fn lane_mut(&mut self, bucket: Bucket) -> &mut Lane {
        let window = self.window;
        self.lanes
            .entry(bucket)
            .or_insert_with(|| Lane::new(None, window / DEFAULT_MARGIN_DIVISOR))
    }

    /// Sends one request of `bucket` at `now` if it may go, or says when to ask again.
    pub(crate) fn try_send(&mut self, bucket: Bucket, now: Duration) -> Result<Ticket, Wake> {
        let window = self.window;
        let lane = self.lane_mut(bucket);
        if lane.paused_until > now {
            return Err(Wake::At(lane.paused_until));
        }
        match lane.hint {
            Some((_, until)) if until <= now => lane.hint = None,
            Some((0, until)) => return Err(Wake::At(until)),
            _ => {}
        }
        if lane.budget.is_some() {
            let hold = window + lane.margin;
            while lane.answered.front().is_some_and(|&t| t + hold <= now) {
                lane.answered.pop_front();
            }
            // Counted in u64: `allowed` is at most a u32 and so is each count.
            let held = u64::from(lane.in_flight) + lane.answered.len() as u64;
            let allowed = u64::from(lane.allowed);
            if held >= allowed {
                // The slots held by answered requests free oldest first: the one that frees
                // the (held - allowed + 1)th is the one to wait for.
                let nth = usize::try_from(held - allowed).unwrap_or(usize::MAX);
                return Err(match lane.answered.get(nth) {
                    Some(&t) => Wake::At(t + hold),
                    None => Wake::OnAnswer,
                });
            }
        }
        lane.in_flight += 1;
        if let Some((left, _)) = &mut lane.hint {
            *left = left.saturating_sub(1);
        }
        Ok(Ticket {
            bucket,
            lesson: lane.lessons,
        })
    }

    /// The request of `ticket` was answered (or failed without an answer) at `now`: its slot
    /// frees a window and the margin later.
    pub(crate) fn answered(&mut self, ticket: Ticket, now: Duration) {
        let lane = self.lane_mut(ticket.bucket);
        lane.in_flight = lane.in_flight.saturating_sub(1);
        if lane.budget.is_none() {
            return;
        }
        // Answers are recorded under one lock in clock order, so this is a push at the back;
        // the search only guards the order the expiry scan relies on.
        let at = lane.answered.partition_point(|&t| t <= now);
        lane.answered.insert(at, now);
    }

    /// The request of `ticket` got a 429 at `now`: nothing of its bucket goes for `pause`, and
    /// unless a 429 already taught the bucket since this request was sent, it learns: a tenth
    /// less budget (at least one request, never below one) and a margin wider by a hundredth of
    /// the window (up to half the window, never narrowed). The count is what an SP budget shared
    /// with another client needs; the margin, what clock drift at the SP needs; a 429 does not
    /// say which, so each lesson takes a step of both.
    pub(crate) fn throttled(&mut self, ticket: &Ticket, now: Duration, pause: Duration) {
        let window = self.window;
        let lane = self.lane_mut(ticket.bucket);
        lane.paused_until = lane.paused_until.max(now + pause);
        if lane.budget.is_none() || ticket.lesson != lane.lessons {
            return;
        }
        lane.lessons += 1;
        let less = (lane.allowed / SHRINK_DIVISOR).max(1);
        lane.allowed = lane.allowed.saturating_sub(less).max(1);
        let wider = (lane.margin + window / DEFAULT_MARGIN_DIVISOR).min(window / 2);
        lane.margin = lane.margin.max(wider);
    }

    /// A request of `bucket` answered at `at`, before this pacing began (an earlier cycle or
    /// process against the same target), still holds its slot.
    pub(crate) fn seed(&mut self, bucket: Bucket, at: Duration) {
        let lane = self.lane_mut(bucket);
        if lane.budget.is_some() {
            let pos = lane.answered.partition_point(|&t| t <= at);
            lane.answered.insert(pos, at);
        }
    }

    /// The requests that still hold a slot at `now`: bucket and answer time, a request still in
    /// flight as answered now.
    pub(crate) fn held(&self, now: Duration) -> Vec<(Bucket, Duration)> {
        let mut held = Vec::new();
        for (&bucket, lane) in &self.lanes {
            let hold = self.window + lane.margin;
            held.extend(
                lane.answered
                    .iter()
                    .filter(|&&t| t + hold > now)
                    .map(|&t| (bucket, t)),
            );
            if lane.budget.is_some() {
                held.extend((0..lane.in_flight).map(|_| (bucket, now)));
            }
        }
        held
    }

    /// The SP said, answering a request of `bucket` at `now`, how many more it accepts before
    /// its count resets. Honoured as a further limit; never a reason to send more. Requests in
    /// flight besides this one may not have been counted yet, so they are taken off.
    pub(crate) fn hinted(&mut self, bucket: Bucket, now: Duration, hint: SpHint) {
        let lane = self.lane_mut(bucket);
        let until = now + hint.reset_in;
        let others = lane.in_flight.saturating_sub(1);
        let left = hint.remaining.saturating_sub(others);
        lane.hint = match lane.hint {
            // Answers arrive out of order: of two hints about the same reset, the lower count
            // is the later one.
            Some((old_left, old_until))
                if old_until > now && old_until.abs_diff(until) < Duration::from_secs(1) =>
            {
                Some((old_left.min(left), old_until.max(until)))
            }
            _ => Some((left, until)),
        };
    }
}

/// The async shell around `Pacing`: tokio's clock (so a paused test runtime drives it too),
/// sleeping until a slot frees, and permits that record their answer when dropped.
pub(crate) struct Pacer {
    epoch: tokio::time::Instant,
    /// Added to the time since `epoch`, so that requests answered before the pacer began
    /// (`remember`) have a time too: two windows, longer than any slot is held.
    before: Duration,
    state: Mutex<Pacing>,
    window: Duration,
    /// Woken when a request is answered, for requests waiting on `Wake::OnAnswer`.
    answers: tokio::sync::Notify,
    /// Per bucket, until when the last long wait announced runs: the requests queued behind
    /// the same spent budget wait for the same thing, and say it once.
    announced: Mutex<std::collections::HashMap<Bucket, Duration>>,
}

/// Longest single sleep while waiting for a slot, so a halted run notices soon.
const NAP: Duration = Duration::from_millis(250);

impl Pacer {
    pub(crate) fn new(budgets: &Budgets, margin: Option<Duration>) -> Result<Pacer, ClientError> {
        let pacing = Pacing::new(budgets, margin)?;
        Ok(Pacer {
            epoch: tokio::time::Instant::now(),
            before: pacing.window() * 2,
            window: pacing.window(),
            state: Mutex::new(pacing),
            answers: tokio::sync::Notify::new(),
            announced: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Whether a wait of `bucket` until `until` is news: no announced wait still runs.
    fn first_to_announce(&self, bucket: Bucket, until: Duration) -> bool {
        let now = self.now();
        let mut announced = self
            .announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match announced.get(&bucket) {
            Some(&end) if end > now => false,
            _ => {
                announced.insert(bucket, until);
                true
            }
        }
    }

    /// The pacer's clock: tokio's, as an offset from an epoch (what every sans-IO part of
    /// the executor takes as `now`).
    pub(crate) fn now(&self) -> Duration {
        self.epoch.elapsed() + self.before
    }

    /// Requests of `bucket` answered `ago` (by an earlier cycle or process) still hold slots.
    pub(crate) fn remember(&self, answered: impl IntoIterator<Item = (Bucket, Duration)>) {
        let now = self.now();
        let mut state = self.state();
        for (bucket, ago) in answered {
            if ago < self.before {
                state.seed(bucket, now - ago);
            }
        }
    }

    /// The requests that still hold a slot: bucket, and how long ago each was answered.
    pub(crate) fn recent(&self) -> Vec<(Bucket, Duration)> {
        let now = self.now();
        self.state()
            .held(now)
            .into_iter()
            .map(|(bucket, at)| (bucket, now.saturating_sub(at)))
            .collect()
    }

    fn state(&self) -> MutexGuard<'_, Pacing> {
        // The state is plain numbers, consistent after any statement; keep using it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    pub(crate) fn has_budget(&self, bucket: Bucket) -> bool {
        self.state().has_budget(bucket)
    }

    /// The budget in force for `bucket`, lower than published after 429s taught it.
    pub(crate) fn allowed(&self, bucket: Bucket) -> Option<u32> {
        self.state().allowed(bucket)
    }

    /// Waits until a request of `bucket` may go and takes its slot; `None` without a slot as
    /// soon as `cancelled` says so (checked at least every 250 ms, so a halted run does not sit
    /// out a long pause first).
    pub(crate) async fn acquire(
        &self,
        bucket: Bucket,
        cancelled: impl Fn() -> bool,
    ) -> Option<Permit<'_>> {
        // Each wait ends no later than the time the slot can free, so this loops only when
        // other tasks took the slot first, or to look at `cancelled`.
        let mut announced = false;
        loop {
            if cancelled() {
                return None;
            }
            // Registered before asking, so an answer between the two is not missed.
            let answered = self.answers.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let now = self.now();
            let wake = match self.state().try_send(bucket, now) {
                Ok(ticket) => {
                    return Some(Permit {
                        pacer: self,
                        ticket: Some(ticket),
                    });
                }
                Err(wake) => wake,
            };
            match wake {
                Wake::At(at) => {
                    let wait = at.saturating_sub(now);
                    // A long silence reads as a hang: say once what this waits for.
                    if !announced && wait > crate::LONG_WAIT && self.first_to_announce(bucket, at) {
                        announced = true;
                        tracing::info!(
                            "waiting {} for the target's {bucket} budget ({}): requests sent \
                             in the last window, by this command or one before it, used it up",
                            crate::seconds(wait),
                            self.allowed(bucket)
                                .map(|n| format!("{n} per {}", crate::seconds(self.window())))
                                .unwrap_or_else(|| "no published limit".into())
                        );
                    }
                    tokio::time::sleep(wait.min(NAP)).await
                }
                Wake::OnAnswer => {
                    tokio::select! {
                        () = &mut answered => {}
                        () = tokio::time::sleep(NAP) => {}
                    }
                }
            }
        }
    }
}

/// A slot of one bucket, held from the send until the answer (the drop).
pub(crate) struct Permit<'a> {
    pacer: &'a Pacer,
    ticket: Option<Ticket>,
}

impl Permit<'_> {
    /// The request was answered 429: pause its bucket for `pause`, and learn.
    pub(crate) fn throttled(&self, pause: Duration) {
        if let Some(ticket) = &self.ticket {
            let now = self.pacer.now();
            self.pacer.state().throttled(ticket, now, pause);
        }
    }

    /// The SP sent `X-RateLimit-Remaining` and `-Reset` with its answer.
    pub(crate) fn hinted(&self, hint: SpHint) {
        if let Some(ticket) = &self.ticket {
            let now = self.pacer.now();
            self.pacer.state().hinted(ticket.bucket, now, hint);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let now = self.pacer.now();
            self.pacer.state().answered(ticket, now);
            self.pacer.answers.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests;
