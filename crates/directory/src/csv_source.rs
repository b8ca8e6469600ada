//! The CSV snapshot reader: a users file with a header row (the JSON attribute names, `id`
//! required) and an optional groups file `group_id,group_name,member_id`, one row per
//! membership (an empty `member_id` declares a group with no members).
//!
//! An empty cell is an absent attribute, as CSV cannot tell the two apart; the JSON reader drops
//! empty strings for the same reason, so one directory reads the same from either format.

use crate::SourceError;
use crate::integrity::{self, Problem};
use scimsync_model::{AttrKey, Snapshot, SourceAttrs, SourceGroup, SourceId, SourceUser};
use std::collections::HashMap;
use std::path::Path;

/// Reads a CSV snapshot: users, and groups when a groups file is given. All or nothing.
pub fn read_csv(users: &Path, groups: Option<&Path>) -> Result<Snapshot, SourceError> {
    let users_origin = users.display().to_string();
    let (users, user_lines) = read_users(users, &users_origin)?;
    let (groups, group_lines, groups_origin) = match groups {
        Some(path) => {
            let origin = path.display().to_string();
            let (groups, lines) = read_groups(path, &origin)?;
            (groups, lines, origin)
        }
        None => (Vec::new(), Vec::new(), String::new()),
    };
    let snapshot = Snapshot { users, groups };
    match integrity::check(&snapshot) {
        Ok(()) => Ok(snapshot),
        Err(Problem::DuplicateUserId { first, second }) => Err(SourceError::DuplicateUserId {
            id: snapshot.users[second].id.0.clone(),
            origin: users_origin,
            first: format!("line {}", user_lines[first]),
            second: format!("line {}", user_lines[second]),
        }),
        // Groups with one id are merged while reading, so this cannot happen; kept total.
        Err(Problem::DuplicateGroupId { first, second }) => Err(SourceError::DuplicateGroupId {
            id: snapshot.groups[second].id.0.clone(),
            origin: groups_origin,
            first: format!("line {}", group_lines[first].first_line),
            second: format!("line {}", group_lines[second].first_line),
        }),
        Err(Problem::UnknownMember { group, member }) => {
            let g = &snapshot.groups[group];
            Err(SourceError::UnknownMember {
                origin: groups_origin,
                group: g.id.0.clone(),
                name: g.name.clone(),
                member: g.members[member].0.clone(),
                at: format!(
                    "line {}, column member_id",
                    group_lines[group].members[member]
                ),
            })
        }
    }
}

fn open(path: &Path, origin: &str) -> Result<csv::Reader<std::fs::File>, SourceError> {
    let file = std::fs::File::open(path).map_err(|source| SourceError::Io {
        origin: origin.to_owned(),
        source,
    })?;
    // Strict RFC 4180: every row has the header's width; no trimming, so values stay as written.
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(file))
}

fn convert(err: csv::Error, origin: &str, headers: Option<&csv::StringRecord>) -> SourceError {
    let origin = origin.to_owned();
    let line = err.position().map(csv::Position::line);
    let at = match line {
        Some(line) => format!("line {line}"),
        None => "header".to_owned(),
    };
    match err.into_kind() {
        csv::ErrorKind::Io(source) => SourceError::Io { origin, source },
        csv::ErrorKind::Utf8 { pos, err } => {
            let column = err.field() + 1;
            let name = headers
                .and_then(|h| h.get(err.field()))
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let record_start = pos.map(|p| p.byte()).unwrap_or(0);
            SourceError::Csv {
                origin,
                at: format!("{at}, column {column}{name}"),
                message: format!(
                    "invalid UTF-8 {} bytes into the field (record starts at byte offset {record_start})",
                    err.valid_up_to()
                ),
            }
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => SourceError::Csv {
            origin,
            at,
            message: format!(
                "the row has {len} fields but the header has {expected_len} (an unquoted comma or quote?)"
            ),
        },
        other => SourceError::Csv {
            origin,
            at,
            message: format!("{other:?}"),
        },
    }
}

fn header_index(
    headers: &csv::StringRecord,
    origin: &str,
    wanted: &str,
) -> Result<Option<usize>, SourceError> {
    let mut at = None;
    for (index, name) in headers.iter().enumerate() {
        if name.is_empty() {
            return Err(SourceError::Csv {
                origin: origin.to_owned(),
                at: format!("line 1, column {}", index + 1),
                message: "the header names no attribute".to_owned(),
            });
        }
        if headers.iter().take(index).any(|earlier| earlier == name) {
            return Err(SourceError::Csv {
                origin: origin.to_owned(),
                at: format!("line 1, column {}", index + 1),
                message: format!("the column {name:?} appears twice in the header"),
            });
        }
        if name == wanted {
            at = Some(index);
        }
    }
    Ok(at)
}

fn read_users(path: &Path, origin: &str) -> Result<(Vec<SourceUser>, Vec<u64>), SourceError> {
    let mut reader = open(path, origin)?;
    let headers = reader
        .headers()
        .map_err(|e| convert(e, origin, None))?
        .clone();
    let id_column = header_index(&headers, origin, "id")?.ok_or_else(|| SourceError::Csv {
        origin: origin.to_owned(),
        at: "line 1".to_owned(),
        message: "the header has no `id` column".to_owned(),
    })?;
    // One shared key per column, not one per cell.
    let keys: Vec<AttrKey> = headers.iter().map(AttrKey::from).collect();
    let mut users = Vec::new();
    let mut lines = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| convert(e, origin, Some(&headers)))?
    {
        let line = record.position().map(csv::Position::line).unwrap_or(0);
        let id = record.get(id_column).unwrap_or_default();
        if id.trim().is_empty() {
            return Err(SourceError::BadRecord {
                origin: origin.to_owned(),
                record: format!("line {line}, column {}", id_column + 1),
                field: "id".to_owned(),
                message: if id.is_empty() {
                    "is empty"
                } else {
                    "is blank"
                }
                .to_owned(),
            });
        }
        let attrs: SourceAttrs = keys
            .iter()
            .zip(record.iter())
            .enumerate()
            .filter(|&(column, (_, value))| column != id_column && !value.is_empty())
            .map(|(_, (name, value))| (name.clone(), value))
            .collect();
        users.push(SourceUser {
            id: SourceId::new(id),
            attrs,
        });
        lines.push(line);
    }
    Ok((users, lines))
}

