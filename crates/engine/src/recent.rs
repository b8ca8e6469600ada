//! The requests of the last run that still count in the target's windows, kept in the store so
//! the next run (another `sync --now`, `plan`, or the daemon's next cycle, each a new client)
//! starts with their slots held: a burst right after a run does not add to its burst in the
//! target's count.

use crate::EngineError;
use scimsync_executor::ScimClient;
use scimsync_scim::Bucket;
use scimsync_store::{Store, StoreError};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// Meta key: `{"users_post": [answered at, in Unix milliseconds, …], …}`.
const KEY: &str = "recent_requests";

/// Tells `client` of the last run's requests. An unreadable record is ignored: it only costs
/// the first burst its certainty, never correctness of the data.
pub fn load(store: &Store, client: &ScimClient) -> Result<(), StoreError> {
    let Some(text) = store.meta(KEY)? else {
        return Ok(());
    };
    let Ok(recorded) = serde_json::from_str::<BTreeMap<String, Vec<u64>>>(&text) else {
        tracing::warn!("ignoring an unreadable {KEY} record in the store");
        return Ok(());
    };
    client.remember_requests(recorded.iter().flat_map(|(name, times)| {
        let bucket = Bucket::parse(name);
        times
            .iter()
            .filter_map(move |&ms| Some((bucket?, UNIX_EPOCH + Duration::from_millis(ms))))
    }));
    Ok(())
}

/// Records `client`'s requests that still count, for the next run.
pub fn save(store: &mut Store, client: &ScimClient) -> Result<(), EngineError> {
    let mut recorded: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (bucket, at) in client.recent_requests() {
        let ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        recorded.entry(bucket.as_str()).or_default().push(ms);
    }
    let text = serde_json::to_string(&recorded).map_err(|source| EngineError::Encode {
        what: "the recent requests",
        source,
    })?;
    store.set_meta(KEY, &text)?;
    Ok(())
}
