//! The compiled mapping: for each SCIM path, where its value comes from.

use crate::config::{Apply, MappingConfig, Override, Preset, ScopeConfig};
use crate::context::{Encode, Encoder};
use crate::expr::{Expr, ExprError, MAX_VALUE_BYTES};
use scimsync_model::{AttrKey, RecordContext, paths};
use std::collections::{BTreeMap, BTreeSet};

const ENTERPRISE_PREFIX: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:";

/// Core paths an override may set, in canonical spelling.
const CORE_PATHS: &[&str] = &[
    paths::DISPLAY_NAME,
    paths::GIVEN_NAME,
    paths::FAMILY_NAME,
    paths::TITLE,
    paths::USER_TYPE,
    paths::PREFERRED_LANGUAGE,
];

/// Enterprise extension attributes, in canonical spelling (RFC 7643 §4.3).
const ENTERPRISE_ATTRS: &[&str] = &[
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager.value",
];

/// A `[mapping]` section that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// An override's key is empty.
    #[error("an entry has an empty key: name the SCIM attribute path it sets")]
    EmptyPath,
    /// An override sets a path scimsync derives itself (userName, active, emails, roles).
    #[error("\"{key}\" cannot be overridden: {why}")]
    Reserved { key: String, why: &'static str },
    /// An override sets a path outside the supported set.
    #[error(
        "\"{key}\" is not a supported SCIM path; supported: displayName, name.givenName, name.familyName, title, userType, preferredLanguage, and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:<attribute>"
    )]
    UnsupportedPath { key: String },
    /// Two override keys name the same path (SCIM paths are case-insensitive).
    #[error("\"{first}\" and \"{second}\" set the same SCIM path")]
    DuplicatePath { first: String, second: String },
    /// A `"=literal"` value with nothing after the `=`.
    #[error(
        "\"{key}\" = \"=\" is an empty constant; write \"\" to stop sending the attribute instead"
    )]
    EmptyLiteral { key: String },
    /// A constant for the manager, which must reference a directory user.
    #[error(
        "\"{key}\" must name the source attribute holding the manager's user id; a constant cannot reference a user"
    )]
    ManagerLiteral { key: String },
    /// A constant longer than any target accepts.
    #[error("\"{key}\": the constant is {len} bytes, over the {MAX_VALUE_BYTES}-byte limit")]
    LiteralTooLong { key: String, len: usize },
    /// An expression that does not parse, or calls an unknown function or with the wrong
    /// number of arguments.
    #[error("\"{key}\": expression {expr:?}, {error}")]
    Expression {
        key: String,
        expr: String,
        error: ExprError,
    },
    /// An expression for the manager, which must reference a directory user by id.
    #[error(
        "\"{key}\" must name the source attribute holding the manager's user id; an expression cannot reference a user"
    )]
    ManagerExpression { key: String },
    /// A `default` longer than any target accepts.
    #[error("\"{key}\": the default is {len} bytes, over the {MAX_VALUE_BYTES}-byte limit")]
    DefaultTooLong { key: String, len: usize },
}

/// Where one SCIM path's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A source attribute's value as is.
    Attr(String),
    /// A source attribute holding another user's source id (the manager).
    Ref(String),
    /// A constant from the config.
    Literal(String),
    /// The display name attribute, else the present name parts joined by a space.
    NameOrParts { name: String, parts: [String; 2] },
    /// An expression, and the value sent when it yields null or empty.
    Expr { expr: Expr, default: Option<String> },
}

impl Source {
    fn attr_names(&self) -> Vec<&str> {
        match self {
            Source::Attr(a) | Source::Ref(a) => vec![a],
            Source::Literal(_) => vec![],
            Source::NameOrParts { name, parts } => vec![name, &parts[0], &parts[1]],
            Source::Expr { expr, .. } => expr.attrs(),
        }
    }
}

/// A checked `[mapping]`: the preset's entries with the overrides applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    preset: Preset,
    /// SCIM path → source, in path order so output is deterministic. The paths are shared
    /// with every mapped user's attributes.
    entries: BTreeMap<AttrKey, Source>,
    /// The role's path, shared the same way.
    role: AttrKey,
    /// Every source attribute read (email and state included), for the size check.
    read_attrs: Vec<(String, &'static str)>,
    /// Paths with `apply = "on_create"`: sent on create, never compared afterwards.
    on_create: BTreeSet<String>,
}

