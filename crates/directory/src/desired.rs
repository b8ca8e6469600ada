//! From a snapshot to the users the target should hold: validation, scope, roles and mapping.

use crate::config::{Preset, RolesConfig, ScopeConfig};
use crate::email;
use crate::expr::MAX_VALUE_BYTES;
use crate::keyed::{Keyed, UserRecord};
use crate::mapping::{Mapping, Source};
use foldhash::HashSet;
use rayon::prelude::*;
use scimsync_model::{
    AttrKey, AttrValue, Attrs, Claims, DesiredUser, LinkHandle, OutOfScope, OutOfScopeReason,
    PushedLinks, RecordStamp, Snapshot, SourceGroup, SourceId, SourceUser, UserState, paths,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::BuildHasher;

/// The directory, sorted into what to provision, what to deprovision, and what to leave alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Mapped {
    /// In scope and valid, sorted by userName then source id. Mapped against the links
    /// ([`map_users_against`], [`map_keyed`]), a user the links claim as last pushed keeps no
    /// attributes: see [`Claims`].
    pub desired: Vec<DesiredUser>,
    /// Valid but not to be provisioned (unassigned or DELETED), sorted by source id.
    pub out_of_scope: Vec<OutOfScope>,
    /// Records that cannot be mapped, one per user, sorted by source id. These users are in
    /// neither list above: the planner must leave their target accounts untouched.
    pub invalid: Vec<InvalidRecord>,
}

/// A directory user whose record cannot be mapped, and the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidRecord {
    pub source_id: SourceId,
    /// The source attribute at fault (`email`, `state`, `userPrincipalName`, …).
    pub field: String,
    pub message: String,
}

impl fmt::Display for InvalidRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user {}: {}: {}",
            self.source_id, self.field, self.message
        )
    }
}

/// How many other ids a duplicate-email message names before summarising: a placeholder email
/// shared by thousands of records must not make every message thousands of ids long.
const MAX_NAMED_DUPLICATES: usize = 5;

/// How much of a bad value a message quotes.
const MAX_QUOTED_CHARS: usize = 64;

/// Maps every directory user: desired, out of scope, or invalid. Pure and deterministic.
///
/// Scope and admin groups match group `name`s exactly (case-sensitive); membership is direct.
pub fn map(
    snapshot: &Snapshot,
    scope: &ScopeConfig,
    roles: &RolesConfig,
    mapping: &Mapping,
) -> Mapped {
    map_users(
        snapshot.users.clone(),
        &snapshot.groups,
        scope,
        roles,
        mapping,
    )
}

/// [`map`], consuming the users: each record is dropped as soon as it is mapped, so a cycle
/// never holds the whole snapshot and the whole mapped directory at once (on a million users,
/// the difference between about one and about two gigabytes).
pub fn map_users(
    users: Vec<SourceUser>,
    groups: &[SourceGroup],
    scope: &ScopeConfig,
    roles: &RolesConfig,
    mapping: &Mapping,
) -> Mapped {
    map_records(users, Vec::new(), groups, scope, roles, mapping, None).0
}

/// [`map_users`] on an incremental cycle, against the links: a user the links claim as last
/// pushed ([`PushedLinks::claim`]) keeps no attributes (on an unchanged million-user directory,
/// most of a cycle's memory), and the claims are returned for the planner's proof of unchanged
/// users, which alone may take such a user as it is.
pub fn map_users_against(
    users: Vec<SourceUser>,
    groups: &[SourceGroup],
    scope: &ScopeConfig,
    roles: &RolesConfig,
    mapping: &Mapping,
    links: &dyn PushedLinks,
) -> (Mapped, Claims) {
    map_records(
        users,
        Vec::new(),
        groups,
        scope,
        roles,
        mapping,
        Some(links),
    )
}

