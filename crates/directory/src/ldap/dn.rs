//! Distinguished names compared as RFC 4514 DNs: a member or manager DN matches a user's entry
//! DN however either is spelled. Servers differ in what they escape (`\,` or `\2C`, `\"` or
//! `\22`, UTF-8 raw or hex-escaped byte by byte, as slapadd-loaded OpenLDAP returns it), in the
//! case of attribute types (`CN` or `cn`, or the OID `2.5.4.3`) and values, and in spaces
//! around separators; the canonical form here is the same for all of them.
//!
//! Values are compared case-insensitively with runs of spaces folded, which is the matching
//! rule (`caseIgnoreMatch`) of every naming attribute in practice (cn, uid, ou, o, dc, l, st,
//! c). A DN that does not parse is compared as written, lower-cased and trimmed.

/// A form two spellings of the same DN share.
pub(crate) fn canonical_dn(dn: &str) -> String {
    match parse(dn.trim()) {
        Some(rdns) => render(rdns),
        None => dn.trim().to_lowercase(),
    }
}

/// An attribute value: text (escapes decoded), or `#` and hex (a BER encoding, compared as is).
enum Value {
    Text(String),
    Hex(String),
}

type Rdn = Vec<(String, Value)>;

fn parse(dn: &str) -> Option<Vec<Rdn>> {
    let bytes = dn.as_bytes();
    let mut rdns = Vec::new();
    if bytes.is_empty() {
        return Some(rdns);
    }
    let mut rdn: Rdn = Vec::new();
    let mut at = 0;
    loop {
        let (kind, after_type) = attribute_type(bytes, at)?;
        let (value, after_value) = attribute_value(bytes, after_type)?;
        rdn.push((kind, value));
        match bytes.get(after_value) {
            None => {
                rdns.push(rdn);
                return Some(rdns);
            }
            Some(b'+') => {}
            // `;` separated RDNs in RFC 2253's day; still seen in old data.
            Some(b',' | b';') => rdns.push(std::mem::take(&mut rdn)),
            Some(_) => return None,
        }
        at = after_value + 1;
    }
}

/// The attribute type starting at `at` (spaces skipped), lower-cased, with the OIDs of the
/// common naming attributes replaced by their names; and where its `=` ends.
fn attribute_type(bytes: &[u8], at: usize) -> Option<(String, usize)> {
    let eq = at + bytes[at..].iter().position(|&b| b == b'=')?;
    let raw = std::str::from_utf8(&bytes[at..eq]).ok()?.trim();
    let raw = raw
        .strip_prefix("oid.")
        .or_else(|| raw.strip_prefix("OID."))
        .unwrap_or(raw);
    let valid = !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    let name = match lower.as_str() {
        "2.5.4.3" => "cn",
        "2.5.4.6" => "c",
        "2.5.4.7" => "l",
        "2.5.4.8" => "st",
        "2.5.4.9" => "street",
        "2.5.4.10" => "o",
        "2.5.4.11" => "ou",
        "0.9.2342.19200300.100.1.1" => "uid",
        "0.9.2342.19200300.100.1.25" => "dc",
        other => other,
    };
    Some((name.to_owned(), eq + 1))
}

/// The value starting at `at`, and the position of the separator after it (or the end).
fn attribute_value(bytes: &[u8], mut at: usize) -> Option<(Value, usize)> {
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    match bytes.get(at) {
        Some(b'#') => {
            let end = at
                + bytes[at..]
                    .iter()
                    .position(|&b| matches!(b, b',' | b';' | b'+'))
                    .unwrap_or(bytes.len() - at);
            let hex = std::str::from_utf8(&bytes[at + 1..end]).ok()?.trim();
            if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            Some((Value::Hex(hex.to_ascii_lowercase()), end))
        }
        Some(b'"') => {
            // RFC 1779's quoted form: everything up to the closing quote is literal.
            let mut out = Vec::new();
            let mut i = at + 1;
            loop {
                match *bytes.get(i)? {
                    b'"' => break,
                    b'\\' => {
                        let (byte, next) = escaped(bytes, i)?;
                        out.push(byte);
                        i = next;
                    }
                    b => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            i += 1;
            while bytes.get(i) == Some(&b' ') {
                i += 1;
            }
            Some((Value::Text(String::from_utf8(out).ok()?), i))
        }
        _ => {
            let mut out = Vec::new();
            // Unescaped trailing spaces are not part of the value; escaped ones are (though the
            // matching rule folds them anyway).
            let mut significant = 0;
            let mut i = at;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b',' | b';' | b'+' => break,
                    b'\\' => {
                        let (byte, next) = escaped(bytes, i)?;
                        out.push(byte);
                        significant = out.len();
                        i = next;
                    }
                    b'=' | b'"' | b'<' | b'>' => return None,
                    b => {
                        out.push(b);
                        if b != b' ' {
                            significant = out.len();
                        }
                        i += 1;
                    }
                }
            }
            out.truncate(significant);
            Some((Value::Text(String::from_utf8(out).ok()?), i))
        }
    }
}

