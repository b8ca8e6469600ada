//! SCIM Groups on the wire: the POST body, a group read back into `TargetGroup`, the rename
//! PATCH, and membership PATCHes sized against Miro's two group-PATCH buckets and caps.
//!
//! Membership changes are only ever `add` to `members` and one `remove` per member by filter
//! path: never a `replace` of `members` (it would drop members scimsync does not manage), never a
//! PUT (Miro answers 405).

use crate::budget::SMALL_GROUP_PATCH_BYTES;
use crate::{Bucket, Budgets, GROUP_SCHEMA, PATCH_SCHEMA, Profile, WireError};
use scimsync_model::{ScimId, TargetGroup};
use serde_json::{Value, json};
use std::time::Duration;

/// Most members one group PATCH may carry (Miro: more is a 413).
pub const MAX_MEMBERS_PER_PATCH: usize = 8000;
/// Largest group PATCH body (Miro: more is a 413).
pub const MAX_GROUP_PATCH_BYTES: usize = 800_000;

/// The POST /Groups body: the name, and the members where the target takes them on create
/// (`Profile::group_members_on_create`; otherwise they follow as PATCHes sized like any other).
pub fn group_resource(display_name: &str, members: &[ScimId]) -> Value {
    let mut body = json!({"schemas": [GROUP_SCHEMA], "displayName": display_name});
    if !members.is_empty() {
        body["members"] = members
            .iter()
            .map(|id| json!({"value": id.as_str()}))
            .collect();
    }
    body
}

/// PATCH replace displayName, with the op case the profile wants.
pub fn rename_body(display_name: &str, profile: &Profile) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": [rename_op(display_name, profile)]})
}

/// A SCIM group read back. `members` is `None` when the resource has no `members` attribute
/// (listed with `attributes=id,displayName`), `Some(empty)` when it has none.
pub fn target_group(resource: &Value) -> Result<TargetGroup, WireError> {
    let obj = resource.as_object().ok_or(WireError::NotAnObject)?;
    let id = match obj.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(WireError::WrongType {
                field: "id",
                expected: "a string",
            });
        }
        None => return Err(WireError::MissingField { field: "id" }),
    };
    let display_name = obj
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let members = match obj.get("members") {
        None => None,
        Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let mut ids: Vec<ScimId> = items
                .iter()
                .filter_map(|m| match m.get("value") {
                    Some(Value::String(s)) if !s.is_empty() => Some(ScimId::new(s.as_str())),
                    Some(Value::Number(n)) => Some(ScimId::new(n.to_string())),
                    _ => None,
                })
                .collect();
            ids.sort();
            ids.dedup();
            Some(ids)
        }
        Some(_) => {
            return Err(WireError::WrongType {
                field: "members",
                expected: "an array",
            });
        }
    };
    Ok(TargetGroup {
        id: ScimId::new(id),
        display_name,
        members,
    })
}

/// Which bucket a membership split aims at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchSize {
    /// Bodies of at most 500 bytes (Miro: 100 per window).
    Small,
    /// Bodies up to the caps (Miro: 5 per window).
    Large,
}

/// One group PATCH: its body, the members it carries, and whether it renames the group.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberPatch {
    pub body: Value,
    pub bytes: usize,
    pub added: Vec<ScimId>,
    pub removed: Vec<ScimId>,
    /// The new displayName this body sets (the first body of a renamed group).
    pub renamed: Option<String>,
}

impl MemberPatch {
    pub fn bucket(&self) -> Bucket {
        if self.bytes <= SMALL_GROUP_PATCH_BYTES {
            Bucket::GroupsPatchSmall
        } else {
            Bucket::GroupsPatchLarge
        }
    }
}

fn remove_path(id: &ScimId, profile: &Profile) -> String {
    // Miro documents the numeric id unquoted; RFC 7644 quotes a string value.
    if profile.unquoted_numeric_member_ids
        && !id.as_str().is_empty()
        && id.as_str().bytes().all(|b| b.is_ascii_digit())
    {
        format!("members[value eq {id}]")
    } else {
        format!(
            "members[value eq {}]",
            crate::json_string_literal(id.as_str())
        )
    }
}

