//! What the target takes of the mapping. A generic target's `/ServiceProviderConfig`,
//! `/Schemas` and `/ResourceTypes` are read on the first cycle, on every full cycle and by
//! `scimsync check`, and cached in the store with the run; other cycles use the cache and ask
//! nothing. A mapped attribute the target does not declare (or declares read-only), or one it
//! refused with 400 `invalidPath`, is left out of the mapping: never sent, never compared, shown
//! once by `plan` and in one `target_attribute_unsupported` event, not a failure per user.

use crate::EngineError;
use crate::config::Config;
use scimsync_directory::{Mapping, MappingError};
use scimsync_executor::ScimClient;
use scimsync_model::RunId;
use scimsync_scim::{Discovery, Support, TargetSchema};
use scimsync_store::{Store, StoreError};
use std::collections::BTreeMap;

/// Meta key of the attributes the target refused with 400 `invalidPath`/`mutability`: a JSON
/// object, path → the target's words. Kept until the target's discovery documents change or
/// `scimsync check` reads them again.
pub const REFUSED_ATTRIBUTES: &str = "refused_attributes";

/// A mapped attribute the target does not take, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unsupported {
    pub path: String,
    pub reason: String,
}

/// What a cycle knows of the target's declarations.
#[derive(Clone, Debug, Default)]
pub struct Fit {
    pub discovery: Discovery,
    /// Read from the target this cycle (else the store's cache, or nothing for a profile with
    /// documented capabilities).
    pub fresh: bool,
    /// Mapped attributes left out, in path order.
    pub unsupported: Vec<Unsupported>,
    /// Whether groups are created with their members in the POST.
    pub members_on_create: bool,
}

/// The mapping as sync.toml and the profile define it: roles only where the profile always
/// sends them or `[roles]` maps them, and the work email where the target stores emails.
pub fn base_mapping(config: &Config) -> Result<Mapping, MappingError> {
    let profile = config.profile();
    let roles = match profile.roles {
        scimsync_scim::RoleRule::Always { .. } => Some(config.roles.values()),
        scimsync_scim::RoleRule::WhenMapped => {
            config.roles.is_mapped().then(|| config.roles.values())
        }
    };
    Ok(Mapping::compile(&config.mapping)?
        .with_roles(roles)
        .with_work_email(profile.manages_emails())
        .with_target_rules(profile.limits.clone(), profile.licence.clone())
        .with_admin_roles(
            profile.admin_role_type.as_deref(),
            config.roles.admin_roles.values().flatten().cloned(),
        ))
}

/// The discovery this cycle uses, handed to the client (capabilities and schema): read from
/// the target when `read` (a full cycle) or when the store has none; otherwise the store's.
pub async fn discover(
    store: &Store,
    client: &ScimClient,
    read: bool,
) -> Result<(Discovery, bool), EngineError> {
    if client.profile().fixed_capabilities.is_some() {
        return Ok((Discovery::default(), false));
    }
    let cached = store
        .discovery()?
        .and_then(|c| serde_json::from_str::<Discovery>(&c.document).ok());
    let (discovery, fresh) = match cached {
        Some(cached) if !read => (cached, false),
        _ => (
            client.discover().await.map_err(EngineError::target(
                "reading the target's /ServiceProviderConfig, /Schemas and /ResourceTypes",
            ))?,
            true,
        ),
    };
    client.use_discovery(&discovery);
    Ok((discovery, fresh))
}

/// Stores a discovery read this cycle (`run_id`; `None` for `check`). A target whose documents
/// changed gets its refused attributes tried again.
pub fn remember(
    store: &mut Store,
    run_id: Option<RunId>,
    discovery: &Discovery,
    forget_refused: bool,
) -> Result<(), EngineError> {
    let document = serde_json::to_string(discovery).map_err(|source| EngineError::Encode {
        what: "the target's discovery",
        source,
    })?;
    let changed = store
        .discovery()?
        .is_none_or(|cached| cached.document != document);
    if changed || forget_refused {
        store.remove_meta(REFUSED_ATTRIBUTES)?;
    }
    store.save_discovery(run_id, &document)?;
    Ok(())
}

