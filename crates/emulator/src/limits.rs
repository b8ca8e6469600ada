//! Miro's per-endpoint rate limits, enforced as a **sliding log**: a request is admitted
//! only if fewer than N requests of its bucket were admitted in the `window` before it.
//! This is the strict reading of "N per 30 s": a client that passes never sends more than
//! N in any window-long interval, wherever the interval starts. Fixed windows would let a
//! client burst 2N across a boundary and still pass.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, Method};
use tokio::time::Instant;

use crate::config::RateLimits;

/// Bodies above this size put a group PATCH in Miro's 5-per-window class.
pub const SMALL_GROUP_PATCH_BYTES: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bucket {
    UsersGet,
    UsersPost,
    UsersPutPatch,
    UsersDelete,
    GroupsList,
    GroupsGet,
    GroupsPatchSmall,
    GroupsPatchLarge,
    GroupsPostDelete,
    /// Miro's REST API, rate level 1 (every REST route the emulator serves).
    RestLevel1,
}

/// What a SCIM path addresses, for bucketing and dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Users,
    User(String),
    Groups,
    Group(String),
    Discovery,
    Unknown,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Bucket::UsersGet => "users_get",
            Bucket::UsersPost => "users_post",
            Bucket::UsersPutPatch => "users_put_patch",
            Bucket::UsersDelete => "users_delete",
            Bucket::GroupsList => "groups_list",
            Bucket::GroupsGet => "groups_get",
            Bucket::GroupsPatchSmall => "groups_patch_small",
            Bucket::GroupsPatchLarge => "groups_patch_large",
            Bucket::GroupsPostDelete => "groups_post_delete",
            Bucket::RestLevel1 => "rest_level1",
        }
    }

    pub fn budget(self, l: &RateLimits) -> u32 {
        match self {
            Bucket::UsersGet => l.users_get,
            Bucket::UsersPost => l.users_post,
            Bucket::UsersPutPatch => l.users_put_patch,
            Bucket::UsersDelete => l.users_delete,
            Bucket::GroupsList => l.groups_list,
            Bucket::GroupsGet => l.groups_get,
            Bucket::GroupsPatchSmall => l.groups_patch_small,
            Bucket::GroupsPatchLarge => l.groups_patch_large,
            Bucket::GroupsPostDelete => l.groups_post_delete,
            Bucket::RestLevel1 => l.rest_level1,
        }
    }

    /// Requests Miro does not limit (discovery, unsupported methods) have no bucket.
    pub fn classify(method: &Method, route: &Route, body_len: usize) -> Option<Bucket> {
        let m = method.as_str();
        Some(match (route, m) {
            (Route::Users | Route::User(_), "GET") => Bucket::UsersGet,
            (Route::Users, "POST") => Bucket::UsersPost,
            (Route::User(_), "PUT" | "PATCH") => Bucket::UsersPutPatch,
            (Route::User(_), "DELETE") => Bucket::UsersDelete,
            (Route::Groups, "GET") => Bucket::GroupsList,
            (Route::Group(_), "GET") => Bucket::GroupsGet,
            (Route::Group(_), "PATCH") if body_len > SMALL_GROUP_PATCH_BYTES => {
                Bucket::GroupsPatchLarge
            }
            (Route::Group(_), "PATCH") => Bucket::GroupsPatchSmall,
            (Route::Groups, "POST") | (Route::Group(_), "DELETE") => Bucket::GroupsPostDelete,
            _ => return None,
        })
    }
}

#[derive(Debug, Default)]
pub struct Limiter {
    logs: BTreeMap<Bucket, VecDeque<Instant>>,
}

impl Limiter {
    /// Admits a request at `now`, returning how many the bucket has admitted within the
    /// window ending now, or how long until a slot frees.
    pub fn admit(
        &mut self,
        bucket: Bucket,
        limits: &RateLimits,
        now: Instant,
    ) -> Result<usize, Duration> {
        let log = self.logs.entry(bucket).or_default();
        while log.front().is_some_and(|&t| t + limits.window <= now) {
            log.pop_front();
        }
        let budget = usize::try_from(bucket.budget(limits)).unwrap_or(usize::MAX);
        if log.len() >= budget {
            let wait = log.front().map_or(limits.window, |&t| {
                (t + limits.window).saturating_duration_since(now)
            });
            return Err(wait);
        }
        log.push_back(now);
        Ok(log.len())
    }

