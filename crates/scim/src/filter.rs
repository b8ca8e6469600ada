//! Filter expressions (RFC 7644 §3.4.2.2). A filter value is a JSON string literal, so a value
//! holding `"` or `\` cannot end the literal early and smuggle in `) or (…`.

/// `attr eq "value"`, the value escaped as a JSON string literal.
///
/// `attr` is trusted (it comes from code, never from the directory); only the value is escaped.
pub fn filter_eq(attr: &str, value: &str) -> String {
    format!("{attr} eq {}", json_string_literal(value))
}

/// `value` as a JSON string literal (RFC 8259 §7): `"` and `\` are escaped, control characters
/// become `\n`-style or `\u00XX` escapes, everything else (all of Unicode) is kept as is.
pub fn json_string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn literal_of(filter: &str) -> &str {
        filter.split_once(" eq ").unwrap().1
    }

    #[test]
    fn plain_email() {
        assert_eq!(
            filter_eq("userName", "ann@example.com"),
            r#"userName eq "ann@example.com""#
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        let f = filter_eq("userName", r#"a"b\c"#);
        assert_eq!(f, r#"userName eq "a\"b\\c""#);
    }

    #[test]
    fn injection_stays_inside_the_literal() {
        let value = r#"x") or (userName pr"#;
        let f = filter_eq("userName", value);
        let lit = literal_of(&f);
        // The literal is one JSON string whose content is exactly the value.
        assert_eq!(serde_json::from_str::<String>(lit).unwrap(), value);
        assert!(lit.starts_with('"') && lit.ends_with('"'));
    }

    #[test]
    fn unicode_is_kept_and_controls_escaped() {
        let f = filter_eq("userName", "zoë\u{1}\n@例え.jp");
        assert!(f.contains("zoë"));
        assert!(f.contains("例え"));
        assert!(f.contains("\\u0001"));
        assert!(f.contains("\\n"));
        assert!(!f.contains('\n'));
    }

    proptest! {
        #[test]
        fn literal_parses_back_to_the_value(value in any::<String>()) {
            let f = filter_eq("userName", &value);
            let lit = literal_of(&f);
            prop_assert_eq!(serde_json::from_str::<String>(lit).unwrap(), value.clone());
            // No raw control character ever reaches the wire.
            prop_assert!(!lit.chars().any(|c| (c as u32) < 0x20));
        }
    }
}