/// The attributes the target refused in earlier cycles (path → its words).
pub fn refused(store: &Store) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(store
        .meta(REFUSED_ATTRIBUTES)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

/// Remembers that the target refused `path`; `true` when it was not known yet.
pub fn remember_refused(store: &mut Store, path: &str, detail: &str) -> Result<bool, EngineError> {
    let mut known = refused(store)?;
    if known.contains_key(path) {
        return Ok(false);
    }
    known.insert(path.to_owned(), detail.to_owned());
    let known = serde_json::to_string(&known).map_err(|source| EngineError::Encode {
        what: "the refused attributes",
        source,
    })?;
    store.set_meta(REFUSED_ATTRIBUTES, &known)?;
    Ok(true)
}

/// `mapping` without what the target does not take: undeclared or read-only attributes, and
/// the ones it refused before.
pub fn fit(
    mut mapping: Mapping,
    schema: &TargetSchema,
    refused: &BTreeMap<String, String>,
) -> (Mapping, Vec<Unsupported>) {
    let mut unsupported = Vec::new();
    let paths: Vec<String> = mapping.paths().map(str::to_owned).collect();
    for path in paths {
        let reason = match schema.user_support(&path) {
            Support::Unsupported { reason } => Some(reason),
            Support::Supported | Support::Unknown => refused
                .get(&path)
                .map(|detail| format!("the target refused it (400): {detail}")),
        };
        if let Some(reason) = reason {
            mapping.unmap(&path);
            unsupported.push(Unsupported { path, reason });
        }
    }
    (mapping, unsupported)
}

/// The line `plan` prints, and the event says, for one attribute left out.
pub fn describe(u: &Unsupported) -> String {
    format!(
        "{}: not supported by the target ({}); not sent. Unmap it to silence this: \"{}\" = \"\" under [mapping]",
        u.path, u.reason, u.path
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scimsync_model::paths;
    use serde_json::json;

    #[test]
    fn undeclared_and_refused_attributes_leave_the_mapping() {
        let schemas = json!([{"id": scimsync_scim::USER_SCHEMA, "attributes": [
            {"name": "userName"}, {"name": "displayName"}, {"name": "title"},
            {"name": "name", "subAttributes": [{"name": "givenName"}, {"name": "familyName"}]},
            {"name": "emails", "subAttributes": [{"name": "value"}, {"name": "type"}]}]}]);
        let types = json!([{"name": "User", "schema": scimsync_scim::USER_SCHEMA}]);
        let schema = TargetSchema::read(Some(&schemas), Some(&types));
        let mapping = Mapping::compile(&Default::default())
            .unwrap()
            .with_roles(None)
            .with_work_email(true);
        let refused: BTreeMap<String, String> =
            [(paths::DISPLAY_NAME.to_owned(), "Invalid path".to_owned())].into();
        let (fitted, unsupported) = fit(mapping, &schema, &refused);
        let left: Vec<&str> = fitted.paths().collect();
        assert_eq!(
            left,
            [paths::FAMILY_NAME, paths::GIVEN_NAME, paths::WORK_EMAIL]
        );
        let gone: Vec<&str> = unsupported.iter().map(|u| u.path.as_str()).collect();
        assert!(gone.contains(&paths::DEPARTMENT) && gone.contains(&paths::MANAGER));
        assert!(gone.contains(&paths::DISPLAY_NAME), "refused before");
        let line = describe(&unsupported[0]);
        assert!(line.contains("not supported by the target"), "{line}");
        assert!(line.contains("= \"\" under [mapping]"), "{line}");
        // Nothing declared: nothing left out.
        let (_, none) = fit(
            Mapping::compile(&Default::default()).unwrap(),
            &TargetSchema::default(),
            &BTreeMap::new(),
        );
        assert!(none.is_empty());
    }
}
