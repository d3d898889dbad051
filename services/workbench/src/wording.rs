//! The words on the pages: every API code in the Chinese of civil-affairs
//! practice (`GLOSSARY.md`), every problem an API can answer as a message a
//! clerk understands, and amounts, dates and ID numbers as people read them.
//! Codes never change with the wording; a code without a term is shown as
//! itself, and a test fails for every problem code of the APIs that has no
//! message here.

use chrono::{DateTime, NaiveDate};

/// `kind` is the glossary's table: `role`, `line`, `department`,
/// `case_status`, `lane_status`, `hukou`, `relation`, `stage`,
/// `housing_kind`, `house_rating`, `cause`, `channel`, `support`.
pub fn term(kind: &str, code: &str) -> Option<&'static str> {
    table(kind).iter().find(|(c, _)| *c == code).map(|(_, t)| *t)
}

/// The glossary's table of `kind`, in the glossary's order.
fn table(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "role" => &[
            ("window_clerk", "窗口受理人员"),
            ("caseworker", "经办人"),
            ("approver", "审批人"),
            ("operator", "运维人员"),
            ("auditor", "审计人员"),
        ],
        "line" => {
            &[("medical", "医疗救助"), ("education", "教育救助"), ("housing", "住房救助"), ("temporary", "临时救助")]
        }
        "department" => &[
            ("medical", "医疗保障部门"),
            ("education", "教育部门"),
            ("housing", "住房城乡建设部门"),
            ("temporary", "民政部门"),
        ],
        "case_status" => &[
            ("awaiting_materials", "待补齐材料"),
            ("accepted", "已受理"),
            ("in_progress", "办理中"),
            ("decided", "已办结"),
            ("closed", "已结案"),
            ("withdrawn", "已撤回"),
        ],
        "lane_status" => &[
            ("pending", "待转办"),
            ("referred", "已转办"),
            ("signed_for", "已签收"),
            ("supplement_requested", "待补正"),
            ("under_review", "审核中"),
            ("proposed", "待审批"),
            ("approved", "已批准"),
            ("rejected", "不予救助"),
            ("disbursed", "已发放"),
            ("returned", "已退回"),
            ("withdrawn", "已撤回"),
            ("withdrawal_pending", "撤回待部门确认"),
        ],
        "hukou" => &[("urban", "城镇"), ("rural", "农村")],
        "relation" => &[
            ("applicant", "申请人本人"),
            ("spouse", "配偶"),
            ("child", "子女"),
            ("parent", "父母"),
            ("grandparent", "（外）祖父母"),
            ("grandchild", "（外）孙子女"),
            ("sibling", "兄弟姐妹"),
            ("other", "其他"),
        ],
        "stage" => &[
            ("preschool", "学前教育"),
            ("primary", "小学"),
            ("junior", "初中"),
            ("senior", "高中"),
            ("vocational", "中职"),
            ("college", "大学"),
        ],
        "housing_kind" => &[("rent_subsidy", "租赁补贴"), ("renovation", "危房改造")],
        "house_rating" => &[("C", "C级危房"), ("D", "D级危房")],
        "cause" => &[
            ("illness", "疾病"),
            ("accident", "意外事故"),
            ("fire", "火灾"),
            ("disaster", "自然灾害"),
            ("other", "其他"),
        ],
        "channel" => &[("bank_card", "银行卡（社会化发放）"), ("cash", "现金"), ("in_kind", "实物")],
        "support" => &[("dibao", "低保对象"), ("tekun", "特困人员"), ("low_income", "低保边缘家庭（低收入家庭）")],
        "household_fact" => &[
            ("division_code", "行政区划代码"),
            ("hukou", "户籍性质"),
            ("members", "家庭人口"),
            ("monthly_income_fen", "家庭月收入"),
            ("assets_fen", "家庭财产"),
            ("existing_support", "已享受的救助"),
        ],
        "request_field" => &[
            ("hospital", "就诊医院"),
            ("diagnosis", "诊断"),
            ("total_cost_fen", "医疗费用总额"),
            ("insurance_paid_fen", "医保已报销"),
            ("patient_id_number", "患者公民身份号码"),
            ("student_id_number", "学生公民身份号码"),
            ("stage", "就读阶段"),
            ("school", "学校"),
            ("kind", "救助方式"),
            ("monthly_rent_fen", "月租金"),
            ("house_rating", "房屋危险等级"),
            ("cause", "困难原因"),
            ("amount_requested_fen", "申请金额"),
            ("emergency", "急难情形"),
        ],
        "outcome" => &[("approve", "给予救助"), ("reject", "不予救助")],
        "informed_by" => &[("sms", "短信"), ("letter", "书面告知"), ("in_person", "当面告知")],
        "chain_break" => &[
            ("altered", "记录被改动"),
            ("missing", "记录被删除"),
            ("relinked", "链接被改接"),
            ("truncated", "最新记录被删除"),
            ("unknown_key", "由未配置的密钥封存"),
        ],
        "notification" => {
            &[("accepted", "受理通知（案件编号）"), ("notice", "一次性告知（所缺材料）"), ("decision", "办理结果")]
        }
        "event" => &[
            ("ApplicationSubmitted", "窗口受理登记"),
            ("ApplicationAccepted", "材料齐全，正式受理"),
            ("ApplicationWithdrawn", "申请人撤回申请"),
            ("MaterialsSupplemented", "窗口登记交来的材料"),
            ("ReferralIssued", "转办至部门"),
            ("ReferralSignedFor", "部门签收"),
            ("SupplementRequested", "部门要求补正材料"),
            ("ProposalMade", "部门提出拟办意见"),
            ("ReferralApproved", "部门批准救助"),
            ("ReferralRejected", "部门决定不予救助"),
            ("AidDisbursed", "救助金发放"),
            ("ReferralReturned", "部门退回（非本部门事项）"),
            ("ReferralWithdrawn", "部门确认撤回"),
            ("ApprovedByOverride", "审批人超政策批准"),
            ("LineAdded", "窗口增加救助事项"),
            ("HandedOver", "案件移交"),
            ("CaseClosed", "结案"),
            ("PersonalDataErased", "保存期满，个人信息已删除"),
            ("DocumentAttached", "上传材料扫描件"),
            ("NotificationSent", "已短信告知申请人"),
            ("ReferralDeadlineExtended", "部门延长办结时限"),
            ("DeadlineExtended", "延长办结时限"),
            ("PartlySupplemented", "已交部分补正材料"),
            ("SignedFor", "签收"),
            ("ReferralReceived", "收到转办"),
            ("Supplemented", "申请人已补正材料"),
            ("Proposed", "提出拟办意见"),
            ("Approved", "批准"),
            ("Rejected", "不予救助"),
            ("Disbursed", "发放"),
            ("Returned", "退回"),
            ("Withdrawn", "撤回"),
        ],
        _ => &[],
    }
}

