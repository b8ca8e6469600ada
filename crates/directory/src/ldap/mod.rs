//! The LDAP reader (`source.kind = "ldap"`): users and groups read with the simple paged
//! results control, turned into the same [`Snapshot`] a JSON export gives, with the attribute
//! names the `jumpcloud` preset reads (`email`, `firstname`, …, `manager` as the manager's
//! id, `state`), so scope, roles and mapping work unchanged.
//!
//! All or nothing: a dropped connection, a timeout, or a size, time or admin limit hit midway is
//! an error, never a shorter snapshot.

mod config;
mod dn;
mod entry;
mod filter;

pub use config::{LdapAttributes, LdapConfig, MAX_PAGE_SIZE};
pub use filter::{equality_filter, escape_filter_value};

use dn::canonical_dn;
use entry::Entry;
use ldap3::adapters::{Adapter, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use scimsync_model::{KeyInterner, Snapshot, SourceAttrs, SourceGroup, SourceId, SourceUser};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// The bind credentials. The password stays wrapped until the bind request is built.
pub struct LdapBind {
    pub dn: String,
    pub password: SecretString,
}

impl fmt::Debug for LdapBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapBind")
            .field("dn", &self.dn)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Why an LDAP read produced no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum LdapSourceError {
    /// `[source.ldap]` cannot be used as written.
    #[error("[source.ldap] {0}")]
    Config(String),
    /// No connection (refused, DNS, TLS, StartTLS, timeout).
    #[error("{url}: cannot connect: {message}")]
    Connect { url: String, message: String },
    /// The server refused the bind.
    #[error("{url}: bind as {dn:?} failed: {message}")]
    Bind {
        url: String,
        dn: String,
        message: String,
    },
    /// The search ended before the server said it was complete: the connection dropped, an
    /// operation timed out, or a size, time or admin limit was hit.
    #[error(
        "{url}: the {what} search under {base:?} stopped after {read} entries: {message}; no snapshot was taken (a partial directory would deprovision people)"
    )]
    Incomplete {
        url: String,
        what: &'static str,
        base: String,
        read: usize,
        message: String,
    },
    /// The server refused the search (bad filter, no such base, insufficient access).
    #[error("{url}: the {what} search under {base:?} failed: {message}")]
    Search {
        url: String,
        what: &'static str,
        base: String,
        message: String,
    },
    /// An entry cannot be a snapshot record (no id, several ids).
    #[error("{url}: entry {dn:?}: {message}")]
    Entry {
        url: String,
        dn: String,
        message: String,
    },
    /// Two entries have the same id.
    #[error("{url}: entries {first:?} and {second:?} have the same id {id:?}")]
    DuplicateId {
        url: String,
        id: String,
        first: String,
        second: String,
    },
}

/// LDAP result codes that mean "you got part of it" (RFC 4511 appendix A).
fn limit_name(rc: u32) -> Option<&'static str> {
    match rc {
        3 => Some("the server's time limit was exceeded (timeLimitExceeded)"),
        4 => Some("the server's size limit was exceeded (sizeLimitExceeded)"),
        11 => Some("an administrative limit was exceeded (adminLimitExceeded)"),
        _ => None,
    }
}

