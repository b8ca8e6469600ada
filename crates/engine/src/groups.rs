//! The group side of a cycle: which directory groups are synced, what the target holds of them
//! (read within Miro's group budgets), and the group links handed to the executor.

use crate::EngineError;
use crate::config::Config;
use scimsync_executor::ScimClient;
use scimsync_model::{DesiredGroup, GroupLink, GroupSkipReason, GroupView, Op, Plan, SourceId};
use scimsync_store::{Store, StoreError};
use std::collections::{HashMap, HashSet};

/// What the planner needs of groups, as read this cycle.
#[derive(Clone, Debug, Default)]
pub struct GroupSide {
    pub desired: Vec<DesiredGroup>,
    /// The stored links, with members as read this cycle where a group was read.
    pub links: Vec<GroupLink>,
    pub view: GroupView,
    /// Group requests spent reading (list pages are not counted apart from GETs).
    pub reads: usize,
}

/// Whether the target creates and deletes groups: Miro's user-group model (`model`, as
/// `crate::teams::group_model` settled it), or any RFC SP.
pub fn can_create(config: &Config, model: scimsync_model::GroupModel) -> bool {
    let mut profile = config.profile();
    if profile.fixed_capabilities.is_some() {
        profile.group_model = model;
    }
    profile.can_create_groups()
}

/// Reads what the cycle needs of the target's groups, and nothing more:
/// - nothing at all when no group is synced or linked;
/// - on an incremental cycle where every synced group is linked (and every link synced), no
///   request: the links hold the members last seen;
/// - otherwise one paged list of ids and names (`attributes=id,displayName`: the list bucket is
///   5 per window), then `GET /Groups/{id}` for the groups whose members are needed (name
///   matches of unlinked groups; on a full cycle every linked group too).
///
/// `links` are the store's group links (loaded with the user links).
pub async fn read(
    store: &Store,
    client: &ScimClient,
    mut desired: Vec<DesiredGroup>,
    mut links: Vec<GroupLink>,
    config: &Config,
    full: bool,
) -> Result<GroupSide, EngineError> {
    if !full {
        // A team known to be missing is looked for again on full cycles only: otherwise every
        // cycle would list the target's groups (5 a window) to report the same absence.
        let linked: HashSet<&SourceId> = links.iter().map(|l| &l.source_id).collect();
        let mut known_missing = HashSet::new();
        for group in desired.iter().filter(|g| !linked.contains(&g.source_id)) {
            if store
                .meta(&crate::meta::missing_team_key(&group.source_id))?
                .is_some()
            {
                known_missing.insert(group.source_id.clone());
            }
        }
        desired.retain(|g| !known_missing.contains(&g.source_id));
    }
    if desired.is_empty() && links.is_empty() {
        return Ok(GroupSide::default());
    }
    let wanted: HashSet<&SourceId> = desired.iter().map(|g| &g.source_id).collect();
    let linked: HashSet<&SourceId> = links.iter().map(|l| &l.source_id).collect();
    let settled = desired.iter().all(|g| linked.contains(&g.source_id))
        && links.iter().all(|l| wanted.contains(&l.source_id));
    if !full && settled {
        // The planner takes a linked group an incremental view lacks to be as its link says
        // (name and members last seen): no copy of a million memberships.
        return Ok(GroupSide {
            desired,
            links,
            view: GroupView {
                groups: Vec::new(),
                complete: false,
            },
            reads: 0,
        });
    }

    let mut groups = client
        .list_groups()
        .await
        .map_err(EngineError::target("listing the target's groups"))?;
    let rule = config.groups.name_match;
    let unlinked_names: HashSet<String> = desired
        .iter()
        .filter(|g| !linked.contains(&g.source_id))
        .map(|g| rule.key(&g.display_name))
        .collect();
    let link_of: HashMap<_, _> = links.iter().map(|l| (l.target_id.clone(), l)).collect();
    let mut reads = 0;
    for group in &mut groups {
        let is_linked_synced = link_of
            .get(&group.id)
            .is_some_and(|l| wanted.contains(&l.source_id));
        let needed =
            unlinked_names.contains(&rule.key(&group.display_name)) || (is_linked_synced && full);
        if needed {
            reads += 1;
            if let Some(read) = client
                .read_group(&group.id)
                .await
                .map_err(EngineError::target(format!(
                    "reading group {} ({})",
                    group.display_name, group.id
                )))?
            {
                group.members = read.members;
            }
        } else if let Some(link) = link_of.get(&group.id) {
            group.members = Some(link.members.clone());
        }
    }
    // The links start from what was just read.
    let read: HashMap<_, _> = groups
        .iter()
        .filter_map(|g| g.members.as_ref().map(|m| (g.id.clone(), m.clone())))
        .collect();
    for link in &mut links {
        if let Some(members) = read.get(&link.target_id) {
            link.members = members.clone();
        }
    }
    Ok(GroupSide {
        desired,
        links,
        view: GroupView {
            groups,
            complete: true,
        },
        reads,
    })
}

/// Remembers the synced groups this plan found no team for (see `read`), with the time.
pub fn remember_missing_teams(store: &mut Store, plan: &Plan) -> Result<(), StoreError> {
    for op in &plan.ops {
        if let Op::GroupSkip {
            source_id,
            reason: GroupSkipReason::NoMatchingTeam,
            ..
        } = op
        {
            store.set_meta(
                &crate::meta::missing_team_key(source_id),
                &scimsync_store::now_rfc3339(),
            )?;
        }
    }
    Ok(())
}

/// The group links the executor starts from: the stored ones (members as read), plus for each
/// group the plan adopts, its members as read, so the link it records is whole.
pub fn executor_links(side: &GroupSide, plan: &Plan) -> Vec<GroupLink> {
    let mut links = side.links.clone();
    for op in &plan.ops {
        if let Op::GroupAdopt {
            source_id,
            target_id,
            display_name,
        } = op
        {
            let members = side
                .view
                .groups
                .iter()
                .find(|g| &g.id == target_id)
                .and_then(|g| g.members.clone())
                .unwrap_or_default();
            links.retain(|l| &l.source_id != source_id);
            links.push(GroupLink {
                source_id: source_id.clone(),
                target_id: target_id.clone(),
                display_name: display_name.clone(),
                members,
            });
        }
    }
    links
}
