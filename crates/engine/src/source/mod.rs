//! Where a directory comes from. Each kind of source is a module here behind [`Source`]: read
//! a snapshot, all or nothing; optionally, a keyed read whose records an incremental cycle can
//! recognise by their bytes without parsing them.
//!
//! Adding a source is one module here plus one config variant: a [`SourceKind`] (with its keys
//! in [`SourceConfig`]) and its arm in [`open`]. Its secrets go through
//! [`SecretRef`](crate::secret::SecretRef), like the target's token.

mod csv;
mod json;
mod ldap;

pub use crate::error::ReadError;
use scimsync_directory::{LdapConfig, Scan};
use scimsync_model::{RecordContext, Snapshot};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A directory the engine can read.
pub trait Source: Send + Sync {
    /// Reads the whole directory, all or nothing: a partial snapshot would deprovision people.
    /// Blocking: the engine calls it on a thread of its own, beside the load of the store's
    /// links, never on an async runtime's.
    fn read(&self) -> Result<Snapshot, ReadError>;

    /// Whether [`Source::scan`] keys the records rather than reading them whole.
    fn keyed(&self) -> bool {
        false
    }

    /// A keyed read: every record delimited and keyed by a digest of its bytes under `context`,
    /// none parsed yet (`Scan::Keyed`), where the source can; otherwise the whole snapshot
    /// (`Scan::Whole`). Blocking, like `read`.
    fn scan(&self, context: &RecordContext) -> Result<Scan, ReadError> {
        let _ = context;
        self.read().map(Scan::Whole)
    }
}

/// `[source] kind`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Json,
    Csv,
    Ldap,
}

/// `[source]` in sync.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// JSON snapshot, or the CSV users file.
    pub path: Option<PathBuf>,
    /// CSV groups file (`group_id,group_name,member_id`).
    pub groups_path: Option<PathBuf>,
    /// `[source.ldap]` for kind = "ldap".
    pub ldap: Option<LdapConfig>,
}

/// The source `[source]` describes, its relative paths resolved against `base` (sync.toml's
/// directory). Checks the keys its kind needs; does no IO.
pub fn open(config: &SourceConfig, base: &Path) -> Result<Box<dyn Source>, ReadError> {
    let resolve = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        }
    };
    let path = || {
        config.path.as_ref().map(resolve).ok_or_else(|| {
            ReadError::Config(format!(
                "[source] path is required for kind = {:?}",
                config.kind
            ))
        })
    };
    Ok(match config.kind {
        SourceKind::Json => Box::new(json::JsonFile { path: path()? }),
        SourceKind::Csv => Box::new(csv::CsvFiles {
            users: path()?,
            groups: config.groups_path.as_ref().map(resolve),
        }),
        SourceKind::Ldap => match &config.ldap {
            Some(ldap) => {
                ldap.validate()
                    .map_err(|e| ReadError::Config(e.to_string()))?;
                Box::new(ldap::Ldap::new(ldap.clone(), base))
            }
            None => {
                return Err(ReadError::Config(
                    "[source] kind = \"ldap\" needs a [source.ldap] table".into(),
                ));
            }
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(kind: SourceKind) -> SourceConfig {
        SourceConfig {
            kind,
            path: None,
            groups_path: None,
            ldap: None,
        }
    }

    fn refused(config: &SourceConfig) -> String {
        match open(config, Path::new("/etc/scimsync")) {
            Ok(_) => panic!("{config:?} opened"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn each_kind_checks_the_keys_it_needs() {
        assert_eq!(
            refused(&config(SourceKind::Json)),
            "[source] path is required for kind = Json"
        );
        assert_eq!(
            refused(&config(SourceKind::Csv)),
            "[source] path is required for kind = Csv"
        );
        assert_eq!(
            refused(&config(SourceKind::Ldap)),
            "[source] kind = \"ldap\" needs a [source.ldap] table"
        );
        let ldap: LdapConfig = toml::from_str("url = \"http://dc\"\nbase_dn = \"dc=x\"").unwrap();
        let bad = SourceConfig {
            ldap: Some(ldap),
            ..config(SourceKind::Ldap)
        };
        assert!(refused(&bad).contains("ldap://"), "{}", refused(&bad));
    }

    #[test]
    fn only_the_json_file_reads_keyed_and_paths_are_relative_to_sync_toml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.json"),
            r#"{"users": [{"id": "u1", "email": "ann@example.com"}], "groups": []}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("d.csv"), "id,email\nu1,ann@example.com\n").unwrap();
        let json = SourceConfig {
            path: Some("d.json".into()),
            ..config(SourceKind::Json)
        };
        let csv = SourceConfig {
            path: Some("d.csv".into()),
            ..config(SourceKind::Csv)
        };
        let json = open(&json, dir.path()).unwrap();
        let csv = open(&csv, dir.path()).unwrap();
        assert!(json.keyed());
        assert!(!csv.keyed());
        assert_eq!(json.read().unwrap().users.len(), 1);
        assert_eq!(csv.read().unwrap().users.len(), 1);
        // A source without a keyed read hands the whole snapshot to `scan`.
        let context = scimsync_directory::Mapping::compile(&Default::default())
            .unwrap()
            .record_context(&Default::default());
        assert!(matches!(csv.scan(&context).unwrap(), Scan::Whole(_)));
    }
}
