use crate::{SourceError, parse_json, read_json};
use scimsync_model::SourceId;
use std::io::Write;

const SPEC_EXAMPLE: &str = r#"{"users": [{"id": "u1", "email": "ann@example.com", "firstname": "Ann", "lastname": "Lee",
            "displayname": "Ann Lee", "company": "Acme", "department": "Eng",
            "employeeidentifier": "E1", "jobTitle": "SRE", "costCenter": "C1", "division": "R&D",
            "manager": "u9", "state": "ACTIVATED"},
            {"id": "u9", "email": "boss@example.com"}],
 "groups": [{"id": "g1", "name": "Miro Users", "members": ["u1"]}]}"#;

fn parse(text: &str) -> Result<scimsync_model::Snapshot, SourceError> {
    parse_json(text.as_bytes(), "dir.json")
}

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
    file
}

#[test]
fn reads_the_spec_example() {
    let snapshot = parse(SPEC_EXAMPLE).unwrap();
    assert_eq!(snapshot.users.len(), 2);
    let ann = &snapshot.users[0];
    assert_eq!(ann.id, SourceId::from("u1"));
    assert_eq!(ann.attr("email"), Some("ann@example.com"));
    assert_eq!(ann.attr("division"), Some("R&D"));
    assert!(
        !ann.attrs.contains_key("id"),
        "id is the key, not an attribute"
    );
    assert_eq!(ann.attrs.len(), 12);
    assert_eq!(snapshot.groups.len(), 1);
    assert_eq!(snapshot.groups[0].name, "Miro Users");
    assert_eq!(snapshot.groups[0].members, vec![SourceId::from("u1")]);
}

#[test]
fn a_file_reads_like_the_same_bytes_in_memory() {
    let file = write_temp(SPEC_EXAMPLE.as_bytes());
    assert_eq!(
        read_json(file.path()).unwrap(),
        parse(SPEC_EXAMPLE).unwrap()
    );
}

#[test]
fn non_string_attributes_are_kept_as_json_text_and_null_or_empty_as_absent() {
    let snapshot = parse(
        r#"{"users":[{"id":"u1","email":"a@b.co","accountEnabled":false,"level":42,"ratio":1.5,
            "nickname":null,"blank":"","tags":["x","y"],"extra":{"k":"v","n":1}}]}"#,
    )
    .unwrap();
    let user = &snapshot.users[0];
    assert_eq!(user.attrs.get("accountEnabled"), Some("false"));
    assert_eq!(user.attrs.get("level"), Some("42"));
    assert_eq!(user.attrs.get("ratio"), Some("1.5"));
    assert!(!user.attrs.contains_key("nickname"));
    assert!(!user.attrs.contains_key("blank"));
    let tags: serde_json::Value = serde_json::from_str(&user.attrs["tags"]).unwrap();
    assert_eq!(tags, serde_json::json!(["x", "y"]));
    let extra: serde_json::Value = serde_json::from_str(&user.attrs["extra"]).unwrap();
    assert_eq!(extra, serde_json::json!({"k": "v", "n": 1}));
}