impl LdapConfig {
    /// Checks what can be checked without a server.
    pub fn validate(&self) -> Result<(), LdapSourceError> {
        let scheme = self.url.split("://").next().unwrap_or("");
        if !self.url.contains("://") || !matches!(scheme, "ldap" | "ldaps") {
            return Err(LdapSourceError::Config(format!(
                "url {:?}: expected ldap://host[:port] or ldaps://host[:port]",
                self.url
            )));
        }
        if self.start_tls && scheme == "ldaps" {
            return Err(LdapSourceError::Config(
                "start_tls applies to ldap:// urls; ldaps:// is TLS already".to_owned(),
            ));
        }
        if self.password.is_some() {
            return Err(LdapSourceError::Config(
                "password: a password must never be written in sync.toml; set password_env (an environment variable) or password_file (a file readable only by scimsync)".to_owned(),
            ));
        }
        if self.bind_dn.is_some() && self.bind_dn_env.is_some() {
            return Err(LdapSourceError::Config(
                "set bind_dn or bind_dn_env, not both".to_owned(),
            ));
        }
        let binds = self.bind_dn.is_some() || self.bind_dn_env.is_some();
        let has_password = self.password_env.is_some() || self.password_file.is_some();
        if binds != has_password {
            return Err(LdapSourceError::Config(if binds {
                "a bind DN needs password_env or password_file".to_owned()
            } else {
                "password_env/password_file without bind_dn or bind_dn_env".to_owned()
            }));
        }
        if self.base_dn.trim().is_empty() {
            return Err(LdapSourceError::Config("base_dn is empty".to_owned()));
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(LdapSourceError::Config(format!(
                "page_size = {} must be between 1 and {MAX_PAGE_SIZE}",
                self.page_size
            )));
        }
        for (what, filter) in [
            ("user_filter", &self.user_filter),
            ("group_filter", &self.group_filter),
        ] {
            if what == "group_filter" && filter.is_empty() {
                continue;
            }
            if !balanced(filter) {
                return Err(LdapSourceError::Config(format!(
                    "{what} {filter:?} is not a parenthesised LDAP filter (RFC 4515) such as \"(objectClass=person)\""
                )));
            }
        }
        let a = &self.attributes;
        for (what, names) in [
            ("id", &a.id),
            ("email", &a.email),
            ("group_id", &a.group_id),
            ("group_name", &a.group_name),
        ] {
            if names.iter().all(|n| n.trim().is_empty()) {
                return Err(LdapSourceError::Config(format!(
                    "attributes.{what} names no attribute"
                )));
            }
        }
        Ok(())
    }
}

