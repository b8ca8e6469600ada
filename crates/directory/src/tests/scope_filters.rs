//! `[[scope.filter]]`: each Entra operator, null and unicode values, AND within a filter, OR
//! across filters, config errors naming the filter, and the rule named in OutOfScope.

use super::{jumpcloud, snapshot};
use crate::{RolesConfig, ScopeConfig, map};
use scimsync_model::{OutOfScopeReason, SourceId, SourceUser};
use serde_json::json;

fn scope(toml_text: &str) -> Result<ScopeConfig, String> {
    toml::from_str::<ScopeConfig>(toml_text).map_err(|e| e.to_string())
}

fn user(attrs: &[(&str, &str)]) -> SourceUser {
    SourceUser {
        id: SourceId::new("u1"),
        attrs: attrs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).to_owned()))
            .collect(),
    }
}

/// Whether one clause `attribute OPERATOR value` holds for `value` (None: attribute absent).
fn holds(operator: &str, value: Option<&str>, operand: Option<&str>) -> bool {
    let operand = match operand {
        Some(v) => format!(", value = {}", toml::Value::String(v.to_owned())),
        None => String::new(),
    };
    let cfg = scope(&format!(
        "[[filter]]\nclauses = [{{ attribute = \"a\", operator = \"{operator}\"{operand} }}]"
    ))
    .unwrap();
    let u = match value {
        Some(v) => user(&[("a", v)]),
        None => user(&[]),
    };
    crate::scope_filter::excluded_by(&cfg.filters, &u).is_none()
}

#[test]
fn equals_and_not_equals_are_exact_and_case_sensitive() {
    assert!(holds("EQUALS", Some("Eng"), Some("Eng")));
    assert!(!holds("EQUALS", Some("eng"), Some("Eng")));
    assert!(!holds("EQUALS", None, Some("Eng")));
    assert!(holds("EQUALS", Some("Zürich"), Some("Zürich")));
    // Composed vs decomposed ü: different strings, as Entra compares them.
    assert!(!holds("EQUALS", Some("Zu\u{308}rich"), Some("Zürich")));
    assert!(holds("NOT EQUALS", Some("Ops"), Some("Eng")));
    assert!(!holds("NOT EQUALS", Some("Eng"), Some("Eng")));
    assert!(holds("NOT EQUALS", None, Some("Eng")), "null is not equal");
}

#[test]
fn booleans() {
    assert!(holds("IS TRUE", Some("true"), None));
    assert!(holds("IS TRUE", Some("TRUE"), None));
    assert!(!holds("IS TRUE", Some("false"), None));
    assert!(!holds("IS TRUE", None, None));
    assert!(!holds("IS TRUE", Some("yes"), None));
    assert!(holds("IS FALSE", Some("False"), None));
    assert!(!holds("IS FALSE", None, None));
}

#[test]
fn nulls() {
    assert!(holds("IS NULL", None, None));
    assert!(
        holds("IS NULL", Some("   "), None),
        "whitespace only is null"
    );
    assert!(!holds("IS NULL", Some("x"), None));
    assert!(holds("IS NOT NULL", Some("x"), None));
    assert!(!holds("IS NOT NULL", None, None));
}

#[test]
fn regexes() {
    assert!(holds(
        "REGEX MATCH",
        Some("ann@example.com"),
        Some(r"@example\.com$")
    ));
    assert!(!holds(
        "REGEX MATCH",
        Some("ann@example.org"),
        Some(r"@example\.com$")
    ));
    assert!(!holds("REGEX MATCH", None, Some(".*")));
    assert!(holds("REGEX MATCH", Some("Łódź"), Some(r"^\p{Lu}\p{Ll}+$")));
    assert!(holds(
        "NOT REGEX MATCH",
        Some("contractor-1"),
        Some("^emp-")
    ));
    assert!(!holds("NOT REGEX MATCH", Some("emp-1"), Some("^emp-")));
    assert!(
        holds("NOT REGEX MATCH", None, Some("^emp-")),
        "null matches nothing"
    );
}

#[test]
fn integer_comparisons() {
    assert!(holds("Greater_Than", Some("11"), Some("10")));
    assert!(!holds("Greater_Than", Some("10"), Some("10")));
    assert!(holds("Greater_Than_OR_EQUALS", Some("10"), Some("10")));
    assert!(holds("Less_Than", Some("-3"), Some("0")));
    assert!(!holds("Less_Than", Some("0"), Some("0")));
    assert!(holds("Less_Than_OR_EQUALS", Some(" 0 "), Some("0")));
    assert!(
        !holds("Greater_Than", None, Some("0")),
        "null compares false"
    );
    assert!(
        !holds("Greater_Than", Some("ten"), Some("0")),
        "a non-number compares false"
    );
    // Also spelled with spaces and in lower case.
    assert!(holds("greater than", Some("2"), Some("1")));
}

