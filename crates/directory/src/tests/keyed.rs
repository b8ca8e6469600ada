//! The keyed read (`scan_json` + `resolve` + `map_keyed`): recognising a record by its stamp
//! must never change what mapping decides. Each case maps a directory, stamps what came out
//! unchanged as a cycle would, changes the directory, and compares the keyed read of the
//! change with a full read and map of it against the same links.

use super::{TestLinks, jumpcloud};
use crate::{
    Keyed, Mapped, Mapping, RolesConfig, Scan, ScopeConfig, ScopeFilter, StampedUser, map_keyed,
    map_users_against, read_json, scan_json,
};
use scimsync_model::{Claims, RecordKey, RecordStamp, Snapshot};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

/// A link as the test keeps it: fingerprint, userName, active, and the stamp once proved.
#[derive(Clone)]
struct TestLink {
    hash: String,
    user_name: String,
    active: bool,
    stamp: Option<RecordStamp>,
}

struct Setup {
    scope: ScopeConfig,
    roles: RolesConfig,
    mapping: Mapping,
}

impl Setup {
    /// The keyed read of `path`, recognising the records `links` are stamped with (named as
    /// `index` names them).
    fn resolve(
        &self,
        path: &Path,
        links: &HashMap<String, TestLink>,
        index: &TestLinks,
    ) -> Result<Keyed, crate::SourceError> {
        let context = self.mapping.record_context(&self.scope);
        let scanned = match scan_json(path, &context)? {
            Scan::Keyed(scanned) => scanned,
            Scan::Whole(_) => panic!("a regular JSON file is keyed"),
        };
        let by_key: HashMap<RecordKey, (&String, &TestLink)> = links
            .iter()
            .filter_map(|(id, l)| Some((l.stamp?.key, (id, l))))
            .collect();
        scanned.resolve(&self.roles, |key| {
            by_key.get(key).map(|(id, l)| StampedUser {
                source_id: id.as_str(),
                user_name: &l.user_name,
                active: l.active,
                admin: l.stamp.is_some_and(|s| s.admin),
                link: index.handle(id).expect("every test link is indexed"),
            })
        })
    }

    fn new() -> Self {
        Setup {
            scope: ScopeConfig {
                groups: Some(vec!["Miro Users".to_owned()]),
                filters: vec![
                    serde_json::from_value::<ScopeFilter>(json!({
                        "name": "no contractors",
                        "clauses": [{"attribute": "jobTitle", "operator": "NOT_EQUALS", "value": "Contractor"}]
                    }))
                    .unwrap(),
                ],
            },
            roles: RolesConfig {
                admin_groups: vec!["Miro Admins".to_owned()],
                ..RolesConfig::default()
            },
            mapping: jumpcloud(),
        }
    }

    fn full(&self, path: &Path, index: &TestLinks) -> (Mapped, Claims) {
        let Snapshot { users, groups } = read_json(path).unwrap();
        map_users_against(
            users,
            &groups,
            &self.scope,
            &self.roles,
            &self.mapping,
            index,
        )
    }

    /// The keyed read and map, and how many records were recognised.
    fn keyed(
        &self,
        path: &Path,
        links: &HashMap<String, TestLink>,
        index: &TestLinks,
    ) -> (Mapped, Claims, usize) {
        let keyed: Keyed = self.resolve(path, links, index).unwrap();
        let recognised = keyed.records.iter().filter(|r| r.known.is_some()).count();
        let (mapped, claims, _) = map_keyed(keyed, &self.scope, &self.roles, &self.mapping, index);
        (mapped, claims, recognised)
    }
}

/// The links as mapping consults them.
fn index(links: &HashMap<String, TestLink>) -> TestLinks {
    TestLinks::new(links.iter().map(|(id, l)| (id.as_str(), l.hash.as_str())))
}

fn user(i: usize) -> Value {
    json!({
        "id": format!("u{i}"),
        "email": format!("User.{i}@Example.com"),
        "firstname": format!("First{i}"),
        "lastname": "Last",
        "department": "Sales",
        "jobTitle": "Rep",
        "state": "ACTIVATED",
    })
}

fn directory(users: Vec<Value>, admins: &[&str], members: &[&str]) -> Value {
    json!({
        "users": users,
        "groups": [
            {"id": "g1", "name": "Miro Users", "members": members},
            {"id": "g2", "name": "Miro Admins", "members": admins},
        ],
    })
}

fn write(dir: &Path, doc: &Value) -> std::path::PathBuf {
    let path = dir.join("directory.json");
    // One record a line, as exports write them: the records' bytes are what is keyed.
    let mut text = String::from("{\"users\": [\n");
    let users = doc["users"].as_array().unwrap();
    for (i, u) in users.iter().enumerate() {
        text.push_str(&u.to_string());
        text.push_str(if i + 1 < users.len() { ",\n" } else { "\n" });
    }
    text.push_str("], \"groups\": ");
    text.push_str(&doc["groups"].to_string());
    text.push('}');
    std::fs::write(&path, text).unwrap();
    path
}

