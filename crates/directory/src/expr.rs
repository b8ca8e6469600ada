//! Mapping expressions: a small, safe, Entra-style function set over directory attributes.
//!
//! Syntax: `[attribute]` reads a source attribute, `"text"` is a literal (backslash escapes
//! `\"`, `\\`, `\n`, `\t`), a bare integer (`3`) is a literal too, and `Name(arg, …)` calls one
//! of [`FUNCTIONS`] (names match case-insensitively). Calls nest.
//!
//! Null semantics follow Entra: an absent, empty or blank attribute is null, and a function of a
//! null argument is null, except `Coalesce` (first non-empty argument) and `Join` (skips null and
//! empty parts; null when every part is), and `Switch`, whose default answers a null input.
//!
//! Architecture Invariant: an expression is checked entirely when the config is read (names,
//! arities, attribute syntax, `Left`'s length), so evaluation cannot fail on a user except by
//! exceeding [`crate::MAX_VALUE_BYTES`], which it checks before building each value.

use crate::context::{Encode, Encoder};
use std::fmt;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Values above this many bytes are refused, whether read from the directory, set as a
/// constant or computed here: no directory attribute is legitimately this long, and the target
/// would reject it after we spent rate budget on it.
pub const MAX_VALUE_BYTES: usize = 100_000;

/// Nesting deeper than this is refused: no sensible mapping needs it, and the parser recurses.
const MAX_DEPTH: usize = 32;

/// The functions an expression may call, as documented, with their arity in words.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("Append", "Append(value, suffix)"),
    ("Coalesce", "Coalesce(a, b, …)"),
    ("Join", "Join(separator, a, b, …)"),
    ("Left", "Left(value, count)"),
    ("NormalizeDiacritics", "NormalizeDiacritics(value)"),
    ("Replace", "Replace(value, old, new)"),
    ("Switch", "Switch(value, default, key1, value1, …)"),
    ("ToLower", "ToLower(value)"),
    ("ToUpper", "ToUpper(value)"),
    ("Trim", "Trim(value)"),
];

/// A checked expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    root: Node,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Attr(String),
    Literal(String),
    Call(Func, Vec<Node>),
    /// `Left(value, count)`: the count is checked to be a number when parsed.
    Left(Box<Node>, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Append,
    Coalesce,
    Join,
    NormalizeDiacritics,
    Replace,
    Switch,
    ToLower,
    ToUpper,
    Trim,
}

/// Why an expression was refused, and where (1-based column, in characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ExprError {
    pub column: usize,
    pub message: String,
}

/// An evaluation whose value would exceed [`MAX_VALUE_BYTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the expression's value would be {bytes} bytes, over the {MAX_VALUE_BYTES}-byte limit")]
pub struct TooLong {
    pub bytes: usize,
}

impl Expr {
    /// Parses and checks an expression.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        let root = parser.expr(0)?;
        parser.skip_ws();
        if parser.at < parser.chars.len() {
            return Err(parser.error("unexpected text after the expression"));
        }
        Ok(Expr { root })
    }

    /// Every source attribute the expression reads, in order of first use.
    pub fn attrs(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.root.attrs(&mut out);
        out
    }

    /// The value for one user, `lookup` giving an attribute's value (`None` when null).
    pub fn eval<'u>(
        &self,
        lookup: &impl Fn(&str) -> Option<&'u str>,
    ) -> Result<Option<String>, TooLong> {
        self.root.eval(lookup)
    }
}

impl Encode for Expr {
    fn encode(&self, out: &mut Encoder) {
        let Expr { root } = self;
        root.encode(out);
    }
}

impl Encode for Node {
    fn encode(&self, out: &mut Encoder) {
        match self {
            Node::Attr(name) => {
                out.tag("attr").str(name);
            }
            Node::Literal(text) => {
                out.tag("literal").str(text);
            }
            Node::Call(func, args) => {
                out.tag("call");
                func.encode(out);
                out.all(args.iter());
            }
            Node::Left(value, count) => {
                out.tag("left");
                value.encode(out);
                out.number(*count as u64);
            }
        }
    }
}

impl Encode for Func {
    fn encode(&self, out: &mut Encoder) {
        out.tag(match self {
            Func::Append => "Append",
            Func::Coalesce => "Coalesce",
            Func::Join => "Join",
            Func::NormalizeDiacritics => "NormalizeDiacritics",
            Func::Replace => "Replace",
            Func::Switch => "Switch",
            Func::ToLower => "ToLower",
            Func::ToUpper => "ToUpper",
            Func::Trim => "Trim",
        });
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Attr(name) => write!(f, "[{name}]"),
            Node::Literal(text) => {
                f.write_str("\"")?;
                for c in text.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Node::Left(value, count) => write!(f, "Left({value}, {count})"),
            Node::Call(func, args) => {
                write!(f, "{func:?}(")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    arg.fmt(f)?;
                }
                f.write_str(")")
            }
        }
    }
}

fn check_len(bytes: usize) -> Result<(), TooLong> {
    if bytes > MAX_VALUE_BYTES {
        Err(TooLong { bytes })
    } else {
        Ok(())
    }
}

