//! The compiled mapping: for each SCIM path, where its value comes from.

use crate::config::{Apply, MappingConfig, Override, Preset, ScopeConfig};
use crate::context::{Encode, Encoder};
use crate::expr::{Expr, ExprError, MAX_VALUE_BYTES};
use scimsync_model::{AttrKey, AttrValue, RecordContext, paths};
use scimsync_scim::{LicenceRule, ValueLimit};
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
    /// `{ truncate = true }` alone on a path nothing maps.
    #[error(
        "\"{key}\" = {{ truncate = true }}: nothing maps this path; give it expr = \"[attribute]\" too"
    )]
    TruncateUnmapped { key: String },
}

/// The admin roles `[roles.admin_roles]` maps, as the target writes them: one path per role
/// value (`scimsync_model::paths::admin_role`), whose value is the entry's `type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AdminRoles {
    kind: String,
    paths: BTreeMap<String, AttrKey>,
}

impl AdminRoles {
    /// The path and value a user holding `role` gets.
    pub(crate) fn entry(&self, role: &str) -> Option<(&AttrKey, &str)> {
        self.paths.get(role).map(|path| (path, self.kind.as_str()))
    }
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

/// The primary role's values: admins (members of `[roles] admin_groups`) and everyone else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleValues {
    path: AttrKey,
    pub admin: String,
    pub user: String,
}

impl RoleValues {
    pub fn new(admin: impl Into<String>, user: impl Into<String>) -> RoleValues {
        RoleValues {
            path: AttrKey::from(paths::ROLE),
            admin: admin.into(),
            user: user.into(),
        }
    }

    /// Miro's organisation roles.
    pub fn miro() -> RoleValues {
        RoleValues::new(paths::ADMIN_ROLE, paths::USER_ROLE)
    }

    pub(crate) fn path(&self) -> &AttrKey {
        &self.path
    }
}

/// A checked `[mapping]`: the preset's entries with the overrides applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    preset: Preset,
    /// SCIM path → source, in path order so output is deterministic. The paths are shared
    /// with every mapped user's attributes.
    entries: BTreeMap<AttrKey, Source>,
    /// The role's path (shared the same way) and its values, when roles are managed.
    role: Option<RoleValues>,
    /// The work email's path, when the target stores emails: its value is the userName.
    work_email: Option<AttrKey>,
    /// Every source attribute read (email and state included), for the size check.
    read_attrs: Vec<(String, &'static str)>,
    /// Paths with `apply = "on_create"`: sent on create, never compared afterwards.
    on_create: BTreeSet<String>,
    /// Paths whose values are cut to the target's limit rather than refused (`truncate`).
    truncate: BTreeSet<String>,
    /// The longest values the target keeps (its profile's).
    limits: Vec<ValueLimit>,
    /// The licence attribute and the values the target accepts (its profile's).
    licence: Option<LicenceRule>,
    /// `[roles.admin_roles]`, where the target has admin roles.
    admin_roles: Option<AdminRoles>,
}

