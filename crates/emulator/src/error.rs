//! SCIM error responses, shaped the way Miro sends them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {detail}")]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// Seconds for a Retry-After header (429 only).
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request("invalidValue", detail)
    }

    pub fn invalid_path(path: &str) -> Self {
        Self::bad_request(
            "invalidPath",
            format!("Unsupported or invalid path '{path}'"),
        )
    }

    pub fn not_unique(user_name: &str) -> Self {
        Self::invalid_value(format!("User name '{user_name}' is invalid: 'not unique'"))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, None, detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, None, detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            None,
            "Miro cannot authorize the organization with the authorization token",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, None, "SCIM integration is disabled")
    }

    pub fn too_many_requests(retry_after: Option<u64>) -> Self {
        Self {
            retry_after,
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                Some("tooManyRequests"),
                "The user has sent too many requests in a given amount of time",
            )
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status.as_u16().to_string(),
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        body["detail"] = json!(self.detail);
        body
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut resp = scim_json(self.status, &self.body());
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Miro answers unsupported methods with its REST API's error shape, not a SCIM error.
pub fn method_not_allowed() -> Response {
    let body = json!({"error": {
        "message": "Endpoint is found, but this method is not allowed",
        "reason": "methodNotAllowed",
        "code": 405,
    }});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

pub fn scim_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}
