//! The pacing on a fake clock: a small discrete-event simulation drives `Pacing` with demand,
//! concurrency, latency and 429s, and the send times (and the times an SP would count the
//! requests, anywhere between send and answer) are checked against sliding-window, fixed-window
//! and token-bucket SPs of the budget's size.
#![allow(clippy::unwrap_used)]

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;

const B: Bucket = Bucket::UsersPost;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn budgets(window: Duration, n: u32) -> Budgets {
    Budgets {
        window,
        buckets: [(B, n)].into(),
    }
}

/// How the simulated SP answers: its own budget (a sliding log over the arrival times, like the
/// emulator's), and a chance of a 429 regardless (another client on the same token, a gateway).
#[derive(Clone, Copy)]
struct Sp {
    budget: Option<usize>,
    random_429: f64,
    /// The pause the client takes after a 429 (the shell's default is half a window).
    pause: Duration,
}

struct Flight {
    answer_at: Duration,
    counted_at: Duration,
    ticket: Ticket,
}

struct Sim {
    pacing: Pacing,
    window: Duration,
    now: Duration,
    rng: StdRng,
    concurrency: usize,
    latency: (Duration, Duration),
    sp: Sp,
    /// Future demand: (time, requests that become ready then).
    demand: VecDeque<(Duration, usize)>,
    ready: usize,
    flights: Vec<Flight>,
    sends: Vec<Duration>,
    /// When the SP counted each request it accepted, and every request (429s included).
    accepted: Vec<Duration>,
    counted: Vec<Duration>,
    answers: Vec<Duration>,
    throttled: usize,
}

impl Sim {
    fn new(pacing: Pacing, seed: u64) -> Sim {
        Sim {
            window: pacing.window(),
            pacing,
            now: Duration::ZERO,
            rng: StdRng::seed_from_u64(seed),
            concurrency: 16,
            latency: (ms(5), ms(5)),
            sp: Sp {
                budget: None,
                random_429: 0.0,
                pause: Duration::ZERO,
            },
            demand: VecDeque::new(),
            ready: 0,
            flights: Vec::new(),
            sends: Vec::new(),
            accepted: Vec::new(),
            counted: Vec::new(),
            answers: Vec::new(),
            throttled: 0,
        }
    }