/// The codes of a glossary table, in the glossary's order (for select
/// boxes and filters). The status filters leave out what only the window's
/// view shows: a case's `accepted` (an answer to a submission, never a list
/// status), a lane's `pending` and `withdrawal_pending` (no department lane has them).
pub fn codes(kind: &str) -> Vec<&'static str> {
    let window_only: &[&str] = match kind {
        "case_status" => &["accepted"],
        "lane_status" => &["pending", "withdrawal_pending"],
        _ => &[],
    };
    table(kind).iter().map(|(code, _)| *code).filter(|code| !window_only.contains(code)).collect()
}

/// The message for a problem's `code` (the whole answer), or for a field's
/// `code` inside a validation answer. Every code any OneDoor API answers is
/// here: see the test `every_problem_code_of_the_apis_has_a_message`.
pub fn problem_message(code: &str) -> Option<&'static str> {
    Some(match code {
        // whole answers
        "validation_failed" => "填写的内容有误，请按各栏下方的提示修改后重新提交。",
        "invalid_body" | "malformed_json" | "unreadable_body" => "提交的内容无法识别，请刷新页面后重新填写。",
        "invalid_query" => "查询条件有误，请检查后重试。",
        "unauthorized" => "登录已失效，请重新登录。",
        "forbidden" => "您的岗位或所属乡镇（部门）无权办理此事项。",
        "not_found" => "未找到该记录，或该记录不属于您所在的乡镇（部门）。",
        "method_not_allowed" => "不支持此操作。",
        "duplicate_application" => "该申请人已有同一救助项目的在办案件，不能重复受理。",
        "invalid_transition" => "该事项当前的状态不允许此操作，请刷新页面查看最新状态。",
        "case_withdrawn" => "该申请已撤回，不能再办理。",
        "case_decided" => "各部门均已答复，该申请不能再撤回或补充材料。",
        "concurrent_update" | "stale_version" => "该案件刚被他人更新，请刷新页面后重试。",
        "payload_too_large" => "提交的内容过大。",
        "unsupported_media_type" => "提交的格式不受支持。",
        "rule_violated" => "金额或内容不符合救助政策的规定。",
        "idempotency_key_reused" => "同一次提交的内容被改动过，请刷新页面后重新提交。",
        "override_reason_required" => "超出政策核定金额或不符合条件的批准，必须填写理由。",
        "duplicate_reference" => "该发放凭证号已经登记过，请核对。",
        "above_limit" => "金额超过政策规定的年度上限或标准。",
        "above_approved" => "发放金额超过了批准金额中尚未发放的部分。",
        "override_required" => "超出政策核定金额或不符合条件的批准，须由审批人审批并写明理由。",
        "not_positive" => "金额须大于零。",
        "amount_out_of_range" => "金额超出允许范围。",
        "invalid_idempotency_key" => "提交标识无效，请刷新页面后重新提交。",
        "approver_is_proposer" => "提出拟办意见的人不能审批自己的意见。",
        "internal_error" => "系统内部错误，请稍后重试；如反复出现，请联系运维人员。",
        "database_unavailable" | "service_unavailable" => "系统繁忙，请稍后重试。",
        "no_such_dead_letter" => "该死信已不存在。",
        "case_closed" => "该案件已结案，不能再办理。",
        "lanes_not_final" => "尚有部门未办结，暂不能结案。",
        "case_open" => "该家庭尚有未办结的案件，不能删除其个人信息。",
        "retention_not_over" => "该家庭个人信息的保存期限尚未届满，不能删除。",
        "personal_data_erased" => "该家庭的个人信息已在保存期满后删除。",
        "document_erased" => "该扫描件已随家庭个人信息一并删除。",
        "line_open" => "该救助事项在本案件中仍在办理，不能重复添加。",
        "same_owner" => "该案件已由这位工作人员负责。",
        "not_later" => "新的办结期限须晚于现在的期限。",
        "future_date" => "日期不能晚于今天。",
        "header_too_large" => "请求过大，请重新登录后再试。",
        "unsupported_document_type" => "只能上传 JPEG、PNG 图片或 PDF 文件，且文件内容须与类型相符。",
        // fields
        "required" => "必填。",
        "too_long" => "内容过长。",
        "too_many" => "项目过多。",
        "invalid_value" => "请选择列表中的一项。",
        "invalid_character" => "含有不允许的字符。",
        "invalid_length" => "公民身份号码应为18位。",
        "purpose_length" => "请写明用途，4至200个字。",
        "invalid_format" => "公民身份号码只能由数字和末位X组成。",
        "invalid_text" => "输入中含有无法保存的字符，请删除后重试。",
        "audit_unavailable" => "暂时无法记录本次查阅，请稍后再试。",
        "replay_failed" => "重放后仍处理失败，死信已保留；请查明原因后再试。",
        "before_from" => "结束时间须晚于开始时间。",
        "invalid_characters" => "公民身份号码应为17位数字加1位数字或X。",
        "invalid_birth_date" => "公民身份号码中的出生日期不存在。",
        "invalid_check_digit" => "公民身份号码校验码错误，请核对。",
        "invalid_division_code" => "行政区划代码应为12位数字。",
        "outside_township" => "行政区划代码不在您所在的乡镇（街道）。",
        "invalid_phone" => "联系电话应为11位手机号或带区号的固定电话。",
        "negative_amount" => "金额不能为负数。",
        "out_of_range" => "数值超出允许范围。",
        "exceeds_total_cost" => "医保已报销金额不能大于医疗费用总额。",
        "applicant_not_listed" => "申请人本人须列入家庭成员。",
        "duplicate_member" => "同一公民身份号码重复填写了。",
        "patient_not_listed" => "患者须是家庭成员之一。",
        "student_not_listed" => "学生须是家庭成员之一。",
        "duplicate_aid_line" => "同一救助项目只能申请一次。",
        "not_applicable" => "该项不适用于所选的类型。",
        "unknown_material" => "材料目录中没有这一项。",
        "invalid_cursor" => "分页已失效，请回到第一页。",
        "open_case_exists" => "该家庭已有此救助事项的在办案件。",
        "open_case_elsewhere" => "该家庭在其他乡镇（街道）已有此救助事项的在办案件。",
        "unknown_field" => "不认识的栏目。",
        _ => return None,
    })
}

