//! Updating one user as the target allows, sans-IO (`Update`, driven by `machine.rs`): PATCH
//! when it supports PATCH, otherwise GET the whole resource, apply the changes and PUT it back
//! (RFC 7644 §3.5.1); with ETags, `If-Match` carries the version last read, and a 412 re-reads
//! the user, re-diffs the changes against what it holds now, and tries once more.

use crate::client::{Expect, Reply, Request, user_path, version_in};
use crate::error::ScimError;
use crate::machine::{IfMatch, Outgoing};
use reqwest::Method;
use scimsync_model::{AttrValue, Change, ScimId, TargetUser, paths};
use scimsync_scim::{Profile, apply_changes, patch_body_adding, target_user};
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
pub(crate) fn names_an_attribute(error: &ScimError) -> Option<&str> {
    let ScimError::BadRequest { scim_type, .. } = error else {
        return None;
    };
    let t = scim_type.as_deref()?;
    ["invalidPath", "invalidValue", "mutability", "noTarget"]
        .iter()
        .any(|k| t.eq_ignore_ascii_case(k))
        .then_some(t)
}

/// What the target allows for writing a user: PATCH (else GET + PUT), and ETags (`If-Match`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Writes {
    pub(crate) patch: bool,
    pub(crate) etag: bool,
}

/// What an update wants next: a request (retried like any, `send_if_match`), or its end.
pub(crate) enum UpNext {
    Send(Outgoing),
    Finished(Result<Applied, ScimError>),
}

/// Which answer the update waits for.
enum Stage {
    /// The PATCH, or the PUT.
    Write,
    /// The GET before a PUT.
    PutRead,
    /// The GET after a 412.
    Reread,
}

/// Applying `changes` to one target user, sans-IO: PATCH when the target supports PATCH,
/// otherwise GET the whole user, apply the changes and PUT it back. A 400 `invalidPath`/
/// `invalidValue`/`mutability` naming one attribute drops that change and sends the rest
/// again; a 400 `noTarget` for a value path (`emails[type eq "work"].value`) sends it as an
/// `add` of the entry instead; a 412 (ETags) re-reads the user and re-diffs once. Bounded:
/// every round removes a change, converts one, or is the single re-read.
pub(crate) struct Update {
    id: ScimId,
    changes: Vec<Change>,
    dropped: Vec<Dropped>,
    add_entries: BTreeSet<String>,
    reread: bool,
    rounds_left: usize,
    writes: Writes,
    stage: Stage,
}

impl Update {
    pub(crate) fn new(id: ScimId, changes: Vec<Change>, writes: Writes) -> Self {
        Update {
            id,
            rounds_left: 2 * changes.len() + 2,
            changes,
            dropped: Vec::new(),
            add_entries: BTreeSet::new(),
            reread: false,
            writes,
            stage: Stage::Write,
        }
    }

    /// The first request (or the next round's).
    pub(crate) fn start(&mut self, profile: &Profile) -> UpNext {
        let Some(left) = self.rounds_left.checked_sub(1) else {
            return UpNext::Finished(Err(ScimError::BadRequest {
                detail: Some("the target kept refusing the update".into()),
                scim_type: None,
            }));
        };
        self.rounds_left = left;
        if self.writes.patch {
            self.stage = Stage::Write;
            let body = patch_body_adding(&self.changes, profile, &self.add_entries);
            UpNext::Send(self.write(Method::PATCH, &body))
        } else {
            self.stage = Stage::PutRead;
            UpNext::Send(Outgoing::plain(self.get()))
        }
    }

