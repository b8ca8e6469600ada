//! A record-level problem noticed while parsing, with the record and field it names: serde's
//! error type cannot carry it, so a visitor parks it here and fails with a plain message, and
//! the streaming parser's error prefers it (`stream::convert`).

use serde::de;

/// Which record, which field, what is wrong with it.
#[derive(Debug)]
pub(super) struct Found {
    pub(super) record: String,
    pub(super) field: String,
    pub(super) message: String,
}

/// Parks the problem in `found` and returns the plain error to fail with.
pub(super) fn record_error<E: de::Error>(
    found: &mut Option<Found>,
    record: String,
    field: &str,
    message: String,
) -> E {
    let error = E::custom(format!("{record}: field `{field}`: {message}"));
    *found = Some(Found {
        record,
        field: field.to_owned(),
        message,
    });
    error
}
