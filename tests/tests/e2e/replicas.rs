use crate::stack::*;
use onedoor_contracts::Department::{self, *};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_intake_and_of_a_department_process_every_referral_exactly_once() {
    let mut stack = Stack::start(&[]).await;
    let second_intake = stack.add_replica("intake").await;
    let second_medical = stack.add_replica("medical-aid").await;
    let intakes = [stack.url("intake"), second_intake];
    let medicals = [stack.department_url(Medical), second_medical];

    const N: u32 = 10;
    let mut cases = Vec::new();
    for n in 0..N {
        let url = format!("{}/api/v1/applications", intakes[(n % 2) as usize]);
        let (status, body) = stack
            .call(reqwest::Method::POST, url, &clerk(), Some(four_line_application(&applicant_id(n), &ALL_MATERIALS)))
            .await;
        assert_eq!(status, 201);
        cases.push(body);
    }
    for d in Department::ALL {
        assert_eq!(stack.inbox_until(d, N as usize).await.len(), N as usize, "{d}");
    }
    let received: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ReferralReceived'")
        .fetch_one(stack.db("medical-aid"))
        .await
        .unwrap();
    assert_eq!(received, i64::from(N), "each referral once, whichever replica took it");

    // Caseworkers act through either medical replica; both intakes project the replies.
    for (n, case) in cases.iter().enumerate() {
        let id =
            case["lanes"].as_array().unwrap().iter().find(|l| l["department"] == "medical").unwrap()["referral_id"]
                .as_str()
                .unwrap()
                .to_string();
        let url = format!("{}/api/v1/referrals/{id}/sign-for", medicals[n % 2]);
        let (status, _) = stack.call(reqwest::Method::POST, url, &caseworker(Medical), Some(json!({}))).await;
        assert_eq!(status, 200);
    }
    for (n, case) in cases.iter().enumerate() {
        let case_id = case["case_id"].as_str().unwrap();
        let view = stack
            .case_until(case_id, "the sign-for reached the case view", |v| lane(v, Medical)["status"] == "signed_for")
            .await;
        let (_, other) = stack
            .call(reqwest::Method::GET, format!("{}/api/v1/cases/{case_id}", intakes[(n + 1) % 2]), &clerk(), None)
            .await;
        assert_eq!(view, other, "both intake replicas serve the same view");
        assert_eq!(
            view["timeline"].as_array().unwrap().iter().filter(|t| t["event"] == "ReferralSignedFor").count(),
            1
        );
    }
    let published: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(stack.db("intake")).await.unwrap();
    assert_eq!(published, 0, "the relays of both replicas drained the outbox");
}
