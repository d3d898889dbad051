//! The loop around the household, from the window to the departments and
//! back: targeted supplement requests, a returned lane re-routed to another
//! line, and closure once every lane is final.

use crate::harness::*;
use onedoor_contracts::Department::{self, *};
use onedoor_http_kit::Role;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Waits until the department's lane has `status` (and, if given, `event` in its history).
async fn lane_reaches(p: &Platform, d: Department, id: &str, status: &str, event: Option<&str>) -> Value {
    let start = Instant::now();
    loop {
        let lane = p.referral(d, id, &caseworker(d)).await;
        let has_event = event.is_none_or(|e| lane["history"].as_array().unwrap().iter().any(|h| h["event"] == e));
        if lane["status"] == status && has_event {
            return lane;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{d} never reached {status} / {event:?}: {lane}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn referral_of(created: &Value, d: Department) -> String {
    lane_of(created, d)["referral_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_supplement_asked_by_housing_does_not_resume_education_and_unknown_items_are_refused() {
    let p = Platform::start(&[Housing, Education]).await;
    let created = p
        .submit(&application(
            &id_number("33010219800307201"),
            json!([sample::education(), sample::rent_subsidy(80_000)]),
        ))
        .await;
    let case_id = created["case_id"].as_str().unwrap().to_string();
    let (housing, education) = (referral_of(&created, Housing), referral_of(&created, Education));
    for (d, id) in [(Housing, &housing), (Education, &education)] {
        p.referral(d, id, &caseworker(d)).await;
        assert_eq!(p.act(d, id, "sign-for", &caseworker(d), json!({})).await.0, 200);
    }

    // A code the window cannot hand in would leave the lane waiting forever: 400, nothing changes.
    let (status, problem) =
        p.act(Housing, &housing, "supplement-requests", &caseworker(Housing), json!({"materials": ["passport"]})).await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(
        (problem["errors"][0]["field"].as_str(), problem["errors"][0]["code"].as_str()),
        (Some("materials[0]"), Some("unknown_material"))
    );
    assert_eq!(p.referral(Housing, &housing, &caseworker(Housing)).await["status"], "signed_for");

    let ask = |items: Value| json!({"materials": items, "note": "最近三个月"});
    let (status, _) = p
        .act(
            Housing,
            &housing,
            "supplement-requests",
            &caseworker(Housing),
            ask(json!(["bank_statement", "property_certificate"])),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = p
        .act(Education, &education, "supplement-requests", &caseworker(Education), ask(json!(["school_fee_receipt"])))
        .await;
    assert_eq!(status, 200);
    p.case_until(&case_id, "the window sees both requests", |v| {
        lane_of(v, Housing)["status"] == "supplement_requested"
            && lane_of(v, Education)["status"] == "supplement_requested"
    })
    .await;

    // Half of housing's request: housing keeps waiting, and so does education.
    let (status, view) = p.hand_in(&case_id, &["bank_statement"]).await;
    assert_eq!(status, 200);
    assert_eq!(lane_of(&view, Housing)["status"], "supplement_requested");
    assert_eq!(lane_of(&view, Education)["status"], "supplement_requested");
    lane_reaches(&p, Housing, &housing, "supplement_requested", Some("PartlySupplemented")).await;

    // The rest of housing's request: housing resumes, education does not.
    let (status, view) = p.hand_in(&case_id, &["property_certificate"]).await;
    assert_eq!(status, 200);
    assert_eq!(lane_of(&view, Housing)["status"], "under_review");
    assert_eq!(lane_of(&view, Education)["status"], "supplement_requested");
    lane_reaches(&p, Housing, &housing, "under_review", None).await;
    let edu = lane_reaches(&p, Education, &education, "supplement_requested", Some("PartlySupplemented")).await;
    assert!(
        !edu["history"].as_array().unwrap().iter().any(|h| h["event"] == "Supplemented"),
        "housing's materials resumed education: {edu}"
    );

    // Education's own item resumes education.
    let (_, view) = p.hand_in(&case_id, &["school_fee_receipt"]).await;
    assert_eq!(lane_of(&view, Education)["status"], "under_review");
    lane_reaches(&p, Education, &education, "under_review", None).await;
}

#[tokio::test]
async fn a_returned_medical_lane_re_routed_as_temporary_aid_ends_approved_and_the_case_closes() {
    let p = Platform::start(&[Medical, Temporary]).await;
    let created = p
        .submit(&application(&id_number("33010219800307202"), json!([sample::medical("骨折", 300_000, 100_000)])))
        .await;
    let case_id = created["case_id"].as_str().unwrap().to_string();
    let medical = referral_of(&created, Medical);
    p.referral(Medical, &medical, &caseworker(Medical)).await;
    assert_eq!(p.act(Medical, &medical, "sign-for", &caseworker(Medical), json!({})).await.0, 200);
    let (status, _) =
        p.act(Medical, &medical, "return", &caseworker(Medical), json!({"reason": "门诊费用，请转临时救助"})).await;
    assert_eq!(status, 200);
    p.case_until(&case_id, "the window sees the return", |v| lane_of(v, Medical)["status"] == "returned").await;

    // The window re-routes: a temporary-aid line on the same case.
    let lines = format!("{}/api/v1/cases/{case_id}/lines", p.intake);
    let temporary = json!({"aid": "temporary", "cause": "illness", "amount_requested_fen": 50_000});
    let (status, view) = p.call(reqwest::Method::POST, lines.clone(), &clerk(), Some(temporary.clone())).await;
    assert_eq!(status, 201, "{view}");
    let lanes: Vec<(&str, &str)> = view["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["department"].as_str().unwrap(), l["status"].as_str().unwrap()))
        .collect();
    assert_eq!(lanes, [("medical", "returned"), ("temporary", "referred")], "the returned lane stays in the history");
    let (status, problem) = p.call(reqwest::Method::POST, lines.clone(), &clerk(), Some(temporary)).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("line_open")), "{problem}");
    let (status, problem) =
        p.call(reqwest::Method::POST, lines, &clerk(), Some(json!({"aid": "temporary", "cause": "flood"}))).await;
    assert_eq!(status, 400, "{problem}");
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["cause", "amount_requested_fen"], "{problem}");

    let temporary = lane_of(&view, Temporary)["referral_id"].as_str().unwrap().to_string();
    p.referral(Temporary, &temporary, &caseworker(Temporary)).await;
    assert_eq!(p.act(Temporary, &temporary, "sign-for", &caseworker(Temporary), json!({})).await.0, 200);
    let (status, lane) =
        p.act(Temporary, &temporary, "proposal", &caseworker(Temporary), json!({"outcome": "approve"})).await;
    assert_eq!((status, lane["status"].as_str()), (200, Some("approved")), "{lane}");
    let decided = p.case_until(&case_id, "the case is decided", |v| v["status"] == "decided").await;
    assert_eq!(lane_of(&decided, Temporary)["status"], "approved");
    // The window sees who in each department signed for and decided its lane.
    assert_eq!(lane_of(&decided, Temporary)["signed_by"], "temporary-cw-1");
    assert_eq!(lane_of(&decided, Temporary)["decided_by"], "temporary-cw-1");
    let returned = &decided["lanes"][0];
    assert_eq!(
        (returned["department"].as_str(), returned["decided_by"].as_str()),
        (Some("medical"), Some("medical-cw-1"))
    );

    let close = format!("{}/api/v1/cases/{case_id}/close", p.intake);
    let (status, closed) = p
        .call(reqwest::Method::POST, close, &clerk(), Some(json!({"informed_by": "letter", "note": "挂号信寄出"})))
        .await;
    assert_eq!((status, closed["status"].as_str()), (200, Some("closed")), "{closed}");
    assert_eq!(closed["closure"]["informed_by"], "letter");
    assert_eq!(closed["closure"]["closed_by"], "clerk-7");
}

#[tokio::test]
async fn a_case_closes_only_when_every_lane_is_final_and_then_releases_the_households_lines() {
    let p = Platform::start(&[Education, Housing]).await;
    let applicant = id_number("33010219800307203");
    let form = application(&applicant, json!([sample::education(), sample::rent_subsidy(80_000)]));
    let created = p.submit(&form).await;
    let case_id = created["case_id"].as_str().unwrap().to_string();
    let clerk = clerk();
    let close = |body: Value| {
        let url = format!("{}/api/v1/cases/{case_id}/close", p.intake);
        p.call(reqwest::Method::POST, url, &clerk, Some(body))
    };
    let (status, problem) = close(json!({"informed_by": "sms"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("lanes_not_final")), "{problem}");

    let (education, housing) = (referral_of(&created, Education), referral_of(&created, Housing));
    p.referral(Education, &education, &caseworker(Education)).await;
    assert_eq!(p.act(Education, &education, "sign-for", &caseworker(Education), json!({})).await.0, 200);
    assert_eq!(
        p.act(Education, &education, "proposal", &caseworker(Education), json!({"outcome": "approve"})).await.0,
        200
    );
    p.case_until(&case_id, "education approved", |v| lane_of(v, Education)["status"] == "approved").await;
    let (status, problem) = close(json!({"informed_by": "sms"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("lanes_not_final")), "housing is still open: {problem}");

    // A household member of another township's hall: told that a case is open
    // there, never its number.
    let other_clerk =
        onedoor_test_support::driver::tokens::token(Role::WindowClerk, Some("330102002"), None, "clerk-b");
    let mut elsewhere = application(&id_number("33010219820517204"), json!([sample::rent_subsidy(60_000)]));
    elsewhere["household"]["division_code"] = json!("330102002001");
    elsewhere["household"]["members"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "张三", "id_number": applicant, "relation": "spouse"}));
    let url = format!("{}/api/v1/applications", p.intake);
    let (status, problem) = p.call(reqwest::Method::POST, url.clone(), &other_clerk, Some(elsewhere.clone())).await;
    assert_eq!((status, problem["errors"][0]["code"].as_str()), (409, Some("open_case_elsewhere")), "{problem}");
    assert_eq!(problem["errors"][0]["message"], "330102001");
    assert!(!problem.to_string().contains(created["case_number"].as_str().unwrap()), "{problem}");

    p.referral(Housing, &housing, &caseworker(Housing)).await;
    assert_eq!(p.act(Housing, &housing, "sign-for", &caseworker(Housing), json!({})).await.0, 200);
    let reject = json!({"outcome": "reject", "reason": "已享受公租房"});
    assert_eq!(p.act(Housing, &housing, "proposal", &caseworker(Housing), reject).await.0, 200);
    p.case_until(&case_id, "the case is decided", |v| v["status"] == "decided").await;

    let (status, problem) = close(json!({"informed_by": "pigeon"})).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("informed_by")), "{problem}");
    let (status, view) = close(json!({"informed_by": "in_person"})).await;
    assert_eq!((status, view["status"].as_str()), (200, Some("closed")), "{view}");
    let (status, problem) = close(json!({"informed_by": "sms"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("case_closed")));
    let (status, problem) = p.hand_in(&case_id, &["bank_statement"]).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("case_closed")));

    // The household's lines are free again: here and in the other township.
    let (status, body) = p.call(reqwest::Method::POST, url.clone(), &other_clerk, Some(elsewhere)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = p.call(reqwest::Method::POST, url, &clerk, Some(form)).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (409, Some("open_case_elsewhere")),
        "the spouse's new housing case holds the line: {body}"
    );
}

