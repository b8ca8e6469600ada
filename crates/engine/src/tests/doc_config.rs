//! docs/sync-toml.md and the configuration cannot drift: every TOML example in it loads, every
//! key its tables list is a key the loader knows, and the `[target.rate_limits]` budgets it
//! names set those budgets. (All nine bucket keys were once refused as unknown fields.)

use crate::config::Config;
use toml::{Table, Value};

const DOC: &str = include_str!("../../../../docs/sync-toml.md");

/// The smallest valid configuration, which each example and key is merged into.
const BASE: &str = r#"
[source]
kind = "json"
path = "directory.json"

[target]
url = "https://miro.com/api/v1/scim"
token_env = "MIRO_SCIM_TOKEN"
"#;

/// A table row of the doc: the section it documents, a key, and its default cell.
#[derive(Debug)]
struct Row {
    section: String,
    key: String,
    default: String,
}

/// The ```toml blocks, with the line each starts on.
fn examples() -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in DOC.lines().enumerate() {
        match &mut current {
            None if line.trim_start().starts_with("```toml") => {
                current = Some((n + 1, String::new()))
            }
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// The section a heading or a lead-in line names: `## [target]`, `### [source.ldap]`,
/// `` `[source.ldap.attributes]`: … ``.
fn section_of(line: &str) -> Option<String> {
    let line = line.trim();
    let rest = line
        .strip_prefix("## ")
        .or_else(|| line.strip_prefix("### "))
        .or_else(|| line.strip_prefix('`'))?;
    let start = rest.find('[')?;
    let end = rest.find(']')?;
    let name = rest[start..=end].trim_matches(|c| c == '[' || c == ']');
    (!name.is_empty() && rest[..start].trim().is_empty()).then(|| name.to_owned())
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut section = String::new();
    let mut array = false;
    for line in DOC.lines() {
        if let Some(name) = section_of(line) {
            array = line.contains("[[");
            section = name;
            continue;
        }
        // An array of tables ([[scope.filter]]) documents operators, not keys.
        if array || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(keys), Some(default)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        for key in keys.split('`').skip(1).step_by(2) {
            // Placeholders (`"<scim path>"`) and table names are not keys.
            if key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                rows.push(Row {
                    section: section.clone(),
                    key: key.to_owned(),
                    default: (*default).to_owned(),
                });
            }
        }
    }
    rows
}

/// `table` with `other` merged in, `other` winning (tables merge, other values replace).
fn merge(table: &mut Table, other: Table) {
    for (key, value) in other {
        match (table.get_mut(&key), value) {
            (Some(Value::Table(mine)), Value::Table(theirs)) => merge(mine, theirs),
            (_, value) => {
                table.insert(key, value);
            }
        }
    }
}

fn load(table: &Table) -> Result<Config, crate::error::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.toml");
    std::fs::write(&path, toml::to_string(table).unwrap()).unwrap();
    Config::load(&path)
}

/// The LDAP keys need an LDAP source to be checked in.
const LDAP: &str = r#"
[source]
kind = "ldap"
[source.ldap]
url = "ldap://127.0.0.1:389"
base_dn = "dc=example,dc=com"
"#;

/// The REST keys are checked in a table that has its required `org_id`.
const REST: &str = r#"
[target.rest]
org_id = "3074457350000000001"
token_env = "MIRO_REST_TOKEN"
"#;

fn with(section: &str, key: &str, value: Value) -> Table {
    let mut table: Table = toml::from_str(BASE).unwrap();
    if section.starts_with("source.ldap") {
        merge(&mut table, toml::from_str(LDAP).unwrap());
    }
    if section.starts_with("target.rest") {
        merge(&mut table, toml::from_str(REST).unwrap());
    }
    let mut at = &mut table;
    for part in section.split('.') {
        at = at
            .entry(part.to_owned())
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .unwrap();
    }
    at.insert(key.to_owned(), value);
    table
}

/// The default cell as a TOML value when it is one (`` `"40m"` ``, `` `16` ``, `` `false` ``).
fn literal(default: &str) -> Option<Value> {
    let inner = default.strip_prefix('`')?.strip_suffix('`')?;
    toml::from_str::<Table>(&format!("v = {inner}"))
        .ok()?
        .remove("v")
}

#[test]
fn every_toml_example_of_the_doc_loads() {
    let blocks = examples();
    assert!(blocks.len() >= 7, "found only {} examples", blocks.len());
    for (line, text) in blocks {
        let example: Table = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("docs/sync-toml.md line {line}: not TOML: {e}\n{text}"));
        let mut table: Table = toml::from_str(BASE).unwrap();
        merge(&mut table, example);
        if let Err(e) = load(&table) {
            panic!("docs/sync-toml.md line {line}: the example does not load: {e:#}\n{text}");
        }
    }
}

#[test]
fn every_key_the_doc_tables_list_is_known() {
    let rows = rows();
    assert!(rows.len() >= 60, "found only {} keys", rows.len());
    let mut unknown = Vec::new();
    for row in &rows {
        let value = literal(&row.default).unwrap_or_else(|| Value::String("x".into()));
        let defaults_load = literal(&row.default).is_some();
        match load(&with(&row.section, &row.key, value)) {
            Ok(_) => {}
            Err(e) => {
                let message = format!("{e:#}");
                if message.contains("unknown field") {
                    unknown.push(format!("[{}] {}: {message}", row.section, row.key));
                } else if defaults_load {
                    // A documented default is a valid value of its key.
                    unknown.push(format!(
                        "[{}] {} = {} (its documented default): {message}",
                        row.section, row.key, row.default
                    ));
                }
            }
        }
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
}

#[test]
fn the_documented_rate_limit_budgets_set_their_buckets() {
    // The defaults listed in prose: `users_get = 200`, `users_post = 200`, …
    let start = DOC.find("### [target.rate_limits]").unwrap();
    let section = &DOC[start..];
    let section = &section[..section[4..].find("\n### ").map_or(section.len(), |e| e + 4)];
    let mut named = Vec::new();
    for item in section.split('`').skip(1).step_by(2) {
        if let Some((key, n)) = item.split_once(" = ")
            && let Ok(n) = n.trim().parse::<u32>()
        {
            named.push((key.trim().to_owned(), n));
        }
    }
    let buckets: Vec<&str> = scimsync_scim::Bucket::ALL
        .iter()
        .map(|b| b.as_str())
        .collect();
    let mut keys: Vec<&str> = named.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut all = buckets.clone();
    all.sort_unstable();
    assert_eq!(keys, all, "the doc names every bucket: {named:?}");
    for (key, n) in &named {
        // A different number than the profile's, so the override is seen.
        let n = n + 1;
        let config = load(&with("target.rate_limits", key, Value::Integer(n.into())))
            .unwrap_or_else(|e| panic!("[target.rate_limits] {key} = {n}: {e:#}"));
        let bucket = scimsync_scim::Bucket::parse(key).unwrap();
        assert_eq!(
            config.profile().budgets.buckets.get(&bucket),
            Some(&n),
            "{key}"
        );
    }
    // A typo is still an error.
    let typo = load(&with("target.rate_limits", "users_psot", Value::Integer(5)));
    assert!(
        format!("{:#}", typo.unwrap_err()).contains("unknown field"),
        "a misspelt bucket must not be ignored"
    );
    let zero = load(&with("target.rate_limits", "users_post", Value::Integer(0)));
    assert!(format!("{:#}", zero.unwrap_err()).contains("at least 1"));
}