impl Mapping {
    /// Checks a `[mapping]` section and resolves it against its preset.
    pub fn compile(cfg: &MappingConfig) -> Result<Mapping, MappingError> {
        let mut entries = preset_entries(cfg.preset);
        let mut set_by: BTreeMap<String, &str> = BTreeMap::new();
        let mut on_create = BTreeSet::new();
        for (key, value) in &cfg.overrides {
            let path = canonical_path(key)?;
            if let Some(first) = set_by.insert(path.clone(), key) {
                return Err(MappingError::DuplicatePath {
                    first: first.to_owned(),
                    second: key.clone(),
                });
            }
            let value = match value {
                Override::Plain(value) => value,
                Override::Expr(entry) => {
                    if path == paths::MANAGER {
                        return Err(MappingError::ManagerExpression { key: key.clone() });
                    }
                    let expr =
                        Expr::parse(&entry.expr).map_err(|error| MappingError::Expression {
                            key: key.clone(),
                            expr: entry.expr.clone(),
                            error,
                        })?;
                    let default = entry.default.clone().filter(|d| !d.is_empty());
                    if let Some(d) = &default
                        && d.len() > MAX_VALUE_BYTES
                    {
                        return Err(MappingError::DefaultTooLong {
                            key: key.clone(),
                            len: d.len(),
                        });
                    }
                    if entry.apply == Apply::OnCreate {
                        on_create.insert(path.clone());
                    }
                    entries.insert(path, Source::Expr { expr, default });
                    continue;
                }
            };
            if value.is_empty() {
                entries.remove(&path);
                continue;
            }
            let source = match value.strip_prefix('=') {
                Some("") => return Err(MappingError::EmptyLiteral { key: key.clone() }),
                Some(_) if path == paths::MANAGER => {
                    return Err(MappingError::ManagerLiteral { key: key.clone() });
                }
                Some(literal) if literal.len() > MAX_VALUE_BYTES => {
                    return Err(MappingError::LiteralTooLong {
                        key: key.clone(),
                        len: literal.len(),
                    });
                }
                Some(literal) => Source::Literal(literal.to_owned()),
                None if path == paths::MANAGER => Source::Ref(value.clone()),
                None => Source::Attr(value.clone()),
            };
            entries.insert(path, source);
        }
        let mut read_attrs: Vec<(String, &'static str)> = Vec::new();
        let mut note = |name: &str, why: &'static str| {
            if !read_attrs.iter().any(|(n, _)| n == name) {
                read_attrs.push((name.to_owned(), why));
            }
        };
        for name in cfg.preset.email_attrs() {
            note(name, "the email");
        }
        for name in state_attrs(cfg.preset) {
            note(name, "the state");
        }
        for source in entries.values() {
            for name in source.attr_names() {
                note(name, "a mapped attribute");
            }
        }
        Ok(Mapping {
            preset: cfg.preset,
            entries: entries
                .into_iter()
                .map(|(path, source)| (AttrKey::from(path), source))
                .collect(),
            role: AttrKey::from(paths::ROLE),
            read_attrs,
            on_create,
        })
    }

    /// Paths mapped with `apply = "on_create"`: sent when the user is created and never
    /// compared afterwards (the planner's `create_only`).
    pub fn on_create_paths(&self) -> impl Iterator<Item = &str> {
        self.on_create.iter().map(String::as_str)
    }

    pub fn preset(&self) -> Preset {
        self.preset
    }

    /// The context record keys are computed under (see `scimsync_model::RecordStamp`): this
    /// mapping as compiled, the scoping filters, and the version of the code that reads and
    /// maps a record, in a stable encoding (`context.rs`). A change to any of them gives
    /// another context, so no record is recognised and every one is parsed and mapped again
    /// once.
    pub fn record_context(&self, scope: &ScopeConfig) -> RecordContext {
        let mut out = Encoder::new();
        self.encode(&mut out);
        out.tag("filters").all(scope.filters.iter());
        out.finish()
    }

    /// Every path [`crate::map`] may set in `DesiredUser::attrs`, the role included. Paths not
    /// listed are not managed by this mapping.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries
            .keys()
            .map(AttrKey::as_str)
            .chain(std::iter::once(paths::ROLE))
    }

    pub(crate) fn entries(&self) -> std::collections::btree_map::Iter<'_, AttrKey, Source> {
        self.entries.iter()
    }

    pub(crate) fn role_path(&self) -> &AttrKey {
        &self.role
    }

    pub(crate) fn read_attrs(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.read_attrs.iter().map(|(n, why)| (n.as_str(), *why))
    }
}

impl Encode for Mapping {
    fn encode(&self, out: &mut Encoder) {
        let Mapping {
            preset,
            entries,
            role,
            read_attrs,
            on_create,
        } = self;
        out.tag("mapping");
        preset.encode(out);
        out.number(entries.len() as u64);
        for (path, source) in entries {
            out.str(path.as_str());
            source.encode(out);
        }
        out.str(role.as_str());
        out.number(read_attrs.len() as u64);
        for (name, why) in read_attrs {
            out.str(name).str(why);
        }
        out.all(on_create.iter());
    }
}

