use crate::harness::*;
use onedoor_contracts::Department;
use onedoor_http_kit::Role;
use serde_json::{Value, json};

/// Submits an application and waits until `d` has its referral; returns (case id, referral id).
async fn referred(p: &Platform, d: Department, applicant: &str, request: Value) -> (String, String) {
    let created = p.submit(&application(applicant, json!([request]))).await;
    let referral_id = created["lanes"][0]["referral_id"].as_str().unwrap().to_string();
    p.referral(d, &referral_id, &caseworker(d)).await;
    (created["case_id"].as_str().unwrap().to_string(), referral_id)
}

#[tokio::test]
async fn a_medical_lane_runs_from_referral_to_disbursement_and_the_window_sees_every_step() {
    let d = Department::Medical;
    let p = Platform::start(&[d]).await;
    // Out of pocket 12,000 yuan, 70% for a dibao household: 8,400 yuan, below the 10,000 threshold.
    let (case_id, id) = referred(&p, d, &id_number("33010219800307123"), medical_request(3_000_000, 1_800_000)).await;
    let cw = caseworker(d);
    let view = p.referral(d, &id, &cw).await;
    assert_eq!(view["status"], "referred");
    assert_eq!(view["recommendation"]["eligible"], true);
    assert_eq!(view["recommendation"]["suggested_amount_fen"], 840_000);
    assert!(!view["recommendation"]["notes"].as_array().unwrap().is_empty());

    assert_eq!(p.act(d, &id, "sign-for", &cw, json!({})).await.0, 200);
    let (status, body) =
        p.act(d, &id, "supplement-requests", &cw, json!({"materials": ["bank_statement"], "note": "3 months"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("supplement_requested")));
    p.case_until(&case_id, "the window shows the supplement request", |v| {
        lane_of(v, d)["status"] == "supplement_requested"
            && lane_of(v, d)["supplement_items"] == json!(["bank_statement"])
    })
    .await;

    // The window hands in the bank statement; the department's lane resumes.
    assert_eq!(p.hand_in(&case_id, &["bank_statement"]).await.0, 200);
    let start = std::time::Instant::now();
    while p.referral(d, &id, &cw).await["status"] != "under_review" {
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "the lane never resumed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Approve without an amount: the suggestion, within the caseworker's authority.
    let (status, body) = p.act(d, &id, "proposal", &cw, json!({"outcome": "approve"})).await;
    assert_eq!(
        (status, body["status"].as_str(), body["approved_amount_fen"].as_i64()),
        (200, Some("approved"), Some(840_000))
    );
    let (status, body) =
        p.act(d, &id, "disbursement", &cw, json!({"amount_fen": 840_001, "channel": "bank_card"})).await;
    assert_eq!((status, body["errors"][0]["code"].as_str()), (422, Some("above_approved")));
    let (status, body) = p
        .act(d, &id, "disbursement", &cw, json!({"amount_fen": 840_000, "channel": "bank_card", "reference": "TX-1"}))
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("disbursed")));

    let view =
        p.case_until(&case_id, "the window shows the disbursement", |v| lane_of(v, d)["status"] == "disbursed").await;
    assert_eq!(lane_of(&view, d)["amount_fen"], 840_000);
    assert_eq!(view["status"], "decided");
    let events: Vec<&str> = view["timeline"].as_array().unwrap().iter().map(|t| t["event"].as_str().unwrap()).collect();
    for e in [
        "ReferralIssued",
        "ReferralSignedFor",
        "SupplementRequested",
        "MaterialsSupplemented",
        "ReferralApproved",
        "AidDisbursed",
    ] {
        assert!(events.contains(&e), "{e} missing from the timeline {events:?}");
    }
}