/// [`map_users_against`] for a keyed read (see [`Keyed`]): a recognised user is taken as its
/// link describes it, claimed with the handle its stamp was found by, and a parsed user the
/// links claim gets a stamp its link can store ([`Claims::stamps`]). `mapping`'s record
/// context must be the one the read keyed with. The snapshot's groups come back too.
pub fn map_keyed(
    keyed: Keyed,
    scope: &ScopeConfig,
    roles: &RolesConfig,
    mapping: &Mapping,
    links: &dyn PushedLinks,
) -> (Mapped, Claims, Vec<SourceGroup>) {
    let Keyed { snapshot, records } = keyed;
    let Snapshot { users, groups } = snapshot;
    let (mapped, claims) = map_records(users, records, &groups, scope, roles, mapping, Some(links));
    (mapped, claims, groups)
}

/// `records` is aligned with `users`, or empty when the read did not key them. Without
/// `links`, nothing is claimed (the claims are empty).
fn map_records(
    users: Vec<SourceUser>,
    records: Vec<UserRecord>,
    groups: &[SourceGroup],
    scope: &ScopeConfig,
    roles: &RolesConfig,
    mapping: &Mapping,
    links: Option<&dyn PushedLinks>,
) -> (Mapped, Claims) {
    let admins = Memberships {
        admins: members_of(groups, &roles.admin_groups),
        grants: admin_role_grants(groups, &roles.admin_roles),
    };
    let keyed = records.len() == users.len() && links.is_some();
    // Each record maps on its own: spread them over the cores (order kept). The scope's
    // members (every assigned user) are gathered meanwhile.
    let (in_scope, mut evaluated): (Option<HashSet<&str>>, Vec<Evaluated>) = rayon::join(
        || scope.groups.as_ref().map(|names| members_of(groups, names)),
        || {
            let evaluate =
                |user, record| evaluate(user, record, mapping, &admins, &scope.filters, links);
            if keyed {
                users
                    .into_par_iter()
                    .zip(records)
                    .map(|(user, record)| evaluate(user, Some(record)))
                    .collect()
            } else {
                users
                    .into_par_iter()
                    .map(|user| evaluate(user, None))
                    .collect()
            }
        },
    );
    mark_duplicate_emails(&mut evaluated);
    let unassigned: Vec<bool> = match &in_scope {
        Some(members) => evaluated
            .par_iter()
            .map(|entry| !members.contains(entry.source_id.as_str()))
            .collect(),
        None => Vec::new(),
    };
    drop(in_scope);

    let mut mapped = Mapped::default();
    let mut desired = Vec::with_capacity(evaluated.len());
    // Aligned with `desired`: what mapping found of each (kept apart: the sort moves less).
    let mut found = Vec::with_capacity(evaluated.len());
    for (at, entry) in evaluated.into_iter().enumerate() {
        let candidate = match entry.outcome {
            Ok(candidate) => candidate,
            Err(invalid) => {
                mapped.invalid.push(*invalid);
                continue;
            }
        };
        let source_id = entry.source_id;
        let stamp = entry.stamp;
        let user_name = candidate.user_name;
        let unassigned = unassigned.get(at).copied().unwrap_or(false);
        match candidate.state {
            UserState::Deleted => mapped.out_of_scope.push(OutOfScope {
                source_id,
                user_name,
                reason: OutOfScopeReason::Deleted,
            }),
            _ if unassigned => mapped.out_of_scope.push(OutOfScope {
                source_id,
                user_name,
                reason: OutOfScopeReason::Unassigned,
            }),
            _ if let Some(rule) = entry.excluded_by => mapped.out_of_scope.push(OutOfScope {
                source_id,
                user_name,
                reason: OutOfScopeReason::Filtered { rule },
            }),
            state => {
                desired.push(DesiredUser {
                    source_id,
                    user_name,
                    active: state == UserState::Activated,
                    attrs: candidate.attrs,
                });
                found.push((candidate.claim, stamp));
            }
        }
    }
    let (desired, found) = sort_by_user_name(desired, found);
    mapped.desired = desired;
    let mut claims = Claims::default();
    if links.is_some() {
        claims.users.reserve_exact(found.len());
        for (claim, stamp) in found {
            claims.users.push(claim);
            if let (Some(claim), Some(stamp)) = (claim, stamp) {
                claims.stamps.push((claim, stamp));
            }
        }
    }
    mapped
        .out_of_scope
        .sort_unstable_by(|a, b| a.source_id.cmp(&b.source_id));
    mapped
        .invalid
        .sort_unstable_by(|a, b| a.source_id.cmp(&b.source_id));
    (mapped, claims)
}

