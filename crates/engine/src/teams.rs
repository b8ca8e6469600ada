//! Miro in 2026 on the cycle's side: which group model this install uses (sync.toml's, or for
//! an install made before `user_group` was the default, the legacy one its store was built
//! under), the REST client for team assignment (`[target.rest]`), and what a cycle reads of
//! Miro's teams (`[teams]`): nothing at all when the team links already say everything.

use crate::config::Config;
use scimsync_executor::{RestClient, RestConfig};
use scimsync_model::{DesiredGroup, GroupModel, TeamLink, TeamView};
use scimsync_scim::ProfileKind;
use scimsync_store::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};

/// The group model a cycle uses, and a warning when it was not sync.toml's choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelChoice {
    pub model: GroupModel,
    pub warning: Option<String>,
}

/// `[target] group_model`, or without it: `team` for a store whose group links were made
/// under the legacy model (before `user_group` became the default, the key's absence meant
/// `team`; switching silently would create a user group beside every team and then delete
/// what it no longer syncs), else `user_group`.
pub fn group_model(config: &Config, store: &Store) -> Result<ModelChoice, StoreError> {
    if let Some(model) = config.target.group_model {
        return Ok(ModelChoice {
            model,
            warning: None,
        });
    }
    if config.target.profile == ProfileKind::Generic {
        return Ok(ModelChoice {
            model: GroupModel::UserGroup,
            warning: None,
        });
    }
    let recorded = store
        .meta(crate::meta::GROUP_MODEL)?
        .and_then(|m| GroupModel::parse(&m));
    let legacy = match recorded {
        Some(model) => model == GroupModel::Team,
        // A store from before the model was recorded: its group links were made under the
        // default of the time, `team`.
        None => !store.group_links()?.is_empty(),
    };
    Ok(if legacy {
        ModelChoice {
            model: GroupModel::Team,
            warning: Some(
                "[target] group_model is not set and this store's groups were synced as Miro \
                 teams (group_model = \"team\", the default before 2026): keeping \"team\". Set \
                 group_model = \"team\" to keep it, or \"user_group\" once Miro has migrated the \
                 org (`scimsync check` tells which)"
                    .to_owned(),
            ),
        }
    } else {
        ModelChoice {
            model: GroupModel::UserGroup,
            warning: None,
        }
    })
}

/// Remembers the model a cycle ran under, so a later sync.toml without the key keeps it.
pub fn remember_model(store: &mut Store, model: GroupModel) -> Result<(), StoreError> {
    store.set_meta(crate::meta::GROUP_MODEL, model.as_str())?;
    Ok(())
}

/// The REST client of `[target.rest]`: `Ok(None)` when there is none, `Err(why)` (in words,
/// for the plan) when it cannot be built (its token cannot be read).
pub fn rest_client(config: &Config) -> Result<Option<RestClient>, String> {
    let Some(rest) = &config.target.rest else {
        return Ok(None);
    };
    let token = config.rest_token(rest).map_err(|e| e.to_string())?;
    RestClient::new(
        RestConfig {
            base_url: rest.url.clone(),
            org_id: rest.org_id.clone(),
            timeout: config.target.timeout,
            budget: scimsync_scim::Budgets::miro_rest(rest.credits_per_minute),
            user_agent: format!("scimsync/{}", env!("CARGO_PKG_VERSION")),
        },
        token,
    )
    .map(Some)
    .map_err(|e| format!("[target.rest]: {e}"))
}

/// What the planner needs of Miro's teams, as this cycle found it.
#[derive(Clone, Debug)]
pub struct TeamSide {
    pub wanted: BTreeMap<String, Vec<String>>,
    pub links: Vec<TeamLink>,
    pub view: TeamView,
    /// `Err(why)`: team assignments cannot be made this cycle; every one is a skip saying why.
    pub access: Result<(), String>,
    pub rest: Option<RestClient>,
}

impl TeamSide {
    pub fn input(&self) -> Option<scimsync_plan::TeamPlanInput<'_>> {
        (!self.wanted.is_empty() || !self.links.is_empty()).then(|| scimsync_plan::TeamPlanInput {
            wanted: &self.wanted,
            links: &self.links,
            view: &self.view,
            access: self.access.as_ref().map(|_| ()).map_err(String::as_str),
        })
    }
}

