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