impl Node {
    fn attrs<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Node::Attr(name) => {
                if !out.contains(&name.as_str()) {
                    out.push(name);
                }
            }
            Node::Literal(_) => {}
            Node::Left(value, _) => value.attrs(out),
            Node::Call(_, args) => args.iter().for_each(|a| a.attrs(out)),
        }
    }

    fn eval<'u>(
        &self,
        lookup: &impl Fn(&str) -> Option<&'u str>,
    ) -> Result<Option<String>, TooLong> {
        // Evaluates every argument; `None` when any is null (the default null rule).
        let all = |args: &[Node]| -> Result<Option<Vec<String>>, TooLong> {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                match arg.eval(lookup)? {
                    Some(v) => values.push(v),
                    None => return Ok(None),
                }
            }
            Ok(Some(values))
        };
        Ok(match self {
            Node::Attr(name) => lookup(name).map(str::to_owned),
            Node::Literal(text) => Some(text.clone()),
            Node::Left(value, count) => value
                .eval(lookup)?
                .map(|v| v.chars().take(*count).collect()),
            Node::Call(Func::Coalesce, args) => {
                for arg in args {
                    if let Some(v) = arg.eval(lookup)?
                        && !v.is_empty()
                    {
                        return Ok(Some(v));
                    }
                }
                None
            }
            Node::Call(Func::Join, args) => {
                let Some((sep, parts)) = args.split_first() else {
                    return Ok(None);
                };
                let Some(sep) = sep.eval(lookup)? else {
                    return Ok(None);
                };
                let mut out: Option<String> = None;
                for part in parts {
                    let Some(v) = part.eval(lookup)?.filter(|v| !v.is_empty()) else {
                        continue;
                    };
                    let joined = match out.take() {
                        None => v,
                        Some(mut acc) => {
                            check_len(acc.len() + sep.len() + v.len())?;
                            acc.push_str(&sep);
                            acc.push_str(&v);
                            acc
                        }
                    };
                    out = Some(joined);
                }
                out
            }
            Node::Call(Func::Switch, args) => {
                let [input, default, pairs @ ..] = args.as_slice() else {
                    return Ok(None);
                };
                let Some(input) = input.eval(lookup)? else {
                    return default.eval(lookup);
                };
                for pair in pairs.chunks(2) {
                    if let [key, value] = pair
                        && key.eval(lookup)?.as_deref() == Some(input.as_str())
                    {
                        return value.eval(lookup);
                    }
                }
                default.eval(lookup)?
            }
            Node::Call(func, args) => {
                let Some(values) = all(args)? else {
                    return Ok(None);
                };
                match (func, values.as_slice()) {
                    (Func::ToLower, [v]) => Some(v.to_lowercase()),
                    (Func::ToUpper, [v]) => Some(v.to_uppercase()),
                    (Func::Trim, [v]) => Some(v.trim().to_owned()),
                    (Func::NormalizeDiacritics, [v]) => Some(normalize_diacritics(v)),
                    (Func::Append, [v, suffix]) => {
                        check_len(v.len() + suffix.len())?;
                        Some(format!("{v}{suffix}"))
                    }
                    (Func::Replace, [v, old, new]) => {
                        if old.is_empty() {
                            // Nothing to find: replacing "" would insert `new` between every
                            // character, which no admin means.
                            Some(v.clone())
                        } else {
                            let hits = v.matches(old.as_str()).count();
                            check_len(
                                (v.len() - hits * old.len()).saturating_add(hits * new.len()),
                            )?;
                            Some(v.replace(old.as_str(), new))
                        }
                    }
                    // Arity is checked when parsed; unreachable combinations are null.
                    _ => None,
                }
            }
        })
    }
}

/// Letters with a diacritic that Unicode does not decompose (a stroke or a missing dot), folded
/// by hand. Distinct letters and ligatures (æ, ß, þ, ð) are letters, not diacritics: kept.
const STROKES: &[(char, char)] = &[
    ('ø', 'o'),
    ('Ø', 'O'),
    ('ł', 'l'),
    ('Ł', 'L'),
    ('đ', 'd'),
    ('Đ', 'D'),
    ('ħ', 'h'),
    ('Ħ', 'H'),
    ('ŧ', 't'),
    ('Ŧ', 'T'),
    ('ı', 'i'),
    ('ƀ', 'b'),
    ('ƶ', 'z'),
    ('Ƶ', 'Z'),
];

