//! What can go wrong talking to the target, and how each failure is treated.

use scimsync_scim::{Bucket, ScimErrorBody};
use std::time::Duration;

/// How the executor treats a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Worth another attempt after a backoff: 429, 5xx, transport failures.
    Retryable,
    /// The SP answered and means it (400, 404, 409, 413, …): never retried blindly.
    Permanent,
    /// The target refuses the integration itself: the token (401), or access (403, Miro's
    /// "SCIM integration is disabled"). Whatever request it answered, the whole cycle stops:
    /// every later request would be refused the same way, and a refused integration is
    /// quarantined rather than retried every interval.
    Halt,
}

/// A SCIM request that did not succeed, classified from the status and the SP's error body.
/// `detail` is the SP's own text (never a header, never the token).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScimError {
    /// 401: the SP cannot authenticate the token (revoked, rotated, mistyped).
    #[error("authentication failed (401): the target refused the token{}", suffix(.detail))]
    Unauthorized { detail: Option<String> },
    /// 403: the token is valid but not allowed (Miro: "SCIM integration is disabled").
    #[error("forbidden (403){}", suffix(.detail))]
    Forbidden { detail: Option<String> },
    /// 404: no such resource, or one the SP hides (Miro guests and external users).
    #[error("not found (404){}", suffix(.detail))]
    NotFound { detail: Option<String> },
    /// 409 for a business rule: domain not allowed, licence limit, last admin, multi-org user.
    #[error("conflict (409){}", suffix(.detail))]
    Conflict { detail: Option<String> },
    /// The userName is taken: Miro's 400 "not unique", RFC 7644's 409 `uniqueness`, or a 409
    /// "already exists".
    #[error("userName not unique ({status}){}", suffix(.detail))]
    NotUnique { status: u16, detail: Option<String> },
    /// 400 for anything else: an invalid attribute or value, a refused email change.
    #[error("bad request (400){}{}", scim_type.as_deref().map(|t| format!(" [{t}]")).unwrap_or_default(), suffix(.detail))]
    BadRequest {
        detail: Option<String>,
        scim_type: Option<String>,
    },
    /// 412: the resource changed since the version sent in `If-Match` (ETags).
    #[error("precondition failed (412): the target user changed since it was read{}", suffix(.detail))]
    PreconditionFailed { detail: Option<String> },
    /// 413: body over the SP's limit (Miro: 800 000 bytes, or 8000 group members).
    #[error("request too large (413){}", suffix(.detail))]
    TooLarge { detail: Option<String> },
    /// 429: the SP's rate limiter refused the request; `retry_after` when it said how long.
    #[error("rate limited (429){}", .retry_after.map(|d| format!("; retry after {}", crate::seconds(d))).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx: the SP failed.
    #[error("server error ({status}){}", suffix(.detail))]
    Server { status: u16, detail: Option<String> },
    /// No response after the request may have reached the target: a reset, a timeout, a body
    /// cut short. A write's outcome is unknown.
    #[error("transport error: {message}")]
    Transport { message: String },
    /// The connection could not be made: nothing reached the target.
    #[error("cannot connect: {message}")]
    Connect { message: String },
    /// Any other status, including redirects (which are never followed).
    #[error("unexpected status {status}{}", suffix(.detail))]
    UnexpectedStatus { status: u16, detail: Option<String> },
    /// A success response whose body the client could not read.
    #[error("cannot read the target's response: {message}")]
    Decode { message: String },
    /// A 2xx without the content the profile promises for it (an HTML page, JSON of the wrong
    /// shape, a truncated body, another resource's id): not a success, and a write's outcome is
    /// unknown.
    #[error("the target answered {status} {what}: not a confirmed success")]
    Unconfirmed { status: u16, what: String },
    /// The answer is larger than the cap on response bodies (`[target] max_response_bytes`):
    /// it was not read, so a write's outcome is unknown.
    #[error(
        "the target's answer ({status}) exceeds the cap of {limit} bytes on a response (`[target] max_response_bytes`); it was not read"
    )]
    ResponseTooLarge { status: u16, limit: usize },
    /// The answers being read at once together passed the client's budget for them (twice
    /// `max_response_bytes`): this one was not read, and a write's outcome is unknown.
    #[error(
        "the target's answers being read at once together exceed {limit} bytes (twice `[target] max_response_bytes`); this one ({status}) was not read"
    )]
    ResponsesTooLarge { status: u16, limit: usize },
    /// Not sent: an earlier request of the run was refused with 401 or 403, so the run
    /// stopped.
    #[error("not sent: the run stopped after the target refused access (401/403)")]
    Halted,
}