#[tokio::test]
async fn above_the_threshold_a_second_person_must_approve() {
    let d = Department::Housing;
    let p = Platform::start(&[d]).await;
    // Renovation of a D-rated house: 35,000 yuan, above housing's 20,000 threshold.
    let (case_id, id) = referred(
        &p,
        d,
        &id_number("33010219800307124"),
        json!({"aid": "housing", "kind": "renovation", "house_rating": "D"}),
    )
    .await;
    let cw = caseworker(d);
    assert_eq!(p.act(d, &id, "sign-for", &cw, json!({})).await.0, 200);
    let (status, body) = p.act(d, &id, "proposal", &cw, json!({"outcome": "approve"})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("proposed")));
    p.case_until(&case_id, "the window shows the proposal", |v| lane_of(v, d)["status"] == "proposed").await;

    let approve = json!({"approve": true});
    let (status, _) = p.act(d, &id, "approval", &cw, approve.clone()).await;
    assert_eq!(status, 403, "a caseworker does not approve");
    let self_approver = token(Role::Approver, Some(d), &format!("{d}-cw-1"));
    let (status, problem) = p.act(d, &id, "approval", &self_approver, approve.clone()).await;
    assert_eq!(status, 403, "the proposer may not approve: {problem}");
    let other_department = token(Role::Approver, Some(Department::Medical), "medical-approver-1");
    assert_eq!(p.act(d, &id, "approval", &other_department, approve.clone()).await.0, 403);
    let (status, body) = p.act(d, &id, "approval", &approver(d), approve).await;
    assert_eq!((status, body["approved_amount_fen"].as_i64()), (200, Some(3_500_000)));
    let view = p.case_until(&case_id, "the window shows the approval", |v| lane_of(v, d)["status"] == "approved").await;
    assert_eq!(lane_of(&view, d)["amount_fen"], 3_500_000);
}

#[tokio::test]
async fn commands_that_do_not_fit_the_lane_are_refused_and_stale_versions_fail() {
    let d = Department::Education;
    let p = Platform::start(&[d]).await;
    let child = id_number("33010220120915004");
    let (case_id, id) = referred(
        &p,
        d,
        &id_number("33010219800307125"),
        json!({"aid": "education", "student_id_number": child, "stage": "college", "school": "某大学"}),
    )
    .await;
    let cw = caseworker(d);
    let (status, problem) = p.act(d, &id, "proposal", &cw, json!({"outcome": "approve"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("invalid_transition")), "not signed for yet");
    let (status, _) = p.act(d, &id, "disbursement", &cw, json!({"amount_fen": 1, "channel": "cash"})).await;
    assert_eq!(status, 409, "nothing approved to disburse");
    let (status, problem) = p.act(d, &id, "proposal", &cw, json!({"outcome": "approve", "colour": "red"})).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("colour")));

    let stale = p
        .http
        .post(format!("{}/api/v1/referrals/{id}/sign-for", p.url(d)))
        .bearer_auth(&cw)
        .header("If-Match", "\"7\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 412);
    assert_eq!(p.act(d, &id, "sign-for", &cw, json!({})).await.0, 200);
    assert_eq!(p.act(d, &id, "sign-for", &second_caseworker(d), json!({})).await.0, 409);

    let (status, problem) = p.act(d, &id, "proposal", &cw, json!({"outcome": "reject"})).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("reason")));
    let (status, body) = p
        .act(d, &id, "return", &cw, json!({"reason": "the student has a full scholarship; civil affairs' matter"}))
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("returned")));
    let view = p.case_until(&case_id, "the window shows the return", |v| lane_of(v, d)["status"] == "returned").await;
    assert_eq!(lane_of(&view, d)["reason"], "the student has a full scholarship; civil affairs' matter");

    for (role, dept) in
        [(Role::WindowClerk, None), (Role::Operator, None), (Role::Caseworker, Some(Department::Medical))]
    {
        let t = token(role, dept, "someone");
        let (status, _) = p.call(reqwest::Method::GET, format!("{}/api/v1/referrals", p.url(d)), &t, None).await;
        assert_eq!(status, 403, "{role:?} of {dept:?}");
    }
}

#[tokio::test]
async fn a_redelivered_referral_creates_no_second_lane() {
    let d = Department::Temporary;
    let p = Platform::start(&[d]).await;
    let (_, id) = referred(
        &p,
        d,
        &id_number("33010219800307126"),
        json!({"aid": "temporary", "cause": "fire", "amount_requested_fen": 50_000}),
    )
    .await;
    // Republish intake's referral as a fresh message (a relay replay after a crash).
    let (_client, js) = p.nats.jetstream().await;
    let mut stream = js.get_stream("INTAKE").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut referral = None;
    for seq in state.first_sequence..=state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        if m.subject.as_str() == "onedoor.intake.referral.temporary" {
            referral = Some(m);
        }
    }
    let original = referral.expect("the referral was published");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "replayed-referral");
    headers.insert(onedoor_messaging::EVENT_ID_HEADER, uuid::Uuid::now_v7().to_string().as_str());
    js.publish_with_headers("onedoor.intake.referral.temporary", headers, original.payload.clone())
        .await
        .unwrap()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let lanes: i64 = sqlx::query_scalar("SELECT count(*) FROM referral_views").fetch_one(p.db(d)).await.unwrap();
    let opened: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ReferralReceived'")
        .fetch_one(p.db(d))
        .await
        .unwrap();
    assert_eq!((lanes, opened), (1, 1));
    let (status, page) =
        p.call(reqwest::Method::GET, format!("{}/api/v1/referrals", p.url(d)), &caseworker(d), None).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["referral_id"], id.as_str());
}

