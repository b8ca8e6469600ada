use super::{jumpcloud, preset, snapshot};
use crate::{
    InvalidRecord, MAX_VALUE_BYTES, Mapped, Mapping, MappingConfig, MappingError, Preset,
    RolesConfig, ScopeConfig, map,
};
use proptest::prelude::*;
use scimsync_model::{AttrValue, OutOfScopeReason, Snapshot, SourceId, paths};
use serde_json::json;

fn all() -> ScopeConfig {
    ScopeConfig::default()
}

fn scoped(groups: &[&str]) -> ScopeConfig {
    ScopeConfig {
        groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
        ..ScopeConfig::default()
    }
}

fn admins(groups: &[&str]) -> RolesConfig {
    RolesConfig {
        admin_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..RolesConfig::default()
    }
}

fn map_all(snapshot: &Snapshot) -> Mapped {
    map(snapshot, &all(), &RolesConfig::default(), &jumpcloud())
}

fn one_user(user: serde_json::Value) -> Mapped {
    map_all(&snapshot(json!({ "users": [user] })))
}

fn invalid_of(mapped: &Mapped, id: &str) -> InvalidRecord {
    let found = mapped
        .invalid
        .iter()
        .find(|r| r.source_id.as_str() == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} is not invalid: {mapped:#?}"));
    assert!(
        !mapped
            .desired
            .iter()
            .any(|d| d.source_id == found.source_id)
            && !mapped
                .out_of_scope
                .iter()
                .any(|o| o.source_id == found.source_id),
        "an invalid user must be held: in neither desired nor out_of_scope"
    );
    found
}

fn compile(preset: Preset, overrides: &[(&str, &str)]) -> Result<Mapping, MappingError> {
    Mapping::compile(&MappingConfig {
        preset,
        overrides: overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect(),
    })
}

fn text(s: &str) -> AttrValue {
    AttrValue::text(s)
}

#[test]
fn maps_the_spec_example_with_the_jumpcloud_preset() {
    let mapped = one_user(
        json!({"id": "u1", "email": " Ann@Example.com ", "firstname": "Ann",
        "lastname": "Lee", "displayname": "Ann Lee", "company": "Acme", "department": "Eng",
        "employeeidentifier": "E1", "jobTitle": "SRE", "costCenter": "C1", "division": "R&D",
        "manager": "u9", "state": "ACTIVATED"}),
    );
    assert!(mapped.invalid.is_empty(), "{:?}", mapped.invalid);
    let ann = &mapped.desired[0];
    assert_eq!(ann.user_name, "ann@example.com");
    assert!(ann.active);
    let expected = [
        (paths::GIVEN_NAME, text("Ann")),
        (paths::FAMILY_NAME, text("Lee")),
        (paths::DISPLAY_NAME, text("Ann Lee")),
        (paths::ORGANIZATION, text("Acme")),
        (paths::DEPARTMENT, text("Eng")),
        (paths::EMPLOYEE_NUMBER, text("E1")),
        (paths::COST_CENTER, text("C1")),
        (paths::DIVISION, text("R&D")),
        (
            paths::MANAGER,
            AttrValue::Ref {
                user: SourceId::from("u9"),
            },
        ),
        (paths::ROLE, text(paths::USER_ROLE)),
    ];
    for (path, value) in &expected {
        assert_eq!(ann.attrs.get(*path), Some(value), "{path}");
    }
    assert_eq!(ann.attrs.len(), expected.len(), "{:#?}", ann.attrs);
    assert!(!ann.attrs.contains_key(paths::USER_NAME) && !ann.attrs.contains_key(paths::ACTIVE));
    assert!(
        !ann.attrs.contains_key(paths::TITLE),
        "Miro does not store title: not in the preset"
    );
}

#[test]
fn jumpcloud_and_entra_map_the_same_person_the_same_way() {
    let jc = snapshot(json!({"users": [
        {"id": "u1", "email": "Ann@Example.com", "firstname": "Ann", "lastname": "Lee",
         "displayname": "Ann Lee", "company": "Acme", "department": "Eng",
         "employeeidentifier": "E1", "jobTitle": "SRE", "manager": "u9", "state": "suspended"},
        {"id": "u9", "email": "boss@example.com", "firstname": "Bo", "lastname": "Ss"}],
        "groups": [{"id": "g", "name": "Admins", "members": ["u1"]}]}));
    let entra = snapshot(json!({"users": [
        {"id": "u1", "userPrincipalName": "Ann@Example.com", "givenName": "Ann", "surname": "Lee",
         "displayName": "Ann Lee", "companyName": "Acme", "department": "Eng",
         "employeeId": "E1", "jobTitle": "SRE", "manager": "u9", "accountEnabled": false},
        {"id": "u9", "mail": "boss@example.com", "givenName": "Bo", "surname": "Ss"}],
        "groups": [{"id": "g", "name": "Admins", "members": ["u1"]}]}));
    let roles = admins(&["Admins"]);
    let a = map(&jc, &all(), &roles, &preset(Preset::Jumpcloud));
    let b = map(&entra, &all(), &roles, &preset(Preset::Entra));
    assert_eq!(a.desired.len(), 2);
    assert_eq!(a, b);
    assert!(!a.desired[0].active, "suspended / accountEnabled=false");
}

#[test]
fn entra_honours_a_deleted_state_and_refuses_a_bad_account_enabled() {
    let mapped = map(
        &snapshot(json!({"users": [
            {"id": "d", "userPrincipalName": "d@x.co", "accountEnabled": true, "state": "DELETED"},
            {"id": "b", "userPrincipalName": "b@x.co", "accountEnabled": "maybe"},
            {"id": "n", "displayName": "No Mail"}]})),
        &all(),
        &RolesConfig::default(),
        &preset(Preset::Entra),
    );
    assert_eq!(mapped.out_of_scope[0].reason, OutOfScopeReason::Deleted);
    let bad = invalid_of(&mapped, "b");
    assert_eq!(bad.field, "accountEnabled");
    assert!(bad.message.contains("maybe"), "{bad}");
    let missing = invalid_of(&mapped, "n");
    assert_eq!(missing.field, "userPrincipalName");
    assert!(missing.message.contains("mail"), "{missing}");
}

#[test]
fn every_validation_error_names_the_record_and_field() {
    let mapped = map_all(&snapshot(json!({"users": [
        {"id": "no-email", "firstname": "A"},
        {"id": "blank-email", "email": "   "},
        {"id": "two-ats", "email": "a@b@c.co"},
        {"id": "no-dot", "email": "a@localhost"},
        {"id": "space", "email": "a b@c.co"},
        {"id": "control", "email": "a\u{7}b@c.co"},
        {"id": "bad-state", "email": "s@c.co", "state": "ON_LEAVE"},
        {"id": "huge", "email": "h@c.co", "firstname": "x".repeat(MAX_VALUE_BYTES + 1)},
    ]})));
    assert!(mapped.desired.is_empty() && mapped.out_of_scope.is_empty());
    assert_eq!(mapped.invalid.len(), 8);
    for (id, field) in [
        ("no-email", "email"),
        ("blank-email", "email"),
        ("two-ats", "email"),
        ("no-dot", "email"),
        ("space", "email"),
        ("control", "email"),
        ("bad-state", "state"),
        ("huge", "firstname"),
    ] {
        let record = invalid_of(&mapped, id);
        assert_eq!(record.field, field, "{record}");
        let shown = record.to_string();
        assert!(
            shown.starts_with(&format!("user {id}: {field}: ")),
            "{shown}"
        );
    }
    assert!(
        invalid_of(&mapped, "bad-state")
            .message
            .contains("ON_LEAVE")
    );
}

#[test]
fn control_characters_in_a_mapped_value_make_the_record_invalid_naming_the_field() {
    let mapped = map_all(&snapshot(json!({"users": [
        {"id": "nul", "email": "n@c.co", "displayname": "Ann\u{0}Lee"},
        {"id": "esc", "email": "e@c.co", "department": "Eng\u{1b}[31m"},
        {"id": "c1", "email": "c@c.co", "lastname": "Lee\u{85}"},
        {"id": "del", "email": "d@c.co", "company": "Acme\u{7f}"},
        {"id": "newline", "email": "l@c.co", "firstname": "Ann\nLee"},
        // Not read by the mapping: not its business.
        {"id": "note", "email": "o@c.co", "notes": "line one\nline two"},
        {"id": "fine", "email": "f@c.co", "displayname": "Zoë Ünal – ok"},
    ]})));
    for (id, field, code) in [
        ("nul", "displayname", "U+0000"),
        ("esc", "department", "U+001B"),
        ("c1", "lastname", "U+0085"),
        ("del", "company", "U+007F"),
        ("newline", "firstname", "U+000A"),
    ] {
        let record = invalid_of(&mapped, id);
        assert_eq!(record.field, field, "{record}");
        assert!(record.message.contains(code), "{record}");
        // The message quotes the value escaped: it cannot forge a log line.
        assert!(
            !record.to_string().chars().any(char::is_control),
            "{record}"
        );
    }
    let desired: Vec<&str> = mapped
        .desired
        .iter()
        .map(|u| u.source_id.as_str())
        .collect();
    assert_eq!(desired, ["fine", "note"]);
}

#[test]
fn duplicate_emails_differing_in_case_invalidate_every_record_sharing_them() {
    let mapped = map_all(&snapshot(json!({"users": [
        {"id": "u1", "email": "Ann@Example.com"},
        {"id": "u2", "email": "ann@example.COM"},
        {"id": "u3", "email": " ANN@EXAMPLE.COM", "state": "DELETED"},
        {"id": "u4", "email": "bob@example.com"}]})));
    assert_eq!(mapped.desired.len(), 1);
    assert_eq!(mapped.desired[0].source_id.as_str(), "u4");
    for (id, others) in [
        ("u1", ["u2", "u3"]),
        ("u2", ["u1", "u3"]),
        ("u3", ["u1", "u2"]),
    ] {
        let record = invalid_of(&mapped, id);
        assert_eq!(record.field, "email");
        for other in others {
            assert!(
                record.message.contains(other),
                "{record} should name {other}"
            );
        }
    }
}

#[test]
fn a_record_invalid_for_another_reason_still_claims_its_email() {
    let mapped = map_all(&snapshot(json!({"users": [
        {"id": "u1", "email": "ann@example.com", "state": "bogus"},
        {"id": "u2", "email": "ANN@example.com"}]})));
    assert_eq!(invalid_of(&mapped, "u1").field, "state");
    assert!(invalid_of(&mapped, "u2").message.contains("u1"));
}

#[test]
fn a_widely_shared_email_keeps_messages_short() {
    let users: Vec<_> = (0..200)
        .map(|i| json!({"id": format!("u{i:03}"), "email": "shared@x.co"}))
        .collect();
    let mapped = map_all(&snapshot(json!({ "users": users })));
    assert_eq!(mapped.invalid.len(), 200);
    assert!(
        mapped
            .invalid
            .iter()
            .all(|r| r.message.len() < 200 && r.message.contains("more"))
    );
}

#[test]
fn without_scope_every_non_deleted_valid_user_is_desired() {
    let mapped = map_all(&snapshot(json!({"users": [
        {"id": "a", "email": "a@x.co"},
        {"id": "s", "email": "s@x.co", "state": "SUSPENDED"},
        {"id": "d", "email": "d@x.co", "state": "deleted"}]})));
    let ids: Vec<&str> = mapped
        .desired
        .iter()
        .map(|d| d.source_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "s"]);
    assert!(
        !mapped.desired[1].active,
        "suspended in scope is desired inactive"
    );
    assert_eq!(mapped.out_of_scope.len(), 1);
    assert_eq!(mapped.out_of_scope[0].source_id.as_str(), "d");
    assert_eq!(mapped.out_of_scope[0].reason, OutOfScopeReason::Deleted);
    assert_eq!(mapped.out_of_scope[0].user_name, "d@x.co");
}