fn suffix(detail: &Option<String>) -> String {
    detail
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

impl ScimError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ScimError::Unauthorized { .. } | ScimError::Forbidden { .. } | ScimError::Halted => {
                ErrorClass::Halt
            }
            ScimError::RateLimited { .. }
            | ScimError::Server { .. }
            | ScimError::Transport { .. }
            | ScimError::Connect { .. }
            | ScimError::Unconfirmed { .. }
            | ScimError::ResponseTooLarge { .. }
            | ScimError::ResponsesTooLarge { .. } => ErrorClass::Retryable,
            ScimError::NotFound { .. }
            | ScimError::Conflict { .. }
            | ScimError::NotUnique { .. }
            | ScimError::BadRequest { .. }
            | ScimError::TooLarge { .. }
            | ScimError::PreconditionFailed { .. }
            | ScimError::UnexpectedStatus { .. }
            | ScimError::Decode { .. } => ErrorClass::Permanent,
        }
    }

    /// Whether the target refused the integration itself (401 or 403): a reason to stop the
    /// cycle at once and quarantine it.
    pub fn refuses_access(&self) -> bool {
        matches!(
            self,
            ScimError::Unauthorized { .. } | ScimError::Forbidden { .. }
        )
    }

    /// The HTTP status behind the error; `None` when no response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            ScimError::Unauthorized { .. } => Some(401),
            ScimError::Forbidden { .. } => Some(403),
            ScimError::NotFound { .. } => Some(404),
            ScimError::Conflict { .. } => Some(409),
            ScimError::BadRequest { .. } => Some(400),
            ScimError::TooLarge { .. } => Some(413),
            ScimError::PreconditionFailed { .. } => Some(412),
            ScimError::RateLimited { .. } => Some(429),
            ScimError::NotUnique { status, .. }
            | ScimError::Server { status, .. }
            | ScimError::UnexpectedStatus { status, .. }
            | ScimError::Unconfirmed { status, .. }
            | ScimError::ResponseTooLarge { status, .. }
            | ScimError::ResponsesTooLarge { status, .. } => Some(*status),
            ScimError::Transport { .. }
            | ScimError::Connect { .. }
            | ScimError::Decode { .. }
            | ScimError::Halted => None,
        }
    }

    /// Whether a write that failed this way may still have been applied by the target: no
    /// answer after sending (reset, timeout), a 5xx (a gateway's 502/504 says nothing of the
    /// backend), or a 2xx that does not confirm anything. A refusal (4xx, 429) or a connection
    /// never made leaves the target as it was.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            ScimError::Transport { .. }
                | ScimError::Server { .. }
                | ScimError::Unconfirmed { .. }
                | ScimError::ResponseTooLarge { .. }
                | ScimError::ResponsesTooLarge { .. }
        )
    }

    /// The SP's own words, for events.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ScimError::Unauthorized { detail }
            | ScimError::Forbidden { detail }
            | ScimError::NotFound { detail }
            | ScimError::Conflict { detail }
            | ScimError::NotUnique { detail, .. }
            | ScimError::BadRequest { detail, .. }
            | ScimError::TooLarge { detail }
            | ScimError::PreconditionFailed { detail }
            | ScimError::Server { detail, .. }
            | ScimError::UnexpectedStatus { detail, .. } => detail.as_deref(),
            ScimError::RateLimited { .. }
            | ScimError::Transport { .. }
            | ScimError::Connect { .. }
            | ScimError::Decode { .. }
            | ScimError::Unconfirmed { .. }
            | ScimError::ResponseTooLarge { .. }
            | ScimError::ResponsesTooLarge { .. }
            | ScimError::Halted => None,
        }
    }

    /// Classifies a non-2xx response.
    pub fn from_response(
        status: u16,
        body: &ScimErrorBody,
        retry_after: Option<Duration>,
    ) -> ScimError {
        let detail = body.detail.clone();
        let uniqueness = body
            .scim_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("uniqueness"))
            || detail.as_deref().is_some_and(|d| {
                let d = d.to_ascii_lowercase();
                d.contains("not unique") || d.contains("already exists")
            });
        match status {
            400 | 409 if uniqueness => ScimError::NotUnique { status, detail },
            400 => ScimError::BadRequest {
                detail,
                scim_type: body.scim_type.clone(),
            },
            401 => ScimError::Unauthorized { detail },
            403 => ScimError::Forbidden { detail },
            404 => ScimError::NotFound { detail },
            409 => ScimError::Conflict { detail },
            412 => ScimError::PreconditionFailed { detail },
            413 => ScimError::TooLarge { detail },
            429 => ScimError::RateLimited { retry_after },
            500..=599 => ScimError::Server { status, detail },
            _ => ScimError::UnexpectedStatus { status, detail },
        }
    }
}

