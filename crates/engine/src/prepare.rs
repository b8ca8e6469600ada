//! Preparing a cycle: everything up to the plan. Reads what the target takes of the mapping,
//! the directory and the store's links (`directory`), what the target holds (a full paged read,
//! or lookups of the unlinked users only), the groups the cycle needs, and plans. `plan` stops
//! here; `sync` goes on to the guard and the executor (`cycle`).

use crate::EngineError;
use crate::config::Config;
use crate::report::PHASE;
use foldhash::HashSet;
use scimsync_directory::Mapped;
use scimsync_executor::{ScimClient, ScimError};
use scimsync_model::{DesiredUser, Link, Plan, ScimId, SourceId, TargetView};
use scimsync_plan::{PlanInput, PlanOutput};
use scimsync_store::{StampedLink, Store, StoreError};
use std::sync::Arc;
use tracing::Instrument;

/// Everything the planner saw and what it decided.
pub struct Prepared {
    /// A digest of the snapshot, when a saved plan needs one (`prepare`'s `digest`): it costs
    /// a pass over the whole directory.
    pub snapshot_hash: Option<String>,
    pub directory_users: usize,
    pub mapped: Mapped,
    pub links: Vec<Link>,
    pub target: TargetView,
    pub full: bool,
    pub output: PlanOutput,
    pub lookups: usize,
    /// Synced directory groups and what the target holds of them (`groups.rs`).
    pub groups: crate::groups::GroupSide,
    /// Record stamps a cycle stores once its writes are done (`directory::Directory::stamps`).
    pub stamps: Vec<StampedLink>,
    /// What the target declares and what of the mapping it does not take.
    pub fit: crate::discovery::Fit,
    /// Config names that match no directory group; group members resolving to no user.
    pub findings: scimsync_directory::Findings,
    /// The uncertain users and groups read before planning, and what was found.
    pub verification: crate::verify::Verification,
    /// The group model this cycle runs under, and why when sync.toml does not say.
    pub model: crate::teams::ModelChoice,
    /// `[teams]` and what Miro's REST API said of the teams (`teams.rs`).
    pub teams: crate::teams::TeamSide,
    /// `[teams]` entries naming no synced directory group, as written.
    pub unmatched_teams: Vec<String>,
}

impl Prepared {
    pub fn plan(&self) -> &Plan {
        &self.output.plan
    }
}

/// Whether this cycle reads the whole target: on request, on the first cycle, or when the last
/// full read is older than `schedule.full_every`.
pub fn needs_full(config: &Config, store: &Store, requested: bool) -> Result<bool, EngineError> {
    if requested {
        return Ok(true);
    }
    let Some(last) = store.meta(crate::meta::LAST_FULL_AT)? else {
        return Ok(true);
    };
    let last = time::OffsetDateTime::parse(&last, &time::format_description::well_known::Rfc3339)
        .map_err(|e| EngineError::Corrupt {
        key: crate::meta::LAST_FULL_AT,
        message: e.to_string(),
    })?;
    let age = time::OffsetDateTime::now_utc() - last;
    Ok(age.is_negative() || age.unsigned_abs() >= config.schedule.full_every)
}