/// Reads what the cycle needs of Miro's teams, and nothing more: no request when `[teams]`
/// and the team links are empty, nor on an incremental cycle whose team links already hold
/// every assignment `[teams]` asks of the synced groups (they are trusted, as group links
/// are); otherwise the org's teams and, for each team `[teams]` or a link names, its groups.
pub async fn read(
    config: &Config,
    store: &Store,
    desired: &[DesiredGroup],
    model: GroupModel,
    full: bool,
) -> Result<TeamSide, StoreError> {
    let links = store.team_links()?;
    let mut side = TeamSide {
        wanted: config.teams.clone(),
        links,
        view: TeamView::default(),
        access: Ok(()),
        rest: None,
    };
    if side.wanted.is_empty() && side.links.is_empty() {
        return Ok(side);
    }
    if model == GroupModel::Team {
        side.access = Err("group_model is \"team\": the synced groups are teams already".into());
        return Ok(side);
    }
    let rest = match rest_client(config) {
        Ok(Some(rest)) => rest,
        Ok(None) => {
            side.access = Err(
                "sync.toml has no [target.rest] (url, org_id, and token_env or token_file with \
                 a Miro Company Admin's REST token)"
                    .into(),
            );
            return Ok(side);
        }
        Err(why) => {
            side.access = Err(format!("its token cannot be read: {why}"));
            return Ok(side);
        }
    };
    // Every (synced group, team name) `[teams]` asks for has a link: nothing to look up.
    let linked: BTreeSet<(&str, &str)> = side
        .links
        .iter()
        .map(|l| (l.group.as_str(), l.team_name.as_str()))
        .collect();
    let settled = desired.iter().all(|g| {
        side.wanted
            .get(&g.display_name)
            .into_iter()
            .flatten()
            .all(|team| linked.contains(&(g.source_id.as_str(), team.as_str())))
    });
    if !full && settled {
        side.rest = Some(rest);
        return Ok(side);
    }
    match read_view(&rest, &side.wanted, &side.links).await {
        Ok(view) => side.view = view,
        Err(e) => {
            tracing::warn!("reading Miro's teams: {e}");
            side.access = Err(format!("reading Miro's teams failed: {e}"));
        }
    }
    side.rest = Some(rest);
    Ok(side)
}

/// The org's teams, and the groups of each team `[teams]` names or a link holds.
async fn read_view(
    rest: &RestClient,
    wanted: &BTreeMap<String, Vec<String>>,
    links: &[TeamLink],
) -> Result<TeamView, scimsync_executor::ScimError> {
    let teams = rest.list_teams().await?;
    let names: BTreeSet<&str> = wanted.values().flatten().map(String::as_str).collect();
    let ids: BTreeSet<&str> = links.iter().map(|l| l.team_id.as_str()).collect();
    let mut assigned = BTreeMap::new();
    for team in teams
        .iter()
        .filter(|t| names.contains(t.name.as_str()) || ids.contains(t.id.as_str()))
    {
        assigned.insert(team.id.clone(), rest.team_groups(&team.id).await?);
    }
    Ok(TeamView {
        teams,
        assigned,
        complete: true,
    })
}

/// What `scimsync check` says of Miro in 2026: which group model the org answers to (where
/// the API reveals it), the REST credential, and `[teams]` against Miro's teams.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MiroCheck {
    /// sync.toml's `[target] group_model`, if set.
    pub configured: Option<&'static str>,
    /// The model a cycle would use now (sync.toml's, or the store's legacy one).
    pub effective: Option<&'static str>,
    /// The model the org answers to, when the API reveals it.
    pub org: Option<&'static str>,
    /// How that was told, or how to tell.
    pub how: String,
    /// `[target.rest]`: "ok", "not configured", or why not.
    pub rest: String,
    pub teams_visible: Option<usize>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Miro's side of `check` (nothing for another profile). Read-only.