#[test]
fn with_scope_only_members_of_the_named_groups_are_desired() {
    let snap = snapshot(json!({"users": [
        {"id": "in", "email": "in@x.co"},
        {"id": "also", "email": "also@x.co", "state": "SUSPENDED"},
        {"id": "out", "email": "out@x.co"},
        {"id": "case", "email": "case@x.co"},
        {"id": "gone", "email": "gone@x.co", "state": "DELETED"}],
        "groups": [
            {"id": "g1", "name": "Miro Users", "members": ["in", "gone"]},
            {"id": "g2", "name": "Contractors", "members": ["also"]},
            {"id": "g3", "name": "miro users", "members": ["case"]}]}));
    let mapped = map(
        &snap,
        &scoped(&["Miro Users", "Contractors"]),
        &RolesConfig::default(),
        &jumpcloud(),
    );
    let desired: Vec<&str> = mapped
        .desired
        .iter()
        .map(|d| d.source_id.as_str())
        .collect();
    assert_eq!(desired, ["also", "in"]);
    let reasons: Vec<(&str, &OutOfScopeReason)> = mapped
        .out_of_scope
        .iter()
        .map(|o| (o.source_id.as_str(), &o.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("case", &OutOfScopeReason::Unassigned),
            ("gone", &OutOfScopeReason::Deleted),
            ("out", &OutOfScopeReason::Unassigned),
        ],
        "names match exactly; DELETED wins over scope"
    );
}

