//! Messages to the applicant through the Alibaba Cloud SMS provider, against
//! a local HTTP receiver that checks each request's signature as the
//! provider does: on acceptance, on a one-time notice, on a decision; a
//! failing provider is retried, a refusal dead-lettered; no ID number ever
//! leaves.

use crate::support::*;
use axum::extract::{RawQuery, State};
use chrono::Utc;
use intake::notifications::aliyun::{self, AliyunSms};
use onedoor_contracts::CloudEvent;
use onedoor_contracts::department::{LaneRef, ReferralApproved};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const SECRET: &str = "test-access-key-secret";
/// The receiver refuses this number, as the provider refuses an invalid one.
const REFUSED_PHONE: &str = "13900000000";

#[derive(Default)]
struct Receiver {
    /// Every request whose signature held, as its parameters.
    sent: Mutex<Vec<BTreeMap<String, String>>>,
    /// Requests answered 503 before the provider "recovers".
    outages: Mutex<u32>,
    bad_signatures: Mutex<u32>,
}

async fn receive(State(r): State<Arc<Receiver>>, RawQuery(query): RawQuery) -> (axum::http::StatusCode, String) {
    let mut params: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let signature = params.remove("Signature").unwrap_or_default();
    if aliyun::sign("GET", &params, SECRET) != signature {
        *r.bad_signatures.lock().unwrap() += 1;
        return (axum::http::StatusCode::BAD_REQUEST, json!({"Code": "SignatureDoesNotMatch"}).to_string());
    }
    {
        let mut outages = r.outages.lock().unwrap();
        if *outages > 0 {
            *outages -= 1;
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy".into());
        }
    }
    if params.get("PhoneNumbers").map(String::as_str) == Some(REFUSED_PHONE) {
        return (
            axum::http::StatusCode::OK,
            json!({"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "invalid"}).to_string(),
        );
    }
    r.sent.lock().unwrap().push(params);
    (axum::http::StatusCode::OK, json!({"Code": "OK", "Message": "OK", "BizId": "1"}).to_string())
}

async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new().route("/", axum::routing::get(receive)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

fn provider(endpoint: &str) -> AliyunSms {
    AliyunSms::new(aliyun::Settings {
        endpoint: endpoint.into(),
        access_key_id: "test-access-key".into(),
        access_key_secret: SECRET.into(),
        sign_name: "某某街道社会救助".into(),
        templates: [("accepted", "SMS_0001"), ("notice", "SMS_0002"), ("decision", "SMS_0003")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
    .unwrap()
}

/// The receiver's messages, once it holds `n`.
async fn sent_at_least(r: &Receiver, n: usize) -> Vec<BTreeMap<String, String>> {
    onedoor_test_support::driver::eventually(
        &format!("{n} messages sent"),
        std::time::Duration::from_secs(20),
        || async {
            let sent = r.sent.lock().unwrap().clone();
            if sent.len() >= n { Ok(sent) } else { Err(format!("{} sent", sent.len())) }
        },
    )
    .await
}

#[tokio::test]
async fn the_applicant_is_told_by_a_signed_sms_on_acceptance_notice_and_decision() {
    let (r, endpoint) = receiver().await;
    *r.outages.lock().unwrap() = 1; // the provider is down for the first request: retried
    let service = intake::Intake::with_defaults().unwrap().with_sms(Arc::new(provider(&endpoint)));
    let intake = TestIntake::spawn_with(service).await;

    // Accepted: the case number.
    let applicant = applicant_id();
    let (status, created, _) =
        intake.post(&clerk(), "/api/v1/applications", &application(&applicant, &ALL_MATERIALS)).await;
    assert_eq!(status, 201, "{created}");
    let sent = sent_at_least(&r, 1).await;
    let accepted = &sent[0];
    assert_eq!(accepted["TemplateCode"], "SMS_0001");
    assert_eq!(accepted["PhoneNumbers"], "13800138000");
    assert_eq!(accepted["SignName"], "某某街道社会救助");
    let params: Value = serde_json::from_str(&accepted["TemplateParam"]).unwrap();
    assert_eq!(params["case_number"], created["case_number"]);

    // A one-time notice: the missing items, by name.
    let other = id_number("33010219851111123");
    let (_, waiting, _) =
        intake.post(&clerk(), "/api/v1/applications", &application(&other, &ALL_MATERIALS[..4])).await;
    assert_eq!(waiting["status"], "awaiting_materials");
    let sent = sent_at_least(&r, 2).await;
    let notice = sent.iter().find(|p| p["TemplateCode"] == "SMS_0002").expect("the notice");
    let items: Value = serde_json::from_str(&notice["TemplateParam"]).unwrap();
    assert!(items["items"].as_str().unwrap().contains("医疗费用票据"), "{items}");

    // A decision: the medical department approves 8,400 yuan.
    let case_id: uuid::Uuid = created["case_id"].as_str().unwrap().parse().unwrap();
    let medical = created["lanes"].as_array().unwrap().iter().find(|l| l["department"] == "medical").unwrap();
    let lane = LaneRef {
        referral_id: medical["referral_id"].as_str().unwrap().parse().unwrap(),
        case_id,
        department: onedoor_contracts::Department::Medical,
        lane_version: Some(2),
    };
    let approved = ReferralApproved {
        lane,
        amount_fen: 840_000,
        override_reason: None,
        decided_by: "medical-cw-1".into(),
        occurred_at: Utc::now(),
    };
    intake.publish(&CloudEvent::new(approved, Utc::now())).await;
    let sent = sent_at_least(&r, 3).await;
    let decision = sent.iter().find(|p| p["TemplateCode"] == "SMS_0003").expect("the decision");
    let words: Value = serde_json::from_str(&decision["TemplateParam"]).unwrap();
    assert_eq!(
        (words["line"].as_str(), words["outcome"].as_str(), words["amount"].as_str()),
        (Some("医疗救助"), Some("批准"), Some("8400.00"))
    );

    // The case view shows what was sent; no message carried an ID number.
    let view = intake
        .case_until(&case_id.to_string(), "both messages are recorded", |v| {
            v["notifications"].as_array().is_some_and(|n| n.len() == 2)
        })
        .await;
    let kinds: Vec<&str> =
        view["notifications"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["accepted", "decision"]);
    assert!(view["notifications"].as_array().unwrap().iter().all(|n| n["provider"] == "aliyun"));
    for message in r.sent.lock().unwrap().iter() {
        let all = format!("{message:?}");
        assert!(!all.contains(&applicant) && !all.contains(&other), "an ID number left in a message: {all}");
    }
    assert_eq!(*r.bad_signatures.lock().unwrap(), 0, "every request was signed as the provider checks");
}

#[tokio::test]
async fn a_message_the_provider_refuses_is_dead_lettered_and_not_recorded_as_sent() {
    let (r, endpoint) = receiver().await;
    let service = intake::Intake::with_defaults().unwrap().with_sms(Arc::new(provider(&endpoint)));
    let intake = TestIntake::spawn_with(service).await;
    let mut form = application(&applicant_id(), &ALL_MATERIALS);
    form["applicant"]["phone"] = json!(REFUSED_PHONE);
    let (status, created, _) = intake.post(&clerk(), "/api/v1/applications", &form).await;
    assert_eq!(status, 201, "{created}");
    onedoor_test_support::driver::eventually(
        "the refused message is dead-lettered",
        std::time::Duration::from_secs(20),
        || async {
            let stream = intake.js.get_stream(onedoor_contracts::dead_letter_stream("intake")).await;
            match stream {
                Ok(mut s) => {
                    let n = s.info().await.map(|i| i.state.messages).unwrap_or(0);
                    if n == 1 { Ok(()) } else { Err(format!("{n} dead letters")) }
                }
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    let (_, view, _) = intake.get(&clerk(), &format!("/api/v1/cases/{}", created["case_id"].as_str().unwrap())).await;
    assert_eq!(view["notifications"], json!([]), "{view}");
    assert!(r.sent.lock().unwrap().is_empty());
}
