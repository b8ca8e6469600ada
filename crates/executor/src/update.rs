//! Updating one user as the target allows: PATCH when it supports PATCH, otherwise GET the
//! whole resource, apply the changes and PUT it back (RFC 7644 §3.5.1); with ETags, `If-Match`
//! carries the version last read, and a 412 re-reads the user, re-diffs the changes against
//! what it holds now, and tries once more.

use crate::client::{Expect, Request, ScimClient, Tally, Trace, user_path};
use crate::error::ScimError;
use reqwest::Method;
use scimsync_model::{AttrValue, Change, ScimId, TargetUser, paths};
use scimsync_scim::{apply_changes, patch_body};

impl ScimClient {
    /// Applies `changes` to the target user `id`. `Ok` also when a re-read after a 412 shows
    /// the target already holds every new value.
    pub(crate) async fn update_user(
        &self,
        id: &ScimId,
        changes: &[Change],
        tally: &Tally,
        trace: &mut Trace,
    ) -> Result<(), ScimError> {
        let caps = self.capabilities().await;
        let mut changes = changes.to_vec();
        // Two rounds at most: the first, and one after a 412.
        for round in 0..2 {
            let result = if caps.patch {
                let version = caps.etag.then(|| self.version_of(id)).flatten();
                let body = patch_body(&changes, self.profile());
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
            match result {
                Err(ScimError::PreconditionFailed { .. }) if round == 0 => {
                    tracing::info!(%id, "412: the user changed since it was read; re-reading it");
                    let current = self.get_user_with(id, tally, trace).await?;
                    changes = rediff(&changes, &current);
                    if changes.is_empty() {
                        return Ok(());
                    }
                }
                other => return other,
            }
        }
        Err(ScimError::PreconditionFailed {
            detail: Some("the user changed again while it was being updated".into()),
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
