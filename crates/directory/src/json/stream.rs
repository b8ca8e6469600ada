//! The streaming parser: slower than the fast path, but the judge of every error (line and
//! column of the whole file, the record and field at fault), and the reader of anything the
//! fast path does not take (a pipe, a file it gives up on). Also a snapshot held in memory.

use super::found::Found;
use super::records::DocSeed;
use crate::SourceError;
use crate::integrity::{self, Problem};
use crate::utf8::Utf8Reader;
use scimsync_model::Snapshot;
use serde::de::DeserializeSeed;
use std::fs::File;
use std::io::{BufReader, Seek};

/// A byte order mark, which Windows tools write: skipped.
pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a whole file with the streaming parser.
pub(super) fn stream_read(file: File, origin: String) -> Result<Snapshot, SourceError> {
    // The UTF-8 check sits under the buffer so it sees large chunks, not serde_json's byte reads.
    let mut reader = BufReader::with_capacity(1 << 18, Utf8Reader::new(file));
    let mut de = serde_json::Deserializer::from_reader(&mut reader);
    let mut found = None;
    let parsed = parse(&mut de, &mut found);
    match parsed {
        Ok(snapshot) => finish(snapshot, origin),
        Err(err) => {
            if let Some(bad) = reader.get_ref().bad() {
                let mut file = reader.into_inner().into_inner();
                let (line, column) = file
                    .rewind()
                    .and_then(|()| crate::utf8::line_and_column(&mut file, bad.offset))
                    .map_err(|source| SourceError::Io {
                        origin: origin.clone(),
                        source,
                    })?;
                return Err(SourceError::InvalidUtf8 {
                    origin,
                    line,
                    column,
                    offset: bad.offset,
                    at_end: bad.at_end,
                });
            }
            Err(convert(err, origin, found))
        }
    }
}
/// Parses a JSON snapshot held in memory; `origin` names it in errors.
pub fn parse_json(bytes: &[u8], origin: &str) -> Result<Snapshot, SourceError> {
    let origin = origin.to_owned();
    let (bytes, skipped) = match bytes.strip_prefix(BOM) {
        Some(rest) => (rest, BOM.len()),
        None => (bytes, 0),
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        // Counted in the bytes after the BOM, as an editor shows them.
        let (line, column) =
            crate::utf8::line_and_column(bytes, e.valid_up_to() as u64).unwrap_or((0, 0));
        SourceError::InvalidUtf8 {
            origin: origin.clone(),
            line,
            column,
            offset: (skipped + e.valid_up_to()) as u64,
            at_end: e.error_len().is_none(),
        }
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let mut found = None;
    match parse(&mut de, &mut found) {
        Ok(snapshot) => finish(snapshot, origin),
        Err(err) => Err(convert(err, origin, found)),
    }
}

fn parse<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    found: &mut Option<Found>,
) -> Result<Snapshot, serde_json::Error> {
    let snapshot = DocSeed { found }.deserialize(&mut *de)?;
    de.end()?;
    Ok(snapshot)
}

/// The integrity checks every read ends with (`crate::integrity`), as errors naming records.
pub(super) fn finish(snapshot: Snapshot, origin: String) -> Result<Snapshot, SourceError> {
    match integrity::check(&snapshot) {
        Ok(()) => Ok(snapshot),
        Err(Problem::DuplicateUserId { first, second }) => Err(SourceError::DuplicateUserId {
            id: snapshot.users[second].id.0.clone(),
            origin,
            first: format!("users[{first}]"),
            second: format!("users[{second}]"),
        }),
        Err(Problem::DuplicateGroupId { first, second }) => Err(SourceError::DuplicateGroupId {
            id: snapshot.groups[second].id.0.clone(),
            origin,
            first: format!("groups[{first}]"),
            second: format!("groups[{second}]"),
        }),
        Err(Problem::UnknownMember { group, member }) => {
            let g = &snapshot.groups[group];
            Err(SourceError::UnknownMember {
                origin,
                group: g.id.0.clone(),
                name: g.name.clone(),
                member: g.members[member].0.clone(),
                at: format!("groups[{group}].members[{member}]"),
            })
        }
    }
}

fn convert(err: serde_json::Error, origin: String, found: Option<Found>) -> SourceError {
    let (line, column) = (err.line(), err.column());
    if let Some(found) = found {
        return SourceError::BadRecord {
            origin,
            record: format!("{} (near line {line}, column {column})", found.record),
            field: found.field,
            message: found.message,
        };
    }
    match err.classify() {
        serde_json::error::Category::Io => SourceError::Io {
            origin,
            source: err.into(),
        },
        serde_json::error::Category::Eof => SourceError::Truncated {
            origin,
            line,
            column,
        },
        serde_json::error::Category::Syntax | serde_json::error::Category::Data => {
            let full = err.to_string();
            let suffix = format!(" at line {line} column {column}");
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            SourceError::MalformedJson {
                origin,
                line,
                column,
                message,
            }
        }
    }
}
