//! `kind = "ldap"`: resolves the bind DN and password (the password through the same loader as
//! the target's token: environment or file) and reads the directory with
//! `scimsync_directory::read_ldap`.

use super::{ReadError, Source};
use crate::secret::{SecretRef, Trim};
use scimsync_directory::{LdapBind, LdapConfig};
use scimsync_model::Snapshot;
use std::path::{Path, PathBuf};

pub struct Ldap {
    config: LdapConfig,
    /// sync.toml's directory: `password_file` is relative to it.
    base: PathBuf,
}

impl Ldap {
    pub fn new(config: LdapConfig, base: &Path) -> Ldap {
        Ldap {
            config,
            base: base.to_path_buf(),
        }
    }

    fn credentials(&self) -> Result<Option<LdapBind>, ReadError> {
        let ldap = &self.config;
        let dn = match (&ldap.bind_dn, &ldap.bind_dn_env) {
            (Some(dn), _) => dn.clone(),
            // The DN is not a secret, but it may come from the environment too.
            (None, Some(var)) => std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    ReadError::Config(format!(
                        "[source.ldap] bind_dn_env: {var} is not set or empty"
                    ))
                })?,
            (None, None) => return Ok(None),
        };
        let password = SecretRef {
            section: "[source.ldap]",
            env_key: "password_env",
            env: ldap.password_env.clone(),
            file_key: "password_file",
            file: ldap.password_file.as_ref().map(|p| self.base.join(p)),
            trim: Trim::LineEnd,
        }
        .load()?;
        Ok(Some(LdapBind { dn, password }))
    }
}

impl Source for Ldap {
    /// Over the network, on a runtime of its own: the engine calls `read` on a plain thread
    /// (beside the load of the store's links), and ldap3 needs tokio.
    fn read(&self) -> Result<Snapshot, ReadError> {
        let bind = self.credentials()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ReadError::Runtime)?;
        let snapshot = runtime
            .block_on(scimsync_directory::read_ldap(&self.config, bind.as_ref()))
            .map_err(|e| ReadError::Ldap(Box::new(e)))?;
        tracing::info!(
            users = snapshot.users.len(),
            groups = snapshot.groups.len(),
            "read the LDAP directory"
        );
        Ok(snapshot)
    }
}
