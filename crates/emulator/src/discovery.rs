//! /ServiceProviderConfig, /ResourceTypes and /Schemas: minimal but valid, with the values
//! from Miro's own ServiceProviderConfig example.

use serde_json::{Value, json};

use crate::error::ScimError;
use crate::resource::{ENTERPRISE_URN, GROUP_URN, LIST_URN, USER_URN};

fn service_provider_config() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://developers.miro.com/docs/scim",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": 200},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": false},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token",
            "description": "Authentication scheme using the SCIM API token"}],
    })
}

fn resource_types(base_url: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User", "name": "User", "endpoint": "/Users", "schema": USER_URN,
            "schemaExtensions": [{"schema": ENTERPRISE_URN, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/User")},
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group", "name": "Group", "endpoint": "/Groups", "schema": GROUP_URN,
            "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/Group")},
        }),
    ]
}

fn attr(name: &str, kind: &str, multi: bool, mutability: &str) -> Value {
    json!({"name": name, "type": kind, "multiValued": multi, "required": name == "userName",
           "caseExact": false, "mutability": mutability, "returned": "default", "uniqueness": "none"})
}

fn schemas(base_url: &str) -> Vec<Value> {
    let schema = |id: &str, name: &str, attributes: Vec<Value>| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": id, "name": name,
               "attributes": attributes,
               "meta": {"resourceType": "Schema", "location": format!("{base_url}/Schemas/{id}")}})
    };
    vec![
        schema(
            USER_URN,
            "User",
            vec![
                attr("userName", "string", false, "readWrite"),
                attr("name", "complex", false, "readWrite"),
                attr("displayName", "string", false, "readWrite"),
                attr("active", "boolean", false, "readWrite"),
                attr("userType", "string", false, "readWrite"),
                attr("preferredLanguage", "string", false, "readWrite"),
                attr("emails", "complex", true, "readOnly"),
                attr("roles", "complex", true, "readWrite"),
                attr("groups", "complex", true, "readOnly"),
            ],
        ),
        schema(
            GROUP_URN,
            "Group",
            vec![
                attr("displayName", "string", false, "readWrite"),
                attr("members", "complex", true, "readWrite"),
            ],
        ),
        schema(
            ENTERPRISE_URN,
            "EnterpriseUser",
            vec![
                attr("employeeNumber", "string", false, "readWrite"),
                attr("costCenter", "string", false, "readWrite"),
                attr("organization", "string", false, "readWrite"),
                attr("division", "string", false, "readWrite"),
                attr("department", "string", false, "readWrite"),
                attr("manager", "complex", false, "readWrite"),
            ],
        ),
    ]
}

fn list(items: Vec<Value>) -> Value {
    json!({"schemas": [LIST_URN], "totalResults": items.len(), "startIndex": 1,
           "itemsPerPage": items.len(), "Resources": items})
}

/// `rest` is the path below the base path, e.g. "/Schemas/urn:…:User".
pub fn get(rest: &str, base_url: &str) -> Result<Value, ScimError> {
    let not_found = || ScimError::not_found(format!("Resource {rest} not found"));
    let pick = |items: Vec<Value>, id: &str| {
        items
            .into_iter()
            .find(|i| i["id"].as_str() == Some(id))
            .ok_or_else(not_found)
    };
    match rest.trim_end_matches('/') {
        "/ServiceProviderConfig" | "/ServiceProviderConfigs" => Ok(service_provider_config()),
        "/ResourceTypes" => Ok(list(resource_types(base_url))),
        "/Schemas" => Ok(list(schemas(base_url))),
        other => {
            if let Some(id) = other.strip_prefix("/ResourceTypes/") {
                pick(resource_types(base_url), id)
            } else if let Some(id) = other.strip_prefix("/Schemas/") {
                pick(schemas(base_url), id)
            } else {
                Err(not_found())
            }
        }
    }
}

pub fn is_discovery(rest: &str) -> bool {
    ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"]
        .iter()
        .any(|p| rest.starts_with(p))
}