/// The message for a code, or a general one naming the code for staff to report.
pub fn message_or_code(code: &str) -> String {
    problem_message(code).map(str::to_string).unwrap_or_else(|| format!("操作未成功（{code}）。"))
}

/// `8,400.00 元`.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    let whole = (fen / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02} 元", fen % 100)
}

/// Parses a yuan amount as typed (`8400`, `8,400.5`, `8400.50`) into fen.
pub fn parse_yuan(typed: &str) -> Option<i64> {
    let s: String = typed.trim().trim_end_matches('元').trim().chars().filter(|c| *c != ',' && *c != '，').collect();
    if s.is_empty() {
        return None;
    }
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

/// `2026年11月26日` from `2026-11-26` or an RFC 3339 time (in China time).
pub fn date_cn(raw: &str) -> String {
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().or_else(|| {
        DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|t| t.with_timezone(&onedoor_contracts::china_time::offset()).date_naive())
    });
    match date {
        Some(d) => d.format("%Y年%-m月%-d日").to_string(),
        None => raw.to_string(),
    }
}

/// `2026年11月26日 14:05` in China time.
pub fn datetime_cn(raw: &str) -> String {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => t.with_timezone(&onedoor_contracts::china_time::offset()).format("%Y年%-m月%-d日 %H:%M").to_string(),
        Err(_) => date_cn(raw),
    }
}

