//! Pushes a plan to a SCIM service provider: the HTTP client (`ScimClient`), per-bucket rate
//! budgets, retries with jitter, error classes, and `Executor::execute`, which runs a plan phase
//! by phase and reports every attempt through the `Recorder`.
//!
//! Architecture Invariant: the only crate that knows HTTP. It knows no SQL: every link, journal
//! entry and event leaves through `Recorder`.
//! Architecture Invariant: every attempt, retries included, takes a slot of its bucket before it
//! is sent and holds it until a window after its answer, so no window-long interval (at the
//! client or, wherever between the send and the answer the SP counts it, at the SP) holds more
//! than the bucket's budget.
//! Architecture Invariant: a 2xx counts as a success only with the content the profile promises
//! for it (`client::Expect`); a write with no answer, or an answer that confirms nothing, is
//! reported to the `Recorder` as uncertain, and every request that reached the target belongs
//! to an event.
//! Architecture Invariant: a response body is read against a cap (`max_response_bytes`), never
//! whole into memory first.
//! Architecture Invariant: a create is preceded by a `userName eq` lookup (or, on a target that
//! refuses duplicate userNames, by this cycle's own read that did not find the user), and a POST
//! refused as not unique (or whose answer was lost) is resolved by lookup and adoption, never a
//! second POST for a user the target already holds.
//! Architecture Invariant: a user op's decisions (`machine.rs`, `update.rs`'s `Update`) do no
//! IO and read no clock: they take classified answers and `now` and return the next request,
//! wait or outcome; only `Executor::drive` (the shell) sends, sleeps and searches.
//! Architecture Invariant: the token lives in a `SecretString`; it is exposed only to build the
//! Authorization header (marked sensitive) and never reaches `Debug`, logs, events or errors.

mod client;
mod error;
mod execute;
mod groups;
mod machine;
mod pacing;
mod rate_headers;
mod rest;
mod retry;
mod teams;
mod update;

pub use client::{
    BucketReport, CheckReport, ClientConfig, DEFAULT_MAX_RESPONSE_BYTES, ReadProgress, ScimClient,
    Tuning, url_error,
};
pub use error::{ClientError, ErrorClass, MAX_UNTRUSTED_CHARS, ScimError, untrusted};
pub use execute::{ExecContext, ExecutionReport, Executor, OpOutcome, Recorder, planned_request};
pub use pacing::DEFAULT_MARGIN_DIVISOR;
pub use rate_headers::MAX_SERVER_WAIT;
pub use rest::{MIRO_REST_URL, RestClient, RestConfig};
pub use retry::RetryPolicy;
pub use update::Dropped;

/// Waits longer than this are announced at info level with what they wait for; shorter ones
/// only at debug, so a burst of quick retries stays quiet.
pub(crate) const LONG_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `1.5s`, `2m 30s`: a wait as people read it (milliseconds only under a second).
pub(crate) fn seconds(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let tenths = std::time::Duration::from_millis(d.as_millis() as u64 / 100 * 100);
    humantime::format_duration(tenths).to_string()
}

/// Logs a retry's back-off: at info when it is long enough to look like a hang, else debug.
pub(crate) fn announce_wait(delay: std::time::Duration, what: std::fmt::Arguments<'_>) {
    if delay > LONG_WAIT {
        tracing::info!("{what} in {}", seconds(delay));
    } else {
        tracing::debug!("{what} in {}", seconds(delay));
    }
}