#[test]
fn admin_group_members_get_the_admin_role_and_everyone_else_the_user_role() {
    let snap = snapshot(json!({"users": [
        {"id": "boss", "email": "boss@x.co"}, {"id": "ann", "email": "ann@x.co"}],
        "groups": [{"id": "g", "name": "Miro Admins", "members": ["boss"]}]}));
    let mapped = map(&snap, &all(), &admins(&["Miro Admins"]), &jumpcloud());
    let role = |id: &str| {
        mapped
            .desired
            .iter()
            .find(|d| d.source_id.as_str() == id)
            .unwrap()
            .attrs[paths::ROLE]
            .clone()
    };
    assert_eq!(role("boss"), text(paths::ADMIN_ROLE));
    assert_eq!(role("ann"), text(paths::USER_ROLE));
}

#[test]
fn display_name_falls_back_to_the_present_name_parts() {
    let mapped = map_all(&snapshot(json!({"users": [
        {"id": "both", "email": "both@x.co", "firstname": " Ann ", "lastname": "Lee"},
        {"id": "first", "email": "first@x.co", "firstname": "Ann", "lastname": ""},
        {"id": "last", "email": "last@x.co", "lastname": "Lee"},
        {"id": "none", "email": "none@x.co", "firstname": "  "},
        {"id": "own", "email": "own@x.co", "firstname": "Ann", "displayname": "Annie"}]})));
    let display = |id: &str| {
        mapped
            .desired
            .iter()
            .find(|d| d.source_id.as_str() == id)
            .unwrap()
            .attrs
            .get(paths::DISPLAY_NAME)
            .cloned()
    };
    assert_eq!(display("both"), Some(text("Ann Lee")));
    assert_eq!(display("first"), Some(text("Ann")));
    assert_eq!(display("last"), Some(text("Lee")));
    assert_eq!(display("none"), None);
    assert_eq!(display("own"), Some(text("Annie")));
}