#[tokio::test]
async fn the_department_counts_the_same_time_limit_as_the_window_and_an_approver_extends_it_once() {
    let p = Platform::start(&[Housing]).await;
    let created = p.submit(&application(&id_number("33010219800307204"), json!([sample::rent_subsidy(80_000)]))).await;
    let case_id = created["case_id"].as_str().unwrap().to_string();
    let id = referral_of(&created, Housing);
    let cw = caseworker(Housing);
    p.referral(Housing, &id, &cw).await;
    assert_eq!(p.act(Housing, &id, "sign-for", &cw, json!({})).await.0, 200);
    let same_deadline = |window: &Value, lane: &Value| {
        assert_eq!(lane_of(window, Housing)["deadline"], lane["deadline"], "window {window} department {lane}");
    };
    let (_, lane) = p.act(Housing, &id, "supplement-requests", &cw, json!({"materials": ["bank_statement"]})).await;
    let window = p
        .case_until(&case_id, "the window sees the request", |v| {
            lane_of(v, Housing)["status"] == "supplement_requested"
        })
        .await;
    same_deadline(&window, &lane);
    assert_eq!(lane["overdue"], false);
    let (_, window) = p.hand_in(&case_id, &["bank_statement"]).await;
    let lane = lane_reaches(&p, Housing, &id, "under_review", None).await;
    same_deadline(&window, &lane);

    // The approver gives the lane ten more days, once, with a reason.
    let current = chrono::NaiveDate::parse_from_str(lane["deadline"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let later = (current + chrono::Days::new(10)).to_string();
    let body = json!({"deadline": later, "reason": "须实地核查房屋"});
    let (status, problem) = p.act(Housing, &id, "deadline-extension", &cw, body.clone()).await;
    assert_eq!(status, 403, "a caseworker cannot: {problem}");
    let (status, problem) = p
        .act(Housing, &id, "deadline-extension", &approver(Housing), json!({"deadline": current, "reason": "x"}))
        .await;
    assert_eq!((status, problem["errors"][0]["code"].as_str()), (422, Some("not_later")), "{problem}");
    let (status, lane) = p.act(Housing, &id, "deadline-extension", &approver(Housing), body.clone()).await;
    assert_eq!((status, lane["deadline"].as_str()), (200, Some(later.as_str())), "{lane}");
    assert_eq!(lane["extension"]["extended_by"], "housing-approver-1");
    let (status, _) = p.act(Housing, &id, "deadline-extension", &approver(Housing), body).await;
    assert_eq!(status, 409, "once only");
    let window = p
        .case_until(&case_id, "the window shows the new time limit", |v| {
            lane_of(v, Housing)["deadline"] == later.as_str()
        })
        .await;
    assert_eq!(lane_of(&window, Housing)["extension"]["reason"], "须实地核查房屋");
    assert!(window["timeline"].as_array().unwrap().iter().any(|t| t["event"] == "ReferralDeadlineExtended"));
}