#[tokio::test]
async fn the_medical_annual_cap_spans_two_applications_of_the_same_person() {
    let d = Department::Medical;
    let p = Platform::start(&[d]).await;
    let person = id_number("33010219800307127");
    let cw = caseworker(d);
    // First application: 90,000 yuan out of pocket, 70% = 63,000, capped at 50,000: approver needed.
    let (first_case, first) = referred(&p, d, &person, medical_request(9_000_000, 0)).await;
    assert_eq!(p.referral(d, &first, &cw).await["recommendation"]["suggested_amount_fen"], 5_000_000);
    assert_eq!(p.act(d, &first, "sign-for", &cw, json!({})).await.0, 200);
    let (status, _) = p.act(d, &first, "proposal", &cw, json!({"outcome": "approve", "amount_fen": 4_500_000})).await;
    assert_eq!(status, 200);
    assert_eq!(p.act(d, &first, "approval", &approver(d), json!({"approve": true})).await.0, 200);
    let (status, _) =
        p.act(d, &first, "disbursement", &cw, json!({"amount_fen": 4_500_000, "channel": "bank_card"})).await;
    assert_eq!(status, 200);
    p.case_until(&first_case, "the first case is decided", |v| v["status"] == "decided").await;
    assert_eq!(p.close(&first_case).await.0, 200);

    // Second application of the same person: only 5,000 yuan of the cap remain.
    let (_, second) = referred(&p, d, &person, medical_request(2_000_000, 0)).await;
    let view = p.referral(d, &second, &cw).await;
    assert_eq!(view["recommendation"]["suggested_amount_fen"], 500_000);
    // The answer to a command shows the ledger as it stands too (read with the lane's lock).
    let (status, signed) = p.act(d, &second, "sign-for", &cw, json!({})).await;
    assert_eq!((status, signed["recommendation"]["suggested_amount_fen"].as_i64()), (200, Some(500_000)), "{signed}");
    let (status, problem) =
        p.act(d, &second, "proposal", &cw, json!({"outcome": "approve", "amount_fen": 600_000})).await;
    assert_eq!((status, problem["errors"][0]["code"].as_str()), (422, Some("above_limit")));
    let (status, body) = p.act(d, &second, "proposal", &cw, json!({"outcome": "approve"})).await;
    assert_eq!((status, body["approved_amount_fen"].as_i64()), (200, Some(500_000)));
}

/// A caseworker opening a referral is served the lane as this process
/// folded it at the event its inbox row names, without folding the stream
/// again; a row naming another event sends the read to the stream.
#[tokio::test]
async fn a_lane_kept_at_the_event_its_inbox_row_names_is_read_without_its_stream() {
    let d = Department::Medical;
    let p = Platform::start(&[d]).await;
    let cw = caseworker(d);
    let (_, id) = referred(&p, d, &id_number("33010219800307129"), medical_request(1_000_000, 0)).await;
    assert_eq!(p.act(d, &id, "sign-for", &cw, json!({})).await.0, 200);
    let open = || p.call(reqwest::Method::GET, format!("{}/api/v1/referrals/{id}", p.url(d)), &cw, None);

    // The stream taken away under the row (no writer does this).
    sqlx::query("DELETE FROM events WHERE stream_id = $1").bind(&id).execute(p.db(d)).await.unwrap();
    let (status, view) = open().await;
    assert_eq!((status, view["status"].as_str()), (200, Some("signed_for")), "{view}");

    sqlx::query("UPDATE referral_views SET last_event_id = $2 WHERE referral_id = $1::uuid")
        .bind(&id)
        .bind(uuid::Uuid::now_v7())
        .execute(p.db(d))
        .await
        .unwrap();
    assert_eq!(open().await.0, 404, "the stream was read, and is empty");
}

