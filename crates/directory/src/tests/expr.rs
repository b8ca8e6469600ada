use super::snapshot;
use crate::{
    Apply, Expr, ExprOverride, MAX_VALUE_BYTES, Mapping, MappingConfig, MappingError, Override,
    Preset, RolesConfig, ScopeConfig, map, normalize_diacritics,
};
use scimsync_model::{AttrValue, paths};
use serde_json::json;
use std::collections::HashMap;

/// Evaluates `text` over `attrs`; an attribute not listed is null.
fn eval(text: &str, attrs: &[(&str, &str)]) -> Option<String> {
    let attrs: HashMap<&str, &str> = attrs.iter().copied().collect();
    Expr::parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .eval(&|name| attrs.get(name).copied())
        .unwrap()
}

fn column_of(text: &str) -> (usize, String) {
    let err = Expr::parse(text).expect_err(text);
    (err.column, err.message)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn literals_attributes_and_escapes() {
    assert_eq!(eval("\"a \\\"b\\\" \\\\ c\"", &[]), s("a \"b\" \\ c"));
    assert_eq!(eval("\"tab\\tnl\\n\"", &[]), s("tab\tnl\n"));
    assert_eq!(eval("[first]", &[("first", "Ann")]), s("Ann"));
    assert_eq!(
        eval("  [first]  ", &[]),
        None,
        "an absent attribute is null"
    );
    assert_eq!(eval("12", &[]), s("12"));
    assert_eq!(eval("[urn:x:y.z-w_1]", &[("urn:x:y.z-w_1", "v")]), s("v"));
}

#[test]
fn join_skips_nulls_and_is_null_when_all_are() {
    let e = "Join(\" \", [first], [middle], [last])";
    assert_eq!(
        eval(e, &[("first", "Ann"), ("middle", "B"), ("last", "Lee")]),
        s("Ann B Lee")
    );
    assert_eq!(eval(e, &[("first", "Ann"), ("last", "Lee")]), s("Ann Lee"));
    assert_eq!(eval(e, &[("last", "Lee")]), s("Lee"));
    assert_eq!(eval(e, &[]), None);
    assert_eq!(
        eval("Join([sep], \"a\", \"b\")", &[]),
        None,
        "null separator"
    );
    assert_eq!(eval("Join(\"\", \"a\", \"b\")", &[]), s("ab"));
    assert_eq!(
        eval("Join(\".\", Trim(\"  \"), \"b\")", &[]),
        s("b"),
        "an empty part is skipped like a null one"
    );
}

#[test]
fn coalesce_takes_the_first_non_empty() {
    let e = "Coalesce([nick], [first], \"anonymous\")";
    assert_eq!(eval(e, &[("nick", "Annie"), ("first", "Ann")]), s("Annie"));
    assert_eq!(eval(e, &[("first", "Ann")]), s("Ann"));
    assert_eq!(eval(e, &[]), s("anonymous"));
    assert_eq!(eval("Coalesce([a], [b])", &[]), None);
    assert_eq!(eval("Coalesce(\"\", [b])", &[("b", "x")]), s("x"));
}

#[test]
fn case_functions_are_unicode_aware() {
    assert_eq!(
        eval("ToLower([x])", &[("x", "ÀNN ΣΊΣΥΦΟΣ")]),
        s("ànn σίσυφος")
    );
    assert_eq!(eval("ToUpper([x])", &[("x", "straße ǆ")]), s("STRASSE Ǆ"));
    assert_eq!(eval("ToLower([x])", &[]), None);
    assert_eq!(eval("ToUpper([x])", &[]), None);
    assert_eq!(
        eval("tolower(\"A\")", &[]),
        s("a"),
        "names are case-insensitive"
    );
}

#[test]
fn replace_replaces_every_occurrence() {
    assert_eq!(
        eval("Replace([x], \" \", \".\")", &[("x", "Ann Marie Lee")]),
        s("Ann.Marie.Lee")
    );
    assert_eq!(
        eval("Replace([x], \"ö\", \"oe\")", &[("x", "Jöns")]),
        s("Joens")
    );
    assert_eq!(eval("Replace([x], \"\", \"-\")", &[("x", "ab")]), s("ab"));
    assert_eq!(eval("Replace([x], \"a\", \"b\")", &[]), None);
    assert_eq!(
        eval("Replace(\"a\", [old], \"b\")", &[]),
        None,
        "a null argument makes the call null"
    );
}

#[test]
fn switch_maps_keys_and_falls_back_to_the_default() {
    let e = "Switch([type], \"Member\", \"emp\", \"Employee\", \"ctr\", \"Contractor\")";
    assert_eq!(eval(e, &[("type", "emp")]), s("Employee"));
    assert_eq!(eval(e, &[("type", "ctr")]), s("Contractor"));
    assert_eq!(eval(e, &[("type", "other")]), s("Member"));
    assert_eq!(eval(e, &[]), s("Member"), "null input takes the default");
    assert_eq!(eval("Switch([t], [d], \"a\", \"b\")", &[]), None);
    assert_eq!(eval(e, &[("type", "EMP")]), s("Member"), "keys are exact");
}

#[test]
fn append_left_and_trim() {
    assert_eq!(
        eval("Append([x], \"@corp\")", &[("x", "ann")]),
        s("ann@corp")
    );
    assert_eq!(eval("Append([x], \"@corp\")", &[]), None);
    assert_eq!(eval("Append(\"a\", [y])", &[]), None);
    assert_eq!(eval("Left([x], 3)", &[("x", "Zoë Lee")]), s("Zoë"));
    assert_eq!(eval("Left([x], \"2\")", &[("x", "日本語")]), s("日本"));
    assert_eq!(eval("Left([x], 10)", &[("x", "ab")]), s("ab"));
    assert_eq!(eval("Left([x], 0)", &[("x", "ab")]), s(""));
    assert_eq!(eval("Left([x], 3)", &[]), None);
    assert_eq!(eval("Trim([x])", &[("x", "\u{a0} Ann \t")]), s("Ann"));
    assert_eq!(eval("Trim([x])", &[]), None);
}

#[test]
fn normalize_diacritics_drops_marks_and_strokes() {
    assert_eq!(
        eval("NormalizeDiacritics([x])", &[("x", "Ærøskøbing Ünïcödé")]),
        s("Æroskobing Unicode"),
        "ø has a stroke, folded; Æ is a letter of its own, kept"
    );
    // Precomposed and combining sequences normalise alike.
    assert_eq!(normalize_diacritics("Zo\u{0065}\u{0308}"), "Zoe");
    assert_eq!(normalize_diacritics("Zo\u{00eb}"), "Zoe");
    assert_eq!(normalize_diacritics("a\u{0301}\u{0327}\u{0323}"), "a");
    assert_eq!(normalize_diacritics("Łódź Đorđe Ħal"), "Lodz Dorde Hal");
    assert_eq!(
        normalize_diacritics("Dvořák Søren François"),
        "Dvorak Soren Francois"
    );
    assert_eq!(
        normalize_diacritics("한국어 日本 straße"),
        "한국어 日本 straße"
    );
    assert_eq!(eval("NormalizeDiacritics([x])", &[]), None);
}

#[test]
fn calls_nest() {
    let e = "ToLower(Join(\".\", NormalizeDiacritics(Trim([first])), NormalizeDiacritics([last])))";
    assert_eq!(
        eval(e, &[("first", " Zoë "), ("last", "Øster")]),
        s("zoe.oster")
    );
    let round = Expr::parse(e).unwrap().to_string();
    assert_eq!(Expr::parse(&round).unwrap(), Expr::parse(e).unwrap());
}

#[test]
fn values_over_the_limit_are_refused_not_built() {
    let big = "a".repeat(MAX_VALUE_BYTES / 2 + 1);
    let expr = Expr::parse("Join(\"\", [x], [x])").unwrap();
    assert!(expr.eval(&|_| Some(big.as_str())).is_err());
    let expr = Expr::parse("Replace([x], \"a\", \"aaaa\")").unwrap();
    assert!(expr.eval(&|_| Some(big.as_str())).is_err());
    let expr = Expr::parse("Append([x], [x])").unwrap();
    assert!(expr.eval(&|_| Some(big.as_str())).is_err());
}

#[test]
fn parse_errors_name_the_column() {
    let cases: &[(&str, usize, &str)] = &[
        ("Jion(\" \", [a])", 1, "unknown function"),
        ("ToLower([a], [b])", 1, "ToLower given 2 arguments"),
        ("Join(\" \")", 1, "Join given 1 argument"),
        ("Switch([a], \"d\", \"k\")", 1, "Switch given 3"),
        ("Left([a], [n])", 11, "count must be a whole number"),
        ("Left([a], \"x\")", 11, "count must be a whole number"),
        (
            "Trim([first name])",
            12,
            "cannot appear in an attribute name",
        ),
        ("Trim([])", 6, "names no attribute"),
        ("Trim([a)", 6, "unclosed [attribute]"),
        ("Trim(\"a)", 6, "unclosed \"literal\""),
        ("Trim(\"\\q\")", 7, "unknown escape"),
        ("Trim([a]", 1, "unclosed Trim("),
        ("Trim([a] [b])", 10, "expected ',' or ')'"),
        ("Trim [a]", 6, "expected '(' after Trim"),
        ("[a] [b]", 5, "unexpected text after"),
        ("", 1, "expected a value"),
        ("Join(\" \", ,)", 11, "unexpected ','"),
        ("firstname", 1, "a source attribute is written [firstname]"),
    ];
    for (text, column, message) in cases {
        let (got_column, got_message) = column_of(text);
        assert!(
            got_message.contains(message),
            "{text}: {got_message:?} lacks {message:?}"
        );
        assert_eq!(got_column, *column, "{text}: {got_message}");
    }
    let deep = format!("{}[a]{}", "Trim(".repeat(40), ")".repeat(40));
    assert!(column_of(&deep).1.contains("nested deeper"));
}

#[derive(Debug, serde::Deserialize)]
struct Sections {
    mapping: MappingConfig,
}

fn toml_mapping(text: &str) -> Result<MappingConfig, toml::de::Error> {
    toml::from_str::<Sections>(text).map(|s| s.mapping)
}

#[test]
fn the_table_form_reads_expr_apply_and_default() {
    let config = toml_mapping(
        r#"
[mapping]
displayName = { expr = "Join(\" \", [firstname], [lastname])", default = "Unknown" }
userType = { expr = "\"Employee\"", apply = "on_create" }
title = "jobTitle"
name.givenName = { expr = "Trim([firstname])" }
"#,
    )
    .unwrap();
    assert_eq!(
        config.overrides["displayName"],
        Override::Expr(ExprOverride {
            expr: "Join(\" \", [firstname], [lastname])".to_owned(),
            apply: Apply::Always,
            default: Some("Unknown".to_owned()),
            truncate: false,
        })
    );
    assert_eq!(
        config.overrides["userType"],
        Override::Expr(ExprOverride {
            apply: Apply::OnCreate,
            ..ExprOverride::new("\"Employee\"")
        })
    );
    assert_eq!(config.overrides["title"], Override::from("jobTitle"));
    assert_eq!(
        config.overrides["name.givenName"],
        Override::Expr(ExprOverride::new("Trim([firstname])")),
        "a dotted key may hold an expression table"
    );
    let json = serde_json::to_value(&config).unwrap();
    let back: MappingConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, config, "round-trips through serialization");
}

