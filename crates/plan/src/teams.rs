//! Team assignment (`[teams]`): which Miro teams each synced group's user group is assigned
//! to. Runs after the group plan, whose creates, adopts, skips and deletes say which groups
//! exist in the target and by which id. Pure, like the rest of the planner.
//!
//! scimsync takes away only what it gave: an assignment it made (a team link) and no longer
//! wants is undone; one made by hand in Miro is never touched. A team is found by its name as
//! sync.toml writes it, exactly; once assigned, the link keeps the team's id, so a team
//! renamed in Miro keeps its groups.

use scimsync_model::{
    DesiredGroup, GroupLink, Op, ScimId, SourceId, TeamAction, TeamLink, TeamRef, TeamSkipReason,
    TeamView,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What team planning needs besides the group plan.
#[derive(Clone, Copy, Debug)]
pub struct TeamPlanInput<'a> {
    /// `[teams]`: a synced directory group's name → the Miro team names it belongs to.
    pub wanted: &'a BTreeMap<String, Vec<String>>,
    /// The assignments scimsync made (the store's team links).
    pub links: &'a [TeamLink],
    /// The org's teams and their assignments, when read this cycle.
    pub view: &'a TeamView,
    /// `Err(why)`: scimsync cannot reach Miro's REST API (no `[target.rest]`, no token), and
    /// every assignment it would make or undo is a skip saying why.
    pub access: Result<(), &'a str>,
}

/// Where a group is in the target after the group plan: its id (`None` while created in this
/// plan), or why it has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place<'a> {
    At(Option<&'a ScimId>),
    Skipped,
    Deleted,
    Unknown,
}

