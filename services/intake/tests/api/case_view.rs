use crate::support::*;
use chrono::{Duration, Utc};
use onedoor_contracts::department::*;
use onedoor_contracts::{CloudEvent, Department};
use onedoor_http_kit::Role;
use serde_json::{Value, json};
use uuid::Uuid;

struct Referred {
    case_id: String,
    lanes: Vec<(Department, LaneRef)>,
}

impl Referred {
    fn lane(&self, d: Department) -> LaneRef {
        self.lanes.iter().find(|(x, _)| *x == d).unwrap().1
    }
}

async fn referred_case(intake: &TestIntake) -> Referred {
    let (status, body, _) =
        intake.post(&clerk(), "/api/v1/applications", &application(&applicant_id(), &ALL_MATERIALS)).await;
    assert_eq!(status, 201);
    let case_id = body["case_id"].as_str().unwrap().to_string();
    let lanes = body["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let department: Department = l["department"].as_str().unwrap().parse().unwrap();
            let lane = LaneRef {
                referral_id: l["referral_id"].as_str().unwrap().parse().unwrap(),
                case_id: case_id.parse().unwrap(),
                department,
                lane_version: None,
            };
            (department, lane)
        })
        .collect();
    Referred { case_id, lanes }
}

fn lane<'a>(view: &'a Value, d: &str) -> &'a Value {
    view["lanes"].as_array().unwrap().iter().find(|l| l["department"] == d).unwrap()
}

