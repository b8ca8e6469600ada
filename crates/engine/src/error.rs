//! What can stop the engine. Each variant says when it happens; its message is what an admin
//! reads (the `scimsync` binary prints the chain of sources after it).

use crate::config::ConfigError;
use crate::lock::LockError;
use crate::saved::SavedPlanError;
use crate::secret::SecretError;
use crate::source::ReadError;
use scimsync_executor::ScimError;
use scimsync_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// sync.toml cannot be read, or breaks a rule: before anything else happens.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A secret sync.toml names (the target's token) cannot be loaded: before the cycle starts.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The directory cannot be read: the whole snapshot is refused, since a partial read
    /// would deprovision people.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The state store failed (opening it, or a read or write outside the executor's run).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state store failed while the executor ran: the writes went on, and what they did is
    /// in the target; the next cycle reconciles.
    #[error("the state store failed during the run; the next cycle reconciles")]
    StoreDuringRun(#[source] Box<EngineError>),
    /// The store holds a value this version cannot read.
    #[error("corrupt {key} in the store: {message}")]
    Corrupt { key: &'static str, message: String },
    /// Something the engine writes to the store could not be encoded (a bug).
    #[error("cannot encode {what} for the store")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The SCIM client cannot be built from `[target]` (before any request).
    #[error("cannot build the SCIM client")]
    Client(#[source] scimsync_executor::ClientError),
    /// A read of the target before the plan (its discovery documents, the full read, a lookup,
    /// the groups) failed, or the target refused the token: `doing` says which read.
    #[error("{doing}")]
    Target {
        doing: String,
        #[source]
        source: ScimError,
    },
    /// A saved plan cannot be read, or no longer applies to the directory and target.
    #[error(transparent)]
    SavedPlan(#[from] SavedPlanError),
    /// Another cycle holds this state's lock, or the lock cannot be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The mapping cannot be compiled (checked when sync.toml is loaded: only a configuration
    /// built by hand gets here).
    #[error("[mapping] {0}")]
    Mapping(#[from] scimsync_directory::MappingError),
    /// A state the engine's own logic rules out (a bug): the message says which.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A worker thread of the cycle panicked (a bug): `what` names it.
    #[error("{what} panicked")]
    Panicked { what: &'static str },
}

impl EngineError {
    /// A read of the target that failed: `doing` is what the cycle was reading.
    pub fn target(doing: impl Into<String>) -> impl FnOnce(ScimError) -> EngineError {
        let doing = doing.into();
        move |source| EngineError::Target { doing, source }
    }

    /// The target's refusal of the integration (a 401 or 403), if that is what stopped the
    /// cycle: it quarantines the integration.
    pub fn refusal(&self) -> Option<&ScimError> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(scim) = e.downcast_ref::<ScimError>()
                && scim.refuses_access()
            {
                return Some(scim);
            }
            cause = e.source();
        }
        None
    }
}

/// An error and its sources, `: `-separated, as the run's `error` and an admin read it.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}
