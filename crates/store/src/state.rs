//! What the cycles keep between runs besides links: an integration's settings (one row of
//! `integration_state`), its quarantine, and the per-user and per-group marks (`marks`), read
//! in bulk. These replace the string-keyed `meta` table of schema 8 and before. Never a secret:
//! see the crate doc.

use crate::error::SqlContext;
use crate::{SqliteStore, StoreError, now_rfc3339};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

/// One fact an integration keeps between runs, each a column of `integration_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    /// The target the integration was activated against (`miro@host`): a change is announced.
    Target,
    /// Digest of the sync.toml the last cycle ran with: a change is announced.
    ConfigHash,
    /// Salt of the token fingerprint (random, not a secret).
    TokenSalt,
    /// Salted digest of the token, so a changed token is announced; never the token.
    TokenFingerprint,
    /// The group model the last cycle ran under (`team` | `user_group`).
    GroupModel,
    /// When the last full cycle finished (RFC 3339, the store's format).
    LastFullAt,
    /// How many users the last snapshot the deletion guard accepted held.
    LastGoodUsers,
    /// JSON: attribute path → what the target said when it refused it.
    RefusedAttributes,
    /// JSON: the last run's requests that still count in the target's windows.
    RecentRequests,
}

impl Setting {
    pub const ALL: [Setting; 9] = [
        Setting::Target,
        Setting::ConfigHash,
        Setting::TokenSalt,
        Setting::TokenFingerprint,
        Setting::GroupModel,
        Setting::LastFullAt,
        Setting::LastGoodUsers,
        Setting::RefusedAttributes,
        Setting::RecentRequests,
    ];

    /// Its column (and its name in a backend that stores settings as rows).
    pub fn as_str(self) -> &'static str {
        match self {
            Setting::Target => "target",
            Setting::ConfigHash => "config_hash",
            Setting::TokenSalt => "token_salt",
            Setting::TokenFingerprint => "token_fingerprint",
            Setting::GroupModel => "group_model",
            Setting::LastFullAt => "last_full_at",
            Setting::LastGoodUsers => "last_good_users",
            Setting::RefusedAttributes => "refused_attributes",
            Setting::RecentRequests => "recent_requests",
        }
    }
}

/// A per-user or per-group fact, kept with the time it was first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mark {
    /// A managed user (by source id) seen deactivated: `policy.delete_after` runs from then.
    Deactivated,
    /// A userName the target refused as a guest's (404 on create): not created again.
    TargetGuest,
    /// A synced directory group (by source id) with no Miro team: looked for on full cycles only.
    MissingTeam,
    /// A suspended directory user (by userName) the target did not hold: looked up on full
    /// cycles only.
    AbsentInactive,
}

impl Mark {
    pub const ALL: [Mark; 4] = [
        Mark::Deactivated,
        Mark::TargetGuest,
        Mark::MissingTeam,
        Mark::AbsentInactive,
    ];

    /// The stored name (the prefix of the meta keys these were before schema 9).
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Deactivated => "deactivated_at",
            Mark::TargetGuest => "target_guest",
            Mark::MissingTeam => "missing_team",
            Mark::AbsentInactive => "absent_inactive",
        }
    }

    /// The stored key of `subject`: userNames are folded to lower case (Unicode-aware), as
    /// the target compares them; source ids are kept exact. Look up [`crate::Backend::marks`]'
    /// answer with this.
    pub fn key(self, subject: &str) -> String {
        match self {
            Mark::TargetGuest | Mark::AbsentInactive => subject.to_lowercase(),
            Mark::Deactivated | Mark::MissingTeam => subject.to_owned(),
        }
    }
}

/// A quarantine as stored: the back-off after a cycle the target refused or mostly failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineRecord {
    /// When the back-off ends (RFC 3339).
    pub until: String,
    pub reason: String,
    /// How many quarantines in a row; at least 1.
    pub level: u32,
}

impl SqliteStore {
    /// The value of `setting`, if it was ever set.
    pub(crate) fn setting(&self, setting: Setting) -> Result<Option<String>, StoreError> {
        // The column name comes from a closed enum, never from input.
        let sql = format!(
            "SELECT {} FROM integration_state WHERE integration = ?1",
            setting.as_str()
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_row([self.integration], |row| row.get::<_, Option<String>>(0))
                    .optional()
            })
            .map(Option::flatten)
            .during(&self.path, "read setting")
    }

    /// Sets `setting` (`None` clears it).
    pub(crate) fn set_setting(
        &mut self,
        setting: Setting,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let column = setting.as_str();
        let sql = format!(
            "INSERT INTO integration_state (integration, {column}) VALUES (?1, ?2) \
             ON CONFLICT (integration) DO UPDATE SET {column} = excluded.{column}"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.execute(params![self.integration, value]))
            .during(&self.path, "write setting")?;
        Ok(())
    }

    /// The current quarantine, if any (expired or not: the caller judges the time).
    pub(crate) fn quarantine(&self) -> Result<Option<QuarantineRecord>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT quarantine_until, quarantine_reason, quarantine_level \
                 FROM integration_state WHERE integration = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([self.integration], |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .optional()
            })
            .during(&self.path, "read quarantine")?;
        Ok(match row {
            Some((until, reason, level)) if level > 0 => Some(QuarantineRecord {
                until: until.unwrap_or_default(),
                reason: reason.unwrap_or_default(),
                level: u32::try_from(level).unwrap_or(u32::MAX),
            }),
            _ => None,
        })
    }

    /// Records a quarantine (`None` lifts it), its three facts in one statement.
    pub(crate) fn set_quarantine(
        &mut self,
        quarantine: Option<&QuarantineRecord>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO integration_state \
                 (integration, quarantine_until, quarantine_reason, quarantine_level) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (integration) DO UPDATE SET \
                   quarantine_until = excluded.quarantine_until, \
                   quarantine_reason = excluded.quarantine_reason, \
                   quarantine_level = excluded.quarantine_level",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    self.integration,
                    quarantine.map(|q| q.until.as_str()),
                    quarantine.map(|q| q.reason.as_str()),
                    quarantine.map_or(0, |q| i64::from(q.level)),
                ])
            })
            .during(&self.path, "write quarantine")?;
        Ok(())
    }

    /// Every mark of `kind`: its key ([`Mark::key`]) → when it was first marked. One query,
    /// whatever the number of users.
    pub(crate) fn marks(&self, kind: Mark) -> Result<HashMap<String, String>, StoreError> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, since FROM marks WHERE integration = ?1 AND kind = ?2")
            .during(path, "read marks")?;
        let rows = stmt
            .query_map(params![self.integration, kind.as_str()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .during(path, "read marks")?;
        rows.map(|row| row.during(path, "read marks")).collect()
    }

    /// Marks `subject` (a source id or a userName, see [`Mark::key`]) as of now. Marking it
    /// again keeps the first time: a grace period runs from the first sighting.
    pub(crate) fn mark(&mut self, kind: Mark, subject: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO marks (integration, kind, key, since) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (integration, kind, key) DO NOTHING",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    self.integration,
                    kind.as_str(),
                    kind.key(subject),
                    now_rfc3339()
                ])
            })
            .during(&self.path, "write mark")?;
        Ok(())
    }

    /// Drops the mark of `subject`; dropping an absent one is not an error.
    pub(crate) fn unmark(&mut self, kind: Mark, subject: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM marks WHERE integration = ?1 AND kind = ?2 AND key = ?3")
            .and_then(|mut stmt| {
                stmt.execute(params![self.integration, kind.as_str(), kind.key(subject)])
            })
            .during(&self.path, "remove mark")?;
        Ok(())
    }
}