    /// Runs until every request is answered (a 429 is sent again), bounded in steps.
    fn run(&mut self) {
        for _ in 0..2_000_000 {
            while self.demand.front().is_some_and(|&(t, _)| t <= self.now) {
                self.ready += self.demand.pop_front().map_or(0, |(_, n)| n);
            }
            self.answer_due();
            let mut wake = None;
            while self.ready > 0 && self.flights.len() < self.concurrency {
                match self.pacing.try_send(B, self.now) {
                    Ok(ticket) => self.send(ticket),
                    Err(w) => {
                        wake = Some(w);
                        break;
                    }
                }
            }
            let next = [
                self.demand.front().map(|&(t, _)| t),
                self.flights.iter().map(|f| f.answer_at).min(),
                match wake {
                    Some(Wake::At(t)) => Some(t),
                    _ => None,
                },
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) => {
                    assert!(
                        t > self.now || wake.is_none(),
                        "no progress at {:?}",
                        self.now
                    );
                    self.now = self.now.max(t);
                }
                None => {
                    assert_eq!(self.ready, 0, "demand left and nothing to wait for");
                    return;
                }
            }
        }
        panic!("the simulation did not finish");
    }

    fn send(&mut self, ticket: Ticket) {
        self.ready -= 1;
        let (lo, hi) = self.latency;
        let latency = if hi > lo {
            self.rng.random_range(lo..=hi)
        } else {
            lo
        };
        let counted_at = self.now + latency.mul_f64(self.rng.random_range(0.0..=1.0));
        self.sends.push(self.now);
        self.flights.push(Flight {
            answer_at: self.now + latency,
            counted_at,
            ticket,
        });
    }

    /// Answers the flights due by now, in the order the SP counted them.
    fn answer_due(&mut self) {
        let mut due: Vec<Flight> = Vec::new();
        let mut i = 0;
        while i < self.flights.len() {
            if self.flights[i].answer_at <= self.now {
                due.push(self.flights.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|f| f.counted_at);
        for flight in due {
            let within = self
                .accepted
                .iter()
                .rev()
                .take_while(|&&t| t + self.window > flight.counted_at)
                .count();
            let over = self.sp.budget.is_some_and(|n| within >= n);
            let unlucky = self.sp.random_429 > 0.0 && self.rng.random_bool(self.sp.random_429);
            self.counted.push(flight.counted_at);
            if over || unlucky {
                self.throttled += 1;
                self.ready += 1;
                self.pacing
                    .throttled(&flight.ticket, flight.answer_at, self.sp.pause);
            } else {
                self.accepted.push(flight.counted_at);
            }
            self.answers.push(flight.answer_at);
            self.pacing.answered(flight.ticket, flight.answer_at);
        }
        self.accepted.sort();
    }
}

/// Most requests within any closed window-long interval `[t, t + window]`.
fn busiest(times: &[Duration], window: Duration) -> usize {
    let mut times = times.to_vec();
    times.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] > window {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

/// Whether a token bucket of `n` tokens refilled at `n` per `window` (full at first) admits
/// every request at `times`.
fn token_bucket_admits(times: &[Duration], window: Duration, n: u32) -> bool {
    let mut times = times.to_vec();
    times.sort();
    let rate = f64::from(n) / window.as_secs_f64();
    let mut tokens = f64::from(n);
    let mut last = Duration::ZERO;
    for t in times {
        tokens = (tokens + (t - last).as_secs_f64() * rate).min(f64::from(n));
        last = t;
        if tokens < 1.0 - 1e-9 {
            return false;
        }
        tokens -= 1.0;
    }
    true
}

/// Whether fixed windows of `window` starting at `offset` ever count more than `n`.
fn fixed_windows_admit(times: &[Duration], window: Duration, offset: Duration, n: usize) -> bool {
    let mut per: BTreeMap<u128, usize> = BTreeMap::new();
    for &t in times {
        // Offsets are less than a window, so this never underflows.
        let slot = (t + window - offset).as_nanos() / window.as_nanos();
        *per.entry(slot).or_default() += 1;
    }
    per.values().all(|&c| c <= n)
}

/// Random demand: bursts of 1..400 requests with idle spells of up to two windows between.
fn random_demand(rng: &mut StdRng, window: Duration, bursts: usize) -> VecDeque<(Duration, usize)> {
    let mut at = Duration::ZERO;
    let mut demand = VecDeque::new();
    for _ in 0..bursts {
        demand.push_back((at, rng.random_range(1..=400)));
        at += window.mul_f64(rng.random_range(0.0..2.0));
    }
    demand
}

#[test]
fn no_window_exceeds_the_budget_for_random_demand_shapes_latencies_and_429s() {
    let window = Duration::from_secs(30);
    let n = 200;
    for seed in 0..24u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut sim = Sim::new(Pacing::new(&budgets(window, n), None).unwrap(), seed);
        sim.concurrency = rng.random_range(1..=48);
        let hi = ms(rng.random_range(1..=2_000));
        sim.latency = (ms(rng.random_range(1..=2)), hi.max(ms(2)));
        // Every third seed, the SP also answers some requests 429 (each one is sent again).
        if seed % 3 == 0 {
            sim.sp = Sp {
                budget: None,
                random_429: 0.02,
                pause: window / 2,
            };
        }
        sim.demand = random_demand(&mut rng, window, 12);
        sim.run();
        let requests = sim.sends.len();
        assert!(requests >= 12, "seed {seed}");
        // At the client, as sent; and at the SP, wherever between send and answer it counts.
        assert!(busiest(&sim.sends, window) <= n as usize, "seed {seed}");
        assert!(busiest(&sim.counted, window) <= n as usize, "seed {seed}");
        assert!(token_bucket_admits(&sim.counted, window, n), "seed {seed}");
        for offset in [ms(0), ms(7_919), ms(15_000), ms(29_999)] {
            assert!(
                fixed_windows_admit(&sim.counted, window, offset, n as usize),
                "seed {seed}, offset {offset:?}"
            );
        }
        if seed % 3 == 0 {
            assert!(sim.throttled > 0, "seed {seed}: the 429s were injected");
        }
    }
}

/// The control for the test above: the same checks catch a pacer that lets a request go as soon
/// as the one N places back was *sent* a window ago, once the SP counts requests late.
#[test]
fn measuring_from_the_send_would_overrun_an_sp_that_counts_late() {
    let window = Duration::from_secs(1);
    let n = 10;
    // Ten requests sent at once sit in the SP's queue and are counted (and answered) 100 ms
    // later. A send-measured pacer lets request 10 go a window after the sends, and the SP
    // counts it at once: eleven in [100 ms, 1 100 ms].
    let mut sends = vec![ms(0); n];
    sends.push(ms(1_001));
    let mut counted = vec![ms(100); n];
    counted.push(ms(1_001));
    assert!(busiest(&sends, window) <= n);
    assert!(busiest(&counted, window) > n, "the check has teeth");
    // The pacing holds each slot until a window (and the margin) after the answer.
    let mut pacing = Pacing::new(&budgets(window, n as u32), Some(ms(1))).unwrap();
    let tickets: Vec<Ticket> = (0..n).map(|_| pacing.try_send(B, ms(0)).unwrap()).collect();
    for t in tickets {
        pacing.answered(t, ms(100));
    }
    assert_eq!(pacing.try_send(B, ms(1_001)), Err(Wake::At(ms(1_101))));
    assert!(pacing.try_send(B, ms(1_101)).is_ok());
}

#[test]
fn the_burst_bound_is_reached_within_two_percent() {
    let window = Duration::from_secs(30);
    let n = 200u32;
    let concurrency = 16;
    let latency = ms(5);
    // The time one burst takes to be sent and answered at this concurrency and latency.
    let burst = latency * n.div_ceil(concurrency);
    for requests in [200usize, 600, 2_000] {
        let mut sim = Sim::new(Pacing::new(&budgets(window, n), None).unwrap(), 1);
        sim.concurrency = concurrency as usize;
        sim.latency = (latency, latency);
        sim.demand = [(Duration::ZERO, requests)].into();
        sim.run();
        let done = sim.answers.iter().max().copied().unwrap();
        let windows = u32::try_from((requests - 1) / n as usize).unwrap();
        let bound = window * windows + burst;
        let ratio = bound.as_secs_f64() / done.as_secs_f64();
        assert!(
            (0.98..=1.0).contains(&ratio),
            "{requests}: done at {done:?}, burst bound {bound:?}, ratio {ratio:.4}"
        );
        assert!(busiest(&sim.sends, window) <= n as usize);
        // Each burst is a whole budget.
        assert_eq!(
            busiest(&sim.sends, window.mul_f64(0.9)),
            requests.min(n as usize),
            "{requests}"
        );
    }
}

#[test]
fn a_sp_with_a_smaller_budget_teaches_the_pacer_within_a_few_429s() {
    // Another integration shares the token: the SP lets only 150 of our requests through per
    // window, where we believe in 200.
    let window = Duration::from_secs(30);
    let mut sim = Sim::new(Pacing::new(&budgets(window, 200), None).unwrap(), 3);
    sim.latency = (ms(2), ms(40));
    sim.sp = Sp {
        budget: Some(150),
        random_429: 0.0,
        pause: window / 2,
    };
    sim.demand = [(Duration::ZERO, 1_500)].into();
    sim.run();
    let lessons = sim.pacing.lanes[&B].lessons;
    let allowed = sim.pacing.allowed(B).unwrap();
    assert!(allowed <= 150, "learnt down to {allowed}");
    assert!((1..=6).contains(&lessons), "{lessons} lessons");
    // Each lesson is one episode: the 429s of requests already in flight teach nothing more.
    assert!(sim.throttled < 200, "{} 429s", sim.throttled);
    // Never more than our own budget, before, during and after the lessons.
    assert!(busiest(&sim.sends, window) <= 200);
    // And once learnt, no more 429s: the last third of the requests all went through.
    let tail = sim.answers.len() * 2 / 3;
    let mut answers = sim.answers.clone();
    answers.sort();
    let quiet_from = answers[tail];
    let late_429s = sim.throttled_after(quiet_from);
    assert_eq!(late_429s, 0);
    assert!(sim.pacing.margin(B) > window / DEFAULT_MARGIN_DIVISOR);
}

impl Sim {
    /// 429s answered at or after `t` (requests counted but not accepted).
    fn throttled_after(&self, t: Duration) -> usize {
        let counted = self.counted.iter().filter(|&&c| c >= t).count();
        let accepted = self.accepted.iter().filter(|&&c| c >= t).count();
        counted.saturating_sub(accepted)
    }
}

#[test]
fn a_whole_budget_goes_at_once_then_each_slot_frees_a_window_after_its_answer() {
    let window = Duration::from_secs(30);
    let margin = ms(300);
    let mut pacing = Pacing::new(&budgets(window, 3), Some(margin)).unwrap();
    let a = pacing.try_send(B, ms(0)).unwrap();
    let b = pacing.try_send(B, ms(0)).unwrap();
    let c = pacing.try_send(B, ms(1)).unwrap();
    // Every slot held by a request in flight: only an answer can help.
    assert_eq!(pacing.try_send(B, ms(2)), Err(Wake::OnAnswer));
    pacing.answered(b, ms(40));
    pacing.answered(a, ms(50));
    assert_eq!(
        pacing.try_send(B, ms(60)),
        Err(Wake::At(ms(40) + window + margin))
    );
    pacing.answered(c, ms(70));
    let at = ms(40) + window + margin;
    assert!(pacing.try_send(B, at - ms(1)).is_err());
    let _d = pacing.try_send(B, at).unwrap();
    assert_eq!(
        pacing.try_send(B, at),
        Err(Wake::At(ms(50) + window + margin))
    );
}

#[test]
fn the_default_margin_is_a_hundredth_of_the_window() {
    let pacing = Pacing::new(&budgets(Duration::from_secs(30), 200), None).unwrap();
    assert_eq!(pacing.margin(B), ms(300));
    let pacing = Pacing::new(&budgets(ms(300), 200), None).unwrap();
    assert_eq!(pacing.margin(B), ms(3));
}

#[test]
fn a_429_pauses_and_teaches_its_bucket_once_per_episode() {
    let window = Duration::from_secs(30);
    let mut pacing = Pacing::new(&budgets(window, 200), None).unwrap();
    let before: Vec<Ticket> = (0..3).map(|_| pacing.try_send(B, ms(0)).unwrap()).collect();
    pacing.throttled(&before[0], ms(10), Duration::from_secs(5));
    assert_eq!(pacing.allowed(B), Some(180));
    assert_eq!(pacing.margin(B), ms(300) + ms(300));
    // The other 429s of the same episode (sent before the lesson) teach nothing more, but a
    // longer pause still wins.
    pacing.throttled(&before[1], ms(11), Duration::from_secs(1));
    pacing.throttled(&before[2], ms(12), Duration::from_secs(6));
    assert_eq!(pacing.allowed(B), Some(180));
    assert_eq!(
        pacing.try_send(B, ms(100)),
        Err(Wake::At(ms(12) + Duration::from_secs(6)))
    );
    for t in before {
        pacing.answered(t, ms(20));
    }
    // A request sent after the lesson that gets a 429 is a new episode.
    let after = pacing.try_send(B, Duration::from_secs(7)).unwrap();
    pacing.throttled(&after, Duration::from_secs(7), Duration::ZERO);
    assert_eq!(pacing.allowed(B), Some(162));
    pacing.answered(after, Duration::from_secs(7));
    // Never below one request, and the margin never past half the window.
    for i in 0..100 {
        // A window apart, so each goes and each is a new episode.
        let at = Duration::from_secs(1_000 + 60 * i);
        let t = pacing.try_send(B, at).unwrap();
        pacing.throttled(&t, at, Duration::ZERO);
        pacing.answered(t, at);
    }
    assert_eq!(pacing.allowed(B), Some(1));
    assert_eq!(pacing.margin(B), window / 2);
}

#[test]
fn the_sps_remaining_count_holds_requests_back_but_never_adds_any() {
    let window = Duration::from_secs(30);
    let mut pacing = Pacing::new(&budgets(window, 200), None).unwrap();
    let first = pacing.try_send(B, ms(0)).unwrap();
    let other = pacing.try_send(B, ms(0)).unwrap();
    // Two more until the reset, one of them possibly the other request in flight.
    pacing.hinted(
        B,
        ms(10),
        SpHint {
            remaining: 2,
            reset_in: Duration::from_secs(5),
        },
    );
    pacing.answered(first, ms(10));
    pacing.answered(other, ms(10));
    let reset = ms(10) + Duration::from_secs(5);
    let third = pacing.try_send(B, ms(20)).unwrap();
    assert_eq!(pacing.try_send(B, ms(20)), Err(Wake::At(reset)));
    pacing.answered(third, ms(30));
    // After the reset the hint is gone: our own budget applies again.
    for _ in 0..197 {
        pacing.try_send(B, reset).unwrap();
    }
    assert!(pacing.try_send(B, reset).is_err(), "200 in the window");
    // A generous hint adds nothing to our own budget.
    let mut pacing = Pacing::new(&budgets(window, 2), None).unwrap();
    let t = pacing.try_send(B, ms(0)).unwrap();
    pacing.hinted(
        B,
        ms(1),
        SpHint {
            remaining: 1_000,
            reset_in: Duration::from_secs(1),
        },
    );
    pacing.answered(t, ms(1));
    pacing.try_send(B, ms(2)).unwrap();
    assert!(pacing.try_send(B, ms(3)).is_err());
}

#[test]
fn a_stale_hint_does_not_raise_a_fresher_lower_one() {
    let mut pacing = Pacing::new(&budgets(Duration::from_secs(30), 200), None).unwrap();
    let reset = Duration::from_secs(10);
    pacing.hinted(
        B,
        ms(100),
        SpHint {
            remaining: 0,
            reset_in: reset - ms(100),
        },
    );
    // An answer that left the SP earlier arrives later, with a higher count, same reset.
    pacing.hinted(
        B,
        ms(120),
        SpHint {
            remaining: 5,
            reset_in: reset - ms(120) + ms(400),
        },
    );
    assert_eq!(pacing.try_send(B, ms(130)), Err(Wake::At(reset + ms(400))));
}

#[test]
fn buckets_are_independent_and_unbudgeted_ones_unlimited_but_pausable() {
    let mut pacing = Pacing::new(
        &Budgets {
            window: Duration::from_secs(30),
            buckets: [(Bucket::UsersDelete, 1)].into(),
        },
        None,
    )
    .unwrap();
    let d = pacing.try_send(Bucket::UsersDelete, ms(0)).unwrap();
    assert!(pacing.try_send(Bucket::UsersDelete, ms(0)).is_err());
    let mut gets = Vec::new();
    for _ in 0..10_000 {
        gets.push(pacing.try_send(Bucket::UsersGet, ms(0)).unwrap());
    }
    assert!(!pacing.has_budget(Bucket::UsersGet));
    pacing.throttled(&gets[0], ms(1), Duration::from_secs(2));
    assert_eq!(pacing.allowed(Bucket::UsersGet), None, "nothing to shrink");
    assert_eq!(
        pacing.try_send(Bucket::UsersGet, ms(5)),
        Err(Wake::At(ms(1) + Duration::from_secs(2)))
    );
    for t in gets {
        pacing.answered(t, ms(6));
    }
    assert!(pacing.lanes[&Bucket::UsersGet].answered.is_empty());
    assert!(
        pacing
            .try_send(Bucket::UsersGet, Duration::from_secs(3))
            .is_ok()
    );
    pacing.answered(d, ms(1));
}

#[test]
fn bad_configurations_are_refused() {
    let zero = budgets(Duration::from_secs(30), 0);
    assert!(matches!(
        Pacing::new(&zero, None),
        Err(ClientError::ZeroBudget { .. })
    ));
    let ok = budgets(Duration::from_secs(30), 5);
    assert!(Pacing::new(&ok, Some(Duration::from_secs(30))).is_err());
    assert!(Pacing::new(&ok, Some(Duration::ZERO)).is_ok());
    assert!(Pacing::new(&budgets(Duration::ZERO, 5), None).is_err());
}

/// The shell on tokio's paused clock: a permit's drop is the answer, and a waiting request goes
/// exactly when the slot frees.
#[tokio::test(start_paused = true)]
async fn the_shell_sleeps_until_the_slot_frees() {
    let window = Duration::from_secs(30);
    let pacer = Pacer::new(&budgets(window, 2), Some(ms(100))).unwrap();
    let start = tokio::time::Instant::now();
    let a = pacer.acquire(B, || false).await.unwrap();
    let b = pacer.acquire(B, || false).await.unwrap();
    tokio::time::sleep(ms(20)).await;
    drop(a);
    tokio::time::sleep(ms(10)).await;
    drop(b);
    let c = pacer.acquire(B, || false).await.unwrap();
    assert_eq!(start.elapsed(), ms(20) + window + ms(100));
    drop(c);
    // A cancelled wait gives up without a slot.
    let _d = pacer.acquire(B, || false).await.unwrap();
    assert!(pacer.acquire(B, || true).await.is_none());
}

/// Requests an earlier process sent still count: a new pacer told of them holds their slots.
#[tokio::test(start_paused = true)]
async fn requests_of_an_earlier_run_hold_their_slots_in_a_new_pacer() {
    let window = Duration::from_secs(30);
    let earlier = Pacer::new(&budgets(window, 3), Some(ms(100))).unwrap();
    let a = earlier.acquire(B, || false).await.unwrap();
    let b = earlier.acquire(B, || false).await.unwrap();
    drop(a);
    tokio::time::sleep(Duration::from_secs(10)).await;
    drop(b);
    // Unbudgeted buckets are not remembered.
    drop(earlier.acquire(Bucket::UsersGet, || false).await.unwrap());
    let recent = earlier.recent();
    assert_eq!(
        recent,
        vec![(B, Duration::from_secs(10)), (B, Duration::ZERO)]
    );

    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = Pacer::new(&budgets(window, 3), Some(ms(100))).unwrap();
    later.remember(
        recent
            .into_iter()
            .map(|(bucket, ago)| (bucket, ago + Duration::from_secs(5))),
    );
    let start = tokio::time::Instant::now();
    let _c = later.acquire(B, || false).await.unwrap();
    // Two slots held: the third waits for the older of them, answered 15 s before.
    let _d = later.acquire(B, || false).await.unwrap();
    assert_eq!(start.elapsed(), window + ms(100) - Duration::from_secs(15));
    // Anything older than two windows is forgotten.
    later.remember([(B, window * 2)]);
    assert_eq!(later.recent().len(), 3);
}