/// The team ops for `desired` groups, given the group ops planned for them and their links.
pub(crate) fn plan_teams(
    input: &TeamPlanInput<'_>,
    desired: &[DesiredGroup],
    group_links: &[GroupLink],
    group_ops: &[Op],
) -> Vec<Op> {
    let mut place: HashMap<&SourceId, Place<'_>> = group_links
        .iter()
        .map(|l| (&l.source_id, Place::At(Some(&l.target_id))))
        .collect();
    for op in group_ops {
        let (source, at) = match op {
            Op::GroupCreate { source_id, .. } => (source_id, Place::At(None)),
            Op::GroupAdopt {
                source_id,
                target_id,
                ..
            } => (source_id, Place::At(Some(target_id))),
            Op::GroupSkip {
                source_id,
                target_id: None,
                ..
            } => (source_id, Place::Skipped),
            Op::GroupDelete { source_id, .. } => (source_id, Place::Deleted),
            _ => continue,
        };
        place.insert(source, at);
    }
    let mut linked: BTreeMap<&SourceId, Vec<&TeamLink>> = BTreeMap::new();
    for link in input.links {
        linked.entry(&link.group).or_default().push(link);
    }
    let mut ops = Vec::new();
    let mut desired: Vec<&DesiredGroup> = desired.iter().collect();
    desired.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    let mut planned: BTreeSet<&SourceId> = BTreeSet::new();
    for group in desired {
        planned.insert(&group.source_id);
        let wanted: Vec<&str> = {
            let mut names: Vec<&str> = input
                .wanted
                .get(&group.display_name)
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            names.sort_unstable();
            names.dedup();
            names
        };
        let links = linked
            .get(&group.source_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let at = place
            .get(&group.source_id)
            .copied()
            .unwrap_or(Place::Unknown);
        let op =
            |team: TeamRef, action: TeamAction, group_id: Option<&ScimId>| Op::TeamAssignment {
                source_id: group.source_id.clone(),
                group_id: group_id.cloned(),
                display_name: group.display_name.clone(),
                team,
                action,
            };
        let group_id = match at {
            Place::At(id) => id,
            Place::Skipped | Place::Unknown => {
                for name in &wanted {
                    let team = TeamRef {
                        id: None,
                        name: (*name).to_owned(),
                    };
                    let reason = TeamSkipReason::GroupNotInTarget;
                    ops.push(op(team, TeamAction::Skip { reason }, None));
                }
                continue;
            }
            Place::Deleted => continue,
        };
        for name in &wanted {
            let link = links.iter().find(|l| l.team_name == *name);
            if let Err(why) = input.access {
                if link.is_none() {
                    let team = TeamRef {
                        id: None,
                        name: (*name).to_owned(),
                    };
                    let reason = TeamSkipReason::NoRestAccess {
                        why: why.to_owned(),
                    };
                    ops.push(op(team, TeamAction::Skip { reason }, group_id));
                }
                continue;
            }
            let assigned = |team: &scimsync_model::TeamId| {
                group_id.is_some_and(|g| {
                    input
                        .view
                        .assigned
                        .get(team)
                        .is_some_and(|groups| groups.contains(g))
                })
            };
            if let Some(link) = link {
                let team = TeamRef {
                    id: Some(link.team_id.clone()),
                    name: link.team_name.clone(),
                };
                // An incremental cycle trusts the link; a read shows whether the assignment
                // is still there (taken away in Miro: made again).
                let still_there = !input.view.complete
                    || assigned(&link.team_id)
                    || !input.view.teams.iter().any(|t| t.id == link.team_id);
                if !still_there {
                    ops.push(op(team, TeamAction::Assign, group_id));
                    continue;
                }
                if input.view.complete && !input.view.teams.iter().any(|t| t.id == link.team_id) {
                    // The team is gone from Miro: nothing to keep, nothing to undo.
                    let reason = TeamSkipReason::NoSuchTeam;
                    ops.push(op(team, TeamAction::Skip { reason }, group_id));
                }
                continue;
            }
            let named: Vec<&scimsync_model::Team> = input
                .view
                .teams
                .iter()
                .filter(|t| t.name == *name)
                .collect();
            match named.as_slice() {
                [team] => {
                    let action = if assigned(&team.id) {
                        TeamAction::Adopt
                    } else {
                        TeamAction::Assign
                    };
                    let team = TeamRef {
                        id: Some(team.id.clone()),
                        name: (*name).to_owned(),
                    };
                    ops.push(op(team, action, group_id));
                }
                [] => {
                    let team = TeamRef {
                        id: None,
                        name: (*name).to_owned(),
                    };
                    let reason = TeamSkipReason::NoSuchTeam;
                    ops.push(op(team, TeamAction::Skip { reason }, group_id));
                }
                many => {
                    let team = TeamRef {
                        id: None,
                        name: (*name).to_owned(),
                    };
                    let reason = TeamSkipReason::Ambiguous { count: many.len() };
                    ops.push(op(team, TeamAction::Skip { reason }, group_id));
                }
            }
        }
        // Assignments scimsync made that `[teams]` no longer asks for.
        for link in links
            .iter()
            .filter(|l| !wanted.contains(&l.team_name.as_str()))
        {
            ops.push(unassign(input, link, &group.display_name, group_id));
        }
    }
    // Groups no longer synced but still in the target (a delete takes its teams with it).
    for (source, links) in &linked {
        if planned.contains(source) {
            continue;
        }
        let Some(Place::At(Some(group_id))) = place.get(source).copied() else {
            continue;
        };
        let name = group_links
            .iter()
            .find(|l| &l.source_id == *source)
            .map(|l| l.display_name.as_str())
            .unwrap_or_default();
        for link in links {
            ops.push(unassign(input, link, name, Some(group_id)));
        }
    }
    ops
}

/// Undoing `link`, or (no REST access) saying it cannot be.
fn unassign(
    input: &TeamPlanInput<'_>,
    link: &TeamLink,
    display_name: &str,
    group_id: Option<&ScimId>,
) -> Op {
    let team = TeamRef {
        id: Some(link.team_id.clone()),
        name: link.team_name.clone(),
    };
    let action = match input.access {
        Ok(()) => TeamAction::Unassign,
        Err(why) => TeamAction::Skip {
            reason: TeamSkipReason::NoRestAccess {
                why: why.to_owned(),
            },
        },
    };
    Op::TeamAssignment {
        source_id: link.group.clone(),
        group_id: group_id.cloned(),
        display_name: display_name.to_owned(),
        team,
        action,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_model::{Team, TeamId};

    fn group(id: &str, name: &str) -> DesiredGroup {
        DesiredGroup {
            source_id: SourceId::new(id),
            display_name: name.into(),
            members: vec![],
        }
    }
    fn glink(id: &str, name: &str) -> GroupLink {
        GroupLink {
            source_id: SourceId::new(id),
            target_id: ScimId::new(format!("ug-{id}")),
            display_name: name.into(),
            members: vec![],
        }
    }
    fn tlink(group: &str, team: &str, name: &str) -> TeamLink {
        TeamLink {
            group: SourceId::new(group),
            team_id: TeamId::new(team),
            team_name: name.into(),
        }
    }
    fn team(id: &str, name: &str) -> Team {
        Team {
            id: TeamId::new(id),
            name: name.into(),
        }
    }
    fn actions(ops: &[Op]) -> Vec<(String, String, String)> {
        ops.iter()
            .filter_map(|op| match op {
                Op::TeamAssignment {
                    source_id,
                    team,
                    action,
                    ..
                } => Some((
                    source_id.to_string(),
                    team.name.clone(),
                    match action {
                        TeamAction::Assign => "assign".to_owned(),
                        TeamAction::Unassign => "unassign".to_owned(),
                        TeamAction::Adopt => "adopt".to_owned(),
                        TeamAction::Skip { reason } => format!("skip: {reason}"),
                    },
                )),
                _ => None,
            })
            .collect()
    }

    fn wanted(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        entries
            .iter()
            .map(|(g, teams)| {
                (
                    (*g).to_owned(),
                    teams.iter().map(|t| (*t).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn teams_are_found_by_name_assigned_adopted_and_unassigned() {
        let wanted = wanted(&[("Eng", &["Product", "Platform", "Nope"])]);
        let links = [tlink("g1", "t-old", "Old")];
        let mut view = TeamView {
            teams: vec![
                team("t-prod", "Product"),
                team("t-plat", "Platform"),
                team("t-old", "Old"),
            ],
            assigned: BTreeMap::new(),
            complete: true,
        };
        view.assigned
            .insert(TeamId::new("t-plat"), vec![ScimId::new("ug-g1")]);
        view.assigned
            .insert(TeamId::new("t-old"), vec![ScimId::new("ug-g1")]);
        let input = TeamPlanInput {
            wanted: &wanted,
            links: &links,
            view: &view,
            access: Ok(()),
        };
        let ops = plan_teams(&input, &[group("g1", "Eng")], &[glink("g1", "Eng")], &[]);
        let got = actions(&ops);
        assert_eq!(got[0].0, "g1");
        assert!(
            got[0].2.starts_with("skip: no Miro team has this name"),
            "{got:?}"
        );
        assert_eq!(
            got[1..],
            [
                ("g1".into(), "Platform".into(), "adopt".into()),
                ("g1".into(), "Product".into(), "assign".into()),
                ("g1".into(), "Old".into(), "unassign".into()),
            ]
        );
        // Without REST access nothing is sent: each assignment not made yet is a skip saying
        // why, and what should be undone too.
        let none = TeamPlanInput {
            access: Err("sync.toml has no [target.rest]"),
            view: &TeamView::default(),
            ..input
        };
        let ops = plan_teams(&none, &[group("g1", "Eng")], &[glink("g1", "Eng")], &[]);
        assert_eq!(ops.len(), 4);
        assert!(
            actions(&ops)
                .iter()
                .all(|(_, _, a)| a.contains("[target.rest]")),
            "{ops:?}"
        );
    }

    #[test]
    fn a_linked_assignment_is_trusted_until_a_read_says_otherwise() {
        let wanted = wanted(&[("Eng", &["Product"])]);
        let links = [tlink("g1", "t-prod", "Product")];
        let incremental = TeamView::default();
        let input = TeamPlanInput {
            wanted: &wanted,
            links: &links,
            view: &incremental,
            access: Ok(()),
        };
        let groups = [group("g1", "Eng")];
        assert!(plan_teams(&input, &groups, &[glink("g1", "Eng")], &[]).is_empty());
        // Read: taken away by hand in Miro, and the team renamed there: assigned again, by id.
        let read = TeamView {
            teams: vec![team("t-prod", "Product (renamed)")],
            assigned: BTreeMap::new(),
            complete: true,
        };
        let input = TeamPlanInput {
            view: &read,
            ..input
        };
        let ops = plan_teams(&input, &groups, &[glink("g1", "Eng")], &[]);
        assert!(
            matches!(&ops[..], [Op::TeamAssignment { team, action: TeamAction::Assign, .. }] if team.id == Some(TeamId::new("t-prod"))),
            "{ops:?}"
        );
    }

    #[test]
    fn a_new_group_is_assigned_once_created_and_a_deleted_one_needs_no_unassign() {
        let wanted = wanted(&[("Eng", &["Product"])]);
        let view = TeamView {
            teams: vec![team("t-prod", "Product")],
            assigned: BTreeMap::new(),
            complete: true,
        };
        let links = [tlink("g2", "t-prod", "Product")];
        let input = TeamPlanInput {
            wanted: &wanted,
            links: &links,
            view: &view,
            access: Ok(()),
        };
        let group_ops = [
            Op::GroupCreate {
                source_id: SourceId::new("g1"),
                display_name: "Eng".into(),
                members: vec![],
            },
            Op::GroupDelete {
                source_id: SourceId::new("g2"),
                target_id: ScimId::new("ug-g2"),
                display_name: "Old".into(),
                reason: Default::default(),
            },
        ];
        let ops = plan_teams(
            &input,
            &[group("g1", "Eng")],
            &[glink("g2", "Old")],
            &group_ops,
        );
        assert!(
            matches!(
                &ops[..],
                [Op::TeamAssignment {
                    group_id: None,
                    action: TeamAction::Assign,
                    ..
                }]
            ),
            "{ops:?}"
        );
        // Not deleted (the group is no longer synced but stays): its assignment is undone.
        let ops = plan_teams(
            &input,
            &[group("g1", "Eng")],
            &[glink("g2", "Old")],
            &group_ops[..1],
        );
        assert_eq!(
            actions(&ops)[1],
            ("g2".into(), "Product".into(), "unassign".into())
        );
    }
}