/// Sorted by userName, then source id, with `aux` (aligned with `users`) kept aligned. A
/// million names compared in place would mean a cache miss for each string at each
/// comparison: the sort compares a 16-byte prefix held next to the index, and the strings only
/// when prefixes tie. Unstable: the keys are unique (source ids are), so the order is a stable
/// sort's.
fn sort_by_user_name<T: Copy + Send + Sync>(
    users: Vec<DesiredUser>,
    aux: Vec<T>,
) -> (Vec<DesiredUser>, Vec<T>) {
    let full = |a: &DesiredUser, b: &DesiredUser| {
        (a.user_name.as_str(), &a.source_id).cmp(&(b.user_name.as_str(), &b.source_id))
    };
    let mut order: Vec<(u128, usize)> = users
        .par_iter()
        .enumerate()
        .map(|(at, user)| (name_prefix(&user.user_name), at))
        .collect();
    order.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| full(&users[a.1], &users[b.1])));
    // Position `to` takes the user at `from[to]`. The small values are gathered on all
    // cores; each user is moved once, out of its slot (`Option` of a user is a user's size,
    // so the slots reuse the users' vector).
    let from: Vec<usize> = order.into_iter().map(|(_, at)| at).collect();
    let aux: Vec<T> = from
        .par_iter()
        .filter_map(|&at| aux.get(at).copied())
        .collect();
    let mut slots: Vec<Option<DesiredUser>> = users.into_iter().map(Some).collect();
    let users: Vec<DesiredUser> = from
        .iter()
        .filter_map(|&at| slots.get_mut(at).and_then(Option::take))
        .collect();
    (users, aux)
}

/// The first 16 bytes of a name, zero-padded, as a number that orders as the bytes do; a name
/// that is a prefix of another pads with zeros, so equal prefixes compare in full.
fn name_prefix(name: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let head = &name.as_bytes()[..name.len().min(16)];
    bytes[..head.len()].copy_from_slice(head);
    u128::from_be_bytes(bytes)
}

/// Who holds a role through the groups: the admins (`[roles] admin_groups`) and each user's
/// admin roles (`[roles.admin_roles]`).
pub(crate) struct Memberships<'a> {
    pub(crate) admins: HashSet<&'a str>,
    /// Source id → the role values its groups give, sorted and unique.
    pub(crate) grants: foldhash::HashMap<&'a str, Vec<&'a str>>,
}

/// Each member of a `[roles.admin_roles]` group → the roles its groups give.
pub(crate) fn admin_role_grants<'a>(
    groups: &'a [SourceGroup],
    roles: &'a std::collections::BTreeMap<String, Vec<String>>,
) -> foldhash::HashMap<&'a str, Vec<&'a str>> {
    let mut grants: foldhash::HashMap<&'a str, Vec<&'a str>> = Default::default();
    if roles.is_empty() {
        return grants;
    }
    for group in groups {
        let Some(values) = roles.get(&group.name) else {
            continue;
        };
        for member in &group.members {
            grants
                .entry(member.as_str())
                .or_default()
                .extend(values.iter().map(String::as_str));
        }
    }
    for held in grants.values_mut() {
        held.sort_unstable();
        held.dedup();
    }
    grants
}

pub(crate) fn members_of<'a>(groups: &'a [SourceGroup], names: &[String]) -> HashSet<&'a str> {
    let named = || groups.iter().filter(|group| names.contains(&group.name));
    // Sized up front: grown by doubling, a million members would be rehashed over and over.
    let mut members = HashSet::with_capacity_and_hasher(
        named().map(|g| g.members.len()).sum(),
        Default::default(),
    );
    members.extend(named().flat_map(|group| group.members.iter().map(SourceId::as_str)));
    members
}

struct Candidate {
    user_name: String,
    state: UserState,
    /// Empty when claimed.
    attrs: Attrs,
    /// The link the links claimed it as last pushed by ([`Claims::users`]).
    claim: Option<LinkHandle>,
}

