//! The services' OpenAPI documents, checked in as `schemas/openapi/<service>.json`
//! so that clients read the contract without running anything, and a test
//! fails when a service's document drifts from its checked-in copy.

use onedoor_contracts::aid_line::AID_LINES;
use std::path::PathBuf;

/// Every service's document, as it serves it at `/api-docs/openapi.json`.
pub fn documents() -> Vec<(&'static str, utoipa::openapi::OpenApi)> {
    let mut docs = vec![("intake", onedoor_service_host::document(intake::http::openapi()))];
    for line in &AID_LINES {
        let api = onedoor_department_workflow::http::openapi(line.department);
        docs.push((line.service, onedoor_service_host::document(api)));
    }
    docs
}

pub fn dir() -> PathBuf {
    crate::root().join("schemas/openapi")
}

/// Writes every document (`cargo xtask schemas`).
pub fn write() -> anyhow::Result<()> {
    std::fs::create_dir_all(dir())?;
    for (service, doc) in documents() {
        std::fs::write(dir().join(format!("{service}.json")), onedoor_http_kit::openapi::render(&doc))?;
        println!("schemas/openapi/{service}.json");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_openapi_documents_match_the_services() {
        let stale: Vec<&str> = documents()
            .into_iter()
            .filter(|(service, doc)| {
                let on_disk = std::fs::read_to_string(dir().join(format!("{service}.json"))).unwrap_or_default();
                on_disk != onedoor_http_kit::openapi::render(doc)
            })
            .map(|(service, _)| service)
            .collect();
        assert!(stale.is_empty(), "schemas/openapi/ is out of date for {stale:?}: run `cargo xtask schemas`");
    }

    #[test]
    fn errors_are_problem_json_and_every_route_lists_its_statuses() {
        for (service, doc) in documents() {
            let doc = serde_json::to_value(&doc).unwrap();
            for (path, item) in doc["paths"].as_object().unwrap() {
                for (method, op) in item.as_object().unwrap() {
                    let responses = op["responses"].as_object().unwrap();
                    for status in ["401", "403"] {
                        assert!(responses.contains_key(status), "{service} {method} {path} lists {status}");
                    }
                    for (status, response) in responses {
                        if status.as_str() >= "400" {
                            assert!(
                                response["content"].get("application/problem+json").is_some(),
                                "{service} {method} {path} {status} is problem+json"
                            );
                        }
                    }
                }
            }
            let paths = doc["paths"].as_object().unwrap();
            assert!(paths.contains_key("/api/v1/admin/dead-letters"), "{service} documents the operators' endpoints");
        }
    }
}
