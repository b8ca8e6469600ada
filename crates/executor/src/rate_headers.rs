//! What an SP's response headers say about its rate limits: `Retry-After` in both of RFC 9110's
//! forms (seconds, or an HTTP-date), and `X-RateLimit-Remaining` / `X-RateLimit-Reset` (Miro's
//! REST API sends them; its SCIM documentation is silent, so they are used when present and
//! never expected). The draft IETF names without `X-` are read too.
//!
//! The values are the target's text, so they are untrusted: anything unparsable is ignored, and
//! no wait longer than `MAX_SERVER_WAIT` is taken from them.

use crate::pacing::SpHint;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest wait an SP's headers can impose. A `Retry-After` of a day would otherwise hold
/// the cycle (and the daemon) for that long; past this, the requests that cannot wait fail and
/// the next cycle tries again.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(600);

/// A `X-RateLimit-Reset` at least this large is a Unix time (GitHub's and Miro REST's form),
/// smaller ones are seconds from now (the IETF draft's): 10^9 s is September 2001.
const EPOCH_THRESHOLD: f64 = 1e9;

/// The rate-limit facts of one response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    /// `Retry-After`, as a wait from now.
    pub(crate) retry_after: Option<Duration>,
    /// `X-RateLimit-Reset`, as a wait from now.
    pub(crate) reset_in: Option<Duration>,
    /// `X-RateLimit-Remaining`.
    pub(crate) remaining: Option<u32>,
}

impl RateHeaders {
    /// Reads the headers of a response received at `now` (wall clock, for HTTP-dates and Unix
    /// times).
    pub(crate) fn parse(headers: &HeaderMap, now: SystemTime) -> RateHeaders {
        let text = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| headers.get(*n))
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        RateHeaders {
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, now)),
            reset_in: text(&["x-ratelimit-reset", "ratelimit-reset"]).and_then(|v| reset(v, now)),
            remaining: text(&["x-ratelimit-remaining", "ratelimit-remaining"])
                .and_then(|v| v.parse::<u64>().ok())
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }

    /// How long the SP asks for, on a 429: the later of `Retry-After` and the reset.
    pub(crate) fn wait(&self) -> Option<Duration> {
        match (self.retry_after, self.reset_in) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The SP's own count, when it sent both halves of it.
    pub(crate) fn hint(&self) -> Option<SpHint> {
        Some(SpHint {
            remaining: self.remaining?,
            reset_in: self.reset_in?,
        })
    }
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT` (RFC 9110 §10.2.3); a date
/// in the past is no wait.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_SERVER_WAIT))
}

/// `X-RateLimit-Reset`: a Unix time, or seconds from now (see `EPOCH_THRESHOLD`).
fn reset(value: &str, now: SystemTime) -> Option<Duration> {
    let n: f64 = value
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let wait = if n >= EPOCH_THRESHOLD {
        let at = UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(n).ok()?)?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    } else {
        Duration::try_from_secs_f64(n).ok()?
    };
    Some(wait.min(MAX_SERVER_WAIT))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_in_seconds_and_as_an_http_date() {
        // 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT.
        let now = at(1_445_412_480 - 90);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(90))
        );
        // The obsolete forms RFC 9110 still asks recipients to accept.
        assert_eq!(
            retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after("Wed Oct 21 07:28:00 2015", now),
            Some(Duration::from_secs(90))
        );
        // A date already past: go now.
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at(1_445_412_480 + 5)),
            Some(Duration::ZERO)
        );
        for junk in ["", "soon", "-5", "1.5", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(retry_after(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn a_server_wait_is_capped() {
        let now = at(2_000_000_000);
        assert_eq!(retry_after("86400", now), Some(MAX_SERVER_WAIT));
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(MAX_SERVER_WAIT)
        );
        assert_eq!(reset("2000086400", now), Some(MAX_SERVER_WAIT));
        assert_eq!(
            retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_SERVER_WAIT)
        );
    }

    #[test]
    fn reset_as_a_unix_time_or_seconds_from_now() {
        let now = at(1_700_000_000);
        assert_eq!(reset("1700000030", now), Some(Duration::from_secs(30)));
        assert_eq!(reset("1699999990", now), Some(Duration::ZERO));
        assert_eq!(reset("30", now), Some(Duration::from_secs(30)));
        assert_eq!(reset("2.5", now), Some(Duration::from_millis(2500)));
        for junk in ["", "-1", "NaN", "inf", "tomorrow"] {
            assert_eq!(reset(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn headers_give_the_wait_and_the_hint() {
        let now = at(1_700_000_000);
        let h = RateHeaders::parse(
            &headers(&[
                ("x-ratelimit-limit", "100"),
                ("x-ratelimit-remaining", "7"),
                ("x-ratelimit-reset", "1700000012"),
            ]),
            now,
        );
        assert_eq!(h.retry_after, None);
        assert_eq!(h.wait(), Some(Duration::from_secs(12)));
        assert_eq!(
            h.hint(),
            Some(SpHint {
                remaining: 7,
                reset_in: Duration::from_secs(12)
            })
        );
        // The later of the two on a 429; the draft names without X- read as well.
        let h = RateHeaders::parse(
            &headers(&[
                ("retry-after", "20"),
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", "5"),
            ]),
            now,
        );
        assert_eq!(h.wait(), Some(Duration::from_secs(20)));
        assert_eq!(h.hint().unwrap().remaining, 0);
        // Half a hint is no hint; nothing at all is nothing.
        let h = RateHeaders::parse(&headers(&[("x-ratelimit-remaining", "3")]), now);
        assert_eq!(h.hint(), None);
        assert_eq!(
            RateHeaders::parse(&HeaderMap::new(), now),
            RateHeaders::default()
        );
    }
}