/// What mapping needs of a record once its attributes are gone.
struct Evaluated {
    source_id: SourceId,
    /// The usable email of a record invalid for another reason: a broken record still claims
    /// its email, and must not let a second record take it quietly. (A valid record's is in
    /// its `Candidate`; see `claimed`.)
    user_name: Option<String>,
    /// The attribute the email came from, for messages about it.
    email_field: &'static str,
    /// The scoping rule that excludes the record, if one does.
    excluded_by: Option<String>,
    /// A million of these are held at once: the rare error is boxed.
    outcome: Result<Candidate, Box<InvalidRecord>>,
    /// For a keyed record parsed and claimed: what its link can store.
    stamp: Option<RecordStamp>,
}

impl Evaluated {
    /// The userName this record claims, valid or not.
    fn claimed(&self) -> Option<&str> {
        match &self.outcome {
            Ok(candidate) => Some(&candidate.user_name),
            Err(_) => self.user_name.as_deref(),
        }
    }

    fn refused(user: &SourceUser, email_field: &'static str, record: InvalidRecord) -> Self {
        Evaluated {
            source_id: user.id.clone(),
            user_name: None,
            email_field,
            excluded_by: None,
            outcome: Err(Box::new(record)),
            stamp: None,
        }
    }
}

fn invalid(user: &SourceUser, field: &str, message: String) -> InvalidRecord {
    InvalidRecord {
        source_id: user.id.clone(),
        field: field.to_owned(),
        message,
    }
}

/// A value short enough to quote in a message, escaped so it cannot forge log lines.
fn quote(value: &str) -> String {
    if value.chars().count() <= MAX_QUOTED_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX_QUOTED_CHARS).collect();
        format!("{head:?}…")
    }
}

/// A source attribute's value, or `None` when it is absent, empty or only whitespace.
fn present<'u>(user: &'u SourceUser, name: &str) -> Option<&'u str> {
    if name == "id" {
        return Some(user.id.as_str());
    }
    user.attr(name).filter(|v| !v.trim().is_empty())
}