#[test]
fn empty_values_are_not_emitted() {
    let mapped = one_user(
        json!({"id": "u", "email": "u@x.co", "company": "", "department": "  ", "manager": ""}),
    );
    let attrs = &mapped.desired[0].attrs;
    for path in [paths::ORGANIZATION, paths::DEPARTMENT, paths::MANAGER] {
        assert!(!attrs.contains_key(path), "{path}");
    }
}

#[test]
fn overrides_map_attributes_and_constants() {
    let mapping = compile(
        Preset::Jumpcloud,
        &[
            ("title", "position"),
            ("userType", "=Employee"),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
                "",
            ),
            ("DisplayName", "nick"),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "boss",
            ),
        ],
    )
    .unwrap();
    let snap = snapshot(
        json!({"users": [{"id": "u", "email": "u@x.co", "jobTitle": "SRE",
        "position": "Staff SRE", "costCenter": "C1", "nick": "Annie", "firstname": "Ann",
        "manager": "m1", "boss": "m2"}]}),
    );
    let mapped = map(&snap, &all(), &RolesConfig::default(), &mapping);
    let attrs = &mapped.desired[0].attrs;
    assert_eq!(attrs[paths::TITLE], text("Staff SRE"));
    assert_eq!(attrs[paths::USER_TYPE], text("Employee"));
    assert!(
        !attrs.contains_key(paths::COST_CENTER),
        "\"\" unmaps the path"
    );
    assert_eq!(attrs[paths::DISPLAY_NAME], text("Annie"));
    assert_eq!(
        attrs[paths::MANAGER],
        AttrValue::Ref {
            user: SourceId::from("m2")
        }
    );
    assert!(mapping.paths().any(|p| p == paths::USER_TYPE));
    assert!(!mapping.paths().any(|p| p == paths::COST_CENTER));
}

#[test]
fn an_overridden_attribute_too_long_is_invalid_under_its_own_name() {
    let mapping = compile(Preset::Jumpcloud, &[("title", "bio")]).unwrap();
    let snap = snapshot(
        json!({"users": [{"id": "u", "email": "u@x.co", "bio": "b".repeat(MAX_VALUE_BYTES + 1)}]}),
    );
    let mapped = map(&snap, &all(), &RolesConfig::default(), &mapping);
    assert_eq!(invalid_of(&mapped, "u").field, "bio");
}

