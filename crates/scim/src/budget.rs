//! Rate-limit classes (buckets) and their budgets: requests per window.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A rate-limit class: method × endpoint, with group PATCHes split by body size (miro-scim.md §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// GET /Users (list or filter) and GET /Users/{id}.
    UsersGet,
    /// POST /Users.
    UsersPost,
    /// PUT or PATCH /Users/{id}.
    UsersPutPatch,
    /// DELETE /Users/{id}.
    UsersDelete,
    /// GET /Groups.
    GroupsList,
    /// GET /Groups/{id}.
    GroupsGet,
    /// PATCH /Groups/{id} with a body of at most 500 bytes.
    GroupsPatchSmall,
    /// PATCH /Groups/{id} with a body over 500 bytes.
    GroupsPatchLarge,
    /// POST /Groups and DELETE /Groups/{id} (new group model only; Miro publishes no limit).
    GroupsPostDelete,
    /// Miro's REST API (not SCIM), rate level 1: every call scimsync makes there (teams and
    /// their user groups). Its budget is `[target.rest]`'s, never `[target.rate_limits]`'s.
    #[serde(skip_deserializing)]
    RestLevel1,
}

/// Credits one call of Miro's REST rate level 1 costs.
pub const REST_LEVEL_1_CREDITS: u32 = 50;

/// Miro's REST budget per user and app, in credits per minute.
pub const MIRO_REST_CREDITS_PER_MINUTE: u32 = 100_000;

/// Largest group PATCH body that still counts as small (Miro: "5 if body > 500 bytes").
pub const SMALL_GROUP_PATCH_BYTES: usize = 500;

/// Which SCIM endpoint a request path addresses, for classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/Users`
    Users,
    /// `/Users/{id}`
    User,
    /// `/Groups`
    Groups,
    /// `/Groups/{id}`
    Group,
    /// Discovery (`/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`) or anything else.
    Other,
}

impl Endpoint {
    /// Classifies a path relative to the SCIM base URL (`/Users/123?x=y` → `User`).
    pub fn of_path(path: &str) -> Endpoint {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        match (segments.next(), segments.next(), segments.next()) {
            (Some("Users"), None, _) => Endpoint::Users,
            (Some("Users"), Some(_), None) => Endpoint::User,
            (Some("Groups"), None, _) => Endpoint::Groups,
            (Some("Groups"), Some(_), None) => Endpoint::Group,
            _ => Endpoint::Other,
        }
    }
}

