//! Secrets named by sync.toml: the target's token and the LDAP bind password, read from an
//! environment variable or a file by one loader, and kept wrapped (`SecretString`) so Debug and
//! logs never show them. The store only ever sees a salted digest of the token, to notice a
//! change (reauth).

pub use crate::error::SecretError;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What of a secret's text is not the secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    /// Whitespace at either end (a token never holds any).
    Whitespace,
    /// A file's trailing line ending, an editor's, not the secret's; the environment's value is
    /// taken as it is (a space may be part of a password).
    LineEnd,
}

/// Where a secret comes from, as sync.toml names it. With both, the environment variable wins
/// when it is set, and the file is read when it is not.
#[derive(Clone, Debug)]
pub struct SecretRef {
    /// The table that names it, for messages: `[target]`, `[source.ldap]`.
    pub section: &'static str,
    /// The key naming the environment variable (`token_env`), and its value.
    pub env_key: &'static str,
    pub env: Option<String>,
    /// The key naming the file (`token_file`), and its path (resolved against sync.toml's
    /// directory).
    pub file_key: &'static str,
    pub file: Option<PathBuf>,
    pub trim: Trim,
}

impl SecretRef {
    pub fn load(&self) -> Result<SecretString, SecretError> {
        let section = self.section;
        if let Some(var) = &self.env {
            match std::env::var(var) {
                Ok(value) => {
                    let value = match self.trim {
                        Trim::Whitespace => value.trim(),
                        Trim::LineEnd => value.as_str(),
                    };
                    if value.is_empty() {
                        return Err(SecretError::VarEmpty {
                            section,
                            key: self.env_key,
                            var: var.clone(),
                        });
                    }
                    return Ok(SecretString::from(value.to_owned()));
                }
                Err(_) if self.file.is_some() => {}
                Err(_) => {
                    return Err(SecretError::VarNotSet {
                        section,
                        key: self.env_key,
                        var: var.clone(),
                    });
                }
            }
        }
        let Some(path) = &self.file else {
            return Err(SecretError::NotNamed {
                section,
                env_key: self.env_key,
                file_key: self.file_key,
            });
        };
        self.warn_if_readable_by_others(path);
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
            section,
            key: self.file_key,
            path: path.clone(),
            source,
        })?;
        let secret = match self.trim {
            Trim::Whitespace => text.trim(),
            Trim::LineEnd => text.trim_end_matches(['\n', '\r']),
        };
        if secret.is_empty() {
            return Err(SecretError::FileEmpty {
                section,
                key: self.file_key,
                path: path.clone(),
            });
        }
        Ok(SecretString::from(secret.to_owned()))
    }

    #[cfg(unix)]
    fn warn_if_readable_by_others(&self, path: &std::path::Path) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "{} {} is readable by group or others; chmod 600 it",
                    self.section,
                    self.file_key
                );
            }
        }
    }

    #[cfg(not(unix))]
    fn warn_if_readable_by_others(&self, _path: &std::path::Path) {}
}

/// A salted digest of the token: enough to tell that it changed, useless to recover it.
pub fn token_fingerprint(salt: &str, token: &SecretString) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(token.expose_secret().as_bytes());
    hex::encode(&h.finalize()[..12])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file_ref(path: PathBuf, trim: Trim) -> SecretRef {
        SecretRef {
            section: "[source.ldap]",
            env_key: "password_env",
            env: None,
            file_key: "password_file",
            file: Some(path),
            trim,
        }
    }

    #[test]
    fn a_file_secret_loses_only_what_its_kind_trims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, " pass word \n").unwrap();
        let password = file_ref(path.clone(), Trim::LineEnd).load().unwrap();
        assert_eq!(password.expose_secret(), " pass word ");
        let token = file_ref(path, Trim::Whitespace).load().unwrap();
        assert_eq!(token.expose_secret(), "pass word");
    }

    #[test]
    fn every_failure_names_the_table_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let err = file_ref(empty, Trim::LineEnd).load().unwrap_err();
        assert!(
            err.to_string().starts_with("[source.ldap] password_file "),
            "{err}"
        );
        let missing = file_ref(dir.path().join("missing"), Trim::LineEnd)
            .load()
            .unwrap_err();
        assert!(
            matches!(missing, SecretError::Unreadable { .. }),
            "{missing}"
        );
        let none = SecretRef {
            file: None,
            ..file_ref(PathBuf::new(), Trim::LineEnd)
        };
        assert_eq!(
            none.load().unwrap_err().to_string(),
            "[source.ldap]: set password_env or password_file"
        );
        // An unset variable with a file named falls back to the file.
        let unset = SecretRef {
            env: Some("SCIMSYNC_TEST_SURELY_UNSET_4f1c".into()),
            ..file_ref(dir.path().join("missing"), Trim::LineEnd)
        };
        assert!(matches!(
            unset.load().unwrap_err(),
            SecretError::Unreadable { .. }
        ));
        let unset = SecretRef {
            file: None,
            ..unset
        };
        assert_eq!(
            unset.load().unwrap_err().to_string(),
            "[source.ldap] password_env: the environment variable SCIMSYNC_TEST_SURELY_UNSET_4f1c is not set"
        );
    }
}
