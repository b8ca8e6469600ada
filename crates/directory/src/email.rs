//! The email check. The email becomes the target's userName, its identity for the user and the
//! operand of `filter=userName eq "…"` lookups, so what passes here must be unambiguous.

/// Returns the userName for an email (trimmed, lower-cased), or why it is not usable.
pub(crate) fn user_name(raw: &str) -> Result<String, String> {
    let email = raw.trim();
    if let Some(c) = email
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || is_invisible(c))
    {
        return Err(format!(
            "contains {} (U+{:04X}), which an address cannot carry",
            if c.is_whitespace() {
                "whitespace"
            } else if c.is_control() {
                "a control character"
            } else {
                "an invisible formatting character"
            },
            u32::from(c)
        ));
    }
    let at_signs = email.matches('@').count();
    if at_signs != 1 {
        return Err(format!(
            "has {at_signs} '@' signs; an address has exactly one"
        ));
    }
    let (local, domain) = email.split_once('@').unwrap_or_default();
    if local.is_empty() {
        return Err("has nothing before the '@'".to_owned());
    }
    // RFC 5322 dot-atom text; quoted local parts are legal but no directory issues them and
    // they would need escaping in every filter. Non-ASCII is allowed (RFC 6531).
    if let Some(c) = local.chars().find(|&c| {
        c.is_ascii() && !(c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
    }) {
        return Err(format!(
            "has {c:?} before the '@', which an address cannot carry unquoted"
        ));
    }
    if !domain.contains('.') {
        return Err("has no dot in the domain".to_owned());
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err("has an empty label in the domain".to_owned());
    }
    if let Some(c) = domain
        .chars()
        .find(|&c| c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(format!("has {c:?} in the domain"));
    }
    Ok(email.to_lowercase())
}

/// Zero-width and bidi-control characters: invisible, so two addresses that differ only by one
/// look the same to the admin reading a plan.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_lower_cases() {
        assert_eq!(
            user_name("  Ann.Lee@Example.COM ").unwrap(),
            "ann.lee@example.com"
        );
    }

    #[test]
    fn keeps_unicode() {
        assert_eq!(user_name("Zoë@bücher.de").unwrap(), "zoë@bücher.de");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "a@b@example.com",
            "ann lee@example.com",
            "ann@exa mple.com",
            "ann\t@example.com",
            "ann\u{0}@example.com",
            "ann\u{200B}@example.com",
            "\"ann\"@example.com",
            "ann\\@example.com",
            "a\") or (\"@example.com",
            "ann@.example.com",
            "ann@example..com",
            "ann@example.com.",
            "ann@exa\"mple.com",
        ] {
            assert!(user_name(bad).is_err(), "{bad:?} was accepted");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_accepted_names_are_filter_safe(s in "\\PC{0,40}") {
            if let Ok(name) = user_name(&s) {
                prop_assert!(!name.contains('"') && !name.contains('\\'));
                prop_assert!(!name.chars().any(char::is_whitespace));
                prop_assert_eq!(name.matches('@').count(), 1);
            }
        }
    }
}
