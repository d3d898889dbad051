//! The story at the window and in the departments, in a real browser.

use crate::harness::*;
use crate::stack::applicant_id;
use onedoor_test_support::sample::child_id;

const CLERK: &str = "role=window_clerk&township=330102001&sub=clerk-7";
const CASEWORKER: &str = "role=caseworker&department=medical&sub=cw-1";
const APPROVER: &str = "role=approver&department=medical&sub=approver-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_household_is_served_at_the_window_and_by_the_department_in_the_browser() {
    let platform = Platform::start().await;
    let clerk = platform.person(CLERK).await;
    assert_eq!(clerk.path().await, "/cases", "a clerk lands on the township's cases");

    // The clerk fills the whole form with the keyboard alone.
    clerk.goto("/applications/new").await;
    let id = applicant_id(3);
    let wrong = format!("{}{}", &id[..17], if id.ends_with('1') { '2' } else { '1' });
    clerk.find("#f-applicant\\.name").await.click().await.unwrap();
    clerk.type_into("applicant.name", "王秀兰").await;
    clerk.type_into("applicant.id_number", &wrong).await;
    // An invalid ID number is shown in Chinese under its field as it is typed.
    clerk.text_until("#c-applicant_id_number", "the check digit is refused", |t| t.contains("校验码错误")).await;
    let field = clerk.tab_to("applicant.id_number", None).await;
    field.clear().await.unwrap();
    field.send_keys(&id).await.unwrap();
    clerk.text_until("#c-applicant_id_number", "the message clears", str::is_empty).await;
    clerk.type_into("applicant.phone", "13812345678").await;
    // The township's nine digits are filled in; the clerk adds the village's three.
    clerk.type_into("household.division_code", "001").await;
    clerk.type_into("household.address", "西湖区文三路1号").await;
    clerk.type_into("household.monthly_income", "1200").await;
    clerk.type_into("household.assets", "0").await;
    clerk.tick("household.existing_support", "dibao").await;
    // One more member: the add button by keyboard, then the new row.
    clerk.tab_to("add-member", None).await.send_keys(ENTER).await.unwrap();
    clerk.find("#f-members\\[0\\]\\.name").await;
    clerk.type_into("members[0].name", "王小明").await;
    clerk.type_into("members[0].id_number", &child_id()).await;
    // 请选择, 申请人本人, 配偶, 子女
    clerk.tab_to("members[0].relation", None).await.send_keys(&ARROW_DOWN.repeat(3)).await.unwrap();
    clerk.tick("lines", "medical").await;
    clerk.text_until("#materials", "the checklist lists the medical papers", |t| t.contains("医疗费用票据")).await;
    clerk.type_into("medical.hospital", "浙江大学医学院附属第一医院").await;
    clerk.type_into("medical.diagnosis", "急性淋巴细胞白血病").await;
    clerk.type_into("medical.total_cost", "80000").await;
    clerk.type_into("medical.insurance_paid", "50000").await;
    for code in ["id_card", "hukou_book", "income_statement", "verification_authorization"] {
        clerk.tick("materials", code).await;
    }
    clerk.screenshot("application-form").await;
    clerk.tab_to("submit", None).await.send_keys(ENTER).await.unwrap();

    // The hospital papers are missing: the case waits, and one notice lists them all.
    clerk.text_until(".case-status", "the case awaits materials", |t| t == "待补齐材料").await;
    let case_path = clerk.path().await;
    let case_id = case_path.trim_start_matches("/cases/").to_string();
    clerk.screenshot("case-awaiting-materials").await;
    clerk.goto(&format!("/cases/{case_id}/notice")).await;
    let notice = clerk.printed_text().await;
    for text in ["一次性告知书", "医疗费用票据", "出院小结", "医保结算单"] {
        assert!(notice.contains(text), "the printed notice names {text}:\n{notice}");
    }
    assert_eq!(notice.matches("医疗费用票据").count(), 1, "each item once");
    clerk.screenshot("one-time-notice").await;
    clerk.goto(&format!("/cases/{case_id}/receipt")).await;
    let receipt = clerk.printed_text().await;
    assert!(receipt.contains("受理回执") && receipt.contains("20个工作日"), "{receipt}");

    // The papers arrive: the clerk ticks them and the lane is referred.
    clerk.goto(&case_path).await;
    for code in ["medical_invoice", "discharge_summary", "insurance_settlement"] {
        clerk.find(&format!("input[name=materials][value={code}]")).await.click().await.unwrap();
    }
    clerk.find("form[action$='/materials'] button").await.click().await.unwrap();
    clerk.text_until("tr.lane-medical .lane-status", "the lane is referred", |t| t.starts_with("已转办")).await;
    // The invoice from the document camera goes with it.
    let scan = platform.stack.logs.path().join("invoice.pdf");
    std::fs::write(&scan, b"%PDF-1.4\n% an invoice from the document camera\n%%EOF\n").unwrap();
    clerk.find("#f-material option[value=medical_invoice]").await.click().await.unwrap();
    clerk.find("#f-file").await.send_keys(scan.to_str().unwrap()).await.unwrap();
    clerk.find("form.upload button").await.click().await.unwrap();
    clerk.text_until(".notice", "the scan is uploaded", |t| t.contains("扫描件已上传")).await;
    clerk.text_until("section.documents table", "the scan is listed", |t| t.contains("医疗费用票据")).await;
    // From here the clerk's page stays open: it must show each step by itself.
    clerk.client.execute("window.__notReloaded = true", vec![]).await.unwrap();

    // The medical caseworker signs for it, proposes the recommended amount.
    let staff = platform.person(CASEWORKER).await;
    assert_eq!(staff.path().await, "/referrals");
    staff.text_until("table.list", "the referral arrives in the inbox", |t| t.contains("330102001")).await;
    staff.screenshot("referral-inbox").await;
    staff.find("table.list tbody a").await.click().await.unwrap();
    staff.text_until("ul.documents", "the department sees the window's scan", |t| t.contains("医疗费用票据")).await;
    staff.find("form.step-sign-for button").await.click().await.unwrap();
    staff.text_until(".lane-status", "signed for", |t| t == "已签收").await;
    clerk
        .text_until("tr.lane-medical .lane-status", "the window sees the signature", |t| t.starts_with("已签收"))
        .await;
    let suggested = staff.find("#f-amount").await.prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(suggested, "21000.00", "the amount is prefilled with the recommendation");
    staff.screenshot("referral").await;
    staff.find("form.step-proposal button").await.click().await.unwrap();
    staff.text_until(".lane-status", "above the threshold the proposal waits", |t| t == "待审批").await;
    clerk.text_until("tr.lane-medical .lane-status", "the window sees the proposal", |t| t.starts_with("待审批")).await;
    let referral_path = staff.path().await;
    staff.close().await;

    // The approver approves above the threshold.
    let approver = platform.person(APPROVER).await;
    approver.goto(&referral_path).await;
    approver.find("form.step-approval button").await.click().await.unwrap();
    approver.text_until(".lane-status", "approved", |t| t == "已批准").await;
    clerk.text_until("tr.lane-medical .lane-status", "the window sees the approval", |t| t.starts_with("已批准")).await;
    approver.close().await;

    // The caseworker pays it out; the bank needs the full ID number, which
    // the page shows masked until the caseworker states why.
    let staff = platform.person(CASEWORKER).await;
    staff.goto(&referral_path).await;
    assert_eq!(staff.text(".id-number").await, format!("{}********{}", &id[..6], &id[14..]));
    staff.find("details.unmask summary").await.click().await.unwrap();
    staff.find("#f-purpose").await.send_keys("发放救助金").await.unwrap();
    staff.find("details.unmask button").await.click().await.unwrap();
    staff.text_until(".id-number", "the full number is shown", |t| t == id).await;
    staff.find("#f-reference").await.send_keys("TX-20261126-1").await.unwrap();
    staff.find("form.step-disbursement button").await.click().await.unwrap();
    staff.text_until(".lane-status", "paid", |t| t == "已发放").await;
    staff.close().await;

    let lane = clerk.text_until("tr.lane-medical", "the window sees the payment", |t| t.contains("已发放")).await;
    assert!(lane.contains("21,000.00 元"), "{lane}");
    let not_reloaded = clerk.client.execute("return window.__notReloaded === true", vec![]).await.unwrap();
    assert_eq!(not_reloaded, serde_json::json!(true), "the case view followed every step without a reload");
    clerk.text_until(".case-status", "every lane is decided", |t| t == "已办结").await;
    clerk.screenshot("case-decided").await;
    clerk.goto(&format!("/cases/{case_id}/lanes/medical/letter")).await;
    let letter = clerk.printed_text().await;
    assert!(letter.contains("救助决定告知书") && letter.contains("21,000.00"), "{letter}");
    // The applicant was told by SMS: the clerk closes the case.
    clerk.goto(&case_path).await;
    clerk.find("#f-informed_by option[value=sms]").await.click().await.unwrap();
    clerk.find("section.close button").await.click().await.unwrap();
    clerk.text_until(".case-status", "the case is closed", |t| t == "已结案").await;
    clerk.screenshot("case-closed").await;
    clerk.close().await;

    // A clerk of another township cannot open the case.
    let elsewhere = platform.person("role=window_clerk&township=330106002&sub=clerk-9").await;
    elsewhere.goto(&case_path).await;
    assert!(elsewhere.body().await.contains("未找到"), "another township's clerk sees nothing of the case");
    elsewhere.goto("/cases").await;
    assert!(!elsewhere.body().await.contains("王秀兰"));
    elsewhere.close().await;

    // The auditor finds the caseworker's disclosure of the full ID number,
    // with its purpose, and medical's chain whole.
    let auditor = platform.person("role=auditor&sub=auditor-1").await;
    assert_eq!(auditor.path().await, "/audit");
    auditor.text_until("#chain-medical-aid", "medical's chain is checked", |t| t.contains("完整")).await;
    auditor.find("#f-service option[value=medical-aid]").await.click().await.unwrap();
    auditor.find("#f-actor").await.send_keys("cw-1").await.unwrap();
    auditor.find("form.filters button").await.click().await.unwrap();
    let trail = auditor.text_until("table.trail", "the disclosure is in the trail", |t| t.contains("unmask")).await;
    assert!(trail.contains("发放救助金") && !trail.contains(&id), "the purpose, never the number: {trail}");
    auditor.screenshot("audit").await;
    auditor.close().await;

    let logs = std::fs::read_to_string(platform.stack.logs.path().join("workbench.log")).unwrap_or_default();
    for secret in ["王秀兰", &id, "急性淋巴细胞白血病"] {
        assert!(!logs.contains(secret), "the workbench logged personal data ({secret})");
    }
}