/// Most characters of the target's text kept in an error, event or log line: enough for any
/// real SCIM `detail`, and a bound on what a hostile or broken SP can make us store.
pub const MAX_UNTRUSTED_CHARS: usize = 500;

const REDACTED: &str = "[redacted]";

/// The target's own text (an error `detail` or `scimType`, a header) made safe to log, store
/// and print: the token and any `Bearer …` or `Authorization …` value it echoes are replaced,
/// control characters become spaces, and the length is capped at [`MAX_UNTRUSTED_CHARS`]
/// characters. Everything the SP says passes through here before it reaches an error.
pub fn untrusted(text: &str, token: &str) -> String {
    let mut out = if token.len() >= 4 {
        text.replace(token, REDACTED)
    } else {
        text.to_owned()
    };
    for marker in ["bearer", "authorization"] {
        out = redact_after(&out, marker);
    }
    let mut clean: String = out
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_UNTRUSTED_CHARS + 1)
        .collect();
    if clean.chars().count() > MAX_UNTRUSTED_CHARS {
        clean = clean.chars().take(MAX_UNTRUSTED_CHARS).collect();
        clean.push('…');
    }
    clean
}

/// Every `marker` (any case) followed by separators (`:`, `=`, quotes, spaces) and a value: the
/// value up to the next space, quote, comma or brace becomes `[redacted]`. `Authorization:
/// Bearer x` loses both words after the marker. To keep prose readable, `authorization` counts
/// only as a header or a key (a `:` or `=` follows), and `bearer` only before a value as long
/// as a credential (8 characters or more): "the bearer token is invalid" stays.
fn redact_after(text: &str, marker: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(marker) {
        let start = at + found + marker.len();
        out.push_str(&text[at..start]);
        let rest = &text[start..];
        let sep = rest
            .find(|c: char| !matches!(c, ':' | '=' | '"' | '\'' | ' ' | '\\'))
            .unwrap_or(rest.len());
        out.push_str(&rest[..sep]);
        let value = &rest[sep..];
        let mut end = value
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | '\\'))
            .unwrap_or(value.len());
        let keyed = rest[..sep].contains([':', '=']);
        let credential = value[..end].chars().count() >= 8
            || value[..end].eq_ignore_ascii_case("bearer")
            || value[..end].eq_ignore_ascii_case("basic");
        if (marker == "authorization" && !keyed) || (marker == "bearer" && !credential && !keyed) {
            at = start + sep;
            continue;
        }
        // `Authorization: Bearer x`: the scheme and the credential go together.
        if value[..end].eq_ignore_ascii_case("bearer") || value[..end].eq_ignore_ascii_case("basic")
        {
            let tail = &value[end..];
            let gap = tail.len() - tail.trim_start_matches(' ').len();
            let more = tail[gap..]
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | '\\'))
                .unwrap_or(tail.len() - gap);
            end += gap + more;
        }
        if end > 0 && !value[..end].eq_ignore_ascii_case(REDACTED) {
            out.push_str(REDACTED);
        } else {
            out.push_str(&value[..end]);
        }
        at = start + sep + end;
    }
    out.push_str(&text[at..]);
    out
}