#[test]
fn includes() {
    assert!(holds("Includes", Some("Sales EMEA"), Some("EMEA")));
    assert!(!holds("Includes", Some("Sales emea"), Some("EMEA")));
    assert!(holds(
        "Includes",
        Some("Forschung & Entwicklung"),
        Some("& Ent")
    ));
    assert!(!holds("Includes", None, Some("x")));
    assert!(holds("NOT Includes", Some("Sales"), Some("EMEA")));
    assert!(holds("NOT Includes", None, Some("EMEA")));
}

#[test]
fn and_inside_a_filter_or_across_filters() {
    let cfg = scope(
        r#"
[[filter]]
name = "engineers"
clauses = [
  { attribute = "department", operator = "EQUALS", value = "Eng" },
  { attribute = "employeeidentifier", operator = "IS NOT NULL" },
]
[[filter]]
name = "sales leads"
clauses = [{ attribute = "jobTitle", operator = "Includes", value = "Lead" }]
"#,
    )
    .unwrap();
    let check =
        |attrs: &[(&str, &str)]| crate::scope_filter::excluded_by(&cfg.filters, &user(attrs));
    assert_eq!(
        check(&[("department", "Eng"), ("employeeidentifier", "E1")]),
        None
    );
    assert_eq!(check(&[("jobTitle", "Team Lead")]), None);
    let rule = check(&[("department", "Eng")]).unwrap();
    assert!(
        rule.contains("\"engineers\": employeeidentifier IS NOT NULL"),
        "{rule}"
    );
    assert!(
        rule.contains("\"sales leads\": jobTitle Includes \"Lead\""),
        "{rule}"
    );
}

#[test]
fn bad_filters_are_config_errors_naming_the_filter() {
    let err = scope(
        "[[filter]]\nname = \"emea\"\nclauses = [{ attribute = \"a\", operator = \"REGEX MATCH\", value = \"(\" }]",
    )
    .unwrap_err();
    assert!(err.contains("\"emea\"") && err.contains("regex"), "{err}");
    let err = scope(
        "[[filter]]\nname = \"x\"\nclauses = [{ attribute = \"a\", operator = \"STARTS WITH\", value = \"b\" }]",
    )
    .unwrap_err();
    assert!(
        err.contains("unknown operator") && err.contains("\"x\""),
        "{err}"
    );
    assert!(err.contains("line"), "toml says where: {err}");
    let err = scope("[[filter]]\nclauses = [{ attribute = \"a\", operator = \"Greater_Than\", value = \"big\" }]").unwrap_err();
    assert!(err.contains("integer"), "{err}");
    let err =
        scope("[[filter]]\nclauses = [{ attribute = \"a\", operator = \"EQUALS\" }]").unwrap_err();
    assert!(err.contains("needs a value"), "{err}");
    let err = scope(
        "[[filter]]\nclauses = [{ attribute = \"a\", operator = \"IS NULL\", value = \"x\" }]",
    )
    .unwrap_err();
    assert!(err.contains("takes no value"), "{err}");
    assert!(scope("[[filter]]\nclauses = []").is_err());
}

#[test]
fn map_puts_filtered_users_out_of_scope_with_the_rule() {
    let snap = snapshot(json!({"users": [
        {"id": "u1", "email": "ann@example.com", "department": "Eng"},
        {"id": "u2", "email": "bob@example.com", "department": "Sales"},
    ], "groups": []}));
    let cfg = scope(
        "[[filter]]\nname = \"eng only\"\nclauses = [{ attribute = \"department\", operator = \"EQUALS\", value = \"Eng\" }]",
    )
    .unwrap();
    let mapped = map(&snap, &cfg, &RolesConfig::default(), &jumpcloud());
    assert_eq!(mapped.desired.len(), 1);
    assert_eq!(mapped.desired[0].source_id.as_str(), "u1");
    assert_eq!(mapped.out_of_scope.len(), 1);
    match &mapped.out_of_scope[0].reason {
        OutOfScopeReason::Filtered { rule } => {
            assert!(
                rule.contains("eng only") && rule.contains("department EQUALS"),
                "{rule}"
            )
        }
        other => panic!("{other:?}"),
    }
}