#[test]
fn a_bad_expression_fails_the_load_with_its_line_and_column() {
    let err = toml_mapping(
        "[mapping]\ntitle = \"jobTitle\"\ndisplayName = { expr = \"Join(\\\" \\\", Lower([lastname]))\" }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 3"), "{err}");
    assert!(
        err.contains("column 11: unknown function \"Lower\""),
        "{err}"
    );

    for (text, what) in [
        (
            "[mapping]\ntitle = { expr = \"[a]\", apply = \"sometimes\" }",
            "sometimes",
        ),
        (
            "[mapping]\ntitle = { expr = \"[a]\", when = \"x\" }",
            "when",
        ),
        ("[mapping]\ntitle = { apply = \"on_create\" }", "needs expr"),
        ("[mapping]\ntitle = { expr = 3 }", "invalid type: integer"),
    ] {
        let err = toml_mapping(text).unwrap_err().to_string();
        assert!(err.contains(what), "{text}: {err}");
        assert!(err.contains("line 2"), "{text}: {err}");
    }
}

fn compile(overrides: Vec<(&str, Override)>) -> Result<Mapping, MappingError> {
    Mapping::compile(&MappingConfig {
        preset: Preset::Jumpcloud,
        overrides: overrides
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    })
}

#[test]
fn compile_checks_expressions_naming_the_key() {
    let err = compile(vec![("title", ExprOverride::new("Left([a])").into())]).unwrap_err();
    assert!(matches!(err, MappingError::Expression { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("\"title\"") && text.contains("column 1"),
        "{text}"
    );
    let err = compile(vec![(paths::MANAGER, ExprOverride::new("[boss]").into())]).unwrap_err();
    assert!(
        matches!(err, MappingError::ManagerExpression { .. }),
        "{err}"
    );
    let long = ExprOverride {
        default: Some("x".repeat(MAX_VALUE_BYTES + 1)),
        ..ExprOverride::new("[a]")
    };
    assert!(matches!(
        compile(vec![("title", long.into())]).unwrap_err(),
        MappingError::DefaultTooLong { .. }
    ));
}

#[test]
fn expressions_map_end_to_end() {
    let mapping = compile(vec![
        (
            "displayName",
            ExprOverride {
                default: Some("Unnamed".to_owned()),
                ..ExprOverride::new("Join(\" \", Trim([firstname]), ToUpper([lastname]))")
            }
            .into(),
        ),
        (
            "userType",
            ExprOverride {
                apply: Apply::OnCreate,
                ..ExprOverride::new("\"Employee\"")
            }
            .into(),
        ),
        (
            "title",
            ExprOverride::new("Switch([kind], \"Staff\", \"c\", \"Contractor\")").into(),
        ),
    ])
    .unwrap();
    assert_eq!(
        mapping.on_create_paths().collect::<Vec<_>>(),
        [paths::USER_TYPE]
    );
    assert!(mapping.paths().any(|p| p == paths::USER_TYPE));
    let snap = snapshot(json!({"users": [
        {"id": "a", "email": "a@x.co", "firstname": " Zoë ", "lastname": "Lee", "kind": "c"},
        {"id": "b", "email": "b@x.co", "lastname": "Øster"},
        {"id": "c", "email": "c@x.co", "firstname": "  "},
        {"id": "big", "email": "big@x.co", "firstname": "a".repeat(MAX_VALUE_BYTES / 2 + 1),
         "lastname": "b".repeat(MAX_VALUE_BYTES / 2 + 1)}
    ]}));
    let mapped = map(
        &snap,
        &ScopeConfig::default(),
        &RolesConfig::default(),
        &mapping,
    );
    let attrs = |id: &str| {
        mapped
            .desired
            .iter()
            .find(|d| d.source_id.as_str() == id)
            .unwrap()
            .attrs
            .clone()
    };
    let text = AttrValue::text;
    assert_eq!(attrs("a")[paths::DISPLAY_NAME], text("Zoë LEE"));
    assert_eq!(attrs("a")[paths::USER_TYPE], text("Employee"));
    assert_eq!(attrs("a")[paths::TITLE], text("Contractor"));
    assert_eq!(attrs("b")[paths::DISPLAY_NAME], text("ØSTER"));
    assert_eq!(attrs("b")[paths::TITLE], text("Staff"));
    assert_eq!(
        attrs("c")[paths::DISPLAY_NAME],
        text("Unnamed"),
        "the default answers a null value"
    );
    assert_eq!(attrs("c")[paths::USER_TYPE], text("Employee"));
    let big = mapped
        .invalid
        .iter()
        .find(|r| r.source_id.as_str() == "big")
        .expect("an over-long computed value makes the record invalid");
    assert_eq!(big.field, paths::DISPLAY_NAME);
}

#[test]
fn the_documented_example_loads_and_compiles() {
    let docs = include_str!("../../../../docs/sync-toml.md");
    let start = docs
        .find("```toml\n[mapping]\npreset = \"jumpcloud\"\ndisplayName")
        .expect("docs/sync-toml.md holds the [mapping] expression example");
    let body = &docs[start + "```toml\n".len()..];
    let example = &body[..body.find("```").unwrap()];
    let config = toml_mapping(example).unwrap();
    let mapping = Mapping::compile(&config).unwrap();
    assert_eq!(
        mapping.on_create_paths().collect::<Vec<_>>(),
        [paths::USER_TYPE]
    );
}
