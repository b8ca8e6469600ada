//! What a service provider says it supports (`GET /ServiceProviderConfig`, RFC 7643 §5), and
//! sync.toml's `[target.capabilities]` overrides of it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Features of the SP the client adapts to. `sort`, `bulk` and `change_password` are reported
/// only: the client neither sorts nor batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// PATCH supported; without it updates go as GET + PUT of the whole resource.
    pub patch: bool,
    pub bulk: bool,
    pub bulk_max_operations: Option<u32>,
    pub filter: bool,
    /// Most resources the SP returns per response; the client never asks for more per page.
    pub filter_max_results: Option<usize>,
    /// ETags supported: writes carry `If-Match` with the version last read.
    pub etag: bool,
    pub sort: bool,
    pub change_password: bool,
    /// Where these values came from.
    pub source: CapabilitySource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapabilitySource {
    /// Read from the SP's `/ServiceProviderConfig`.
    Discovered,
    /// The SP serves no readable `/ServiceProviderConfig`: RFC 7644's mandatory features
    /// (PATCH is optional but nearly universal) and nothing else.
    Assumed,
    /// Fixed by the profile (Miro's are documented, not discovered: miro-scim.md).
    Profile,
}

impl CapabilitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            CapabilitySource::Discovered => "discovered",
            CapabilitySource::Assumed => "assumed",
            CapabilitySource::Profile => "profile",
        }
    }
}

impl Capabilities {
    /// When discovery fails: PATCH and filters on, optional extras off.
    pub fn assumed() -> Capabilities {
        Capabilities {
            patch: true,
            bulk: false,
            bulk_max_operations: None,
            filter: true,
            filter_max_results: None,
            etag: false,
            sort: false,
            change_password: false,
            source: CapabilitySource::Assumed,
        }
    }

    /// Miro, as documented: PATCH and filters, no ETags, no bulk, pages of at most 100.
    pub fn miro() -> Capabilities {
        Capabilities {
            filter_max_results: Some(100),
            source: CapabilitySource::Profile,
            ..Capabilities::assumed()
        }
    }

    /// Reads a `ServiceProviderConfig` leniently: an absent or malformed feature counts as not
    /// supported, except `patch` and `filter`, which stay as assumed unless the SP says `false`.
    pub fn from_service_provider_config(spc: &Value) -> Capabilities {
        let supported = |key: &str| {
            spc.get(key)
                .and_then(|f| f.get("supported"))
                .and_then(bool_of)
        };
        let number = |key: &str, field: &str| {
            spc.get(key)
                .and_then(|f| f.get(field))
                .and_then(|v| match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                })
        };
        Capabilities {
            patch: supported("patch").unwrap_or(true),
            bulk: supported("bulk").unwrap_or(false),
            bulk_max_operations: number("bulk", "maxOperations")
                .and_then(|n| u32::try_from(n).ok()),
            filter: supported("filter").unwrap_or(true),
            filter_max_results: number("filter", "maxResults")
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0),
            etag: supported("etag").unwrap_or(false),
            sort: supported("sort").unwrap_or(false),
            change_password: supported("changePassword").unwrap_or(false),
            source: CapabilitySource::Discovered,
        }
    }
}

/// Some SPs send `"true"` for `true`.
fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// `[target.capabilities]`: each key set here wins over what the SP announces (SPs that
/// announce features they lack, or lack a `/ServiceProviderConfig`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityOverrides {
    pub patch: Option<bool>,
    pub bulk: Option<bool>,
    pub filter: Option<bool>,
    pub filter_max_results: Option<usize>,
    pub etag: Option<bool>,
    pub sort: Option<bool>,
}

impl CapabilityOverrides {
    pub fn is_empty(&self) -> bool {
        *self == CapabilityOverrides::default()
    }

    /// The names of the keys set, for reports.
    pub fn keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let set = [
            ("patch", self.patch.is_some()),
            ("bulk", self.bulk.is_some()),
            ("filter", self.filter.is_some()),
            ("filter_max_results", self.filter_max_results.is_some()),
            ("etag", self.etag.is_some()),
            ("sort", self.sort.is_some()),
        ];
        for (key, is_set) in set {
            if is_set {
                keys.push(key);
            }
        }
        keys
    }

    pub fn apply(&self, mut caps: Capabilities) -> Capabilities {
        if let Some(v) = self.patch {
            caps.patch = v;
        }
        if let Some(v) = self.bulk {
            caps.bulk = v;
        }
        if let Some(v) = self.filter {
            caps.filter = v;
        }
        if let Some(v) = self.filter_max_results {
            caps.filter_max_results = Some(v.max(1));
        }
        if let Some(v) = self.etag {
            caps.etag = v;
        }
        if let Some(v) = self.sort {
            caps.sort = v;
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_an_rfc_service_provider_config() {
        let spc = json!({
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576},
            "filter": {"supported": true, "maxResults": 200},
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            "etag": {"supported": "true"},
        });
        let caps = Capabilities::from_service_provider_config(&spc);
        assert!(caps.patch && caps.bulk && caps.filter && caps.etag && caps.sort);
        assert!(!caps.change_password);
        assert_eq!(caps.bulk_max_operations, Some(1000));
        assert_eq!(caps.filter_max_results, Some(200));
        assert_eq!(caps.source, CapabilitySource::Discovered);
    }

    #[test]
    fn absent_features_are_lenient() {
        let caps = Capabilities::from_service_provider_config(&json!({"patch": {}}));
        assert!(caps.patch && caps.filter);
        assert!(!caps.etag && !caps.bulk && !caps.sort);
        assert_eq!(caps.filter_max_results, None);
        let no_patch =
            Capabilities::from_service_provider_config(&json!({"patch": {"supported": false}}));
        assert!(!no_patch.patch);
    }

    #[test]
    fn overrides_win() {
        let spc = json!({"patch": {"supported": true}, "etag": {"supported": false},
                         "filter": {"supported": true, "maxResults": 1000}});
        let toml_like = json!({"patch": false, "etag": true, "filter_max_results": 50});
        let overrides: CapabilityOverrides = serde_json::from_value(toml_like).unwrap();
        let caps = overrides.apply(Capabilities::from_service_provider_config(&spc));
        assert!(!caps.patch && caps.etag);
        assert_eq!(caps.filter_max_results, Some(50));
        assert_eq!(overrides.keys(), ["patch", "filter_max_results", "etag"]);
        assert!(CapabilityOverrides::default().is_empty());
        assert!(serde_json::from_value::<CapabilityOverrides>(json!({"pach": true})).is_err());
    }
}
