//! Per-bucket pacing: one GCRA limiter per limited bucket, spaced (with a small burst) so that
//! no window-long interval ever holds more than the budget, plus a per-bucket pause that a 429
//! sets.
//!
//! Sans-IO: `Pacer::try_acquire` answers "go" or "wait this long" against an injected clock,
//! so the arithmetic is tested without sockets or sleeping; `acquire` is the thin async shell.

use crate::error::ClientError;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use scimsync_scim::{Bucket, Budgets};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

/// Fraction of the budget the pacer aims for by default. Requests spaced exactly window/N
/// apart put N+1 of them in a closed window-long interval; a little headroom also absorbs
/// jitter between when a request leaves and when the SP counts it.
pub const DEFAULT_HEADROOM: f64 = 0.98;

/// Time as an offset from the pacer's epoch, from tokio's clock (so a paused test runtime
/// drives it too).
#[derive(Clone, Debug)]
pub(crate) struct TokioClock {
    epoch: tokio::time::Instant,
}

impl TokioClock {
    pub(crate) fn new() -> Self {
        TokioClock {
            epoch: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

type Lane<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<Duration>>;

pub(crate) struct Pacer<C: Clock<Instant = Duration>> {
    clock: C,
    window: Duration,
    lanes: BTreeMap<Bucket, Lane<C>>,
    /// Bucket → clock time before which nothing of it is sent (set by 429s).
    paused: Mutex<BTreeMap<Bucket, Duration>>,
}

/// How many requests a lane may send back to back after an idle spell. Spacing alone (burst 1)
/// loses for good every slot that no request took on time (none was waiting, or the waiting
/// task's timer fired late: ~1 ms against a 15 ms period cost ~6 % in bench-provision); a small
/// burst gives them back.
/// A window-long interval then holds at most `burst + floor(N × headroom)` requests (the burst,
/// then one per period), so the burst is half the headroom's slack, which keeps that at or
/// under N with the other half left for jitter; at least 1, which a small budget gets.
fn burst(per_window: u32, headroom: f64) -> NonZeroU32 {
    // The epsilon keeps float error from flooring 200 × 0.02 / 2 = 1.999… down to 1.
    let slack = f64::from(per_window) * (1.0 - headroom) / 2.0 + 1e-9;
    // `as` saturates and truncates toward zero, which is the floor wanted here.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let half_slack = slack.floor() as u32;
    NonZeroU32::new(half_slack).unwrap_or(NonZeroU32::MIN)
}

impl<C: Clock<Instant = Duration> + Clone> Pacer<C> {
    pub(crate) fn new(budgets: &Budgets, headroom: f64, clock: C) -> Result<Self, ClientError> {
        if !(headroom > 0.0 && headroom <= 1.0) {
            return Err(ClientError::InvalidPacing {
                reason: format!("headroom {headroom} is not in (0, 1]"),
            });
        }
        if budgets.window.is_zero() {
            return Err(ClientError::InvalidPacing {
                reason: "the window is zero".into(),
            });
        }
        let mut lanes = BTreeMap::new();
        for (&bucket, &per_window) in &budgets.buckets {
            if per_window == 0 {
                return Err(ClientError::ZeroBudget { bucket });
            }
            let period = budgets.window.div_f64(f64::from(per_window) * headroom);
            let quota = Quota::with_period(period)
                .ok_or_else(|| ClientError::InvalidPacing {
                    reason: format!(
                        "{bucket}: {per_window} per {:?} is too fast to pace",
                        budgets.window
                    ),
                })?
                .allow_burst(burst(per_window, headroom));
            lanes.insert(bucket, RateLimiter::direct_with_clock(quota, clock.clone()));
        }
        Ok(Pacer {
            clock,
            window: budgets.window,
            lanes,
            paused: Mutex::new(BTreeMap::new()),
        })
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// Whether `bucket` has a budget (`None`: unlimited, paced only by 429s).
    pub(crate) fn has_budget(&self, bucket: Bucket) -> bool {
        self.lanes.contains_key(&bucket)
    }

    /// Takes a token for one request of `bucket` now, or says how long to wait. A paused bucket
    /// takes no token until the pause is over.
    pub(crate) fn try_acquire(&self, bucket: Bucket) -> Result<(), Duration> {
        let now = self.clock.now();
        if let Some(until) = self.paused_until(bucket).filter(|&until| until > now) {
            return Err(until - now);
        }
        match self.lanes.get(&bucket) {
            None => Ok(()),
            Some(lane) => lane
                .check()
                .map_err(|not_until| not_until.wait_time_from(now)),
        }
    }

    /// Nothing of `bucket` is sent for `pause` from now (a later pause already set wins).
    pub(crate) fn pause(&self, bucket: Bucket, pause: Duration) {
        let until = self.clock.now() + pause;
        if let Ok(mut paused) = self.paused.lock() {
            let slot = paused.entry(bucket).or_insert(until);
            *slot = (*slot).max(until);
        }
    }

    fn paused_until(&self, bucket: Bucket) -> Option<Duration> {
        self.paused
            .lock()
            .ok()
            .and_then(|p| p.get(&bucket).copied())
    }
}

impl Pacer<TokioClock> {
    /// Waits until a request of `bucket` may be sent and takes its token; returns false
    /// without a token as soon as `cancelled` says so (checked at least every 250 ms, so a
    /// halted run does not sit out a long pause first).
    pub(crate) async fn acquire(&self, bucket: Bucket, cancelled: impl Fn() -> bool) -> bool {
        // Each wait ends no later than the earliest time a token can exist, so this loops only
        // when other tasks took the token first or to look at `cancelled`.
        loop {
            if cancelled() {
                return false;
            }
            match self.try_acquire(bucket) {
                Ok(()) => return true,
                Err(wait) => {
                    let nap = wait.clamp(Duration::from_micros(50), Duration::from_millis(250));
                    tokio::time::sleep(nap).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Clone, Default)]
    struct ManualClock(Arc<AtomicU64>);

    impl ManualClock {
        fn advance(&self, d: Duration) {
            self.0
                .fetch_add(u64::try_from(d.as_nanos()).unwrap(), Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        type Instant = Duration;
        fn now(&self) -> Duration {
            Duration::from_nanos(self.0.load(Ordering::SeqCst))
        }
    }

    fn budgets(window: Duration, bucket: Bucket, n: u32) -> Budgets {
        Budgets {
            window,
            buckets: [(bucket, n)].into(),
        }
    }

    /// Sends `count` requests as fast as the pacer allows; returns their send times.
    fn drain(
        pacer: &Pacer<ManualClock>,
        clock: &ManualClock,
        bucket: Bucket,
        count: usize,
    ) -> Vec<Duration> {
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let mut granted = false;
            for _ in 0..100 {
                match pacer.try_acquire(bucket) {
                    Ok(()) => {
                        granted = true;
                        break;
                    }
                    Err(wait) => clock.advance(wait),
                }
            }
            assert!(granted, "no token after 100 waits");
            times.push(clock.now());
        }
        times
    }

    /// Most requests seen in any closed interval `[t, t + window]`.
    fn busiest_window(times: &[Duration], window: Duration) -> usize {
        times
            .iter()
            .enumerate()
            .map(|(i, &t)| times[i..].iter().take_while(|&&u| u <= t + window).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_window_ever_exceeds_the_budget_yet_the_rate_is_close_to_it() {
        for (window, n) in [
            (Duration::from_secs(30), 200),
            (Duration::from_millis(300), 20),
            (Duration::from_secs(30), 5),
        ] {
            let clock = ManualClock::default();
            let pacer = Pacer::new(
                &budgets(window, Bucket::UsersPost, n),
                DEFAULT_HEADROOM,
                clock.clone(),
            )
            .unwrap();
            let count = 3 * n as usize;
            let times = drain(&pacer, &clock, Bucket::UsersPost, count);
            assert!(
                busiest_window(&times, window) <= n as usize,
                "{n} per {window:?}"
            );
            // (count - 1) gaps of window / (n * headroom): about 3 windows, not much more.
            let span = times[count - 1] - times[0];
            let ideal = window.mul_f64((count - 1) as f64 / f64::from(n));
            assert!(span >= ideal, "{span:?} < {ideal:?}");
            assert!(
                span <= ideal.mul_f64(1.05),
                "{span:?} too slow for {ideal:?}"
            );
        }
    }

    #[test]
    fn the_burst_is_half_the_headroom_slack_and_at_least_one() {
        assert_eq!(burst(200, DEFAULT_HEADROOM).get(), 2);
        assert_eq!(burst(20, DEFAULT_HEADROOM).get(), 1);
        assert_eq!(burst(5, DEFAULT_HEADROOM).get(), 1);
        assert_eq!(burst(200, 1.0).get(), 1);
        assert_eq!(burst(1000, 0.9).get(), 50);
    }

    #[test]
    fn after_an_idle_spell_a_burst_goes_at_once_and_no_window_exceeds_the_budget() {
        let window = Duration::from_secs(30);
        let n = 200;
        let clock = ManualClock::default();
        let pacer = Pacer::new(
            &budgets(window, Bucket::UsersGet, n),
            DEFAULT_HEADROOM,
            clock.clone(),
        )
        .unwrap();
        let b = burst(n, DEFAULT_HEADROOM).get() as usize;
        assert!(b > 1, "a 200 budget should get a burst");
        // A quiet lane lets the burst through back to back, then spaces the next one.
        for _ in 0..b {
            assert!(pacer.try_acquire(Bucket::UsersGet).is_ok());
        }
        assert!(pacer.try_acquire(Bucket::UsersGet).is_err());

        // Adversarial mix: runs of back-to-back requests with idle spells between them (from
        // a fixed LCG), so the burst refills again and again; no window-long interval may hold
        // more than n.
        let mut times = Vec::new();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..400 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let run = 1 + (state >> 60) as usize; // 1..=16 requests
            let idle_ms = (state >> 33) % 400; // 0..400 ms, up to ~2.6 periods
            times.extend(drain(&pacer, &clock, Bucket::UsersGet, run));
            clock.advance(Duration::from_millis(idle_ms));
        }
        // Then the worst case: a full burst after an idle spell, and demand for a whole window.
        clock.advance(Duration::from_secs(1));
        times.extend(drain(&pacer, &clock, Bucket::UsersGet, 2 * n as usize));
        assert!(
            times.len() > 3 * n as usize,
            "the mix spans several windows"
        );
        let busiest = busiest_window(&times, window);
        assert!(busiest <= n as usize, "{busiest} in one window, budget {n}");
    }

    #[test]
    fn without_headroom_spacing_is_exactly_window_over_n() {
        let window = Duration::from_secs(30);
        let clock = ManualClock::default();
        let pacer = Pacer::new(
            &budgets(window, Bucket::UsersDelete, 20),
            1.0,
            clock.clone(),
        )
        .unwrap();
        let times = drain(&pacer, &clock, Bucket::UsersDelete, 5);
        for pair in times.windows(2) {
            assert_eq!(pair[1] - pair[0], window / 20);
        }
    }

    #[test]
    fn buckets_are_independent_and_unlisted_ones_unlimited() {
        let clock = ManualClock::default();
        let pacer = Pacer::new(
            &budgets(Duration::from_secs(30), Bucket::UsersDelete, 20),
            1.0,
            clock.clone(),
        )
        .unwrap();
        assert!(pacer.try_acquire(Bucket::UsersDelete).is_ok());
        assert!(pacer.try_acquire(Bucket::UsersDelete).is_err());
        for _ in 0..1000 {
            assert!(pacer.try_acquire(Bucket::UsersGet).is_ok());
        }
    }

    #[test]
    fn a_pause_holds_the_bucket_without_spending_tokens() {
        let clock = ManualClock::default();
        let pacer = Pacer::new(
            &budgets(Duration::from_secs(30), Bucket::UsersGet, 200),
            1.0,
            clock.clone(),
        )
        .unwrap();
        pacer.pause(Bucket::UsersGet, Duration::from_secs(5));
        assert_eq!(
            pacer.try_acquire(Bucket::UsersGet),
            Err(Duration::from_secs(5))
        );
        // A shorter pause does not cut a longer one short.
        pacer.pause(Bucket::UsersGet, Duration::from_secs(1));
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            pacer.try_acquire(Bucket::UsersGet),
            Err(Duration::from_secs(3))
        );
        // Other buckets are not paused, limited or not.
        assert!(pacer.try_acquire(Bucket::UsersPost).is_ok());
        clock.advance(Duration::from_secs(3));
        assert!(pacer.try_acquire(Bucket::UsersGet).is_ok());
    }

    #[test]
    fn bad_configurations_are_refused() {
        let clock = ManualClock::default();
        let zero = budgets(Duration::from_secs(30), Bucket::GroupsList, 0);
        assert!(matches!(
            Pacer::new(&zero, 0.98, clock.clone()),
            Err(ClientError::ZeroBudget { .. })
        ));
        let ok = budgets(Duration::from_secs(30), Bucket::GroupsList, 5);
        assert!(Pacer::new(&ok, 0.0, clock.clone()).is_err());
        assert!(Pacer::new(&ok, 1.5, clock.clone()).is_err());
        let no_window = budgets(Duration::ZERO, Bucket::GroupsList, 5);
        assert!(Pacer::new(&no_window, 0.98, clock).is_err());
    }
}
