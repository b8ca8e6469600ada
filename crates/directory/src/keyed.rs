//! A snapshot whose user records are keyed by their bytes, so mapping can skip the ones an
//! incremental cycle already proved equal to what their links say was pushed (see
//! `scimsync_model::RecordStamp`). Only the JSON reader keys records (`scan_json`).

use scimsync_model::{Link, LinkHandle, RecordKey, RecordStamp, Snapshot};

/// A snapshot read with its user records keyed: `records` is aligned with `snapshot.users`.
#[derive(Debug, Default)]
pub struct Keyed {
    /// A user whose record is known has its id and no attributes: its record was not parsed.
    pub snapshot: Snapshot,
    pub records: Vec<UserRecord>,
}

/// What the reader knows of one user record besides its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub key: RecordKey,
    /// Set when the record's key is the one its link was stamped with (and the admin flag
    /// still holds): the user maps to exactly what the link says was pushed.
    pub known: Option<KnownUser>,
}

/// A user whose record was recognised, as its link describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownUser {
    pub user_name: String,
    pub active: bool,
    /// The link its stamp was found on: mapping claims the user with it.
    pub claim: LinkHandle,
}

/// What the caller's index of stamped links answers for a record key.
#[derive(Clone, Copy, Debug)]
pub struct StampedUser<'a> {
    pub source_id: &'a str,
    pub user_name: &'a str,
    pub active: bool,
    /// Whether the user was an admin when stamped: a record is known only if it still is
    /// (or still is not).
    pub admin: bool,
    /// The link, as the caller's index names it (`PushedLinks`): the recognised user's claim.
    pub link: LinkHandle,
}

impl<'a> StampedUser<'a> {
    /// The user a link (named `handle` by the caller's index) describes, with the stamp it
    /// holds.
    pub fn of(handle: LinkHandle, link: &'a Link, stamp: RecordStamp) -> Self {
        StampedUser {
            source_id: link.source_id.as_str(),
            user_name: &link.user_name,
            active: link.active,
            admin: stamp.admin,
            link: handle,
        }
    }
}
