//! RFC 7644 §3.4.2.2 filters: a tokenizer that honours JSON string escapes, a
//! precedence-climbing parser (`or` < `and` < `not`/parentheses/comparison) and an evaluator.
//!
//! Clients are tested on emails like `o"brien\x@example.com`, which only round-trip if the
//! quoted literal is decoded as JSON, so nothing here splits on spaces or quotes.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(msg.into()))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Word(String),
}

pub fn tokenize(input: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    '[' => Token::LBracket,
                    _ => Token::RBracket,
                });
            }
            '"' => {
                chars.next();
                tokens.push(Token::Str(read_string(&mut chars)?));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

fn read_string(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<String, FilterError> {
    let mut out = String::new();
    loop {
        match chars.next() {
            None => return err("unterminated string literal"),
            Some('"') => return Ok(out),
            Some('\\') => match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('/') => out.push('/'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => out.push(read_unicode(chars)?),
                Some(other) => return err(format!("invalid escape '\\{other}' in string literal")),
                None => return err("unterminated string literal"),
            },
            Some(c) => out.push(c),
        }
    }
}

fn read_unicode(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, FilterError> {
    let hex4 = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Result<u32, FilterError> {
        let s: String = chars.take(4).collect();
        if s.len() != 4 {
            return err("truncated \\u escape");
        }
        u32::from_str_radix(&s, 16).map_err(|_| FilterError(format!("invalid \\u escape '{s}'")))
    };
    let hi = hex4(chars)?;
    if (0xD800..0xDC00).contains(&hi) {
        if chars.next() != Some('\\') || chars.next() != Some('u') {
            return err("unpaired surrogate in \\u escape");
        }
        let lo = hex4(chars)?;
        if !(0xDC00..0xE000).contains(&lo) {
            return err("unpaired surrogate in \\u escape");
        }
        let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        return char::from_u32(code).ok_or_else(|| FilterError("invalid \\u escape".into()));
    }
    char::from_u32(hi).ok_or_else(|| FilterError("invalid \\u escape".into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Bool(bool),
    Num(f64),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(String),
    /// Attribute paths are kept lower-cased: SCIM attribute names are case-insensitive.
    Compare(String, CmpOp, Literal),
}

pub fn parse(input: &str) -> Result<Filter, FilterError> {
    let tokens = tokenize(input)?;
    let mut p = Parser { tokens, pos: 0 };
    let f = p.or()?;
    if p.pos != p.tokens.len() {
        return err(format!("unexpected trailing input at token {}", p.pos + 1));
    }
    Ok(f)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.peek_keyword("not") && self.tokens.get(self.pos + 1) == Some(&Token::LParen) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.parenthesised()?)));
        }
        if self.peek() == Some(&Token::LParen) {
            return self.parenthesised();
        }
        self.comparison()
    }

    fn parenthesised(&mut self) -> Result<Filter, FilterError> {
        self.pos += 1; // the '(' the caller saw
        let inner = self.or()?;
        match self.next() {
            Some(Token::RParen) => Ok(inner),
            _ => err("missing ')'"),
        }
    }

    fn comparison(&mut self) -> Result<Filter, FilterError> {
        let attr = match self.next() {
            Some(Token::Word(w)) if is_attr_path(&w) => w.to_ascii_lowercase(),
            Some(t) => return err(format!("expected an attribute name, found {t:?}")),
            None => return err("expected an attribute name, found end of filter"),
        };
        if self.peek() == Some(&Token::LBracket) {
            return err("filtering on complex attributes is not supported");
        }
        let op = match self.next() {
            Some(Token::Word(w)) => w.to_ascii_lowercase(),
            _ => return err(format!("expected an operator after '{attr}'")),
        };
        let op = match op.as_str() {
            "pr" => return Ok(Filter::Present(attr)),
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "co" => CmpOp::Co,
            "sw" => CmpOp::Sw,
            "ew" => CmpOp::Ew,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            other => return err(format!("unknown operator '{other}'")),
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Literal::Str(s),
            Some(Token::Word(w)) => match w.as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "null" => Literal::Null,
                num => match num.parse::<f64>() {
                    Ok(n) => Literal::Num(n),
                    Err(_) => {
                        return err(format!(
                            "invalid comparison value '{num}' (strings must be quoted)"
                        ));
                    }
                },
            },
            _ => return err(format!("expected a value after '{attr}'")),
        };
        Ok(Filter::Compare(attr, op, value))
    }
}

fn is_attr_path(w: &str) -> bool {
    !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '_' | '-' | '$'))
        && !["and", "or", "not"]
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k))
}