#[tokio::test]
async fn temporary_aid_for_the_same_cause_twice_a_year_needs_an_approvers_override() {
    let d = Department::Temporary;
    let p = Platform::start(&[d]).await;
    let household = id_number("33010219800307128");
    let cw = caseworker(d);
    let fire = json!({"aid": "temporary", "cause": "fire", "amount_requested_fen": 50_000, "emergency": true});
    let (first_case, first) = referred(&p, d, &household, fire.clone()).await;
    assert_eq!(p.act(d, &first, "sign-for", &cw, json!({})).await.0, 200);
    assert_eq!(p.act(d, &first, "proposal", &cw, json!({"outcome": "approve"})).await.1["status"], "approved");
    p.case_until(&first_case, "approved at the window", |v| v["status"] == "decided").await;
    assert_eq!(p.close(&first_case).await.0, 200);

    let (_, second) = referred(&p, d, &household, fire).await;
    let view = p.referral(d, &second, &cw).await;
    assert_eq!(view["recommendation"]["eligible"], false);
    assert_eq!(p.act(d, &second, "sign-for", &cw, json!({})).await.0, 200);
    let (_, body) = p.act(d, &second, "proposal", &cw, json!({"outcome": "approve", "amount_fen": 10_000})).await;
    assert_eq!(body["status"], "proposed", "even a small amount goes to an approver");
    let (status, problem) = p.act(d, &second, "approval", &approver(d), json!({"approve": true})).await;
    assert_eq!((status, problem["errors"][0]["code"].as_str()), (422, Some("override_required")));
    let (status, problem) =
        p.act(d, &second, "approval", &approver(d), json!({"approve": true, "override_annual_limit": true})).await;
    assert_eq!(
        (status, problem["errors"][0]["code"].as_str()),
        (422, Some("override_reason_required")),
        "an override needs the approver's written reason"
    );
    let overriding =
        json!({"approve": true, "override_annual_limit": true, "reason": "a second fire in the same year"});
    let (status, body) = p.act(d, &second, "approval", &approver(d), overriding).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));
    assert_eq!(body["history"].as_array().unwrap().last().unwrap()["event"], "ApprovedByOverride");
}

/// Publishes a window event on the intake stream as intake's relay would.
async fn publish_window_event<T: onedoor_contracts::IntegrationEvent>(js: &async_nats::jetstream::Context, data: T) {
    let envelope = onedoor_contracts::CloudEvent::new(data, chrono::Utc::now());
    let message = onedoor_event_store::outbox::OutboxMessage::announcing(&envelope).unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.id.to_string().as_str());
    headers.insert(onedoor_messaging::EVENT_ID_HEADER, envelope.id.to_string().as_str());
    headers.insert(onedoor_contracts::CE_TYPE_HEADER, envelope.event_type.as_str());
    js.publish_with_headers(message.subject, headers, message.payload.into()).await.unwrap().await.unwrap();
}