#[test]
fn refused_overrides_name_the_key() {
    for key in [
        "userName",
        "username",
        "active",
        "emails",
        "emails[type eq \"work\"].value",
        "roles[primary eq true].value",
        "nickName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:a b",
    ] {
        let err = compile(Preset::Jumpcloud, &[(key, "x")]).unwrap_err();
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
    assert_eq!(
        compile(Preset::Entra, &[("", "x")]).unwrap_err(),
        MappingError::EmptyPath
    );
    assert!(matches!(
        compile(Preset::Jumpcloud, &[("title", "=")]).unwrap_err(),
        MappingError::EmptyLiteral { .. }
    ));
    assert!(matches!(
        compile(Preset::Jumpcloud, &[(paths::MANAGER, "=u1")]).unwrap_err(),
        MappingError::ManagerLiteral { .. }
    ));
    assert!(matches!(
        compile(Preset::Jumpcloud, &[("title", "a"), ("Title", "b")]).unwrap_err(),
        MappingError::DuplicatePath { .. }
    ));
    let long = format!("={}", "x".repeat(MAX_VALUE_BYTES + 1));
    assert!(matches!(
        compile(Preset::Jumpcloud, &[("title", long.as_str())]).unwrap_err(),
        MappingError::LiteralTooLong { .. }
    ));
}

#[test]
fn hostile_values_are_mapped_verbatim_or_refused_without_panic() {
    let hostile = "x\") or (userName pr) \\\" ǅ 日本 \u{1F600}";
    let at_limit = "é".repeat(MAX_VALUE_BYTES / 2);
    let mapped = map_all(&snapshot(json!({"users": [
        {"id": "h", "email": "h@x.co", "firstname": hostile, "lastname": at_limit},
        {"id": "inj", "email": "a\") or (\"1\" eq \"1@x.co"},
        {"id": "quote", "email": "\"a\"@x.co"},
        {"id": "bs", "email": "a\\b@x.co"},
        {"id": "big-email", "email": format!("{}@x.co", "a".repeat(MAX_VALUE_BYTES))},
        {"id": "uni", "email": "Zoë@Bücher.de"}]})));
    let h = mapped
        .desired
        .iter()
        .find(|d| d.source_id.as_str() == "h")
        .unwrap();
    assert_eq!(h.attrs[paths::GIVEN_NAME], text(hostile));
    assert_eq!(h.attrs[paths::FAMILY_NAME], text(&at_limit));
    let uni = mapped
        .desired
        .iter()
        .find(|d| d.source_id.as_str() == "uni")
        .unwrap();
    assert_eq!(uni.user_name, "zoë@bücher.de");
    for id in ["inj", "quote", "bs", "big-email"] {
        let record = invalid_of(&mapped, id);
        assert_eq!(record.field, "email");
        assert!(
            record.message.len() < 400,
            "messages quote at most a short prefix"
        );
    }
}

#[test]
fn output_is_sorted_and_independent_of_input_order() {
    let users = vec![
        json!({"id": "u3", "email": "b@x.co"}),
        json!({"id": "u1", "email": "c@x.co"}),
        json!({"id": "u2", "email": "a@x.co"}),
        json!({"id": "u5", "email": "e@x.co", "state": "DELETED"}),
        json!({"id": "u4", "email": "d@x.co", "state": "DELETED"}),
        json!({"id": "u7", "state": "DELETED"}),
        json!({"id": "u6"}),
    ];
    let forward = map_all(&snapshot(json!({ "users": users.clone() })));
    let mut reversed_users = users;
    reversed_users.reverse();
    let backward = map_all(&snapshot(json!({ "users": reversed_users })));
    assert_eq!(forward, backward);
    let names: Vec<&str> = forward
        .desired
        .iter()
        .map(|d| d.user_name.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(
        forward
            .out_of_scope
            .windows(2)
            .all(|w| w[0].source_id <= w[1].source_id)
    );
    assert!(
        forward
            .invalid
            .windows(2)
            .all(|w| w[0].source_id <= w[1].source_id)
    );
}

#[test]
fn findings_list_config_names_no_group_carries_and_suggest_the_near_one() {
    let snap = snapshot(json!({"users": [], "groups": [
        {"id": "g1", "name": "Miro Users"},
        {"id": "g2", "name": "Engineering"},
    ]}));
    let sync = crate::GroupsConfig {
        sync: Some(vec![
            "Engineering".to_owned().into(),
            "Eng".to_owned().into(),
            crate::GroupSelector::Id { id: "g2".into() },
            crate::GroupSelector::Id { id: "g9".into() },
        ]),
        ..crate::GroupsConfig::default()
    };
    let found = crate::findings(
        &snap.groups,
        &scoped(&["Miro Users", "miro users"]),
        &admins(&["Admins"]),
        &sync,
    );
    let lines: Vec<String> = found.unmatched.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "[scope] groups entry \"miro users\" matches no directory group (did you mean \"Miro Users\"? names match exactly)",
            "[roles] admin_groups entry \"Admins\" matches no directory group",
            "[groups] sync entry \"Eng\" matches no directory group",
            "[groups] sync entry { id = \"g9\" } matches no directory group",
        ]
    );
    assert!(found.unmatched_in(crate::ConfigKey::AdminGroups));
    assert!(found.unresolved.is_empty());
}

#[test]
fn unresolved_members_are_reported_for_the_groups_in_use_only() {
    let mut snap = snapshot(json!({"users": [], "groups": [
        {"id": "g1", "name": "Miro Users"},
        {"id": "g2", "name": "Unrelated"},
    ]}));
    for g in &mut snap.groups {
        g.unresolved = vec![format!("cn=ghost,ou={}", g.name)];
    }
    let found = crate::findings(
        &snap.groups,
        &scoped(&["Miro Users"]),
        &RolesConfig::default(),
        &crate::GroupsConfig::default(),
    );
    assert_eq!(found.unresolved.len(), 1);
    assert_eq!(
        found.unresolved[0].to_string(),
        "group \"Miro Users\" [g1]: member \"cn=ghost,ou=Miro Users\" resolves to no directory user"
    );
}

#[test]
fn a_group_synced_by_id_follows_a_rename() {
    let snap = snapshot(json!({
        "users": [{"id": "u1", "email": "a@x.com", "state": "ACTIVATED"}],
        "groups": [{"id": "g1", "name": "Engineering (renamed)", "members": ["u1"]}],
    }));
    let mapped = map(&snap, &all(), &RolesConfig::default(), &jumpcloud());
    let by = |selector: crate::GroupSelector| {
        crate::desired_groups(
            &snap,
            &crate::GroupsConfig {
                sync: Some(vec![selector]),
                ..crate::GroupsConfig::default()
            },
            &all(),
            &mapped,
        )
    };
    let groups = by(crate::GroupSelector::Id { id: "g1".into() });
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].display_name, "Engineering (renamed)");
    assert!(by("Engineering".to_owned().into()).is_empty());
}

