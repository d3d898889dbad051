//! Full ID numbers only where the job needs them: a referral shows them
//! masked, and a caseworker of the department gets them by stating why,
//! which the audit trail records with the purpose.

use crate::harness::*;
use onedoor_contracts::Department::*;
use onedoor_http_kit::auth::Role;
use serde_json::json;

#[tokio::test]
async fn a_referral_masks_every_id_number_and_a_caseworker_unmasks_them_once_with_a_purpose() {
    let p = Platform::start(&[Education]).await;
    let applicant = id_number("33010219800307205");
    let student = sample::child_of(&applicant);
    let created = p.submit(&application(&applicant, json!([sample::education()]))).await;
    let referral = lane_of(&created, Education)["referral_id"].as_str().unwrap().to_string();

    for token in [caseworker(Education), approver(Education)] {
        let view = p.referral(Education, &referral, &token).await;
        let text = view.to_string();
        assert!(!text.contains(&applicant) && !text.contains(&student), "no full ID number: {text}");
        assert_eq!(view["applicant"]["id_number"], format!("{}********{}", &applicant[..6], &applicant[14..]));
        assert_eq!(view["request"]["student_id_number"], format!("{}********{}", &student[..6], &student[14..]));
    }

    let unmask = |token: String, body: serde_json::Value| {
        let url = format!("{}/api/v1/referrals/{referral}/unmask", p.url(Education));
        let http = p.http.clone();
        async move {
            let answer = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            let no_store = answer.headers().get("cache-control").is_some_and(|v| v == "no-store");
            (answer.status().as_u16(), no_store, answer.json::<serde_json::Value>().await.unwrap())
        }
    };
    let purpose = json!({"purpose": "发放助学金到学生账户"});
    let (status, no_store, ids) = unmask(caseworker(Education), purpose.clone()).await;
    assert_eq!((status, no_store), (200, true), "{ids}");
    assert_eq!(ids, json!({"applicant_id_number": applicant, "student_id_number": student, "patient_id_number": null}));

    // Only the department's caseworkers, only with a purpose, only for its referrals.
    assert_eq!(unmask(approver(Education), purpose.clone()).await.0, 403);
    assert_eq!(unmask(token(Role::Caseworker, Some(Medical), "med-cw"), purpose.clone()).await.0, 403);
    assert_eq!(unmask(clerk(), purpose.clone()).await.0, 403);
    let (status, _, problem) = unmask(caseworker(Education), json!({"purpose": " "})).await;
    assert_eq!((status, &problem["errors"][0]["code"]), (400, &json!("purpose_length")), "{problem}");
    assert_eq!(unmask(caseworker(Education), json!({})).await.0, 400);

    // The trail has the disclosure with its purpose, and the refusals.
    let trail: Vec<(String, i16, Option<String>)> = sqlx::query_as(
        "SELECT actor, outcome, purpose FROM audit_trail WHERE action = 'POST /api/v1/referrals/{referral_id}/unmask'
          ORDER BY entry_id",
    )
    .fetch_all(p.db(Education))
    .await
    .unwrap();
    assert_eq!(trail[0], ("education-cw-1".to_string(), 200, Some("发放助学金到学生账户".to_string())));
    assert_eq!(trail.iter().map(|t| t.1).collect::<Vec<_>>(), [200, 403, 403, 403, 400, 400]);
}
