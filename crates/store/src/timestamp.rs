//! The one timestamp format of the store: RFC 3339, UTC, milliseconds, always 24 characters
//! (`2025-01-31T09:05:07.042Z`). Fixed width is what lets SQL compare `ts` columns as strings and
//! get time order, so every timestamp is written through here.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Now, in the store's format.
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// `at` in the store's format (converted to UTC, truncated to milliseconds).
pub fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    // Written by hand rather than with a format description: this cannot fail, and the width
    // is visible here.
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Any RFC 3339 timestamp (any offset, any precision) in the store's format; `None` if `s` is
/// not RFC 3339.
pub fn normalize_rfc3339(s: &str) -> Option<String> {
    OffsetDateTime::parse(s, &Rfc3339).ok().map(rfc3339)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn format_is_fixed_width_utc_with_millis() {
        let a = normalize_rfc3339("2025-01-02T03:04:05+02:00").unwrap();
        assert_eq!(a.len(), 24);
        assert!(a.ends_with('Z'));
        // The offset is folded into the hour.
        assert!(a.starts_with("2025-01-02T01:04:05"));
        assert_eq!(now_rfc3339().len(), 24);
    }

    #[test]
    fn string_order_is_time_order() {
        let earlier = normalize_rfc3339("2025-01-02T03:04:05.9Z").unwrap();
        let later = normalize_rfc3339("2025-01-02T03:04:06.01Z").unwrap();
        assert!(earlier < later);
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(normalize_rfc3339("yesterday"), None);
        assert_eq!(normalize_rfc3339(""), None);
    }
}