impl Encode for Preset {
    fn encode(&self, out: &mut Encoder) {
        out.tag(match self {
            Preset::Jumpcloud => "jumpcloud",
            Preset::Entra => "entra",
        });
    }
}

impl Encode for Source {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Source::Attr(name) => out.tag("attr").str(name),
            Source::Ref(name) => out.tag("ref").str(name),
            Source::Literal(text) => out.tag("literal").str(text),
            Source::NameOrParts { name, parts } => {
                out.tag("name or parts").str(name).all(parts.iter())
            }
            Source::Expr { expr, default } => {
                out.tag("expr");
                expr.encode(out);
                out.option(default.as_deref())
            }
        };
    }
}

pub(crate) fn state_attrs(preset: Preset) -> &'static [&'static str] {
    match preset {
        Preset::Jumpcloud => &["state"],
        Preset::Entra => &["accountEnabled", "state"],
    }
}

fn attr(name: &str) -> Source {
    Source::Attr(name.to_owned())
}

fn preset_entries(preset: Preset) -> BTreeMap<String, Source> {
    let (display, given, family, list): (&str, &str, &str, &[(&str, &str)]) = match preset {
        Preset::Jumpcloud => (
            "displayname",
            "firstname",
            "lastname",
            &[
                (paths::ORGANIZATION, "company"),
                (paths::DEPARTMENT, "department"),
                (paths::EMPLOYEE_NUMBER, "employeeidentifier"),
                (paths::COST_CENTER, "costCenter"),
                (paths::DIVISION, "division"),
                // No jobTitle → title: Miro does not store `title` (it refuses a PATCH of it and
                // ignores it on create), so mapping it would show a change every cycle. Admins
                // of targets that keep it add `title = "jobTitle"` under [mapping].
            ],
        ),
        Preset::Entra => (
            "displayName",
            "givenName",
            "surname",
            &[
                (paths::ORGANIZATION, "companyName"),
                (paths::DEPARTMENT, "department"),
                (paths::EMPLOYEE_NUMBER, "employeeId"),
            ],
        ),
    };
    let mut entries: BTreeMap<String, Source> = list
        .iter()
        .map(|&(path, name)| (path.to_owned(), attr(name)))
        .collect();
    entries.insert(paths::GIVEN_NAME.to_owned(), attr(given));
    entries.insert(paths::FAMILY_NAME.to_owned(), attr(family));
    // Entra's own provisioning sends displayName alone; falling back to the name parts there
    // too keeps a user without one from reaching the target nameless.
    entries.insert(
        paths::DISPLAY_NAME.to_owned(),
        Source::NameOrParts {
            name: display.to_owned(),
            parts: [given.to_owned(), family.to_owned()],
        },
    );
    entries.insert(paths::MANAGER.to_owned(), Source::Ref("manager".to_owned()));
    entries
}

/// The canonical spelling of an override's key. SCIM attribute names are case-insensitive
/// (RFC 7643 §2.1), so `displayname` is `displayName`; canonical spelling keeps two spellings
/// of one path from both being sent.
fn canonical_path(key: &str) -> Result<String, MappingError> {
    let trimmed = key.trim();
    if trimmed.is_empty() {
        return Err(MappingError::EmptyPath);
    }
    let lower = trimmed.to_ascii_lowercase();
    let reserved = |why| {
        Err(MappingError::Reserved {
            key: key.to_owned(),
            why,
        })
    };
    if lower == "username" {
        return reserved(
            "userName is the user's email (lower-cased), set by the preset's email attribute",
        );
    }
    if lower == "active" {
        return reserved("active follows the directory state");
    }
    if lower.starts_with("emails") {
        return reserved("the target derives emails from userName and treats them as read-only");
    }
    if lower.starts_with("roles") {
        return reserved("roles come from [roles] admin_groups");
    }
    if let Some(path) = CORE_PATHS.iter().find(|p| p.eq_ignore_ascii_case(trimmed)) {
        return Ok((*path).to_owned());
    }
    if lower.starts_with(&ENTERPRISE_PREFIX.to_ascii_lowercase()) {
        let attribute = &trimmed[ENTERPRISE_PREFIX.len()..];
        // A bare `manager` is the complex attribute; what we can set is its value.
        let attribute = if attribute.eq_ignore_ascii_case("manager") {
            "manager.value"
        } else {
            attribute
        };
        if let Some(known) = ENTERPRISE_ATTRS
            .iter()
            .find(|a| a.eq_ignore_ascii_case(attribute))
        {
            return Ok(format!("{ENTERPRISE_PREFIX}{known}"));
        }
        let plausible = !attribute.is_empty()
            && attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if plausible {
            return Ok(format!("{ENTERPRISE_PREFIX}{attribute}"));
        }
    }
    Err(MappingError::UnsupportedPath {
        key: key.to_owned(),
    })
}