fn evaluate(
    user: SourceUser,
    record: Option<UserRecord>,
    mapping: &Mapping,
    admins: &Memberships<'_>,
    filters: &[crate::ScopeFilter],
    links: Option<&dyn PushedLinks>,
) -> Evaluated {
    let preset = mapping.preset();
    let email_attrs = preset.email_attrs();
    let email_field = email_attrs.first().copied().unwrap_or("email");
    let (key, known) = match record {
        Some(UserRecord { key, known }) => (Some(key), known),
        None => (None, None),
    };
    if let Some(known) = known {
        // Its bytes are those of a record that mapped, under this mapping and admin flag, to
        // exactly what its link says was pushed: valid, desired and unchanged.
        return Evaluated {
            source_id: user.id,
            user_name: None,
            email_field,
            excluded_by: None,
            outcome: Ok(Candidate {
                user_name: known.user_name,
                state: if known.active {
                    UserState::Activated
                } else {
                    UserState::Suspended
                },
                attrs: Attrs::new(),
                claim: Some(known.claim),
            }),
            stamp: None,
        };
    }
    // Size first: nothing below should even look at a hostile value. One pass over the record
    // settles the common case (nothing oversized) and brings it into cache with loads that do
    // not wait on one another, for the dozens of lookups below.
    let oversized = |v: &str| v.len() > MAX_VALUE_BYTES;
    let any_oversized = oversized(user.id.as_str()) || user.attrs.iter().any(|(_, v)| oversized(v));
    for (name, what) in mapping.read_attrs().filter(|_| any_oversized) {
        if let Some(value) = present(&user, name)
            && value.len() > MAX_VALUE_BYTES
        {
            let message = format!(
                "is {} bytes, over the {MAX_VALUE_BYTES}-byte limit ({what})",
                value.len()
            );
            return Evaluated::refused(&user, email_field, invalid(&user, name, message));
        }
    }
    // Then control characters: a NUL or an escape sequence in a displayName would be sent to
    // the target as is (and reach its UI, logs and exports). A value read by the mapping that
    // holds one makes the record invalid, naming the field; attributes the mapping does not
    // read (a multi-line note) are not its business. A byte scan settles the common case.
    let any_control = |v: &str| v.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2);
    if any_control(user.id.as_str()) || user.attrs.iter().any(|(_, v)| any_control(v)) {
        for (name, what) in mapping.read_attrs() {
            if let Some(value) = present(&user, name)
                && let Some(c) = value.chars().find(|c| c.is_control())
            {
                let message = format!(
                    "{} holds the control character U+{:04X} ({what}); control characters are \
                     never sent to the target",
                    quote(value),
                    u32::from(c)
                );
                return Evaluated::refused(&user, email_field, invalid(&user, name, message));
            }
        }
    }

    let Some((field, raw)) = email_attrs
        .iter()
        .find_map(|&name| present(&user, name).map(|v| (name, v)))
    else {
        let alternatives = email_attrs
            .iter()
            .skip(1)
            .map(|a| format!(" (nor is {a})"))
            .collect::<String>();
        let message =
            format!("is missing{alternatives}: the email is the user's identity in the target");
        return Evaluated::refused(&user, email_field, invalid(&user, email_field, message));
    };
    let user_name = match email::user_name(raw) {
        Ok(name) => name,
        Err(why) => {
            let message = format!("{} {why}", quote(raw));
            return Evaluated::refused(&user, field, invalid(&user, field, message));
        }
    };

    let outcome = state(&user, preset).and_then(|state| {
        let mut pairs = attributes(&user, &user_name, mapping, admins)?;
        mapping
            .fit(&mut pairs)
            .map_err(|(field, message)| invalid(&user, &field, message))?;
        let active = state == UserState::Activated;
        let claim = links.and_then(|l| l.claim(user.id.as_str(), &user_name, active, &pairs));
        // A claimed user's map is never built: no key shared across threads is cloned.
        let attrs: Attrs = if claim.is_some() {
            Attrs::new()
        } else {
            pairs
                .into_iter()
                .map(|(path, value)| (path.clone(), value))
                .collect()
        };
        Ok(Candidate {
            user_name: user_name.clone(),
            state,
            attrs,
            claim,
        })
    });
    // One copy of the name per record: the candidate's, or this one for an invalid record.
    let user_name = outcome.is_err().then_some(user_name);
    let excluded_by = crate::scope_filter::excluded_by(filters, &user);
    let stamp = match (&outcome, key) {
        // Only a record that maps to a desired user: a DELETED one can have an inactive
        // user's fingerprint, but must never come back as a suspended user.
        // Nor a holder of an admin role: the stamp keeps the admin flag only, so a change of
        // their role groups would go unseen (`ScannedJson::resolve` parses them every time).
        (Ok(candidate), Some(key))
            if candidate.claim.is_some()
                && candidate.state != UserState::Deleted
                && excluded_by.is_none()
                && !admins.grants.contains_key(user.id.as_str()) =>
        {
            Some(RecordStamp {
                key,
                admin: admins.admins.contains(user.id.as_str()),
            })
        }
        _ => None,
    };
    Evaluated {
        // The record's attributes are dropped here, on the thread that mapped it.
        source_id: user.id,
        user_name,
        email_field: field,
        excluded_by,
        outcome: outcome.map_err(Box::new),
        stamp,
    }
}

fn parse_state(value: &str) -> Option<UserState> {
    let value = value.trim();
    [
        ("ACTIVATED", UserState::Activated),
        ("SUSPENDED", UserState::Suspended),
        ("DELETED", UserState::Deleted),
    ]
    .into_iter()
    .find(|(name, _)| name.eq_ignore_ascii_case(value))
    .map(|(_, state)| state)
}

