//! The `[scope]`, `[roles]` and `[mapping]` sections of sync.toml.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `[scope]`: which directory users are provisioned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    /// Users who are members of a group whose `name` equals one of these, exactly
    /// (case-sensitive, no trimming: directory group names are unique as written). Absent: every
    /// user. Members are direct members only: groups do not nest. An empty list puts nobody in
    /// scope (every user unassigned; the deletion guard is what stops that becoming a purge).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// `[[scope.filter]]`: Entra-style scoping filters, OR across filters, AND across each
    /// filter's clauses. Empty: no filtering. Applied on top of `groups`.
    #[serde(default, rename = "filter", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<crate::scope_filter::ScopeFilter>,
}

/// `[roles]`: the target organisation role of each provisioned user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    /// Members of a group with one of these names (matched exactly, like scope groups) are
    /// admins; everyone else is a plain user.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// The role value of admins (default: Miro's `ORGANIZATION_INTERNAL_ADMIN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_role: Option<String>,
    /// The role value of everyone else (default: Miro's `ORGANIZATION_INTERNAL_USER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_role: Option<String>,
    /// `[roles.admin_roles]`: directory group name → the admin roles its members hold besides
    /// their primary role (Miro's `organization_admin_role`: "Content Admin", "User Admin",
    /// "Security Admin", or a custom admin role's name). Only these role values are managed:
    /// one given by hand in the target, or no longer listed here, is left alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub admin_roles: BTreeMap<String, Vec<String>>,
}

impl RolesConfig {
    /// Whether sync.toml maps roles at all: `admin_groups` or a role value set.
    pub fn is_mapped(&self) -> bool {
        !self.admin_groups.is_empty() || self.admin_role.is_some() || self.user_role.is_some()
    }

    /// The role values: the ones set here, Miro's otherwise.
    pub fn values(&self) -> crate::RoleValues {
        let miro = crate::RoleValues::miro();
        crate::RoleValues::new(
            self.admin_role.clone().unwrap_or(miro.admin),
            self.user_role.clone().unwrap_or(miro.user),
        )
    }
}

/// Which directory's attribute names the mapping starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// JumpCloud's names: `email`, `firstname`, `lastname`, `state`, … (docs/sync-toml.md, `preset`).
    #[default]
    Jumpcloud,
    /// Microsoft Entra's names: `userPrincipalName`, `givenName`, `surname`, `accountEnabled`, …
    Entra,
}

impl Preset {
    /// The source attributes the email is read from, in order of preference.
    pub fn email_attrs(self) -> &'static [&'static str] {
        match self {
            Preset::Jumpcloud => &["email"],
            Preset::Entra => &["userPrincipalName", "mail"],
        }
    }
}

/// `[mapping]`: a preset, and overrides `"scim.path" = "source attribute"` (or `"=literal"` for
/// a constant, or `""` to stop sending the path), or `"scim.path" = { expr = "…", apply = "…",
/// default = "…" }` for an expression ([`crate::Expr`]). TOML dotted keys
/// (`name.givenName = "x"`) are read as the dotted path they spell. Expressions are parsed as
/// the file is read, so a bad one fails with its line; the rest is checked by
/// [`crate::Mapping::compile`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MappingConfig {
    pub preset: Preset,
    #[serde(flatten)]
    pub overrides: BTreeMap<String, Override>,
}

/// One `[mapping]` entry's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Override {
    /// `"source attribute"`, `"=literal"`, or `""` to stop sending the path.
    Plain(String),
    /// `{ expr = "…", apply = "always" | "on_create", default = "…", truncate = true }`.
    Expr(ExprOverride),
    /// `{ truncate = true }`: the path keeps its source (the preset's), and a value longer
    /// than the target keeps is cut to its limit.
    Truncate,
}

impl From<&str> for Override {
    fn from(value: &str) -> Override {
        Override::Plain(value.to_owned())
    }
}

impl From<ExprOverride> for Override {
    fn from(value: ExprOverride) -> Override {
        Override::Expr(value)
    }
}

/// The table form of a `[mapping]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExprOverride {
    /// The expression text, checked by [`crate::Expr::parse`].
    pub expr: String,
    #[serde(default, skip_serializing_if = "Apply::is_always")]
    pub apply: Apply,
    /// Sent when the expression's value is null or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// A value longer than the target keeps is cut to its limit (else the record is invalid).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncate: bool,
}

impl ExprOverride {
    pub fn new(expr: impl Into<String>) -> ExprOverride {
        ExprOverride {
            expr: expr.into(),
            apply: Apply::Always,
            default: None,
            truncate: false,
        }
    }
}

