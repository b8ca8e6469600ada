//! Scoping filters, `[[scope.filter]]`: Microsoft Entra's operators over the directory's
//! attributes. A user is in scope when every clause of at least one filter holds (AND inside a
//! filter, OR across filters), as in Entra. Filters are checked and compiled when sync.toml is
//! read: a bad regex or an unknown operator is a configuration error naming the filter.

use crate::context::{Encode, Encoder};
use regex::Regex;
use scimsync_model::SourceUser;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One `[[scope.filter]]`: a name for messages and its clauses, all of which must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawFilter", into = "RawFilter")]
pub struct ScopeFilter {
    name: Option<String>,
    clauses: Vec<Clause>,
}

/// One clause: `attribute OPERATOR value`.
#[derive(Clone, Debug)]
pub struct Clause {
    attribute: String,
    op: Operator,
}

/// Entra's scoping operators. Values compare case-sensitively, as in Entra; an absent or empty
/// attribute is null.
#[derive(Clone, Debug)]
pub enum Operator {
    Equals(String),
    NotEquals(String),
    IsTrue,
    IsFalse,
    IsNull,
    IsNotNull,
    RegexMatch(Regex),
    NotRegexMatch(Regex),
    GreaterThan(i64),
    GreaterThanOrEquals(i64),
    LessThan(i64),
    LessThanOrEquals(i64),
    /// Substring.
    Includes(String),
    NotIncludes(String),
}

impl Encode for ScopeFilter {
    fn encode(&self, out: &mut Encoder) {
        let ScopeFilter { name, clauses } = self;
        out.tag("filter")
            .option(name.as_deref())
            .all(clauses.iter());
    }
}

impl Encode for Clause {
    fn encode(&self, out: &mut Encoder) {
        let Clause { attribute, op } = self;
        out.tag("clause").str(attribute);
        match op {
            Operator::Equals(v) => out.tag("equals").str(v),
            Operator::NotEquals(v) => out.tag("not equals").str(v),
            Operator::IsTrue => out.tag("is true"),
            Operator::IsFalse => out.tag("is false"),
            Operator::IsNull => out.tag("is null"),
            Operator::IsNotNull => out.tag("is not null"),
            Operator::RegexMatch(re) => out.tag("regex match").str(re.as_str()),
            Operator::NotRegexMatch(re) => out.tag("not regex match").str(re.as_str()),
            Operator::GreaterThan(n) => out.tag("greater than").signed(*n),
            Operator::GreaterThanOrEquals(n) => out.tag("greater than or equals").signed(*n),
            Operator::LessThan(n) => out.tag("less than").signed(*n),
            Operator::LessThanOrEquals(n) => out.tag("less than or equals").signed(*n),
            Operator::Includes(v) => out.tag("includes").str(v),
            Operator::NotIncludes(v) => out.tag("not includes").str(v),
        };
    }
}

impl PartialEq for Clause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}
impl Eq for Clause {}