fn state(user: &SourceUser, preset: Preset) -> Result<UserState, InvalidRecord> {
    let from_state = match present(user, "state") {
        None => UserState::Activated,
        Some(value) => parse_state(value).ok_or_else(|| {
            invalid(
                user,
                "state",
                format!(
                    "is {}; expected ACTIVATED, SUSPENDED or DELETED",
                    quote(value)
                ),
            )
        })?,
    };
    let from_enabled = match (preset, present(user, "accountEnabled")) {
        (Preset::Jumpcloud, _) | (Preset::Entra, None) => UserState::Activated,
        (Preset::Entra, Some(value)) => match value.trim() {
            v if v.eq_ignore_ascii_case("true") => UserState::Activated,
            v if v.eq_ignore_ascii_case("false") => UserState::Suspended,
            _ => {
                return Err(invalid(
                    user,
                    "accountEnabled",
                    format!("is {}; expected true or false", quote(value)),
                ));
            }
        },
    };
    // When two attributes speak, the more restrictive wins: a disabled account stays disabled.
    Ok(from_state.max(from_enabled))
}

/// The mapped attributes in path order, one value a path: what `Attrs` would hold, before
/// it is built (a claimed user's never is).
fn attributes<'m>(
    user: &SourceUser,
    user_name: &str,
    mapping: &'m Mapping,
    admins: &Memberships<'_>,
) -> Result<Vec<(&'m AttrKey, AttrValue)>, InvalidRecord> {
    let mut attrs = Vec::with_capacity(mapping.entries().len() + 2);
    for (path, source) in mapping.entries() {
        // The role and the work email are set below, whatever else maps to their paths.
        if path.as_str() == paths::ROLE || path.as_str() == paths::WORK_EMAIL {
            continue;
        }
        let value = match source {
            Source::Attr(name) => present(user, name).map(AttrValue::text),
            Source::Ref(name) => present(user, name).map(|id| AttrValue::Ref {
                user: SourceId::new(id),
            }),
            Source::Literal(text) => Some(AttrValue::text(text.as_str())),
            Source::Expr { expr, default } => expr
                .eval(&|name| present(user, name))
                .map_err(|e| invalid(user, path.as_str(), e.to_string()))?
                .filter(|v| !v.trim().is_empty())
                .or_else(|| default.clone())
                .map(AttrValue::text),
            Source::NameOrParts { name, parts } => {
                present(user, name).map(AttrValue::text).or_else(|| {
                    let joined = parts
                        .iter()
                        .filter_map(|part| present(user, part).map(str::trim))
                        .collect::<Vec<_>>()
                        .join(" ");
                    (!joined.is_empty()).then(|| AttrValue::text(joined))
                })
            }
        };
        if let Some(value) = value {
            attrs.push((path, value));
        }
    }
    // Entries come in path order (a BTreeMap); these go where their paths sort.
    let mut insert = |path: &'m AttrKey, value: AttrValue| {
        let at = attrs.partition_point(|(p, _)| p.as_str() < path.as_str());
        attrs.insert(at, (path, value));
    };
    if let Some(role) = mapping.role() {
        let value = if admins.admins.contains(user.id.as_str()) {
            &role.admin
        } else {
            &role.user
        };
        insert(role.path(), AttrValue::text(value.as_str()));
    }
    if let (Some(roles), Some(held)) = (mapping.admin_roles(), admins.grants.get(user.id.as_str()))
    {
        for role in held {
            if let Some((path, kind)) = roles.entry(role) {
                insert(path, AttrValue::text(kind));
            }
        }
    }
    if let Some(path) = mapping.work_email() {
        insert(path, AttrValue::text(user_name));
    }
    Ok(attrs)
}

/// Each email more than one record claims, with those records in record order. The emails'
/// hashes are computed and sorted on all cores, and emails compared only where hashes tie: a
/// map of a million emails would be built on one core, a cache miss per record.
fn shared_emails(evaluated: &[Evaluated]) -> Vec<(&str, Vec<usize>)> {
    let hasher = foldhash::fast::RandomState::default();
    let mut hashed: Vec<(u64, usize)> = evaluated
        .par_iter()
        .enumerate()
        .filter_map(|(at, entry)| Some((hasher.hash_one(entry.claimed()?), at)))
        .collect();
    hashed.par_sort_unstable();
    let mut shared = Vec::new();
    for tie in hashed
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|tie| tie.len() > 1)
    {
        // Almost surely one email: grouped by the email itself, each in record order.
        let mut names: Vec<(&str, usize)> = tie
            .iter()
            .filter_map(|&(_, at)| Some((evaluated.get(at)?.claimed()?, at)))
            .collect();
        names.sort_unstable();
        for same in names
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|same| same.len() > 1)
        {
            shared.push((same[0].0, same.iter().map(|&(_, at)| at).collect()));
        }
    }
    shared
}

