//! A service's OpenAPI document as it is served and checked in: the bearer
//! security scheme, and for every operation each status its extractors can
//! answer besides those its handler declares, every error documented as
//! `application/problem+json` with the [`Problem`](crate::Problem) schema.
//!
//! The statuses added here come from the shared extractors, so they hold for
//! every route alike: a token is required (401, 403), the database may be
//! away (503 with `Retry-After`), a JSON body can be
//! malformed, too large or of another type (400, 413, 415), a query can be
//! invalid (400), a path names a resource that may not exist (404), and
//! `If-Match` may be stale (412). Statuses that depend on the domain (409,
//! 422) are declared by each handler.

use serde_json::{Value, json};
use utoipa::openapi::OpenApi;

const PROBLEM_TYPE: &str = "application/problem+json";

fn ensure(responses: &mut serde_json::Map<String, Value>, status: &str, description: &str) {
    responses.entry(status).or_insert_with(|| json!({ "description": description }));
}

/// Completes `api` (see the module docs).
pub fn document(api: OpenApi) -> OpenApi {
    let mut doc = serde_json::to_value(&api).expect("an OpenAPI document serialises");
    doc["components"]["securitySchemes"]["bearer"] = json!({"type": "http", "scheme": "bearer"});
    let problem = json!({ PROBLEM_TYPE: { "schema": { "$ref": "#/components/schemas/Problem" } } });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, op) in item.iter_mut() {
                if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    continue;
                }
                let parameters: Vec<Value> = op["parameters"].as_array().cloned().unwrap_or_default();
                let has_query = parameters.iter().any(|p| p["in"] == "query");
                let has_if_match = parameters.iter().any(|p| p["in"] == "header" && p["name"] == "If-Match");
                let has_body = op.get("requestBody").is_some();
                let Some(responses) = op["responses"].as_object_mut() else { continue };
                ensure(responses, "401", "no valid bearer token");
                ensure(responses, "403", "the token's role, township or department may not do this");
                ensure(responses, "503", "the database cannot be reached just now; retry after `Retry-After` seconds");
                if has_body {
                    ensure(responses, "400", "the body is malformed or a field is invalid (every field named)");
                    ensure(responses, "413", "the body is larger than the service accepts");
                    ensure(responses, "415", "the body is not application/json");
                }
                if has_query {
                    ensure(responses, "400", "a query parameter is invalid");
                }
                if path.contains('{') {
                    ensure(responses, "404", "no such resource (or not in the caller's scope)");
                }
                if has_if_match {
                    ensure(responses, "412", "If-Match names an older version");
                }
                for (status, response) in responses.iter_mut() {
                    if status.as_str() >= "400" {
                        response["content"] = problem.clone();
                    }
                }
            }
        }
    }
    serde_json::from_value(doc).expect("the completed document is an OpenAPI document")
}

/// The document rendered as it is checked in (`schemas/openapi/<service>.json`):
/// pretty JSON with a final newline.
pub fn render(api: &OpenApi) -> String {
    let mut text = serde_json::to_string_pretty(api).expect("an OpenAPI document serialises");
    text.push('\n');
    text
}
