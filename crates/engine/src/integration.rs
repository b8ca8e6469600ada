//! Integration lifecycle events: first cycle against a target (activate), a changed
//! configuration (update), a changed token (reauth).

use crate::config::Config;
use crate::emit::{Emitter, EventContext, EventExt};
use rand::Rng;
use scimsync_model::EventType;
use scimsync_store::{Setting, Store, StoreError};
use secrecy::SecretString;

pub fn announce(
    config: &Config,
    store: &mut Store,
    emitter: &Emitter,
    ctx: &EventContext,
    token: &SecretString,
) -> Result<(), StoreError> {
    let integration = config.integration();
    let known = store.setting(Setting::Target)?;
    if known.as_deref() != Some(integration.as_str()) {
        emitter.emit(
            store,
            ctx.event(EventType::IdmIntegrationActivate, true)
                .with_detail(serde_json::json!({"target": config.target.url, "previous": known})),
        )?;
        store.set_setting(Setting::Target, Some(&integration))?;
    }

    let previous_config = store.setting(Setting::ConfigHash)?;
    if let Some(previous) = &previous_config
        && previous != &config.text_hash
    {
        emitter.emit(store, ctx.event(EventType::IdmIntegrationUpdate, true))?;
    }
    store.set_setting(Setting::ConfigHash, Some(&config.text_hash))?;

    let salt = match store.setting(Setting::TokenSalt)? {
        Some(salt) => salt,
        None => {
            let salt: [u8; 16] = rand::rng().random();
            let salt = hex::encode(salt);
            store.set_setting(Setting::TokenSalt, Some(&salt))?;
            salt
        }
    };
    let fingerprint = crate::secret::token_fingerprint(&salt, token);
    if let Some(previous) = store.setting(Setting::TokenFingerprint)?
        && previous != fingerprint
    {
        emitter.emit(store, ctx.event(EventType::IdmIntegrationReauth, true))?;
    }
    store.set_setting(Setting::TokenFingerprint, Some(&fingerprint))?;
    Ok(())
}
