//! The keyed read (`scan_json` + `resolve` + `map_keyed`): recognising a record by its stamp
//! must never change what mapping decides. Each case maps a directory, stamps what came out
//! unchanged as a cycle would, changes the directory, and compares the keyed read of the
//! change with a full read and map of it against the same links.

use super::jumpcloud;
use crate::json::scan_json_split;
use crate::{
    Keyed, Mapped, Mapping, RolesConfig, Scan, ScopeConfig, ScopeFilter, StampedUser, map_keyed,
    map_users, read_json,
};
use scimsync_model::{RecordKey, RecordStamp, Snapshot};
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
    /// The keyed read of `path`, recognising the records `links` are stamped with.
    fn resolve(
        &self,
        path: &Path,
        links: &HashMap<String, TestLink>,
    ) -> Result<Keyed, crate::SourceError> {
        let context = self.mapping.record_context(&self.scope);
        let scanned = match scan_json_split(path, &context, 0)? {
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
                link: None,
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

    fn full(&self, path: &Path, links: &HashMap<String, TestLink>) -> Mapped {
        let Snapshot { users, groups } = read_json(path).unwrap();
        let pushed: HashMap<&str, &str> = links
            .iter()
            .map(|(id, l)| (id.as_str(), l.hash.as_str()))
            .collect();
        map_users(
            users,
            &groups,
            &self.scope,
            &self.roles,
            &self.mapping,
            Some(&pushed),
        )
    }

    /// The keyed read and map, and how many records were recognised.
    fn keyed(&self, path: &Path, links: &HashMap<String, TestLink>) -> (Mapped, usize) {
        let keyed: Keyed = self.resolve(path, links).unwrap();
        let recognised = keyed.records.iter().filter(|r| r.known.is_some()).count();
        let pushed: HashMap<&str, &str> = links
            .iter()
            .map(|(id, l)| (id.as_str(), l.hash.as_str()))
            .collect();
        let (mapped, _) = map_keyed(keyed, &self.scope, &self.roles, &self.mapping, &pushed);
        (mapped, recognised)
    }
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
    let mut links = links_of(&setup.full(&path, &HashMap::new()));
    let (second, recognised) = setup.keyed(&path, &links);
    assert_eq!(recognised, 0, "nothing is stamped yet");
    assert!(second.unchanged.iter().all(|u| *u));
    for (at, stamp) in &second.stamps {
        let id = second.desired[*at].source_id.as_str();
        links.get_mut(id).unwrap().stamp = Some(*stamp);
    }
    assert_eq!(second.stamps.len(), second.desired.len());
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

fn without_stamps(mut mapped: Mapped) -> Mapped {
    mapped.stamps.clear();
    mapped
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
    let full = setup.full(&path, &links);
    let (keyed, got) = setup.keyed(&path, &links);
    assert_eq!(without_stamps(keyed), without_stamps(full));
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
    let (_, recognised) = other.keyed(&path, &links);
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
        let got = setup.resolve(&path, &links).unwrap_err().to_string();
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
    let Scan::Keyed(scanned) = scan_json_split(&path, &context, 0).unwrap() else {
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
        let mut links = links_of(&setup.full(&write(dir.path(), &doc(&before)), &HashMap::new()));
        let (second, _) = setup.keyed(&write(dir.path(), &doc(&before)), &links);
        assert_eq!(
            second.stamps.len(),
            10 - before.len(),
            "holders are not stamped"
        );
        for (at, stamp) in &second.stamps {
            let id = second.desired[*at].source_id.as_str();
            links.get_mut(id).unwrap().stamp = Some(*stamp);
        }
        let path = write(dir.path(), &doc(&after));
        let full = setup.full(&path, &links);
        let (keyed, got) = setup.keyed(&path, &links);
        assert_eq!(got, 9, "u5 is parsed");
        let u5 = |m: &Mapped| {
            m.desired
                .iter()
                .find(|u| u.source_id.as_str() == "u5")
                .map(|u| u.attrs.contains_key(role.as_str()))
        };
        assert_eq!(u5(&full), Some(!after.is_empty()));
        assert_eq!(without_stamps(keyed), without_stamps(full));
    }
}
