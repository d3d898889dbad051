//! Personal data sealed in the event log, and a household erased at the end
//! of its retention period (crypto-shredding): afterwards no byte of its
//! personal data is left in intake's database or document store, a rebuild
//! brings none of it back, and the case's history is still told.

use crate::support::*;
use onedoor_test_support::driver::tokens::operator;
use onedoor_test_support::sample::{SampleApplication, medical};
use serde_json::{Value, json};
use std::time::Duration;

const NAME: &str = "欧阳娜娜";
const CHILD: &str = "欧阳小雨";
const PHONE: &str = "13912345678";
const DIAGNOSIS: &str = "再生障碍性贫血";
const ADDRESS: &str = "西湖区某街道1号";
const REASON: &str = "欧阳娜娜已迁往外省";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

/// Intake keeping personal data `retention_days` after a household's last
/// case ended, with its scans in `documents`.
async fn intake_keeping_for(retention_days: u32, documents: &std::path::Path) -> TestIntake {
    TestIntake::spawn_with(keeping_for(retention_days, documents)).await
}

fn keeping_for(retention_days: u32, documents: &std::path::Path) -> intake::Intake {
    let mut policy = intake::config::Policy::load(None, None).unwrap();
    policy.retention_days = retention_days;
    let store = onedoor_documents::DocumentStore::open(documents.to_str().unwrap()).unwrap();
    intake::Intake::new(policy, store)
}

fn the_application(id: &str) -> Value {
    SampleApplication::household_of_two(id)
        .named(NAME, CHILD)
        .phone(PHONE)
        .request(medical(DIAGNOSIS, 900_000, 0))
        .json()
}

fn personal(id: &str) -> Vec<String> {
    [NAME, CHILD, PHONE, DIAGNOSIS, ADDRESS, REASON, id, &child_of(id)].map(String::from).to_vec()
}

fn found_in(text: &str, secrets: &[String]) -> Vec<String> {
    secrets.iter().filter(|s| text.contains(s.as_str())).cloned().collect()
}