    /// Takes the answer to the request last sent; versions of the user it learns go to
    /// `learned` (for the client's `If-Match`).
    pub(crate) fn answer(
        &mut self,
        profile: &Profile,
        answer: Result<Reply, ScimError>,
        learned: &mut Vec<(ScimId, String)>,
    ) -> UpNext {
        match (&self.stage, answer) {
            (Stage::Write, Ok(reply)) => {
                after_write(
                    &self.id,
                    reply.json.as_ref(),
                    reply.etag.as_deref(),
                    learned,
                );
                self.applied()
            }
            (Stage::PutRead, Ok(reply)) => {
                let etag = reply.etag.clone();
                let resource: serde_json::Value = match reply.decode() {
                    Ok(resource) => resource,
                    Err(e) => return self.refused(profile, e),
                };
                learned.extend(version_in(&resource, etag.as_deref()));
                self.stage = Stage::Write;
                let body = apply_changes(&resource, &self.changes, profile);
                UpNext::Send(self.write(Method::PUT, &body))
            }
            (Stage::Reread, Ok(reply)) => {
                let etag = reply.etag.clone();
                let current = reply.decode::<serde_json::Value>().and_then(|value| {
                    learned.extend(version_in(&value, etag.as_deref()));
                    target_user(&value, profile).map_err(|e| ScimError::Decode {
                        message: e.to_string(),
                    })
                });
                match current {
                    Ok(current) => {
                        self.changes = rediff(&self.changes, &current);
                        if self.changes.is_empty() {
                            return self.applied();
                        }
                        self.start(profile)
                    }
                    Err(e) => UpNext::Finished(Err(e)),
                }
            }
            (Stage::Reread, Err(e)) => UpNext::Finished(Err(e)),
            (Stage::Write | Stage::PutRead, Err(e)) => self.refused(profile, e),
        }
    }

    fn applied(&mut self) -> UpNext {
        UpNext::Finished(Ok(Applied {
            changes: std::mem::take(&mut self.changes),
            dropped: std::mem::take(&mut self.dropped),
        }))
    }

    /// A write (or the read before a PUT) failed: a 412 re-reads once, a 400 naming one
    /// attribute drops or converts it, anything else ends the update.
    fn refused(&mut self, profile: &Profile, error: ScimError) -> UpNext {
        if let ScimError::PreconditionFailed { .. } = error {
            if self.reread {
                return UpNext::Finished(Err(ScimError::PreconditionFailed {
                    detail: Some("the user changed again while it was being updated".into()),
                }));
            }
            self.reread = true;
            tracing::info!(id = %self.id, "412: the user changed since it was read; re-reading it");
            self.stage = Stage::Reread;
            return UpNext::Send(Outgoing::plain(self.get()));
        }
        let Some(scim_type) = names_an_attribute(&error).map(str::to_owned) else {
            return UpNext::Finished(Err(error));
        };
        let Some(path) =
            named_path(&error, self.changes.iter().map(|c| c.path.as_str())).map(str::to_owned)
        else {
            return UpNext::Finished(Err(error));
        };
        if scim_type.eq_ignore_ascii_case("noTarget") {
            // A value path with no entry to replace: add the entry, once.
            if path.contains('[') && self.add_entries.insert(path.clone()) {
                return self.start(profile);
            }
            return UpNext::Finished(Err(error));
        }
        tracing::info!(id = %self.id, path = %path, "the target refused one attribute; sending the rest");
        self.dropped.push(Dropped {
            path: path.clone(),
            scim_type: Some(scim_type),
            detail: error.detail().unwrap_or_default().to_owned(),
        });
        self.changes.retain(|c| c.path != path);
        if self.changes.is_empty() {
            // Nothing left the target takes: the caller says what that means.
            return self.applied();
        }
        self.start(profile)
    }

    fn get(&self) -> Request {
        Request::get(user_path(&self.id), Expect::User(Some(self.id.clone())))
    }

    /// A PATCH or PUT of the user, with `If-Match` carrying its version where the target has
    /// ETags.
    fn write(&self, method: Method, body: &serde_json::Value) -> Outgoing {
        let request = Request::with_json(
            method,
            user_path(&self.id),
            body,
            Expect::User(Some(self.id.clone())),
        );
        Outgoing {
            request,
            if_match: self
                .writes
                .etag
                .then(|| IfMatch::VersionOf(self.id.clone())),
        }
    }
}

/// The version of what a write returned (200 with the resource, or 204 with an ETag header),
/// so a later write of the same cycle sends the right `If-Match`.
fn after_write(
    id: &ScimId,
    body: Option<&serde_json::Value>,
    etag: Option<&str>,
    learned: &mut Vec<(ScimId, String)>,
) {
    match body {
        Some(resource) if resource.get("id").is_some() => {
            learned.extend(version_in(resource, etag));
        }
        _ => {
            if let Some(etag) = etag {
                learned.push((id.clone(), etag.to_owned()));
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
