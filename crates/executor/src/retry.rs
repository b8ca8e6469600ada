//! Retry schedule: exponential backoff with jitter (backon), bounded by attempts and elapsed time.

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
    started: tokio::time::Instant,
    max_elapsed: Duration,
    rate_limited: u32,
}

/// 429s one request may ride out. A 429 costs no backoff step (see `RetryState::after`); this
/// cap only keeps a target that answers nothing but 429 from holding a request for the whole
/// `max_elapsed`.
const MAX_RATE_LIMITED: u32 = 50;

impl RetryState {
    pub(crate) fn new(policy: &RetryPolicy, seeds: &AtomicU64) -> Self {
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
            .with_total_delay(Some(policy.max_elapsed))
            .with_jitter();
        if let Some(seed) = policy.jitter_seed {
            builder =
                builder.with_jitter_seed(seed.wrapping_add(seeds.fetch_add(1, Ordering::Relaxed)));
        }
        RetryState {
            backoff: builder.build(),
            started: tokio::time::Instant::now(),
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
    pub(crate) fn after(&mut self, error: &crate::ScimError) -> Option<Duration> {
        if let crate::ScimError::RateLimited { retry_after } = error {
            self.rate_limited += 1;
            let resumes = self.started.elapsed() + retry_after.unwrap_or_default();
            return (self.rate_limited <= MAX_RATE_LIMITED && resumes <= self.max_elapsed)
                .then_some(Duration::ZERO);
        }
        self.next_delay()
    }

    /// The delay before the next attempt, or `None` when the budget of attempts or time is spent.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        let delay = self.backoff.next()?;
        (self.started.elapsed() + delay <= self.max_elapsed).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bounded_by_attempts_and_jittered_upwards() {
        let policy = RetryPolicy {
            jitter_seed: Some(7),
            ..RetryPolicy::default()
        };
        let seeds = AtomicU64::new(0);
        let mut state = RetryState::new(&policy, &seeds);
        let delays: Vec<_> = std::iter::from_fn(|| state.next_delay())
            .take(100)
            .collect();
        assert_eq!(delays.len(), policy.max_attempts as usize - 1);
        let mut base = policy.min_delay;
        for d in &delays {
            assert!(*d >= base && *d <= base * 2, "{d:?} vs base {base:?}");
            base = (base * 2).min(policy.max_delay);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_spends_no_attempt_but_stays_bounded() {
        let policy = RetryPolicy::default();
        let mut state = RetryState::new(&policy, &AtomicU64::new(0));
        let limited = crate::ScimError::RateLimited { retry_after: None };
        let server = crate::ScimError::Server {
            status: 503,
            detail: None,
        };
        // A burst of 429s far longer than max_attempts is ridden out, with no delay of its own
        // (the bucket's pause spaces the retries)...
        for _ in 0..20 {
            assert_eq!(state.after(&limited), Some(Duration::ZERO));
        }
        // ...and leaves the whole attempt budget for real failures.
        let failures = std::iter::from_fn(|| state.after(&server))
            .take(100)
            .count();
        assert_eq!(failures, policy.max_attempts as usize - 1);
        // But a target answering nothing else is not retried forever.
        let more = std::iter::from_fn(|| state.after(&limited))
            .take(1000)
            .count();
        assert_eq!(more, (MAX_RATE_LIMITED - 20) as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_asking_for_longer_than_the_time_left_is_not_retried() {
        let policy = RetryPolicy {
            max_elapsed: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        let mut state = RetryState::new(&policy, &AtomicU64::new(0));
        let wait = |secs| crate::ScimError::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(state.after(&wait(30)), Some(Duration::ZERO));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(state.after(&wait(30)), Some(Duration::ZERO));
        assert_eq!(state.after(&wait(31)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn same_seed_same_schedule() {
        let policy = RetryPolicy {
            jitter_seed: Some(42),
            ..RetryPolicy::default()
        };
        let a: Vec<_> = {
            let mut s = RetryState::new(&policy, &AtomicU64::new(0));
            std::iter::from_fn(|| s.next_delay()).take(10).collect()
        };
        let b: Vec<_> = {
            let mut s = RetryState::new(&policy, &AtomicU64::new(0));
            std::iter::from_fn(|| s.next_delay()).take(10).collect()
        };
        assert_eq!(a, b);
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_by_elapsed_time() {
        let policy = RetryPolicy {
            max_attempts: 100,
            max_elapsed: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let mut state = RetryState::new(&policy, &AtomicU64::new(0));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(state.next_delay(), None);
    }
}