/// The byte a backslash escape at `at` stands for (`\,` or `\2C`), and where it ends.
fn escaped(bytes: &[u8], at: usize) -> Option<(u8, usize)> {
    let first = *bytes.get(at + 1)?;
    let hex = |b: u8| (b as char).to_digit(16);
    if let (Some(hi), Some(lo)) = (hex(first), bytes.get(at + 2).and_then(|&b| hex(b))) {
        return Some(((hi * 16 + lo) as u8, at + 3));
    }
    Some((first, at + 2))
}

fn render(rdns: Vec<Rdn>) -> String {
    let mut out = String::new();
    for (i, mut rdn) in rdns.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut avas: Vec<String> = rdn
            .drain(..)
            .map(|(kind, value)| {
                let value = match value {
                    Value::Hex(hex) => format!("#{hex}"),
                    Value::Text(text) => escape(&fold(&text)),
                };
                format!("{kind}={value}")
            })
            .collect();
        // A multi-valued RDN is a set: its order is the writer's whim.
        avas.sort();
        out.push_str(&avas.join("+"));
    }
    out
}

/// caseIgnoreMatch's view of a value: lower-cased, runs of spaces one space, trimmed.
fn fold(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// One escaping for the canonical form, so decoded separators cannot merge two values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        if matches!(c, '\\' | ',' | '+' | '=' | ';' | '"' | '<' | '>') || (i == 0 && c == '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::canonical_dn;

    fn same(a: &str, b: &str) {
        assert_eq!(canonical_dn(a), canonical_dn(b), "{a:?} vs {b:?}");
    }

    #[test]
    fn spellings_of_one_dn_agree() {
        same(
            "UID=Ann , OU=People,dc=Example, dc=test",
            "uid=ann,ou=people,dc=example,dc=test",
        );
        // What the issue found in slapadd-loaded OpenLDAP.
        same(r"cn=Lee\, Ann,dc=x", r"cn=Lee\2C Ann,dc=x");
        same(r#"cn=The \"Boss\",dc=x"#, r"cn=The \22Boss\22,dc=x");
        same("cn=Émile Zoë,dc=x", r"cn=\C3\89mile Zo\C3\AB,dc=x");
        same("cn=émile,dc=x", "CN=ÉMILE,DC=X");
        same("2.5.4.3=Ann,0.9.2342.19200300.100.1.25=x", "cn=ann,dc=x");
        same("cn=Ann+uid=a1,dc=x", "uid=A1+CN=Ann,dc=x");
        same(r#"cn="Lee, Ann",dc=x"#, r"cn=Lee\, Ann,dc=x");
        same("cn=a;dc=x", "cn=a,dc=x");
        same(r"cn=a\ ,dc=x", "cn=a,dc=x");
        same("cn=a   b,dc=x", "cn=a b,dc=x");
    }

    #[test]
    fn different_dns_stay_different() {
        let differ = |a: &str, b: &str| assert_ne!(canonical_dn(a), canonical_dn(b), "{a} {b}");
        differ(r"cn=Lee\, Ann,dc=x", "cn=Lee,cn=Ann,dc=x");
        differ(r"cn=a\+b,dc=x", "cn=a+b=c,dc=x");
        differ("cn=ann,dc=x", "uid=ann,dc=x");
        differ(r"cn=\#41,dc=x", "cn=#41,dc=x");
    }

    #[test]
    fn a_dn_that_does_not_parse_is_compared_as_written() {
        assert_eq!(canonical_dn(r" CN=broken\ "), r"cn=broken\");
        assert_eq!(canonical_dn("no equals sign"), "no equals sign");
    }
}
