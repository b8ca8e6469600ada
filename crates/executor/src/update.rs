//! Updating one user as the target allows: PATCH when it supports PATCH, otherwise GET the
//! whole resource, apply the changes and PUT it back (RFC 7644 §3.5.1); with ETags, `If-Match`
//! carries the version last read, and a 412 re-reads the user, re-diffs the changes against
//! what it holds now, and tries once more.

use crate::client::{Expect, Request, ScimClient, Tally, Trace, user_path};
use crate::error::ScimError;
use reqwest::Method;
use scimsync_model::{AttrValue, Change, ScimId, TargetUser, paths};
use scimsync_scim::{apply_changes, patch_body_adding};
use std::collections::BTreeSet;

/// One attribute the target refused (400 naming it), left out of the write so the rest goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub path: String,
    pub scim_type: Option<String>,
    /// The target's words (untrusted text, already redacted and capped).
    pub detail: String,
}

impl Dropped {
    /// Whether the target refuses the attribute itself, for every user (`invalidPath`,
    /// `mutability`), rather than this user's value (`invalidValue`).
    pub fn refuses_attribute(&self) -> bool {
        self.scim_type.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("invalidPath") || t.eq_ignore_ascii_case("mutability")
        })
    }
}

/// What an update did: the changes the target took, and the ones it refused (every one of
/// them when `changes` is empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) changes: Vec<Change>,
    pub(crate) dropped: Vec<Dropped>,
}

/// How a 400 on a write reads: which of `paths` it names, when exactly one.
pub(crate) fn named_path<'a>(
    error: &ScimError,
    paths: impl Iterator<Item = &'a str> + Clone,
) -> Option<&'a str> {
    let ScimError::BadRequest { detail, .. } = error else {
        return None;
    };
    let detail = detail.as_deref()?;
    let lower = detail.to_ascii_lowercase();
    // The whole path first (SPs quote what they were sent), then a quoted attribute name
    // (`'department'`), the last segment of an extension path.
    let whole: Vec<&str> = paths
        .clone()
        .filter(|p| lower.contains(&p.to_ascii_lowercase()))
        .collect();
    if let [one] = whole.as_slice() {
        return Some(one);
    }
    let named: Vec<&str> = paths
        .filter(|p| {
            let short = p.rsplit(':').next().unwrap_or(p).to_ascii_lowercase();
            let head = short.split(['.', '[']).next().unwrap_or(&short).to_owned();
            [short, head].iter().any(|name| {
                ["'", "\""]
                    .iter()
                    .any(|q| lower.contains(&format!("{q}{name}{q}")))
            })
        })
        .collect();
    match named.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// The SCIM types of a 400 that name one attribute of the request.
fn names_an_attribute(error: &ScimError) -> Option<&str> {
    let ScimError::BadRequest { scim_type, .. } = error else {
        return None;
    };
    let t = scim_type.as_deref()?;
    ["invalidPath", "invalidValue", "mutability", "noTarget"]
        .iter()
        .any(|k| t.eq_ignore_ascii_case(k))
        .then_some(t)
}

