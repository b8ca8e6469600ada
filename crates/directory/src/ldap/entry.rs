//! One search result entry, read the way the snapshot needs it: attribute names matched
//! case-insensitively (servers answer with the schema's spelling), values trimmed, empty
//! values absent.

use ldap3::SearchEntry;

pub(super) struct Entry {
    dn: String,
    /// Lower-cased attribute name → values.
    text: Vec<(String, Vec<String>)>,
    binary: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    pub(super) fn new(raw: SearchEntry) -> Entry {
        Entry {
            dn: raw.dn,
            text: raw
                .attrs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            binary: raw
                .bin_attrs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        }
    }

    pub(super) fn dn(&self) -> &str {
        &self.dn
    }

    fn values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.text
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter().map(String::as_str))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The first value of the first candidate attribute the entry has.
    pub(super) fn first(&self, names: &[String]) -> Option<String> {
        names
            .iter()
            .find_map(|name| self.values(name).next())
            .map(str::to_owned)
    }

    /// Every value of every candidate attribute.
    pub(super) fn all<'a>(&'a self, names: &'a [String]) -> impl Iterator<Item = &'a str> {
        names.iter().flat_map(|name| self.values(name))
    }

    /// The entry's id: exactly one value of the first candidate present. A binary id
    /// (Active Directory's objectGUID) is rendered in the GUID form AD tools show.
    pub(super) fn id(&self, names: &[String]) -> Result<String, String> {
        for name in names {
            let values: Vec<&str> = self.values(name).collect();
            match values.as_slice() {
                [] => {}
                [one] => return Ok((*one).to_owned()),
                _ => {
                    return Err(format!(
                        "has {} values of the id attribute {name}",
                        values.len()
                    ));
                }
            }
            if let Some((_, values)) = self
                .binary
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
            {
                return match values.as_slice() {
                    [one] => Ok(binary_id(one)),
                    _ => Err(format!(
                        "has {} values of the id attribute {name}",
                        values.len()
                    )),
                };
            }
        }
        Err(format!(
            "has no id attribute ({}); check [source.ldap.attributes] id, and that the bind DN may read it",
            names.join(" or ")
        ))
    }

    /// `ACTIVATED` or `SUSPENDED` from the lock flag and userAccountControl; a value neither
    /// can be read as is passed on as the state, so mapping marks the record invalid and its
    /// account is left alone rather than guessed at.
    pub(super) fn state(&self, lock: &[String], uac: &[String]) -> String {
        let mut suspended = false;
        if let Some(value) = self.first(lock) {
            match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => suspended = true,
                "false" | "0" | "no" => {}
                _ => return format!("unreadable lock flag {value:?}"),
            }
        }
        if let Some(value) = self.first(uac) {
            match value.parse::<i64>() {
                // ACCOUNTDISABLE (0x2), MS-ADTS 2.2.16.
                Ok(flags) => suspended |= flags & 0x2 != 0,
                Err(_) => return format!("unreadable userAccountControl {value:?}"),
            }
        }
        if suspended { "SUSPENDED" } else { "ACTIVATED" }.to_owned()
    }
}

/// A 16-byte GUID in Microsoft's mixed-endian text form; other binary values in hex.
pub(super) fn binary_id(bytes: &[u8]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if let [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] = bytes
        && rest.len() == 8
    {
        format!(
            "{}-{}-{}-{}-{}",
            hex(&[*a3, *a2, *a1, *a0]),
            hex(&[*b1, *b0]),
            hex(&[*c1, *c0]),
            hex(&rest[..2]),
            hex(&rest[2..])
        )
    } else {
        hex(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(attrs: &[(&str, &[&str])]) -> Entry {
        Entry::new(SearchEntry {
            dn: "uid=a,dc=x".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            bin_attrs: HashMap::new(),
        })
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn guids_render_like_active_directory() {
        let bytes = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(binary_id(&bytes), "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(binary_id(&[1, 2]), "0102");
    }

    #[test]
    fn candidates_and_case() {
        let e = entry(&[("CN", &["Ann Lee"]), ("mail", &["  ", "ann@x"])]);
        assert_eq!(
            e.first(&names(&["displayName", "cn"])),
            Some("Ann Lee".into())
        );
        assert_eq!(e.first(&names(&["mail"])), Some("ann@x".into()));
        assert_eq!(e.first(&names(&["sn"])), None);
    }

    #[test]
    fn ids_must_be_single() {
        assert_eq!(
            entry(&[("entryUUID", &["u1"])]).id(&names(&["entryUUID"])),
            Ok("u1".into())
        );
        assert!(
            entry(&[("entryUUID", &["u1", "u2"])])
                .id(&names(&["entryUUID"]))
                .is_err()
        );
        assert!(entry(&[]).id(&names(&["entryUUID"])).is_err());
    }

    #[test]
    fn states() {
        let lock = names(&["nsAccountLock"]);
        let uac = names(&["userAccountControl"]);
        assert_eq!(entry(&[]).state(&lock, &uac), "ACTIVATED");
        assert_eq!(
            entry(&[("nsAccountLock", &["TRUE"])]).state(&lock, &uac),
            "SUSPENDED"
        );
        assert_eq!(
            entry(&[("nsAccountLock", &["false"])]).state(&lock, &uac),
            "ACTIVATED"
        );
        assert_eq!(
            entry(&[("userAccountControl", &["514"])]).state(&lock, &uac),
            "SUSPENDED"
        );
        assert_eq!(
            entry(&[("userAccountControl", &["512"])]).state(&lock, &uac),
            "ACTIVATED"
        );
        assert!(
            entry(&[("nsAccountLock", &["maybe"])])
                .state(&lock, &uac)
                .starts_with("unreadable")
        );
    }
}