#[tokio::test]
async fn a_withdrawal_delivered_before_its_referral_closes_the_lane_on_arrival() {
    use onedoor_contracts::intake::{AidRequest, ApplicationWithdrawn, HardshipCause};
    let d = Department::Temporary;
    let p = Platform::start(&[d]).await;
    let (_client, js) = p.nats.jetstream().await;
    let request = AidRequest::Temporary { cause: HardshipCause::Fire, amount_requested_fen: 50_000, emergency: false };
    let referral = onedoor_department_workflow::domain::policy::testing::referral(d, request);
    let (referral_id, case_id) = (referral.referral_id, referral.case_id);
    // The withdrawal overtakes the referral (a redelivery, a replay, a concurrent batch).
    let withdrawal = ApplicationWithdrawn {
        case_id,
        referral_ids: vec![referral_id, uuid::Uuid::now_v7()],
        reason: "moved away".into(),
        withdrawn_at: chrono::Utc::now(),
    };
    publish_window_event(&js, withdrawal).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    publish_window_event(&js, referral).await;

    let cw = caseworker(d);
    let id = referral_id.to_string();
    let view = p.referral(d, &id, &cw).await;
    assert_eq!(view["status"], "withdrawn", "never live on a withdrawn application: {view}");
    let (status, body) = p.act(d, &id, "sign-for", &cw, json!({})).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = p.act(d, &id, "proposal", &cw, json!({"outcome": "approve"})).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn after_a_withdrawal_the_window_shows_what_each_department_did_never_a_live_lane() {
    use Department::{Housing, Medical, Temporary};
    let p = Platform::start(&[Medical, Temporary, Housing]).await;
    let form = application(
        &id_number("33010219800307131"),
        json!([
            medical_request(3_000_000, 1_800_000),
            {"aid": "temporary", "cause": "fire", "amount_requested_fen": 50_000},
            {"aid": "housing", "kind": "rent_subsidy", "monthly_rent_fen": 50_000}
        ]),
    );
    let created = p.submit(&form).await;
    let case_id = created["case_id"].as_str().unwrap().to_string();
    let referral = |d: Department| {
        created["lanes"].as_array().unwrap().iter().find(|l| l["department"] == d.as_str()).unwrap()["referral_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Medical approves (not yet paid); temporary pays out; housing is still at work.
    let (medical, temporary, housing) = (referral(Medical), referral(Temporary), referral(Housing));
    for (d, id) in [(Medical, &medical), (Temporary, &temporary)] {
        p.referral(d, id, &caseworker(d)).await;
        assert_eq!(p.act(d, id, "sign-for", &caseworker(d), json!({})).await.0, 200);
        assert_eq!(p.act(d, id, "proposal", &caseworker(d), json!({"outcome": "approve"})).await.0, 200);
    }
    p.referral(Housing, &housing, &caseworker(Housing)).await;
    let paid = json!({"amount_fen": 50_000, "channel": "cash", "reference": "R-1"});
    assert_eq!(p.act(Temporary, &temporary, "disbursement", &caseworker(Temporary), paid).await.0, 200);
    p.case_until(&case_id, "the window sees both", |v| {
        lane_of(v, Medical)["status"] == "approved" && lane_of(v, Temporary)["status"] == "disbursed"
    })
    .await;

    let (status, view) = p
        .call(
            reqwest::Method::POST,
            format!("{}/api/v1/cases/{case_id}/withdraw", p.intake),
            &clerk(),
            Some(json!({"reason": "the family moved away"})),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(lane_of(&view, Medical)["status"], "withdrawal_pending", "not a live-looking approval");
    assert_eq!(lane_of(&view, Housing)["status"], "withdrawal_pending", "not a live-looking referral");
    assert_eq!(lane_of(&view, Temporary)["status"], "disbursed", "already paid");
    let view = p
        .case_until(&case_id, "medical and housing confirm they closed their lanes", |v| {
            lane_of(v, Medical)["status"] == "withdrawn" && lane_of(v, Housing)["status"] == "withdrawn"
        })
        .await;
    assert_eq!(lane_of(&view, Temporary)["status"], "disbursed");
    assert_eq!(view["status"], "withdrawn");
    let nothing = json!({"amount_fen": 1, "channel": "cash"});
    let (status, _) = p.act(Medical, &medical, "disbursement", &caseworker(Medical), nothing).await;
    assert_eq!(status, 409, "nothing is paid on a withdrawn application");

    // The applicant's own words stay at the window: departments learn that
    // the applicant withdrew, not why (the minimum they need).
    let housing_view = p.referral(Housing, &housing, &caseworker(Housing)).await;
    assert_eq!(housing_view["reason"], onedoor_contracts::intake::WITHDRAWAL_AS_ANNOUNCED);
    assert!(!housing_view.to_string().contains("moved away"), "{housing_view}");
}

#[tokio::test]
async fn department_commands_refuse_unbounded_amounts_nul_characters_and_overlong_text() {
    let d = Department::Medical;
    let p = Platform::start(&[d]).await;
    let (_, id) = referred(&p, d, &id_number("33010219800307140"), medical_request(3_000_000, 1_800_000)).await;
    let cw = caseworker(d);
    assert_eq!(p.act(d, &id, "sign-for", &cw, json!({})).await.0, 200);
    for (action, body, field) in [
        ("proposal", json!({"outcome": "approve", "amount_fen": i64::MAX}), "amount_fen"),
        ("proposal", json!({"outcome": "approve", "amount_fen": -100}), "amount_fen"),
        ("proposal", json!({"outcome": "reject", "reason": "no\u{0}"}), "reason"),
        ("supplement-requests", json!({"materials": ["bank_statement"], "note": "n".repeat(501)}), "note"),
        ("return", json!({"reason": "r".repeat(501)}), "reason"),
    ] {
        let (status, problem) = p.act(d, &id, action, &cw, body).await;
        assert_eq!(status, 400, "{action}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{action}: {problem}");
    }
    assert_eq!(p.referral(d, &id, &cw).await["status"], "signed_for", "nothing changed");
}

#[tokio::test]
async fn two_approvals_at_once_for_one_patient_cannot_both_fit_under_the_cap_and_a_withdrawn_one_stops_counting() {
    use onedoor_contracts::intake::{AidRequest, ApplicationWithdrawn};
    let d = Department::Medical;
    let p = Platform::start(&[d]).await;
    let (_client, js) = p.nats.jetstream().await;
    // Two lanes of one patient (as after a re-application), each worth 40,000 yuan; the cap is 50,000.
    let request = || AidRequest::Medical {
        hospital: "h".into(),
        diagnosis: "d".into(),
        total_cost_fen: 10_000_000,
        insurance_paid_fen: 2_000_000,
        patient_id_number: None,
    };
    let (a, b) = (
        onedoor_department_workflow::domain::policy::testing::referral(d, request()),
        onedoor_department_workflow::domain::policy::testing::referral(d, request()),
    );
    let (ida, idb) = (a.referral_id.to_string(), b.referral_id.to_string());
    assert_eq!(a.applicant.id_number, b.applicant.id_number, "one patient");
    let patient = a.applicant.id_number.clone();
    let case_a = a.case_id;
    publish_window_event(&js, a).await;
    publish_window_event(&js, b).await;
    let cw = caseworker(d);
    for id in [&ida, &idb] {
        assert_eq!(p.referral(d, id, &cw).await["recommendation"]["suggested_amount_fen"], 4_000_000);
        assert_eq!(p.act(d, id, "sign-for", &cw, json!({})).await.0, 200);
        let (_, body) = p.act(d, id, "proposal", &cw, json!({"outcome": "approve"})).await;
        assert_eq!(body["status"], "proposed", "{body}");
    }
    let approve = json!({"approve": true});
    let boss = approver(d);
    let (ra, rb) = tokio::join!(
        p.act(d, &ida, "approval", &boss, approve.clone()),
        p.act(d, &idb, "approval", &boss, approve.clone())
    );
    let mut statuses = [ra.0, rb.0];
    statuses.sort();
    assert_eq!(statuses, [200, 422], "one fits under the cap, the other is refused: {ra:?} {rb:?}");
    let booked: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(amount_fen), 0)::bigint FROM ledger").fetch_one(p.db(d)).await.unwrap();
    assert!(booked <= 5_000_000, "{booked} fen booked against a 5,000,000 cap");
    // The ledger names the patient by the keyed hash of the ID number, never the number.
    let booked_for = |key: String| {
        let pool = p.db(d).clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM ledger WHERE ledger_key = $1")
                .bind(key)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(booked_for(patient.clone()).await, 0, "the ID number in the ledger");
    assert_eq!(booked_for(onedoor_personal_data::Keyring::development().lookup(&patient)).await, 1);

    // The approved one is withdrawn at the window before payment: it no longer counts.
    let (approved, waiting) = if ra.0 == 200 { (&ida, &idb) } else { (&idb, &ida) };
    let case_of_approved = if approved == &ida { case_a } else { uuid::Uuid::nil() };
    let withdrawal = ApplicationWithdrawn {
        case_id: case_of_approved,
        referral_ids: vec![approved.parse().unwrap()],
        reason: "moved away".into(),
        withdrawn_at: chrono::Utc::now(),
    };
    publish_window_event(&js, withdrawal).await;
    onedoor_test_support::driver::eventually(
        "the withdrawal is booked out",
        std::time::Duration::from_secs(20),
        || async {
            let status = p.referral(d, approved, &cw).await["status"].clone();
            if status == "withdrawn" { Ok(()) } else { Err(status.to_string()) }
        },
    )
    .await;
    let (status, body) = p.act(d, waiting, "approval", &boss, approve).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")), "{body}");
}

#[tokio::test]
async fn a_spouse_applying_for_the_same_cause_in_the_same_year_counts_as_the_household_applying() {
    let d = Department::Temporary;
    let p = Platform::start(&[d]).await;
    let (husband, wife) = (id_number("33010219800307151"), id_number("33010219820517162"));
    let fire = json!({"aid": "temporary", "cause": "fire", "amount_requested_fen": 50_000});
    let cw = caseworker(d);
    let mut first = application(&husband, json!([fire.clone()]));
    first["household"]["members"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "李梅", "id_number": wife, "relation": "spouse"}));
    let created = p.submit(&first).await;
    let first_case = created["case_id"].as_str().unwrap().to_string();
    let id = created["lanes"][0]["referral_id"].as_str().unwrap().to_string();
    p.referral(d, &id, &cw).await;
    assert_eq!(p.act(d, &id, "sign-for", &cw, json!({})).await.0, 200);
    assert_eq!(p.act(d, &id, "proposal", &cw, json!({"outcome": "approve"})).await.1["status"], "approved");

    // The wife applies at the window for the same fire: the household already had it.
    let mut second = application(&wife, json!([fire]));
    second["applicant"]["name"] = json!("李梅");
    second["household"]["members"][0] = json!({"name": "李梅", "id_number": wife, "relation": "applicant"});
    second["household"]["members"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "张三", "id_number": husband, "relation": "spouse"}));
    // While the husband's case is open, the household's line is taken: 409.
    let (status, problem) = p
        .call(reqwest::Method::POST, format!("{}/api/v1/applications", p.intake), &clerk(), Some(second.clone()))
        .await;
    assert_eq!((status, problem["errors"][0]["code"].as_str()), (409, Some("open_case_exists")), "{problem}");
    assert_eq!(problem["errors"][0]["message"], created["case_number"], "the clerk's own township: the case is named");
    // Once it is closed, her application goes through, and the department
    // finds the household's approval in its ledger.
    p.case_until(&first_case, "approved at the window", |v| v["status"] == "decided").await;
    assert_eq!(p.close(&first_case).await.0, 200);
    let created = p.submit(&second).await;
    let id = created["lanes"][0]["referral_id"].as_str().unwrap().to_string();
    let view = p.referral(d, &id, &cw).await;
    assert_eq!(view["recommendation"]["eligible"], false, "{view}");
    assert_eq!(view["recommendation"]["needs_approver_override"], true);
}

