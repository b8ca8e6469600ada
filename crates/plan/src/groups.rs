//! Group planning: link directory groups to target groups (by link, else by displayName), and
//! diff memberships. Pure, like the rest of the planner; runs after the user plan, whose creates,
//! adopts and deprovisions decide which members can be added and which are leaving.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rayon::prelude::*;
use scimsync_model::{
    DesiredGroup, GroupLink, GroupSkipReason, GroupView, Link, Member, NameMatch, Op, Plan, ScimId,
    SourceId, TargetGroup,
};
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
    pub name_match: NameMatch,
}

/// Who each linked user is on the target, and the reverse: what group planning knows before
/// the user plan, built from every user link (a million entries), so it is built while the
/// users are planned.
pub(crate) struct UserTargets<'a> {
    target_of: TargetOf<'a>,
    source_of: SourceOf<'a>,
}

/// Source id → its target user (if it exists yet) and userName.
type TargetOf<'a> = HashMap<&'a SourceId, (Option<&'a ScimId>, &'a str)>;
/// Target user id → the source id that is it.
type SourceOf<'a> = HashMap<&'a ScimId, &'a SourceId>;

impl<'a> UserTargets<'a> {
    pub(crate) fn new(user_links: &'a [Link]) -> Self {
        let mut target_of: TargetOf<'a> = HashMap::with_capacity(user_links.len());
        for link in user_links {
            target_of.insert(&link.source_id, (Some(&link.target_id), &link.user_name));
        }
        let mut source_of: SourceOf<'a> = HashMap::with_capacity(target_of.len());
        source_of.extend(
            target_of
                .iter()
                .filter_map(|(s, (t, _))| t.map(|t| (t, *s))),
        );
        UserTargets {
            target_of,
            source_of,
        }
    }

    /// `source` is (or, after the provision phase, will be) `target`, no longer what it was.
    fn becomes(&mut self, source: &'a SourceId, target: Option<&'a ScimId>, user_name: &'a str) {
        if let Some((Some(old), _)) = self.target_of.insert(source, (target, user_name))
            && self.source_of.get(old) == Some(&source)
        {
            self.source_of.remove(old);
        }
        if let Some(target) = target {
            self.source_of.insert(target, source);
        }
    }
}

/// The group ops for `input`, given the user plan they follow.
pub fn plan_groups(input: &GroupPlanInput<'_>, users: &Plan) -> Vec<Op> {
    plan_groups_with(input, UserTargets::new(input.user_links), users)
}

/// [`plan_groups`], with the user links already indexed.
pub(crate) fn plan_groups_with<'a>(
    input: &GroupPlanInput<'a>,
    mut targets: UserTargets<'a>,
    users: &'a Plan,
) -> Vec<Op> {
    let mut ops = Vec::new();
    // Who is (or will be, after this plan's provision phase) which target user.
    let mut leaving: HashSet<&SourceId> = HashSet::new();
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
            Op::Delete { source_id, .. } => {
                leaving.insert(source_id);
            }
            _ => {}
        }
    }
    let UserTargets {
        target_of,
        source_of,
    } = targets;
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
                target_of: &target_of,
                source_of: &source_of,
                held: &held,
                leaving: &leaving,
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
    let mut ops = merged;

    // Linked groups no longer desired.
    for (source_id, link) in links {
        if desired_ids.contains(source_id) {
            continue;
        }
        if input.target.complete && !by_id.contains_key(&link.target_id) {
            continue;
        }
        if input.can_create {
            ops.push(Op::GroupDelete {
                source_id: source_id.clone(),
                target_id: link.target_id.clone(),
                display_name: link.display_name.clone(),
            });
        } else {
            ops.push(Op::GroupSkip {
                source_id: source_id.clone(),
                display_name: link.display_name.clone(),
                target_id: Some(link.target_id.clone()),
                reason: GroupSkipReason::TeamNotDeletable,
            });
        }
    }
    ops
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
    target_of: &'u TargetOf<'a>,
    source_of: &'u SourceOf<'a>,
    held: &'u HashSet<&'a SourceId>,
    leaving: &'u HashSet<&'a SourceId>,
}

/// `membership` worked out in full.
fn membership_diff(
    group: &DesiredGroup,
    target_id: Option<ScimId>,
    current: &[ScimId],
    users: &Users<'_, '_>,
) -> Option<Op> {
    let Users {
        target_of,
        source_of,
        held,
        leaving,
    } = users;
    let want: BTreeSet<&SourceId> = group
        .members
        .iter()
        .filter(|s| !leaving.contains(s))
        .collect();
    let have: BTreeMap<&SourceId, &ScimId> = current
        .iter()
        .filter_map(|t| source_of.get(t).map(|s| (*s, t)))
        .collect();
    let add: Vec<Member> = want
        .iter()
        .filter(|s| !have.contains_key(*s) && !held.contains(*s))
        .filter_map(|s| {
            target_of.get(s).map(|(t, name)| Member {
                source_id: (*s).clone(),
                user_name: (*name).to_owned(),
                target_id: t.cloned(),
            })
        })
        .collect();
    let remove: Vec<Member> = have
        .iter()
        .filter(|(s, _)| !want.contains(*s) && !held.contains(*s))
        .map(|(s, t)| Member {
            source_id: (*s).clone(),
            user_name: target_of
                .get(s)
                .map(|(_, n)| (*n).to_owned())
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
            let Some((Some(t), _)) = users.target_of.get(s) else {
                return false;
            };
            !users.held.contains(s)
                && !users.leaving.contains(s)
                && current.binary_search(t).is_ok()
                && users.source_of.get(t) == Some(&s)
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
                name_match: NameMatch::Exact,
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
}

#[cfg(test)]
mod settled_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use scimsync_model::Attrs;

    fn link_of(source: &str, target: &str) -> Link {
        Link {
            source_id: SourceId::new(source),
            target_id: ScimId::new(target),
            user_name: format!("{source}@x.com"),
            active: true,
            attrs: Attrs::new(),
            hash: String::new(),
        }
    }

    proptest! {
        /// The shortcut never skips a group the full diff would change. Users 0..8; some
        /// linked (a few sharing a target id, as inconsistent links could), some held, some
        /// leaving; current members drawn from linked and unmanaged target ids, in any order.
        #[test]
        fn a_settled_group_has_no_diff(
            linked in proptest::collection::vec(proptest::option::of(0u8..8), 8),
            members in proptest::collection::btree_set(0u8..8, 0..8),
            current in proptest::collection::vec(0u8..10, 0..9),
            held in proptest::collection::btree_set(0u8..8, 0..3),
            leaving in proptest::collection::btree_set(0u8..8, 0..3),
            sort_current in any::<bool>(),
        ) {
            let links: Vec<Link> = linked
                .iter()
                .enumerate()
                .filter_map(|(s, t)| t.map(|t| link_of(&format!("s{s}"), &format!("t{t}"))))
                .collect();
            let UserTargets { target_of, source_of } = UserTargets::new(&links);
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
            let users = Users {
                target_of: &target_of,
                source_of: &source_of,
                held: &held,
                leaving: &leaving,
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
        let UserTargets {
            target_of,
            source_of,
        } = UserTargets::new(&links);
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
            target_of: &target_of,
            source_of: &source_of,
            held: &none,
            leaving,
        };
        assert!(settled(&group, &current, &users(&none)));
        assert!(!settled(&group, &current, &users(&leaving)));
    }
}