/// Parentheses balanced and the whole text wrapped in them (escapes are `\xx`, never parens).
fn balanced(filter: &str) -> bool {
    let f = filter.trim();
    if !f.starts_with('(') || !f.ends_with(')') {
        return false;
    }
    let mut depth = 0i64;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 || (depth == 0 && i + 1 != f.len()) {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

/// Reads the whole directory: every user matching `user_filter`, then every group matching
/// `group_filter`. All or nothing.
pub async fn read_ldap(
    cfg: &LdapConfig,
    bind: Option<&LdapBind>,
) -> Result<Snapshot, LdapSourceError> {
    cfg.validate()?;
    let url = cfg.url.clone();
    let settings = LdapConnSettings::new()
        .set_conn_timeout(cfg.timeout)
        .set_starttls(cfg.start_tls);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &cfg.url)
        .await
        .map_err(|e| LdapSourceError::Connect {
            url: url.clone(),
            message: e.to_string(),
        })?;
    // The connection's driver: when it ends (server gone), every pending operation fails, which
    // is how a drop midway surfaces as an error of the search.
    let driver = tokio::spawn(conn.drive());
    let result = read_all(cfg, bind, &mut ldap).await;
    if result.is_ok() {
        // A polite goodbye; the snapshot is already whole, so a failure here changes nothing.
        let _ = tokio::time::timeout(cfg.timeout, ldap.unbind()).await;
    }
    driver.abort();
    result
}

async fn read_all(
    cfg: &LdapConfig,
    bind: Option<&LdapBind>,
    ldap: &mut Ldap,
) -> Result<Snapshot, LdapSourceError> {
    let url = cfg.url.as_str();
    if let Some(bind) = bind {
        let result = ldap
            .with_timeout(cfg.timeout)
            .simple_bind(&bind.dn, bind.password.expose_secret())
            .await
            .and_then(|r| r.success());
        if let Err(e) = result {
            return Err(LdapSourceError::Bind {
                url: url.to_owned(),
                dn: bind.dn.clone(),
                message: e.to_string(),
            });
        }
    }
    let a = &cfg.attributes;

    // Users.
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    for list in [
        &a.id,
        &a.email,
        &a.firstname,
        &a.lastname,
        &a.displayname,
        &a.department,
        &a.employeeidentifier,
        &a.job_title,
        &a.company,
        &a.manager,
        &a.uid,
        &a.lock,
        &a.user_account_control,
    ] {
        wanted.extend(list.iter().map(String::as_str).filter(|n| !n.is_empty()));
    }
    wanted.extend(a.extra.values().map(String::as_str));
    let user_base = cfg.user_base_dn.as_deref().unwrap_or(&cfg.base_dn);
    let entries = search(cfg, ldap, "user", user_base, &cfg.user_filter, &wanted).await?;

    let mut users: Vec<SourceUser> = Vec::with_capacity(entries.len());
    let mut keys = KeyInterner::default();
    let mut by_dn: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    let mut by_uid: HashMap<String, usize> = HashMap::new();
    let mut by_id: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    let mut manager_dns: Vec<Option<String>> = Vec::with_capacity(entries.len());
    for entry in &entries {
        let id = entry.id(&a.id).map_err(|message| LdapSourceError::Entry {
            url: url.to_owned(),
            dn: entry.dn().to_owned(),
            message,
        })?;
        if let Some(&first) = by_id.get(&id) {
            return Err(LdapSourceError::DuplicateId {
                url: url.to_owned(),
                id,
                first: entries[first].dn().to_owned(),
                second: entry.dn().to_owned(),
            });
        }
        by_id.insert(id.clone(), users.len());
        by_dn.insert(canonical_dn(entry.dn()), users.len());
        let mut attrs = SourceAttrs::new();
        let mut put = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                attrs.insert(keys.intern(name), value);
            }
        };
        put("dn", Some(entry.dn().to_owned()));
        put("email", entry.first(&a.email));
        put("firstname", entry.first(&a.firstname));
        put("lastname", entry.first(&a.lastname));
        put("displayname", entry.first(&a.displayname));
        put("department", entry.first(&a.department));
        put("employeeidentifier", entry.first(&a.employeeidentifier));
        put("jobTitle", entry.first(&a.job_title));
        put("company", entry.first(&a.company));
        let uid = entry.first(&a.uid);
        put("uid", uid.clone());
        put("state", Some(entry.state(&a.lock, &a.user_account_control)));
        for (name, ldap_name) in &a.extra {
            put(name, entry.first(std::slice::from_ref(ldap_name)));
        }
        if let Some(uid) = uid {
            by_uid.entry(uid).or_insert(users.len());
        }
        manager_dns.push(entry.first(&a.manager));
        users.push(SourceUser {
            id: SourceId::new(id),
            attrs,
        });
    }
    // Managers are DNs in LDAP and ids in the snapshot. A manager outside the user filter is
    // no user of the snapshot, so the attribute is left out rather than dangling.
    for (index, dn) in manager_dns.into_iter().enumerate() {
        if let Some(&manager) = dn.and_then(|dn| by_dn.get(&canonical_dn(&dn))) {
            let manager_id = users[manager].id.as_str().to_owned();
            users[index]
                .attrs
                .insert(keys.intern("manager"), manager_id);
        }
    }
    drop(entries);

    // Groups.
    let mut groups = Vec::new();
    if !cfg.group_filter.is_empty() {
        let mut wanted: BTreeSet<&str> = BTreeSet::new();
        for list in [&a.group_id, &a.group_name, &a.member, &a.member_uid] {
            wanted.extend(list.iter().map(String::as_str).filter(|n| !n.is_empty()));
        }
        let group_base = cfg.group_base_dn.as_deref().unwrap_or(&cfg.base_dn);
        let entries = search(cfg, ldap, "group", group_base, &cfg.group_filter, &wanted).await?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let located = |message: String| LdapSourceError::Entry {
                url: url.to_owned(),
                dn: entry.dn().to_owned(),
                message,
            };
            let id = entry.id(&a.group_id).map_err(located)?;
            if let Some(&first) = seen.get(&id) {
                return Err(LdapSourceError::DuplicateId {
                    url: url.to_owned(),
                    id,
                    first: entries[first].dn().to_owned(),
                    second: entry.dn().to_owned(),
                });
            }
            seen.insert(id.clone(), index);
            let name = entry.first(&a.group_name).ok_or_else(|| {
                located(format!("has no group name ({})", a.group_name.join(" or ")))
            })?;
            // Members that are not users of the snapshot (nested groups, entries outside the
            // user filter, a DN no entry has) are not provisioned through this group: groups
            // do not nest. They are kept aside, so the cycle can say so instead of dropping
            // them in silence.
            let mut members: Vec<SourceId> = Vec::new();
            let mut unresolved: Vec<String> = Vec::new();
            let mut member_seen: BTreeSet<usize> = BTreeSet::new();
            let by_dn_members = entry
                .all(&a.member)
                .map(|dn| (dn, by_dn.get(&canonical_dn(dn)).copied()));
            let by_uid_members = entry
                .all(&a.member_uid)
                .map(|uid| (uid, by_uid.get(uid.trim()).copied()));
            for (value, user) in by_dn_members.chain(by_uid_members) {
                match user {
                    Some(user) => {
                        if member_seen.insert(user) {
                            members.push(users[user].id.clone());
                        }
                    }
                    None => unresolved.push(value.to_owned()),
                }
            }
            groups.push(SourceGroup {
                id: SourceId::new(id),
                name,
                members,
                unresolved,
            });
        }
    }
    Ok(Snapshot { users, groups })
}

