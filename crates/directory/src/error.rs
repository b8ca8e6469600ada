//! Why a directory snapshot could not be read. Any of these means there is no snapshot at all.

use std::io;

/// A snapshot read failed. Readers are all or nothing: a short snapshot would look like people
/// left the company and get them deprovisioned, so every problem here is fatal to the read.
///
/// `origin` is the file (or the name the caller gave the bytes) in every variant.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened or read.
    #[error("{origin}: cannot read: {source}")]
    Io {
        origin: String,
        #[source]
        source: io::Error,
    },

    /// The bytes are not UTF-8 (JSON and CSV snapshots must be). `line` and `column` (1-based,
    /// the column in characters) locate the bad byte for an editor; `offset` counts bytes from
    /// the start of the file, so `cmp`/`xxd -s` can find it too.
    #[error("{origin}: line {line}, column {column}: invalid UTF-8 (byte offset {offset}){}", if *.at_end { "; the file ends inside a character: truncated?" } else { "" })]
    InvalidUtf8 {
        origin: String,
        line: u64,
        column: u64,
        offset: u64,
        /// The file ends in the middle of a multi-byte character.
        at_end: bool,
    },

    /// The JSON document ends before it is complete: the file is truncated (an export cut
    /// short, a disk filled up, a copy interrupted).
    #[error(
        "{origin}: line {line}, column {column}: malformed JSON: the file is truncated (the document ends before it is complete)"
    )]
    Truncated {
        origin: String,
        line: usize,
        column: usize,
    },

    /// The file is not JSON, or not JSON of the snapshot's shape.
    #[error("{origin}: line {line}, column {column}: malformed JSON: {message}")]
    MalformedJson {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// A user or group record lacks a required field, or has it empty or of the wrong type, or
    /// names an attribute twice. `record` locates it (`users[3] at line 12, column 5`,
    /// `line 4, column 1`).
    #[error("{origin}: {record}: field `{field}`: {message}")]
    BadRecord {
        origin: String,
        record: String,
        field: String,
        message: String,
    },

    /// Two user records carry the same id: which of them is the user is ambiguous.
    #[error(
        "{origin}: {first} and {second} have the same user id {id:?}: the directory identity is ambiguous"
    )]
    DuplicateUserId {
        origin: String,
        id: String,
        first: String,
        second: String,
    },

    /// Two group records carry the same id.
    #[error("{origin}: {first} and {second} have the same group id {id:?}")]
    DuplicateGroupId {
        origin: String,
        id: String,
        first: String,
        second: String,
    },

    /// A CSV group file gives one group id two different names.
    #[error("{origin}: {at}: group {id:?} is named {second:?} here but {first:?} earlier")]
    ConflictingGroupName {
        origin: String,
        id: String,
        first: String,
        second: String,
        at: String,
    },

    /// A group lists a member id that is no user of the snapshot (a user file and group file
    /// from different exports, or a nested group, which is not supported).
    #[error(
        "{origin}: {at}: group {group:?} ({name:?}) has member {member:?}, which is not a user id in the snapshot"
    )]
    UnknownMember {
        origin: String,
        group: String,
        name: String,
        member: String,
        at: String,
    },

    /// The CSV file breaks RFC 4180 or the expected layout (header row, column count).
    #[error("{origin}: {at}: {message}")]
    Csv {
        origin: String,
        at: String,
        message: String,
    },
}
