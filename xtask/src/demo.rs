//! `cargo xtask up --demo`: a few realistic applications at the window of
//! township 330102001, so a newcomer sees cases, notices and referrals at once.

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// A valid resident ID number from its first 17 digits.
fn id_number(first17: &str) -> String {
    format!("{first17}{}", onedoor_contracts::identity::check_character(first17).unwrap_or('0'))
}

fn household(applicant: &str, name: &str, extra: Vec<Value>, income: i64, support: &[&str]) -> Value {
    let mut members = vec![json!({"name": name, "id_number": applicant, "relation": "applicant"})];
    members.extend(extra);
    json!({
        "division_code": "330102001001", "address": "上城区清波街道示范社区", "hukou": "urban",
        "members": members, "monthly_income_fen": income, "assets_fen": 0, "existing_support": support
    })
}

const COMMON: [&str; 4] = ["id_card", "hukou_book", "income_statement", "verification_authorization"];

pub async fn load(intake: &str) -> Result<()> {
    let wang = id_number("33010219750412301");
    let wang_child = id_number("33010220100905302");
    let chen = id_number("33010219620118203");
    let zhao = id_number("33010219880623104");
    let every_material = [
        COMMON.as_slice(),
        &[
            "medical_invoice",
            "discharge_summary",
            "insurance_settlement",
            "enrolment_proof",
            "tenancy_proof",
            "hardship_statement",
        ],
    ]
    .concat();
    let applications = [
        // Four lines, complete: referred to every department at once.
        json!({
            "applicant": {"name": "王建国", "id_number": wang, "phone": "13800138001"},
            "household": household(&wang, "王建国", vec![json!({"name": "王小雨", "id_number": wang_child, "relation": "child", "in_school": true})], 120000, &["dibao"]),
            "requests": [
                {"aid": "medical", "hospital": "浙江大学医学院附属第一医院", "diagnosis": "重症肺炎", "total_cost_fen": 3000000, "insurance_paid_fen": 1800000},
                {"aid": "education", "student_id_number": wang_child, "stage": "junior", "school": "清波中学"},
                {"aid": "housing", "kind": "rent_subsidy", "monthly_rent_fen": 80000},
                {"aid": "temporary", "cause": "illness", "amount_requested_fen": 300000, "emergency": false}
            ],
            "materials": every_material
        }),
        // A fire: emergency temporary aid referred at once, renovation awaiting the appraisal.
        json!({
            "applicant": {"name": "陈秀英", "id_number": chen, "phone": "0571-87654321"},
            "household": household(&chen, "陈秀英", vec![], 80000, &["tekun"]),
            "requests": [
                {"aid": "temporary", "cause": "fire", "amount_requested_fen": 500000, "emergency": true},
                {"aid": "housing", "kind": "renovation", "house_rating": "D"}
            ],
            "materials": ["id_card", "hukou_book"]
        }),
        // Medical only, without the hospital papers yet: one notice lists them all.
        json!({
            "applicant": {"name": "赵敏", "id_number": zhao, "phone": "13900139002"},
            "household": household(&zhao, "赵敏", vec![], 150000, &[]),
            "requests": [{"aid": "medical", "hospital": "杭州市第一人民医院", "diagnosis": "股骨骨折", "total_cost_fen": 1200000, "insurance_paid_fen": 700000}],
            "materials": COMMON
        }),
    ];
    let token = crate::development_token(&onedoor_http_kit::Claims {
        sub: "demo-clerk".into(),
        role: onedoor_http_kit::Role::WindowClerk,
        township: Some("330102001".into()),
        department: None,
        exp: chrono::Utc::now().timestamp() + 3600,
    });
    let http = reqwest::Client::new();
    println!("Demo applications:");
    for (n, form) in applications.iter().enumerate() {
        let res = http
            .post(format!("{intake}/api/v1/applications"))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("demo-{n}"))
            .json(form)
            .send()
            .await
            .context("posting a demo application")?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or_default();
        if status.is_success() {
            println!(
                "  {} {} ({} missing materials)",
                body["case_number"].as_str().unwrap_or("?"),
                body["status"].as_str().unwrap_or("?"),
                body["missing_materials"].as_array().map_or(0, Vec::len)
            );
        } else {
            println!("  not loaded ({status}): {}", body["detail"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}