/// The links a first cycle leaves for `doc`, stamped as the second (unchanged) cycle stamps
/// them.
fn pushed_and_stamped(setup: &Setup, dir: &Path, doc: &Value) -> HashMap<String, TestLink> {
    let path = write(dir, doc);
    let (first, _) = setup.full(&path, &index(&HashMap::new()));
    let mut links = links_of(&first);
    let links_index = index(&links);
    let (second, claims, recognised) = setup.keyed(&path, &links, &links_index);
    assert_eq!(recognised, 0, "nothing is stamped yet");
    assert_eq!(claims.users.len(), second.desired.len());
    assert!(claims.users.iter().all(Option::is_some));
    assert_eq!(claims.stamps.len(), second.desired.len());
    for user in &second.desired {
        let id = user.source_id.as_str();
        let handle = links_index.handle(id);
        let (_, stamp) = claims
            .stamps
            .iter()
            .find(|(h, _)| Some(*h) == handle)
            .unwrap();
        links.get_mut(id).unwrap().stamp = Some(*stamp);
    }
    links
}

/// The links a cycle leaves for what it mapped, not stamped yet.
fn links_of(first: &Mapped) -> HashMap<String, TestLink> {
    first
        .desired
        .iter()
        .map(|u| {
            let link = TestLink {
                hash: u.fingerprint(),
                user_name: u.user_name.clone(),
                active: u.active,
                stamp: None,
            };
            (u.source_id.as_str().to_owned(), link)
        })
        .collect()
}

/// The base directory written to `dir`, and its links as stamped.
fn stamped_base(setup: &Setup, dir: &Path) -> (HashMap<String, TestLink>, std::path::PathBuf) {
    let (users, admins, members) = base();
    let doc = directory(users, &admins, &members);
    let links = pushed_and_stamped(setup, dir, &doc);
    (links, write(dir, &doc))
}

/// The base directory: ten users, all in scope, u0 an admin.
fn base() -> (Vec<Value>, Vec<&'static str>, Vec<&'static str>) {
    let users = (0..10).map(user).collect();
    let members = vec!["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"];
    (users, vec!["u0"], members)
}

/// Runs one change: the keyed read of the changed directory must map exactly as the full read
/// does, and recognise `recognised` records.
fn check(change: impl FnOnce(&mut Vec<Value>, &mut Vec<&str>, &mut Vec<&str>), recognised: usize) {
    let setup = Setup::new();
    let dir = tempfile::tempdir().unwrap();
    let (mut users, mut admins, mut members) = base();
    let links = pushed_and_stamped(
        &setup,
        dir.path(),
        &directory(users.clone(), &admins, &members),
    );
    change(&mut users, &mut admins, &mut members);
    let path = write(dir.path(), &directory(users, &admins, &members));
    let index = index(&links);
    let (full, full_claims) = setup.full(&path, &index);
    let (keyed, keyed_claims, got) = setup.keyed(&path, &links, &index);
    assert_eq!(keyed, full);
    // The same users claimed by the same links; only a keyed read proposes stamps.
    assert_eq!(keyed_claims.users, full_claims.users);
    assert!(full_claims.stamps.is_empty());
    assert_eq!(got, recognised, "records recognised");
}

#[test]
fn an_unchanged_directory_is_recognised_whole_and_maps_the_same() {
    check(|_, _, _| {}, 10);
}

#[test]
fn a_changed_attribute_is_parsed_and_mapped_again() {
    check(|users, _, _| users[3]["department"] = json!("Support"), 9);
}

#[test]
fn a_record_written_differently_is_parsed_but_maps_unchanged() {
    // Same values, keys in another order: other bytes, same user.
    check(
        |users, _, _| {
            let mut reordered = serde_json::Map::new();
            for key in [
                "state",
                "jobTitle",
                "id",
                "email",
                "firstname",
                "lastname",
                "department",
            ] {
                reordered.insert(key.to_owned(), users[4][key].clone());
            }
            users[4] = Value::Object(reordered);
        },
        9,
    );
}

#[test]
fn joining_or_leaving_an_admin_group_is_not_hidden_by_a_recognised_record() {
    check(|_, admins, _| admins.push("u5"), 9);
    check(|_, admins, _| admins.clear(), 9);
}

#[test]
fn leaving_the_scope_groups_unassigns_a_recognised_user() {
    check(|_, _, members| members.retain(|m| *m != "u6"), 10);
}

#[test]
fn deleted_suspended_and_filtered_records_are_never_taken_as_known() {
    check(|users, _, _| users[1]["state"] = json!("DELETED"), 9);
    check(|users, _, _| users[2]["state"] = json!("SUSPENDED"), 9);
    check(|users, _, _| users[7]["jobTitle"] = json!("Contractor"), 9);
}

