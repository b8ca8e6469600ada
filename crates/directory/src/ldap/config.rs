//! `[source.ldap]`: where the directory is, how to read it, and which LDAP attribute feeds each
//! snapshot attribute. The bind password is not here: the engine reads it from the environment
//! or a file and hands it over as a [`secrecy::SecretString`].

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The largest page a server is asked for; Active Directory's MaxPageSize defaults to 1000.
pub const MAX_PAGE_SIZE: u32 = 10_000;

/// `[source.ldap]` in sync.toml (the password comes from `password_env`/`password_file`, which
/// the engine resolves).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub start_tls: bool,
    /// The DN to bind as (not a secret; `bind_dn_env` reads it from the environment instead).
    /// Neither: an anonymous bind.
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub bind_dn_env: Option<String>,
    /// The bind password: an environment variable's name, or a file readable only by scimsync.
    /// Resolved by the engine, never written here.
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// Present only so it can be refused with a clear message.
    #[serde(default, skip_serializing)]
    pub password: Option<toml_any::Any>,
    /// The search base for users and groups.
    pub base_dn: String,
    /// Users are searched under this DN instead of `base_dn`.
    #[serde(default)]
    pub user_base_dn: Option<String>,
    /// Groups are searched under this DN instead of `base_dn`.
    #[serde(default)]
    pub group_base_dn: Option<String>,
    /// Which entries are users.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// Which entries are groups; `""` reads no groups.
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    /// Entries per page of the simple paged results control (RFC 2696).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Bound on connecting and on each LDAP operation (each page).
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Attribute names.
    #[serde(default)]
    pub attributes: LdapAttributes,
}

fn default_user_filter() -> String {
    "(objectClass=inetOrgPerson)".to_owned()
}
fn default_group_filter() -> String {
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
        .to_owned()
}
fn default_page_size() -> u32 {
    500
}
fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Which LDAP attributes feed the snapshot. Each entry lists candidates: the first one an entry
/// has wins (`displayname = ["displayName", "cn"]`). A single name may be written as a string.
/// Defaults suit OpenLDAP's inetOrgPerson; for Active Directory set `id = ["objectGUID"]`,
/// `email = ["mail", "userPrincipalName"]` and `user_filter = "(&(objectCategory=person)(objectClass=user))"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapAttributes {
    /// The immutable user id (`entryUUID`, `objectGUID`, `nsUniqueId`, `ipaUniqueID`). Operational
    /// attributes are requested by name, so they arrive.
    #[serde(deserialize_with = "names")]
    pub id: Vec<String>,
    #[serde(deserialize_with = "names")]
    pub email: Vec<String>,
    #[serde(deserialize_with = "names")]
    pub firstname: Vec<String>,
    #[serde(deserialize_with = "names")]
    pub lastname: Vec<String>,
    #[serde(deserialize_with = "names")]
    pub displayname: Vec<String>,
    #[serde(deserialize_with = "names")]
    pub department: Vec<String>,
    #[serde(deserialize_with = "names")]
    pub employeeidentifier: Vec<String>,
    #[serde(deserialize_with = "names")]
    pub job_title: Vec<String>,
    #[serde(deserialize_with = "names")]
    pub company: Vec<String>,
    /// Holds the manager's DN; the snapshot gets the manager's id.
    #[serde(deserialize_with = "names")]
    pub manager: Vec<String>,
    /// The user's login name, which `memberUid` group members name.
    #[serde(deserialize_with = "names")]
    pub uid: Vec<String>,
    /// A boolean lock flag (`nsAccountLock: TRUE` suspends the user).
    #[serde(deserialize_with = "names")]
    pub lock: Vec<String>,
    /// Active Directory's flags: bit 0x2 (ACCOUNTDISABLE) suspends the user.
    #[serde(deserialize_with = "names")]
    pub user_account_control: Vec<String>,
    /// Group id.
    #[serde(deserialize_with = "names")]
    pub group_id: Vec<String>,
    /// Group name, matched by `[scope] groups` and `[roles] admin_groups`.
    #[serde(deserialize_with = "names")]
    pub group_name: Vec<String>,
    /// Group attributes holding member DNs.
    #[serde(deserialize_with = "names")]
    pub member: Vec<String>,
    /// Group attributes holding member login names (posixGroup).
    #[serde(deserialize_with = "names")]
    pub member_uid: Vec<String>,
    /// More snapshot attributes: snapshot name → LDAP attribute (`costCenter = "departmentNumber"`),
    /// for mappings and scoping filters to use.
    pub extra: BTreeMap<String, String>,
}

impl Default for LdapAttributes {
    fn default() -> Self {
        let v = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        LdapAttributes {
            id: v(&["entryUUID"]),
            email: v(&["mail"]),
            firstname: v(&["givenName"]),
            lastname: v(&["sn"]),
            displayname: v(&["displayName", "cn"]),
            department: v(&["departmentNumber", "ou"]),
            employeeidentifier: v(&["employeeNumber"]),
            job_title: v(&["title"]),
            company: v(&["o"]),
            manager: v(&["manager"]),
            uid: v(&["uid"]),
            lock: v(&["nsAccountLock"]),
            user_account_control: v(&["userAccountControl"]),
            group_id: v(&["entryUUID"]),
            group_name: v(&["cn"]),
            member: v(&["member", "uniqueMember"]),
            member_uid: v(&["memberUid"]),
            extra: BTreeMap::new(),
        }
    }
}

/// Any TOML value, to recognise (and refuse) a key without caring what it holds.
mod toml_any {
    use serde::{Deserialize, Deserializer};

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Any;

    impl<'de> Deserialize<'de> for Any {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Any, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| Any)
        }
    }
}

/// One attribute name or a list of them.
fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(name) => vec![name],
        OneOrMany::Many(names) => names,
    })
}

/// "60s", "2m": the same duration syntax as the rest of sync.toml, in seconds or minutes.
mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", d.as_secs()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration such as \"30s\" or \"2m\""
            ))
        })
    }

    pub(super) fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
        let n: u64 = number.parse().ok()?;
        let secs = match unit.trim() {
            "s" => n,
            "m" => n.checked_mul(60)?,
            _ => return None,
        };
        (secs > 0).then(|| Duration::from_secs(secs))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration::parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(duration::parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration::parse("0s"), None);
        assert_eq!(duration::parse("soon"), None);
        assert_eq!(duration::parse("5h"), None);
    }

    #[test]
    fn attribute_names_are_a_string_or_a_list() {
        let cfg: LdapConfig = toml::from_str(
            r#"url = "ldap://127.0.0.1"
base_dn = "dc=x"
[attributes]
id = "objectGUID"
email = ["mail", "userPrincipalName"]
extra = { costCenter = "departmentNumber" }"#,
        )
        .unwrap();
        assert_eq!(cfg.attributes.id, ["objectGUID"]);
        assert_eq!(cfg.attributes.email, ["mail", "userPrincipalName"]);
        assert_eq!(cfg.attributes.lastname, ["sn"]);
        assert_eq!(cfg.page_size, 500);
        assert_eq!(cfg.attributes.extra["costCenter"], "departmentNumber");
    }
}
