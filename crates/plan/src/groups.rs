//! Group planning: link directory groups to target groups (by link, else by displayName), and
//! diff memberships. Pure, like the rest of the planner; runs after the user plan, whose creates,
//! adopts and deprovisions decide which members can be added and which are leaving.

use crate::links::{LinkIndex, Linked};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rayon::prelude::*;
use scimsync_model::{
    AttrValue, DesiredGroup, GroupDeleteReason, GroupLink, GroupSkipReason, GroupView, Link,
    Member, NameMatch, Op, Plan, ScimId, SkipReason, SourceId, TargetGroup, paths,
};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// Everything group planning needs besides the user plan.
#[derive(Clone, Copy, Debug)]
pub struct GroupPlanInput<'a> {
    pub desired: &'a [DesiredGroup],
    pub links: &'a [GroupLink],
    /// Listed target groups; `members` filled for those read (or from the link's last push).
    pub target: &'a GroupView,
    pub user_links: &'a [Link],
    /// Directory users held untouched (invalid records): their memberships are left alone.
    pub held: &'a [SourceId],
    /// Whether the target can create and delete groups (user_group model, or a generic SP).
    pub can_create: bool,
    /// Whether a group is created with its members in the POST (else created empty and then
    /// PATCHed).
    pub members_on_create: bool,
    pub name_match: NameMatch,
    /// The ids of every directory group, synced or not, sorted: a linked group no longer
    /// desired but still among them is "no longer synced", not "gone from the directory".
    pub directory_groups: &'a [SourceId],
    /// The longest group name the target keeps (Miro truncates a user group's at 60, and a
    /// truncated name never matches again): a longer one is skipped, saying so.
    pub max_name_chars: Option<usize>,
    /// `[teams]`: the Miro teams each group's user group is assigned to (`None`: not used).
    pub teams: Option<crate::teams::TeamPlanInput<'a>>,
}

/// Who each linked user is on the target, and the reverse: what group planning knows before
/// the user plan (the live links, as the user plan takes them: shared with it on an
/// incremental cycle, otherwise indexed while the users are planned), then what the user plan
/// changes of it.
pub(crate) struct UserTargets<'a> {
    links: &'a [Link],
    index: Cow<'a, LinkIndex>,
    /// Sources the user plan adopts or creates: their target user (`None` until created)
    /// and userName, in place of their link's.
    moved: HashMap<&'a SourceId, (Option<&'a ScimId>, &'a str)>,
    /// Target users whose source changes with the user plan (`None`: nobody's any more).
    reowned: HashMap<&'a ScimId, Option<&'a SourceId>>,
}

impl<'a> UserTargets<'a> {
    pub(crate) fn new(user_links: &'a [Link]) -> Self {
        Self::with_index(user_links, Cow::Owned(LinkIndex::new(user_links)))
    }

    /// `index` was built over `user_links`.
    pub(crate) fn with_index(user_links: &'a [Link], index: Cow<'a, LinkIndex>) -> Self {
        UserTargets {
            links: user_links,
            index,
            moved: HashMap::new(),
            reowned: HashMap::new(),
        }
    }

    fn linked(&self) -> Linked<'_> {
        Linked::built_over(self.links, &self.index)
    }

    /// Whether `source`'s linked target user is deactivated (as last pushed or read). A user
    /// the plan adopts or creates is not known here: the caller knows whether it stays
    /// inactive.
    fn linked_inactive(&self, source: &SourceId) -> bool {
        if !self.moved.is_empty() && self.moved.contains_key(source) {
            return false;
        }
        self.linked()
            .live(source.as_str())
            .and_then(|at| self.links.get(at))
            .is_some_and(|link| !link.active)
    }

    /// `source`'s target user (`None` while it is only to be created) and userName.
    fn target_of(&self, source: &SourceId) -> Option<(Option<&'a ScimId>, &'a str)> {
        if !self.moved.is_empty()
            && let Some(moved) = self.moved.get(source)
        {
            return Some(*moved);
        }
        let link = self.links.get(self.linked().live(source.as_str())?)?;
        Some((Some(&link.target_id), link.user_name.as_str()))
    }

    /// The source that is `target`.
    fn source_of(&self, target: &ScimId) -> Option<&'a SourceId> {
        if !self.reowned.is_empty()
            && let Some(owner) = self.reowned.get(target)
        {
            return *owner;
        }
        let link = self.links.get(self.linked().claimant(target.as_str())?)?;
        Some(&link.source_id)
    }

    /// `source`'s target user, if that user is `source`'s alone.
    fn own_target(&self, source: &SourceId) -> Option<&'a ScimId> {
        let target = self.target_of(source)?.0?;
        // A live link's target user is claimed by that link alone: only the user plan's
        // moves can change that, and they are few.
        (self.reowned.is_empty() || self.source_of(target) == Some(source)).then_some(target)
    }

    /// `source` is (or, after the provision phase, will be) `target`, no longer what it was.
    fn becomes(&mut self, source: &'a SourceId, target: Option<&'a ScimId>, user_name: &'a str) {
        if let Some((Some(old), _)) = self.target_of(source)
            && self.source_of(old) == Some(source)
        {
            self.reowned.insert(old, None);
        }
        self.moved.insert(source, (target, user_name));
        if let Some(target) = target {
            self.reowned.insert(target, Some(source));
        }
    }
}

