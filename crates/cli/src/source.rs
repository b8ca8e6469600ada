//! The directory side of a cycle: read the snapshot, map it against what was last pushed, and
//! load the links the planner needs. On a million users each step is seconds of one core's
//! work, so the independent ones run side by side: the snapshot is parsed while the link heads
//! are loaded and indexed, and the synced groups are built while the changed users' pushed
//! attributes are decoded and the group links loaded.

use crate::config::{Config, SourceKind};
use anyhow::{Context, Result, anyhow, bail};
use scimsync_directory::{Mapped, Mapping, Scan, ScannedJson, StampedUser};
use scimsync_model::{DesiredGroup, GroupLink, Link, RecordContext, Snapshot};
use scimsync_plan::{LiveLinks, Proof, Settled};
use scimsync_store::{StampedLink, Store};

/// What `prepare` plans from, on the directory side.
pub struct Directory {
    /// A digest of the snapshot, when asked for (a pass over the whole directory).
    pub snapshot_hash: Option<String>,
    pub directory_users: usize,
    pub mapped: Mapped,
    pub desired_groups: Vec<DesiredGroup>,
    /// Every link; on an incremental cycle, with the pushed attributes of changed users only.
    pub links: Vec<Link>,
    /// Every group link (loaded while the synced groups are built).
    pub group_links: Vec<GroupLink>,
    /// On an incremental cycle, the users proved unchanged (their attributes are dropped).
    pub unchanged: Option<Proof>,
    /// Record stamps for the links of users proved unchanged from a parsed record: stored
    /// after the cycle's writes (`Store::stamp_records`), they let the next cycle skip those
    /// records.
    pub stamps: Vec<StampedLink>,
}

/// The snapshot file `[source] path` names.
fn source_path(config: &Config) -> Result<std::path::PathBuf> {
    config
        .source
        .path
        .as_ref()
        .map(|p| config.resolve(p))
        .ok_or_else(|| anyhow!("[source] path is not set"))
}

/// A JSON or CSV snapshot (blocking: the caller picks the thread).
fn read_file_snapshot(config: &Config) -> Result<Snapshot> {
    let path = source_path(config)?;
    let snapshot = match config.source.kind {
        SourceKind::Json => scimsync_directory::read_json(&path)?,
        SourceKind::Csv => {
            let groups = config
                .source
                .groups_path
                .as_ref()
                .map(|p| config.resolve(p));
            scimsync_directory::read_csv(&path, groups.as_deref())?
        }
        SourceKind::Ldap => bail!("an LDAP source is read over the network, not from a file"),
    };
    Ok(snapshot)
}