/// The window keeps the case view open and asks with its ETag and
/// `Prefer: wait`: unchanged, the answer is a 304 after the wait; a
/// department's report answers it at once, with the new view.
#[tokio::test]
async fn a_window_waiting_on_its_case_view_is_answered_when_a_department_reports() {
    let intake = TestIntake::spawn().await;
    let case = referred_case(&intake).await;
    let url = format!("{}/api/v1/cases/{}", intake.base(), case.case_id);
    intake.case_until(&case.case_id, "the acceptance message recorded", |v| v["notifications"] != json!([])).await;
    let (status, view, headers) = intake.get(&clerk(), &format!("/api/v1/cases/{}", case.case_id)).await;
    assert_eq!(status, 200, "{view}");
    let etag = headers.get("etag").unwrap().to_str().unwrap().to_string();
    let ask = |wait: &str| {
        let request = intake.http().get(&url).bearer_auth(clerk()).header("if-none-match", &etag);
        request.header("prefer", format!("wait={wait}")).send()
    };

    let started = std::time::Instant::now();
    let unchanged = ask("1").await.unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["preference-applied"], "wait");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "it waited: {:?}", started.elapsed());

    let started = std::time::Instant::now();
    let waiting = tokio::spawn(ask("20"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let medical = case.lane(Department::Medical);
    let now = Utc::now();
    let signed = ReferralSignedFor { lane: medical, signed_by: "cw-1".into(), occurred_at: now };
    intake.publish(&CloudEvent::new(signed, now)).await;
    let answered = waiting.await.unwrap().unwrap();
    assert_eq!(answered.status(), 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "answered on the change: {:?}", started.elapsed());
    let changed: Value = answered.json().await.unwrap();
    assert_eq!(lane(&changed, "medical")["status"], "signed_for", "{changed}");
    assert!(changed["version"].as_i64() > view["version"].as_i64());
}

#[tokio::test]
async fn the_case_view_follows_every_departments_events_in_any_order_and_despite_duplicates() {
    let intake = TestIntake::spawn().await;
    let case = referred_case(&intake).await;
    let t0 = Utc::now() - Duration::hours(1);
    let at = |m: i64| t0 + Duration::minutes(m);

    // Medical's whole lane arrives backwards; education's approval is delivered twice.
    let medical = case.lane(Department::Medical);
    let approved = CloudEvent::new(
        ReferralApproved {
            lane: medical,
            amount_fen: 840_000,
            override_reason: None,
            decided_by: "approver-2".into(),
            occurred_at: at(3),
        },
        at(3),
    );
    let proposed = CloudEvent::new(
        ProposalMade {
            lane: medical,
            outcome: ProposalOutcome::Approve,
            amount_fen: Some(840_000),
            reason: None,
            proposed_by: "cw-1".into(),
            occurred_at: at(2),
        },
        at(2),
    );
    let signed =
        CloudEvent::new(ReferralSignedFor { lane: medical, signed_by: "cw-1".into(), occurred_at: at(1) }, at(1));
    intake.publish(&approved).await;
    intake.publish(&proposed).await;
    intake.publish(&signed).await;

    let education = case.lane(Department::Education);
    let edu_approved = CloudEvent::new(
        ReferralApproved {
            lane: education,
            amount_fen: 125_000,
            override_reason: None,
            decided_by: "cw-5".into(),
            occurred_at: at(4),
        },
        at(4),
    );
    intake.publish(&edu_approved).await;
    intake.publish(&edu_approved).await;
    let housing = case.lane(Department::Housing);
    intake
        .publish(&CloudEvent::new(
            ReferralReturned {
                lane: housing,
                reason: "public rental housing instead".into(),
                returned_by: "cw-8".into(),
                occurred_at: at(5),
            },
            at(5),
        ))
        .await;
    let temporary = case.lane(Department::Temporary);
    intake
        .publish(&CloudEvent::new(
            SupplementRequested {
                lane: temporary,
                materials: vec!["bank_statement".into()],
                note: Some("last three months".into()),
                requested_by: "cw-4".into(),
                occurred_at: at(6),
            },
            at(6),
        ))
        .await;

    let view = intake
        .case_until(&case.case_id, "every department's report is in", |v| {
            v["timeline"].as_array().is_some_and(|t| t.len() >= 11)
                && ["medical", "education", "housing", "temporary"].iter().all(|d| lane(v, d)["status"] != "referred")
        })
        .await;
    assert_eq!(lane(&view, "medical")["status"], "approved", "{view:#}");
    assert_eq!(lane(&view, "medical")["amount_fen"], 840_000);
    assert_eq!(lane(&view, "education")["status"], "approved");
    assert_eq!(lane(&view, "housing")["status"], "returned");
    assert_eq!(lane(&view, "housing")["reason"], "public rental housing instead");
    assert_eq!(lane(&view, "temporary")["status"], "supplement_requested");
    assert_eq!(lane(&view, "temporary")["supplement_items"], json!(["bank_statement"]));
    assert_eq!(view["status"], "in_progress");
    let education_reports = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["department"] == "education" && t["event"] == "ReferralApproved")
        .count();
    assert_eq!(education_reports, 1, "the duplicate changed nothing");

    // Something else handed in does not answer the request; the item asked for does.
    let hand_in = |item: &'static str| {
        let path = format!("/api/v1/cases/{}/materials", case.case_id);
        let intake = &intake;
        async move { intake.post(&clerk(), &path, &json!({"materials": [item]})).await }
    };
    let (status, view, _) = hand_in("income_statement").await;
    assert_eq!((status, lane(&view, "temporary")["status"].as_str()), (200, Some("supplement_requested")));
    let (status, view, _) = hand_in("bank_statement").await;
    assert_eq!(status, 200);
    assert_eq!(lane(&view, "temporary")["status"], "under_review");
    let supplemented = intake.published_at_least(7).await;
    let answer =
        supplemented.iter().find(|(s, _)| s == "onedoor.intake.materials.supplemented").expect("departments told");
    assert!(answer.1["data"]["referral_ids"].as_array().unwrap().contains(&json!(temporary.referral_id)));

    intake
        .publish(&CloudEvent::new(
            AidDisbursed {
                lane: temporary,
                amount_fen: 99_000,
                channel: DisbursementChannel::BankCard,
                disbursed_by: "cw-4".into(),
                occurred_at: Utc::now() + Duration::minutes(10),
            },
            Utc::now(),
        ))
        .await;
    let decided = intake.case_until(&case.case_id, "the case is decided", |v| v["status"] == "decided").await;
    assert_eq!(lane(&decided, "temporary")["amount_fen"], 99_000);
}