impl ScimClient {
    /// Applies `changes` to the target user `id`. A 400 `invalidPath`/`invalidValue`/
    /// `mutability` naming one attribute drops that change and sends the rest again; a 400
    /// `noTarget` for a value path (`emails[type eq "work"].value`) sends it as an `add` of
    /// the entry instead; a 412 (ETags) re-reads the user and re-diffs once. Bounded: every
    /// round removes a change, converts one, or is the single re-read.
    pub(crate) async fn update_user(
        &self,
        id: &ScimId,
        changes: &[Change],
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<Applied, ScimError> {
        let caps = self.capabilities().await;
        let mut changes = changes.to_vec();
        let mut dropped = Vec::new();
        let mut add_entries: BTreeSet<String> = BTreeSet::new();
        let mut reread = false;
        let rounds = 2 * changes.len() + 2;
        for _ in 0..rounds {
            let result = if caps.patch {
                let version = caps.etag.then(|| self.version_of(id)).flatten();
                let body = patch_body_adding(&changes, self.profile(), &add_entries);
                let req = Request::with_json(
                    Method::PATCH,
                    user_path(id),
                    &body,
                    Expect::User(Some(id.clone())),
                );
                self.send_if_match(&req, version.as_deref(), tally, trace)
                    .await
                    .map(|reply| self.after_write(id, reply.json.as_ref(), reply.etag.as_deref()))
            } else {
                self.put_user(id, &changes, caps.etag, tally, trace).await
            };
            let error = match result {
                Ok(()) => return Ok(Applied { changes, dropped }),
                Err(e) => e,
            };
            if let ScimError::PreconditionFailed { .. } = error {
                if reread {
                    return Err(ScimError::PreconditionFailed {
                        detail: Some("the user changed again while it was being updated".into()),
                    });
                }
                reread = true;
                tracing::info!(%id, "412: the user changed since it was read; re-reading it");
                let current = self.get_user_with(id, tally, trace).await?;
                changes = rediff(&changes, &current);
                if changes.is_empty() {
                    return Ok(Applied { changes, dropped });
                }
                continue;
            }
            let Some(scim_type) = names_an_attribute(&error).map(str::to_owned) else {
                return Err(error);
            };
            let Some(path) =
                named_path(&error, changes.iter().map(|c| c.path.as_str())).map(str::to_owned)
            else {
                return Err(error);
            };
            if scim_type.eq_ignore_ascii_case("noTarget") {
                // A value path with no entry to replace: add the entry, once.
                if path.contains('[') && add_entries.insert(path.clone()) {
                    continue;
                }
                return Err(error);
            }
            tracing::info!(%id, path = %path, "the target refused one attribute; sending the rest");
            dropped.push(Dropped {
                path: path.clone(),
                scim_type: Some(scim_type),
                detail: error.detail().unwrap_or_default().to_owned(),
            });
            changes.retain(|c| c.path != path);
            if changes.is_empty() {
                // Nothing left the target takes: the caller says what that means.
                return Ok(Applied { changes, dropped });
            }
        }
        Err(ScimError::BadRequest {
            detail: Some("the target kept refusing the update".into()),
            scim_type: None,
        })
    }

    /// GET the whole user, apply the changes, PUT it back (with `If-Match` when ETags are on).
    async fn put_user(
        &self,
        id: &ScimId,
        changes: &[Change],
        etag: bool,
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<(), ScimError> {
        let reply = self
            .send(
                &Request::get(user_path(id), Expect::User(Some(id.clone()))),
                tally,
                trace,
            )
            .await?;
        let etag_read = reply.etag.clone();
        let resource: serde_json::Value = reply.decode()?;
        self.remember_version(&resource, etag_read.as_deref());
        let version = etag.then(|| self.version_of(id)).flatten();
        let body = apply_changes(&resource, changes, self.profile());
        let req = Request::with_json(
            Method::PUT,
            user_path(id),
            &body,
            Expect::User(Some(id.clone())),
        );
        let reply = self
            .send_if_match(&req, version.as_deref(), tally, trace)
            .await?;
        self.after_write(id, reply.json.as_ref(), reply.etag.as_deref());
        Ok(())
    }

    /// Keeps the version of what a write returned (200 with the resource, or 204 with an ETag
    /// header), so a later write of the same cycle sends the right `If-Match`.
    fn after_write(&self, id: &ScimId, body: Option<&serde_json::Value>, etag: Option<&str>) {
        match body {
            Some(resource) if resource.get("id").is_some() => self.remember_version(resource, etag),
            _ => {
                if let (Some(etag), Ok(mut versions)) = (etag, self.inner_versions()) {
                    versions.insert(id.clone(), etag.to_owned());
                }
            }
        }
    }
}

/// The changes whose new value `current` does not hold yet, with `old` set to what it holds.
/// userName compares case-insensitively, as everywhere.
pub(crate) fn rediff(changes: &[Change], current: &TargetUser) -> Vec<Change> {
    changes
        .iter()
        .filter_map(|change| {
            let now: Option<AttrValue> = match change.path.as_str() {
                paths::USER_NAME => Some(AttrValue::text(&current.user_name)),
                paths::ACTIVE => Some(AttrValue::text(current.active.to_string())),
                path => current.attrs.get(path).cloned(),
            };
            let same = match (&now, &change.new) {
                (Some(AttrValue::Text(a)), Some(AttrValue::Text(b)))
                    if change.path == paths::USER_NAME || change.path == paths::ACTIVE =>
                {
                    a.eq_ignore_ascii_case(b)
                }
                (a, b) => a == b,
            };
            (!same).then(|| Change {
                path: change.path.clone(),
                old: now,
                new: change.new.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimsync_model::Attrs;

    fn bad_request(scim_type: &str, detail: &str) -> ScimError {
        ScimError::BadRequest {
            detail: Some(detail.to_owned()),
            scim_type: Some(scim_type.to_owned()),
        }
    }

    #[test]
    fn a_400_names_one_attribute_or_none() {
        let dept = paths::DEPARTMENT;
        let sent = [paths::DISPLAY_NAME, dept, paths::TITLE, paths::WORK_EMAIL];
        // SCIMMY quotes the whole path.
        let scimmy = bad_request(
            "invalidPath",
            &format!(
                "Invalid path '{dept}' for 'replace' op of operation 2 in PatchOp request body"
            ),
        );
        assert_eq!(named_path(&scimmy, sent.iter().copied()), Some(dept));
        // Others quote the attribute's name.
        let short = bad_request("invalidValue", "Attribute 'title' is too long");
        assert_eq!(named_path(&short, sent.iter().copied()), Some(paths::TITLE));
        let email = bad_request(
            "noTarget",
            r#"Filter 'emails[type eq "work"].value' does not match any values"#,
        );
        assert_eq!(
            named_path(&email, sent.iter().copied()),
            Some(paths::WORK_EMAIL)
        );
        // Nothing named, or two: no guess.
        let vague = bad_request("invalidValue", "the request is invalid");
        assert_eq!(named_path(&vague, sent.iter().copied()), None);
        let two = bad_request("invalidPath", "'title' and 'displayName' are unknown");
        assert_eq!(named_path(&two, sent.iter().copied()), None);
        assert_eq!(names_an_attribute(&two), Some("invalidPath"));
        assert_eq!(names_an_attribute(&bad_request("invalidSyntax", "x")), None);
    }

    #[test]
    fn rediff_keeps_only_what_is_still_different() {
        let mut attrs = Attrs::new();
        attrs.insert(paths::TITLE.into(), AttrValue::text("CTO"));
        let current = TargetUser {
            id: ScimId::new("1"),
            user_name: "Ann@New.com".into(),
            active: true,
            attrs,
        };
        let change = |path: &str, new: &str| Change {
            path: path.to_owned(),
            old: None,
            new: Some(AttrValue::text(new)),
        };
        let changes = [
            change(paths::USER_NAME, "ann@new.com"),
            change(paths::ACTIVE, "false"),
            change(paths::TITLE, "CTO"),
            change(paths::DISPLAY_NAME, "Ann Lee"),
        ];
        let left = rediff(&changes, &current);
        let paths_left: Vec<_> = left.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths_left, [paths::ACTIVE, paths::DISPLAY_NAME]);
        assert_eq!(left[0].old, Some(AttrValue::text("true")));
    }
}