/// One paged subtree search, read to its end and checked. Entries are converted as they
/// arrive; the raw protocol messages are not kept.
async fn search(
    cfg: &LdapConfig,
    ldap: &mut Ldap,
    what: &'static str,
    base: &str,
    filter: &str,
    attrs: &BTreeSet<&str>,
) -> Result<Vec<Entry>, LdapSourceError> {
    let url = cfg.url.as_str();
    let attrs: Vec<String> = attrs.iter().map(|s| (*s).to_owned()).collect();
    let incomplete = |read: usize, message: String| LdapSourceError::Incomplete {
        url: url.to_owned(),
        what,
        base: base.to_owned(),
        read,
        message,
    };
    let page_size = i32::try_from(cfg.page_size).unwrap_or(i32::MAX);
    let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> =
        vec![Box::new(PagedResults::new(page_size))];
    let mut stream = ldap
        .with_timeout(cfg.timeout)
        .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
        .await
        .map_err(|e| LdapSourceError::Search {
            url: url.to_owned(),
            what,
            base: base.to_owned(),
            message: e.to_string(),
        })?;
    let mut entries = Vec::new();
    loop {
        match stream.next().await {
            Ok(Some(raw)) => {
                // Continuation references point at other servers (Active Directory's
                // DomainDnsZones and the like); scimsync does not chase referrals.
                if raw.is_ref() || raw.is_intermediate() {
                    continue;
                }
                entries.push(Entry::new(SearchEntry::construct(raw)));
            }
            Ok(None) => break,
            Err(e) => return Err(incomplete(entries.len(), describe(&e))),
        }
    }
    let done = stream.finish().await;
    match done.rc {
        0 => Ok(entries),
        rc => match limit_name(rc) {
            Some(limit) => Err(incomplete(entries.len(), limit.to_owned())),
            None => Err(LdapSourceError::Search {
                url: url.to_owned(),
                what,
                base: base.to_owned(),
                message: done.to_string(),
            }),
        },
    }
}

fn describe(e: &ldap3::LdapError) -> String {
    match e {
        ldap3::LdapError::Timeout { .. } => "an operation timed out".to_owned(),
        ldap3::LdapError::EndOfStream => "the connection was closed by the server".to_owned(),
        ldap3::LdapError::Io { source } => format!("the connection failed: {source}"),
        ldap3::LdapError::LdapResult { result } => match limit_name(result.rc) {
            Some(limit) => limit.to_owned(),
            None => result.to_string(),
        },
        other => format!("the connection failed: {other}"),
    }
}