/// The client cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `base_url` is not an absolute http(s) URL.
    #[error("invalid target URL {url:?}: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    /// The token holds characters an HTTP header cannot carry (the token itself is not shown).
    #[error(
        "the token cannot be sent in an Authorization header (control characters or non-ASCII?)"
    )]
    InvalidToken,
    /// A bucket's budget is zero: no request could ever be sent.
    #[error("the rate budget of {bucket} is 0 requests per window")]
    ZeroBudget { bucket: Bucket },
    /// The window is zero, or the headroom is outside (0, 1].
    #[error("invalid pacing: {reason}")]
    InvalidPacing { reason: String },
    /// reqwest could not build its client (TLS backend initialisation).
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_scim::parse_error_body;

    fn classify(status: u16, body: &str) -> ScimError {
        ScimError::from_response(status, &parse_error_body(body.as_bytes()), None)
    }

    #[test]
    fn miro_not_unique_is_a_400() {
        let e = classify(
            400,
            r#"{"status":"400","scimType":"invalidValue","detail":"User name 'x@y.com' is invalid: 'not unique'"}"#,
        );
        assert!(
            matches!(e, ScimError::NotUnique { status: 400, .. }),
            "{e:?}"
        );
        assert_eq!(e.class(), ErrorClass::Permanent);
    }

    #[test]
    fn rfc_uniqueness_and_already_exists_are_409s() {
        assert!(matches!(
            classify(409, r#"{"status":"409","scimType":"uniqueness"}"#),
            ScimError::NotUnique { status: 409, .. }
        ));
        assert!(matches!(
            classify(409, r#"{"detail":"User already exists"}"#),
            ScimError::NotUnique { .. }
        ));
        let other = classify(409, r#"{"detail":"x@y.com is not whitelisted"}"#);
        assert!(matches!(other, ScimError::Conflict { .. }));
        assert_eq!(other.detail(), Some("x@y.com is not whitelisted"));
    }

    #[test]
    fn classes() {
        assert_eq!(classify(401, "").class(), ErrorClass::Halt);
        // Miro's "SCIM integration is disabled": no later request of the cycle can succeed.
        let forbidden = classify(403, r#"{"detail":"SCIM integration is disabled"}"#);
        assert_eq!(forbidden.class(), ErrorClass::Halt);
        assert!(forbidden.refuses_access());
        assert_eq!(forbidden.status(), Some(403));
        assert_eq!(classify(429, "").class(), ErrorClass::Retryable);
        assert_eq!(classify(503, "").class(), ErrorClass::Retryable);
        assert_eq!(
            ScimError::Transport {
                message: "reset".into()
            }
            .class(),
            ErrorClass::Retryable
        );
        for s in [400, 404, 405, 409, 413, 415, 302] {
            let e = classify(s, "");
            assert_eq!(e.class(), ErrorClass::Permanent, "{s}");
            assert_eq!(e.status(), Some(s));
        }
    }

    #[test]
    fn the_targets_text_never_carries_a_token() {
        let token = "s3cr3t-T0ken_value";
        let echoed = [
            format!("invalid request; Authorization: Bearer {token}"),
            format!(r#"{{"headers":{{"authorization":"Bearer {token}"}}}}"#),
            format!("token {token} was refused"),
            format!("bearer={token}"),
            "Authorization: Basic dXNlcjpwYXNz".to_owned(),
            "Authorization: Bearer other-token-we-never-had".to_owned(),
        ];
        for text in &echoed {
            let safe = untrusted(text, token);
            assert!(!safe.contains(token), "{safe}");
            assert!(!safe.contains("dXNlcjpwYXNz"), "{safe}");
            assert!(!safe.contains("other-token"), "{safe}");
            assert!(safe.contains("[redacted]"), "{safe}");
        }
        // Plain text is kept as it is, control characters excepted; long text is capped.
        assert_eq!(
            untrusted("userName 'x' is taken\n\u{1b}[31m", token),
            "userName 'x' is taken  [31m"
        );
        let long = "x".repeat(10_000);
        assert_eq!(
            untrusted(&long, token).chars().count(),
            MAX_UNTRUSTED_CHARS + 1
        );
        // A marker with nothing after it, or already redacted, or in prose, stays as it is.
        assert_eq!(untrusted("no bearer", token), "no bearer");
        for prose in [
            "the bearer token is not valid",
            "authorization failed for this request",
        ] {
            assert_eq!(untrusted(prose, token), prose);
        }
        assert_eq!(untrusted("Bearer [redacted]", token), "Bearer [redacted]");
    }

    #[test]
    fn unauthorized_message_mentions_authentication() {
        let e = classify(
            401,
            r#"{"detail":"Miro cannot authorize the organization"}"#,
        );
        assert!(e.to_string().contains("authentication"));
        assert!(e.to_string().contains("cannot authorize"));
    }
}
