//! Scanned materials: uploaded at the window (checked by their bytes, kept
//! whole or not at all), listed with the case, and read by the departments
//! whose referral needs them, every download audited.

use crate::harness::*;
use onedoor_contracts::Department::{self, *};
use serde_json::{Value, json};
use std::time::Duration;

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

async fn upload(p: &Platform, case_id: &str, material: &str, content_type: &str, bytes: Vec<u8>) -> (u16, Value) {
    let url = format!("{}/api/v1/cases/{case_id}/documents?material={material}", p.intake);
    let answer =
        p.http.post(url).bearer_auth(clerk()).header("content-type", content_type).body(bytes).send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn download(p: &Platform, url: String, token: &str) -> (u16, String, Vec<u8>) {
    let answer = p.http.get(url).bearer_auth(token).send().await.unwrap();
    let status = answer.status().as_u16();
    let kind = answer.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, kind, answer.bytes().await.unwrap().to_vec())
}

/// The department's list of the referral's documents, once it holds `n`.
async fn documents_at(p: &Platform, d: Department, referral: &str, n: usize) -> Vec<Value> {
    onedoor_test_support::driver::eventually(&format!("{d} lists {n} documents"), Duration::from_secs(20), || async {
        let url = format!("{}/api/v1/referrals/{referral}/documents", p.url(d));
        let (status, list) = p.call(reqwest::Method::GET, url, &caseworker(d), None).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if status == 200 && items.len() == n { Ok(items) } else { Err(format!("{status} {list}")) }
    })
    .await
}

fn files_in(dir: &std::path::Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

#[tokio::test]
async fn scans_are_checked_by_their_bytes_and_read_only_by_the_departments_whose_referral_needs_them() {
    let p = Platform::start(&[Medical, Housing]).await;
    let requests = json!([sample::medical("骨折", 300_000, 100_000), sample::rent_subsidy(80_000)]);
    let created = p.submit(&application(&id_number("33010219800307205"), requests)).await;
    let case_id = created["case_id"].as_str().unwrap().to_string();
    let (medical, housing) = (
        lane_of(&created, Medical)["referral_id"].as_str().unwrap().to_string(),
        lane_of(&created, Housing)["referral_id"].as_str().unwrap().to_string(),
    );
    p.referral(Medical, &medical, &caseworker(Medical)).await;
    p.referral(Housing, &housing, &caseworker(Housing)).await;

    // A medical invoice (medical's alone) and an ID card (every line's).
    let (status, invoice) = upload(&p, &case_id, "medical_invoice", "application/pdf", PDF.to_vec()).await;
    assert_eq!(status, 201, "{invoice}");
    assert_eq!(invoice["sha256"], onedoor_documents::DocumentStore::digest(PDF));
    assert_eq!(
        (invoice["size"].as_u64(), invoice["material"].as_str()),
        (Some(PDF.len() as u64), Some("medical_invoice"))
    );
    let (status, id_card) = upload(&p, &case_id, "id_card", "image/png", PNG.to_vec()).await;
    assert_eq!(status, 201, "{id_card}");
    // A document camera's multi-page scan is megabytes, well within the limit.
    let scan = [PDF, &vec![b' '; 5 * 1024 * 1024]].concat();
    let (status, summary) = upload(&p, &case_id, "discharge_summary", "application/pdf", scan).await;
    assert_eq!((status, summary["size"].as_u64()), (201, Some(PDF.len() as u64 + 5 * 1024 * 1024)), "{summary}");

    // Refused, and nothing stored: bytes that are not the declared type, no
    // type at all, an unknown material, a file over 20 MB.
    let dir = p.documents_dir();
    let before = files_in(dir);
    let refusals = [
        ("medical_invoice", "application/pdf", b"MZ\x90\0 an executable".to_vec(), 415),
        ("medical_invoice", "image/png", PDF.to_vec(), 415),
        ("medical_invoice", "text/html", b"<html>".to_vec(), 415),
        ("passport", "application/pdf", PDF.to_vec(), 400),
        ("medical_invoice", "application/pdf", [PDF, &vec![b' '; 20 * 1024 * 1024]].concat(), 413),
    ];
    for (material, kind, bytes, expected) in refusals {
        let (status, problem) = upload(&p, &case_id, material, kind, bytes).await;
        assert_eq!(status, expected, "{material} as {kind}: {problem}");
        assert!(problem["code"].is_string(), "problem+json: {problem}");
    }
    assert_eq!(files_in(dir), before, "a refused upload stores nothing");
    let (_, list) =
        p.call(reqwest::Method::GET, format!("{}/api/v1/cases/{case_id}/documents", p.intake), &clerk(), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3, "{list}");

    // The window reads its scans back.
    let doc = |d: &Value| d["document_id"].as_str().unwrap().to_string();
    let url = format!("{}/api/v1/cases/{case_id}/documents/{}", p.intake, doc(&invoice));
    assert_eq!(download(&p, url, &clerk()).await, (200, "application/pdf".into(), PDF.to_vec()));

    // Medical sees all three; housing only the ID card, and not medical's invoice, by any path.
    let at_medical = documents_at(&p, Medical, &medical, 3).await;
    assert!(at_medical.iter().all(|d| d.get("sha256").is_none()), "the store's key stays inside: {at_medical:?}");
    let at_housing = documents_at(&p, Housing, &housing, 1).await;
    assert_eq!(at_housing[0]["material"], "id_card");
    let url = format!("{}/api/v1/referrals/{medical}/documents/{}", p.url(Medical), doc(&invoice));
    assert_eq!(download(&p, url, &caseworker(Medical)).await, (200, "application/pdf".into(), PDF.to_vec()));
    let url = format!("{}/api/v1/referrals/{housing}/documents/{}", p.url(Housing), doc(&invoice));
    assert_eq!(download(&p, url, &caseworker(Housing)).await.0, 404, "not a document of housing's referral");
    let url = format!("{}/api/v1/referrals/{medical}/documents/{}", p.url(Housing), doc(&invoice));
    assert_eq!(download(&p, url, &caseworker(Housing)).await.0, 404, "medical's referral is not housing's");
    let url = format!("{}/api/v1/referrals/{medical}/documents/{}", p.url(Medical), doc(&invoice));
    assert_eq!(download(&p, url, &caseworker(Housing)).await.0, 403, "housing staff at medical's service");

    // Housing asks for a bank statement; its scan reaches housing, not medical.
    assert_eq!(p.act(Housing, &housing, "sign-for", &caseworker(Housing), json!({})).await.0, 200);
    let ask = json!({"materials": ["bank_statement"]});
    assert_eq!(p.act(Housing, &housing, "supplement-requests", &caseworker(Housing), ask).await.0, 200);
    p.case_until(&case_id, "the window sees housing's request", |v| {
        lane_of(v, Housing)["status"] == "supplement_requested"
    })
    .await;
    assert_eq!(upload(&p, &case_id, "bank_statement", "application/pdf", b"%PDF-1.4 statement".to_vec()).await.0, 201);
    assert_eq!(documents_at(&p, Housing, &housing, 2).await[1]["material"], "bank_statement");
    assert_eq!(documents_at(&p, Medical, &medical, 3).await.len(), 3);

    // Every download is in the audit trail of the service that served it, with ids only.
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_trail WHERE action = 'GET /api/v1/referrals/{referral_id}/documents/{document_id}'
            AND outcome = 200 AND referral_id IS NOT NULL AND document_id IS NOT NULL AND case_id IS NOT NULL",
    )
    .fetch_one(p.db(Medical))
    .await
    .unwrap();
    assert_eq!(audited, 1);
}
