use crate::stack::*;
use onedoor_contracts::Department::{self, *};
use serde_json::json;

async fn referral_of(stack: &Stack, d: Department, case_id: &str) -> String {
    let items = stack.inbox_until(d, 1).await;
    let item = items.iter().find(|i| i["case_id"] == case_id).expect("the case's referral");
    item["referral_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_window_four_departments_one_case_view() {
    let stack = Stack::start(&[]).await;

    // The household applies once, without the hardship statement: one notice.
    let missing: Vec<&str> = ALL_MATERIALS.iter().copied().filter(|m| *m != "hardship_statement").collect();
    let (status, created) = stack.submit(&four_line_application(&applicant_id(1), &missing)).await;
    assert_eq!((status, created["status"].as_str()), (201, Some("awaiting_materials")));
    assert_eq!(created["missing_materials"], json!([{"code": "hardship_statement", "needed_for": ["temporary"]}]));
    let case_id = created["case_id"].as_str().unwrap().to_string();

    // The clerk receives it; the application is complete and referred four ways.
    let url = format!("{}/api/v1/cases/{case_id}/materials", stack.url("intake"));
    let (status, view) = stack
        .call(reqwest::Method::POST, url.clone(), &clerk(), Some(json!({"materials": ["hardship_statement"]})))
        .await;
    assert_eq!((status, view["status"].as_str()), (200, Some("in_progress")));
    let mut ids = std::collections::HashMap::new();
    for d in Department::ALL {
        let id = referral_of(&stack, d, &case_id).await;
        let (status, body) = stack.act(d, &id, "sign-for", &caseworker(d), json!({})).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("signed_for")), "{d}");
        ids.insert(d, id);
    }
    stack
        .case_until(&case_id, "every lane is signed for", |v| {
            Department::ALL.iter().all(|d| lane(v, *d)["status"] == "signed_for")
        })
        .await;

    // Education needs an enrolment certificate for this term; the window hands it in.
    let (status, _) = stack
        .act(
            Education,
            &ids[&Education],
            "supplement-requests",
            &caseworker(Education),
            json!({"materials": ["enrolment_proof"], "note": "this term's certificate"}),
        )
        .await;
    assert_eq!(status, 200);
    stack
        .case_until(&case_id, "the window sees the supplement request", |v| {
            lane(v, Education)["status"] == "supplement_requested"
        })
        .await;
    let (status, view) =
        stack.call(reqwest::Method::POST, url, &clerk(), Some(json!({"materials": ["enrolment_proof"]}))).await;
    assert_eq!((status, lane(&view, Education)["status"].as_str()), (200, Some("under_review")));
    let start = std::time::Instant::now();
    loop {
        let (status, body) = stack
            .act(Education, &ids[&Education], "proposal", &caseworker(Education), json!({"outcome": "approve"}))
            .await;
        if status == 200 {
            assert_eq!(body["status"], "approved", "1,250 yuan is within the caseworker's authority");
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the education lane never resumed: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Medical: 30,000 yuan out of pocket × 70% = 21,000, above the 10,000 threshold: a second person approves.
    let (_, body) =
        stack.act(Medical, &ids[&Medical], "proposal", &caseworker(Medical), json!({"outcome": "approve"})).await;
    assert_eq!((body["status"].as_str(), body["proposal"]["amount_fen"].as_i64()), (Some("proposed"), Some(2_100_000)));
    let (status, body) =
        stack.act(Medical, &ids[&Medical], "approval", &approver(Medical), json!({"approve": true})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));
    let (status, _) = stack
        .act(
            Medical,
            &ids[&Medical],
            "disbursement",
            &caseworker(Medical),
            json!({"amount_fen": 2_100_000, "channel": "bank_card", "reference": "BOC-0001"}),
        )
        .await;
    assert_eq!(status, 200);

    // Housing rejects; temporary aid returns the referral to the window.
    let (_, body) = stack
        .act(
            Housing,
            &ids[&Housing],
            "proposal",
            &caseworker(Housing),
            json!({"outcome": "reject", "reason": "already housed in public rental housing"}),
        )
        .await;
    assert_eq!(body["status"], "rejected");
    let (_, body) = stack
        .act(
            Temporary,
            &ids[&Temporary],
            "return",
            &caseworker(Temporary),
            json!({"reason": "covered by medical aid; refer to the street office"}),
        )
        .await;
    assert_eq!(body["status"], "returned");

    let view = stack.case_until(&case_id, "the case is decided", |v| v["status"] == "decided").await;
    assert_eq!(lane(&view, Medical)["status"], "disbursed");
    assert_eq!(lane(&view, Medical)["amount_fen"], 2_100_000);
    assert_eq!(lane(&view, Education)["status"], "approved");
    assert_eq!(lane(&view, Education)["amount_fen"], 125_000);
    assert_eq!(lane(&view, Housing)["reason"], "already housed in public rental housing");
    assert_eq!(lane(&view, Temporary)["reason"], "covered by medical aid; refer to the street office");
    let story: Vec<(String, String)> = view["timeline"]
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
    assert!(has("SupplementRequested", "education") && has("MaterialsSupplemented", "window"));
    assert!(has("ProposalMade", "medical") && has("ReferralApproved", "medical") && has("AidDisbursed", "medical"));
    assert!(has("ReferralRejected", "housing") && has("ReferralReturned", "temporary"));
    let first = |e: &str| story.iter().position(|(x, _)| x == e).unwrap();
    assert!(first("ApplicationSubmitted") < first("ReferralIssued") && first("ReferralIssued") < first("AidDisbursed"));
}
