//! The directory side of a cycle: read the snapshot, map it against what was last pushed, and
//! load the links the planner needs. On a million users each step is seconds of one core's
//! work, so the independent ones run side by side: the snapshot is read (keyed, where the source
//! can) on its own thread while the link heads are loaded and indexed (`LiveLinks`), and the
//! synced groups are built while the changed users' pushed attributes are decoded and the
//! group links loaded. Mapping hands over the users the links claim as last pushed, by their
//! links' handles, so settling the proof (`LiveLinks::settle`) looks nobody up again; the proof
//! is what the planner is handed. The costs of each step are documented where they are paid:
//! `scimsync_directory` (reading, keying, mapping), `scimsync_plan` (the proof),
//! `scimsync_store` (link heads, stamps).

use crate::EngineError;
use crate::config::Config;
use crate::report::PHASE;
use crate::source::ReadError;
use scimsync_directory::{Findings, Mapped, Mapping, Scan, ScannedJson, StampedUser};
use scimsync_model::{DesiredGroup, GroupLink, Link, Snapshot, SourceId};
use scimsync_plan::{LiveLinks, Proof, Settled};
use scimsync_store::{StampedLink, Store};

/// What `prepare` plans from, on the directory side.
pub struct Directory {
    /// A digest of the snapshot, when asked for (a pass over the whole directory).
    pub snapshot_hash: Option<String>,
    pub directory_users: usize,
    pub mapped: Mapped,
    pub desired_groups: Vec<DesiredGroup>,
    /// The id of every directory group, synced or not, sorted (a linked group no longer
    /// synced but still here is not "gone from the directory").
    pub directory_groups: Vec<SourceId>,
    /// Config names that match no directory group, and group members that resolve to no user.
    pub findings: Findings,
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

/// The directory `[source]` names, read whole, nothing mapped (`check`). On a thread of its
/// own: a source's read blocks.
pub fn read_snapshot(config: &Config) -> Result<Snapshot, EngineError> {
    let source = crate::source::open(&config.source, config.base_dir())?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| source.read())
            .join()
            .map_err(|_| EngineError::Panicked {
                what: "the snapshot reader",
            })?
            .map_err(EngineError::from)
    })
}

/// Reads and maps the directory and loads the links. A full cycle loads every link whole; an
/// incremental one maps against the links, so a user they claim as last pushed keeps no
/// attributes (most of a large directory, most of a cycle's memory), and settles the proof of
/// unchanged users from those claims.
///
/// An incremental cycle over a source with a keyed read (the JSON file: `scan_json`) reads it
/// keyed: a record whose bytes are the ones its link was stamped with is neither parsed nor
/// mapped, and the users mapped unchanged from a parsed record come back as stamps to store
/// (`Directory::stamps`).
///
/// `overlay` is what verifying uncertain users changed of the links (`verify`): applied as
/// they are loaded, before anything is proved against them.
///
/// Blocking: the source is read on a thread of its own while this one loads the links.
pub fn read_and_map(
    config: &Config,
    store: &Store,
    mapping: &Mapping,
    full: bool,
    digest: bool,
    overlay: &crate::verify::LinkOverlay,
) -> Result<Directory, EngineError> {
    let source = crate::source::open(&config.source, config.base_dir())?;
    // A saved plan's digest needs every record parsed.
    let context =
        (!full && !digest && source.keyed()).then(|| mapping.record_context(&config.scope));
    // The phases a benchmark times (`report::PHASE`): read, map, settle.
    let phase = tracing::debug_span!(target: PHASE, "read").entered();
    std::thread::scope(|scope| {
        let source = &source;
        let reader = scope.spawn(move || match context {
            Some(context) => source.scan(&context).map(Read::from),
            None => source.read().map(Read::Whole),
        });
        let join_reader = |reader: std::thread::ScopedJoinHandle<'_, Result<Read, ReadError>>| {
            reader
                .join()
                .map_err(|_| EngineError::Panicked {
                    what: "the snapshot reader",
                })?
                .map_err(EngineError::from)
        };
        let heads = match (!full).then(|| store.link_heads()).transpose() {
            Ok(mut heads) => {
                if let Some(heads) = &mut heads {
                    overlay.apply(&mut heads.links, Some(&mut heads.stamps));
                }
                heads
            }
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
        drop(phase);
        let phase = tracing::debug_span!(target: PHASE, "map").entered();

        let (mut mapped, claims, groups, directory_users, snapshot_hash) = match (read, &live) {
            (Read::Scanned(scanned), Some(live)) => {
                let keyed = scanned
                    .resolve(&config.roles, |key| {
                        live.stamped(key)
                            .map(|(handle, link, stamp)| StampedUser::of(handle, link, stamp))
                    })
                    .map_err(ReadError::from)?;
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
                    Read::Scanned(_) => {
                        return Err(EngineError::Internal("a keyed read without the links"));
                    }
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
        drop(phase);
        let _phase = tracing::debug_span!(target: PHASE, "settle").entered();
        let findings =
            scimsync_directory::findings(&groups, &config.scope, &config.roles, &config.groups);
        let mut directory_groups: Vec<SourceId> = groups.iter().map(|g| g.id.clone()).collect();
        directory_groups.sort_unstable();
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
                    .map_err(EngineError::Proof)?;
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
                _ => store.links().map(|mut links| {
                    overlay.apply::<()>(&mut links, None);
                    links
                }),
            };
            let group_links = links.is_ok().then(|| store.group_links());
            let desired = desired.join().map_err(|_| EngineError::Panicked {
                what: "building the synced groups",
            });
            let group_links = group_links.transpose()?.unwrap_or_default();
            Ok::<_, EngineError>((desired?, links?, group_links))
        })?;
        Ok(Directory {
            snapshot_hash,
            directory_users,
            mapped,
            desired_groups,
            directory_groups,
            findings,
            links,
            group_links,
            unchanged,
            stamps,
        })
    })
}

/// The snapshot as the reader thread hands it over.
enum Read {
    Whole(Snapshot),
    /// Keyed, its users not parsed yet: resolved against the links' stamps.
    Scanned(ScannedJson),
}

impl From<Scan> for Read {
    fn from(scan: Scan) -> Read {
        match scan {
            Scan::Keyed(scanned) => Read::Scanned(scanned),
            Scan::Whole(snapshot) => Read::Whole(snapshot),
        }
    }
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
