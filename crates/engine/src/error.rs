//! What can stop the engine, in one place: [`EngineError`] and the errors of its parts. Each
//! variant says when it happens; its message is what an admin reads (the `scimsync` binary
//! prints the chain of sources after it). This module depends on no other of the engine's.

use scimsync_directory::{LdapSourceError, SourceError};
use scimsync_executor::ScimError;
use scimsync_store::StoreError;
use std::path::PathBuf;

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
    /// Mapping's claims of unchanged users cannot be proved against the links (a bug): the
    /// cycle stops rather than plan users whose attributes were dropped.
    #[error("proving which users are unchanged")]
    Proof(#[source] scimsync_plan::ProofError),
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

/// Why sync.toml cannot be used; each message starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the configuration {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or a key is unknown, misplaced or of the wrong type (the message is toml's,
    /// with the line).
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// A key's value breaks a rule; the message names the table, the key and the rule.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// Why a secret cannot be loaded; each message names the table and key to fix.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Neither key is set.
    #[error("{section}: set {env_key} or {file_key}")]
    NotNamed {
        section: &'static str,
        env_key: &'static str,
        file_key: &'static str,
    },
    /// The environment variable is not set, and no file is named.
    #[error("{section} {key}: the environment variable {var} is not set")]
    VarNotSet {
        section: &'static str,
        key: &'static str,
        var: String,
    },
    /// The environment variable is set, to nothing.
    #[error("{section} {key}: the environment variable {var} is empty")]
    VarEmpty {
        section: &'static str,
        key: &'static str,
        var: String,
    },
    /// The file cannot be read.
    #[error("cannot read {section} {key} {}", path.display())]
    Unreadable {
        section: &'static str,
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing but what is trimmed.
    #[error("{section} {key} {} is empty", path.display())]
    FileEmpty {
        section: &'static str,
        key: &'static str,
        path: PathBuf,
    },
}

/// Why the directory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// `[source]` as written cannot be read: a key its kind needs is missing or wrong (checked
    /// when sync.toml is loaded).
    #[error("{0}")]
    Config(String),
    /// A file snapshot cannot be read, or is not a directory as a whole; the message names
    /// the file and, where one is at fault, the line, record and field.
    #[error(transparent)]
    File(Box<SourceError>),
    /// The LDAP server cannot be reached, refuses the bind, or answers a search with an error.
    #[error("reading the LDAP directory")]
    Ldap(#[source] Box<LdapSourceError>),
    /// The LDAP bind password cannot be loaded.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The LDAP read's own async runtime cannot start.
    #[error("cannot start the LDAP reader")]
    Runtime(#[source] std::io::Error),
}

impl From<SourceError> for ReadError {
    fn from(e: SourceError) -> Self {
        // Boxed: a file error names its file, line, record and field, and a cycle's every
        // `Result` would otherwise carry its size.
        ReadError::File(Box::new(e))
    }
}

/// Why a saved plan cannot be written, read, or applied.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON of a saved plan.
    #[error("{} is not a plan saved by `scimsync plan --out`", path.display())]
    NotAPlan {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Saved by a version of scimsync whose format this one does not read.
    #[error("{}: plan format version {version} is not supported", path.display())]
    Version { path: PathBuf, version: u32 },
    /// The directory read now is not the one the plan was made from.
    #[error(
        "refusing the saved plan: the directory snapshot changed since it was made; run `scimsync plan` again"
    )]
    SnapshotChanged,
    /// The plan made now differs: the target or the store moved under it.
    #[error(
        "refusing the saved plan: the target or the store changed since it was made; run `scimsync plan` again"
    )]
    PlanChanged,
}

/// Why a cycle cannot take the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (a daemon, a `sync --now`) runs a cycle against the same state.
    #[error(
        "another scimsync cycle is running against {} (lock {}); not starting a second one",
        state.display(),
        lock.display()
    )]
    Held { state: PathBuf, lock: PathBuf },
    /// The lock file cannot be created or opened.
    #[error("cannot open the lock file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The system refuses the lock for another reason.
    #[error("cannot lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
