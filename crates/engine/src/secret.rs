//! The target's token: read from the environment or a file, kept wrapped so Debug and logs never
//! show it. The store only ever sees a salted digest, to notice a token change (reauth).

use crate::config::Config;
use anyhow::{Context, Result, bail};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn load_token(config: &Config) -> Result<SecretString> {
    if let Some(var) = &config.target.token_env {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => return Ok(SecretString::from(v.trim().to_owned())),
            Ok(_) => bail!("the environment variable {var} (token_env) is empty"),
            Err(_) if config.target.token_file.is_some() => {}
            Err(_) => bail!("the environment variable {var} (token_env) is not set"),
        }
    }
    let Some(file) = &config.target.token_file else {
        bail!("set [target] token_env or token_file");
    };
    let path = config.resolve(file);
    warn_if_readable_by_others(&path);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read token_file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("token_file {} is empty", path.display());
    }
    Ok(SecretString::from(token.to_owned()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "token_file is readable by group or others; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &std::path::Path) {}

/// A salted digest of the token: enough to tell that it changed, useless to recover it.
pub fn token_fingerprint(salt: &str, token: &SecretString) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(token.expose_secret().as_bytes());
    hex::encode(&h.finalize()[..12])
}
