//! RFC 4515 string representation of LDAP search filters: escaping a value so that it matches
//! itself and nothing else.

/// Escapes a value for use inside an LDAP filter (`(cn=<here>)`), RFC 4515 §3: `*`, `(`, `)`,
/// `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`. Everything else, UTF-8 included, is
/// kept: RFC 4515 carries values as UTF-8. Without this a group named `R&D (EU)` or a value
/// with `*` would change the filter's meaning.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// `(attr=value)` with the value escaped.
pub fn equality_filter(attr: &str, value: &str) -> String {
    format!("({attr}={})", escape_filter_value(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_five_special_characters() {
        assert_eq!(escape_filter_value("a*b"), "a\\2ab");
        assert_eq!(escape_filter_value("(x)"), "\\28x\\29");
        assert_eq!(escape_filter_value("back\\slash"), "back\\5cslash");
        assert_eq!(escape_filter_value("nul\0"), "nul\\00");
        // RFC 4515's own examples.
        assert_eq!(
            escape_filter_value("Parens R Us (for all your parenthetical needs)"),
            "Parens R Us \\28for all your parenthetical needs\\29"
        );
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value("C:\\MyFile"), "C:\\5cMyFile");
    }

    #[test]
    fn keeps_everything_else() {
        assert_eq!(escape_filter_value(""), "");
        assert_eq!(escape_filter_value("R&D = | ! ~ > <"), "R&D = | ! ~ > <");
        assert_eq!(escape_filter_value("Lučić Ærø 日本"), "Lučić Ærø 日本");
    }

    #[test]
    fn an_escaped_value_has_no_unescaped_specials() {
        for value in ["*)(uid=*", "a\\2a", "))((", "\\"] {
            let escaped = escape_filter_value(value);
            assert!(!escaped.contains(['*', '(', ')', '\0']), "{escaped}");
            // Every backslash starts a two-hex-digit escape.
            let bytes = escaped.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'\\' {
                    assert!(bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit());
                }
            }
        }
        assert_eq!(equality_filter("cn", "Miro (EU)"), "(cn=Miro \\28EU\\29)");
    }
}