impl Mapping {
    /// Checks a `[mapping]` section and resolves it against its preset.
    pub fn compile(cfg: &MappingConfig) -> Result<Mapping, MappingError> {
        let mut entries = preset_entries(cfg.preset);
        let mut set_by: BTreeMap<String, &str> = BTreeMap::new();
        let mut on_create = BTreeSet::new();
        let mut truncate = BTreeSet::new();
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
                Override::Truncate => {
                    if !entries.contains_key(&path) {
                        return Err(MappingError::TruncateUnmapped { key: key.clone() });
                    }
                    truncate.insert(path);
                    continue;
                }
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
                    if entry.truncate {
                        truncate.insert(path.clone());
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
            role: Some(RoleValues::miro()),
            work_email: None,
            read_attrs,
            on_create,
            truncate,
            limits: Vec::new(),
            licence: None,
            admin_roles: None,
        })
    }

    /// The same mapping checked against what the target keeps: values over its `limits` are
    /// refused (the record is invalid, naming the attribute and the limit) or cut where the
    /// mapping says `truncate = true`; the licence must be one the target accepts (and is
    /// sent in its spelling).
    pub fn with_target_rules(
        mut self,
        limits: Vec<ValueLimit>,
        licence: Option<LicenceRule>,
    ) -> Mapping {
        self.limits = limits;
        self.licence = licence;
        self
    }

    /// The same mapping with `[roles.admin_roles]`'s role values managed, as entries of type
    /// `kind` (`None`: the target has no admin roles, and none are managed).
    pub fn with_admin_roles(
        mut self,
        kind: Option<&str>,
        values: impl IntoIterator<Item = String>,
    ) -> Mapping {
        self.admin_roles = kind.map(|kind| AdminRoles {
            kind: kind.to_owned(),
            paths: values
                .into_iter()
                .map(|v| {
                    let path = AttrKey::from(paths::admin_role(&v));
                    (v, path)
                })
                .collect(),
        });
        self
    }

    pub(crate) fn admin_roles(&self) -> Option<&AdminRoles> {
        self.admin_roles.as_ref().filter(|r| !r.paths.is_empty())
    }

    /// Fits a user's mapped values (in path order) to the target: the licence in its
    /// spelling, and each value within its limit, cut where the mapping says `truncate`.
    /// `Err((field, message))` names the attribute at fault and the limit.
    pub(crate) fn fit(
        &self,
        attrs: &mut Vec<(&AttrKey, AttrValue)>,
    ) -> Result<(), (String, String)> {
        if let Some(rule) = &self.licence
            && let Some((_, value)) = attrs.iter_mut().find(|(p, _)| p.as_str() == rule.path)
            && let AttrValue::Text(text) = value
        {
            match rule.canonical(text) {
                Some(canonical) => *text = canonical.into(),
                None => {
                    return Err((
                        rule.path.clone(),
                        format!(
                            "{:?} is not a licence the target accepts (one of: {})",
                            text.as_str(),
                            rule.values.join(", ")
                        ),
                    ));
                }
            }
        }
        for limit in &self.limits {
            let at: Vec<usize> = limit
                .paths
                .iter()
                .filter_map(|p| {
                    attrs
                        .iter()
                        .position(|(path, v)| path.as_str() == p && v.as_text().is_some())
                })
                .collect();
            let chars = |attrs: &Vec<(&AttrKey, AttrValue)>| -> usize {
                let total: usize = at
                    .iter()
                    .filter_map(|&i| attrs.get(i)?.1.as_text().map(|t| t.chars().count()))
                    .sum();
                total + at.len().saturating_sub(1)
            };
            let before = chars(attrs);
            if before <= limit.max_chars {
                continue;
            }
            if !limit.paths.iter().any(|p| self.truncate.contains(p)) {
                let (field, what) = match limit.paths.as_slice() {
                    [one] => (one.clone(), "is".to_owned()),
                    many => (many.join(" + "), "together are".to_owned()),
                };
                return Err((
                    field,
                    format!(
                        "{what} {before} characters, over the target's limit of {}; shorten it in \
                         the directory, or set truncate = true on its [mapping] entry",
                        limit.max_chars
                    ),
                ));
            }
            // Cut from the last value back (a family name before a given name).
            let mut excess = before - limit.max_chars;
            for &i in at.iter().rev() {
                let Some((_, AttrValue::Text(text))) = attrs.get_mut(i) else {
                    continue;
                };
                let len = text.chars().count();
                let keep = len.saturating_sub(excess);
                excess -= len - keep;
                let cut: String = text.chars().take(keep).collect();
                *text = cut.trim_end().into();
                if excess == 0 {
                    break;
                }
            }
        }
        attrs.retain(|(_, v)| v.as_text() != Some(""));
        Ok(())
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

    /// Every path [`crate::map`] may set in `DesiredUser::attrs`, the role and the work email
    /// included when managed. Paths not listed are not managed by this mapping.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries
            .keys()
            .map(AttrKey::as_str)
            .chain(self.role.as_ref().map(|r| r.path.as_str()))
            .chain(self.work_email.as_ref().map(AttrKey::as_str))
            .chain(
                self.admin_roles
                    .iter()
                    .flat_map(|r| r.paths.values().map(AttrKey::as_str)),
            )
    }

    /// The same mapping with roles managed with these values (`None`: roles not managed, never
    /// sent nor compared: a target that has no use for them).
    pub fn with_roles(mut self, roles: Option<RoleValues>) -> Mapping {
        self.role = roles;
        self
    }

    /// The same mapping with the work email managed (`emails[type eq "work"].value` = the
    /// userName), for a target that stores emails rather than deriving them.
    pub fn with_work_email(mut self, managed: bool) -> Mapping {
        self.work_email = managed.then(|| AttrKey::from(paths::WORK_EMAIL));
        self
    }

    /// The same mapping without `path`: what a target does not take is not managed at all
    /// (neither sent nor compared). Returns whether the path was mapped.
    pub fn unmap(&mut self, path: &str) -> bool {
        let mapped = self.entries.remove(path).is_some();
        self.on_create.remove(path);
        if self.role.as_ref().is_some_and(|r| r.path.as_str() == path) {
            self.role = None;
            return true;
        }
        if self.work_email.as_ref().is_some_and(|p| p.as_str() == path) {
            self.work_email = None;
            return true;
        }
        if let Some(roles) = &mut self.admin_roles {
            let before = roles.paths.len();
            roles.paths.retain(|_, p| p.as_str() != path);
            if roles.paths.len() != before {
                return true;
            }
        }
        mapped
    }

    pub(crate) fn entries(&self) -> std::collections::btree_map::Iter<'_, AttrKey, Source> {
        self.entries.iter()
    }

    pub(crate) fn role(&self) -> Option<&RoleValues> {
        self.role.as_ref()
    }

    pub(crate) fn work_email(&self) -> Option<&AttrKey> {
        self.work_email.as_ref()
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
            work_email,
            read_attrs,
            on_create,
            truncate,
            limits,
            licence,
            admin_roles,
        } = self;
        out.tag("mapping");
        preset.encode(out);
        out.number(entries.len() as u64);
        for (path, source) in entries {
            out.str(path.as_str());
            source.encode(out);
        }
        out.option(role.as_ref());
        out.option(work_email.as_ref().map(AttrKey::as_str));
        out.number(read_attrs.len() as u64);
        for (name, why) in read_attrs {
            out.str(name).str(why);
        }
        out.all(on_create.iter());
        out.all(truncate.iter());
        out.number(limits.len() as u64);
        for ValueLimit { paths, max_chars } in limits {
            out.all(paths.iter()).number(*max_chars as u64);
        }
        match licence {
            None => out.tag("no licence"),
            Some(LicenceRule {
                path,
                values,
                upgrades_to,
            }) => out
                .tag("licence")
                .str(path)
                .all(values.iter())
                .str(upgrades_to),
        };
        out.option(admin_roles.as_ref());
    }
}

impl Encode for RoleValues {
    fn encode(&self, out: &mut Encoder) {
        let RoleValues { path, admin, user } = self;
        out.tag("roles").str(path.as_str()).str(admin).str(user);
    }
}

impl Encode for AdminRoles {
    fn encode(&self, out: &mut Encoder) {
        let AdminRoles { kind, paths } = self;
        out.tag("admin roles").str(kind).number(paths.len() as u64);
        for (value, path) in paths {
            out.str(value).str(path.as_str());
        }
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