#[tokio::test]
async fn an_intake_restart_in_the_middle_of_a_stream_of_events_loses_nothing() {
    let mut intake = TestIntake::spawn().await;
    let mut cases = Vec::new();
    for n in 0..6 {
        let applicant = id_number(&format!("3301021980030712{n}"));
        let mut form = application(&applicant, &ALL_MATERIALS);
        form["household"]["members"] = json!([form["household"]["members"][0].clone()]);
        form["requests"] = json!([form["requests"][0].clone(), form["requests"][3].clone()]);
        let (status, body, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
        assert_eq!(status, 201);
        cases.push(body);
    }
    let events_for = |body: &Value| -> Vec<CloudEvent<ReferralSignedFor>> {
        body["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let lane = LaneRef {
                    referral_id: l["referral_id"].as_str().unwrap().parse().unwrap(),
                    case_id: body["case_id"].as_str().unwrap().parse().unwrap(),
                    department: l["department"].as_str().unwrap().parse().unwrap(),
                    lane_version: Some(2),
                };
                CloudEvent::new(ReferralSignedFor { lane, signed_by: "cw".into(), occurred_at: Utc::now() }, Utc::now())
            })
            .collect()
    };
    let all: Vec<_> = cases.iter().flat_map(events_for).collect();
    let (before, after) = all.split_at(all.len() / 2);
    for e in before {
        intake.publish(e).await;
    }
    intake.app.stop().await;
    for e in after {
        intake.publish(e).await; // arrive while intake is down
    }
    intake.restart().await;
    for case in &cases {
        let id = case["case_id"].as_str().unwrap();
        intake
            .case_until(id, "both lanes signed for", |v| {
                v["lanes"].as_array().is_some_and(|l| l.iter().all(|l| l["status"] == "signed_for"))
            })
            .await;
    }
    assert_eq!(intake.count("SELECT count(*) FROM events WHERE event_type = 'LaneReported'").await, all.len() as i64);
}

#[tokio::test]
async fn rebuilding_the_case_views_from_the_event_log_gives_the_same_views() {
    let intake = TestIntake::spawn().await;
    let case = referred_case(&intake).await;
    intake
        .publish(&CloudEvent::new(
            ReferralRejected {
                lane: case.lane(Department::Housing),
                reason: "income above the line".into(),
                decided_by: "cw-8".into(),
                occurred_at: Utc::now(),
            },
            Utc::now(),
        ))
        .await;
    // Quiet: the rejection and the applicant's two messages (acceptance, decision) recorded.
    let before = intake
        .case_until(&case.case_id, "the rejection and its message are in", |v| {
            lane(v, "housing")["status"] == "rejected" && v["notifications"].as_array().is_some_and(|n| n.len() == 2)
        })
        .await;
    let (_, list_before, _) = intake.get(&clerk(), "/api/v1/cases").await;

    sqlx::query("DELETE FROM case_views").execute(intake.db()).await.unwrap();
    sqlx::query("DELETE FROM open_lines").execute(intake.db()).await.unwrap();
    let operator = token(Role::Operator, None, None, "ops-1");
    assert_eq!(intake.post(&clerk(), "/api/v1/admin/case-views/rebuild", &json!({})).await.0, 403);
    let (status, job, headers) = intake.post(&operator, "/api/v1/admin/case-views/rebuild", &json!({})).await;
    assert_eq!((status, job["status"].as_str()), (202, Some("running")), "{job}");
    let progress = headers["location"].to_str().unwrap().to_string();
    let job =
        onedoor_test_support::driver::eventually("the rebuild ends", std::time::Duration::from_secs(20), || async {
            let (_, job, _) = intake.get(&operator, &progress).await;
            if job["status"] == "running" { Err(job.to_string()) } else { Ok(job) }
        })
        .await;
    assert_eq!(
        (job["status"].as_str(), job["cases_total"].as_i64(), job["cases_done"].as_i64()),
        (Some("done"), Some(1), Some(1))
    );

    let (_, after, _) = intake.get(&clerk(), &format!("/api/v1/cases/{}", case.case_id)).await;
    let (_, list_after, _) = intake.get(&clerk(), "/api/v1/cases").await;
    assert_eq!(before, after);
    assert_eq!(list_before, list_after);
    // The open lines are back: the same person cannot open the same lines twice.
    let (status, _, _) =
        intake.post(&clerk(), "/api/v1/applications", &application(&applicant_id(), &ALL_MATERIALS)).await;
    assert_eq!(status, 409, "the open lines were restored");
}

