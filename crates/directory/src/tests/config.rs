use crate::{Mapping, MappingConfig, Preset, RolesConfig, ScopeConfig};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sections {
    #[serde(default)]
    scope: ScopeConfig,
    #[serde(default)]
    roles: RolesConfig,
    #[serde(default)]
    mapping: MappingConfig,
}

fn parse(text: &str) -> Result<Sections, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn absent_sections_take_the_spec_defaults() {
    let s = parse("").unwrap();
    assert_eq!(s.scope.groups, None);
    assert!(s.roles.admin_groups.is_empty());
    assert_eq!(s.mapping.preset, Preset::Jumpcloud);
    assert!(s.mapping.overrides.is_empty());
}

#[test]
fn reads_the_spec_sections() {
    let s = parse(
        r#"
[scope]
groups = ["Miro Users"]

[roles]
admin_groups = ["Miro Admins"]

[mapping]
preset = "entra"
"title" = "position"
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter" = "=CC-1"
name.givenName = "nick"
"#,
    )
    .unwrap();
    assert_eq!(s.scope.groups, Some(vec!["Miro Users".to_owned()]));
    assert_eq!(s.roles.admin_groups, ["Miro Admins"]);
    assert_eq!(s.mapping.preset, Preset::Entra);
    assert_eq!(s.mapping.overrides["title"], "position".into());
    assert_eq!(
        s.mapping.overrides["name.givenName"],
        "nick".into(),
        "a dotted key is its path"
    );
    assert_eq!(
        s.mapping.overrides["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"],
        "=CC-1".into()
    );
    assert!(Mapping::compile(&s.mapping).is_ok());
}

#[test]
fn typos_are_refused() {
    assert!(parse("[scope]\ngroup = [\"x\"]").is_err());
    assert!(parse("[roles]\nadmins = [\"x\"]").is_err());
    let err = parse("[mapping]\npreset = \"okta\"").unwrap_err();
    assert!(err.to_string().contains("okta"), "{err}");
    assert!(parse("[mapping]\ntitle = 3").is_err());
}

#[test]
fn a_refused_override_fails_at_compile_naming_the_key() {
    let s = parse("[mapping]\nuserName = \"mail\"").unwrap();
    let err = Mapping::compile(&s.mapping).unwrap_err();
    assert!(err.to_string().contains("userName"), "{err}");
}

#[test]
fn a_mapping_section_round_trips_through_serialization() {
    let s = parse("[mapping]\npreset = \"entra\"\n\"title\" = \"position\"\n").unwrap();
    let json = serde_json::to_value(&s.mapping).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"preset": "entra", "title": "position"})
    );
    let back: MappingConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, s.mapping);
}

/// Record keys are computed under a context naming the compiled mapping and the scoping
/// filters: any difference that could map a record differently is another context, and the
/// same configuration compiled again is the same one.
#[test]
fn every_mapping_or_filter_difference_is_another_record_context() {
    let configs = [
        "",
        "[mapping]\npreset = \"entra\"",
        "[mapping]\ntitle = \"jobTitle\"",
        "[mapping]\ntitle = \"jobtitle\"",
        "[mapping]\ntitle = \"=Engineer\"",
        "[mapping]\ndisplayName = \"\"",
        "[mapping]\ntitle = { expr = \"Join(\\\" \\\", [a], [b])\" }",
        "[mapping]\ntitle = { expr = \"Join(\\\" \\\", [a], [b])\", default = \"x\" }",
        "[mapping]\ntitle = { expr = \"Join(\\\" \\\", [a], [b])\", apply = \"on_create\" }",
        "[mapping]\ntitle = { expr = \"Join(\\\" \\\", [ab])\" }",
        "[mapping]\ntitle = { expr = \"Left([a], 3)\" }",
        "[mapping]\ntitle = { expr = \"Left([a], 4)\" }",
        "[mapping]\ntitle = { expr = \"ToLower([a])\" }",
        "[mapping]\ntitle = { expr = \"ToUpper([a])\" }",
        "[[scope.filter]]\nclauses = [{ attribute = \"a\", operator = \"EQUALS\", value = \"x\" }]",
        "[[scope.filter]]\nclauses = [{ attribute = \"a\", operator = \"NOT EQUALS\", value = \"x\" }]",
        "[[scope.filter]]\nclauses = [{ attribute = \"a\", operator = \"REGEX MATCH\", value = \"x\" }]",
        "[[scope.filter]]\nclauses = [{ attribute = \"a\", operator = \"Greater_Than\", value = 3 }]",
        "[[scope.filter]]\nname = \"n\"\nclauses = [{ attribute = \"a\", operator = \"IS TRUE\" }]",
        "[[scope.filter]]\nclauses = [{ attribute = \"a\", operator = \"IS TRUE\" }]\n[[scope.filter]]\nclauses = [{ attribute = \"b\", operator = \"IS TRUE\" }]",
        "[[scope.filter]]\nclauses = [{ attribute = \"a\", operator = \"IS TRUE\" }, { attribute = \"b\", operator = \"IS TRUE\" }]",
    ];
    let context = |text: &str| {
        let sections = parse(text).unwrap();
        Mapping::compile(&sections.mapping)
            .unwrap()
            .record_context(&sections.scope)
    };
    let contexts: Vec<_> = configs.iter().map(|text| context(text)).collect();
    for (i, a) in contexts.iter().enumerate() {
        assert_eq!(*a, context(configs[i]), "{:?} compiled again", configs[i]);
        for (j, b) in contexts.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "{:?} and {:?}", configs[i], configs[j]);
        }
    }
    // What is decided per cycle (the scope and admin groups) is not in the context.
    assert_eq!(
        context("[scope]\ngroups = [\"Miro Users\"]\n[roles]\nadmin_groups = [\"A\"]"),
        contexts[0]
    );
}
