//! A JSON body extractor whose every rejection is a problem+json answer:
//! wrong content type 415, body over the limit 413, malformed JSON 400,
//! wrong types or unknown fields 400 naming the field. Never a 500.
//!
//! Rules that hold for every body of every service are checked here, all at
//! once and naming each field, before the body is decoded:
//! - every amount in fen (a field named `*_fen`) is an integer no larger than
//!   [`MAX_FEN`] (one billion yuan), so policy arithmetic cannot overflow
//!   (a negative amount is each form's to report, beside its other fields);
//! - no text holds a NUL character (PostgreSQL cannot store it);
//! - no text is longer than [`MAX_TEXT_CHARS`] characters (forms set tighter
//!   limits per field).

use crate::problem::{FieldError, Problem};
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// Like `axum::Json`, with OneDoor's error format.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !is_json(content_type) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is larger than allowed")
            } else {
                Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", "the body could not be read")
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// The largest amount any request may carry: 10^11 fen, one billion yuan.
pub const MAX_FEN: i64 = 100_000_000_000;
/// The longest text any field may hold.
pub const MAX_TEXT_CHARS: usize = 2000;

/// The rules of the module docs, for every field of `value` (`path` is its JSON path).
fn check_fields(value: &serde_json::Value, path: &str, errors: &mut Vec<FieldError>) {
    use serde_json::Value;
    let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                // Another type than a number is the decoder's `invalid_type`.
                if key.ends_with("_fen") && v.is_number() {
                    let ok = v.as_i64().is_some_and(|n| n <= MAX_FEN);
                    if !ok {
                        errors.push(FieldError::new(
                            join(key),
                            "amount_out_of_range",
                            format!("an amount in fen is an integer from 0 to {MAX_FEN}"),
                        ));
                        continue;
                    }
                }
                check_fields(v, &join(key), errors);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_fields(v, &format!("{path}[{i}]"), errors);
            }
        }
        Value::String(text) => {
            if text.contains('\0') {
                errors.push(FieldError::new(path, "invalid_character", "text may not contain a NUL character"));
            } else if text.chars().count() > MAX_TEXT_CHARS {
                errors.push(FieldError::new(path, "too_long", format!("at most {MAX_TEXT_CHARS} characters")));
            }
        }
        _ => {}
    }
}

/// Decodes a JSON document, naming the offending field on failure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let document: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| malformed(&e))?;
    let mut errors = Vec::new();
    check_fields(&document, "", &mut errors);
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let value: T = serde_path_to_error::deserialize(document).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => malformed(&inner),
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let (code, field) = if message.starts_with("unknown field") {
                    // The path already ends at the unknown field.
                    ("unknown_field", path)
                } else if message.starts_with("missing field") {
                    let name = message.split('`').nth(1).unwrap_or_default();
                    let field =
                        if path == "." || path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
                    ("required", field)
                } else {
                    ("invalid_type", path)
                };
                let message = message.split(" at line ").next().unwrap_or_default().to_string();
                Problem::new(StatusCode::BAD_REQUEST, "invalid_body", "the body does not have the expected shape")
                    .with_errors(vec![FieldError::new(field, code, message)])
            }
        }
    })?;
    Ok(value)
}

fn malformed(error: &serde_json::Error) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Form {
        amount_fen: i64,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        stage: String,
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let p = parse::<Form>(br#"{"amount_fen": "ten"}"#).unwrap_err();
        assert_eq!(p.code, "invalid_body");
        assert_eq!(p.errors[0].field, "amount_fen");
        assert_eq!(p.errors[0].code, "invalid_type");
    }

    #[test]
    fn an_unknown_nested_field_is_named_with_its_path() {
        let p = parse::<Form>(br#"{"amount_fen": 1, "inner": {"stage": "x", "color": 1}}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "inner.color");
        assert_eq!(p.errors[0].code, "unknown_field");
    }

    #[test]
    fn a_missing_field_is_required() {
        let p = parse::<Form>(br#"{}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "amount_fen");
        assert_eq!(p.errors[0].code, "required");
    }

    #[test]
    fn broken_json_and_trailing_garbage_are_malformed() {
        assert_eq!(parse::<Form>(br#"{"amount_fen": 1"#).unwrap_err().code, "malformed_json");
        assert_eq!(parse::<Form>(br#"{"amount_fen": 1} x"#).unwrap_err().code, "malformed_json");
    }

    #[test]
    fn amounts_nul_characters_and_overlong_text_are_refused_naming_each_field() {
        let body = format!(
            r#"{{"amount_fen": 9223372036854775807, "inner": {{"stage": "a\u0000b"}}, "list": [{{"rent_fen": 1e20}}, "{}"]}}"#,
            "x".repeat(MAX_TEXT_CHARS + 1)
        );
        let p = parse::<serde_json::Value>(body.as_bytes()).unwrap_err();
        assert_eq!(p.status, 400);
        let found: Vec<(&str, &str)> = p.errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(
            found,
            [
                ("amount_fen", "amount_out_of_range"),
                ("inner.stage", "invalid_character"),
                ("list[0].rent_fen", "amount_out_of_range"),
                ("list[1]", "too_long")
            ]
        );
        assert!(parse::<Form>(br#"{"amount_fen": 100000000000}"#).is_ok(), "one billion yuan is allowed");
        assert_eq!(parse::<Form>(br#"{"amount_fen": 1.5}"#).unwrap_err().errors[0].code, "amount_out_of_range");
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json(Some("application/json; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }
}