#[tokio::test]
async fn intakes_database_holds_a_households_personal_fields_only_sealed() {
    let documents = tempfile::tempdir().unwrap();
    let intake = intake_keeping_for(0, documents.path()).await;
    let id = applicant_id();
    let (status, case, _) = intake.post(&clerk(), "/api/v1/applications", &the_application(&id)).await;
    assert_eq!(status, 201, "{case}");
    let case_id = case["case_id"].as_str().unwrap();
    intake.post(&clerk(), &format!("/api/v1/cases/{case_id}/withdraw"), &json!({"reason": REASON})).await;

    let log: String = sqlx::query_scalar("SELECT string_agg(payload::text, E'\\n') FROM events")
        .fetch_one(intake.db())
        .await
        .unwrap();
    assert_eq!(found_in(&log, &personal(&id)), Vec::<String>::new(), "plain in the event log");
    // Nor anywhere else in the database: the views, the lookup columns, the
    // outbox hold them sealed or hashed.
    let dump = onedoor_test_support::dump_tables(intake.db()).await;
    assert_eq!(found_in(&dump, &personal(&id)), Vec::<String>::new(), "plain in intake's database");
    assert!(log.contains("enc:v1:"), "{log}");
    // What is not personal stays plain, so the log still explains the case.
    assert!(log.contains(case["case_number"].as_str().unwrap()));
    assert!(log.contains("\"total_cost_fen\": 900000") || log.contains("\"total_cost_fen\":900000"), "{log}");
    // The household's data key is stored wrapped, never in the clear.
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM household_keys WHERE wrapped IS NOT NULL")
        .fetch_one(intake.db())
        .await
        .unwrap();
    assert_eq!(keys, 1);

    // Read back through the API, the case is whole, in the list too.
    let (_, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(view["applicant"]["name"], NAME, "{view}");
    assert_eq!(view["withdrawal_reason"], REASON, "{view}");
    let (_, page, _) = intake.get(&clerk(), "/api/v1/cases").await;
    assert_eq!(page["items"][0]["applicant"]["name"], NAME, "{page}");
}

#[tokio::test]
async fn a_household_erased_after_its_retention_leaves_no_personal_data_and_its_history_stays() {
    let documents = tempfile::tempdir().unwrap();
    let intake = intake_keeping_for(0, documents.path()).await;
    let id = applicant_id();
    let (_, case, _) = intake.post(&clerk(), "/api/v1/applications", &the_application(&id)).await;
    let case_id = case["case_id"].as_str().unwrap().to_string();
    let upload = intake
        .http()
        .post(format!("{}/api/v1/cases/{case_id}/documents?material={}", intake.base(), ALL_MATERIALS[0]))
        .bearer_auth(clerk())
        .header("content-type", "image/png")
        .body(PNG.to_vec());
    let (status, scan, _) = intake.send(upload).await;
    assert_eq!(status, 201, "{scan}");
    let (_, found, _) = intake.get(&clerk(), &format!("/api/v1/households?id_number={id}")).await;
    let household = found["household_id"].as_str().unwrap().to_string();
    let erase = format!("/api/v1/admin/households/{household}/erasure");
    let purpose = json!({"purpose": "保存期限届满"});

    // Only operators erase, only a household that exists, and never one with an open case.
    let (status, problem, _) = intake.post(&clerk(), &erase, &purpose).await;
    assert_eq!(status, 403, "{problem}");
    let (status, _, _) = intake
        .post(&operator(), "/api/v1/admin/households/0190a0a0-0000-7000-8000-000000000000/erasure", &purpose)
        .await;
    assert_eq!(status, 404);
    let (status, problem, _) = intake.post(&operator(), &erase, &purpose).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("case_open")), "{problem}");
    let (status, problem, _) = intake.post(&operator(), &erase, &json!({"purpose": " "})).await;
    assert_eq!(status, 400, "{problem}");

    let (status, _, _) =
        intake.post(&clerk(), &format!("/api/v1/cases/{case_id}/withdraw"), &json!({"reason": REASON})).await;
    assert_eq!(status, 200);
    let (status, erased, _) = intake.post(&operator(), &erase, &purpose).await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["cases"], json!([case_id]));
    assert_eq!(erased["documents_deleted"], 1);

    // The case is still there, with its dates, lines and staff; the person is not.
    let (status, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["applicant"]["name"], "[已删除]", "{view}");
    assert_eq!(view["applicant"]["id_number_masked"], onedoor_personal_data::ERASED, "{view}");
    assert_eq!(view["case_number"], case["case_number"]);
    assert_eq!(view["status"], "withdrawn");
    assert_eq!(found_in(&view.to_string(), &personal(&id)), Vec::<String>::new(), "{view}");
    let (status, _, _) = intake.get(&clerk(), &format!("/api/v1/households?id_number={id}")).await;
    assert_eq!(status, 404, "the register no longer knows the household's members");
    let (status, problem, _) = intake
        .get(&clerk(), &format!("/api/v1/cases/{case_id}/documents/{}", scan["document_id"].as_str().unwrap()))
        .await;
    assert_eq!((status, problem["code"].as_str()), (410, Some("document_erased")), "{problem}");
    assert_eq!(std::fs::read_dir(documents.path().join("sha256")).unwrap().count(), 0, "the scan's bytes are deleted");

    // Nowhere in the database: not in the log, the views, the register, the
    // idempotency keys, the outbox or the audit trail.
    let after = onedoor_test_support::dump_tables(intake.db()).await;
    assert!(after.contains(case["case_number"].as_str().unwrap()), "the dump reads every table");
    assert_eq!(found_in(&after, &personal(&id)), Vec::<String>::new());

    // A rebuild from the log brings nothing back, and the audit trail names the purpose.
    let (status, job, _) = intake.post(&operator(), "/api/v1/admin/case-views/rebuild", &json!({})).await;
    assert_eq!(status, 202, "{job}");
    let progress = format!("/api/v1/admin/case-views/rebuild/{}", job["job_id"].as_str().unwrap());
    onedoor_test_support::driver::eventually("the rebuild ends", Duration::from_secs(20), || async {
        let (_, job, _) = intake.get(&operator(), &progress).await;
        if job["status"] == "done" { Ok(()) } else { Err(job.to_string()) }
    })
    .await;
    assert_eq!(found_in(&onedoor_test_support::dump_tables(intake.db()).await, &personal(&id)), Vec::<String>::new());
    let (_, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(view["applicant"]["name"], "[已删除]");
    assert_eq!(intake.count("SELECT count(*) FROM household_members").await, 0);
    let purpose_recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_trail WHERE purpose = '保存期限届满' AND household_id::text = $1 AND outcome = 200",
    )
    .bind(&household)
    .fetch_one(intake.db())
    .await
    .unwrap();
    assert_eq!(purpose_recorded, 1);

    // Asked again, the erasure answers the same; the same people may apply
    // again, as a new household with a key of its own.
    let (status, again, _) = intake.post(&operator(), &erase, &purpose).await;
    assert_eq!((status, &again["cases"]), (200, &erased["cases"]));
    let (status, fresh, _) = intake.post(&clerk(), "/api/v1/applications", &the_application(&id)).await;
    assert_eq!(status, 201, "{fresh}");
    let (_, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{}", fresh["case_id"].as_str().unwrap())).await;
    assert_eq!(view["applicant"]["name"], NAME);
    assert_ne!(view["household_id"].as_str(), Some(household.as_str()));
}