/// When a mapped value is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Apply {
    /// On create, and on update whenever the target's value differs.
    #[default]
    Always,
    /// On create only: never compared afterwards, so a change made in the target stays.
    OnCreate,
}

impl Apply {
    fn is_always(&self) -> bool {
        *self == Apply::Always
    }
}

impl<'de> Deserialize<'de> for MappingConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MappingVisitor)
    }
}

struct MappingVisitor;

impl<'de> Visitor<'de> for MappingVisitor {
    type Value = MappingConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [mapping] table: preset = \"jumpcloud\" | \"entra\", and \"scim.path\" = \"source attribute\" entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MappingConfig, A::Error> {
        let mut config = MappingConfig::default();
        let mut preset_seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "preset" {
                if preset_seen {
                    return Err(de::Error::duplicate_field("preset"));
                }
                preset_seen = true;
                config.preset = map.next_value()?;
                continue;
            }
            let entry: Entry = map.next_value()?;
            entry.flatten_into(key, &mut config.overrides)?;
        }
        Ok(config)
    }
}

/// The keys of an expression entry. No supported SCIM path has a segment of these names, so a
/// table holding one is an expression entry, never a dotted path.
const EXPR_KEYS: &[&str] = &["expr", "apply", "default", "truncate"];

/// A mapping value, or a table of them when TOML split a dotted key.
enum Entry {
    Text(String),
    Bool(bool),
    Expr(ExprOverride),
    Truncate,
    Table(Vec<(String, Entry)>),
}

impl Entry {
    fn flatten_into<E: de::Error>(
        self,
        path: String,
        out: &mut BTreeMap<String, Override>,
    ) -> Result<(), E> {
        let value = match self {
            Entry::Text(text) => Override::Plain(text),
            Entry::Bool(b) => {
                return Err(E::custom(format!(
                    "\"{path}\" = {b}: a mapping value is a source attribute name, \"=constant\" or a table"
                )));
            }
            Entry::Expr(expr) => Override::Expr(expr),
            Entry::Truncate => Override::Truncate,
            Entry::Table(entries) => {
                for (key, entry) in entries {
                    entry.flatten_into(format!("{path}.{key}"), out)?;
                }
                return Ok(());
            }
        };
        if out.contains_key(&path) {
            return Err(E::custom(format!("\"{path}\" is mapped twice")));
        }
        out.insert(path, value);
        Ok(())
    }

    /// An expression entry from its table's entries, the expression parsed now so that an
    /// error carries the TOML line.
    fn expr<E: de::Error>(entries: Vec<(String, Entry)>) -> Result<Entry, E> {
        let mut expr = None;
        let mut apply = Apply::Always;
        let mut default = None;
        let mut truncate = false;
        for (key, entry) in entries {
            if key == "truncate" {
                let Entry::Bool(b) = entry else {
                    return Err(E::custom("truncate must be true or false"));
                };
                truncate = b;
                continue;
            }
            let Entry::Text(text) = entry else {
                return Err(E::custom(format!(
                    "an expression entry's {key:?} must be a string"
                )));
            };
            match key.as_str() {
                "expr" => expr = Some(text),
                "default" => default = Some(text),
                "apply" => {
                    apply = match text.as_str() {
                        "always" => Apply::Always,
                        "on_create" => Apply::OnCreate,
                        other => {
                            return Err(E::custom(format!(
                                "apply = {other:?}: expected \"always\" or \"on_create\""
                            )));
                        }
                    }
                }
                other => {
                    return Err(E::custom(format!(
                        "unknown key {other:?} in an expression entry; expected expr, apply, default, truncate"
                    )));
                }
            }
        }
        if expr.is_none() && default.is_none() && apply == Apply::Always && truncate {
            // `{ truncate = true }` alone: the path's own source, cut to the target's limit.
            return Ok(Entry::Truncate);
        }
        let Some(expr) = expr else {
            return Err(E::custom(
                "an entry with apply or default needs expr = \"…\" (write [attribute] to map one attribute)",
            ));
        };
        crate::expr::Expr::parse(&expr)
            .map_err(|e| E::custom(format!("expression {expr:?}, {e}")))?;
        Ok(Entry::Expr(ExprOverride {
            expr,
            apply,
            default,
            truncate,
        }))
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a source attribute name, \"=literal\", or { expr = \"…\", apply = \"…\", default = \"…\" }",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
        Ok(Entry::Text(v.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Entry, E> {
        Ok(Entry::Bool(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Entry, E> {
        Ok(Entry::Text(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, entry)) = map.next_entry::<String, Entry>()? {
            entries.push((key, entry));
        }
        if entries.iter().any(|(k, _)| EXPR_KEYS.contains(&k.as_str())) {
            return Entry::expr(entries);
        }
        Ok(Entry::Table(entries))
    }
}
