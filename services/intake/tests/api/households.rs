//! The household register: kept across applications, changes recorded with
//! their dates, looked up by a member's ID number within the township, every
//! lookup audited (see `audit.rs` for the trail itself).

use crate::support::*;
use onedoor_http_kit::Role;
use onedoor_test_support::sample::{self, SampleApplication};
use serde_json::{Value, json};

/// A household of `applicant`, their child, and `others` (name, id, relation), asking for `request`.
fn declared(applicant: &str, others: &[(&str, &str, &str)], support: &[&str], request: Value) -> Value {
    let mut form = SampleApplication::household_of_two(applicant).request(request).json();
    let members = form["household"]["members"].as_array_mut().unwrap();
    for (name, id, relation) in others {
        members.push(json!({"name": name, "id_number": id, "relation": relation}));
    }
    form["household"]["existing_support"] = json!(support);
    form
}

async fn household(intake: &TestIntake, token: &str, id: &str) -> (u16, Value) {
    let (status, body, _) = intake.get(token, &format!("/api/v1/households?id_number={id}")).await;
    (status, body)
}

#[tokio::test]
async fn the_register_keeps_a_household_across_applications_and_records_each_change() {
    let intake = TestIntake::spawn().await;
    let (husband, wife, baby) =
        (id_number("33010219800307301"), id_number("33010219820517302"), id_number("33010220260101303"));
    let child = child_of(&husband);

    let first = declared(&husband, &[("李梅", &wife, "spouse")], &["dibao"], sample::medical("肺炎", 300_000, 0));
    let (status, created, _) = intake.post(&clerk(), "/api/v1/applications", &first).await;
    assert_eq!(status, 201, "{created}");
    let (status, found) = household(&intake, &clerk(), &wife).await;
    assert_eq!(status, 200, "{found}");
    let household_id = found["household_id"].clone();
    assert_eq!(found["support"], json!(["dibao"]));
    assert_eq!(found["members"].as_array().unwrap().len(), 3);
    assert!(!found.to_string().contains(&wife), "members are masked: {found}");
    assert_eq!(found["cases"][0]["case_number"], created["case_number"]);

    // The wife applies for education a month later: a baby was born and the
    // household moved from dibao to the low-income margin. Same household.
    let mut second = declared(
        &wife,
        &[("张三", &husband, "spouse"), ("张小明", &child, "child"), ("张小宝", &baby, "child")],
        &["low_income"],
        sample::rent_subsidy(60_000),
    );
    second["household"]["members"].as_array_mut().unwrap().remove(1); // the wife's own sample child
    let (status, body, _) = intake.post(&clerk(), "/api/v1/applications", &second).await;
    assert_eq!(status, 201, "{body}");
    let (_, found) = household(&intake, &clerk(), &husband).await;
    assert_eq!(found["household_id"], household_id, "one household across applications");
    assert_eq!(found["support"], json!(["low_income"]));
    assert_eq!(found["cases"].as_array().unwrap().len(), 2);
    let current = |found: &Value| -> usize {
        found["members"].as_array().unwrap().iter().filter(|m| m["left_on"].is_null()).count()
    };
    assert_eq!(current(&found), 4);

    // The wife has moved out with the baby: the husband declares two members.
    let third = declared(&husband, &[], &["low_income"], sample::temporary("illness", 100_000, false));
    let (status, body, _) = intake.post(&clerk(), "/api/v1/applications", &third).await;
    assert_eq!(status, 201, "{body}");
    let (_, found) = household(&intake, &clerk(), &husband).await;
    assert_eq!(current(&found), 2);
    let left: Vec<&Value> = found["members"].as_array().unwrap().iter().filter(|m| !m["left_on"].is_null()).collect();
    assert_eq!(left.len(), 2, "the wife and the baby left, and their time in the household is kept: {found}");
    assert!(left.iter().all(|m| m["joined_on"].is_string()));
    // She is still found by her number, in the household she last lived in.
    assert_eq!(household(&intake, &clerk(), &wife).await.1["household_id"], household_id);

    // Another township's clerk finds nothing; bad input is a 400.
    let elsewhere = token(Role::WindowClerk, Some("330102002"), None, "clerk-b");
    assert_eq!(household(&intake, &elsewhere, &husband).await.0, 404);
    assert_eq!(household(&intake, &clerk(), "").await.0, 400);
    assert_eq!(household(&intake, &clerk(), "%00").await.0, 400, "a NUL character (found by the fuzz run)");
    let caseworker = token(Role::Caseworker, Some(TOWNSHIP), Some(onedoor_contracts::Department::Medical), "cw");
    assert_eq!(household(&intake, &caseworker, &husband).await.0, 403);

    // Every lookup is in the audit trail, refused ones too, with ids only.
    let audited: Vec<(String, i16, Option<uuid::Uuid>)> = sqlx::query_as(
        "SELECT actor, outcome, household_id FROM audit_trail WHERE action = 'GET /api/v1/households?id_number'
          ORDER BY entry_id",
    )
    .fetch_all(intake.db())
    .await
    .unwrap();
    let household: Option<uuid::Uuid> = household_id.as_str().and_then(|h| h.parse().ok());
    let found = ("clerk-7".to_string(), 200, household);
    assert_eq!(
        audited,
        vec![
            found.clone(),
            found.clone(),
            found.clone(),
            found,
            ("clerk-b".into(), 404, None),
            ("clerk-7".into(), 400, None),
            ("clerk-7".into(), 400, None),
            ("cw".into(), 403, None),
        ],
        "four lookups, a miss naming nothing, bad input twice and a refusal"
    );
    let everything: String = sqlx::query_scalar("SELECT string_agg(row_to_json(a)::text, '') FROM audit_trail a")
        .fetch_one(intake.db())
        .await
        .unwrap();
    assert!(!everything.contains(&husband) && !everything.contains(&wife), "no ID number in the audit trail");

    // The economic-status check later verifies the household back on dibao from 1 November.
    let path = format!("/api/v1/households/{}/support", household_id.as_str().unwrap());
    let verified = json!({"support": ["dibao"], "effective": "2026-11-01"});
    assert_eq!(intake.post(&elsewhere, &path, &verified).await.0, 404, "another township's household");
    let (status, problem, _) =
        intake.post(&clerk(), &path, &json!({"support": ["rich"], "effective": "2999-01-01"})).await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!((status, fields), (400, vec!["support[0]", "effective"]));
    let (status, found, _) = intake.post(&clerk(), &path, &verified).await;
    assert_eq!((status, &found["support"]), (200, &json!(["dibao"])), "{found}");
    let changes = found["support_changes"].as_array().unwrap();
    let sources: Vec<&str> = changes.iter().map(|c| c["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["declared", "declared", "verified"], "each change with its source: {found}");
    assert_eq!(changes[2]["effective"], "2026-11-01");
}
