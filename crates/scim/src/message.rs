//! Response messages: list responses and error bodies, both read leniently because service
//! providers (Miro included) deviate from RFC 7644 in small ways.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `urn:ietf:params:scim:api:messages:2.0:ListResponse` (RFC 7644 §3.4.2). `startIndex` and
/// `itemsPerPage` are optional because some Miro examples omit them; `Resources` may be absent
/// on an empty page or a `count=0` request.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct ListResponse<T> {
    #[serde(rename = "totalResults", default)]
    pub total_results: usize,
    #[serde(
        rename = "startIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_index: Option<usize>,
    #[serde(
        rename = "itemsPerPage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub items_per_page: Option<usize>,
    #[serde(rename = "Resources", alias = "resources", default = "Vec::new")]
    pub resources: Vec<T>,
}

/// What could be read from an error response. Every field is optional: a proxy's HTML page or
/// an empty body yields all `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScimErrorBody {
    pub status: Option<u16>,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
}

/// Reads a SCIM error (`status` as a string, as Miro sends it, or a number), or Miro's non-SCIM
/// `{"error":{"message","reason","code"}}` (seen on 405s), or nothing.
pub fn parse_error_body(bytes: &[u8]) -> ScimErrorBody {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(bytes) else {
        return ScimErrorBody::default();
    };
    if let Some(Value::Object(err)) = obj.get("error") {
        return ScimErrorBody {
            status: err.get("code").and_then(status_of),
            scim_type: None,
            detail: err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| err.get("reason").and_then(Value::as_str).map(str::to_owned)),
        };
    }
    let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_owned);
    ScimErrorBody {
        status: obj.get("status").and_then(status_of),
        scim_type: text("scimType"),
        detail: text("detail").or_else(|| text("message")),
    }
}

fn status_of(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn miro_error_with_string_status() {
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"User name 'x@y.com' is invalid: 'not unique'"}"#;
        let e = parse_error_body(body);
        assert_eq!(e.status, Some(400));
        assert_eq!(e.scim_type.as_deref(), Some("invalidValue"));
        assert!(e.detail.unwrap().contains("not unique"));
    }

    #[test]
    fn numeric_status_and_no_scim_type() {
        let e = parse_error_body(br#"{"status":409,"detail":"x@y.com is not whitelisted"}"#);
        assert_eq!(e.status, Some(409));
        assert_eq!(e.scim_type, None);
        assert_eq!(e.detail.as_deref(), Some("x@y.com is not whitelisted"));
    }

    #[test]
    fn miro_non_scim_error() {
        let e = parse_error_body(
            br#"{"error":{"message":"Endpoint is found, but this method is not allowed","reason":"methodNotAllowed","code":405}}"#,
        );
        assert_eq!(e.status, Some(405));
        assert!(e.detail.unwrap().contains("not allowed"));
    }

    #[test]
    fn garbage_gives_nothing() {
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"[1,2]",
            b"{\"status\":\"abc\"}",
        ] {
            let e = parse_error_body(body);
            assert_eq!((e.status, e.scim_type, e.detail), (None, None, None));
        }
    }

    #[test]
    fn list_response_lenient() {
        let full: ListResponse<Value> = serde_json::from_str(
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":2,"startIndex":1,"itemsPerPage":2,"Resources":[{"id":"1"},{"id":"2"}]}"#,
        )
        .unwrap();
        assert_eq!(full.total_results, 2);
        assert_eq!(full.resources.len(), 2);
        assert_eq!(full.start_index, Some(1));
        let counter: ListResponse<Value> =
            serde_json::from_str(r#"{"schemas":[],"totalResults":57}"#).unwrap();
        assert_eq!(counter.total_results, 57);
        assert!(counter.resources.is_empty());
        assert_eq!(counter.items_per_page, None);
    }
}