#[test]
fn groups_are_optional() {
    assert!(parse(r#"{"users":[]}"#).unwrap().groups.is_empty());
    assert!(
        parse(r#"{"users":[],"groups":null}"#)
            .unwrap()
            .groups
            .is_empty()
    );
    let snapshot = parse(r#"{"users":[],"groups":[{"id":"g","name":"Empty"}]}"#).unwrap();
    assert!(snapshot.groups[0].members.is_empty());
}

#[test]
fn unknown_top_level_keys_are_ignored_but_users_is_required() {
    assert!(parse(r#"{"exported_at":"2026-01-01","users":[]}"#).is_ok());
    let err = parse(r#"{"groups":[]}"#).unwrap_err();
    assert!(matches!(err, SourceError::MalformedJson { .. }), "{err:?}");
    assert!(err.to_string().contains("users"), "{err}");
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let text = "{\"users\": [\n  {\"id\": \"u1\", \"email\": \"a@b.co\"}\n  {\"id\": \"u2\"}\n]}";
    let err = parse(text).unwrap_err();
    match &err {
        SourceError::MalformedJson { line, column, .. } => {
            assert_eq!(*line, 3);
            assert!(*column > 0);
        }
        other => panic!("expected MalformedJson, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("dir.json"), "{message}");
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("column"), "{message}");
}

#[test]
fn a_truncated_file_is_reported_as_truncated() {
    let cut = &SPEC_EXAMPLE[..SPEC_EXAMPLE.len() / 2];
    let in_memory = parse(cut).unwrap_err();
    assert!(
        matches!(in_memory, SourceError::Truncated { .. }),
        "{in_memory:?}"
    );
    assert!(in_memory.to_string().contains("truncated"), "{in_memory}");
    assert!(
        in_memory.to_string().contains("malformed JSON"),
        "{in_memory}"
    );

    let file = write_temp(cut.as_bytes());
    let from_file = read_json(file.path()).unwrap_err();
    assert!(
        matches!(from_file, SourceError::Truncated { .. }),
        "{from_file:?}"
    );
}

#[test]
fn invalid_utf8_names_the_line_column_and_byte_offset() {
    // Line 3, after "  {…"firstname":"Zoë An": the bad byte is character 41 of its line
    // (the ë is one character of two bytes).
    let mut bytes = "{\"users\":[\n  {\"id\":\"u0\",\"email\":\"z@b.co\"},\n  {\"id\":\"u1\",\"email\":\"a@b.co\",\"firstname\":\"Zoë An"
        .as_bytes()
        .to_vec();
    let offset = bytes.len();
    bytes.extend_from_slice(b"\xFFn\"}]}");
    let line_start = bytes[..offset].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let column = std::str::from_utf8(&bytes[line_start..offset])
        .unwrap()
        .chars()
        .count()
        + 1;
    for err in [
        parse_json(&bytes, "dir.json").unwrap_err(),
        read_json(write_temp(&bytes).path()).unwrap_err(),
    ] {
        match &err {
            SourceError::InvalidUtf8 {
                offset: got,
                line,
                column: col,
                ..
            } => {
                assert_eq!(*got, offset as u64);
                assert_eq!(*line, 3);
                assert_eq!(*col, column as u64);
            }
            other => panic!("expected InvalidUtf8, got {other:?}"),
        }
        let shown = err.to_string();
        assert!(
            shown.contains(&format!(
                "line 3, column {column}: invalid UTF-8 (byte offset {offset})"
            )),
            "{shown}"
        );
    }
}

#[test]
fn invalid_utf8_deep_in_a_large_file_is_found_by_the_streaming_reader() {
    let mut text = String::from(r#"{"users":["#);
    for i in 0..5000 {
        text.push_str(&format!(
            r#"{{"id":"u{i}","email":"user{i}@example.com","firstname":"Zoë"}},"#
        ));
    }
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(br#"{"id":"last","firstname":"#);
    let offset = bytes.len();
    bytes.extend_from_slice(b"\xC3\x28\"}]}");
    let err = read_json(write_temp(&bytes).path()).unwrap_err();
    match err {
        SourceError::InvalidUtf8 { offset: got, .. } => assert_eq!(got, offset as u64),
        other => panic!("expected InvalidUtf8, got {other:?}"),
    }
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(SPEC_EXAMPLE.as_bytes());
    assert_eq!(
        parse_json(&bytes, "bom.json").unwrap(),
        parse(SPEC_EXAMPLE).unwrap()
    );
    assert_eq!(
        read_json(write_temp(&bytes).path()).unwrap(),
        parse(SPEC_EXAMPLE).unwrap()
    );
}

#[test]
fn a_bad_id_names_the_record_index_and_the_field() {
    for (record, why) in [
        (r#"{"email":"b@b.co"}"#, "missing"),
        (r#"{"id":"","email":"b@b.co"}"#, "empty"),
        (r#"{"id":"   ","email":"b@b.co"}"#, "blank"),
        (r#"{"id":7,"email":"b@b.co"}"#, "number"),
        (r#"{"id":null,"email":"b@b.co"}"#, "null"),
    ] {
        let text = format!(r#"{{"users":[{{"id":"u0","email":"a@b.co"}},{record}]}}"#);
        let err = parse(&text).unwrap_err();
        match &err {
            SourceError::BadRecord { record, field, .. } => {
                assert!(record.starts_with("users[1]"), "{record}");
                assert_eq!(field, "id");
            }
            other => panic!("expected BadRecord for {record}, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("users[1]") && message.contains("`id`"),
            "{message}"
        );
        assert!(message.contains(why), "{message}");
        assert!(message.contains("line 1"), "{message}");
    }
}

#[test]
fn the_same_attribute_twice_in_a_record_is_fatal() {
    let err = parse(r#"{"users":[{"id":"u1","email":"a@b.co","email":"c@d.co"}]}"#).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("users[0]") && message.contains("email"),
        "{message}"
    );
    let err = parse(r#"{"users":[{"id":"u1","id":"u2"}]}"#).unwrap_err();
    assert!(err.to_string().contains("`id`"), "{err}");
    let err = parse(r#"{"users":[{"id":"u1","x":null,"x":"1"}]}"#).unwrap_err();
    assert!(err.to_string().contains("`x`"), "{err}");
}

#[test]
fn duplicate_user_ids_are_fatal_and_name_both_records() {
    let err = parse(
        r#"{"users":[{"id":"u1","email":"a@b.co"},{"id":"u2"},{"id":"u1","email":"c@d.co"}]}"#,
    )
    .unwrap_err();
    assert!(
        matches!(err, SourceError::DuplicateUserId { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    for part in ["users[0]", "users[2]", "\"u1\""] {
        assert!(message.contains(part), "{part} missing from {message}");
    }
}

#[test]
fn duplicate_group_ids_are_fatal() {
    let err = parse(r#"{"users":[],"groups":[{"id":"g1","name":"A"},{"id":"g1","name":"B"}]}"#)
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, SourceError::DuplicateGroupId { .. }),
        "{err:?}"
    );
    assert!(
        message.contains("groups[0]") && message.contains("groups[1]"),
        "{message}"
    );
}

#[test]
fn a_member_that_is_no_user_is_fatal_and_named_with_its_group() {
    let err = parse(
        r#"{"users":[{"id":"u1"}],"groups":[{"id":"g1","name":"Miro Users","members":["u1","ghost"]}]}"#,
    )
    .unwrap_err();
    assert!(matches!(err, SourceError::UnknownMember { .. }), "{err:?}");
    let message = err.to_string();
    for part in ["g1", "Miro Users", "ghost", "groups[0].members[1]"] {
        assert!(message.contains(part), "{part} missing from {message}");
    }
}

#[test]
fn bad_group_records_name_the_group_and_field() {
    for (group, field) in [
        (r#"{"name":"A"}"#, "`id`"),
        (r#"{"id":"g1"}"#, "`name`"),
        (r#"{"id":"g1","name":3}"#, "`name`"),
        (
            r#"{"id":"g1","name":"A","members":["u1",5]}"#,
            "`members[1]`",
        ),
    ] {
        let text = format!(r#"{{"users":[{{"id":"u1"}}],"groups":[{group}]}}"#);
        let message = parse(&text).unwrap_err().to_string();
        assert!(
            message.contains("groups[0]") && message.contains(field),
            "{message}"
        );
    }
}

#[test]
fn wrong_shapes_are_malformed_json_with_a_position() {
    for text in [
        r#"[]"#,
        r#"{"users":{}}"#,
        r#"{"users":["u1"]}"#,
        r#"{"users":[]} trailing"#,
    ] {
        let err = parse(text).unwrap_err();
        assert!(
            matches!(err, SourceError::MalformedJson { .. }),
            "{text}: {err:?}"
        );
    }
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.json");
    let err = read_json(&path).unwrap_err();
    assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.json"), "{err}");
}

#[test]
fn hostile_values_are_read_verbatim() {
    let hostile = "Robert\"); DROP TABLE users;-- \\ ) or ( \u{202E}ǅ 日本 \u{1F600}";
    let doc = serde_json::json!({"users": [{"id": "u\"1", "firstname": hostile}]});
    let snapshot = super::snapshot(doc);
    assert_eq!(snapshot.users[0].id.as_str(), "u\"1");
    assert_eq!(snapshot.users[0].attr("firstname"), Some(hostile));
}

/// A directory larger than the reader's window, with records cut by every refill, one record
/// (a group of every user) larger than the window, escapes, non-ASCII text and nested values.
fn large_directory(users: usize) -> String {
    let mut text = String::from("{\"exported\": {\"at\": [1, 2.5e3, null]},\n\"users\": [\n");
    for i in 0..users {
        if i > 0 {
            text.push_str(",\n");
        }
        text.push_str(&format!(
            r#"{{"id":"u{i}","email":"user{i}@example.com","firstname":"Zoë \"{i}\" \\ 日本","level":{i},"ratio":{i}.5,"tags":["x",{{"n":[{i}]}}],"nickname":null,"blank":""}}"#
        ));
    }
    text.push_str("\n],\n\"groups\": [{\"id\":\"g1\",\"name\":\"Everyone\",\"members\":[");
    for i in 0..users {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!("\"u{i}\""));
    }
    text.push_str("]}],\n\"tail\": \"end\"}\n");
    text
}

#[test]
fn a_file_larger_than_the_read_window_reads_like_the_same_bytes_in_memory() {
    let text = large_directory(20_000);
    assert!(text.len() > 2 << 20, "{} bytes", text.len());
    let from_file = read_json(write_temp(text.as_bytes()).path()).unwrap();
    assert_eq!(from_file, parse(&text).unwrap());
    assert_eq!(from_file.users.len(), 20_000);
    assert_eq!(from_file.groups[0].members.len(), 20_000);
    let last = &from_file.users[19_999];
    assert_eq!(last.attr("firstname"), Some("Zoë \"19999\" \\ 日本"));
    assert_eq!(last.attr("ratio"), Some("19999.5"));
    assert!(!last.attrs.contains_key("nickname"));
}

#[test]
fn attribute_names_are_shared_between_users() {
    let snapshot = read_json(write_temp(large_directory(3).as_bytes()).path()).unwrap();
    let names = |i: usize| -> Vec<*const u8> {
        snapshot.users[i]
            .attrs
            .keys()
            .map(|k| k.as_str().as_ptr())
            .collect()
    };
    assert_eq!(names(0), names(2));
}

#[test]
fn errors_deep_in_a_large_file_are_those_of_the_same_bytes_in_memory() {
    let text = large_directory(5_000);
    let at = |needle: &str| text.find(needle).unwrap();
    let breakages: Vec<(String, &str)> = vec![
        // A missing comma between two records, past the first window.
        (
            text.replacen("},\n{\"id\":\"u4000\"", "}\n{\"id\":\"u4000\"", 1),
            "MalformedJson",
        ),
        // A record without an id, and one naming an attribute twice.
        (text.replacen("{\"id\":\"u3000\",", "{", 1), "BadRecord"),
        (
            text.replacen("\"level\":4321,", "\"level\":4321,\"level\":1,", 1),
            "BadRecord",
        ),
        // A bad member in the group larger than the window.
        (text.replacen("\"u4999\"]", "\"u4999\",7]", 1), "BadRecord"),
        // Cut short in the middle.
        (text[..at("\"u2500\"")].to_owned(), "Truncated"),
        // Trailing garbage, and a number out of range in a nested attribute value.
        (format!("{text}x"), "MalformedJson"),
        (
            text.replacen("{\"n\":[4444]}", "{\"n\":[1e999]}", 1),
            "MalformedJson",
        ),
        // Two ids that are the same.
        (
            text.replacen("\"id\":\"u4998\"", "\"id\":\"u7\"", 1),
            "DuplicateUserId",
        ),
    ];
    for (broken, kind) in breakages {
        let file = write_temp(broken.as_bytes());
        let from_file = read_json(file.path()).unwrap_err();
        let in_memory = parse_json(broken.as_bytes(), "dir.json").unwrap_err();
        assert!(format!("{from_file:?}").contains(kind), "{from_file:?}");
        // The same error and line; only the origin differs, and columns (see `without_columns`).
        let file_name = from_file.to_string();
        let rest = file_name.split_once(": ").unwrap().1;
        assert_eq!(
            without_columns(rest),
            without_columns(in_memory.to_string().split_once(": ").unwrap().1)
        );
        if kind == "MalformedJson" || kind == "BadRecord" || kind == "Truncated" {
            assert!(!rest.contains("line 1,"), "{rest}");
        }
    }
}

/// `message` without its column numbers: the streaming parser counts the byte it peeked after a
/// number into the column, the in-memory one does not (that is not new).
fn without_columns(message: &str) -> String {
    let mut parts = message.split("column ");
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        out.push_str("column ");
        out.push_str(part.trim_start_matches(|c: char| c.is_ascii_digit()));
    }
    out
}

#[test]
fn deeply_nested_values_read_the_same_from_a_file_and_from_memory() {
    for depth in [60, 70, 124, 125, 126, 127, 128, 200] {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!(r#"{{"users":[{{"id":"u1","deep":{nested}}}],"meta":{nested}}}"#);
        let from_file = read_json(write_temp(text.as_bytes()).path());
        let in_memory = parse(&text);
        match (from_file, in_memory) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "depth {depth}"),
            (Err(a), Err(b)) => assert_eq!(
                a.to_string().split_once(": ").unwrap().1,
                b.to_string().split_once(": ").unwrap().1,
                "depth {depth}"
            ),
            (a, b) => panic!("depth {depth}: file {a:?}, memory {b:?}"),
        }
    }
}

/// Scale check, run by hand: `cargo test --release -p scimsync-directory -- --ignored million`.
#[test]
#[ignore = "writes a ~250 MB file; run by hand"]
fn reads_and_maps_a_million_users() {
    use std::io::BufWriter;
    let file = tempfile::NamedTempFile::new().unwrap();
    {
        let mut out = BufWriter::new(file.as_file());
        out.write_all(br#"{"users":["#).unwrap();
        for i in 0..1_000_000 {
            if i > 0 {
                out.write_all(b",").unwrap();
            }
            write!(
                out,
                r#"{{"id":"u{i}","email":"user{i}@example.com","firstname":"First{i}","lastname":"Last","displayname":"First{i} Last","company":"Acme","department":"Eng","employeeidentifier":"E{i}","jobTitle":"SRE","manager":"u0","state":"ACTIVATED"}}"#
            )
            .unwrap();
        }
        out.write_all(br#"],"groups":[{"id":"g1","name":"Miro Users","members":["u1","u2"]}]}"#)
            .unwrap();
    }
    let started = std::time::Instant::now();
    let snapshot = read_json(file.path()).unwrap();
    let read = started.elapsed();
    let mapped = crate::map(
        &snapshot,
        &crate::ScopeConfig::default(),
        &crate::RolesConfig::default(),
        &super::jumpcloud(),
    );
    eprintln!("read {read:?}, mapped in {:?}", started.elapsed() - read);
    assert_eq!(mapped.desired.len(), 1_000_000);
}

mod fast_path {
    //! The fast path (`json/window.rs`) reads exactly what the streaming parser reads, with
    //! values that look like record boundaries, escapes and nesting, and a broken record
    //! anywhere.

    use super::write_temp;
    use crate::{parse_json, read_json};
    use proptest::prelude::*;

    /// Values that look like record boundaries, escapes and nesting.
    fn tricky() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "plain",
            "},{",
            "} , {\"id\":\"fake\"}",
            "\\\"},{",
            "日本 \\u00e9",
            "]},{\"users\":[",
            "",
        ])
        .prop_map(str::to_owned)
    }

    fn document(users: &[(String, Option<String>)], pretty: bool, groups_first: bool) -> String {
        let sep = if pretty { ",\n  " } else { "," };
        let records: Vec<String> = users
            .iter()
            .enumerate()
            .map(|(i, (value, nested))| {
                let nested = nested
                    .as_ref()
                    // Nested objects with ids: a guess inside them parses as users.
                    .map(|n| {
                        format!(
                            r#","tags":[{{"id":"t1","x":"{n}"}},{{"id":"t2"}},[1,{{"y":"{n}"}}]]"#
                        )
                    })
                    .unwrap_or_default();
                format!(r#"{{"id":"u{i}","email":"u{i}@example.com","note":"{value}"{nested}}}"#)
            })
            .collect();
        let users = format!(r#""users":[{}]"#, records.join(sep));
        let groups = r#""groups":[{"id":"g1","name":"},{","members":["u0"]}]"#;
        if groups_first {
            format!("{{{groups},{users}}}")
        } else {
            format!("{{{users},\n{groups}}}")
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_fast_path_reads_what_the_streaming_parser_reads(
            users in prop::collection::vec((tricky(), prop::option::of(tricky())), 1..60),
            pretty in any::<bool>(),
            groups_first in any::<bool>(),
            // A broken record somewhere, sometimes.
            broken in prop::option::of(0usize..60),
        ) {
            let mut text = document(&users, pretty, groups_first);
            if let Some(at) = broken {
                let id = format!(r#"{{"id":"u{}","#, at % users.len());
                text = text.replacen(&id, "{", 1);
            }
            let file = write_temp(text.as_bytes());
            let fast = read_json(file.path());
            let memory = parse_json(text.as_bytes(), "dir.json");
            match (fast, memory) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(
                    super::without_columns(a.to_string().split_once(": ").unwrap().1),
                    super::without_columns(b.to_string().split_once(": ").unwrap().1)
                ),
                (a, b) => prop_assert!(false, "file {:?}, memory {:?}", a, b),
            }
        }
    }

    #[test]
    fn a_large_directory_reads_the_same_across_refills() {
        let text = super::large_directory(20_000);
        let file = write_temp(text.as_bytes());
        assert_eq!(
            read_json(file.path()).unwrap(),
            parse_json(text.as_bytes(), "dir.json").unwrap()
        );
    }
}

#[test]
fn records_listing_names_in_different_orders_read_right() {
    let text = r#"{"users":[
        {"id":"1","b":"x","a":"y","c":""},
        {"id":"2","a":"p","b":"q"},
        {"id":"3","b":"m","a":"n","c":""},
        {"id":"4","b":"m","a":"n","c":"o"}]}"#;
    let snapshot = read_json(write_temp(text.as_bytes()).path()).unwrap();
    let pairs: Vec<Vec<(String, String)>> = snapshot
        .users
        .iter()
        .map(|u| {
            u.attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_owned()))
                .collect()
        })
        .collect();
    let p = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        pairs,
        vec![
            p(&[("a", "y"), ("b", "x")]),
            p(&[("a", "p"), ("b", "q")]),
            p(&[("a", "n"), ("b", "m")]),
            p(&[("a", "n"), ("b", "m"), ("c", "o")]),
        ]
    );
    assert_eq!(snapshot, parse_json(text.as_bytes(), "dir.json").unwrap());
}