#[tokio::test]
async fn a_withdrawal_is_published_for_the_departments_and_closes_the_case() {
    let intake = TestIntake::spawn().await;
    let case = referred_case(&intake).await;
    let path = format!("/api/v1/cases/{}/withdraw", case.case_id);
    let (status, problem, _) = intake.post(&clerk(), &path, &json!({"reason": ""})).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("reason")));

    let stale = intake
        .send(
            intake
                .http()
                .post(format!("{}{path}", intake.base()))
                .bearer_auth(clerk())
                .header("If-Match", "\"1\"")
                .json(&json!({"reason": "x"})),
        )
        .await;
    assert_eq!(stale.0, 412, "a stale If-Match");

    let (status, view, _) = intake.post(&clerk(), &path, &json!({"reason": "the family moved away"})).await;
    assert_eq!((status, view["status"].as_str()), (200, Some("withdrawn")));
    let published = intake.published_at_least(6).await;
    let withdrawn = published.iter().find(|(s, _)| s == "onedoor.intake.application.withdrawn").unwrap();
    assert_eq!(withdrawn.1["data"]["referral_ids"].as_array().unwrap().len(), 4);
    let (status, problem, _) = intake.post(&clerk(), &path, &json!({"reason": "again"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("case_withdrawn")));
    let _ = Uuid::nil();
}