/// Today at the service halls.
pub fn today_cn() -> String {
    onedoor_contracts::china_time::today().format("%Y年%-m月%-d日").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_yuan_with_two_decimals_and_typed_yuan_become_fen() {
        assert_eq!(yuan(840000), "8,400.00 元");
        assert_eq!(yuan(5), "0.05 元");
        assert_eq!(yuan(123456789), "1,234,567.89 元");
        assert_eq!(parse_yuan("8400"), Some(840000));
        assert_eq!(parse_yuan("8,400.5"), Some(840050));
        assert_eq!(parse_yuan("0.05元"), Some(5));
        assert_eq!(parse_yuan("8.123"), None);
        assert_eq!(parse_yuan("-1"), None);
        assert_eq!(parse_yuan(""), None);
    }

    #[test]
    fn dates_read_as_chinese_dates_in_china_time() {
        assert_eq!(date_cn("2026-11-26"), "2026年11月26日");
        assert_eq!(date_cn("2026-11-25T17:30:00Z"), "2026年11月26日");
        assert_eq!(datetime_cn("2026-11-25T17:30:00Z"), "2026年11月26日 01:30");
    }

    #[test]
    fn every_select_box_code_has_its_term() {
        for kind in ["relation", "stage", "housing_kind", "house_rating", "cause", "channel", "support", "hukou"] {
            for code in codes(kind) {
                assert!(term(kind, code).is_some(), "{kind} {code}");
            }
        }
        for code in codes("case_status") {
            assert!(term("case_status", code).is_some(), "{code}");
        }
        for code in codes("lane_status") {
            assert!(term("lane_status", code).is_some(), "{code}");
        }
    }
}

/// Every problem code the APIs can answer has a message: the codes are read
/// from the services' and libraries' sources, where each is written once as
/// a literal beside the constructor of the answer or field error.
#[cfg(test)]
mod coverage {
    use super::problem_message;
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(&path).unwrap());
            }
        }
    }

    #[test]
    fn every_problem_code_of_the_apis_has_a_message() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut texts = Vec::new();
        for dir in [
            "services/intake/src",
            "libs/department-workflow/src",
            "libs/http-kit/src",
            "libs/service-host/src",
            "libs/audit/src",
        ] {
            sources(&root.join(dir), &mut texts);
        }
        for line in onedoor_contracts::aid_line::AID_LINES {
            sources(&root.join("services").join(line.service).join("src"), &mut texts);
        }
        // A code is written once as a literal in one of these places: the
        // first argument of an answer (`Problem::conflict("code"`, `Problem::erased("code"`,
        // `Problem::new(StatusCode::X, "code"`), right after the field of an
        // error constructor (`FieldError::new(field, "code"`, `e.add(field,
        // "code"`, `invalid(field, "code"`), a `code: "..."` field, or an arm
        // mapping an error to its code (`CaseError::Withdrawn => "code"`).
        let positions = [
            r#"Problem::(?:new\(\s*(?:axum::http::)?StatusCode::\w+\s*,|conflict\(|erased\()\s*"([a-z][a-z0-9_]+)""#,
            r#"(?:FieldError::new|InvalidField::new|\.add|\binvalid)\(\s*[^;]*?,\s*"([a-z][a-z0-9_]+)""#,
            r#"\bcode:\s*"([a-z][a-z0-9_]+)""#,
            r#"Error::\w+(?:\s*\{[^}]*\})?\s*=>\s*"([a-z][a-z0-9_]+)""#,
        ]
        .map(|p| regex::Regex::new(p).unwrap());
        let mut codes: std::collections::BTreeSet<String> =
            ["validation_failed", "unauthorized", "forbidden", "not_found", "stale_version", "internal_error"]
                .map(String::from)
                .into();
        for text in &texts {
            for position in &positions {
                codes.extend(position.captures_iter(text).map(|c| c[1].to_string()));
            }
        }
        codes.extend(onedoor_contracts::identity::IdNumberError::ALL.map(|e| e.code().to_string()));
        assert!(codes.len() > 30, "the scan finds the codes: {codes:?}");
        let missing: Vec<_> = codes.iter().filter(|c| problem_message(c).is_none()).collect();
        assert!(missing.is_empty(), "problem codes without a Chinese message in wording.rs: {missing:?}");
    }
}
