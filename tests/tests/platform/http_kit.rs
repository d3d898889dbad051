use crate::app::{self, token};
use crate::store_db;
use onedoor_http_kit::Role;
use serde_json::{Value, json};

async fn post(
    base: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/v1/cases/{}/materials", uuid::Uuid::now_v7()))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, ct, body)
}

async fn events(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn bad_requests_get_problem_json_and_change_nothing() {
    let db = store_db().await;
    let base = app::spawn(db.pool.clone()).await;
    let clerk = token(Role::WindowClerk);
    let good = json!({"case_id": uuid::Uuid::now_v7(), "materials": ["id_card"]}).to_string();

    // (what, token, content type, body, expected status, expected code)
    type Case<'a> = (&'a str, Option<&'a str>, &'a str, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("malformed JSON", Some(&clerk), "application/json", "{\"case_id\": ".into(), 400, "malformed_json"),
        (
            "wrong type",
            Some(&clerk),
            "application/json",
            json!({"case_id": 5, "materials": []}).to_string(),
            400,
            "invalid_body",
        ),
        (
            "unknown field",
            Some(&clerk),
            "application/json",
            json!({"case_id": uuid::Uuid::now_v7(), "materials": [], "x": 1}).to_string(),
            400,
            "invalid_body",
        ),
        ("wrong content type", Some(&clerk), "text/plain", good.clone(), 415, "unsupported_media_type"),
        (
            "oversize body",
            Some(&clerk),
            "application/json",
            format!("{{\"materials\": [\"{}\"]}}", "a".repeat(300 * 1024)),
            413,
            "payload_too_large",
        ),
        ("missing token", None, "application/json", good.clone(), 401, "unauthorized"),
        ("bad token", Some("not-a-jwt"), "application/json", good.clone(), 401, "unauthorized"),
    ];
    for (what, tok, ct, body, status, code) in cases {
        let (got, content_type, problem) = post(&base, tok, ct, body).await;
        assert_eq!(got, status, "{what}: status");
        assert_eq!(content_type, "application/problem+json", "{what}: content type");
        assert_eq!(problem["code"], code, "{what}: code");
        assert_eq!(problem["status"], status, "{what}: status in body");
        assert!(
            problem["title"].is_string() && problem["detail"].is_string() && problem["type"].is_string(),
            "{what}: {problem}"
        );
    }
    assert_eq!(events(&db.pool).await, 0, "no bad request stored anything");

    let (_, _, wrong_type) =
        post(&base, Some(&clerk), "application/json", json!({"case_id": 5, "materials": []}).to_string()).await;
    assert_eq!(wrong_type["errors"][0]["field"], "case_id");
    let (_, _, unknown) = post(
        &base,
        Some(&clerk),
        "application/json",
        json!({"case_id": uuid::Uuid::now_v7(), "materials": [], "x": 1}).to_string(),
    )
    .await;
    assert_eq!(unknown["errors"][0]["field"], "x");
    assert_eq!(unknown["errors"][0]["code"], "unknown_field");

    let (status, _, problem) = post(&base, Some(&token(Role::Operator)), "application/json", good.clone()).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")), "a valid token of the wrong role");

    let (status, _, _) = post(&base, Some(&clerk), "application/json", good).await;
    assert_eq!(status, 201);
    assert_eq!(events(&db.pool).await, 1);
}

#[tokio::test]
async fn health_openapi_and_swagger_ui_are_served() {
    let db = store_db().await;
    let base = app::spawn(db.pool.clone()).await;
    let get = |p: &str| reqwest::get(format!("{base}{p}"));
    assert_eq!(get("/health/live").await.unwrap().status(), 200);
    let ready: Value = get("/health/ready").await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["postgres"], "up");
    let spec: Value = get("/api-docs/openapi.json").await.unwrap().json().await.unwrap();
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    let ui = get("/swagger-ui/").await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"), "the UI is served from the binary, offline");
    let missing = get("/nowhere").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    let wrong_method = get(&format!("/api/v1/cases/{}/materials", uuid::Uuid::now_v7())).await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_handler_that_panics_answers_a_problem_json_500_without_what_it_held() {
    let db = store_db().await;
    let base = app::spawn(db.pool.clone()).await;
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/panic"))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(res.status().as_u16(), 500);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body = res.text().await.unwrap();
    assert!(body.contains("internal_error"), "{body}");
    assert!(!body.contains("11010519491231002X"), "{body}");
}

#[tokio::test]
async fn an_oversized_token_gets_a_problem_json_431_not_an_empty_answer() {
    let db = store_db().await;
    let base = app::spawn(db.pool.clone()).await;
    let padded = format!("Bearer {}", "x".repeat(20 * 1024));
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/cases/{}/materials", uuid::Uuid::now_v7()))
        .header("authorization", padded)
        .json(&serde_json::json!({"materials": ["id_card"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 431);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "header_too_large");
    assert_eq!(events(&db.pool).await, 0, "nothing changed");
}

/// A database that ends the connection itself (a shutdown, a crash, a
/// CloudNativePG switchover: SQLSTATE 57P01) is a 503 to retry, like one
/// that cannot be reached, not a 500.
#[tokio::test]
async fn a_connection_the_database_ends_is_a_503_to_retry_not_a_500() {
    let db = store_db().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let ended = sqlx::query("SELECT pg_terminate_backend(pg_backend_pid())").execute(&mut *conn).await.unwrap_err();
    assert_eq!(ended.as_database_error().and_then(|e| e.code()).as_deref(), Some("57P01"), "{ended}");
    let problem = onedoor_http_kit::Problem::from(ended);
    assert_eq!((problem.status, problem.code.as_str()), (503, "database_unavailable"));

    let broken = sqlx::query("SELECT no_such_column FROM events").execute(&db.pool).await.unwrap_err();
    assert_eq!(onedoor_http_kit::Problem::from(broken).status, 500, "a fault of the query stays a 500");
}