#[tokio::test]
async fn a_renovation_grant_counts_for_five_years_and_a_rent_subsidy_for_twelve_months() {
    let d = Department::Housing;
    let mut p = Platform::start(&[d]).await;
    let applicant = id_number("33010219800307171");
    for (category, months_ago) in [("renovation", 26), ("rent_subsidy", 13)] {
        // Two years ago: within the renovation's five; thirteen months ago:
        // the subsidy's year is over. Booked as an earlier release booked
        // them: under the ID number itself.
        sqlx::query(
            "INSERT INTO ledger (referral_id, ledger_key, category, year, amount_fen, booked_at)
             VALUES ($1, $2, $3, 2024, 2000000, now() - make_interval(months => $4))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(&applicant)
        .bind(category)
        .bind(months_ago)
        .execute(p.db(d))
        .await
        .unwrap();
    }
    // A new release re-keys them at start-up, and still counts them.
    p.restart(d).await;
    let plain: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger WHERE ledger_key = $1")
        .bind(&applicant)
        .fetch_one(p.db(d))
        .await
        .unwrap();
    assert_eq!(plain, 0, "the ID number left in the ledger");

    let cw = caseworker(d);
    let renovation = json!({"aid": "housing", "kind": "renovation", "house_rating": "C"});
    let (case_id, id) = referred(&p, d, &applicant, renovation).await;
    let view = p.referral(d, &id, &cw).await;
    assert_eq!(view["recommendation"]["eligible"], false, "{view}");
    assert_eq!(view["recommendation"]["needs_approver_override"], true);
    assert_eq!(p.act(d, &id, "return", &cw, json!({"reason": "asked for rent instead"})).await.0, 200);
    p.case_until(&case_id, "the window sees the return", |v| lane_of(v, d)["status"] == "returned").await;

    let (_, id) =
        referred(&p, d, &applicant, json!({"aid": "housing", "kind": "rent_subsidy", "monthly_rent_fen": 50_000}))
            .await;
    let view = p.referral(d, &id, &cw).await;
    assert_eq!(view["recommendation"]["eligible"], true, "the earlier subsidy's twelve months are over: {view}");
}

#[tokio::test]
async fn the_inbox_filters_by_township_and_by_overdue_and_a_decided_lane_is_never_overdue() {
    let d = Department::Medical;
    let p = Platform::start(&[d]).await;
    let (_, late) = referred(&p, d, &id_number("33010219800307127"), medical_request(3_000_000, 1_800_000)).await;
    let (_, decided) = referred(&p, d, &id_number("33010219800307128"), medical_request(3_000_000, 1_800_000)).await;
    let (_, on_time) = referred(&p, d, &id_number("33010219800307129"), medical_request(3_000_000, 1_800_000)).await;
    let cw = caseworker(d);
    p.act(d, &decided, "sign-for", &cw, json!({})).await;
    assert_eq!(p.act(d, &decided, "proposal", &cw, json!({"outcome": "approve"})).await.0, 200);
    // Twenty working days pass for two of them.
    sqlx::query("UPDATE referral_views SET deadline = DATE '2026-01-05' WHERE referral_id = ANY($1)")
        .bind(vec![uuid::Uuid::parse_str(&late).unwrap(), uuid::Uuid::parse_str(&decided).unwrap()])
        .execute(p.db(d))
        .await
        .unwrap();

    let ids = |page: &Value| -> Vec<String> {
        let mut ids: Vec<String> =
            page["items"].as_array().unwrap().iter().map(|r| r["referral_id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids
    };
    let inbox = |query: &str| p.call(reqwest::Method::GET, format!("{}/api/v1/referrals?{query}", p.url(d)), &cw, None);
    let (status, page) = inbox("overdue=true").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), std::slice::from_ref(&late), "an approved lane is no longer counting");
    let (_, page) = inbox("overdue=false").await;
    let mut within = vec![decided.clone(), on_time.clone()];
    within.sort();
    assert_eq!(ids(&page), within);
    let (_, page) = inbox("township=330102001").await;
    assert_eq!(ids(&page).len(), 3);
    let (_, page) = inbox("township=330106002").await;
    assert!(ids(&page).is_empty());
    let (status, page) = inbox("township=33010").await;
    assert_eq!((status, page["errors"][0]["field"].as_str()), (400, Some("township")));
}

/// A department upgraded from the release whose one window consumer read
/// four subjects (a grant that could not pin them): the former consumer is
/// removed at start-up, the consumers of one subject each read the
/// window's stream from its start, and the inbox they share with the former
/// one keeps every event it handled from being handled again.
#[tokio::test]
async fn an_upgraded_department_retires_its_former_consumer_and_handles_no_window_event_twice() {
    use async_nats::jetstream::consumer::pull;
    let d = Department::Temporary;
    let mut p = Platform::start(&[d]).await;
    let (_, id) = referred(
        &p,
        d,
        &id_number("33010219800307131"),
        json!({"aid": "temporary", "cause": "fire", "amount_requested_fen": 50_000}),
    )
    .await;
    let (status, _) = p.act(d, &id, "sign-for", &caseworker(d), json!({})).await;
    assert_eq!(status, 200);
    let events = |p: &Platform| {
        let pool = p.db(d).clone();
        async move { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap() }
    };
    let before = events(&p).await;

    // As the former release left the broker: its consumer, and none of the five.
    let (_client, js) = p.nats.jetstream().await;
    let window = js.get_stream("INTAKE").await.unwrap();
    for name in ["referrals", "documents", "supplements", "withdrawals", "erasures"] {
        window.delete_consumer(&format!("temporary-aid-window-{name}")).await.unwrap();
    }
    let former = pull::Config {
        durable_name: Some("temporary-aid-window".into()),
        filter_subjects: vec![
            "onedoor.intake.referral.temporary".into(),
            "onedoor.intake.application.withdrawn".into(),
        ],
        ..Default::default()
    };
    window.create_consumer(former).await.unwrap();

    p.restart(d).await;
    onedoor_test_support::driver::eventually(
        "the former consumer is removed",
        std::time::Duration::from_secs(20),
        || {
            let window = window.clone();
            async move {
                match window.consumer_info("temporary-aid-window").await {
                    Err(_) => Ok(()),
                    Ok(_) => Err("still there".to_string()),
                }
            }
        },
    )
    .await;
    onedoor_test_support::driver::eventually(
        "the new consumers read the stream",
        std::time::Duration::from_secs(20),
        || {
            let window = window.clone();
            async move {
                match window.consumer_info("temporary-aid-window-referrals").await {
                    Ok(i) if i.num_pending == 0 && i.num_ack_pending == 0 && i.delivered.stream_sequence > 0 => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
    assert_eq!(events(&p).await, before, "the referral was not opened again");
    let view = p.referral(d, &id, &caseworker(d)).await;
    assert_eq!(view["status"], "signed_for", "{view}");
}