fn json_len(v: &Value) -> usize {
    v.to_string().len()
}

/// Splits a group's change into PATCH bodies: the rename first (a `replace` of displayName, in
/// the first body), then the adds (one `add` op per body), then one `remove` per member. Each
/// body stays within the caps and, for `Small`, within 500 bytes (a single member too long for
/// that goes alone). One body when it all fits: a renamed group whose members change costs one
/// request, not two. Deterministic: same input, same bodies.
pub fn member_patches(
    add: &[ScimId],
    remove: &[ScimId],
    rename: Option<&str>,
    profile: &Profile,
    size: PatchSize,
) -> Vec<MemberPatch> {
    let limit = match size {
        PatchSize::Small => SMALL_GROUP_PATCH_BYTES,
        PatchSize::Large => MAX_GROUP_PATCH_BYTES,
    };
    let add_op = profile.op_case.op("add");
    let remove_op = profile.op_case.op("remove");
    let base = json_len(&json!({"schemas": [PATCH_SCHEMA], "Operations": []}));
    let add_base = json_len(&json!({"op": add_op, "path": "members", "value": []}));

    let mut patches = Vec::new();
    let mut chunk = Chunk::default();
    if let Some(name) = rename {
        chunk.bytes = json_len(&rename_op(name, profile));
        chunk.ops = 1;
        chunk.rename = Some(name.to_owned());
    }
    let flush = |chunk: &mut Chunk, patches: &mut Vec<MemberPatch>| {
        if chunk.added.is_empty() && chunk.removed.is_empty() && chunk.rename.is_none() {
            return;
        }
        let mut operations = Vec::new();
        if let Some(name) = &chunk.rename {
            operations.push(rename_op(name, profile));
        }
        if !chunk.added.is_empty() {
            let values: Vec<Value> = chunk
                .added
                .iter()
                .map(|id| json!({"value": id.as_str()}))
                .collect();
            operations.push(json!({"op": add_op, "path": "members", "value": values}));
        }
        for id in &chunk.removed {
            operations.push(json!({"op": remove_op, "path": remove_path(id, profile)}));
        }
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": operations});
        let bytes = json_len(&body);
        patches.push(MemberPatch {
            body,
            bytes,
            added: std::mem::take(&mut chunk.added),
            removed: std::mem::take(&mut chunk.removed),
            renamed: chunk.rename.take(),
        });
        *chunk = Chunk::default();
    };
    for id in add {
        let member = json_len(&json!({"value": id.as_str()}));
        let cost = if chunk.added.is_empty() {
            member + add_base + usize::from(chunk.ops > 0)
        } else {
            member + 1
        };
        if chunk.members > 0
            && (base + chunk.bytes + cost > limit || chunk.members + 1 > MAX_MEMBERS_PER_PATCH)
        {
            flush(&mut chunk, &mut patches);
            chunk.bytes = member + add_base;
        } else {
            chunk.bytes += cost;
        }
        if chunk.added.is_empty() {
            chunk.ops += 1;
        }
        chunk.added.push(id.clone());
        chunk.members += 1;
    }
    for id in remove {
        let op = json_len(&json!({"op": remove_op, "path": remove_path(id, profile)}));
        let cost = op + usize::from(chunk.ops > 0);
        if chunk.members > 0
            && (base + chunk.bytes + cost > limit || chunk.members + 1 > MAX_MEMBERS_PER_PATCH)
        {
            flush(&mut chunk, &mut patches);
            chunk.bytes = op;
        } else {
            chunk.bytes += cost;
        }
        chunk.ops += 1;
        chunk.removed.push(id.clone());
        chunk.members += 1;
    }
    flush(&mut chunk, &mut patches);
    patches
}

fn rename_op(display_name: &str, profile: &Profile) -> Value {
    json!({"op": profile.op_case.op("replace"), "path": "displayName", "value": display_name})
}

#[derive(Default)]
struct Chunk {
    rename: Option<String>,
    bytes: usize,
    ops: usize,
    members: usize,
    added: Vec<ScimId>,
    removed: Vec<ScimId>,
}

/// The shape of one group's change, for choosing splits before ids are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberChangeShape {
    pub add: Vec<ScimId>,
    pub remove: Vec<ScimId>,
    /// The new displayName, when the same PATCH renames the group.
    pub rename: Option<String>,
}