#[test]
fn sync_entries_are_names_or_ids_and_nothing_else() {
    let parse = |text: &str| toml::from_str::<crate::GroupsConfig>(text);
    let config = parse(r#"sync = ["Engineering", { id = "g-42" }]"#).unwrap();
    assert_eq!(
        config.sync.unwrap(),
        [
            crate::GroupSelector::Name("Engineering".into()),
            crate::GroupSelector::Id { id: "g-42".into() }
        ]
    );
    let err = parse(r#"sync = [{ name = "x" }]"#).unwrap_err().to_string();
    assert!(err.contains("unknown field `name`"), "{err}");
}

proptest! {
    #[test]
    fn every_user_lands_in_exactly_one_list(
        users in proptest::collection::vec(
            (
                prop_oneof![Just(None), Just(Some("a@x.co".to_owned())), Just(Some("A@X.CO".to_owned())), "\\PC{0,12}".prop_map(Some)],
                prop_oneof![Just(None), Just(Some("ACTIVATED")), Just(Some("suspended")), Just(Some("DELETED")), Just(Some("?"))],
                "\\PC{0,8}",
                any::<bool>(),
            ),
            0..12,
        ),
        scope in any::<bool>(),
    ) {
        let records: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(i, (email, state, name, _))| json!({"id": format!("u{i}"), "email": email, "state": state, "firstname": name}))
            .collect();
        let members: Vec<String> = users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.3)
            .map(|(i, _)| format!("u{i}"))
            .collect();
        let snap = snapshot(json!({"users": records, "groups": [{"id": "g", "name": "In", "members": members}]}));
        let scope = if scope { scoped(&["In"]) } else { all() };
        let mapped = map(&snap, &scope, &admins(&["In"]), &jumpcloud());
        let mut seen: Vec<&str> = mapped.desired.iter().map(|d| d.source_id.as_str())
            .chain(mapped.out_of_scope.iter().map(|o| o.source_id.as_str()))
            .chain(mapped.invalid.iter().map(|r| r.source_id.as_str()))
            .collect();
        seen.sort_unstable();
        let mut expected: Vec<String> = (0..users.len()).map(|i| format!("u{i}")).collect();
        expected.sort_unstable();
        prop_assert_eq!(seen, expected.iter().map(String::as_str).collect::<Vec<_>>());
        for d in &mapped.desired {
            prop_assert!(d.attrs.contains_key(paths::ROLE));
            prop_assert_eq!(d.user_name.to_lowercase(), d.user_name.clone());
        }
    }
}

#[test]
fn users_mapped_as_last_pushed_keep_no_attributes() {
    let snap = snapshot(json!({ "users": [
        {"id": "u1", "email": "ann@x.com", "department": "Eng"},
        {"id": "u2", "email": "bob@x.com", "department": "Ops"},
        {"id": "u3", "email": "cy@x.com", "department": "Eng", "manager": "u1"},
        {"id": "u4", "email": "dee@x.com", "department": "Eng"},
    ]}));
    let full = map_all(&snap);

    // What a previous cycle pushed: u1, u3 and u4 as mapped now, u2 with another department.
    let hash_of = |id: &str| {
        let user = full
            .desired
            .iter()
            .find(|u| u.source_id.as_str() == id)
            .unwrap();
        scimsync_model::fingerprint(&user.user_name, user.active, &user.attrs)
    };
    let mut old_bob = full.desired[1].clone();
    assert_eq!(old_bob.source_id.as_str(), "u2");
    old_bob
        .attrs
        .insert(paths::DEPARTMENT.into(), AttrValue::text("Eng"));
    let hashes = [
        ("u1", hash_of("u1")),
        (
            "u2",
            scimsync_model::fingerprint(&old_bob.user_name, true, &old_bob.attrs),
        ),
        ("u3", hash_of("u3")),
    ];
    let links = super::TestLinks::new(hashes.iter().map(|(id, h)| (*id, h.as_str())));
    let (incremental, claims) = crate::map_users_against(
        snap.users.clone(),
        &snap.groups,
        &all(),
        &RolesConfig::default(),
        &jumpcloud(),
        &links,
    );
    assert_eq!(claims.users.len(), incremental.desired.len());
    assert!(claims.stamps.is_empty(), "no keyed read, no stamp");
    let flags: Vec<(&str, bool, bool)> = incremental
        .desired
        .iter()
        .zip(&claims.users)
        .map(|(u, claim)| {
            let id = u.source_id.as_str();
            if let Some(claim) = claim {
                assert_eq!(Some(*claim), links.handle(id), "claimed with its own link");
            }
            (id, claim.is_some(), u.attrs.is_empty())
        })
        .collect();
    assert_eq!(
        flags,
        [
            // Unchanged: attributes dropped.
            ("u1", true, true),
            // Changed: kept whole.
            ("u2", false, false),
            // A manager reference is the planner's to resolve: kept, not claimed.
            ("u3", false, false),
            // Never pushed (no link): kept.
            ("u4", false, false),
        ]
    );
    // Everything else is what a full mapping gives.
    for (a, b) in incremental.desired.iter().zip(&full.desired) {
        assert_eq!(
            (&a.source_id, &a.user_name, a.active),
            (&b.source_id, &b.user_name, b.active)
        );
        if !a.attrs.is_empty() {
            assert_eq!(a.attrs, b.attrs);
        }
    }
}