    /// How long until the bucket's oldest admitted request leaves the window (a slot frees).
    pub fn reset_in(&self, bucket: Bucket, limits: &RateLimits, now: Instant) -> Duration {
        self.logs
            .get(&bucket)
            .and_then(|log| log.front())
            .map_or(Duration::ZERO, |&t| {
                (t + limits.window).saturating_duration_since(now)
            })
    }
}

/// Whole seconds since the Unix epoch at `now + wait`, rounded up, so a client that waits for
/// it never comes back early.
fn unix_secs_after(now: SystemTime, wait: Duration) -> u64 {
    let at = (now + wait)
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    at.as_secs() + u64::from(at.subsec_nanos() > 0)
}

/// `Retry-After` for a wait of `wait`: whole seconds rounded up (at least 1), or the HTTP-date
/// of that moment.
pub fn retry_after(wait: Duration, http_date: bool, now: SystemTime) -> HeaderValue {
    if http_date {
        let at = UNIX_EPOCH + Duration::from_secs(unix_secs_after(now, wait));
        HeaderValue::from_str(&httpdate::fmt_http_date(at)).unwrap_or(HeaderValue::from_static("1"))
    } else {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        HeaderValue::from(secs.max(1))
    }
}

/// The `X-RateLimit-*` headers of Miro's REST API: the budget, what is left of it, and when
/// (a Unix time in seconds, rounded up) a slot frees.
pub fn quota_headers(limit: u32, remaining: u32, reset_in: Duration, now: SystemTime) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert(
        "x-ratelimit-reset",
        HeaderValue::from(unix_secs_after(now, reset_in)),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_log_admits_n_per_any_window() {
        let limits = RateLimits {
            groups_list: 2,
            ..RateLimits::miro_scaled(Duration::from_millis(100))
        };
        let mut l = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(l.admit(Bucket::GroupsList, &limits, t0), Ok(1));
        assert_eq!(
            l.admit(Bucket::GroupsList, &limits, t0 + Duration::from_millis(60)),
            Ok(2)
        );
        // A fixed window would reset at 100 ms; the sliding log still counts both.
        assert_eq!(
            l.admit(Bucket::GroupsList, &limits, t0 + Duration::from_millis(90)),
            Err(Duration::from_millis(10))
        );
        assert_eq!(
            l.admit(Bucket::GroupsList, &limits, t0 + Duration::from_millis(100)),
            Ok(2)
        );
        assert!(
            l.admit(Bucket::GroupsList, &limits, t0 + Duration::from_millis(150))
                .is_err()
        );
        assert_eq!(
            l.admit(Bucket::UsersGet, &limits, t0),
            Ok(1),
            "buckets are independent"
        );
    }

    #[test]
    fn waits_are_rounded_up_in_both_retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_millis(1_445_412_479_250);
        assert_eq!(retry_after(Duration::from_millis(200), false, now), "1");
        assert_eq!(retry_after(Duration::from_millis(2_100), false, now), "3");
        // 07:27:59.250 + 0.2 s is 07:27:59.45: the date says 07:28:00.
        assert_eq!(
            retry_after(Duration::from_millis(200), true, now),
            "Wed, 21 Oct 2015 07:28:00 GMT"
        );
        let h = quota_headers(200, 7, Duration::from_millis(10), now);
        assert_eq!(h["x-ratelimit-limit"], "200");
        assert_eq!(h["x-ratelimit-remaining"], "7");
        assert_eq!(h["x-ratelimit-reset"], "1445412480");
    }

    #[test]
    fn reset_is_when_the_oldest_admitted_request_leaves_the_window() {
        let limits = RateLimits::miro_scaled(Duration::from_millis(100));
        let mut l = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(l.reset_in(Bucket::UsersGet, &limits, t0), Duration::ZERO);
        assert_eq!(l.admit(Bucket::UsersGet, &limits, t0), Ok(1));
        assert_eq!(
            l.admit(Bucket::UsersGet, &limits, t0 + Duration::from_millis(30)),
            Ok(2)
        );
        assert_eq!(
            l.reset_in(Bucket::UsersGet, &limits, t0 + Duration::from_millis(40)),
            Duration::from_millis(60)
        );
    }

    #[test]
    fn group_patch_size_picks_the_bucket() {
        let r = Route::Group("1".into());
        assert_eq!(
            Bucket::classify(&Method::PATCH, &r, 500),
            Some(Bucket::GroupsPatchSmall)
        );
        assert_eq!(
            Bucket::classify(&Method::PATCH, &r, 501),
            Some(Bucket::GroupsPatchLarge)
        );
        assert_eq!(Bucket::classify(&Method::PUT, &r, 10), None);
    }
}