pub async fn check(
    config: &Config,
    client: &scimsync_executor::ScimClient,
    snapshot: &scimsync_model::Snapshot,
) -> MiroCheck {
    let mut out = MiroCheck::default();
    if config.target.profile != ProfileKind::Miro {
        return out;
    }
    out.configured = config.target.group_model.map(GroupModel::as_str);
    match crate::lock::open_store(config).and_then(|store| group_model(config, &store)) {
        Ok(choice) => {
            out.effective = Some(choice.model.as_str());
            out.warnings.extend(choice.warning);
        }
        Err(e) => out.warnings.push(format!("the store cannot be read: {e}")),
    }
    let rest = match rest_client(config) {
        Ok(Some(rest)) => Some(rest),
        Ok(None) => {
            out.rest = "not configured".into();
            None
        }
        Err(why) => {
            out.errors.push(format!("[target.rest]: {why}"));
            None
        }
    };
    // The org's model: SCIM does not say. Miro's REST API does, by the ids: in the user-group
    // model SCIM's groups are its user groups, in the legacy one its teams.
    let how_to_tell = "SCIM does not say which group model an org uses; set [target.rest] \
                       (a Company Admin's REST token) and run check again: it compares the \
                       SCIM groups with Miro's user groups and teams. Without it: if the \
                       groups Miro's SCIM lists are your teams, the org is on the legacy \
                       model (group_model = \"team\")";
    let Some(rest) = rest else {
        out.how = how_to_tell.into();
        return check_teams(config, snapshot, None, out);
    };
    let read = async {
        let scim = client.list_groups().await?;
        let teams = rest.list_teams().await?;
        let user_groups = rest.user_groups().await?;
        Ok::<_, scimsync_executor::ScimError>((scim, teams, user_groups))
    };
    match read.await {
        Ok((scim, teams, user_groups)) => {
            out.rest = format!("ok (org {})", rest.org_id());
            out.teams_visible = Some(teams.len());
            let team_ids: BTreeSet<&str> = teams.iter().map(|t| t.id.as_str()).collect();
            let group_ids: BTreeSet<&str> = user_groups.iter().map(|(id, _)| id.as_str()).collect();
            let in_teams = scim
                .iter()
                .filter(|g| team_ids.contains(g.id.as_str()))
                .count();
            let in_groups = scim
                .iter()
                .filter(|g| group_ids.contains(g.id.as_str()))
                .count();
            (out.org, out.how) = if scim.is_empty() {
                (
                    None,
                    "cannot tell yet: Miro's SCIM shows no group (an org on the legacy model \
                     shows its teams)"
                        .into(),
                )
            } else if in_groups == scim.len() {
                (
                    Some(GroupModel::UserGroup.as_str()),
                    "its SCIM groups are its user groups".into(),
                )
            } else if in_teams == scim.len() {
                (
                    Some(GroupModel::Team.as_str()),
                    "its SCIM groups are its teams".into(),
                )
            } else {
                (
                    None,
                    format!(
                        "cannot tell: of {} SCIM groups, {in_groups} are user groups and \
                         {in_teams} teams",
                        scim.len()
                    ),
                )
            };
            if let (Some(org), Some(effective)) = (out.org, out.effective)
                && org != effective
            {
                out.errors.push(format!(
                    "the org answers to group_model = \"{org}\", but a cycle would use \
                     \"{effective}\": set [target] group_model = \"{org}\""
                ));
            }
            check_teams(config, snapshot, Some(&teams), out)
        }
        Err(e) => {
            out.rest = format!("failed: {e}");
            out.errors.push(format!(
                "[target.rest]: Miro's REST API refused or failed: {e}"
            ));
            out.how = how_to_tell.into();
            check_teams(config, snapshot, None, out)
        }
    }
}

/// `[teams]` against the directory (each entry a synced group) and, when read, Miro's teams.
fn check_teams(
    config: &Config,
    snapshot: &scimsync_model::Snapshot,
    teams: Option<&[scimsync_model::Team]>,
    mut out: MiroCheck,
) -> MiroCheck {
    for (group, names) in &config.teams {
        let synced = snapshot.groups.iter().any(|g| {
            &g.name == group
                && match &config.groups.sync {
                    Some(selectors) => selectors.iter().any(|s| s.selects(g)),
                    None => config.scope.groups.iter().flatten().any(|n| n == &g.name),
                }
        });
        if !synced {
            out.errors.push(format!(
                "[teams] entry {group:?} names no synced directory group ([groups] sync, or \
                 [scope] groups)"
            ));
        }
        let Some(teams) = teams else { continue };
        for name in names {
            match teams.iter().filter(|t| &t.name == name).count() {
                1 => {}
                0 => out.errors.push(format!(
                    "[teams] {group:?}: no Miro team is named {name:?} (scimsync never creates \
                     teams)"
                )),
                n => out.errors.push(format!(
                    "[teams] {group:?}: {n} Miro teams are named {name:?}; rename all but one"
                )),
            }
        }
    }
    if !config.teams.is_empty() && teams.is_none() && config.target.rest.is_none() {
        out.errors.push(
            "[teams] needs [target.rest] (url, org_id, token_env or token_file): team \
             assignment is Miro's REST API, not SCIM"
                .into(),
        );
    }
    out
}