impl Filter {
    /// `resolve` maps a lower-cased attribute path to the values the resource holds there
    /// (several for multi-valued attributes; none when absent).
    pub fn matches(&self, resolve: &dyn Fn(&str) -> Vec<Value>) -> bool {
        match self {
            Filter::And(a, b) => a.matches(resolve) && b.matches(resolve),
            Filter::Or(a, b) => a.matches(resolve) || b.matches(resolve),
            Filter::Not(f) => !f.matches(resolve),
            Filter::Present(attr) => resolve(attr).iter().any(|v| match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            }),
            Filter::Compare(attr, CmpOp::Ne, lit) => {
                !Filter::Compare(attr.clone(), CmpOp::Eq, lit.clone()).matches(resolve)
            }
            Filter::Compare(attr, op, Literal::Null) => {
                let absent = resolve(attr).iter().all(Value::is_null);
                *op == CmpOp::Eq && absent
            }
            Filter::Compare(attr, op, lit) => resolve(attr).iter().any(|v| compare(v, *op, lit)),
        }
    }

    /// The value of a top-level `userName eq "…"`, which callers answer from an index.
    pub fn as_user_name_eq(&self) -> Option<&str> {
        match self {
            Filter::Compare(attr, CmpOp::Eq, Literal::Str(s)) if attr == "username" => Some(s),
            _ => None,
        }
    }
}

fn compare(value: &Value, op: CmpOp, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let ordering = |o: Ordering| match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        _ => false,
    };
    match (value, lit) {
        (Value::String(v), Literal::Str(l)) => {
            // userName, displayName and the other filterable strings are caseExact=false.
            let (v, l) = (v.to_lowercase(), l.to_lowercase());
            match op {
                CmpOp::Co => v.contains(&l),
                CmpOp::Sw => v.starts_with(&l),
                CmpOp::Ew => v.ends_with(&l),
                _ => ordering(v.cmp(&l)),
            }
        }
        (Value::Bool(v), Literal::Bool(l)) => op == CmpOp::Eq && v == l,
        (Value::Number(v), Literal::Num(l)) => v
            .as_f64()
            .and_then(|v| v.partial_cmp(l))
            .is_some_and(ordering),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(attr: &str) -> Vec<Value> {
        match attr {
            "username" => vec![json!("O\"Brien\\x@Example.com")],
            "displayname" => vec![json!("Owen O'Brien")],
            "active" => vec![json!(true)],
            _ => vec![],
        }
    }

    #[test]
    fn decodes_escaped_quotes_and_backslashes() {
        let f = parse(r#"userName eq "o\"brien\\x@example.com""#).unwrap();
        assert_eq!(
            f,
            Filter::Compare(
                "username".into(),
                CmpOp::Eq,
                Literal::Str(r#"o"brien\x@example.com"#.into())
            )
        );
        assert!(f.matches(&user));
    }

    #[test]
    fn operators_and_names_are_case_insensitive() {
        assert!(
            parse(r#"USERNAME EQ "o\"brien\\x@example.com""#)
                .unwrap()
                .matches(&user)
        );
        assert!(parse(r#"displayname Co "o'bri""#).unwrap().matches(&user));
        assert!(
            parse(r#"userName sw "O\"B" And active eq true"#)
                .unwrap()
                .matches(&user)
        );
    }

    #[test]
    fn logic_precedence_and_parentheses() {
        let f = parse(r#"active eq false or userName ew ".com" and displayName pr"#).unwrap();
        assert!(f.matches(&user));
        let f =
            parse(r#"(active eq false or userName ew ".com") and not (displayName pr)"#).unwrap();
        assert!(!f.matches(&user));
        assert!(!parse(r#"externalId eq "x""#).unwrap().matches(&user));
        assert!(parse(r#"externalId ne "x""#).unwrap().matches(&user));
    }

    #[test]
    fn literal_with_spaces_and_keywords_stays_one_token() {
        let f = parse(r#"displayName eq "a and b or (c)""#).unwrap();
        assert_eq!(
            f,
            Filter::Compare(
                "displayname".into(),
                CmpOp::Eq,
                Literal::Str("a and b or (c)".into())
            )
        );
        assert_eq!(
            parse(r#"userName eq "\u00e9""#).unwrap().as_user_name_eq(),
            Some("é")
        );
    }

    #[test]
    fn malformed_filters_are_rejected() {
        for bad in [
            "",
            "userName",
            "userName eq",
            r#"userName eq "unterminated"#,
            "userName eq bare@example.com",
            r#"userName zz "x""#,
            r#"(userName eq "x""#,
            r#"userName eq "x" junk"#,
            r#"userName eq "bad\q""#,
            r#"emails[type eq "work"]"#,
            r#"userName eq "x" and"#,
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
