use crate::support::*;
use onedoor_contracts::Department;
use onedoor_http_kit::Role;
use serde_json::{Value, json};
use std::time::Duration;

fn fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_string(), e["code"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once_and_nothing_is_stored() {
    let intake = TestIntake::spawn().await;
    let mut form = application(&applicant_id(), &ALL_MATERIALS);
    form["applicant"]["id_number"] = json!("330102198003071230"); // wrong check digit
    form["applicant"]["phone"] = json!("12345");
    form["household"]["division_code"] = json!("33010200100");
    form["household"]["hukou"] = json!("city");
    form["household"]["members"][1]["id_number"] = json!(id_number("33010220120231004")); // 31 February
    form["household"]["members"][1]["relation"] = json!("cousin");
    form["household"]["monthly_income_fen"] = json!(-1);
    form["household"]["existing_support"] = json!(["wubao"]);
    form["requests"][1]["stage"] = json!("university");
    form["requests"][2]["kind"] = json!("palace");
    form["requests"][3]["cause"] = json!("boredom");
    form["requests"][0]["insurance_paid_fen"] = json!(9_000_000);
    form["materials"] = json!(["id_card", "selfie"]);

    let (status, problem, headers) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 400);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["code"], "validation_failed");
    let got = fields(&problem);
    for (field, code) in [
        ("applicant.id_number", "invalid_check_digit"),
        ("applicant.phone", "invalid_phone"),
        ("household.division_code", "invalid_division_code"),
        ("household.hukou", "invalid_value"),
        ("household.members[1].id_number", "invalid_birth_date"),
        ("household.members[1].relation", "invalid_value"),
        ("household.monthly_income_fen", "negative_amount"),
        ("household.existing_support[0]", "invalid_value"),
        ("requests[0].insurance_paid_fen", "exceeds_total_cost"),
        ("requests[1].stage", "invalid_value"),
        ("requests[2].kind", "invalid_value"),
        ("requests[3].cause", "invalid_value"),
        ("materials[1]", "unknown_material"),
    ] {
        assert!(got.contains(&(field.to_string(), code.to_string())), "{field} {code} missing from {got:?}");
    }
    assert_eq!(intake.count("SELECT count(*) FROM events").await, 0);
    assert_eq!(intake.count("SELECT count(*) FROM case_views").await, 0);
    assert_eq!(intake.count("SELECT count(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn structural_rules_of_a_form_are_checked() {
    let intake = TestIntake::spawn().await;
    let mut form = application(&applicant_id(), &ALL_MATERIALS);
    form["household"]["members"] = json!([form["household"]["members"][1].clone()]); // the applicant is not listed
    form["requests"] = json!([
        {"aid": "temporary", "cause": "fire", "amount_requested_fen": 1},
        {"aid": "temporary", "cause": "fire", "amount_requested_fen": 1},
        {"aid": "housing", "kind": "renovation"},
        {"aid": "education", "student_id_number": child_of(&applicant_id()), "stage": "junior", "school": "x", "hospital": "y"}
    ]);
    let (status, problem, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 400);
    let got = fields(&problem);
    for (field, code) in [
        ("household.members", "applicant_not_listed"),
        ("requests[1].aid", "duplicate_aid_line"),
        ("requests[2].house_rating", "required"),
        ("requests[3].hospital", "not_applicable"),
    ] {
        assert!(got.contains(&(field.to_string(), code.to_string())), "{field} {code} missing from {got:?}");
    }
    form["requests"] = json!([]);
    let (status, problem, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 400);
    assert!(fields(&problem).contains(&("requests".into(), "required".into())));
}

#[tokio::test]
async fn a_multi_line_application_missing_materials_gets_one_notice_and_no_referral() {
    let intake = TestIntake::spawn().await;
    let (status, body, headers) =
        intake.post(&clerk(), "/api/v1/applications", &application(&applicant_id(), &["id_card", "hukou_book"])).await;
    assert_eq!(status, 201);
    assert_eq!(body["status"], "awaiting_materials");
    assert_eq!(headers["location"], format!("/api/v1/cases/{}", body["case_id"].as_str().unwrap()));
    let missing: Vec<(&str, Vec<&str>)> = body["missing_materials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["code"].as_str().unwrap(),
                m["needed_for"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(missing.len(), 8, "every missing item once: {missing:?}");
    assert!(missing.contains(&("income_statement", vec!["medical", "education", "housing", "temporary"])));
    assert!(missing.contains(&("tenancy_proof", vec!["housing"])));
    assert!(body["lanes"].as_array().unwrap().iter().all(|l| l["status"] == "pending" && l["referral_id"].is_null()));
    let published = intake.published_at_least(0).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(intake.published().await.iter().all(|(s, _)| !s.contains(".referral.")), "no referral: {published:?}");

    // Handing in the rest completes the application and sends the four referrals.
    let case_id = body["case_id"].as_str().unwrap();
    let (status, view, _) = intake
        .post(&clerk(), &format!("/api/v1/cases/{case_id}/materials"), &json!({"materials": ALL_MATERIALS}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(view["status"], "in_progress");
    assert_eq!(view["missing_materials"], json!([]));
    let referrals: Vec<String> = intake
        .published_at_least(5)
        .await
        .into_iter()
        .filter(|(s, _)| s.starts_with("onedoor.intake.referral."))
        .map(|(s, _)| s)
        .collect();
    assert_eq!(referrals.len(), 4);
}

#[tokio::test]
async fn referrals_carry_what_each_department_needs_and_no_more() {
    let intake = TestIntake::spawn().await;
    let (status, body, _) =
        intake.post(&clerk(), "/api/v1/applications", &application(&applicant_id(), &ALL_MATERIALS)).await;
    assert_eq!((status, body["status"].as_str()), (201, Some("accepted")));
    let lanes = body["lanes"].as_array().unwrap();
    assert_eq!(lanes.len(), 4);
    assert!(lanes.iter().all(|l| l["status"] == "referred" && l["referral_id"].is_string()));

    let published = intake.published_at_least(5).await;
    let medical = published.iter().find(|(s, _)| s == "onedoor.intake.referral.medical").expect("medical referral");
    let data = &medical.1["data"];
    assert_eq!(medical.1["type"], "onedoor.intake.referral_issued.v4");
    assert_eq!(data["members"], json!([]), "medical's rules are per patient, not per household");
    assert_eq!(data["household_id"], json!(null), "nor the household's id");
    let temporary =
        published.iter().find(|(s, _)| s == "onedoor.intake.referral.temporary").expect("temporary referral");
    let (_, case, _) = intake.get(&clerk(), &format!("/api/v1/cases/{}", body["case_id"].as_str().unwrap())).await;
    assert!(case["household_id"].is_string(), "{case}");
    assert_eq!(temporary.1["data"]["household_id"], case["household_id"], "per-household rules key on the register");
    assert_eq!(data["request"]["aid"], "medical");
    assert_eq!(data["request"]["total_cost_fen"], 3000000);
    assert_eq!(data["household"]["members"], 2, "the department gets the household size, not the members");
    assert_eq!(data["applicant"].get("phone"), None, "the window sends the applicant's messages");
    assert_eq!(data["household"].get("monthly_income_fen"), None, "medical aid follows the standing, not the income");
    let education = published.iter().find(|(s, _)| s == "onedoor.intake.referral.education").unwrap();
    assert!(education.1["data"]["household"]["monthly_income_fen"].is_i64(), "education's income test");
    assert!(!medical.1.to_string().contains("某中学"), "no other line's details in the medical referral");
    assert!(!medical.1.to_string().contains(&child_of(&applicant_id())), "no other member's ID number");
    let lane = lanes.iter().find(|l| l["department"] == "medical").unwrap();
    assert_eq!(data["referral_id"], lane["referral_id"]);
}

#[tokio::test]
async fn an_emergency_temporary_request_is_referred_at_once() {
    let intake = TestIntake::spawn().await;
    let mut form = application(&applicant_id(), &["id_card"]);
    form["requests"][3]["emergency"] = json!(true);
    let (status, body, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!((status, body["status"].as_str()), (201, Some("awaiting_materials")));
    let lanes = body["lanes"].as_array().unwrap();
    let temporary = lanes.iter().find(|l| l["department"] == "temporary").unwrap();
    assert_eq!(temporary["status"], "referred");
    assert!(lanes.iter().filter(|l| l["department"] != "temporary").all(|l| l["status"] == "pending"));
    let published = intake.published_at_least(1).await;
    let referral = published.iter().find(|(s, _)| s == "onedoor.intake.referral.temporary").unwrap();
    assert!(
        referral.1["data"]["missing_materials"].as_array().unwrap().contains(&json!("hardship_statement")),
        "the department knows which paperwork follows"
    );
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_same_case() {
    let intake = TestIntake::spawn().await;
    let form = application(&applicant_id(), &ALL_MATERIALS);
    let send = |body: &Value| {
        intake.send(
            intake
                .http()
                .post(format!("{}/api/v1/applications", intake.base()))
                .bearer_auth(clerk())
                .header("Idempotency-Key", "window-3-0001")
                .json(body),
        )
    };
    let (first_status, first, _) = send(&form).await;
    let (second_status, second, headers) = send(&form).await;
    assert_eq!((first_status, second_status), (201, 201));
    assert_eq!(first, second);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(intake.count("SELECT count(*) FROM case_views").await, 1);
    // The key keeps a keyed hash of the body, not the application.
    let kept: String =
        sqlx::query_scalar("SELECT request::text FROM idempotency_keys").fetch_one(intake.db()).await.unwrap();
    assert!(!kept.contains(&applicant_id()) && !kept.contains("张三"), "{kept}");

    let mut other = form.clone();
    other["household"]["address"] = json!("elsewhere");
    let (status, problem, _) = send(&other).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("idempotency_key_reused")));
    assert_eq!(intake.count("SELECT count(*) FROM case_views").await, 1);
}

#[tokio::test]
async fn an_idempotency_key_and_the_application_it_keeps_expire_after_a_week() {
    let mut intake = TestIntake::spawn().await;
    let send = |body: Value| {
        let request = intake
            .http()
            .post(format!("{}/api/v1/applications", intake.base()))
            .bearer_auth(clerk())
            .header("Idempotency-Key", "window-3-0002")
            .json(&body);
        intake.send(request)
    };
    let (status, _, _) = send(application(&applicant_id(), &ALL_MATERIALS)).await;
    assert_eq!(status, 201);
    let age = |days: i32| {
        sqlx::query("UPDATE idempotency_keys SET created_at = now() - make_interval(days => $1)").bind(days)
    };
    age(6).execute(intake.db()).await.unwrap();
    let other = application(&id_number("33010219800307302"), &ALL_MATERIALS);
    assert_eq!(send(other.clone()).await.0, 422, "six days on, the key still answers for its application");

    // Past the week the key is claimed afresh by a new application.
    age(8).execute(intake.db()).await.unwrap();
    let (status, created, headers) = send(other).await;
    assert_eq!(status, 201, "{created}");
    assert!(headers.get("idempotent-replayed").is_none());
    assert_eq!(intake.count("SELECT count(*) FROM case_views").await, 2);

    // And a key left alone past its week is removed, with the application it kept.
    age(8).execute(intake.db()).await.unwrap();
    intake.restart().await;
    onedoor_test_support::driver::eventually("the expired key is removed", Duration::from_secs(10), || async {
        match intake.count("SELECT count(*) FROM idempotency_keys").await {
            0 => Ok(()),
            n => Err(format!("{n} keys")),
        }
    })
    .await;
}

#[tokio::test]
async fn a_second_open_case_for_the_same_applicant_and_line_names_the_first() {
    let intake = TestIntake::spawn().await;
    let (_, first, _) =
        intake.post(&clerk(), "/api/v1/applications", &application(&applicant_id(), &ALL_MATERIALS)).await;
    let mut again = application(&applicant_id(), &ALL_MATERIALS);
    again["requests"] = json!([again["requests"][2].clone()]);
    let (status, problem, _) = intake.post(&clerk(), "/api/v1/applications", &again).await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "duplicate_application");
    let number = first["case_number"].as_str().unwrap();
    assert!(problem["detail"].as_str().unwrap().contains(number), "{problem}");
    assert_eq!(problem["errors"][0]["message"], number);
    assert_eq!(intake.count("SELECT count(*) FROM case_views").await, 1);
    // Of several lines held, the first in the form's order is named.
    let mut two = application(&applicant_id(), &ALL_MATERIALS);
    two["requests"] = json!([two["requests"][2].clone(), two["requests"][0].clone()]);
    let (status, problem, _) = intake.post(&clerk(), "/api/v1/applications", &two).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (409, Some("requests[0].aid")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("housing"), "{problem}");

    // Once the first case is withdrawn, the household may apply again.
    let case_id = first["case_id"].as_str().unwrap();
    let (status, _, _) =
        intake.post(&clerk(), &format!("/api/v1/cases/{case_id}/withdraw"), &json!({"reason": "wrong line"})).await;
    assert_eq!(status, 200);
    let (status, _, _) = intake.post(&clerk(), "/api/v1/applications", &again).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn only_clerks_of_the_township_reach_its_cases() {
    let intake = TestIntake::spawn().await;
    let form = application(&applicant_id(), &ALL_MATERIALS);
    let (_, created, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    let case = format!("/api/v1/cases/{}", created["case_id"].as_str().unwrap());

    let (status, _, _) = intake.send(intake.http().get(format!("{}{case}", intake.base()))).await;
    assert_eq!(status, 401, "no token");
    let (status, _, _) = intake.get("not.a.token", &case).await;
    assert_eq!(status, 401, "a bad token");
    for role in [Role::Caseworker, Role::Approver, Role::Operator, Role::Auditor] {
        let other = token(role, Some(TOWNSHIP), Some(Department::Medical), "someone");
        assert_eq!(intake.get(&other, &case).await.0, 403, "{role:?} reads no case");
        assert_eq!(intake.post(&other, "/api/v1/applications", &form).await.0, 403, "{role:?} submits nothing");
    }
    let neighbour = token(Role::WindowClerk, Some("330102002"), None, "clerk-9");
    assert_eq!(intake.get(&neighbour, &case).await.0, 404, "another township's case does not exist for them");
    assert_eq!(intake.post(&neighbour, &format!("{case}/withdraw"), &json!({"reason": "x"})).await.0, 404);
    let (_, page, _) = intake.get(&neighbour, "/api/v1/cases").await;
    assert_eq!(page["items"], json!([]));
    let (status, problem, _) = intake.post(&neighbour, "/api/v1/applications", &form).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")), "a household of another township");
}

#[tokio::test]
async fn the_case_view_masks_the_id_number_and_keeps_it_out_of_the_list() {
    let intake = TestIntake::spawn().await;
    let id = applicant_id();
    let (_, created, _) = intake.post(&clerk(), "/api/v1/applications", &application(&id, &ALL_MATERIALS)).await;
    let (status, view, headers) =
        intake.get(&clerk(), &format!("/api/v1/cases/{}", created["case_id"].as_str().unwrap())).await;
    assert_eq!(status, 200);
    assert_eq!(view["applicant"]["id_number_masked"], format!("{}********{}", &id[..6], &id[14..]));
    assert!(!view.to_string().contains(&id), "the full ID number is not in the view");
    assert_eq!(headers["etag"], format!("\"{}.{}\"", view["version"], today()));
    assert_eq!(view["accepted_by"], "clerk-7");
    let (_, page, _) = intake.get(&clerk(), "/api/v1/cases").await;
    assert!(!page.to_string().contains(&id));
}

#[tokio::test]
async fn the_case_list_filters_and_pages_newest_first() {
    let intake = TestIntake::spawn().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let applicant = id_number(&format!("3301021980030712{n}"));
        let mut form = application(&applicant, if n % 2 == 0 { &ALL_MATERIALS[..] } else { &["id_card"][..] });
        form["household"]["members"] = json!([form["household"]["members"][0].clone()]);
        form["requests"] = json!([form["requests"][3].clone()]);
        let (status, body, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["case_id"].as_str().unwrap().to_string());
    }
    let (_, first, _) = intake.get(&clerk(), "/api/v1/cases?limit=2").await;
    let (_, second, _) =
        intake.get(&clerk(), &format!("/api/v1/cases?limit=2&cursor={}", first["next_cursor"].as_str().unwrap())).await;
    let (_, third, _) = intake
        .get(&clerk(), &format!("/api/v1/cases?limit=2&cursor={}", second["next_cursor"].as_str().unwrap()))
        .await;
    let listed: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().iter().map(|c| c["case_id"].as_str().unwrap().to_string()))
        .collect();
    ids.reverse();
    assert_eq!(listed, ids, "newest first, every case once");
    assert!(third["next_cursor"].is_null());

    let (_, waiting, _) = intake.get(&clerk(), "/api/v1/cases?status=awaiting_materials").await;
    assert_eq!(waiting["items"].as_array().unwrap().len(), 2);
    let (_, overdue, _) = intake.get(&clerk(), "/api/v1/cases?overdue=true").await;
    assert_eq!(overdue["items"], json!([]));
    let (status, problem, _) = intake.get(&clerk(), "/api/v1/cases?status=lost&limit=0&cursor=zzz").await;
    assert_eq!(status, 400);
    assert_eq!(fields(&problem).len(), 3);
}

#[tokio::test]
async fn intake_starts_and_accepts_applications_while_nats_is_away_and_refers_them_when_it_returns() {
    let db = onedoor_test_support::fresh_database().await;
    let mut nats = onedoor_test_support::TestNats::start();
    nats.server.stop();
    let started = tokio::time::timeout(
        Duration::from_secs(20),
        onedoor_test_support::driver::TestApp::start(intake::Intake::with_defaults().unwrap(), db, &nats),
    )
    .await;
    let app = started.expect("intake starts without its broker");
    let (status, ready, _) = app.client.get("", "/health/ready").await;
    assert_eq!(status, 200, "ready to serve its API: {ready}");
    assert_eq!(ready["checks"]["nats"], "down");
    let (status, created, _) =
        app.post(&clerk(), "/api/v1/applications", &application(&applicant_id(), &ALL_MATERIALS)).await;
    assert_eq!(status, 201, "{created}");

    nats.server.restart().unwrap();
    let (_client, js) = nats.jetstream().await;
    onedoor_test_support::driver::eventually("the referrals reach the stream", Duration::from_secs(30), || async {
        match js.get_stream("INTAKE").await {
            Ok(mut stream) => {
                let n = stream.info().await.map(|i| i.state.messages).unwrap_or(0);
                if n >= 5 { Ok(()) } else { Err(format!("{n} messages")) }
            }
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}

/// Today at the service halls (China Standard Time), as in a dated ETag.
fn today() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8)).format("%Y%m%d").to_string()
}

#[tokio::test]
async fn the_case_view_etag_changes_with_the_day_because_overdue_flags_do() {
    let intake = TestIntake::spawn().await;
    let (_, created, _) =
        intake.post(&clerk(), "/api/v1/applications", &application(&applicant_id(), &ALL_MATERIALS)).await;
    let path = format!("/api/v1/cases/{}", created["case_id"].as_str().unwrap());
    // Quiet: the acceptance message recorded (it moves the version too).
    intake
        .case_until(created["case_id"].as_str().unwrap(), "the message is recorded", |v| {
            v["notifications"].as_array().is_some_and(|n| n.len() == 1)
        })
        .await;
    let (_, view, headers) = intake.get(&clerk(), &path).await;
    let version = view["version"].as_i64().unwrap();
    assert_eq!(headers["etag"], format!("\"{version}.{}\"", today()));
    let conditional = |tag: String| {
        intake.http().get(format!("{}{path}", intake.base())).bearer_auth(clerk()).header("if-none-match", tag)
    };
    let (status, _, _) = intake.send(conditional(format!("\"{version}.{}\"", today()))).await;
    assert_eq!(status, 304, "unchanged today");
    let (status, _, _) = intake.send(conditional(format!("\"{version}.20000101\""))).await;
    assert_eq!(status, 200, "a copy from another day may hold other overdue flags");
    let (status, _, _) = intake.send(conditional(format!("\"{version}\""))).await;
    assert_eq!(status, 200);
    // A command's If-Match compares the version alone.
    let request = intake
        .http()
        .post(format!("{}{path}/materials", intake.base()))
        .bearer_auth(clerk())
        .header("if-match", format!("\"{version}.20000101\""))
        .json(&json!({"materials": ["id_card"]}));
    let (status, body, _) = intake.send(request).await;
    assert_ne!(status, 412, "{body}");
}

#[tokio::test]
async fn unbounded_amounts_nul_characters_and_non_ascii_id_numbers_are_400s_naming_the_field() {
    let intake = TestIntake::spawn().await;
    let mut form = application(&applicant_id(), &ALL_MATERIALS);
    form["applicant"]["name"] = json!("张\u{0}三");
    form["household"]["address"] = json!("x".repeat(3000));
    form["requests"][0]["total_cost_fen"] = json!(i64::MAX);
    let (status, problem, headers) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for field in ["applicant.name", "household.address", "requests[0].total_cost_fen"] {
        assert!(fields.contains(&field), "{field} named in {problem}");
    }

    let mut form = application(&applicant_id(), &ALL_MATERIALS);
    form["applicant"]["id_number"] = json!("1101051949123100中X");
    let (status, problem, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == "applicant.id_number"), "{problem}");
    assert_eq!(intake.count("SELECT count(*) FROM events").await, 0, "nothing changed");
}

#[tokio::test]
async fn two_clerks_submitting_for_one_person_at_once_get_one_case_and_one_409_never_a_500() {
    let intake = TestIntake::spawn().await;
    let neighbour = token(Role::WindowClerk, Some("330102002"), None, "clerk-9");
    let clerk_here = clerk();
    let mut rounds = Vec::new();
    for n in 0..30 {
        let applicant = id_number(&format!("3301021980{:02}{:02}123", 1 + n / 28, 1 + n % 28));
        let here = application(&applicant, &ALL_MATERIALS);
        // The same person at the neighbouring township's window, lines in the other order.
        let mut there = application(&applicant, &ALL_MATERIALS);
        there["household"]["division_code"] = json!("330102002001");
        let mut requests = there["requests"].as_array().unwrap().clone();
        requests.reverse();
        there["requests"] = json!(requests);
        rounds.push((here, there));
    }
    let all = rounds.iter().map(|(here, there)| async {
        let (a, b) = tokio::join!(
            intake.post(&clerk_here, "/api/v1/applications", here),
            intake.post(&neighbour, "/api/v1/applications", there)
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        (statuses, a.1, b.1)
    });
    for (statuses, a, b) in futures::future::join_all(all).await {
        assert_eq!(statuses, [201, 409], "{a} / {b}");
    }
}

#[tokio::test]
async fn a_medical_request_names_its_patient_who_must_be_a_household_member() {
    let intake = TestIntake::spawn().await;
    let mut form = application(&applicant_id(), &ALL_MATERIALS);
    form["requests"][0]["patient_id_number"] = json!(id_number("11010519700101001"));
    let (status, problem, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "requests[0].patient_id_number" && e["code"] == "patient_not_listed"),
        "{problem}"
    );

    form["requests"][0]["patient_id_number"] = json!(child_of(&applicant_id()));
    let (status, created, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 201, "{created}");
    let published = intake.published_at_least(5).await;
    let (_, medical) = published.iter().find(|(s, _)| s == "onedoor.intake.referral.medical").unwrap();
    assert_eq!(medical["type"], "onedoor.intake.referral_issued.v4");
    assert_eq!(medical["data"]["request"]["patient_id_number"], child_of(&applicant_id()));
    let (_, temporary) = published.iter().find(|(s, _)| s == "onedoor.intake.referral.temporary").unwrap();
    let members = temporary["data"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "temporary aid is once a year per household");
    assert!(members.iter().all(|m| m.as_object().unwrap().len() == 2), "ID number and relation only: {members:?}");
}