/// Canonical decomposition (NFD) with the combining marks dropped, then recomposed (NFC) so
/// what remains (Hangul, say) is in its usual form.
pub fn normalize_diacritics(value: &str) -> String {
    value
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| {
            STROKES
                .iter()
                .find(|(from, _)| *from == c)
                .map_or(c, |(_, to)| *to)
        })
        .nfc()
        .collect()
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> ExprError {
        self.error_at(self.at, message)
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            column: at + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Node, ExprError> {
        self.skip_ws();
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} calls")));
        }
        match self.peek() {
            None => Err(self
                .error("expected a value: [attribute], \"literal\", a number or a function call")),
            Some('[') => self.attr(),
            Some('"') => self.string(),
            Some(c) if c.is_ascii_digit() => {
                Ok(Node::Literal(self.take_while(|c| c.is_ascii_digit())))
            }
            Some(c) if c.is_ascii_alphabetic() => self.call(depth),
            Some(c) => Err(self.error(format!(
                "unexpected {c:?}: expected [attribute], \"literal\", a number or a function call"
            ))),
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn attr(&mut self) -> Result<Node, ExprError> {
        let open = self.at;
        self.at += 1;
        let name = self.take_while(|c| c != ']');
        if self.peek() != Some(']') {
            return Err(self.error_at(open, "unclosed [attribute]: expected ']'"));
        }
        self.at += 1;
        if name.is_empty() {
            return Err(self.error_at(open, "[] names no attribute"));
        }
        // Directory attribute names (JSON keys, CSV headers, LDAP descriptions) are words with
        // `-`, `_`, `.` or `:`; anything else is a typo worth catching now.
        if let Some((offset, bad)) = name
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
        {
            return Err(self.error_at(
                open + 1 + offset,
                format!("{bad:?} cannot appear in an attribute name [{name}]"),
            ));
        }
        Ok(Node::Attr(name))
    }

    fn string(&mut self) -> Result<Node, ExprError> {
        let open = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error_at(open, "unclosed \"literal\": expected '\"'")),
                Some('"') => {
                    self.at += 1;
                    break;
                }
                Some('\\') => {
                    let escape = self.at;
                    self.at += 1;
                    let c = match self.peek() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        other => {
                            return Err(self.error_at(
                                escape,
                                format!(
                                    "unknown escape \\{}: use \\\", \\\\, \\n or \\t",
                                    other.map(String::from).unwrap_or_default()
                                ),
                            ));
                        }
                    };
                    text.push(c);
                    self.at += 1;
                }
                Some(c) => {
                    text.push(c);
                    self.at += 1;
                }
            }
        }
        if text.len() > MAX_VALUE_BYTES {
            return Err(self.error_at(
                open,
                format!(
                    "the literal is {} bytes, over the {MAX_VALUE_BYTES}-byte limit",
                    text.len()
                ),
            ));
        }
        Ok(Node::Literal(text))
    }

    fn call(&mut self, depth: usize) -> Result<Node, ExprError> {
        let start = self.at;
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
        let known = FUNCTIONS
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(&name))
            .map(|(f, _)| *f);
        let Some(canonical) = known else {
            let names: Vec<&str> = FUNCTIONS.iter().map(|(f, _)| *f).collect();
            return Err(self.error_at(
                start,
                format!(
                    "unknown function {name:?}; known: {} (a source attribute is written [{name}], a literal \"{name}\")",
                    names.join(", ")
                ),
            ));
        };
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(self.error(format!("expected '(' after {canonical}")));
        }
        self.at += 1;
        let mut args = Vec::new();
        let mut arg_columns = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.at += 1;
        } else {
            loop {
                self.skip_ws();
                arg_columns.push(self.at);
                args.push(self.expr(depth + 1)?);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.at += 1,
                    Some(')') => {
                        self.at += 1;
                        break;
                    }
                    None => {
                        return Err(
                            self.error_at(start, format!("unclosed {canonical}(: expected ')'"))
                        );
                    }
                    Some(c) => {
                        return Err(self.error(format!("unexpected {c:?}: expected ',' or ')'")));
                    }
                }
            }
        }
        let n = args.len();
        let func = match canonical {
            "Append" if n == 2 => Func::Append,
            "Coalesce" if n >= 1 => Func::Coalesce,
            "Join" if n >= 2 => Func::Join,
            "NormalizeDiacritics" if n == 1 => Func::NormalizeDiacritics,
            "Replace" if n == 3 => Func::Replace,
            "Switch" if n >= 4 && n % 2 == 0 => Func::Switch,
            "ToLower" if n == 1 => Func::ToLower,
            "ToUpper" if n == 1 => Func::ToUpper,
            "Trim" if n == 1 => Func::Trim,
            "Left" if n == 2 => {
                let count = match &args[1] {
                    Node::Literal(text) => text.trim().parse::<usize>().ok(),
                    _ => None,
                };
                let Some(count) = count else {
                    return Err(self.error_at(
                        arg_columns[1],
                        "Left's count must be a whole number written in the expression, e.g. Left([name], 3)",
                    ));
                };
                let mut args = args;
                args.truncate(1);
                let value = args
                    .pop()
                    .map(Box::new)
                    .ok_or_else(|| self.error_at(start, "Left(value, count) takes 2 arguments"))?;
                return Ok(Node::Left(value, count));
            }
            _ => {
                let usage = FUNCTIONS
                    .iter()
                    .find(|(f, _)| *f == canonical)
                    .map_or(canonical, |(_, usage)| *usage);
                return Err(self.error_at(
                    start,
                    format!(
                        "{canonical} given {n} argument{}: expected {usage}",
                        if n == 1 { "" } else { "s" }
                    ),
                ));
            }
        };
        Ok(Node::Call(func, args))
    }
}
