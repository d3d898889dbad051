//! What the window's forms and searches read: the materials catalogue with
//! names and time limits, and a case found by its number or the applicant's
//! ID number (exact, within the clerk's township).

use crate::support::*;
use onedoor_http_kit::Role;
use serde_json::Value;

#[tokio::test]
async fn the_catalogue_names_every_material_and_gives_each_lines_time_limit() {
    let intake = TestIntake::spawn().await;
    let (status, catalogue, _) = intake.get(&clerk(), "/api/v1/materials").await;
    assert_eq!(status, 200, "{catalogue}");
    let name = |code: &str| {
        catalogue["items"].as_array().unwrap().iter().find(|i| i["code"] == code).map(|i| i["name"].clone())
    };
    assert_eq!(name("id_card"), Some(Value::from("居民身份证")));
    assert_eq!(name("house_safety_appraisal"), Some(Value::from("房屋安全鉴定报告")));
    assert_eq!(catalogue["every_line"][0], "id_card");
    assert_eq!(catalogue["requirements"]["housing_renovation"][0], "house_safety_appraisal");
    assert_eq!(catalogue["time_limits"]["medical"], 20);
    assert_eq!(catalogue["time_limits"]["temporary"], 5);
    // What departments ask for in supplement requests, named too.
    assert!(catalogue["on_request"].as_array().unwrap().contains(&Value::from("bank_statement")));
    assert_eq!(name("bank_statement"), Some(Value::from("银行流水")));

    let (status, _, _) = intake.get("", "/api/v1/materials").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_case_is_found_by_its_number_or_the_applicants_id_number_in_the_clerks_township_only() {
    let intake = TestIntake::spawn().await;
    let mine = applicant_id();
    let other = id_number("33010219851111123");
    let (_, first, _) = intake.post(&clerk(), "/api/v1/applications", &application(&mine, &ALL_MATERIALS)).await;
    let (_, second, _) = intake.post(&clerk(), "/api/v1/applications", &application(&other, &ALL_MATERIALS)).await;

    let ids = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|c| c["case_id"].as_str().unwrap().to_string()).collect()
    };
    let number = first["case_number"].as_str().unwrap();
    let (status, page, _) = intake.get(&clerk(), &format!("/api/v1/cases?case_number={number}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), [first["case_id"].as_str().unwrap()]);

    // A lowercase x is the same ID number; a part of one finds nothing.
    let lower = other.to_lowercase();
    let (_, page, _) = intake.get(&clerk(), &format!("/api/v1/cases?id_number={lower}")).await;
    assert_eq!(ids(&page), [second["case_id"].as_str().unwrap()]);
    let (_, page, _) = intake.get(&clerk(), &format!("/api/v1/cases?id_number={}", &other[..17])).await;
    assert!(ids(&page).is_empty(), "exact match only: {page}");

    // The list never shows the full number.
    assert!(!page.to_string().contains(&other));

    // Another township's clerk finds nothing, by number or by ID.
    let elsewhere = token(Role::WindowClerk, Some("330106002"), None, "clerk-9");
    let (_, page, _) = intake.get(&elsewhere, &format!("/api/v1/cases?case_number={number}")).await;
    assert!(ids(&page).is_empty(), "{page}");
    let (_, page, _) = intake.get(&elsewhere, &format!("/api/v1/cases?id_number={mine}")).await;
    assert!(ids(&page).is_empty(), "{page}");
}

#[tokio::test]
async fn the_accepting_clerk_owns_the_case_until_a_hand_over_within_the_township() {
    let intake = TestIntake::spawn().await;
    let (_, created, _) =
        intake.post(&clerk(), "/api/v1/applications", &application(&applicant_id(), &ALL_MATERIALS)).await;
    let case_id = created["case_id"].as_str().unwrap();
    let colleague = token(Role::WindowClerk, Some(TOWNSHIP), None, "clerk-8");
    let mine = |token: String| {
        let intake = &intake;
        async move {
            let (status, page, _) = intake.get(&token, "/api/v1/cases?owner=me").await;
            assert_eq!(status, 200, "{page}");
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["case_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(mine(clerk()).await, [case_id]);
    assert!(mine(colleague.clone()).await.is_empty());
    let (status, _, _) = intake.get(&clerk(), "/api/v1/cases?owner=clerk-8").await;
    assert_eq!(status, 400, "only `me`");

    let path = format!("/api/v1/cases/{case_id}/handover");
    let (status, problem, _) = intake.post(&clerk(), &path, &serde_json::json!({"to": "  "})).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("to")));
    let (status, problem, _) = intake.post(&clerk(), &path, &serde_json::json!({"to": "clerk-7"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("same_owner")));
    let (status, view, _) = intake.post(&clerk(), &path, &serde_json::json!({"to": "clerk-8"})).await;
    assert_eq!((status, view["owner"].as_str(), view["accepted_by"].as_str()), (200, Some("clerk-8"), Some("clerk-7")));
    assert!(view["timeline"].as_array().unwrap().iter().any(|t| t["event"] == "HandedOver"));
    assert_eq!(mine(colleague).await, [case_id]);
    assert!(mine(clerk()).await.is_empty());
    // Another township's clerk cannot see the case, let alone hand it over.
    let elsewhere = token(Role::WindowClerk, Some("330102002"), None, "clerk-b");
    assert_eq!(intake.post(&elsewhere, &path, &serde_json::json!({"to": "clerk-b"})).await.0, 404);
}

/// The lookup columns hold the keyed hash of an ID number, never the number
/// (ADR 0015); numbers written there by an earlier release are re-keyed when
/// intake starts, and the searches and the duplicate check find them as before.
#[tokio::test]
async fn id_numbers_in_the_lookup_columns_are_replaced_by_keyed_hashes_and_still_found() {
    let mut intake = TestIntake::spawn().await;
    let id = applicant_id();
    let (_, case, _) = intake.post(&clerk(), "/api/v1/applications", &application(&id, &ALL_MATERIALS)).await;
    let case_id = case["case_id"].as_str().unwrap().to_string();
    // The acceptance SMS is recorded in the case (and its list row written
    // again) once sent: waited for, so it does not re-key the row below.
    intake
        .case_until(&case_id, "the acceptance SMS is recorded", |v| {
            v["notifications"].as_array().is_some_and(|n| !n.is_empty())
        })
        .await;
    let plain_rows = "SELECT (SELECT count(*) FROM case_views WHERE applicant_id_number = $1)
                           + (SELECT count(*) FROM open_lines WHERE id_number = $1)
                           + (SELECT count(*) FROM household_members WHERE id_number = $1)";
    let pool = intake.db().clone();
    let count = |sql: &'static str| {
        let (pool, id) = (pool.clone(), id.clone());
        async move { sqlx::query_scalar::<_, i64>(sql).bind(id).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(count(plain_rows).await, 0, "no ID number in a lookup column");

    // As an earlier release left them: the numbers themselves (the test's
    // intake runs with the development KEK).
    let keyring = onedoor_personal_data::Keyring::development();
    let hashed = keyring.lookup(&id);
    for table_column in
        [("case_views", "applicant_id_number"), ("open_lines", "id_number"), ("household_members", "id_number")]
    {
        let (table, column) = table_column;
        let sql = format!("UPDATE {table} SET {column} = $1 WHERE {column} = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&id).bind(&hashed).execute(intake.db()).await.unwrap();
    }
    assert_eq!(count(plain_rows).await, 6, "the applicant's rows: one case, four open lines, one member");
    intake.restart().await;
    assert_eq!(count(plain_rows).await, 0, "re-keyed at start-up");

    let (_, page, _) = intake.get(&clerk(), &format!("/api/v1/cases?id_number={id}")).await;
    assert_eq!(page["items"][0]["case_id"], case_id.as_str(), "{page}");
    let (status, household, _) = intake.get(&clerk(), &format!("/api/v1/households?id_number={id}")).await;
    assert_eq!(status, 200, "{household}");
    let (status, problem, _) = intake.post(&clerk(), "/api/v1/applications", &application(&id, &ALL_MATERIALS)).await;
    assert_eq!(status, 409, "the same person's open lines still hold: {problem}");
}
