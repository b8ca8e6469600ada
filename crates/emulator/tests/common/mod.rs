//! In-process harness: drives `Emulator::router` with `oneshot`, no sockets.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

pub use scimsync_emulator::*;

pub const TOKEN: &str = "test-token";
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

pub struct Harness {
    pub emu: Emulator,
    pub app: Router,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Harness {
    pub fn new(config: EmulatorConfig) -> Self {
        let emu = Emulator::new(EmulatorConfig {
            token: TOKEN.into(),
            ..config
        });
        let app = emu.router();
        Self { emu, app }
    }

    pub fn default_with(seed: Seed) -> Self {
        Self::new(EmulatorConfig {
            seed,
            ..EmulatorConfig::default()
        })
    }

    pub async fn raw(&self, req: Request<Body>) -> Result<Resp, axum::Error> {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub fn request(method: &str, path: &str, body: Option<&Value>) -> Request<Body> {
        let b = Request::builder()
            .method(method)
            .uri(format!("/api/v1/scim{path}"))
            .header("authorization", format!("Bearer {TOKEN}"));
        match body {
            Some(v) => b
                .header("content-type", "application/scim+json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.raw(Self::request(method, path, body.as_ref()))
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }

    pub async fn create(&self, user_name: &str) -> String {
        let r = self
            .call("POST", "/Users", Some(json!({"userName": user_name})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn patch_user(&self, id: &str, ops: Value) -> Resp {
        self.call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"schemas": [PATCH_URN], "Operations": ops})),
        )
        .await
    }

    pub async fn patch_group(&self, id: &str, ops: Value) -> Resp {
        self.call(
            "PATCH",
            &format!("/Groups/{id}"),
            Some(json!({"schemas": [PATCH_URN], "Operations": ops})),
        )
        .await
    }

    pub async fn filter_users(&self, filter: &str) -> Resp {
        self.get(&format!("/Users?filter={}", encode(filter))).await
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn seed_user(name: &str) -> SeedUser {
    SeedUser::new(name)
}

pub fn detail(r: &Resp) -> &str {
    r.body["detail"].as_str().unwrap_or_default()
}
