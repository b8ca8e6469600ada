//! The SCIM client a cycle talks to the target with, built from `[target]`.

use crate::EngineError;
use crate::config::Config;
use scimsync_executor::{ClientConfig, ScimClient, Tuning};
use scimsync_scim::Budgets;
use secrecy::SecretString;
use std::sync::Arc;

/// The client for `[target]`, with the profile's budgets and sync.toml's overrides. Sends
/// nothing yet.
pub fn client(config: &Config, token: SecretString) -> Result<Arc<ScimClient>, EngineError> {
    let profile = config.profile();
    let budgets: Budgets = profile.budgets.clone();
    let cfg = ClientConfig {
        base_url: config.target.url.trim_end_matches('/').to_owned(),
        profile,
        timeout: config.target.timeout,
        user_agent: format!("scimsync/{}", env!("CARGO_PKG_VERSION")),
        max_response_bytes: config.target.max_response_bytes.0,
    };
    let tuning = Tuning {
        margin: config.target.rate_limits.margin,
        ..Tuning::default()
    };
    Ok(Arc::new(
        ScimClient::with_tuning(cfg, token, budgets, tuning).map_err(EngineError::Client)?,
    ))
}
