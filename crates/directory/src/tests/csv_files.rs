use crate::{SourceError, read_csv};
use std::io::Write;
use std::path::Path;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(bytes).unwrap();
    path
}

#[test]
fn the_same_directory_reads_the_same_from_csv_and_json() {
    let hostile = "Quote \" comma , newline\nbackslash \\ ) or ( ǅ 日本";
    let doc = serde_json::json!({
        "users": [
            {"id": "u1", "email": "ann@example.com", "firstname": "Ann", "lastname": "Lee",
             "displayname": "Ann Lee", "company": "Acme", "department": "Eng",
             "employeeidentifier": "E1", "jobTitle": "SRE", "costCenter": "C1", "division": "R&D",
             "manager": "u9", "state": "ACTIVATED"},
            {"id": "u9", "email": "boss@example.com", "firstname": hostile, "lastname": "",
             "state": "SUSPENDED"},
            {"id": "u3", "email": "zoë@bücher.de"}
        ],
        "groups": [
            {"id": "g1", "name": "Miro Users", "members": ["u1", "u9"]},
            {"id": "g2", "name": "Miro Admins", "members": ["u9"]},
            {"id": "g3", "name": "Nobody", "members": []}
        ]
    });
    let from_json = super::snapshot(doc);

    let columns = [
        "id",
        "email",
        "firstname",
        "lastname",
        "displayname",
        "company",
        "department",
        "employeeidentifier",
        "jobTitle",
        "costCenter",
        "division",
        "manager",
        "state",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut users = csv::Writer::from_writer(Vec::new());
    users.write_record(columns).unwrap();
    for user in &from_json.users {
        let row: Vec<&str> = columns
            .iter()
            .map(|c| {
                if *c == "id" {
                    user.id.as_str()
                } else {
                    user.attrs.get(c).unwrap_or("")
                }
            })
            .collect();
        users.write_record(row).unwrap();
    }
    let users = write(dir.path(), "users.csv", &users.into_inner().unwrap());
    let groups = write(
        dir.path(),
        "groups.csv",
        b"group_id,group_name,member_id\ng1,Miro Users,u1\ng2,Miro Admins,u9\ng1,Miro Users,u9\ng3,Nobody,\n",
    );
    let from_csv = read_csv(&users, Some(&groups)).unwrap();
    assert_eq!(from_csv, from_json);
}

#[test]
fn without_a_groups_file_there_are_no_groups() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "u.csv", b"id,email\nu1,a@b.co\n");
    let snapshot = read_csv(&users, None).unwrap();
    assert_eq!(snapshot.users.len(), 1);
    assert!(snapshot.groups.is_empty());
}

fn users_error(bytes: &[u8]) -> SourceError {
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "users.csv", bytes);
    read_csv(&users, None).unwrap_err()
}

#[test]
fn a_users_file_without_an_id_column_is_refused() {
    let message = users_error(b"email,firstname\na@b.co,Ann\n").to_string();
    assert!(
        message.contains("users.csv") && message.contains("`id`"),
        "{message}"
    );
}

#[test]
fn an_empty_id_names_line_and_column() {
    let message = users_error(b"email,id\na@b.co,u1\nc@d.co,\n").to_string();
    assert!(
        message.contains("line 3") && message.contains("column 2"),
        "{message}"
    );
    assert!(message.contains("`id`"), "{message}");
}

#[test]
fn a_row_of_the_wrong_width_names_its_line() {
    let message = users_error(b"id,email\nu1,a@b.co\nu2,c@d.co,extra\n").to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(
        message.contains("3 fields") && message.contains("has 2"),
        "{message}"
    );
}

#[test]
fn duplicate_ids_name_both_lines() {
    let err = users_error(b"id,email\nu1,a@b.co\nu2,c@d.co\nu1,e@f.co\n");
    assert!(
        matches!(err, SourceError::DuplicateUserId { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("line 2") && message.contains("line 4"),
        "{message}"
    );
    assert!(message.contains("\"u1\""), "{message}");
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let message = users_error(b"id,email,firstname\nu1,a@b.co,An\xFFn\n").to_string();
    assert!(
        message.contains("line 2") && message.contains("column 3"),
        "{message}"
    );
    assert!(
        message.contains("firstname") && message.contains("UTF-8"),
        "{message}"
    );
}

#[test]
fn duplicate_and_empty_headers_are_refused() {
    let message = users_error(b"id,email,email\nu1,a,b\n").to_string();
    assert!(
        message.contains("column 3") && message.contains("twice"),
        "{message}"
    );
    let message = users_error(b"id,,email\nu1,a,b\n").to_string();
    assert!(message.contains("column 2"), "{message}");
}

#[test]
fn an_unknown_member_names_the_group_file_line() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "users.csv", b"id,email\nu1,a@b.co\n");
    let groups = write(
        dir.path(),
        "groups.csv",
        b"group_id,group_name,member_id\ng1,Miro Users,u1\ng1,Miro Users,ghost\n",
    );
    let err = read_csv(&users, Some(&groups)).unwrap_err();
    let message = err.to_string();
    for part in ["groups.csv", "line 3", "g1", "Miro Users", "ghost"] {
        assert!(message.contains(part), "{part} missing from {message}");
    }
}

#[test]
fn one_group_id_with_two_names_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "users.csv", b"id,email\nu1,a@b.co\n");
    let groups = write(
        dir.path(),
        "groups.csv",
        b"group_id,group_name,member_id\ng1,Miro Users,u1\ng1,Miro Admins,u1\n",
    );
    let message = read_csv(&users, Some(&groups)).unwrap_err().to_string();
    assert!(
        message.contains("line 3") && message.contains("Miro Admins"),
        "{message}"
    );
}

#[test]
fn a_groups_file_without_its_columns_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "users.csv", b"id,email\nu1,a@b.co\n");
    let groups = write(dir.path(), "groups.csv", b"group,member\ng1,u1\n");
    let message = read_csv(&users, Some(&groups)).unwrap_err().to_string();
    assert!(message.contains("group_id"), "{message}");
}
