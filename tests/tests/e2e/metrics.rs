//! What operators scrape: every service's `/metrics` after one household's
//! application went through the loop, with no personal data in it.

use crate::stack::*;
use onedoor_contracts::Department::{self, *};
use serde_json::json;
use std::time::{Duration, Instant};

/// The value of the sample `line` starts with (`name{labels}`), if present.
fn sample(text: &str, line: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(line)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn scrape(url: &str) -> (String, String) {
    let res = reqwest::get(format!("{url}/metrics")).await.unwrap();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    (content_type, res.text().await.unwrap())
}

/// Scrapes until `check` holds (consumers and the relay run beside the API).
async fn scrape_until(url: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let (_, text) = scrape(url).await;
        if check(&text) {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{url}/metrics never showed {what}:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_exposes_its_requests_messages_backlog_and_business_figures_without_personal_data() {
    let stack = Stack::start(&[]).await;
    let applicant = applicant_id(41);
    let (status, created) = stack.submit(&four_line_application(&applicant, &ALL_MATERIALS)).await;
    assert_eq!(status, 201, "{created}");
    let case_id = created["case_id"].as_str().unwrap().to_string();
    let medical = created["lanes"].as_array().unwrap().iter().find(|l| l["department"] == "medical").unwrap();
    let referral = medical["referral_id"].as_str().unwrap().to_string();
    // A refused command and a signed-for referral in medical.
    let unknown = "/api/v1/referrals/00000000-0000-0000-0000-000000000000/sign-for";
    let (status, _) = stack
        .call(
            reqwest::Method::POST,
            format!("{}{unknown}", stack.department_url(Medical)),
            &caseworker(Medical),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
    let start = Instant::now();
    while stack.act(Medical, &referral, "sign-for", &caseworker(Medical), json!({})).await.0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(30), "medical never received the referral");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack
        .case_until(&case_id, "the window sees the signature", |v| {
            v["lanes"].as_array().unwrap().iter().any(|l| l["department"] == "medical" && l["status"] == "signed_for")
        })
        .await;

    let (content_type, intake) = scrape(&stack.url("intake")).await;
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert_eq!(
        sample(&intake, "onedoor_http_requests_total{method=\"POST\",route=\"/api/v1/applications\",status=\"201\"}"),
        Some(1.0)
    );
    assert!(intake.contains(
        "onedoor_http_request_duration_seconds_bucket{le=\"0.001\",method=\"POST\",route=\"/api/v1/applications\"}"
    ));
    assert_eq!(
        sample(&intake, "onedoor_commands_total{route=\"/api/v1/applications\",outcome=\"accepted\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&intake, "onedoor_open_cases{status=\"in_progress\"}"), Some(1.0));
    assert!(sample(&intake, "onedoor_relay_published_total").unwrap() >= 4.0, "four referrals went out");
    assert_eq!(sample(&intake, "onedoor_db_pool_max_connections{pool=\"api\"}"), Some(5.0));
    assert!(sample(&intake, "onedoor_db_pool_connections{pool=\"api\",state=\"idle\"}").is_some());
    let intake = scrape_until(&stack.url("intake"), "the medical report handled and the backlog empty", |t| {
        sample(t, "onedoor_messages_consumed_total{consumer=\"intake-lanes-medical\",outcome=\"handled\"}")
            .is_some_and(|n| n >= 1.0)
            && sample(t, "onedoor_outbox_backlog_messages") == Some(0.0)
    })
    .await;
    assert_eq!(sample(&intake, "onedoor_consumer_pending_messages{consumer=\"intake-lanes-medical\"}"), Some(0.0));
    assert_eq!(sample(&intake, "onedoor_broker_erasures_waiting"), Some(0.0), "no erasure waits for the broker");
    // The intake stream holds the referrals, within its 2 GiB limit; no dead letters.
    assert!(sample(&intake, "onedoor_stream_bytes{stream=\"INTAKE\"}").unwrap() > 0.0);
    assert_eq!(sample(&intake, "onedoor_stream_max_bytes{stream=\"INTAKE\"}"), Some(2.0 * 1024.0 * 1024.0 * 1024.0));
    assert_eq!(sample(&intake, "onedoor_stream_messages{stream=\"DEAD_LETTERS_INTAKE\"}"), Some(0.0));

    let medical = scrape(&stack.department_url(Medical)).await.1;
    let sign_for = "/api/v1/referrals/{referral_id}/sign-for";
    assert!(
        sample(&medical, &format!("onedoor_commands_total{{route=\"{sign_for}\",outcome=\"refused\"}}")).unwrap()
            >= 1.0
    );
    assert!(
        sample(&medical, &format!("onedoor_commands_total{{route=\"{sign_for}\",outcome=\"accepted\"}}")) == Some(1.0)
    );
    assert_eq!(sample(&medical, "onedoor_overdue_lanes{department=\"medical\"}"), Some(0.0));
    assert_eq!(sample(&medical, "onedoor_dead_letters_total"), None, "nothing was dead-lettered");
    for d in Department::ALL {
        let text = scrape(&stack.department_url(d)).await.1;
        assert!(
            sample(&text, "onedoor_messages_consumed_total{consumer=").is_some(),
            "{d} counts the referral it consumed:\n{text}"
        );
        for personal in [applicant.as_str(), NAME, CHILD, PHONE, DIAGNOSIS, case_id.as_str(), referral.as_str()] {
            assert!(!text.contains(personal), "{d}'s metrics hold {personal}");
        }
    }
    for personal in [applicant.as_str(), NAME, CHILD, PHONE, DIAGNOSIS, case_id.as_str(), referral.as_str()] {
        assert!(!intake.contains(personal), "intake's metrics hold {personal}");
    }
}