#[tokio::test]
async fn a_household_is_not_erased_before_its_retention_period_ends() {
    let documents = tempfile::tempdir().unwrap();
    let intake = intake_keeping_for(3650, documents.path()).await;
    let id = applicant_id();
    let (_, case, _) = intake.post(&clerk(), "/api/v1/applications", &the_application(&id)).await;
    let case_id = case["case_id"].as_str().unwrap();
    intake.post(&clerk(), &format!("/api/v1/cases/{case_id}/withdraw"), &json!({"reason": REASON})).await;
    let (_, found, _) = intake.get(&clerk(), &format!("/api/v1/households?id_number={id}")).await;
    let erase = format!("/api/v1/admin/households/{}/erasure", found["household_id"].as_str().unwrap());
    let (status, problem, _) = intake.post(&operator(), &erase, &json!({"purpose": "保存期限届满"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("retention_not_over")), "{problem}");
    let (_, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(view["applicant"]["name"], NAME, "nothing was erased");
}

/// An earlier release stored events and views with their personal fields
/// in the clear, where no key reaches them. A new release seals them at
/// start-up, under the household's key, so the case reads as before and an
/// erasure then leaves nothing of the household.
#[tokio::test]
async fn what_an_earlier_release_stored_in_the_clear_is_sealed_at_start_up_and_erased_with_its_household() {
    use onedoor_stored_events::{case::CaseEventV1, household::HouseholdEventV1};
    let documents = tempfile::tempdir().unwrap();
    let mut intake = intake_keeping_for(0, documents.path()).await;
    let id = applicant_id();
    let (_, case, _) = intake.post(&clerk(), "/api/v1/applications", &the_application(&id)).await;
    let case_id = case["case_id"].as_str().unwrap().to_string();
    let (status, _, _) =
        intake.post(&clerk(), &format!("/api/v1/cases/{case_id}/withdraw"), &json!({"reason": REASON})).await;
    assert_eq!(status, 200);
    // The acceptance SMS is recorded in the case (and its view written
    // again) once sent: waited for, so it does not seal the view below.
    intake
        .case_until(&case_id, "the acceptance SMS is recorded", |v| {
            v["notifications"].as_array().is_some_and(|n| !n.is_empty())
        })
        .await;
    let (_, found, _) = intake.get(&clerk(), &format!("/api/v1/households?id_number={id}")).await;
    let household: uuid::Uuid = found["household_id"].as_str().unwrap().parse().unwrap();

    // As an earlier release left them: every event and the view in the clear, no keys.
    let keyring = onedoor_personal_data::Keyring::development();
    let mut conn = intake.db().acquire().await.unwrap();
    let key = keyring.for_opening(&mut conn, household).await.unwrap().unwrap();
    let events: Vec<(i64, String, String, Value)> =
        sqlx::query_as("SELECT global_position, stream_type, event_type, payload FROM events")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    for (position, stream_type, event_type, mut payload) in events {
        let fields = match stream_type.as_str() {
            "case" => CaseEventV1::personal_fields(&event_type),
            _ => HouseholdEventV1::personal_fields(&event_type),
        };
        fields.open(&mut payload, Some(&key));
        sqlx::query("UPDATE events SET payload = $1 WHERE global_position = $2")
            .bind(payload)
            .bind(position)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::query(
        "UPDATE case_views SET view = jsonb_set(jsonb_set(view, '{applicant,name}', to_jsonb($1::text)),
                                               '{withdrawal_reason}', to_jsonb($2::text))",
    )
    .bind(NAME)
    .bind(REASON)
    .execute(&mut *conn)
    .await
    .unwrap();
    for table in ["household_keys", "sealing_passes"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&mut *conn).await.unwrap();
    }
    drop(conn);
    let before = onedoor_test_support::dump_tables(intake.db()).await;
    for plain in [NAME, CHILD, DIAGNOSIS, REASON, id.as_str()] {
        assert!(before.contains(plain), "{plain} is not in the clear: the test's earlier release is not one");
    }

    intake.restart_as(keeping_for(0, documents.path())).await;
    let after = onedoor_test_support::dump_tables(intake.db()).await;
    assert_eq!(found_in(&after, &personal(&id)), Vec::<String>::new(), "left in the clear");
    let (_, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(view["applicant"]["name"], NAME, "{view}");
    assert_eq!(view["withdrawal_reason"], REASON, "{view}");

    // Sealed under the household's key, it goes with the household.
    let erase = format!("/api/v1/admin/households/{household}/erasure");
    let (status, erased, _) = intake.post(&operator(), &erase, &json!({"purpose": "保存期限届满"})).await;
    assert_eq!(status, 200, "{erased}");
    let (_, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(view["applicant"]["name"], "[已删除]", "{view}");
    let dump = onedoor_test_support::dump_tables(intake.db()).await;
    assert_eq!(found_in(&dump, &personal(&id)), Vec::<String>::new(), "left after the erasure");
}