/// Prepares a cycle up to its plan: what `scimsync plan` prints and what `sync` then guards and
/// executes. `full` reads every user from the target (else the links stand for the linked users
/// and only the unlinked ones are looked up; `needs_full` decides it for a cycle); `digest`
/// computes the snapshot's digest a saved plan carries (a pass over the whole directory, and
/// no keyed read). Reads only: nothing is written to the store or sent to the target but
/// reads.
pub async fn prepare(
    config: &Config,
    store: &Store,
    client: &Arc<ScimClient>,
    full: bool,
    digest: bool,
) -> Result<Prepared, EngineError> {
    // What the target takes decides what is mapped: an attribute it does not declare is
    // neither sent nor compared (`discovery.rs`).
    let (discovery, fresh) = crate::discovery::discover(store, client, full)
        .instrument(tracing::debug_span!(target: PHASE, "discover"))
        .await?;
    let schema = discovery.schema();
    let (mapping, unsupported) = crate::discovery::fit(
        crate::discovery::base_mapping(config)?,
        &schema,
        &crate::discovery::refused(store)?,
    );
    let fit = crate::discovery::Fit {
        members_on_create: client.profile().group_members_on_create
            && schema.group_members_writable() != Some(false),
        discovery,
        fresh,
        unsupported,
    };
    // Before anything trusts a link: what the target holds of each object whose last write
    // has an unknown outcome (nothing is read when there is none).
    let verification = crate::verify::read(client, store, full).await?;
    let crate::directory::Directory {
        snapshot_hash,
        directory_users,
        mapped,
        mut desired_groups,
        directory_groups,
        findings,
        mut links,
        mut group_links,
        unchanged,
        stamps,
    } = crate::directory::read_and_map(
        config,
        store,
        &mapping,
        full,
        digest,
        &verification.user_overlay(),
    )?;
    // What the target holds, and the plan: timed by the span's lifetime (to the end of
    // `prepare`), never entered, since it spans the reads' awaits.
    let _phase = tracing::debug_span!(target: PHASE, "plan");
    // scimsync manages the mapped attributes only: what else the target holds (set by hand,
    // or by another tool, or by a mapping since removed) is neither compared, nor recorded in
    // a link, nor ever removed.
    let managed: HashSet<&str> = mapping.paths().collect();
    for link in &mut links {
        link.attrs.retain(|path, _| managed.contains(path.as_str()));
    }
    // Desired users without a link: the ones an incremental cycle looks up (unless the target
    // refused them as guests before).
    let unlinked = scimsync_plan::unlinked(&mapped.desired, &links, unchanged.as_ref());
    let guests = known_guests(store, &unlinked)?;
    let (mut target, lookups) = if full {
        let users = client
            .list_users()
            .await
            .map_err(EngineError::target("full read of the target's users"))?;
        (
            TargetView {
                users,
                complete: true,
            },
            0,
        )
    } else {
        let absent = crate::lookups::known_absent(store, &unlinked)?;
        let to_look_up: Vec<&DesiredUser> = unlinked
            .iter()
            .filter(|u| !absent.contains(&u.user_name))
            .copied()
            .collect();
        incremental_view(client, &to_look_up, &links, &guests).await?
    };
    if !full {
        // The uncertain users read: the planner compares them with what the target holds.
        let seen: HashSet<ScimId> = target.users.iter().map(|u| u.id.clone()).collect();
        target.users.extend(
            verification
                .users()
                .filter(|u| !seen.contains(&u.id))
                .cloned(),
        );
        target.users.sort_by(|a, b| a.id.cmp(&b.id));
    }
    for user in &mut target.users {
        user.attrs.retain(|path, _| managed.contains(path.as_str()));
    }

    // Invalid records, and uncertain users whose read failed, are held untouched.
    let held: Vec<SourceId> = mapped
        .invalid
        .iter()
        .map(|r| r.source_id.clone())
        .chain(verification.held_users().cloned())
        .collect();
    verification.apply_to_groups(&mut group_links);
    let held_groups = verification.held_groups();
    if !held_groups.is_empty() {
        desired_groups.retain(|g| !held_groups.contains(&g.source_id));
        group_links.retain(|l| !held_groups.contains(&l.source_id));
    }
    let input = PlanInput {
        desired: &mapped.desired,
        out_of_scope: &mapped.out_of_scope,
        held: &held,
        links: &links,
        target: &target,
        guests: &guests,
        grace_expired: &grace_expired(config, store, &links)?,
        unchanged: unchanged.as_ref(),
    };
    let model = crate::teams::group_model(config, store)?;
    if let Some(warning) = &model.warning {
        tracing::warn!("{warning}");
    }
    let groups =
        crate::groups::read(store, client, desired_groups, group_links, config, full).await?;
    let teams = crate::teams::read(config, store, &groups.desired, model.model, full).await?;
    let unmatched_teams: Vec<String> = config
        .teams
        .keys()
        .filter(|name| !groups.desired.iter().any(|g| &g.display_name == *name))
        .map(|name| format!("{name:?}"))
        .collect();
    let can_create = crate::groups::can_create(config, model.model);
    let group_input = scimsync_plan::GroupPlanInput {
        desired: &groups.desired,
        links: &groups.links,
        target: &groups.view,
        user_links: &links,
        held: &held,
        can_create,
        members_on_create: fit.members_on_create,
        name_match: config.groups.name_match,
        directory_groups: &directory_groups,
        // Miro truncates a user group's name: a longer one would never match again.
        max_name_chars: client.profile().group_name_max_chars.filter(|_| can_create),
        teams: teams.input(),
    };
    let output = scimsync_plan::plan_with_groups(&input, &group_input, &config.policy());
    Ok(Prepared {
        snapshot_hash,
        directory_users,
        mapped,
        links,
        target,
        full,
        output,
        lookups,
        groups,
        stamps,
        fit,
        findings,
        verification,
        model,
        teams,
        unmatched_teams,
    })
}

