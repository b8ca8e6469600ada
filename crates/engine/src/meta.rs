//! Keys of the store's meta table that the engine uses.

pub const LAST_FULL_AT: &str = "last_full_at";
pub const INTEGRATION: &str = "integration";
pub const CONFIG_HASH: &str = "config_hash";
pub const TOKEN_SALT: &str = "token_salt";
pub const TOKEN_FINGERPRINT: &str = "token_fingerprint";

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
