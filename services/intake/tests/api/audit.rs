//! The audit trail as an auditor uses it: every request of a member of
//! staff recorded with ids only, readable by auditors alone, and sealed into
//! a keyed hash chain whose verification names the first entry tampered
//! with, even by someone who rewrites the chain without the key.

use crate::support::*;
use onedoor_http_kit::Role;
use onedoor_test_support::driver::eventually;
use onedoor_test_support::sample::{self, SampleApplication};
use serde_json::Value;
use std::time::Duration;

fn auditor() -> String {
    token(Role::Auditor, None, None, "auditor-1")
}

async fn verification(intake: &TestIntake) -> Value {
    let (status, body, _) = intake.get(&auditor(), "/api/v1/audit/verification").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The verification once every entry so far is sealed (asked of the
/// database: asking the API would add an entry each time).
async fn sealed(intake: &TestIntake) -> Value {
    eventually("the sealer chains every entry", Duration::from_secs(15), || async {
        let unsealed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_trail WHERE seq IS NULL")
            .fetch_one(intake.db())
            .await
            .unwrap();
        if unsealed == 0 { Ok(()) } else { Err(format!("{unsealed} unsealed")) }
    })
    .await;
    verification(intake).await
}

#[tokio::test]
async fn every_read_and_command_is_recorded_with_ids_only_and_only_auditors_read_the_trail() {
    let intake = TestIntake::spawn().await;
    let applicant = id_number("33010219800307301");
    let (status, created, _) = intake
        .post(
            &clerk(),
            "/api/v1/applications",
            &SampleApplication::household_of_two(&applicant).request(sample::medical("肺炎", 300_000, 0)).json(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let case_id = created["case_id"].as_str().unwrap().to_string();
    assert_eq!(intake.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await.0, 200);
    assert_eq!(intake.get(&clerk(), &format!("/api/v1/cases?id_number={applicant}")).await.0, 200);
    let elsewhere = token(Role::WindowClerk, Some("330102002"), None, "clerk-b");
    assert_eq!(intake.get(&elsewhere, &format!("/api/v1/cases/{case_id}")).await.0, 404);

    // Nobody but an auditor reads the trail.
    for who in [clerk(), token(Role::Operator, None, None, "op-1")] {
        assert_eq!(intake.get(&who, "/api/v1/audit").await.0, 403);
        assert_eq!(intake.get(&who, "/api/v1/audit/verification").await.0, 403);
    }

    let (status, trail, _) = intake.get(&auditor(), &format!("/api/v1/audit?case_id={case_id}")).await;
    assert_eq!(status, 200, "{trail}");
    let entries: Vec<(&str, &str, i64)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap(), e["outcome"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("clerk-b", "GET /api/v1/cases/{case_id}", 404),
            ("clerk-7", "GET /api/v1/cases/{case_id}", 200),
            ("clerk-7", "POST /api/v1/applications", 201),
        ],
        "newest first, the other township's attempt included"
    );
    let submitted = &trail["items"][2];
    assert_eq!(submitted["role"], "window_clerk");
    assert!(submitted["household_id"].is_string(), "the submission names the household it registered: {submitted}");

    // The search by ID number is recorded by the parameter's name, never the number.
    let (_, by_clerk, _) = intake.get(&auditor(), "/api/v1/audit?actor=clerk-7").await;
    let actions: Vec<&str> =
        by_clerk["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"GET /api/v1/cases?id_number"), "{actions:?}");
    assert!(actions.contains(&"GET /api/v1/audit"), "refused attempts at the trail are recorded too: {actions:?}");
    let everything: String = sqlx::query_scalar("SELECT string_agg(row_to_json(a)::text, '') FROM audit_trail a")
        .fetch_one(intake.db())
        .await
        .unwrap();
    assert!(!everything.contains(&applicant) && !everything.contains("张三"), "ids only: {everything}");

    // Reading the trail is itself recorded; paging walks back through it.
    let (_, first, _) = intake.get(&auditor(), "/api/v1/audit?limit=2").await;
    assert_eq!(first["items"][0]["actor"], "auditor-1");
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second, _) = intake.get(&auditor(), &format!("/api/v1/audit?limit=2&cursor={cursor}")).await;
    assert!(second["items"][0]["entry_id"].as_i64() < first["items"][1]["entry_id"].as_i64());

    // Bad filters are a problem+json 400.
    let (status, problem, _) = intake.get(&auditor(), "/api/v1/audit?limit=0&cursor=x").await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");
    assert_eq!(intake.get(&auditor(), "/api/v1/audit?case_id=not-a-uuid").await.0, 400);
    let (status, problem, _) = intake.get(&auditor(), "/api/v1/audit?actor=a%00b").await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_text")), "text the database cannot store");
}

/// A submission's entry is written in the submission's own transaction (it
/// cannot be lost after the case is accepted, nor written for a case that
/// was not), once; a refused request's entry is written after its answer.
/// The sealer is held off (it waits for the chain's head) so that each
/// entry's row is still the one its transaction wrote.
#[tokio::test]
async fn a_submission_and_its_trail_entry_commit_together_and_a_refusal_is_recorded_after() {
    let intake = TestIntake::spawn().await;
    let mut sealer_held = intake.db().begin().await.unwrap();
    sqlx::query("SELECT seq FROM audit_chain FOR UPDATE").execute(&mut *sealer_held).await.unwrap();

    let applicant = id_number("33010219800307319");
    let form = SampleApplication::household_of_two(&applicant).request(sample::medical("肺炎", 300_000, 0)).json();
    let (status, created, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 201, "{created}");
    let (status, refused, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 409, "the same household and line again: {refused}");

    let entries: Vec<(i16, bool)> = sqlx::query_as(
        "SELECT a.outcome, a.xmin::text = (SELECT e.xmin::text FROM events e WHERE e.stream_id = $1 AND e.version = 1) \
           FROM audit_trail a WHERE a.action = 'POST /api/v1/applications' ORDER BY a.entry_id",
    )
    .bind(created["case_id"].as_str().unwrap())
    .fetch_all(intake.db())
    .await
    .unwrap();
    assert_eq!(entries, [(201, true), (409, false)], "one entry each; the accepted one in the case's transaction");
    sealer_held.rollback().await.unwrap();
    assert!(
        sealed(&intake).await["first_broken"].is_null(),
        "the entries written in a transaction chain like any other"
    );
}

#[tokio::test]
async fn the_chain_names_the_first_entry_altered_removed_or_relinked_and_the_table_refuses_changes() {
    let intake = TestIntake::spawn().await;
    for _ in 0..5 {
        assert_eq!(intake.get(&clerk(), "/api/v1/materials").await.0, 200);
    }
    let whole = sealed(&intake).await;
    assert_eq!(whole["first_broken"], Value::Null, "{whole}");
    assert_eq!(whole["checked"], 5, "the five reads: {whole}");
    let (_, newest, _) = intake.get(&auditor(), "/api/v1/audit?actor=clerk-7&limit=1").await;
    let entry = &newest["items"][0];
    assert_eq!((entry["seq"].as_i64(), entry["hash"].as_str().map(str::len)), (Some(5), Some(64)), "{entry}");

    // The service's own connection cannot rewrite, remove or empty the trail.
    let db = intake.db();
    for sql in [
        "UPDATE audit_trail SET actor = 'nobody' WHERE seq = 2",
        "DELETE FROM audit_trail WHERE seq = 2",
        "TRUNCATE audit_trail",
    ] {
        let refused = sqlx::query(sql).execute(db).await.expect_err(sql);
        assert!(refused.to_string().contains("audit"), "{sql}: {refused}");
    }

    // Someone who bypasses the table's triggers (a superuser) is found out.
    let bypassing = |sql: &'static str| async move {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    };
    let broken =
        |v: &Value| (v["first_broken"]["seq"].as_i64(), v["first_broken"]["reason"].as_str().map(String::from));

    bypassing("UPDATE audit_trail SET actor = 'nobody' WHERE seq = 3").await;
    assert_eq!(broken(&verification(&intake).await), (Some(3), Some("altered".into())));
    bypassing("UPDATE audit_trail SET actor = 'clerk-7' WHERE seq = 3").await;
    assert_eq!(verification(&intake).await["first_broken"], Value::Null, "restored");

    bypassing("DELETE FROM audit_trail WHERE seq = 4").await;
    assert_eq!(broken(&verification(&intake).await), (Some(4), Some("missing".into())));
}

#[tokio::test]
async fn rewriting_the_chain_after_a_change_needs_the_key_the_database_does_not_hold() {
    let mut intake = TestIntake::spawn().await;
    for _ in 0..4 {
        assert_eq!(intake.get(&clerk(), "/api/v1/materials").await.0, 200);
    }
    assert_eq!(sealed(&intake).await["first_broken"], Value::Null);

    // A superuser changes entry 2 and seals it and everything after again,
    // as the sealer would, but with a key of their own (the service is
    // stopped meanwhile, so that its own sealer does not get there first).
    intake.app.stop().await;
    let db = intake.db();
    let mut tx = db.begin().await.unwrap();
    for sql in [
        "SET LOCAL session_replication_role = replica",
        "UPDATE audit_trail SET actor = 'nobody', seq = NULL, prev_hash = NULL, hash = NULL WHERE seq = 2",
        "UPDATE audit_trail SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq > 2",
        "UPDATE audit_chain SET seq = 1, hash = (SELECT hash FROM audit_trail WHERE seq = 1)",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let guessed = onedoor_audit::chain::SealingKey::new(b"a key the superuser made up, 32+ bytes").unwrap();
    let mut sealed_again = 0;
    while let Ok(n @ 1..) = onedoor_audit::chain::seal(db, &guessed).await {
        sealed_again += n;
    }
    assert!(sealed_again >= 3, "{sealed_again}");
    intake.restart().await;
    let reason = |v: Value| (v["first_broken"]["seq"].as_i64(), v["first_broken"]["reason"].as_str().map(String::from));
    assert_eq!(reason(verification(&intake).await), (Some(2), Some("unknown_key".into())), "sealed by a key not held");
    // Claiming no key at all, the entries are checked with the keys held.
    let mut tx = intake.db().begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
    sqlx::query("UPDATE audit_trail SET key_id = NULL WHERE seq >= 2").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(reason(verification(&intake).await), (Some(2), Some("altered".into())));
}

#[tokio::test]
async fn the_key_is_rotated_without_breaking_the_chain_and_an_entry_of_a_key_not_held_is_named() {
    let mut intake = TestIntake::spawn().await;
    for _ in 0..3 {
        assert_eq!(intake.get(&clerk(), "/api/v1/materials").await.0, 200);
    }
    assert_eq!(sealed(&intake).await["first_broken"], Value::Null);
    intake.app.stop().await;
    let db = intake.db();

    // Rotation: a new key seals from now on; the old one (the development
    // key the service ran with) is retired and still verifies what it sealed.
    let old = onedoor_audit::chain::SealingKey::configure(None, None, false).unwrap();
    let new = onedoor_audit::chain::SealingKey::new(b"the audit chain's next key, 32+ bytes").unwrap();
    let ring = new.clone().retiring(old.clone());
    while onedoor_audit::chain::seal(db, &old).await.unwrap() > 0 {} // what the stopping service left
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_trail").fetch_one(db).await.unwrap();
    for _ in 0..2 {
        sqlx::query("INSERT INTO audit_trail (actor, role, action, outcome) VALUES ('clerk-7', 'window_clerk', 'GET /api/v1/materials', 200)")
            .execute(db)
            .await
            .unwrap();
    }
    assert_eq!(onedoor_audit::chain::seal(db, &ring).await.unwrap(), 2);
    let keys: Vec<Option<String>> =
        sqlx::query_scalar("SELECT key_id FROM audit_trail ORDER BY seq").fetch_all(db).await.unwrap();
    let ids = |k: &onedoor_audit::chain::SealingKey| Some(k.current_id());
    let mut expected = vec![ids(&old); before as usize];
    expected.extend([ids(&new), ids(&new)]);
    assert_eq!(keys, expected);
    assert_eq!(new.current_id().len(), 16, "a fingerprint, not the key");

    let whole = onedoor_audit::chain::verify(db, &ring).await.unwrap();
    assert_eq!((whole.checked, whole.first_broken), (before + 2, None), "the chain spans the rotation");
    for (ring, seq, why) in
        [(&new, 1, "the retired key was not configured"), (&old, before + 1, "the new key was not configured")]
    {
        let broken = onedoor_audit::chain::verify(db, ring).await.unwrap().first_broken.unwrap();
        assert_eq!((broken.seq, broken.reason.as_str()), (seq, "unknown_key"), "{why}");
    }
}