impl Bucket {
    /// The SCIM buckets (the REST one is not a SCIM request's).
    pub const ALL: [Bucket; 9] = [
        Bucket::UsersGet,
        Bucket::UsersPost,
        Bucket::UsersPutPatch,
        Bucket::UsersDelete,
        Bucket::GroupsList,
        Bucket::GroupsGet,
        Bucket::GroupsPatchSmall,
        Bucket::GroupsPatchLarge,
        Bucket::GroupsPostDelete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::UsersGet => "users_get",
            Bucket::UsersPost => "users_post",
            Bucket::UsersPutPatch => "users_put_patch",
            Bucket::UsersDelete => "users_delete",
            Bucket::GroupsList => "groups_list",
            Bucket::GroupsGet => "groups_get",
            Bucket::GroupsPatchSmall => "groups_patch_small",
            Bucket::GroupsPatchLarge => "groups_patch_large",
            Bucket::GroupsPostDelete => "groups_post_delete",
            Bucket::RestLevel1 => "rest_level1",
        }
    }

    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// The bucket a request is charged to. `body_len` only matters for group PATCHes.
    ///
    /// Requests Miro publishes no limit for are charged to the nearest published class rather
    /// than left unpaced: discovery GETs to `UsersGet`, a group PUT (refused by Miro anyway) to
    /// `GroupsPatchLarge`, anything else on users to `UsersPutPatch`.
    pub fn classify(method: &str, endpoint: Endpoint, body_len: usize) -> Bucket {
        let method = method.to_ascii_uppercase();
        match (method.as_str(), endpoint) {
            ("POST", Endpoint::Users) => Bucket::UsersPost,
            ("DELETE", Endpoint::User) => Bucket::UsersDelete,
            ("GET", Endpoint::Groups) => Bucket::GroupsList,
            ("GET", Endpoint::Group) => Bucket::GroupsGet,
            ("PATCH", Endpoint::Group) if body_len <= SMALL_GROUP_PATCH_BYTES => {
                Bucket::GroupsPatchSmall
            }
            ("PATCH" | "PUT", Endpoint::Group) => Bucket::GroupsPatchLarge,
            ("POST", Endpoint::Groups) | ("DELETE", Endpoint::Group) => Bucket::GroupsPostDelete,
            ("GET", _) => Bucket::UsersGet,
            (_, Endpoint::Groups | Endpoint::Group) => Bucket::GroupsPatchLarge,
            _ => Bucket::UsersPutPatch,
        }
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Requests allowed per `window`, per bucket. A bucket absent from `buckets` is unlimited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgets {
    pub window: Duration,
    pub buckets: BTreeMap<Bucket, u32>,
}

impl Budgets {
    /// Miro's published SCIM limits per 30 s (miro-scim.md §8; S4 preferred over the older
    /// Help Center table). POST/DELETE /Groups have no published limit: 20 is a guess.
    pub fn miro() -> Budgets {
        Budgets::miro_scaled(Duration::from_secs(30))
    }

    /// Miro's numbers over another window, so tests against the emulator need not wait 30 s.
    pub fn miro_scaled(window: Duration) -> Budgets {
        let buckets = [
            (Bucket::UsersGet, 200),
            (Bucket::UsersPost, 200),
            (Bucket::UsersPutPatch, 100),
            (Bucket::UsersDelete, 20),
            (Bucket::GroupsList, 5),
            (Bucket::GroupsGet, 20),
            (Bucket::GroupsPatchSmall, 100),
            (Bucket::GroupsPatchLarge, 5),
            (Bucket::GroupsPostDelete, 20),
        ];
        Budgets {
            window,
            buckets: buckets.into_iter().collect(),
        }
    }

    /// Miro's REST API: `credits_per_minute` (Miro: 100 000 per user and app), of which a
    /// level-1 call costs 50 (developers.miro.com "Rate limiting").
    pub fn miro_rest(credits_per_minute: u32) -> Budgets {
        Budgets {
            window: Duration::from_secs(60),
            buckets: [(
                Bucket::RestLevel1,
                (credits_per_minute / REST_LEVEL_1_CREDITS).max(1),
            )]
            .into(),
        }
    }

    /// No bucket limited (generic SPs publish no limits; 429s are still honoured).
    pub fn unlimited() -> Budgets {
        Budgets {
            window: Duration::from_secs(30),
            buckets: BTreeMap::new(),
        }
    }

    /// Requests per window for `bucket`, `None` when unlimited.
    pub fn limit(&self, bucket: Bucket) -> Option<u32> {
        self.buckets.get(&bucket).copied()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn endpoints_from_paths() {
        assert_eq!(Endpoint::of_path("/Users"), Endpoint::Users);
        assert_eq!(Endpoint::of_path("/Users?filter=x"), Endpoint::Users);
        assert_eq!(Endpoint::of_path("/Users/3074"), Endpoint::User);
        assert_eq!(Endpoint::of_path("/Groups/"), Endpoint::Groups);
        assert_eq!(Endpoint::of_path("/Groups/12"), Endpoint::Group);
        assert_eq!(Endpoint::of_path("/ServiceProviderConfig"), Endpoint::Other);
    }

    #[test]
    fn classification_follows_miro_table() {
        use Endpoint::*;
        assert_eq!(Bucket::classify("GET", Users, 0), Bucket::UsersGet);
        assert_eq!(Bucket::classify("get", User, 0), Bucket::UsersGet);
        assert_eq!(Bucket::classify("POST", Users, 900), Bucket::UsersPost);
        assert_eq!(
            Bucket::classify("PATCH", User, 10_000),
            Bucket::UsersPutPatch
        );
        assert_eq!(Bucket::classify("PUT", User, 10), Bucket::UsersPutPatch);
        assert_eq!(Bucket::classify("DELETE", User, 0), Bucket::UsersDelete);
        assert_eq!(Bucket::classify("GET", Groups, 0), Bucket::GroupsList);
        assert_eq!(Bucket::classify("GET", Group, 0), Bucket::GroupsGet);
        assert_eq!(
            Bucket::classify("PATCH", Group, 500),
            Bucket::GroupsPatchSmall
        );
        assert_eq!(
            Bucket::classify("PATCH", Group, 501),
            Bucket::GroupsPatchLarge
        );
        assert_eq!(
            Bucket::classify("POST", Groups, 10),
            Bucket::GroupsPostDelete
        );
        assert_eq!(
            Bucket::classify("DELETE", Group, 0),
            Bucket::GroupsPostDelete
        );
        assert_eq!(Bucket::classify("GET", Other, 0), Bucket::UsersGet);
    }

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for b in Bucket::ALL {
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{}\"", b.as_str()));
            assert_eq!(Bucket::parse(b.as_str()), Some(b));
        }
    }

    #[test]
    fn the_rest_bucket_is_never_a_scim_one_nor_configured_with_them() {
        assert!(!Bucket::ALL.contains(&Bucket::RestLevel1));
        let rest = Budgets::miro_rest(MIRO_REST_CREDITS_PER_MINUTE);
        assert_eq!(rest.limit(Bucket::RestLevel1), Some(2000));
        assert_eq!(rest.window, Duration::from_secs(60));
        assert!(serde_json::from_str::<Bucket>("\"rest_level1\"").is_err());
    }

    #[test]
    fn miro_budgets_match_the_published_table() {
        let b = Budgets::miro();
        assert_eq!(b.window, Duration::from_secs(30));
        assert_eq!(b.limit(Bucket::UsersGet), Some(200));
        assert_eq!(b.limit(Bucket::UsersDelete), Some(20));
        assert_eq!(b.limit(Bucket::GroupsList), Some(5));
        assert_eq!(b.buckets.len(), Bucket::ALL.len());
        assert!(Budgets::unlimited().buckets.is_empty());
    }
}