/// The group ops for `input`, given the user plan they follow. The desired groups' members
/// are taken to be active directory users (as mapping builds them); [`crate::plan_with_groups`]
/// also knows which desired users are suspended.
pub fn plan_groups(input: &GroupPlanInput<'_>, users: &Plan) -> Vec<Op> {
    plan_groups_with(
        input,
        UserTargets::new(input.user_links),
        users,
        &HashSet::new(),
    )
}

/// [`plan_groups`], with the user links already indexed, and the desired users that are
/// suspended (`inactive`): never added to a group, whatever a group lists.
pub(crate) fn plan_groups_with<'a>(
    input: &GroupPlanInput<'a>,
    mut targets: UserTargets<'a>,
    users: &'a Plan,
    inactive: &HashSet<&'a SourceId>,
) -> Vec<Op> {
    let mut ops = Vec::new();
    // Who is (or will be, after this plan's provision phase) which target user; who the plan
    // deactivates or deletes (never added to a group: adding a deactivated or deleted user
    // to a Miro team or user group reactivates or recreates them); who it reactivates.
    let mut leaving: HashSet<&SourceId> = HashSet::new();
    let mut reactivated: HashSet<&SourceId> = HashSet::new();
    let mut guests: HashMap<&SourceId, &str> = HashMap::new();
    for op in &users.ops {
        match op {
            Op::Adopt {
                source_id,
                target_id,
                user_name,
            } => targets.becomes(source_id, Some(target_id), user_name),
            Op::Create {
                source_id,
                user_name,
                ..
            } => targets.becomes(source_id, None, user_name),
            Op::Delete { source_id, .. } | Op::Deactivate { source_id, .. } => {
                leaving.insert(source_id);
            }
            Op::Update {
                source_id, changes, ..
            } if changes.iter().any(|c| {
                c.path == paths::ACTIVE
                    && c.new.as_ref().and_then(AttrValue::as_text) == Some("true")
            }) =>
            {
                reactivated.insert(source_id);
            }
            Op::Skip {
                source_id,
                user_name,
                reason: SkipReason::TargetGuest,
            } => {
                guests.insert(source_id, user_name);
            }
            _ => {}
        }
    }
    let mut blocked: HashSet<&SourceId> = inactive.clone();
    blocked.extend(guests.keys().copied());
    let held: HashSet<&SourceId> = input.held.iter().collect();
    let by_id: HashMap<&ScimId, &TargetGroup> =
        input.target.groups.iter().map(|g| (&g.id, g)).collect();
    let mut by_name: HashMap<String, Vec<&TargetGroup>> = HashMap::new();
    for g in &input.target.groups {
        by_name
            .entry(input.name_match.key(&g.display_name))
            .or_default()
            .push(g);
    }
    let links: BTreeMap<&SourceId, &GroupLink> =
        input.links.iter().map(|l| (&l.source_id, l)).collect();
    let linked_targets: HashMap<&ScimId, &SourceId> = input
        .links
        .iter()
        .map(|l| (&l.target_id, &l.source_id))
        .collect();

    let mut seen_names: HashMap<String, &SourceId> = HashMap::new();
    let mut desired: Vec<&DesiredGroup> = input.desired.iter().collect();
    desired.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    let desired_ids: HashSet<&SourceId> = desired.iter().map(|g| &g.source_id).collect();
    let mut memberships = Vec::with_capacity(desired.len());
    for group in desired {
        let skip = |reason| Op::GroupSkip {
            source_id: group.source_id.clone(),
            display_name: group.display_name.clone(),
            target_id: None,
            reason,
        };
        if let Some(max) = input.max_name_chars {
            let chars = group.display_name.chars().count();
            if chars > max {
                ops.push(skip(GroupSkipReason::NameTooLong { chars, max }));
                continue;
            }
        }
        // A guest or external user of the target is never added (Miro would make them an
        // internal user with a Full licence): said once per group.
        if !guests.is_empty() {
            for (member, user_name) in group
                .members
                .iter()
                .filter_map(|m| guests.get(m).map(|name| (m, *name)))
            {
                ops.push(Op::Skip {
                    source_id: member.clone(),
                    user_name: user_name.to_owned(),
                    reason: SkipReason::GuestNotAdded {
                        group: group.display_name.clone(),
                    },
                });
            }
        }
        let key = input.name_match.key(&group.display_name);
        if let Some(other) = seen_names.insert(key.clone(), &group.source_id) {
            ops.push(skip(GroupSkipReason::DuplicateName {
                other: other.clone(),
            }));
            continue;
        }
        // Linked and still there (or the view is not complete enough to say otherwise).
        let linked = links
            .get(&group.source_id)
            .and_then(|l| match by_id.get(&l.target_id) {
                Some(t) => Some((
                    l.target_id.clone(),
                    t.display_name.clone(),
                    t.members.as_deref(),
                )),
                None if !input.target.complete => Some((
                    l.target_id.clone(),
                    l.display_name.clone(),
                    Some(&l.members[..]),
                )),
                None => None,
            });
        let (target_id, current): (Option<ScimId>, &[ScimId]) = match linked {
            Some((id, name, members)) => {
                if name != group.display_name {
                    ops.push(Op::GroupRename {
                        source_id: group.source_id.clone(),
                        target_id: id.clone(),
                        old: name,
                        display_name: group.display_name.clone(),
                    });
                }
                let members = members
                    .or_else(|| links.get(&group.source_id).map(|l| &l.members[..]))
                    .unwrap_or_default();
                (Some(id), members)
            }
            None => {
                let candidates: Vec<&TargetGroup> = by_name
                    .get(&key)
                    .map(|v| {
                        v.iter()
                            .copied()
                            .filter(|t| {
                                linked_targets.get(&t.id).is_none_or(|s| {
                                    *s == &group.source_id || !desired_ids.contains(s)
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                match candidates.as_slice() {
                    [t] => {
                        ops.push(Op::GroupAdopt {
                            source_id: group.source_id.clone(),
                            target_id: t.id.clone(),
                            display_name: t.display_name.clone(),
                        });
                        if t.display_name != group.display_name {
                            ops.push(Op::GroupRename {
                                source_id: group.source_id.clone(),
                                target_id: t.id.clone(),
                                old: t.display_name.clone(),
                                display_name: group.display_name.clone(),
                            });
                        }
                        (Some(t.id.clone()), t.members.as_deref().unwrap_or_default())
                    }
                    [] => {
                        let taken = by_name.get(&key).and_then(|v| {
                            v.iter().find_map(|t| linked_targets.get(&t.id).copied())
                        });
                        if let Some(other) = taken {
                            ops.push(skip(GroupSkipReason::NameTakenByLinked {
                                other: other.clone(),
                            }));
                            continue;
                        }
                        if !input.can_create {
                            ops.push(skip(GroupSkipReason::NoMatchingTeam));
                            continue;
                        }
                        ops.push(Op::GroupCreate {
                            source_id: group.source_id.clone(),
                            display_name: group.display_name.clone(),
                            members: Vec::new(),
                        });
                        (None, &[][..])
                    }
                    many => {
                        ops.push(skip(GroupSkipReason::Ambiguous { count: many.len() }));
                        continue;
                    }
                }
            }
        };
        // Diffed below, all groups at once: each is its own work.
        memberships.push((ops.len(), group, target_id, current));
    }
    let diffs: Vec<(usize, Option<Op>)> = memberships
        .into_par_iter()
        .map(|(at, group, target_id, current)| {
            let users = Users {
                targets: &targets,
                held: &held,
                leaving: &leaving,
                blocked: &blocked,
                reactivated: &reactivated,
            };
            let op = membership(group, target_id, current, &users);
            (at, op)
        })
        .collect();
    // Each membership op goes where the loop above reached its group.
    let mut merged = Vec::with_capacity(ops.len() + diffs.len());
    let mut diffs = diffs.into_iter().peekable();
    for (at, op) in ops.into_iter().enumerate() {
        while let Some((_, diff)) = diffs.next_if(|(before, _)| *before == at) {
            merged.extend(diff);
        }
        merged.push(op);
    }
    merged.extend(diffs.filter_map(|(_, diff)| diff));
    let mut ops = merge_group_writes(merged, input.members_on_create);

    // Linked groups no longer desired.
    for (source_id, link) in links {
        if desired_ids.contains(source_id) {
            continue;
        }
        if input.target.complete && !by_id.contains_key(&link.target_id) {
            continue;
        }
        let still_in_directory = input.directory_groups.binary_search(source_id).is_ok();
        if input.can_create {
            ops.push(Op::GroupDelete {
                source_id: source_id.clone(),
                target_id: link.target_id.clone(),
                display_name: link.display_name.clone(),
                reason: if still_in_directory {
                    GroupDeleteReason::NoLongerSynced
                } else {
                    GroupDeleteReason::GoneFromDirectory
                },
            });
        } else {
            ops.push(Op::GroupSkip {
                source_id: source_id.clone(),
                display_name: link.display_name.clone(),
                target_id: Some(link.target_id.clone()),
                reason: if still_in_directory {
                    GroupSkipReason::TeamNoLongerSynced
                } else {
                    GroupSkipReason::TeamNotDeletable
                },
            });
        }
    }
    if let Some(teams) = &input.teams {
        let team_ops = crate::teams::plan_teams(teams, input.desired, input.links, &ops);
        ops.extend(team_ops);
    }
    ops
}

/// One write per group where one can do: a new group's members ride in its POST (where the
/// target takes them), and a rename rides in the membership PATCH of the same group. The ops
/// stay where the first of them was, so the order of groups is unchanged.
fn merge_group_writes(ops: Vec<Op>, members_on_create: bool) -> Vec<Op> {
    let mut creates: HashMap<SourceId, usize> = HashMap::new();
    let mut renames: HashMap<SourceId, usize> = HashMap::new();
    let mut out: Vec<Option<Op>> = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::GroupCreate { ref source_id, .. } => {
                creates.insert(source_id.clone(), out.len());
                out.push(Some(op));
            }
            Op::GroupRename { ref source_id, .. } => {
                renames.insert(source_id.clone(), out.len());
                out.push(Some(op));
            }
            Op::GroupMembers {
                source_id,
                target_id,
                display_name,
                add,
                remove,
                renamed_from,
            } => {
                if members_on_create
                    && target_id.is_none()
                    && remove.is_empty()
                    && let Some(Some(Op::GroupCreate { members, .. })) =
                        creates.get(&source_id).and_then(|&at| out.get_mut(at))
                {
                    *members = add;
                    continue;
                }
                let renamed_from = match renames.get(&source_id).copied() {
                    Some(at) => match out.get_mut(at).and_then(Option::take) {
                        Some(Op::GroupRename { old, .. }) => Some(old),
                        other => {
                            // Not a rename after all: leave it where it was.
                            if let Some(slot) = out.get_mut(at) {
                                *slot = other;
                            }
                            renamed_from
                        }
                    },
                    None => renamed_from,
                };
                out.push(Some(Op::GroupMembers {
                    source_id,
                    target_id,
                    display_name,
                    add,
                    remove,
                    renamed_from,
                }));
            }
            other => out.push(Some(other)),
        }
    }
    out.into_iter().flatten().collect()
}

/// Adds: desired members that are (or will be) target users and not members yet. Removes:
/// current members scimsync manages (linked users) that are no longer desired. Members the
/// target holds but scimsync does not manage are never touched.
fn membership(
    group: &DesiredGroup,
    target_id: Option<ScimId>,
    current: &[ScimId],
    users: &Users<'_, '_>,
) -> Option<Op> {
    if settled(group, current, users) {
        return None;
    }
    membership_diff(group, target_id, current, users)
}

/// Who the members are, as the membership diff sees them.
struct Users<'u, 'a> {
    targets: &'u UserTargets<'a>,
    held: &'u HashSet<&'a SourceId>,
    /// Deactivated or deleted by the user plan.
    leaving: &'u HashSet<&'a SourceId>,
    /// Never added: suspended in the directory, or a guest of the target.
    blocked: &'u HashSet<&'a SourceId>,
    /// Reactivated by the user plan (before the membership phase).
    reactivated: &'u HashSet<&'a SourceId>,
}

impl Users<'_, '_> {
    /// Whether adding `source` to a group may be sent this cycle: not deactivated, being
    /// deactivated or deleted (the add would reactivate or recreate them), not a guest.
    fn can_add(&self, source: &SourceId) -> bool {
        !self.held.contains(source)
            && !self.leaving.contains(source)
            && !self.blocked.contains(source)
            && (!self.targets.linked_inactive(source) || self.reactivated.contains(source))
    }
}

/// `membership` worked out in full.
fn membership_diff(
    group: &DesiredGroup,
    target_id: Option<ScimId>,
    current: &[ScimId],
    users: &Users<'_, '_>,
) -> Option<Op> {
    let Users {
        targets,
        held,
        leaving,
        ..
    } = users;
    let want: BTreeSet<&SourceId> = group
        .members
        .iter()
        .filter(|s| !leaving.contains(s))
        .collect();
    let have: BTreeMap<&SourceId, &ScimId> = current
        .iter()
        .filter_map(|t| targets.source_of(t).map(|s| (s, t)))
        .collect();
    let add: Vec<Member> = want
        .iter()
        .filter(|s| !have.contains_key(*s) && users.can_add(s))
        .filter_map(|s| {
            targets.target_of(s).map(|(t, name)| Member {
                source_id: (*s).clone(),
                user_name: name.to_owned(),
                target_id: t.cloned(),
            })
        })
        .collect();
    let remove: Vec<Member> = have
        .iter()
        .filter(|(s, _)| !want.contains(*s) && !held.contains(*s))
        .map(|(s, t)| Member {
            source_id: (*s).clone(),
            user_name: targets
                .target_of(s)
                .map(|(_, n)| n.to_owned())
                .unwrap_or_default(),
            target_id: Some((*t).clone()),
        })
        .collect();
    if add.is_empty() && remove.is_empty() {
        return None;
    }
    Some(Op::GroupMembers {
        source_id: group.source_id.clone(),
        target_id,
        display_name: group.display_name.clone(),
        add,
        remove,
        renamed_from: None,
    })
}

/// Whether a group needs no membership change, told the cheap way that holds in a steady
/// state: it has as many members as it should, and each member it should have is a linked
/// user (not held, not leaving) whose target user is one of them and is that user's alone.
/// Those targets are then distinct and all of `current`, so the diff would be empty. `false`
/// means only "not told this way": `membership` works it out.
fn settled(group: &DesiredGroup, current: &[ScimId], users: &Users<'_, '_>) -> bool {
    group.members.len() == current.len()
        && current.is_sorted()
        && group.members.iter().all(|s| {
            let Some(t) = users.targets.own_target(s) else {
                return false;
            };
            !users.held.contains(s)
                && !users.leaving.contains(s)
                && current.binary_search(t).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_model::{Attrs, fingerprint};

    fn link(s: &str) -> Link {
        Link {
            source_id: SourceId::new(s),
            target_id: ScimId::new(format!("t{s}")),
            user_name: format!("{s}@x.com"),
            active: true,
            attrs: Attrs::new(),
            hash: fingerprint(&format!("{s}@x.com"), true, &Attrs::new()),
        }
    }
    fn group(id: &str, name: &str, members: &[&str]) -> DesiredGroup {
        DesiredGroup {
            source_id: SourceId::new(id),
            display_name: name.into(),
            members: members.iter().map(|m| SourceId::new(*m)).collect(),
        }
    }
    fn target(id: &str, name: &str, members: &[&str]) -> TargetGroup {
        TargetGroup {
            id: ScimId::new(id),
            display_name: name.into(),
            members: Some(
                members
                    .iter()
                    .map(|m| ScimId::new(format!("t{m}")))
                    .collect(),
            ),
        }
    }
    fn run(
        desired: &[DesiredGroup],
        targets: Vec<TargetGroup>,
        links: &[GroupLink],
        users: &Plan,
        can_create: bool,
    ) -> Vec<Op> {
        run_with(desired, targets, links, users, can_create, false)
    }
    fn run_with(
        desired: &[DesiredGroup],
        targets: Vec<TargetGroup>,
        links: &[GroupLink],
        users: &Plan,
        can_create: bool,
        members_on_create: bool,
    ) -> Vec<Op> {
        let view = GroupView {
            groups: targets,
            complete: true,
        };
        let user_links = [link("u1"), link("u2"), link("u3")];
        plan_groups(
            &GroupPlanInput {
                desired,
                links,
                target: &view,
                user_links: &user_links,
                held: &[],
                can_create,
                members_on_create,
                name_match: NameMatch::Exact,
                directory_groups: &[],
                max_name_chars: None,
                teams: None,
            },
            users,
        )
    }
    fn members(ops: &[Op]) -> Vec<(String, Vec<String>, Vec<String>)> {
        ops.iter()
            .filter_map(|op| match op {
                Op::GroupMembers {
                    display_name,
                    add,
                    remove,
                    ..
                } => Some((
                    display_name.clone(),
                    add.iter().map(|m| m.source_id.to_string()).collect(),
                    remove.iter().map(|m| m.source_id.to_string()).collect(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn moving_a_user_is_one_add_and_one_remove() {
        let desired = [group("g1", "A", &["u1"]), group("g2", "B", &["u2", "u1"])];
        let targets = vec![target("1", "A", &["u1", "u2"]), target("2", "B", &["u2"])];
        let ops = run(&desired, targets, &[], &Plan::default(), false);
        assert_eq!(
            members(&ops),
            vec![
                ("A".into(), vec![], vec!["u2".into()]),
                ("B".into(), vec!["u1".into()], vec![]),
            ]
        );
        assert_eq!(
            ops.iter()
                .filter(|o| matches!(o, Op::GroupAdopt { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn unmanaged_members_stay_and_equal_groups_need_nothing() {
        let desired = [group("g1", "A", &["u1"])];
        let mut t = target("1", "A", &["u1"]);
        if let Some(m) = t.members.as_mut() {
            m.push(ScimId::new("someone-else"));
        }
        let links = [GroupLink {
            source_id: SourceId::new("g1"),
            target_id: ScimId::new("1"),
            display_name: "A".into(),
            members: vec![],
        }];
        assert!(run(&desired, vec![t], &links, &Plan::default(), false).is_empty());
    }

    #[test]
    fn users_created_in_the_plan_are_added_unresolved() {
        let users = Plan {
            ops: vec![Op::Create {
                source_id: SourceId::new("n1"),
                user_name: "n1@x.com".into(),
                attrs: Attrs::new(),
            }],
        };
        let ops = run(
            &[group("g1", "A", &["n1"])],
            vec![target("1", "A", &[])],
            &[],
            &users,
            false,
        );
        let Some(Op::GroupMembers { add, .. }) = ops.last() else {
            panic!("no membership op: {ops:?}");
        };
        assert_eq!(add.len(), 1);
        assert_eq!(add[0].target_id, None);
    }

    #[test]
    fn a_missing_team_is_skipped_and_a_user_group_created() {
        let desired = [group("g1", "A", &["u1"])];
        let ops = run(&desired, vec![], &[], &Plan::default(), false);
        assert!(matches!(
            ops.as_slice(),
            [Op::GroupSkip {
                reason: GroupSkipReason::NoMatchingTeam,
                ..
            }]
        ));
        let ops = run(&desired, vec![], &[], &Plan::default(), true);
        assert!(matches!(ops[0], Op::GroupCreate { .. }));
        assert!(matches!(&ops[1], Op::GroupMembers { target_id: None, add, .. } if add.len() == 1));
    }

    #[test]
    fn a_new_group_carries_its_members_where_the_target_takes_them() {
        let users = Plan {
            ops: vec![Op::Create {
                source_id: SourceId::new("n1"),
                user_name: "n1@x.com".into(),
                attrs: Attrs::new(),
            }],
        };
        let desired = [group("g1", "A", &["u1", "n1"])];
        let ops = run_with(&desired, vec![], &[], &users, true, true);
        let [Op::GroupCreate { members, .. }] = ops.as_slice() else {
            panic!("one create, no membership PATCH: {ops:?}");
        };
        let ids: Vec<&str> = members.iter().map(|m| m.source_id.as_str()).collect();
        assert_eq!(ids, ["n1", "u1"]);
        assert_eq!(members[0].target_id, None, "created in the same plan");
        // Where it does not, the create is empty and the members follow.
        let ops = run_with(&desired, vec![], &[], &users, true, false);
        assert!(matches!(&ops[0], Op::GroupCreate { members, .. } if members.is_empty()));
        assert!(matches!(&ops[1], Op::GroupMembers { add, .. } if add.len() == 2));
    }

    #[test]
    fn a_rename_and_member_changes_are_one_op() {
        let links = [GroupLink {
            source_id: SourceId::new("g1"),
            target_id: ScimId::new("1"),
            display_name: "Old".into(),
            members: vec![ScimId::new("tu1"), ScimId::new("tu2")],
        }];
        let ops = run(
            &[group("g1", "New", &["u1", "u3"])],
            vec![target("1", "Old", &["u1", "u2"])],
            &links,
            &Plan::default(),
            true,
        );
        let [
            Op::GroupMembers {
                display_name,
                renamed_from,
                add,
                remove,
                ..
            },
        ] = ops.as_slice()
        else {
            panic!("one op: {ops:?}");
        };
        assert_eq!(display_name, "New");
        assert_eq!(renamed_from.as_deref(), Some("Old"));
        assert_eq!((add.len(), remove.len()), (1, 1));
    }

    #[test]
    fn a_linked_group_renamed_on_either_side_is_renamed_not_recreated() {
        let links = [GroupLink {
            source_id: SourceId::new("g1"),
            target_id: ScimId::new("1"),
            display_name: "Old".into(),
            members: vec![],
        }];
        let ops = run(
            &[group("g1", "New", &[])],
            vec![target("1", "Old", &[])],
            &links,
            &Plan::default(),
            true,
        );
        assert!(
            matches!(ops.as_slice(), [Op::GroupRename { old, display_name, .. }] if old == "Old" && display_name == "New")
        );
        // Gone from the directory: deleted where possible, reported where not.
        let ops = run(
            &[],
            vec![target("1", "Old", &[])],
            &links,
            &Plan::default(),
            true,
        );
        assert!(matches!(ops.as_slice(), [Op::GroupDelete { .. }]));
        let ops = run(
            &[],
            vec![target("1", "Old", &[])],
            &links,
            &Plan::default(),
            false,
        );
        assert!(matches!(
            ops.as_slice(),
            [Op::GroupSkip {
                reason: GroupSkipReason::TeamNotDeletable,
                ..
            }]
        ));
    }

    /// Miro truncates a user group's name at 60 characters: a longer one would be created
    /// truncated and never match again (a new group every cycle), so it is a skip.
    #[test]
    fn a_name_over_the_targets_limit_is_skipped_saying_so() {
        let long = "N".repeat(61);
        let desired = [group("g1", &long, &["u1"]), group("g2", "Short", &["u1"])];
        let view = GroupView {
            groups: vec![],
            complete: true,
        };
        let user_links = [link("u1")];
        let ops = plan_groups(
            &GroupPlanInput {
                desired: &desired,
                links: &[],
                target: &view,
                user_links: &user_links,
                held: &[],
                can_create: true,
                members_on_create: true,
                name_match: NameMatch::Exact,
                directory_groups: &[],
                max_name_chars: Some(60),
                teams: None,
            },
            &Plan::default(),
        );
        assert!(
            matches!(
                &ops[0],
                Op::GroupSkip {
                    reason: GroupSkipReason::NameTooLong { chars: 61, max: 60 },
                    ..
                }
            ),
            "{ops:?}"
        );
        assert!(matches!(&ops[1], Op::GroupCreate { display_name, .. } if display_name == "Short"));
        assert_eq!(ops.len(), 2);
    }

    /// A directory group renamed while `[groups] sync` still names the old name is not gone:
    /// the plan says it is no longer synced (and the guard treats its delete as a loss).
    #[test]
    fn a_group_still_in_the_directory_is_no_longer_synced_not_gone() {
        let links = [GroupLink {
            source_id: SourceId::new("g1"),
            target_id: ScimId::new("1"),
            display_name: "Eng".into(),
            members: vec![],
        }];
        let in_directory = [SourceId::new("g1")];
        let plan = |can_create| {
            let view = GroupView {
                groups: vec![target("1", "Eng", &[])],
                complete: true,
            };
            plan_groups(
                &GroupPlanInput {
                    desired: &[],
                    links: &links,
                    target: &view,
                    user_links: &[],
                    held: &[],
                    can_create,
                    members_on_create: false,
                    name_match: NameMatch::Exact,
                    directory_groups: &in_directory,
                    max_name_chars: None,
                    teams: None,
                },
                &Plan::default(),
            )
        };
        assert!(matches!(
            plan(true).as_slice(),
            [Op::GroupDelete {
                reason: GroupDeleteReason::NoLongerSynced,
                ..
            }]
        ));
        assert!(matches!(
            plan(false).as_slice(),
            [Op::GroupSkip {
                reason: GroupSkipReason::TeamNoLongerSynced,
                ..
            }]
        ));
    }
}

#[cfg(test)]
mod settled_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    use crate::tests::fixture::link_between as link_of;

    proptest! {
        /// The shortcut never skips a group the full diff would change. Users 0..8; some
        /// linked (a few sharing a target id, as inconsistent links could), some adopting or
        /// created by the user plan, some held, some leaving; current members drawn from
        /// linked and unmanaged target ids, in any order.
        #[test]
        fn a_settled_group_has_no_diff(
            linked in proptest::collection::vec(proptest::option::of(0u8..8), 8),
            members in proptest::collection::btree_set(0u8..8, 0..8),
            current in proptest::collection::vec(0u8..10, 0..9),
            held in proptest::collection::btree_set(0u8..8, 0..3),
            leaving in proptest::collection::btree_set(0u8..8, 0..3),
            sort_current in any::<bool>(),
            moves in proptest::collection::vec((0u8..8, proptest::option::of(0u8..10)), 0..3),
        ) {
            let links: Vec<Link> = linked
                .iter()
                .enumerate()
                .filter_map(|(s, t)| t.map(|t| link_of(&format!("s{s}"), &format!("t{t}"))))
                .collect();
            // The user plan's adopts (a target id) and creates (none yet).
            let moves: Vec<(SourceId, Option<ScimId>, String)> = moves
                .iter()
                .map(|(s, t)| {
                    (
                        SourceId::new(format!("s{s}")),
                        t.map(|t| ScimId::new(format!("t{t}"))),
                        format!("s{s}@x.com"),
                    )
                })
                .collect();
            let mut targets = UserTargets::new(&links);
            for (source, target, name) in &moves {
                targets.becomes(source, target.as_ref(), name);
            }
            let group = DesiredGroup {
                source_id: SourceId::new("g"),
                display_name: "G".into(),
                members: members.iter().map(|m| SourceId::new(format!("s{m}"))).collect(),
            };
            let mut current: Vec<ScimId> =
                current.iter().map(|t| ScimId::new(format!("t{t}"))).collect();
            if sort_current {
                current.sort();
            }
            let held_ids: Vec<SourceId> = held.iter().map(|h| SourceId::new(format!("s{h}"))).collect();
            let leaving_ids: Vec<SourceId> =
                leaving.iter().map(|l| SourceId::new(format!("s{l}"))).collect();
            let held: HashSet<&SourceId> = held_ids.iter().collect();
            let leaving: HashSet<&SourceId> = leaving_ids.iter().collect();
            let none = HashSet::default();
            let users = Users {
                targets: &targets,
                held: &held,
                leaving: &leaving,
                blocked: &none,
                reactivated: &none,
            };
            if settled(&group, &current, &users) {
                let diff = membership_diff(&group, None, &current, &users);
                prop_assert!(diff.is_none(), "{diff:?}");
            }
        }
    }

    #[test]
    fn a_group_exactly_as_linked_is_settled() {
        let links: Vec<Link> = ["a", "b"]
            .iter()
            .map(|s| link_of(s, &format!("t{s}")))
            .collect();
        let targets = UserTargets::new(&links);
        let group = DesiredGroup {
            source_id: SourceId::new("g"),
            display_name: "G".into(),
            members: vec![SourceId::new("a"), SourceId::new("b")],
        };
        let current = vec![ScimId::new("ta"), ScimId::new("tb")];
        let none = HashSet::default();
        let leaving_b = SourceId::new("b");
        let leaving: HashSet<&SourceId> = [&leaving_b].into_iter().collect();
        let users = |leaving| Users {
            targets: &targets,
            held: &none,
            leaving,
            blocked: &none,
            reactivated: &none,
        };
        assert!(settled(&group, &current, &users(&none)));
        assert!(!settled(&group, &current, &users(&leaving)));
    }

    /// A target user the user plan hands to another source is no longer its link's: the
    /// group is not settled, and the diff swaps the members.
    #[test]
    fn a_member_whose_target_user_is_adopted_by_another_is_not_settled() {
        let links: Vec<Link> = ["a", "b"]
            .iter()
            .map(|s| link_of(s, &format!("t{s}")))
            .collect();
        let (c, tb) = (SourceId::new("c"), ScimId::new("tb"));
        let mut targets = UserTargets::new(&links);
        targets.becomes(&c, Some(&tb), "c@x.com");
        let group = DesiredGroup {
            source_id: SourceId::new("g"),
            display_name: "G".into(),
            members: vec![SourceId::new("a"), SourceId::new("b")],
        };
        let current = vec![ScimId::new("ta"), tb.clone()];
        let none = HashSet::default();
        let users = Users {
            targets: &targets,
            held: &none,
            leaving: &none,
            blocked: &none,
            reactivated: &none,
        };
        assert!(!settled(&group, &current, &users));
        let Some(Op::GroupMembers { add, remove, .. }) =
            membership_diff(&group, None, &current, &users)
        else {
            panic!("no membership diff");
        };
        let ids = |m: &[Member]| {
            m.iter()
                .map(|m| m.source_id.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            (ids(&add), ids(&remove)),
            (vec!["b".to_owned()], vec!["c".to_owned()])
        );
    }
}
