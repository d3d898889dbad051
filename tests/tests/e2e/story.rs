use crate::stack::*;
use onedoor_contracts::Department::{self, *};
use serde_json::{Value, json};

async fn referral_of(stack: &Stack, d: Department, case_id: &str) -> String {
    let items = stack.inbox_until(d, 1).await;
    let item = items.iter().find(|i| i["case_id"] == case_id).expect("the case's referral");
    item["referral_id"].as_str().unwrap().to_string()
}

/// Acts until the department's lane has taken in what the window sent (its
/// consumer runs beside the API): `200` is returned, anything else retried.
async fn act_when_ready(stack: &Stack, d: Department, id: &str, action: &str, token: &str, body: Value) -> Value {
    let start = std::time::Instant::now();
    loop {
        let (status, lane) = stack.act(d, id, action, token, body.clone()).await;
        if status == 200 {
            return lane;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "{d} {action} never went through: {lane}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_window_four_departments_one_case_view_from_submission_to_closure() {
    let stack = Stack::start(&[]).await;
    let intake = stack.url("intake");

    // The household applies once for three lines, without the tenancy contract: one notice.
    let mut form = four_line_application(&applicant_id(1), &[]);
    form["requests"].as_array_mut().unwrap().truncate(3);
    let missing: Vec<&str> = ALL_MATERIALS.iter().copied().filter(|m| *m != "tenancy_proof").collect();
    form["materials"] = json!(missing);
    let (status, created) = stack.submit(&form).await;
    assert_eq!((status, created["status"].as_str()), (201, Some("awaiting_materials")));
    assert_eq!(created["missing_materials"], json!([{"code": "tenancy_proof", "needed_for": ["housing"]}]));
    let case_id = created["case_id"].as_str().unwrap().to_string();

    // The contract arrives; the application is accepted and referred three ways.
    let materials = format!("{intake}/api/v1/cases/{case_id}/materials");
    let (status, view) = stack
        .call(reqwest::Method::POST, materials.clone(), &clerk(), Some(json!({"materials": ["tenancy_proof"]})))
        .await;
    assert_eq!((status, view["status"].as_str()), (200, Some("in_progress")));
    let mut ids = std::collections::HashMap::new();
    for d in [Medical, Education, Housing] {
        let id = referral_of(&stack, d, &case_id).await;
        act_when_ready(&stack, d, &id, "sign-for", &caseworker(d), json!({})).await;
        ids.insert(d, id);
    }

    // Education needs the term's fee receipt and housing a bank statement; the
    // window scans and hands in the receipt: education resumes, housing waits.
    let ask = |items: &[&str]| json!({"materials": items, "note": "本学期"});
    act_when_ready(
        &stack,
        Education,
        &ids[&Education],
        "supplement-requests",
        &caseworker(Education),
        ask(&["school_fee_receipt"]),
    )
    .await;
    act_when_ready(
        &stack,
        Housing,
        &ids[&Housing],
        "supplement-requests",
        &caseworker(Housing),
        ask(&["bank_statement"]),
    )
    .await;
    stack
        .case_until(&case_id, "the window sees both requests", |v| {
            lane(v, Education)["status"] == "supplement_requested"
                && lane(v, Housing)["status"] == "supplement_requested"
        })
        .await;
    let scan = b"%PDF-1.4\n% the school fee receipt\n%%EOF\n".to_vec();
    let upload = reqwest::Client::new()
        .post(format!("{intake}/api/v1/cases/{case_id}/documents?material=school_fee_receipt"))
        .bearer_auth(clerk())
        .header("content-type", "application/pdf")
        .body(scan.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let (status, view) = stack
        .call(reqwest::Method::POST, materials, &clerk(), Some(json!({"materials": ["school_fee_receipt"]})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(lane(&view, Education)["status"], "under_review");
    assert_eq!(lane(&view, Housing)["status"], "supplement_requested", "housing's item is still missing");
    let lane_url = |d: Department| format!("{}/api/v1/referrals/{}", stack.department_url(d), ids[&d]);
    let start = std::time::Instant::now();
    let documents = loop {
        let (_, list) = stack
            .call(reqwest::Method::GET, format!("{}/documents", lane_url(Education)), &caseworker(Education), None)
            .await;
        if list["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break list;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "education never saw the scan: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(documents["items"][0]["material"], "school_fee_receipt");
    let lane_approved = act_when_ready(
        &stack,
        Education,
        &ids[&Education],
        "proposal",
        &caseworker(Education),
        json!({"outcome": "approve"}),
    )
    .await;
    assert_eq!(lane_approved["status"], "approved", "1,250 yuan is within the caseworker's authority");

    // Housing returns the referral: not a housing matter. The window
    // re-routes it as temporary aid, which approves.
    let returned = json!({"reason": "非住房困难，属临时生活困难"});
    act_when_ready(&stack, Housing, &ids[&Housing], "return", &caseworker(Housing), returned).await;
    stack.case_until(&case_id, "the window sees the return", |v| lane(v, Housing)["status"] == "returned").await;
    let temporary = json!({"aid": "temporary", "cause": "illness", "amount_requested_fen": 300_000});
    let (status, view) = stack
        .call(reqwest::Method::POST, format!("{intake}/api/v1/cases/{case_id}/lines"), &clerk(), Some(temporary))
        .await;
    assert_eq!(status, 201, "{view}");
    let temporary_id = lane(&view, Temporary)["referral_id"].as_str().unwrap().to_string();
    act_when_ready(&stack, Temporary, &temporary_id, "sign-for", &caseworker(Temporary), json!({})).await;
    let decided = act_when_ready(
        &stack,
        Temporary,
        &temporary_id,
        "proposal",
        &caseworker(Temporary),
        json!({"outcome": "approve"}),
    )
    .await;
    assert_eq!(decided["status"], "approved");

    // Medical: 30,000 yuan out of pocket × 70% = 21,000, above the 10,000 threshold: a second person approves.
    let body = act_when_ready(
        &stack,
        Medical,
        &ids[&Medical],
        "proposal",
        &caseworker(Medical),
        json!({"outcome": "approve"}),
    )
    .await;
    assert_eq!((body["status"].as_str(), body["proposal"]["amount_fen"].as_i64()), (Some("proposed"), Some(2_100_000)));
    act_when_ready(&stack, Medical, &ids[&Medical], "approval", &approver(Medical), json!({"approve": true})).await;
    let paid = json!({"amount_fen": 2_100_000, "channel": "bank_card", "reference": "BOC-0001"});
    act_when_ready(&stack, Medical, &ids[&Medical], "disbursement", &caseworker(Medical), paid).await;

    // The case is decided from the approval on; the payment follows it to the window.
    let view = stack
        .case_until(&case_id, "the case is decided and medical's approval and payment shown", |v| {
            // Reports may reach the window out of order (a retried one after a later one).
            v["status"] == "decided"
                && lane(v, Medical)["status"] == "disbursed"
                && lane(v, Medical)["decided_by"] == "medical-approver-1"
        })
        .await;
    assert_eq!(lane(&view, Medical)["amount_fen"], 2_100_000);
    assert_eq!(lane(&view, Education)["amount_fen"], 125_000);
    assert_eq!(lane(&view, Housing)["reason"], "非住房困难，属临时生活困难");
    assert_eq!(lane(&view, Temporary)["status"], "approved");
    assert_eq!(lane(&view, Medical)["decided_by"], "medical-approver-1");

    // The applicant was told by SMS of the notice, the acceptance and each decision.
    let told = stack
        .case_until(&case_id, "every message is sent", |v| v["notifications"].as_array().is_some_and(|n| n.len() == 5))
        .await;
    let mut kinds: Vec<&str> =
        told["notifications"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["accepted", "decision", "decision", "decision", "notice"], "{told}");

    // The applicant is told; the window closes the case.
    let close = json!({"informed_by": "sms", "note": "短信告知办理结果"});
    let (status, closed) = stack
        .call(reqwest::Method::POST, format!("{intake}/api/v1/cases/{case_id}/close"), &clerk(), Some(close))
        .await;
    assert_eq!((status, closed["status"].as_str()), (200, Some("closed")), "{closed}");

    let story: Vec<(String, String)> = closed["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["event"].as_str().unwrap().to_string(), t["department"].as_str().unwrap_or("window").to_string()))
        .collect();
    let has = |e: &str, d: &str| story.contains(&(e.to_string(), d.to_string()));
    assert!(has("ApplicationSubmitted", "window") && has("ApplicationAccepted", "window"));
    for d in ["medical", "education", "housing", "temporary"] {
        assert!(has("ReferralIssued", d) && has("ReferralSignedFor", d), "{d}: {story:?}");
    }
    assert!(has("SupplementRequested", "education") && has("DocumentAttached", "window"));
    assert!(has("ReferralReturned", "housing") && has("LineAdded", "temporary"));
    assert!(has("ProposalMade", "medical") && has("ReferralApproved", "medical") && has("AidDisbursed", "medical"));
    assert!(has("CaseClosed", "window"));
    let first = |e: &str| story.iter().position(|(x, _)| x == e).unwrap();
    assert!(first("ReferralReturned") < first("LineAdded") && first("LineAdded") < first("CaseClosed"));
}
