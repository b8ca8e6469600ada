//! What a link remembers of the directory record it was last proved equal to, so an incremental
//! cycle can recognise an unchanged record by its bytes and skip parsing and mapping it.
//!
//! The key is a digest of the record's bytes exactly as the snapshot holds them, under a context
//! that names everything else mapping reads from the record: the reader's and mapper's version
//! and the compiled mapping and scoping filters. Two records with the same key therefore map to
//! the same user, except for what depends on other records: admin-group membership (kept beside
//! the key, in the stamp) and scope-group membership (decided per cycle from the groups, not
//! from the record). A reference to another user makes a record depend on that user's link,
//! so such records are never stamped.

use sha2::{Digest, Sha256};

/// A digest of one record's bytes under a mapping context (see [`RecordContext`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(pub [u8; 16]);

/// Everything besides a record's bytes that mapping it depends on and that does not change
/// from record to record, as a digest: keys computed under different contexts never match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordContext([u8; 32]);

impl RecordContext {
    /// A context from a stable description of the mapping (its compiled form, the scoping
    /// filters, the reader's version): any difference in `description` gives another context.
    pub fn new(description: impl AsRef<[u8]>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"scimsync record context\0");
        hasher.update(description.as_ref());
        RecordContext(hasher.finalize().into())
    }

    /// The key of a record whose bytes are `record`.
    pub fn key(&self, record: &[u8]) -> RecordKey {
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(record);
        let digest: [u8; 32] = hasher.finalize().into();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        RecordKey(key)
    }
}

/// What a link stores of the record it was last proved equal to: its key, and whether the
/// user was in an admin group then (the role is mapped from the groups, not from the record).
/// Written only when the record, mapped, had exactly the link's fingerprint, userName and
/// active flag; any write of the link itself forgets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordStamp {
    pub key: RecordKey,
    pub admin: bool,
}

impl RecordStamp {
    /// How a stamp is stored: the key's 16 bytes, then 1 for an admin or 0.
    pub fn to_bytes(self) -> [u8; 17] {
        let mut bytes = [0; 17];
        bytes[..16].copy_from_slice(&self.key.0);
        bytes[16] = u8::from(self.admin);
        bytes
    }

    /// The stamp `to_bytes` stored, or `None` for anything else (a stamp is only a hint: a
    /// malformed one costs a parse, never a wrong answer).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (key, admin) = match bytes {
            [key @ .., admin] if key.len() == 16 && *admin <= 1 => (key, *admin == 1),
            _ => return None,
        };
        let mut out = [0; 16];
        out.copy_from_slice(key);
        Some(RecordStamp {
            key: RecordKey(out),
            admin,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_differ_by_bytes_and_by_context() {
        let a = RecordContext::new("mapping a");
        let b = RecordContext::new("mapping b");
        assert_eq!(a.key(b"{\"id\":\"1\"}"), a.key(b"{\"id\":\"1\"}"));
        assert_ne!(a.key(b"{\"id\":\"1\"}"), a.key(b"{\"id\": \"1\"}"));
        assert_ne!(a.key(b"{\"id\":\"1\"}"), b.key(b"{\"id\":\"1\"}"));
    }

    #[test]
    fn a_stamp_round_trips_and_nothing_else_decodes() {
        let key = RecordContext::new("m").key(b"{}");
        for admin in [false, true] {
            let stamp = RecordStamp { key, admin };
            assert_eq!(RecordStamp::from_bytes(&stamp.to_bytes()), Some(stamp));
        }
        let mut bad = RecordStamp { key, admin: true }.to_bytes();
        bad[16] = 2;
        assert_eq!(RecordStamp::from_bytes(&bad), None);
        assert_eq!(RecordStamp::from_bytes(&bad[..16]), None);
        assert_eq!(RecordStamp::from_bytes(&[]), None);
    }
}