#[tokio::test]
async fn an_event_about_an_unknown_case_is_dead_lettered_and_operators_can_list_and_replay_it() {
    let intake = TestIntake::spawn().await;
    let stray = LaneRef {
        referral_id: Uuid::now_v7(),
        case_id: Uuid::now_v7(),
        department: Department::Housing,
        lane_version: None,
    };
    let event =
        CloudEvent::new(ReferralSignedFor { lane: stray, signed_by: "cw".into(), occurred_at: Utc::now() }, Utc::now());
    intake.publish(&event).await;

    let operator = token(Role::Operator, None, None, "ops-1");
    let start = std::time::Instant::now();
    let letters = loop {
        let (status, page, _) = intake.get(&operator, "/api/v1/admin/dead-letters").await;
        assert_eq!(status, 200);
        if !page["items"].as_array().unwrap().is_empty() {
            break page["items"].clone();
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "nothing dead-lettered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let letter = &letters[0];
    assert_eq!(letter["event_id"], event.id.to_string());
    assert_eq!(letter["original_subject"], "onedoor.housing.referral.signed_for");
    assert_eq!(letter["consumer"], "intake-lanes-housing");
    assert!(letter["reason"].as_str().unwrap().contains("no case"), "{letter}");
    assert_eq!(intake.get(&clerk(), "/api/v1/admin/dead-letters").await.0, 403, "operators only");

    // Replayed while the case is still unknown, it fails again in the
    // operator's answer and stays a dead letter.
    let sequence = letter["sequence"].as_u64().unwrap();
    let replay = format!("/api/v1/admin/dead-letters/{sequence}/replay");
    let (status, problem, _) = intake.post(&operator, &replay, &json!({})).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("replay_failed")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("no case"), "{problem}");
    let (_, page, _) = intake.get(&operator, "/api/v1/admin/dead-letters").await;
    assert_eq!(page["items"][0]["sequence"], sequence, "kept for the next attempt");
    assert_eq!(intake.post(&clerk(), &replay, &json!({})).await.0, 403, "operators only");
    let (status, _, _) = intake.post(&operator, "/api/v1/admin/dead-letters/999999/replay", &json!({})).await;
    assert_eq!(status, 404);
    // Consumers are declared in the background as the service starts: all
    // five are listed once declared.
    let start = std::time::Instant::now();
    let lag = loop {
        let (_, lag, _) = intake.get(&operator, "/api/v1/admin/lag").await;
        if lag["consumers"].as_array().unwrap().len() == 5 {
            break lag;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "four departments' reports and the applicant's messages: {lag}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(lag["outbox_backlog"].is_i64());
}

#[tokio::test]
async fn a_department_reports_only_on_its_own_subjects_and_intake_believes_the_subject_not_the_payload() {
    let intake = TestIntake::spawn().await;
    let case = referred_case(&intake).await;
    let housing = case.lane(Department::Housing);
    let approval = |lane: LaneRef| {
        CloudEvent::new(
            ReferralApproved {
                lane,
                amount_fen: 9_999_900,
                override_reason: None,
                decided_by: "forger".into(),
                occurred_at: Utc::now(),
            },
            Utc::now(),
        )
    };

    // Medical's broker user may not publish on housing's subjects: the
    // broker refuses, and housing's stream never holds it.
    let forged = approval(housing);
    let refused = intake.publish_as("medical-aid", "onedoor.housing.referral.approved", &forged).await;
    assert!(refused.is_err(), "the broker took a medical publish on housing's subject");
    assert!(intake.publish_as("medical-aid", "onedoor.intake.referral.issued.medical", &forged).await.is_err());

    // On its own subject, a payload naming housing's lane is not believed.
    let disguised = approval(housing);
    intake.publish_as("medical-aid", "onedoor.medical.referral.approved", &disguised).await.unwrap();
    let operator = token(Role::Operator, None, None, "ops-1");
    let start = std::time::Instant::now();
    let letter = loop {
        let (_, page, _) = intake.get(&operator, "/api/v1/admin/dead-letters").await;
        if let Some(letter) = page["items"].as_array().unwrap().first() {
            break letter.clone();
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "nothing dead-lettered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(letter["event_id"], disguised.id.to_string());
    assert_eq!(letter["consumer"], "intake-lanes-medical");
    assert!(letter["reason"].as_str().unwrap().contains("names the housing lane"), "{letter}");
    let (_, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{}", case.case_id)).await;
    assert_eq!(lane(&view, "housing")["status"], "referred", "{view}");
    assert!(lane(&view, "housing")["amount_fen"].is_null(), "{view}");
    let forged_ids = [forged.id.to_string(), disguised.id.to_string()];
    assert!(!view.to_string().contains(&forged_ids[0]) && !view.to_string().contains(&forged_ids[1]));
}

/// A case is folded once and then brought up to date from the events since
/// (a lane report no longer reads the whole stream); but what was folded
/// counts only while the stream still holds it: an event whose transaction
/// rolled back, or one replaced by another writer's, is never served.
#[tokio::test]
async fn a_case_folded_before_is_served_only_while_its_stream_still_holds_what_was_folded() {
    let intake = TestIntake::spawn().await;
    let case_id = quiet_referred_case(&intake).await;
    let keyring = onedoor_personal_data::Keyring::development();
    let load = || async {
        let mut conn = intake.db().acquire().await.unwrap();
        intake::store::load_case(&mut conn, &keyring, case_id, None).await.unwrap().unwrap()
    };
    let stored = load().await;
    let last: i64 = sqlx::query_scalar("SELECT max(version) FROM events WHERE stream_id = $1")
        .bind(case_id.to_string())
        .fetch_one(intake.db())
        .await
        .unwrap();
    assert_eq!(stored.version, last);

    // The last event rolled back, and another writer's appended in its place
    // before this process loads the case again: the other one is read.
    let mut tx = intake.db().begin().await.unwrap();
    sqlx::query("DELETE FROM events WHERE stream_id = $1 AND version = $2")
        .bind(case_id.to_string())
        .bind(last)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, stream_id, stream_type, version, event_type, schema_version, payload, metadata)
         VALUES ($1, $2, 'case', $3, 'HandedOver', 1, $4, '{\"actor\": \"clerk-9\"}')",
    )
    .bind(Uuid::now_v7())
    .bind(case_id.to_string())
    .bind(last)
    .bind(json!({"type": "HandedOver", "to": "clerk-9", "handed_over_at": Utc::now(), "handed_over_by": stored.owner}))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let replaced = load().await;
    assert_eq!((replaced.version, replaced.owner.as_str()), (last, "clerk-9"));

    // That one rolled back too: the case as it was before both.
    sqlx::query("DELETE FROM events WHERE stream_id = $1 AND version = $2")
        .bind(case_id.to_string())
        .bind(last)
        .execute(intake.db())
        .await
        .unwrap();
    let without = load().await;
    assert_eq!((without.version, without.owner.as_str()), (last - 1, stored.owner.as_str()));
}

/// A change reads the case's list row first, under its lock. When this
/// process kept the case folded at the very version and event the row
/// names, the stream is not read at all; a row naming another event (the
/// kept one rolled back, or another process appended) sends it to the stream.
#[tokio::test]
async fn a_case_kept_at_the_event_its_list_row_names_is_not_read_again() {
    let intake = TestIntake::spawn().await;
    let case_id = quiet_referred_case(&intake).await;
    let keyring = onedoor_personal_data::Keyring::development();
    let mut tx = intake.db().begin().await.unwrap();
    let row = intake::store::case_row(&mut tx, case_id, true).await.unwrap().unwrap();
    let last: (i64, Uuid) =
        sqlx::query_as("SELECT version, event_id FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1")
            .bind(case_id.to_string())
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!((row.version, row.last_event), (last.0, Some(last.1)), "the row names the stream's last event");

    // The stream taken away under the row (no writer does this): the case
    // kept at the row's event is served without reading it.
    sqlx::query("DELETE FROM events WHERE stream_id = $1").bind(case_id.to_string()).execute(&mut *tx).await.unwrap();
    let kept = intake::store::load_case(&mut tx, &keyring, case_id, Some(&row)).await.unwrap();
    assert_eq!(kept.map(|c| (c.case_id, c.version)), Some((case_id, row.version)));

    // A row naming another event at that version: the stream is read (and is empty now).
    let other = intake::store::CaseRow { last_event: Some(Uuid::now_v7()), ..row.clone() };
    let read = intake::store::load_case(&mut tx, &keyring, case_id, Some(&other)).await.unwrap();
    assert!(read.is_none(), "the stream was read");
    tx.rollback().await.unwrap();
}

/// In a consumer's shared transaction (`deferred::scope`) several changes
/// to one case write its list row once, at the end: until then the row in
/// the table is the one before, a next change locks the pending one, and
/// once flushed the row is the last change's, naming its last event.
#[tokio::test]
async fn changes_to_a_case_in_one_shared_transaction_write_its_list_row_once_at_the_end() {
    use intake::store::{Cause, case_row, load_case, save};
    let intake = TestIntake::spawn().await;
    let case_id = quiet_referred_case(&intake).await;
    let keyring = onedoor_personal_data::Keyring::development();
    let policy = intake::config::Policy::load(None, None).unwrap();
    let mut tx = intake.db().begin().await.unwrap();
    let before = row_in_table(&mut tx, case_id).await;
    onedoor_event_store::deferred::scope(async {
        for to in ["clerk-8", "clerk-9"] {
            let row = case_row(&mut tx, case_id, true).await.unwrap().unwrap();
            let current = load_case(&mut tx, &keyring, case_id, Some(&row)).await.unwrap().unwrap();
            assert_eq!(current.version, row.version);
            let handed = intake::domain::case::CaseEvent::HandedOver {
                to: to.to_string(),
                handed_over_at: Utc::now(),
                handed_over_by: current.owner.clone(),
            };
            save(&mut tx, &keyring, &current, &[handed], Cause::staff("clerk-1"), &policy, Utc::now()).await.unwrap();
        }
        assert_eq!(row_in_table(&mut tx, case_id).await, before, "not written before the end");
        let pending = case_row(&mut tx, case_id, true).await.unwrap().unwrap();
        assert_eq!(pending.version, before.0 + 2, "a next change sees both");
        onedoor_event_store::deferred::flush(&mut tx).await.unwrap();
    })
    .await;
    let last: Uuid =
        sqlx::query_scalar("SELECT event_id FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1")
            .bind(case_id.to_string())
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(row_in_table(&mut tx, case_id).await, (before.0 + 2, "clerk-9".to_string(), Some(last)));
    tx.commit().await.unwrap();
    let (_, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await;
    assert_eq!((view["version"].as_i64(), view["owner"].as_str()), (Some(before.0 + 2), Some("clerk-9")), "{view}");
}

/// A case's list row as the table holds it: its version, owner and last event.
async fn row_in_table(tx: &mut sqlx::PgConnection, case_id: Uuid) -> (i64, String, Option<Uuid>) {
    sqlx::query_as("SELECT version, owner, last_event_id FROM case_views WHERE case_id = $1")
        .bind(case_id)
        .fetch_one(tx)
        .await
        .unwrap()
}

/// A referred case on which nothing more happens by itself: its acceptance
/// SMS is recorded (no event is appended under the test).
async fn quiet_referred_case(intake: &TestIntake) -> Uuid {
    let case = referred_case(intake).await;
    intake
        .case_until(&case.case_id, "the acceptance SMS is recorded", |v| {
            v["notifications"].as_array().is_some_and(|n| !n.is_empty())
        })
        .await;
    Uuid::parse_str(&case.case_id).unwrap()
}