/// Reads and maps the directory and loads the links. A full cycle loads every link whole; an
/// incremental one maps against the links, so a user they claim as last pushed keeps no
/// attributes (most of a large directory, most of a cycle's memory), and settles the proof of
/// unchanged users from those claims.
///
/// An incremental cycle over a JSON file reads it keyed (`scan_json`): a record whose bytes
/// are the ones its link was stamped with is neither parsed nor mapped, and the users mapped
/// unchanged from a parsed record come back as stamps to store (`Directory::stamps`).
pub async fn read_and_map(
    config: &Config,
    store: &Store,
    mapping: &Mapping,
    full: bool,
    digest: bool,
) -> Result<Directory> {
    // LDAP is read over the network first; a file is parsed on its own thread below.
    let ldap = match config.source.kind {
        SourceKind::Ldap => Some(crate::ldap_source::read(config).await?),
        _ => None,
    };
    // A saved plan's digest needs every record parsed.
    let context = (!full && !digest && config.source.kind == SourceKind::Json)
        .then(|| mapping.record_context(&config.scope));
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || match (ldap, context) {
            (Some(snapshot), _) => Ok(Read::Whole(snapshot)),
            (None, Some(context)) => scan_file_snapshot(config, &context),
            (None, None) => read_file_snapshot(config).map(Read::Whole),
        });
        let join_reader = |reader: std::thread::ScopedJoinHandle<'_, Result<Read>>| {
            reader
                .join()
                .map_err(|_| anyhow!("the snapshot reader panicked"))?
        };
        let heads = match (!full).then(|| store.link_heads()).transpose() {
            Ok(heads) => heads,
            Err(e) => {
                // The snapshot's error first: a broken directory file is what to fix first.
                join_reader(reader)?;
                return Err(e.into());
            }
        };
        let live = heads
            .as_ref()
            .map(|heads| LiveLinks::with_stamps(&heads.links, &heads.stamps));
        let read = join_reader(reader)?;

        let (mut mapped, claims, groups, directory_users, snapshot_hash) = match (read, &live) {
            (Read::Scanned(scanned), Some(live)) => {
                let keyed = scanned.resolve(&config.roles, |key| {
                    live.stamped(key)
                        .map(|(handle, link, stamp)| StampedUser::of(handle, link, stamp))
                })?;
                let directory_users = keyed.snapshot.users.len();
                let (mapped, claims, groups) = scimsync_directory::map_keyed(
                    keyed,
                    &config.scope,
                    &config.roles,
                    mapping,
                    live,
                );
                (mapped, Some(claims), groups, directory_users, None)
            }
            (read, live) => {
                let snapshot = match read {
                    Read::Whole(snapshot) => snapshot,
                    // Scanned only on an incremental cycle, which has its links.
                    Read::Scanned(_) => bail!("a keyed read needs the links"),
                };
                let snapshot_hash = digest.then(|| snapshot_digest(&snapshot));
                let directory_users = snapshot.users.len();
                // Mapping consumes the users, record by record: the snapshot and the mapped
                // directory are never both held whole. The groups stay for the group side.
                let Snapshot { users, groups } = snapshot;
                let (scope, roles) = (&config.scope, &config.roles);
                let (mapped, claims) = match live {
                    Some(live) => {
                        let (mapped, claims) = scimsync_directory::map_users_against(
                            users, &groups, scope, roles, mapping, live,
                        );
                        (mapped, Some(claims))
                    }
                    None => (
                        scimsync_directory::map_users(users, &groups, scope, roles, mapping),
                        None,
                    ),
                };
                (mapped, claims, groups, directory_users, snapshot_hash)
            }
        };
        let groups = Snapshot {
            users: Vec::new(),
            groups,
        };
        // Which users are unchanged: mapping claimed most of them against the links' index,
        // so this is quick. The proof keeps that index for the planner, and says which record
        // stamps to store.
        let (unchanged, stamps) = match live.zip(claims) {
            Some((live, claims)) => {
                let Settled { proof, stamps } = live
                    .settle(&mut mapped.desired, claims)
                    .context("proving which users are unchanged")?;
                let stamps = stamps
                    .into_iter()
                    .map(|(link, stamp)| StampedLink::proved(link, stamp))
                    .collect();
                (Some(proof), stamps)
            }
            None => (None, Vec::new()),
        };
        // The synced groups on a second thread, while this one decodes what was pushed to
        // the users that changed (the others' is not needed) and loads the group links.
        let (desired_groups, links, group_links) = std::thread::scope(|inner| {
            let desired = inner.spawn(|| {
                scimsync_directory::desired_groups(&groups, &config.groups, &config.scope, &mapped)
            });
            let links = match (heads, &unchanged) {
                (Some(heads), Some(unchanged)) => {
                    let mut links = heads.links;
                    store
                        .fill_link_attrs(&mut links, |at, _| !unchanged.link(at))
                        .map(|_| links)
                }
                _ => store.links(),
            };
            let group_links = links.is_ok().then(|| store.group_links());
            let desired = desired
                .join()
                .map_err(|_| anyhow!("building the synced groups panicked"));
            let group_links = group_links.transpose()?.unwrap_or_default();
            anyhow::Ok((desired?, links?, group_links))
        })?;
        Ok(Directory {
            snapshot_hash,
            directory_users,
            mapped,
            desired_groups,
            links,
            group_links,
            unchanged,
            stamps,
        })
    })
}

/// A JSON file, keyed (blocking: the caller picks the thread).
fn scan_file_snapshot(config: &Config, context: &RecordContext) -> Result<Read> {
    let path = source_path(config)?;
    Ok(match scimsync_directory::scan_json(&path, context)? {
        Scan::Keyed(scanned) => Read::Scanned(scanned),
        Scan::Whole(snapshot) => Read::Whole(snapshot),
    })
}

/// The snapshot as the reader thread hands it over.
enum Read {
    Whole(Snapshot),
    /// Keyed, its users not parsed yet: resolved against the links' stamps.
    Scanned(ScannedJson),
}

/// A digest of the snapshot as read, to tell a saved plan's directory from today's. Streamed
/// into the hash: a million-user snapshot is not rendered into a buffer first.
fn snapshot_digest(snapshot: &Snapshot) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    match serde_json::to_writer(std::io::BufWriter::new(&mut hasher), snapshot) {
        Ok(()) => hex::encode(hasher.finalize()),
        Err(_) => String::new(),
    }
}