/// Every record whose email another record also has (case-insensitively) becomes invalid: which
/// of them the target account belongs to is the directory admin's call, not ours.
fn mark_duplicate_emails(evaluated: &mut [Evaluated]) {
    let shared = shared_emails(evaluated);
    let mut marks: Vec<(usize, InvalidRecord)> = Vec::new();
    for (name, indexes) in &shared {
        let mut ids: Vec<&SourceId> = indexes.iter().map(|&i| &evaluated[i].source_id).collect();
        ids.sort();
        for &index in indexes {
            let entry = &evaluated[index];
            let others: Vec<&SourceId> = ids
                .iter()
                .copied()
                .filter(|id| **id != entry.source_id)
                .collect();
            let named = others
                .iter()
                .take(MAX_NAMED_DUPLICATES)
                .map(|id| id.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let more = others.len().saturating_sub(MAX_NAMED_DUPLICATES);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            marks.push((
                index,
                InvalidRecord {
                    source_id: entry.source_id.clone(),
                    // The attribute the email came from for this record.
                    field: entry.email_field.to_owned(),
                    message: format!(
                        "{} is also the email (compared case-insensitively) of user {named}{more}",
                        quote(name)
                    ),
                },
            ));
        }
    }
    for (index, record) in marks {
        let entry = &mut evaluated[index];
        // A record already invalid keeps its first reason: one record per user.
        if entry.outcome.is_ok() {
            entry.outcome = Err(Box::new(record));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(id: &str, name: &str) -> (DesiredUser, bool) {
        let user = DesiredUser {
            source_id: SourceId::new(id),
            user_name: name.to_owned(),
            active: true,
            attrs: Attrs::new(),
        };
        (user, false)
    }

    proptest! {
        /// The prefix-keyed sort orders exactly as comparing (userName, source id) in full,
        /// with names that tie on their first 16 bytes, are prefixes of one another, or
        /// differ only past the prefix or only in the source id.
        #[test]
        fn prefix_sort_is_the_full_sort(
            names in proptest::collection::vec(
                ("[ab]{0,3}", prop::sample::select(vec!["", "x", "\u{e9}", "0123456789abcdef", "0123456789abcdefg", "0123456789abcdef\u{0}"]), "[ab]{0,2}"),
                0..40,
            ),
        ) {
            let users: Vec<(DesiredUser, usize)> = names
                .iter()
                .enumerate()
                .map(|(i, (head, middle, tail))| (user(&format!("u{}", i % 7), &format!("{head}{middle}{tail}")).0, i))
                .collect();
            let mut expected = users.clone();
            expected.sort_by(|(a, _), (b, _)| {
                (a.user_name.as_str(), &a.source_id).cmp(&(b.user_name.as_str(), &b.source_id))
            });
            let (aux, plain): (Vec<usize>, Vec<DesiredUser>) =
                users.into_iter().map(|(u, i)| (i, u)).unzip();
            let (sorted, aux) = sort_by_user_name(plain.clone(), aux);
            let key = |v: &[DesiredUser]| -> Vec<(String, String)> {
                v.iter().map(|u| (u.user_name.clone(), u.source_id.to_string())).collect()
            };
            let expected_users: Vec<DesiredUser> = expected.iter().map(|(u, _)| u.clone()).collect();
            prop_assert_eq!(key(&sorted), key(&expected_users));
            // Each value follows its user (users with equal keys are interchangeable).
            let followed: Vec<DesiredUser> = aux.iter().map(|&i| plain[i].clone()).collect();
            prop_assert_eq!(key(&followed), key(&sorted));
        }
    }
}
