//! The keyed read: the users array delimited and keyed record by record without parsing, then
//! only the records the caller does not recognise parsed (from the file, by offset).
//!
//! On an incremental cycle over a large, mostly unchanged directory, almost every record is
//! recognised, so almost nothing is parsed or mapped. The keying pass does not depend on the
//! links, so it runs while they load; `resolve` joins the two.
//!
//! Whatever the keyed read does not accept (a record that does not parse, a file that changed
//! between the two passes) sends it to the streaming parser over the whole file, as the fast
//! path does: errors are reported exactly as by `read_json`.

use super::extent::{Extent, GiveUp};
use super::file::{self, At};
use super::stream::{finish, stream_read};
use super::window::{ParseState, Stop, Window, parse_user, read_document};
use crate::SourceError;
use crate::config::RolesConfig;
use crate::keyed::{Keyed, KnownUser, StampedUser, UserRecord};
use rayon::prelude::*;
use scimsync_model::{RecordContext, RecordKey, Snapshot, SourceGroup, SourceId, SourceUser};
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

/// How much of the file one positioned read brings in while parsing the unrecognised records:
/// many small records, not one each.
const CHUNK: usize = 1 << 20;

/// One user record, delimited and keyed.
#[derive(Clone, Copy, Debug)]
struct ScannedUser {
    offset: u64,
    len: usize,
    key: RecordKey,
}

/// The record that starts `text` (at file offset `at`): delimited, not parsed. Only an object
/// is a record here; anything else is for the parser to judge.
fn scan_user(text: &str, context: &RecordContext, at: u64) -> Result<(ScannedUser, usize), Stop> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'{') {
        return Err(Stop::Bad);
    }
    match Extent::default().advance(bytes) {
        Ok(Some(len)) => Ok((
            ScannedUser {
                offset: at,
                len,
                key: context.key(&bytes[..len]),
            },
            len,
        )),
        Ok(None) => Err(Stop::Cut),
        Err(GiveUp) => Err(Stop::Bad),
    }
}

/// The document, its users array delimited and keyed record by record but not parsed.
fn scan_users(
    window: &mut Window<&File>,
    context: &RecordContext,
) -> Result<(Vec<ScannedUser>, Vec<SourceGroup>), GiveUp> {
    read_document(window, |window| {
        window.users(|text, _, at| scan_user(text, context, at))
    })
}

/// A JSON snapshot as the keyed read's first pass leaves it.
pub enum Scan {
    /// The users delimited and keyed; the groups parsed.
    Keyed(ScannedJson),
    /// Read whole instead (not a regular file, or not a file the fast path reads).
    Whole(Snapshot),
}

/// The users of a JSON snapshot, delimited and keyed, and its groups.
pub struct ScannedJson {
    file: File,
    origin: String,
    context: RecordContext,
    users: Vec<ScannedUser>,
    groups: Vec<SourceGroup>,
}

/// Reads a JSON snapshot's groups and keys its user records under `context`, without parsing
/// the users (see [`ScannedJson::resolve`]).
pub fn scan_json(path: &Path, context: &RecordContext) -> Result<Scan, SourceError> {
    let (mut file, origin, regular) = file::open(path)?;
    // The records are parsed later by positioned reads (unix only).
    if regular && cfg!(unix) {
        if let Ok((users, groups)) = scan_users(&mut Window::new(&file), context) {
            return Ok(Scan::Keyed(ScannedJson {
                file,
                origin,
                context: *context,
                users,
                groups,
            }));
        }
        file.rewind().map_err(|source| SourceError::Io {
            origin: origin.clone(),
            source,
        })?;
    }
    stream_read(file, origin).map(Scan::Whole)
}

impl ScannedJson {
    /// The directory's groups (parsed).
    pub fn groups(&self) -> &[SourceGroup] {
        &self.groups
    }