/// Inactive linked users deactivated longer ago than `policy.delete_after` (none without it).
fn grace_expired(
    config: &Config,
    store: &Store,
    links: &[Link],
) -> Result<Vec<SourceId>, StoreError> {
    let Some(grace) = config.policy.delete_after else {
        return Ok(Vec::new());
    };
    let cutoff = scimsync_store::rfc3339(time::OffsetDateTime::now_utc() - grace);
    let mut expired = Vec::new();
    for link in links.iter().filter(|l| !l.active) {
        // Same fixed-width RFC 3339 format on both sides, so strings compare as times.
        let since = store.meta(&crate::meta::deactivated_key(&link.source_id))?;
        if since.is_some_and(|since| since <= cutoff) {
            expired.push(link.source_id.clone());
        }
    }
    Ok(expired)
}

/// userNames of unlinked desired users that the target refused as guests in an earlier cycle.
fn known_guests(store: &Store, unlinked: &[&DesiredUser]) -> Result<Vec<String>, StoreError> {
    let mut guests = Vec::new();
    for user in unlinked {
        if store
            .meta(&crate::meta::guest_key(&user.user_name))?
            .is_some()
        {
            guests.push(user.user_name.clone());
        }
    }
    Ok(guests)
}

/// A `userName eq` lookup for each desired user that has no link yet (to adopt rather than
/// duplicate). The linked users are not copied in: the planner takes a linked user the view
/// lacks to be as its link says. Known guests are not looked up again: the target hides them,
/// and a full read finds one who has since become a member.
async fn incremental_view(
    client: &Arc<ScimClient>,
    unlinked: &[&DesiredUser],
    links: &[Link],
    guests: &[String],
) -> Result<(TargetView, usize), EngineError> {
    let guests: HashSet<&str> = guests.iter().map(String::as_str).collect();
    let unlinked: Vec<String> = unlinked
        .iter()
        .filter(|u| !guests.contains(u.user_name.as_str()))
        .map(|u| u.user_name.clone())
        .collect();
    let lookups = unlinked.len();
    if lookups == 0 {
        return Ok((
            TargetView {
                users: Vec::new(),
                complete: false,
            },
            0,
        ));
    }
    let mut tasks = tokio::task::JoinSet::new();
    // Bounded: the client paces requests per bucket; this only caps open sockets.
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    for user_name in unlinked {
        let client = Arc::clone(client);
        let gate = Arc::clone(&gate);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            client
                .find_user(&user_name)
                .await
                .map_err(|e| (user_name, e))
        });
    }
    let known: HashSet<&ScimId> = links.iter().map(|l| &l.target_id).collect();
    let mut found = Vec::new();
    // The first failure ends the read; the refusal behind a run of "not sent" lookups is the
    // one to report (and the one quarantine looks for), so it is preferred.
    let mut failure: Option<(String, ScimError)> = None;
    while let Some(joined) = tasks.join_next().await {
        let joined = joined.map_err(|_| EngineError::Panicked {
            what: "a lookup task",
        })?;
        match joined {
            Ok(Some(user)) if !known.contains(&user.id) => found.push(user),
            Ok(_) => {}
            Err((user_name, e)) => {
                let better = match &failure {
                    None => true,
                    Some((_, ScimError::Halted)) => !matches!(e, ScimError::Halted),
                    Some(_) => false,
                };
                if better {
                    failure = Some((user_name, e));
                }
                if failure
                    .as_ref()
                    .is_some_and(|(_, e)| !matches!(e, ScimError::Halted))
                {
                    break;
                }
            }
        }
    }
    if let Some((user_name, e)) = failure {
        tasks.abort_all();
        return Err(EngineError::Target {
            doing: format!("lookup of {user_name}"),
            source: e,
        });
    }
    // Task completion order is not deterministic; the plan must be.
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found.dedup_by(|a, b| a.id == b.id);
    Ok((
        TargetView {
            users: found,
            complete: false,
        },
        lookups,
    ))
}