/// Where each group's rows are, for error messages.
struct GroupLines {
    first_line: u64,
    members: Vec<u64>,
}

fn read_groups(
    path: &Path,
    origin: &str,
) -> Result<(Vec<SourceGroup>, Vec<GroupLines>), SourceError> {
    let mut reader = open(path, origin)?;
    let headers = reader
        .headers()
        .map_err(|e| convert(e, origin, None))?
        .clone();
    let mut columns = [0usize; 3];
    for (slot, name) in columns
        .iter_mut()
        .zip(["group_id", "group_name", "member_id"])
    {
        *slot = header_index(&headers, origin, name)?.ok_or_else(|| SourceError::Csv {
            origin: origin.to_owned(),
            at: "line 1".to_owned(),
            message: format!(
                "the header has no `{name}` column (expected group_id,group_name,member_id)"
            ),
        })?;
    }
    let [id_column, name_column, member_column] = columns;
    let mut groups: Vec<SourceGroup> = Vec::new();
    let mut lines: Vec<GroupLines> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| convert(e, origin, Some(&headers)))?
    {
        let line = record.position().map(csv::Position::line).unwrap_or(0);
        let id = record.get(id_column).unwrap_or_default();
        let name = record.get(name_column).unwrap_or_default();
        let member = record.get(member_column).unwrap_or_default();
        if id.trim().is_empty() {
            return Err(SourceError::BadRecord {
                origin: origin.to_owned(),
                record: format!("line {line}, column {}", id_column + 1),
                field: "group_id".to_owned(),
                message: if id.is_empty() {
                    "is empty"
                } else {
                    "is blank"
                }
                .to_owned(),
            });
        }
        if !member.is_empty() && member.trim().is_empty() {
            return Err(SourceError::BadRecord {
                origin: origin.to_owned(),
                record: format!("line {line}, column {}", member_column + 1),
                field: "member_id".to_owned(),
                message: "is blank".to_owned(),
            });
        }
        let index = match by_id.get(id) {
            Some(&index) => {
                if groups[index].name != name {
                    return Err(SourceError::ConflictingGroupName {
                        origin: origin.to_owned(),
                        id: id.to_owned(),
                        first: groups[index].name.clone(),
                        second: name.to_owned(),
                        at: format!("line {line}, column {}", name_column + 1),
                    });
                }
                index
            }
            None => {
                by_id.insert(id.to_owned(), groups.len());
                groups.push(SourceGroup {
                    id: SourceId::new(id),
                    name: name.to_owned(),
                    members: Vec::new(),
                    unresolved: Vec::new(),
                });
                lines.push(GroupLines {
                    first_line: line,
                    members: Vec::new(),
                });
                groups.len() - 1
            }
        };
        if !member.is_empty() {
            groups[index].members.push(SourceId::new(member));
            lines[index].members.push(line);
        }
    }
    Ok((groups, lines))
}
