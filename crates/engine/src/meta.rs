//! Keys of the store's meta table that the engine uses.

pub const LAST_FULL_AT: &str = "last_full_at";
pub const INTEGRATION: &str = "integration";
pub const CONFIG_HASH: &str = "config_hash";
pub const TOKEN_SALT: &str = "token_salt";
pub const TOKEN_FINGERPRINT: &str = "token_fingerprint";
/// The group model the last cycle ran under (`team` | `user_group`): what a sync.toml without
/// `[target] group_model` keeps.
pub const GROUP_MODEL: &str = "group_model";

/// When a managed user was deactivated (for `policy.delete_after`).
pub fn deactivated_key(source_id: &scimsync_model::SourceId) -> String {
    format!("deactivated_at:{source_id}")
}

/// Marks a userName the target refused as a guest's (404 on create), with the time.
pub fn guest_key(user_name: &str) -> String {
    format!("target_guest:{}", user_name.to_lowercase())
}

/// Marks a synced directory group for which no Miro team exists (`group_model = "team"` cannot
/// create one). Incremental cycles leave it out instead of listing the target's groups again;
/// full cycles look for the team anew.
pub fn missing_team_key(source_id: &scimsync_model::SourceId) -> String {
    format!("missing_team:{source_id}")
}

/// Marks a suspended directory user the target did not hold (planned as a skip): incremental
/// cycles do not look it up again while it stays suspended; full cycles do (`lookups.rs`).
pub fn absent_inactive_key(user_name: &str) -> String {
    format!("absent_inactive:{}", user_name.to_lowercase())
}
