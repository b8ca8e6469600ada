//! Synthetic directories, deterministic from a seed: the same (users, groups, seed) always
//! gives the same bytes, so anyone can reproduce a benchmark's input.
//!
//! Every user is in "Miro Users" (the scope group of the benchmarks' sync.toml); about 1 in 50
//! is in "Miro Admins"; the other groups get members drawn from the seeded RNG so that the
//! memberships add up to about one per user.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scimsync_model::{Snapshot, SourceAttrs, SourceGroup, SourceId, SourceUser};
use std::io::{self, Write};

const FIRST: &[&str] = &[
    "Ann", "Bob", "Cy", "Dee", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lea", "Mo",
    "Nia", "Oto", "Pia", "Quin", "Rae", "Sol", "Tess",
];
const LAST: &[&str] = &[
    "Lee", "Stone", "Park", "Ruiz", "Khan", "Berg", "Cole", "Diaz", "Eng", "Fox", "Gray", "Hale",
];
const DEPARTMENTS: &[&str] = &[
    "Eng", "Sales", "Ops", "Finance", "Legal", "Support", "Design",
];

/// The scope group every generated user belongs to.
pub const SCOPE_GROUP: &str = "Miro Users";
pub const ADMIN_GROUP: &str = "Miro Admins";

/// One generated user, as a source record (the JumpCloud-style snapshot columns).
pub fn user(i: usize, rng: &mut StdRng) -> SourceUser {
    let first = FIRST[rng.random_range(0..FIRST.len())];
    let last = LAST[rng.random_range(0..LAST.len())];
    let dept = DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())];
    let mut attrs = SourceAttrs::new();
    let mut put = |k: &str, v: String| {
        attrs.insert(k.into(), v);
    };
    put(
        "email",
        format!(
            "{}.{}.{i}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
    );
    put("firstname", first.to_owned());
    put("lastname", last.to_owned());
    put("displayname", format!("{first} {last}"));
    put("company", "Acme".to_owned());
    put("department", dept.to_owned());
    put("employeeidentifier", format!("E{i:08}"));
    put("jobTitle", format!("{dept} {}", rng.random_range(1..6)));
    put("costCenter", format!("CC{}", rng.random_range(100..140)));
    put("state", "ACTIVATED".to_owned());
    SourceUser {
        id: SourceId::new(user_id(i)),
        attrs,
    }
}

pub fn user_id(i: usize) -> String {
    format!("u{i:08}")
}

/// A whole synthetic directory of `users` users and `groups` groups (at least the two scope
/// and role groups).
pub fn directory(users: usize, groups: usize, seed: u64) -> Snapshot {
    let mut rng = StdRng::seed_from_u64(seed);
    let users_vec: Vec<SourceUser> = (0..users).map(|i| user(i, &mut rng)).collect();
    let mut out = vec![
        SourceGroup {
            id: SourceId::new("g-users"),
            name: SCOPE_GROUP.to_owned(),
            members: users_vec.iter().map(|u| u.id.clone()).collect(),
            unresolved: Vec::new(),
        },
        SourceGroup {
            id: SourceId::new("g-admins"),
            name: ADMIN_GROUP.to_owned(),
            members: users_vec.iter().step_by(50).map(|u| u.id.clone()).collect(),
            unresolved: Vec::new(),
        },
    ];
    let extra = groups.saturating_sub(2);
    if let Some(per_group) = users.checked_div(extra) {
        let per_group = per_group.max(1);
        for g in 0..extra {
            let members = (0..per_group)
                .map(|_| SourceId::new(user_id(rng.random_range(0..users.max(1)))))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            out.push(SourceGroup {
                id: SourceId::new(format!("g{g:06}")),
                name: format!("Team {g}"),
                members,
                unresolved: Vec::new(),
            });
        }
    }
    Snapshot {
        users: users_vec,
        groups: out,
    }
}

/// Changes `percent` % of the users (chosen by the seeded RNG): a new department and title.
/// Returns how many changed.
pub fn change(snapshot: &mut Snapshot, percent: f64, seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_c4a6_e000_0001);
    let mut changed = 0;
    for user in &mut snapshot.users {
        if rng.random_bool((percent / 100.0).clamp(0.0, 1.0)) {
            user.attrs.insert("department".into(), "Reorg");
            user.attrs.insert(
                "jobTitle".into(),
                format!("Reorg {}", rng.random_range(1..9)),
            );
            changed += 1;
        }
    }
    changed
}

/// Writes a snapshot in the JSON format scimsync reads, one user a line (streamed: no
/// `serde_json::Value` of the whole directory).
pub fn write_json(snapshot: &Snapshot, out: impl Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    out.write_all(b"{\"users\": [\n")?;
    for (n, user) in snapshot.users.iter().enumerate() {
        if n > 0 {
            out.write_all(b",\n")?;
        }
        let mut record = serde_json::Map::with_capacity(user.attrs.len() + 1);
        record.insert("id".into(), user.id.as_str().into());
        for (k, v) in &user.attrs {
            record.insert(k.to_string(), v.into());
        }
        serde_json::to_writer(&mut out, &record)?;
    }
    out.write_all(b"\n],\n\"groups\": [\n")?;
    for (n, group) in snapshot.groups.iter().enumerate() {
        if n > 0 {
            out.write_all(b",\n")?;
        }
        let members: Vec<&str> = group.members.iter().map(SourceId::as_str).collect();
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({"id": group.id.as_str(), "name": group.name, "members": members}),
        )?;
    }
    out.write_all(b"\n]}\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_scimsync_reads_them() {
        let render = |seed| {
            let mut bytes = Vec::new();
            write_json(&directory(200, 12, seed), &mut bytes).unwrap();
            bytes
        };
        assert_eq!(render(7), render(7));
        assert_ne!(render(7), render(8));
        let read = scimsync_directory::parse_json(&render(7), "generated").unwrap();
        assert_eq!(read, directory(200, 12, 7));
    }

    #[test]
    fn change_touches_about_the_asked_share() {
        let mut snapshot = directory(10_000, 2, 1);
        let changed = change(&mut snapshot, 1.0, 1);
        assert!((50..=150).contains(&changed), "{changed}");
        let base = directory(10_000, 2, 1);
        let differing = base
            .users
            .iter()
            .zip(&snapshot.users)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, changed);
    }
}
