//! Integration lifecycle events: first cycle against a target (activate), a changed
//! configuration (update), a changed token (reauth).

use crate::config::Config;
use crate::emit::{Emitter, EventContext, EventExt};
use rand::Rng;
use scimsync_model::EventType;
use scimsync_store::{Store, StoreError};
use secrecy::SecretString;

pub fn announce(
    config: &Config,
    store: &mut Store,
    emitter: &Emitter,
    ctx: &EventContext,
    token: &SecretString,
) -> Result<(), StoreError> {
    use crate::meta::*;
    let integration = config.integration();
    let known = store.meta(INTEGRATION)?;
    if known.as_deref() != Some(integration.as_str()) {
        emitter.emit(
            store,
            ctx.event(EventType::IdmIntegrationActivate, true)
                .with_detail(serde_json::json!({"target": config.target.url, "previous": known})),
        )?;
        store.set_meta(INTEGRATION, &integration)?;
    }

    let previous_config = store.meta(CONFIG_HASH)?;
    if let Some(previous) = &previous_config
        && previous != &config.text_hash
    {
        emitter.emit(store, ctx.event(EventType::IdmIntegrationUpdate, true))?;
    }
    store.set_meta(CONFIG_HASH, &config.text_hash)?;

    let salt = match store.meta(TOKEN_SALT)? {
        Some(salt) => salt,
        None => {
            let salt: [u8; 16] = rand::rng().random();
            let salt = hex::encode(salt);
            store.set_meta(TOKEN_SALT, &salt)?;
            salt
        }
    };
    let fingerprint = crate::secret::token_fingerprint(&salt, token);
    if let Some(previous) = store.meta(TOKEN_FINGERPRINT)?
        && previous != fingerprint
    {
        emitter.emit(store, ctx.event(EventType::IdmIntegrationReauth, true))?;
    }
    store.set_meta(TOKEN_FINGERPRINT, &fingerprint)?;
    Ok(())
}