    /// The whole snapshot: each record `known` recognises by its key (and whose admin flag
    /// still holds under `roles`) as that user without attributes, the others parsed. All or
    /// nothing, like every read; the integrity checks of `read_json` apply.
    pub fn resolve<'k>(
        self,
        roles: &RolesConfig,
        known: impl Fn(&RecordKey) -> Option<StampedUser<'k>> + Sync,
    ) -> Result<Keyed, SourceError> {
        let admins = crate::desired::members_of(&self.groups, &roles.admin_groups);
        // An admin role's holder is never stamped (its roles are not in the stamp); one who
        // became a holder since is parsed too.
        let holders = crate::desired::admin_role_grants(&self.groups, &roles.admin_roles);
        // A recognised record becomes its user at once; the others are placeholders (no
        // id), filled below by parsing them.
        let (mut users, records): (Vec<SourceUser>, Vec<UserRecord>) = self
            .users
            .par_iter()
            .map(|user| {
                let known = known(&user.key).filter(|stamped| {
                    stamped.admin == admins.contains(stamped.source_id)
                        && !holders.contains_key(stamped.source_id)
                });
                let id = SourceId::new(known.map_or("", |s| s.source_id));
                let known = known.map(|stamped| KnownUser {
                    user_name: stamped.user_name.to_owned(),
                    active: stamped.active,
                    claim: stamped.link,
                });
                let source = SourceUser {
                    id,
                    attrs: Default::default(),
                };
                (
                    source,
                    UserRecord {
                        key: user.key,
                        known,
                    },
                )
            })
            .unzip();
        drop(admins);
        drop(holders);
        let ScannedJson {
            mut file,
            origin,
            context,
            users: scanned,
            groups,
        } = self;
        let unknown: Vec<usize> = (0..records.len())
            .filter(|&at| records[at].known.is_none())
            .collect();
        let (front, back) = unknown.split_at(unknown.len() / 2);
        let (front, back) = rayon::join(
            || parse_records(&file, &scanned, front, &context),
            || parse_records(&file, &scanned, back, &context),
        );
        let parsed = match (front, back) {
            (Ok(mut front), Ok(back)) => {
                front.extend(back);
                front
            }
            _ => {
                // The streaming parser reports what is wrong (or reads a file that changed
                // under the keyed read whole, consistently).
                file.rewind().map_err(|source| SourceError::Io {
                    origin: origin.clone(),
                    source,
                })?;
                let snapshot = stream_read(file, origin)?;
                return Ok(Keyed {
                    snapshot,
                    records: Vec::new(),
                });
            }
        };
        drop(scanned);
        // One parsed record per unrecognised one, in order.
        for (at, user) in unknown.into_iter().zip(parsed) {
            users[at] = user;
        }
        let snapshot = finish(Snapshot { users, groups }, origin)?;
        Ok(Keyed { snapshot, records })
    }
}

/// Parses the records at positions `picks` of `scanned` from the file, in order, reading it
/// in chunks. Gives up on anything the streaming parser should judge, and on a record whose
/// bytes no longer have the key they were scanned with (the file changed).
fn parse_records(
    file: &File,
    scanned: &[ScannedUser],
    picks: &[usize],
    context: &RecordContext,
) -> Result<Vec<SourceUser>, GiveUp> {
    let mut state = ParseState::default();
    let mut chunk = Chunk::default();
    let mut out = Vec::with_capacity(picks.len());
    for &at in picks {
        let record = scanned[at];
        let bytes = chunk.get(file, record.offset, record.len)?;
        if context.key(bytes) != record.key {
            return Err(GiveUp);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| GiveUp)?;
        let (user, used) = parse_user(text, at, record.offset, &mut state).map_err(|_| GiveUp)?;
        if used != record.len {
            return Err(GiveUp);
        }
        out.push(user);
    }
    Ok(out)
}

/// A stretch of the file read with one positioned read.
#[derive(Default)]
struct Chunk {
    offset: u64,
    bytes: Vec<u8>,
}

impl Chunk {
    /// `len` bytes of the file from `offset`, read on from there if not held already.
    fn get(&mut self, file: &File, offset: u64, len: usize) -> Result<&[u8], GiveUp> {
        let held =
            offset >= self.offset && offset + len as u64 <= self.offset + self.bytes.len() as u64;
        if !held {
            self.offset = offset;
            self.bytes.clear();
            self.bytes.resize(len.max(CHUNK), 0);
            let mut reader = At { file, pos: offset };
            let mut filled = 0;
            while filled < self.bytes.len() {
                match reader.read(&mut self.bytes[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(GiveUp),
                }
            }
            self.bytes.truncate(filled);
        }
        let from = usize::try_from(offset - self.offset).map_err(|_| GiveUp)?;
        self.bytes.get(from..from + len).ok_or(GiveUp)
    }
}