#[test]
fn a_new_record_claiming_a_known_users_email_makes_both_invalid() {
    check(
        |users, _, members| {
            let mut twin = user(42);
            twin["email"] = json!("user.8@example.com");
            users.push(twin);
            members.push("u42");
        },
        10,
    );
}

#[test]
fn a_removed_record_is_simply_absent() {
    check(
        |users, _, members| {
            users.remove(9);
            members.retain(|m| *m != "u9");
        },
        9,
    );
}

#[test]
fn a_key_recognised_under_another_mapping_context_is_not() {
    let setup = Setup::new();
    let dir = tempfile::tempdir().unwrap();
    let (links, path) = stamped_base(&setup, dir.path());
    let mut other = Setup::new();
    other.scope.filters.clear();
    let (_, _, recognised) = other.keyed(&path, &links, &index(&links));
    assert_eq!(recognised, 0);
}

#[test]
fn the_keyed_read_of_a_bad_file_fails_as_the_full_read_does() {
    let setup = Setup::new();
    let dir = tempfile::tempdir().unwrap();
    let (links, path) = stamped_base(&setup, dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let line_of_u1 = text
        .lines()
        .find(|l| l.contains("\"u1\""))
        .unwrap()
        .to_owned();
    for bad in [
        // A bad escape in one record (it is parsed: it is not recognised).
        text.replace("\"First3\"", "\"First\\q3\""),
        // The same record twice: both recognised, still a duplicate id.
        text.replacen(&line_of_u1, &format!("{line_of_u1}\n{line_of_u1}"), 1),
        // Cut short after a recognised record.
        text[..text.find(&line_of_u1).unwrap() + line_of_u1.len()].to_owned(),
    ] {
        std::fs::write(&path, &bad).unwrap();
        let expected = read_json(&path).unwrap_err().to_string();
        let got = setup
            .resolve(&path, &links, &index(&links))
            .unwrap_err()
            .to_string();
        assert_eq!(got, expected);
    }
}

#[test]
fn a_file_changed_between_the_two_passes_is_read_whole_again() {
    let setup = Setup::new();
    let dir = tempfile::tempdir().unwrap();
    let (users, admins, members) = base();
    let path = write(dir.path(), &directory(users.clone(), &admins, &members));
    let context = setup.mapping.record_context(&setup.scope);
    let Scan::Keyed(scanned) = scan_json(&path, &context).unwrap() else {
        panic!("a regular JSON file is keyed");
    };
    // Rewritten in place between keying and parsing: same length, other values.
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replace("First3", "Third3");
    assert_eq!(changed.len(), text.len());
    std::fs::write(&path, &changed).unwrap();
    let keyed = scanned.resolve(&setup.roles, |_| None).unwrap();
    assert_eq!(keyed.snapshot, read_json(&path).unwrap());
}

/// `[roles.admin_roles]`: the stamp holds the admin flag only, so a role group's members are
/// never stamped, and one who joins a role group is parsed whatever its stamp says.
#[test]
fn joining_or_leaving_an_admin_role_group_is_not_hidden_by_a_recognised_record() {
    let mut setup = Setup::new();
    setup.roles.admin_roles = [("Helpdesk".to_owned(), vec!["User Admin".to_owned()])].into();
    setup.mapping =
        jumpcloud().with_admin_roles(Some("organization_admin_role"), ["User Admin".to_owned()]);
    let doc = |helpdesk: &[&str]| {
        let (users, admins, members) = base();
        let mut doc = directory(users, &admins, &members);
        doc["groups"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "g3", "name": "Helpdesk", "members": helpdesk}));
        doc
    };
    let role = scimsync_model::paths::admin_role("User Admin");
    for (before, after) in [(vec![], vec!["u5"]), (vec!["u5"], vec![])] {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &doc(&before));
        let (first, _) = setup.full(&path, &index(&HashMap::new()));
        let mut links = links_of(&first);
        let links_index = index(&links);
        let (_, claims, _) = setup.keyed(&path, &links, &links_index);
        assert_eq!(
            claims.stamps.len(),
            10 - before.len(),
            "holders are not stamped"
        );
        for (id, link) in links.iter_mut() {
            let handle = links_index.handle(id);
            if let Some((_, stamp)) = claims.stamps.iter().find(|(h, _)| Some(*h) == handle) {
                link.stamp = Some(*stamp);
            }
        }
        let path = write(dir.path(), &doc(&after));
        let links_index = index(&links);
        let (full, _) = setup.full(&path, &links_index);
        let (keyed, _, got) = setup.keyed(&path, &links, &links_index);
        assert_eq!(got, 9, "u5 is parsed");
        let u5 = |m: &Mapped| {
            m.desired
                .iter()
                .find(|u| u.source_id.as_str() == "u5")
                .map(|u| u.attrs.contains_key(role.as_str()))
        };
        assert_eq!(u5(&full), Some(!after.is_empty()));
        assert_eq!(keyed, full);
    }
}