/// What a generic target needs of the mapping: roles only when mapped (with values of its own),
/// the work email following userName, and any path the target does not take left out.
#[test]
fn roles_the_work_email_and_unmapped_paths_follow_the_target() {
    let snapshot = snapshot(json!({
        "users": [{"id": "u1", "email": "Ann@Example.com", "firstname": "Ann", "department": "Eng"},
                  {"id": "u2", "email": "bob@example.com", "firstname": "Bob"}],
        "groups": [{"id": "g1", "name": "Admins", "members": ["u1"]}]
    }));
    let mut mapping = jumpcloud().with_roles(None).with_work_email(true);
    assert!(mapping.unmap(paths::DEPARTMENT));
    assert!(!mapping.unmap(paths::TITLE), "title was never mapped");
    let managed: Vec<&str> = mapping.paths().collect();
    assert!(managed.contains(&paths::WORK_EMAIL), "{managed:?}");
    assert!(!managed.contains(&paths::ROLE) && !managed.contains(&paths::DEPARTMENT));
    let mapped = map(&snapshot, &all(), &admins(&["Admins"]), &mapping);
    let ann = &mapped.desired[0];
    assert_eq!(
        ann.attrs.get(paths::WORK_EMAIL),
        Some(&text("ann@example.com"))
    );
    assert_eq!(
        ann.attrs.get(paths::ROLE),
        None,
        "roles not mapped: not sent"
    );
    assert_eq!(ann.attrs.get(paths::DEPARTMENT), None, "unmapped: not sent");

    let roles = RolesConfig {
        admin_groups: vec!["Admins".into()],
        admin_role: Some("admin".into()),
        user_role: Some("member".into()),
        ..RolesConfig::default()
    };
    assert!(roles.is_mapped() && !RolesConfig::default().is_mapped());
    let mapping = jumpcloud().with_roles(Some(roles.values()));
    let mapped = map(&snapshot, &all(), &roles, &mapping);
    let role = |i: usize| mapped.desired[i].attrs.get(paths::ROLE).cloned();
    assert_eq!(
        (role(0), role(1)),
        (Some(text("admin")), Some(text("member")))
    );
    // Dropping the role path unmaps roles.
    let mut mapping = mapping;
    assert!(mapping.unmap(paths::ROLE));
    assert!(!mapping.paths().any(|p| p == paths::ROLE));
}

fn miro_rules(mapping: Mapping) -> Mapping {
    let profile = scimsync_scim::Profile::miro();
    mapping.with_target_rules(profile.limits, profile.licence)
}

fn expr_config(entries: &str) -> MappingConfig {
    #[derive(serde::Deserialize)]
    struct Doc {
        mapping: MappingConfig,
    }
    let doc: Doc = toml::from_str(&format!("[mapping]\n{entries}")).unwrap();
    doc.mapping
}

#[test]
fn a_value_over_the_targets_limit_is_an_error_naming_record_field_and_limit() {
    let long = "A".repeat(61);
    let snapshot = snapshot(json!({"users": [
        {"id": "u1", "email": "a@x.com", "displayname": long, "firstname": "A", "lastname": "B"},
        {"id": "u2", "email": "b@x.com", "firstname": "B", "lastname": "C",
         "employeeidentifier": "E".repeat(21)},
        {"id": "u3", "email": "c@x.com", "firstname": "Ann", "lastname": "Lee",
         "department": "D".repeat(120)},
    ]}));
    let mapping = miro_rules(jumpcloud());
    let mapped = map(&snapshot, &all(), &RolesConfig::default(), &mapping);
    let u1 = invalid_of(&mapped, "u1");
    assert_eq!(u1.field, paths::DISPLAY_NAME);
    assert!(
        u1.message.contains("61 characters") && u1.message.contains("limit of 60"),
        "{u1}"
    );
    assert!(u1.message.contains("truncate = true"), "{u1}");
    let u2 = invalid_of(&mapped, "u2");
    assert_eq!(u2.field, paths::EMPLOYEE_NUMBER);
    assert!(u2.message.contains("limit of 20"), "{u2}");
    // Exactly at the limit is fine.
    assert_eq!(mapped.desired.len(), 1);
    assert_eq!(mapped.desired[0].source_id.as_str(), "u3");
}

