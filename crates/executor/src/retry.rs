//! Retry schedule: exponential backoff with jitter (backon), bounded by attempts and elapsed time.
//! Sans-IO: the schedule reads no clock; every call takes `now` (any monotonic clock, as an
//! offset from its epoch), so the decision machine (`machine.rs`) and tests drive it with a
//! fake one.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// When and how often a retryable failure (429, 5xx, transport) is tried again.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// No new attempt starts once this much time has passed since the first.
    pub max_elapsed: Duration,
    /// Delay before the first retry; it doubles up to `max_delay`, plus up to 100 % jitter.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Seed for the jitter, so a scenario replays; `None` seeds from the OS. Each request's
    /// schedule derives its own seed from this one and a counter, so with concurrency the
    /// assignment of schedules to requests follows completion order.
    pub jitter_seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(120),
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter_seed: None,
        }
    }
}

/// One request's (or one create's) retry schedule.
pub(crate) struct RetryState {
    backoff: <ExponentialBuilder as BackoffBuilder>::Backoff,
    started: Duration,
    max_elapsed: Duration,
    rate_limited: u32,
}

/// 429s one request may ride out. A 429 costs no backoff step (see `RetryState::after`); this
/// cap only keeps a target that answers nothing but 429 from holding a request for the whole
/// `max_elapsed`.
const MAX_RATE_LIMITED: u32 = 50;

impl RetryState {
    /// A schedule whose jitter is seeded from `policy.jitter_seed` and the next of `seeds`
    /// (a counter shared by a client's requests), started at `now`.
    pub(crate) fn shared(policy: &RetryPolicy, seeds: &AtomicU64, now: Duration) -> Self {
        let seed = policy
            .jitter_seed
            .map(|seed| seed.wrapping_add(seeds.fetch_add(1, Ordering::Relaxed)));
        Self::new(policy, seed, now)
    }

    /// A schedule started at `now` (its first attempt); `seed` fixes the jitter (`None`:
    /// seeded from the OS).
    pub(crate) fn new(policy: &RetryPolicy, seed: Option<u64>, now: Duration) -> Self {
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
            .with_total_delay(Some(policy.max_elapsed))
            .with_jitter();
        if let Some(seed) = seed {
            builder = builder.with_jitter_seed(seed);
        }
        RetryState {
            backoff: builder.build(),
            started: now,
            max_elapsed: policy.max_elapsed,
            rate_limited: 0,
        }
    }

    /// The delay before retrying after `error`, or `None` when it must not be retried (any
    /// more). A 429 has already paused its bucket (Retry-After, or the rest of the window), and
    /// the next attempt waits on the bucket: it needs no delay of its own and spends no attempt,
    /// or a short 429 burst on a paged read would exhaust the attempts meant for 5xx and resets.
    /// A 429 whose `Retry-After` (or reset) reaches past `max_elapsed` is not retried: the
    /// request fails now, and the next cycle sends it, instead of holding the cycle.
    pub(crate) fn after(&mut self, now: Duration, error: &crate::ScimError) -> Option<Duration> {
        if let crate::ScimError::RateLimited { retry_after } = error {
            self.rate_limited += 1;
            let resumes = self.elapsed(now) + retry_after.unwrap_or_default();
            return (self.rate_limited <= MAX_RATE_LIMITED && resumes <= self.max_elapsed)
                .then_some(Duration::ZERO);
        }
        self.next_delay(now)
    }

    /// The delay before the next attempt, or `None` when the budget of attempts or time is spent.
    pub(crate) fn next_delay(&mut self, now: Duration) -> Option<Duration> {
        let delay = self.backoff.next()?;
        (self.elapsed(now) + delay <= self.max_elapsed).then_some(delay)
    }

    fn elapsed(&self, now: Duration) -> Duration {
        now.saturating_sub(self.started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fake clock's start: any offset works, the schedule only subtracts.
    const T0: Duration = Duration::from_secs(1000);

    #[test]
    fn bounded_by_attempts_and_jittered_upwards() {
        let policy = RetryPolicy {
            jitter_seed: Some(7),
            ..RetryPolicy::default()
        };
        let seeds = AtomicU64::new(0);
        let mut state = RetryState::shared(&policy, &seeds, T0);
        let delays: Vec<_> = std::iter::from_fn(|| state.next_delay(T0))
            .take(100)
            .collect();
        assert_eq!(delays.len(), policy.max_attempts as usize - 1);
        let mut base = policy.min_delay;
        for d in &delays {
            assert!(*d >= base && *d <= base * 2, "{d:?} vs base {base:?}");
            base = (base * 2).min(policy.max_delay);
        }
    }

    #[test]
    fn a_429_spends_no_attempt_but_stays_bounded() {
        let policy = RetryPolicy::default();
        let mut state = RetryState::shared(&policy, &AtomicU64::new(0), T0);
        let limited = crate::ScimError::RateLimited { retry_after: None };
        let server = crate::ScimError::Server {
            status: 503,
            detail: None,
        };
        // A burst of 429s far longer than max_attempts is ridden out, with no delay of its own
        // (the bucket's pause spaces the retries)...
        for _ in 0..20 {
            assert_eq!(state.after(T0, &limited), Some(Duration::ZERO));
        }
        // ...and leaves the whole attempt budget for real failures.
        let failures = std::iter::from_fn(|| state.after(T0, &server))
            .take(100)
            .count();
        assert_eq!(failures, policy.max_attempts as usize - 1);
        // But a target answering nothing else is not retried forever.
        let more = std::iter::from_fn(|| state.after(T0, &limited))
            .take(1000)
            .count();
        assert_eq!(more, (MAX_RATE_LIMITED - 20) as usize);
    }

    #[test]
    fn a_429_asking_for_longer_than_the_time_left_is_not_retried() {
        let policy = RetryPolicy {
            max_elapsed: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        let mut state = RetryState::shared(&policy, &AtomicU64::new(0), T0);
        let wait = |secs| crate::ScimError::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(state.after(T0, &wait(30)), Some(Duration::ZERO));
        let later = T0 + Duration::from_secs(30);
        assert_eq!(state.after(later, &wait(30)), Some(Duration::ZERO));
        assert_eq!(state.after(later, &wait(31)), None);
    }

    #[test]
    fn same_seed_same_schedule() {
        let policy = RetryPolicy {
            jitter_seed: Some(42),
            ..RetryPolicy::default()
        };
        let a: Vec<_> = {
            let mut s = RetryState::shared(&policy, &AtomicU64::new(0), T0);
            std::iter::from_fn(|| s.next_delay(T0)).take(10).collect()
        };
        let b: Vec<_> = {
            let mut s = RetryState::shared(&policy, &AtomicU64::new(0), T0);
            std::iter::from_fn(|| s.next_delay(T0)).take(10).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn bounded_by_elapsed_time() {
        let policy = RetryPolicy {
            max_attempts: 100,
            max_elapsed: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let mut state = RetryState::shared(&policy, &AtomicU64::new(0), T0);
        assert_eq!(state.next_delay(T0 + Duration::from_secs(10)), None);
    }
}
