//! `source.kind = "ldap"`: resolves the bind DN and password (environment or file, like the
//! target's token) and reads the directory with `scimsync_directory::read_ldap`.

use crate::config::Config;
use anyhow::{Context, Result, anyhow, bail};
use scimsync_directory::{LdapBind, LdapConfig};
use scimsync_model::Snapshot;
use secrecy::SecretString;

pub async fn read(config: &Config) -> Result<Snapshot> {
    let ldap = config
        .source
        .ldap
        .as_ref()
        .ok_or_else(|| anyhow!("[source] kind = \"ldap\" needs a [source.ldap] table"))?;
    let bind = credentials(config, ldap)?;
    let snapshot = scimsync_directory::read_ldap(ldap, bind.as_ref())
        .await
        .context("reading the LDAP directory")?;
    tracing::info!(
        users = snapshot.users.len(),
        groups = snapshot.groups.len(),
        "read the LDAP directory"
    );
    Ok(snapshot)
}

fn credentials(config: &Config, ldap: &LdapConfig) -> Result<Option<LdapBind>> {
    let dn = match (&ldap.bind_dn, &ldap.bind_dn_env) {
        (Some(dn), _) => dn.clone(),
        (None, Some(var)) => std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| anyhow!("[source.ldap] bind_dn_env: {var} is not set or empty"))?,
        (None, None) => return Ok(None),
    };
    if let Some(var) = &ldap.password_env {
        match std::env::var(var) {
            // Passwords are taken as they are: a space may be part of one.
            Ok(v) if !v.is_empty() => {
                return Ok(Some(LdapBind {
                    dn,
                    password: SecretString::from(v),
                }));
            }
            Ok(_) => bail!("[source.ldap] password_env: {var} is empty"),
            Err(_) if ldap.password_file.is_some() => {}
            Err(_) => bail!("[source.ldap] password_env: {var} is not set"),
        }
    }
    let Some(file) = &ldap.password_file else {
        bail!("[source.ldap]: set password_env or password_file");
    };
    let path = config.resolve(file);
    warn_if_readable_by_others(&path);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read [source.ldap] password_file {}", path.display()))?;
    // A file's trailing newline is an editor's, not the password's.
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("[source.ldap] password_file {} is empty", path.display());
    }
    Ok(Some(LdapBind {
        dn,
        password: SecretString::from(password.to_owned()),
    }))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "[source.ldap] password_file is readable by group or others; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &std::path::Path) {}