#[test]
fn truncate_cuts_a_value_to_the_targets_limit() {
    let config = expr_config(
        "displayName = { truncate = true }\n\
         \"name.familyName\" = { expr = \"[lastname]\", truncate = true }\n",
    );
    let mapping = miro_rules(Mapping::compile(&config).unwrap());
    let long = format!("{} tail", "A".repeat(59));
    let snapshot = snapshot(json!({"users": [
        {"id": "u1", "email": "a@x.com", "displayname": long,
         "firstname": "F".repeat(40), "lastname": "L".repeat(40)},
    ]}));
    let mapped = map(&snapshot, &all(), &RolesConfig::default(), &mapping);
    assert!(mapped.invalid.is_empty(), "{:?}", mapped.invalid);
    let attrs = &mapped.desired[0].attrs;
    // Cut at 60: 59 A's and the space, which is trimmed.
    assert_eq!(attrs[paths::DISPLAY_NAME], text(&"A".repeat(59)));
    // The given and family names share 60 characters: the family name gives way.
    assert_eq!(attrs[paths::GIVEN_NAME], text(&"F".repeat(40)));
    assert_eq!(attrs[paths::FAMILY_NAME], text(&"L".repeat(19)));
    // `{ truncate = true }` on a path nothing maps is refused when the file is read.
    let err = Mapping::compile(&expr_config("title = { truncate = true }\n")).unwrap_err();
    assert!(
        matches!(err, MappingError::TruncateUnmapped { .. }),
        "{err}"
    );
}

#[test]
fn the_licence_must_be_one_the_target_accepts_and_goes_in_its_spelling() {
    let snapshot = snapshot(json!({"users": [
        {"id": "u1", "email": "a@x.com", "licence": "free restricted"},
        {"id": "u2", "email": "b@x.com", "licence": "Enterprise"},
        {"id": "u3", "email": "c@x.com"},
    ]}));
    let mapping = miro_rules(compile(Preset::Jumpcloud, &[("userType", "licence")]).unwrap());
    let mapped = map(&snapshot, &all(), &RolesConfig::default(), &mapping);
    let u2 = invalid_of(&mapped, "u2");
    assert_eq!(u2.field, paths::USER_TYPE);
    assert!(u2.message.contains("Free Restricted"), "{u2}");
    let licence = |id: &str| {
        mapped
            .desired
            .iter()
            .find(|u| u.source_id.as_str() == id)
            .and_then(|u| u.attrs.get(paths::USER_TYPE).cloned())
    };
    assert_eq!(licence("u1"), Some(text("Free Restricted")));
    assert_eq!(licence("u3"), None, "no value: the org's default");
    // A preset value: every user gets it.
    let full = miro_rules(compile(Preset::Jumpcloud, &[("userType", "=full")]).unwrap());
    let mapped = map(&snapshot, &all(), &RolesConfig::default(), &full);
    assert!(
        mapped
            .desired
            .iter()
            .all(|u| u.attrs[paths::USER_TYPE] == text("Full"))
    );
}

#[test]
fn admin_role_groups_give_their_members_miros_admin_roles() {
    let snapshot = snapshot(json!({
        "users": [{"id": "u1", "email": "a@x.com"}, {"id": "u2", "email": "b@x.com"},
                  {"id": "u3", "email": "c@x.com"}],
        "groups": [
            {"id": "g1", "name": "Helpdesk", "members": ["u1", "u2"]},
            {"id": "g2", "name": "SecOps", "members": ["u2"]},
        ]
    }));
    let roles = RolesConfig {
        admin_roles: [
            ("Helpdesk".to_owned(), vec!["User Admin".to_owned()]),
            (
                "SecOps".to_owned(),
                vec!["Security Admin".to_owned(), "User Admin".to_owned()],
            ),
        ]
        .into(),
        ..RolesConfig::default()
    };
    let mapping = jumpcloud().with_admin_roles(
        Some("organization_admin_role"),
        ["Security Admin".to_owned(), "User Admin".to_owned()],
    );
    let mapped = map(&snapshot, &all(), &roles, &mapping);
    let held = |id: &str| -> Vec<String> {
        let user = mapped
            .desired
            .iter()
            .find(|u| u.source_id.as_str() == id)
            .unwrap();
        user.attrs
            .iter()
            .filter_map(|(p, v)| {
                let role = paths::admin_role_value(p)?;
                assert_eq!(v, &text("organization_admin_role"));
                Some(role)
            })
            .collect()
    };
    assert_eq!(held("u1"), ["User Admin"]);
    assert_eq!(held("u2"), ["Security Admin", "User Admin"]);
    assert!(held("u3").is_empty());
    // Every managed role is a managed path, so one taken away is removed.
    assert!(
        mapping
            .paths()
            .any(|p| p == paths::admin_role("Security Admin"))
    );
}