/// The operator names accepted, spelled as Entra's portal spells them.
pub const OPERATORS: &[&str] = &[
    "EQUALS",
    "NOT EQUALS",
    "IS TRUE",
    "IS FALSE",
    "IS NULL",
    "IS NOT NULL",
    "REGEX MATCH",
    "NOT REGEX MATCH",
    "Greater_Than",
    "Greater_Than_OR_EQUALS",
    "Less_Than",
    "Less_Than_OR_EQUALS",
    "Includes",
    "NOT Includes",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    clauses: Vec<RawClause>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClause {
    attribute: String,
    operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<RawValue>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum RawValue {
    Int(i64),
    Text(String),
    Bool(bool),
}

impl fmt::Display for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawValue::Int(n) => write!(f, "{n}"),
            RawValue::Text(s) => f.write_str(s),
            RawValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl TryFrom<RawFilter> for ScopeFilter {
    type Error = String;

    fn try_from(raw: RawFilter) -> Result<ScopeFilter, String> {
        let label = match &raw.name {
            Some(name) if !name.trim().is_empty() => format!("filter {name:?}"),
            _ => "a filter without a name".to_owned(),
        };
        if raw.clauses.is_empty() {
            return Err(format!(
                "[[scope.filter]] {label}: clauses is empty; a filter needs at least one clause"
            ));
        }
        let clauses = raw
            .clauses
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                Clause::compile(c)
                    .map_err(|e| format!("[[scope.filter]] {label}, clause {}: {e}", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let name = raw.name.filter(|n| !n.trim().is_empty());
        Ok(ScopeFilter { name, clauses })
    }
}

impl From<ScopeFilter> for RawFilter {
    fn from(f: ScopeFilter) -> RawFilter {
        RawFilter {
            name: f.name,
            clauses: f
                .clauses
                .into_iter()
                .map(|c| {
                    let (operator, value) = c.op.parts();
                    RawClause {
                        attribute: c.attribute,
                        operator: operator.to_owned(),
                        value: value.map(RawValue::Text),
                    }
                })
                .collect(),
        }
    }
}

impl Clause {
    fn compile(raw: RawClause) -> Result<Clause, String> {
        let attribute = raw.attribute.trim().to_owned();
        if attribute.is_empty() {
            return Err("attribute is empty".to_owned());
        }
        // Entra writes `NOT EQUALS` and `Greater_Than`; both spellings are accepted.
        let key = raw.operator.trim().replace('_', " ").to_ascii_uppercase();
        let key = key.split_whitespace().collect::<Vec<_>>().join(" ");
        let needs_value = |op: &str| -> Result<String, String> {
            match &raw.value {
                Some(v) => Ok(v.to_string()),
                None => Err(format!("{op} needs a value")),
            }
        };
        let number = |op: &str| -> Result<i64, String> {
            match &raw.value {
                Some(RawValue::Int(n)) => Ok(*n),
                Some(RawValue::Text(s)) => s
                    .trim()
                    .parse()
                    .map_err(|_| format!("{op} compares integers; {s:?} is not one")),
                _ => Err(format!("{op} needs an integer value")),
            }
        };
        let regex = |op: &str| -> Result<Regex, String> {
            let pattern = needs_value(op)?;
            Regex::new(&pattern).map_err(|e| format!("{op} {pattern:?} is not a valid regex: {e}"))
        };
        let no_value = |op: Operator| -> Result<Operator, String> {
            match raw.value {
                None => Ok(op),
                Some(_) => Err(format!("{} takes no value", op.parts().0)),
            }
        };
        let op = match key.as_str() {
            "EQUALS" => Operator::Equals(needs_value("EQUALS")?),
            "NOT EQUALS" => Operator::NotEquals(needs_value("NOT EQUALS")?),
            "IS TRUE" => no_value(Operator::IsTrue)?,
            "IS FALSE" => no_value(Operator::IsFalse)?,
            "IS NULL" => no_value(Operator::IsNull)?,
            "IS NOT NULL" => no_value(Operator::IsNotNull)?,
            "REGEX MATCH" => Operator::RegexMatch(regex("REGEX MATCH")?),
            "NOT REGEX MATCH" => Operator::NotRegexMatch(regex("NOT REGEX MATCH")?),
            "GREATER THAN" => Operator::GreaterThan(number("Greater_Than")?),
            "GREATER THAN OR EQUALS" => {
                Operator::GreaterThanOrEquals(number("Greater_Than_OR_EQUALS")?)
            }
            "LESS THAN" => Operator::LessThan(number("Less_Than")?),
            "LESS THAN OR EQUALS" => Operator::LessThanOrEquals(number("Less_Than_OR_EQUALS")?),
            "INCLUDES" => Operator::Includes(needs_value("Includes")?),
            "NOT INCLUDES" => Operator::NotIncludes(needs_value("NOT Includes")?),
            _ => {
                return Err(format!(
                    "unknown operator {:?}; expected one of {}",
                    raw.operator,
                    OPERATORS.join(", ")
                ));
            }
        };
        Ok(Clause { attribute, op })
    }

    /// Whether the clause holds for `value` (`None`: the attribute is null).
    pub fn holds(&self, value: Option<&str>) -> bool {
        let int = || value.and_then(|v| v.trim().parse::<i64>().ok());
        match &self.op {
            Operator::Equals(want) => value == Some(want.as_str()),
            Operator::NotEquals(want) => value != Some(want.as_str()),
            Operator::IsTrue => value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            Operator::IsFalse => value.is_some_and(|v| v.trim().eq_ignore_ascii_case("false")),
            Operator::IsNull => value.is_none(),
            Operator::IsNotNull => value.is_some(),
            Operator::RegexMatch(re) => value.is_some_and(|v| re.is_match(v)),
            Operator::NotRegexMatch(re) => !value.is_some_and(|v| re.is_match(v)),
            Operator::GreaterThan(n) => int().is_some_and(|v| v > *n),
            Operator::GreaterThanOrEquals(n) => int().is_some_and(|v| v >= *n),
            Operator::LessThan(n) => int().is_some_and(|v| v < *n),
            Operator::LessThanOrEquals(n) => int().is_some_and(|v| v <= *n),
            Operator::Includes(part) => value.is_some_and(|v| v.contains(part.as_str())),
            Operator::NotIncludes(part) => !value.is_some_and(|v| v.contains(part.as_str())),
        }
    }
}

impl Operator {
    fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            Operator::Equals(v) => ("EQUALS", Some(v.clone())),
            Operator::NotEquals(v) => ("NOT EQUALS", Some(v.clone())),
            Operator::IsTrue => ("IS TRUE", None),
            Operator::IsFalse => ("IS FALSE", None),
            Operator::IsNull => ("IS NULL", None),
            Operator::IsNotNull => ("IS NOT NULL", None),
            Operator::RegexMatch(re) => ("REGEX MATCH", Some(re.as_str().to_owned())),
            Operator::NotRegexMatch(re) => ("NOT REGEX MATCH", Some(re.as_str().to_owned())),
            Operator::GreaterThan(n) => ("Greater_Than", Some(n.to_string())),
            Operator::GreaterThanOrEquals(n) => ("Greater_Than_OR_EQUALS", Some(n.to_string())),
            Operator::LessThan(n) => ("Less_Than", Some(n.to_string())),
            Operator::LessThanOrEquals(n) => ("Less_Than_OR_EQUALS", Some(n.to_string())),
            Operator::Includes(v) => ("Includes", Some(v.clone())),
            Operator::NotIncludes(v) => ("NOT Includes", Some(v.clone())),
        }
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, value) = self.op.parts();
        match value {
            Some(v) => write!(f, "{} {op} {v:?}", self.attribute),
            None => write!(f, "{} {op}", self.attribute),
        }
    }
}

impl ScopeFilter {
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The first clause that does not hold for the user, or `None` when the filter passes.
    fn first_failing(&self, user: &SourceUser) -> Option<&Clause> {
        self.clauses
            .iter()
            .find(|c| !c.holds(attr(user, &c.attribute)))
    }
}

/// A source attribute as the filters see it: absent, empty and whitespace-only are null; `id`
/// is the user's id.
fn attr<'u>(user: &'u SourceUser, name: &str) -> Option<&'u str> {
    if name == "id" {
        return Some(user.id.as_str());
    }
    user.attr(name).filter(|v| !v.trim().is_empty())
}

/// `None` when the user passes (no filters, or one filter whose clauses all hold); otherwise
/// the rule that excluded them: each filter's name and its first failing clause.
pub(crate) fn excluded_by(filters: &[ScopeFilter], user: &SourceUser) -> Option<String> {
    if filters.is_empty() {
        return None;
    }
    let mut reasons = Vec::with_capacity(filters.len());
    for filter in filters {
        match filter.first_failing(user) {
            None => return None,
            Some(clause) => reasons.push(match &filter.name {
                Some(name) => format!("{name:?}: {clause}"),
                None => clause.to_string(),
            }),
        }
    }
    Some(format!("[[scope.filter]] {}", reasons.join("; ")))
}