/// Requests per bucket that `member_patches` would send for `shape` at `size`.
pub fn patch_counts(shape: &MemberChangeShape, profile: &Profile, size: PatchSize) -> (u64, u64) {
    let mut small = 0;
    let mut large = 0;
    for p in member_patches(
        &shape.add,
        &shape.remove,
        shape.rename.as_deref(),
        profile,
        size,
    ) {
        match p.bucket() {
            Bucket::GroupsPatchSmall => small += 1,
            _ => large += 1,
        }
    }
    (small, large)
}

/// The time `n` requests take through a bucket paced at `limit` per `window` (a full window
/// per `limit` requests); zero for an unlimited bucket.
pub fn bucket_time(n: u64, limit: Option<u32>, window: Duration) -> Duration {
    match limit {
        Some(limit) if limit > 0 && n > 0 => window.mul_f64(n as f64 / f64::from(limit)),
        _ => Duration::ZERO,
    }
}

/// Chooses per group the split that makes the whole membership phase finish soonest: both
/// buckets run concurrently, so the phase takes as long as the slower of the two. Starts from
/// all-small (many cheap requests in the 100-per-window bucket) and moves a group to large
/// bodies (few requests in the 5-per-window bucket) while that shortens the phase, biggest
/// savings first. With unlimited budgets the fewest requests win (all large).
pub fn choose_sizes(shapes: &[MemberChangeShape], profile: &Profile) -> (Vec<PatchSize>, Duration) {
    let budgets: &Budgets = &profile.budgets;
    let small_limit = budgets.limit(Bucket::GroupsPatchSmall);
    let large_limit = budgets.limit(Bucket::GroupsPatchLarge);
    let counts: Vec<((u64, u64), (u64, u64))> = shapes
        .iter()
        .map(|s| {
            (
                patch_counts(s, profile, PatchSize::Small),
                patch_counts(s, profile, PatchSize::Large),
            )
        })
        .collect();
    let makespan = |small: u64, large: u64| {
        bucket_time(small, small_limit, budgets.window).max(bucket_time(
            large,
            large_limit,
            budgets.window,
        ))
    };
    let mut sizes = vec![PatchSize::Small; shapes.len()];
    let (mut small, mut large) = counts
        .iter()
        .fold((0, 0), |(s, l), ((a, b), _)| (s + a, l + b));
    if small_limit.is_none() && large_limit.is_none() {
        return (vec![PatchSize::Large; shapes.len()], Duration::ZERO);
    }
    let mut order: Vec<usize> = (0..shapes.len()).collect();
    // Biggest request savings first; ties by position so the choice is deterministic.
    order.sort_by_key(|&i| {
        let ((s, l), (s2, l2)) = counts[i];
        (std::cmp::Reverse((s + l).saturating_sub(s2 + l2)), i)
    });
    for i in order {
        let ((s, l), (s2, l2)) = counts[i];
        if s + l <= s2 + l2 {
            continue;
        }
        let (ns, nl) = (small - s + s2, large - l + l2);
        if makespan(ns, nl) < makespan(small, large) {
            sizes[i] = PatchSize::Large;
            small = ns;
            large = nl;
        }
    }
    (sizes, makespan(small, large))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ids(n: usize) -> Vec<ScimId> {
        (0..n)
            .map(|i| ScimId::new(format!("30744573652{i:08}")))
            .collect()
    }

    #[test]
    fn small_patches_stay_within_500_bytes_and_carry_every_member_once() {
        let add = ids(37);
        let remove = ids(5);
        let patches = member_patches(&add, &remove, None, &Profile::miro(), PatchSize::Small);
        assert!(patches.len() > 1);
        for p in &patches {
            assert_eq!(p.bytes, p.body.to_string().len());
            assert!(p.bytes <= SMALL_GROUP_PATCH_BYTES, "{}", p.bytes);
        }
        let added: Vec<_> = patches.iter().flat_map(|p| p.added.clone()).collect();
        let removed: Vec<_> = patches.iter().flat_map(|p| p.removed.clone()).collect();
        assert_eq!(added, add);
        assert_eq!(removed, remove);
    }

    #[test]
    fn large_patches_respect_the_member_cap() {
        let add = ids(20_000);
        let patches = member_patches(&add, &[], None, &Profile::miro(), PatchSize::Large);
        assert_eq!(patches.len(), 3);
        for p in &patches {
            assert!(p.added.len() <= MAX_MEMBERS_PER_PATCH);
            assert!(p.bytes <= MAX_GROUP_PATCH_BYTES);
            assert_eq!(p.bytes, p.body.to_string().len());
        }
    }

    #[test]
    fn remove_paths_follow_the_profile() {
        let id = [ScimId::new("42")];
        let miro = member_patches(&[], &id, None, &Profile::miro(), PatchSize::Small);
        assert_eq!(
            miro[0].body["Operations"][0]["path"],
            "members[value eq 42]"
        );
        let generic = member_patches(&[], &id, None, &Profile::generic(), PatchSize::Small);
        assert_eq!(
            generic[0].body["Operations"][0],
            json!({"op": "remove", "path": "members[value eq \"42\"]"})
        );
    }

    #[test]
    fn big_fills_go_large_and_many_small_changes_stay_small() {
        let profile = Profile::miro();
        let big = MemberChangeShape {
            add: ids(20_000),
            remove: vec![],
            rename: None,
        };
        let (sizes, eta) = choose_sizes(&[big], &profile);
        assert_eq!(sizes, vec![PatchSize::Large]);
        assert!(eta <= Duration::from_secs(30));
        // Forty groups with one change each: forty small bodies beat forty large ones.
        let one = MemberChangeShape {
            add: ids(1),
            remove: vec![],
            rename: None,
        };
        let (sizes, _) = choose_sizes(&vec![one; 40], &profile);
        assert!(sizes.iter().all(|s| *s == PatchSize::Small));
    }

    #[test]
    fn a_rename_rides_in_the_first_body() {
        let add = ids(2);
        let remove = ids(1);
        let generic = Profile::generic();
        let patches = member_patches(&add, &remove, Some("Eng"), &generic, PatchSize::Large);
        assert_eq!(patches.len(), 1, "rename and members in one request");
        assert_eq!(patches[0].renamed.as_deref(), Some("Eng"));
        let ops = patches[0].body["Operations"].as_array().unwrap();
        assert_eq!(
            ops[0],
            json!({"op": "replace", "path": "displayName", "value": "Eng"})
        );
        assert_eq!(ops.len(), 3);
        // A rename alone is one small body; split bodies rename only once.
        let alone = member_patches(&[], &[], Some("Eng"), &generic, PatchSize::Small);
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0].body, rename_body("Eng", &generic));
        let many = member_patches(
            &ids(40),
            &[],
            Some("Eng"),
            &Profile::miro(),
            PatchSize::Small,
        );
        assert!(many.len() > 1);
        assert_eq!(many.iter().filter(|p| p.renamed.is_some()).count(), 1);
        assert!(many.iter().all(|p| p.bytes <= SMALL_GROUP_PATCH_BYTES));
        assert_eq!(many.iter().map(|p| p.added.len()).sum::<usize>(), 40);
        let shape = MemberChangeShape {
            add: ids(2),
            remove: vec![],
            rename: Some("Eng".into()),
        };
        assert_eq!(patch_counts(&shape, &generic, PatchSize::Large), (1, 0));
    }

    #[test]
    fn a_create_carries_its_members() {
        assert_eq!(
            group_resource("Eng", &[ScimId::new("1"), ScimId::new("2")]),
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Eng",
                   "members": [{"value": "1"}, {"value": "2"}]})
        );
        assert!(group_resource("Eng", &[]).get("members").is_none());
    }

    #[test]
    fn groups_read_back_with_or_without_members() {
        let listed = target_group(&json!({"id": "7", "displayName": "Eng"})).unwrap();
        assert_eq!(listed.members, None);
        let read = target_group(
            &json!({"id": 7, "displayName": "Eng", "members": [{"value": "2"}, {"value": "1"}]}),
        )
        .unwrap();
        assert_eq!(read.members, Some(vec![ScimId::new("1"), ScimId::new("2")]));
    }
}
