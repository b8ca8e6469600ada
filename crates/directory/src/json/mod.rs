//! The JSON snapshot reader: `{"users": [...], "groups": [...]}`, streamed record by record.
//!
//! Users are deserialized straight into `SourceUser`s (no `serde_json::Value` tree of the whole
//! file), so a million-user export costs one copy of the data in memory.
//!
//! A file is read in two ways. The fast path (`Window`) cuts each record out of a bounded window
//! of the file and parses it from memory, where serde_json is several times faster than on a
//! byte stream. It never reports an error: whatever it does not accept sends the read back to the
//! start of the file through the streaming parser, which alone decides what is wrong and where
//! (line and column of the whole file, as before). A bad file is thus read twice; a good one once.
//! On a large file the fast path parses the users array on two threads (`split`), with the same
//! result as on one.

mod extent;
mod keys;
mod records;
mod scan;
mod split;
mod values;
mod window;

use crate::SourceError;
use crate::integrity::{self, Problem};
use crate::utf8::Utf8Reader;
use records::DocSeed;
use scimsync_model::Snapshot;
use serde::de::{self, DeserializeSeed};
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;
use window::{Split, Window, fast_read};

#[cfg(test)]
pub(crate) use scan::scan_json_split;
pub use scan::{Scan, ScannedJson, scan_json};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a JSON snapshot file. All or nothing: any error means no snapshot.
pub fn read_json(path: &Path) -> Result<Snapshot, SourceError> {
    read_json_split(path, split::MIN_SPLIT_BYTES)
}

/// [`read_json`], with the users array parsed on two threads from `min_split_bytes` on (tests
/// split small files).
pub(crate) fn read_json_split(path: &Path, min_split_bytes: u64) -> Result<Snapshot, SourceError> {
    let (mut file, origin, split) = open(path, min_split_bytes)?;
    if let Some(split) = split {
        if let Ok(snapshot) = fast_read(&mut Window::new(&file), split) {
            return finish(snapshot, origin);
        }
        file.rewind().map_err(|source| SourceError::Io {
            origin: origin.clone(),
            source,
        })?;
    }
    stream_read(file, origin)
}

/// Opens a snapshot file: the file, its name for messages, and how to split its users array
/// if it is a regular file. Only a regular file can be rewound for the streaming parser should
/// the fast path give up; a pipe or device goes to the streaming parser straight away.
fn open(path: &Path, min_split_bytes: u64) -> Result<(File, String, Option<Split>), SourceError> {
    let origin = path.display().to_string();
    let io = |source| SourceError::Io {
        origin: origin.clone(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    let split = metadata.is_file().then_some(Split {
        len: metadata.len(),
        min_bytes: min_split_bytes,
    });
    Ok((file, origin, split))
}

/// The streaming parser: slower, but the judge of every error.
fn stream_read(file: File, origin: String) -> Result<Snapshot, SourceError> {
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

fn finish(snapshot: Snapshot, origin: String) -> Result<Snapshot, SourceError> {
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

/// A record-level problem noticed while streaming. serde's error type cannot carry it, so the
/// visitor parks it here and fails with a plain message; `convert` prefers it.
#[derive(Debug)]
struct Found {
    record: String,
    field: String,
    message: String,
}

fn record_error<E: de::Error>(
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
