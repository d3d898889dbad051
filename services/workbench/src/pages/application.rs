//! 受理: the application form. The household and its members, the aid
//! lines with the fields each needs, the materials the chosen lines need
//! (from intake's catalogue), and one submission. ID numbers are checked as
//! they are typed with the rules intake applies; every error the API answers
//! is shown under the field it names, and everything typed stays.

use super::{all, field, form_pairs, frame, require, submitted_form};
use crate::api::{ApiError, FieldProblem, Target};
use crate::render::{page, page_with_status};
use crate::session::Session;
use crate::{AppState, PageResult, wording};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::context;
use onedoor_contracts::Department;
use onedoor_contracts::identity::IdNumber;
use onedoor_http_kit::Role;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/applications/new", get(new_form).post(submit))
        .route("/applications/new/member-row", get(member_row))
        .route("/applications/new/check-id", post(check_id))
        .route("/applications/new/materials", post(materials_checklist))
}

/// A household member typed into the form (the applicant is the first, implied).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MemberDraft {
    name: String,
    id_number: String,
    relation: String,
    disability: bool,
    in_school: bool,
}

/// The form as typed: every value kept as text so that nothing is lost.
#[derive(Debug, Clone, Default, Serialize)]
struct Draft {
    values: BTreeMap<String, String>,
    support: Vec<String>,
    lines: Vec<String>,
    materials: Vec<String>,
    members: Vec<MemberDraft>,
    idempotency_key: String,
}

const TEXT_FIELDS: &[&str] = &[
    "applicant.name",
    "applicant.id_number",
    "applicant.phone",
    "household.division_code",
    "household.address",
    "household.hukou",
    "household.monthly_income",
    "household.assets",
    "medical.hospital",
    "medical.diagnosis",
    "medical.total_cost",
    "medical.insurance_paid",
    "medical.patient_id_number",
    "education.student_id_number",
    "education.stage",
    "education.school",
    "housing.kind",
    "housing.monthly_rent",
    "housing.house_rating",
    "temporary.cause",
    "temporary.amount_requested",
    "temporary.emergency",
    "applicant.disability",
    "applicant.in_school",
];

/// The aid lines in the order the form shows them and the requests are sent.
const LINES: [Department; 4] = [Department::Medical, Department::Education, Department::Housing, Department::Temporary];

impl Draft {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let values = TEXT_FIELDS
            .iter()
            .filter_map(|name| field(pairs, name).map(|v| (name.to_string(), v.to_string())))
            .collect();
        // Member rows keep the order they were added in; removed rows leave gaps.
        let mut rows: BTreeMap<u32, MemberDraft> = BTreeMap::new();
        for (key, value) in pairs {
            let Some(rest) = key.strip_prefix("members[") else { continue };
            let Some((index, name)) = rest.split_once("].") else { continue };
            let Ok(index) = index.parse::<u32>() else { continue };
            let row = rows.entry(index).or_default();
            match name {
                "name" => row.name = value.trim().to_string(),
                "id_number" => row.id_number = value.trim().to_string(),
                "relation" => row.relation = value.clone(),
                "disability" => row.disability = true,
                "in_school" => row.in_school = true,
                _ => {}
            }
        }
        let members = rows
            .into_values()
            .filter(|m| !(m.name.is_empty() && m.id_number.is_empty() && m.relation.is_empty()))
            .collect();
        Self {
            values,
            support: all(pairs, "household.existing_support").into_iter().map(str::to_string).collect(),
            lines: all(pairs, "lines").into_iter().map(str::to_string).collect(),
            materials: all(pairs, "materials").into_iter().map(str::to_string).collect(),
            members,
            idempotency_key: field(pairs, "idempotency_key").unwrap_or_default().to_string(),
        }
    }

    fn value(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    fn chosen(&self) -> Vec<Department> {
        LINES.into_iter().filter(|d| self.lines.iter().any(|l| l == d.as_str())).collect()
    }

    /// The request body intake takes, and the errors the form itself can
    /// see (amounts that are not amounts), keyed by form field.
    fn to_request(&self) -> (Value, Vec<FieldProblem>) {
        let mut local = Vec::new();
        let value = |name: &str| self.value(name);
        let mut amount = |name: &str| typed_amount(self.value(name), name, &mut local);
        let mut members = vec![json!({
            "name": self.value("applicant.name"),
            "id_number": self.value("applicant.id_number"),
            "relation": "applicant",
            "disability": self.values.contains_key("applicant.disability"),
            "in_school": self.values.contains_key("applicant.in_school"),
        })];
        members.extend(self.members.iter().map(|m| {
            json!({"name": m.name, "id_number": m.id_number, "relation": m.relation,
                   "disability": m.disability, "in_school": m.in_school})
        }));
        let income = amount("household.monthly_income");
        let assets = amount("household.assets");
        let mut requests = Vec::new();
        for line in self.chosen() {
            requests.push(line_request(line, &value, &mut local));
        }
        let body = json!({
            "applicant": {
                "name": self.value("applicant.name"),
                "id_number": self.value("applicant.id_number"),
                "phone": self.value("applicant.phone"),
            },
            "household": strip_nulls(json!({
                "division_code": self.value("household.division_code"),
                "address": self.value("household.address"),
                "hukou": self.value("household.hukou"),
                "members": members,
                "monthly_income_fen": income,
                "assets_fen": assets,
                "existing_support": self.support,
            })),
            "requests": requests,
            "materials": self.materials,
        });
        (body, local)
    }

    /// The API's field errors, each on the form field it names.
    fn form_errors(&self, e: &ApiError) -> Vec<FieldProblem> {
        e.errors()
            .iter()
            .map(|p| FieldProblem {
                field: self.form_field(&p.field),
                code: p.code.clone(),
                message: p.message.clone(),
            })
            .collect()
    }

    /// The form field an API error names (`household.members[2].id_number`
    /// is the second member row; `requests[1].stage` the second chosen line).
    fn form_field(&self, api_field: &str) -> String {
        let strip_fen = |s: &str| s.strip_suffix("_fen").unwrap_or(s).to_string();
        if let Some(rest) = api_field.strip_prefix("household.members[") {
            if let Some((index, name)) = rest.split_once("].")
                && let Ok(index) = index.parse::<usize>()
            {
                return if index == 0 { format!("applicant.{name}") } else { format!("members[{}].{name}", index - 1) };
            }
            return "members".into();
        }
        if api_field == "household.members" {
            return "members".into();
        }
        if let Some(rest) = api_field.strip_prefix("requests[") {
            if let Some((index, name)) = rest.split_once("].")
                && let Some(line) = index.parse::<usize>().ok().and_then(|i| self.chosen().get(i).copied())
            {
                return if name == "aid" { "lines".into() } else { format!("{}.{}", line.as_str(), strip_fen(name)) };
            }
            return "lines".into();
        }
        if api_field == "requests" {
            return "lines".into();
        }
        if api_field.starts_with("materials") {
            return "materials".into();
        }
        strip_fen(api_field)
    }
}
/// An amount typed in yuan, as fen; a field that is not an amount is one of
/// the form's own errors.
fn typed_amount(typed: &str, name: &str, local: &mut Vec<FieldProblem>) -> Value {
    if typed.is_empty() {
        return Value::Null;
    }
    match wording::parse_yuan(typed) {
        Some(fen) => json!(fen),
        None => {
            local.push(FieldProblem { field: name.to_string(), code: "not_an_amount".into(), message: String::new() });
            Value::Null
        }
    }
}

/// One line's request as intake takes it, from the form's `<line>.<field>`
/// values (the application form's and a case's form to add a line).
pub(crate) fn line_request<'a>(
    line: Department,
    value: &impl Fn(&str) -> &'a str,
    local: &mut Vec<FieldProblem>,
) -> Value {
    let text = |name: &str| -> Value {
        match value(name) {
            "" => Value::Null,
            v => json!(v),
        }
    };
    let mut amount = |name: &str| typed_amount(value(name), name, local);
    let r = match line {
        Department::Medical => json!({
            "aid": "medical",
            "hospital": text("medical.hospital"),
            "diagnosis": text("medical.diagnosis"),
            "total_cost_fen": amount("medical.total_cost"),
            "insurance_paid_fen": amount("medical.insurance_paid"),
            "patient_id_number": text("medical.patient_id_number"),
        }),
        Department::Education => json!({
            "aid": "education",
            "student_id_number": text("education.student_id_number"),
            "stage": text("education.stage"),
            "school": text("education.school"),
        }),
        Department::Housing => {
            let mut r = json!({"aid": "housing", "kind": text("housing.kind")});
            match value("housing.kind") {
                "renovation" => r["house_rating"] = text("housing.house_rating"),
                _ => r["monthly_rent_fen"] = amount("housing.monthly_rent"),
            }
            r
        }
        Department::Temporary => json!({
            "aid": "temporary",
            "cause": text("temporary.cause"),
            "amount_requested_fen": amount("temporary.amount_requested"),
            "emergency": value("temporary.emergency") == "true",
        }),
    };
    strip_nulls(r)
}

fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|_, value| !value.is_null());
    }
    v
}

/// What the form calls a field, for the list of errors above it.
fn field_label(name: &str) -> String {
    let label = match name {
        "applicant.name" => "申请人姓名",
        "applicant.id_number" => "申请人公民身份号码",
        "applicant.phone" => "联系电话",
        "household.division_code" => "行政区划代码",
        "household.address" => "家庭住址",
        "household.hukou" => "户籍性质",
        "household.monthly_income" => "家庭月收入",
        "household.assets" => "家庭财产",
        "household.existing_support" => "已享受的救助",
        "members" => "家庭成员",
        "lines" => "申请的救助项目",
        "materials" => "已交材料",
        "medical.hospital" => "医疗救助·就诊医院",
        "medical.diagnosis" => "医疗救助·诊断",
        "medical.total_cost" => "医疗救助·医疗费用总额",
        "medical.insurance_paid" => "医疗救助·医保已报销",
        "medical.patient_id_number" => "医疗救助·患者公民身份号码",
        "education.student_id_number" => "教育救助·学生公民身份号码",
        "education.stage" => "教育救助·就读阶段",
        "education.school" => "教育救助·学校",
        "housing.kind" => "住房救助·救助方式",
        "housing.monthly_rent" => "住房救助·月租金",
        "housing.house_rating" => "住房救助·房屋危险等级",
        "temporary.cause" => "临时救助·困难原因",
        "temporary.amount_requested" => "临时救助·申请金额",
        other => {
            if let Some(rest) = other.strip_prefix("members[")
                && let Some((i, field)) = rest.split_once("].")
            {
                let n = i.parse::<usize>().map(|i| i + 1).unwrap_or(0);
                let what = match field {
                    "name" => "姓名",
                    "id_number" => "公民身份号码",
                    "relation" => "与申请人关系",
                    _ => field,
                };
                return format!("家庭成员{n}·{what}");
            }
            other
        }
    };
    label.to_string()
}

/// The message shown under a field for an error code.
pub(crate) fn field_message(code: &str) -> String {
    match code {
        "not_an_amount" => "请填写金额（元），最多两位小数。".to_string(),
        _ => wording::message_or_code(code),
    }
}

/// What the materials checklist needs: the catalogue from intake.
async fn catalogue(state: &AppState, session: &Session) -> Result<Value, ApiError> {
    state.api.get(Target::Intake, "/api/v1/materials", &session.token).await
}

/// The materials the chosen lines need, each once with the lines needing it.
fn needed_materials(catalogue: &Value, draft: &Draft) -> Vec<Value> {
    let mut needed: Vec<(String, Vec<&'static str>)> = Vec::new();
    let mut add = |code: &str, line: Option<Department>| {
        let pos = match needed.iter().position(|(c, _)| c == code) {
            Some(p) => p,
            None => {
                needed.push((code.to_string(), Vec::new()));
                needed.len() - 1
            }
        };
        if let Some(line) = line {
            needed[pos].1.push(line.as_str());
        }
    };
    let chosen = draft.chosen();
    if !chosen.is_empty() {
        for code in catalogue["every_line"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            add(code, None);
        }
    }
    for line in chosen {
        let key = match line {
            Department::Housing => format!(
                "housing_{}",
                if draft.value("housing.kind") == "renovation" { "renovation" } else { "rent_subsidy" }
            ),
            d => d.as_str().to_string(),
        };
        for code in catalogue["requirements"][&key].as_array().into_iter().flatten().filter_map(Value::as_str) {
            add(code, Some(line));
        }
    }
    let name_of = |code: &str| {
        catalogue["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["code"] == code)
            .and_then(|i| i["name"].as_str())
            .unwrap_or(code)
            .to_string()
    };
    needed
        .into_iter()
        .map(|(code, lines)| {
            let checked = draft.materials.contains(&code);
            json!({"code": code, "name": name_of(&code), "lines": lines, "checked": checked})
        })
        .collect()
}

fn render_form(
    session: &Session,
    catalogue: &Value,
    draft: &Draft,
    errors: &[FieldProblem],
    problem: Option<Value>,
    status: StatusCode,
) -> Response {
    let by_field: BTreeMap<String, String> = errors.iter().map(|e| (e.field.clone(), field_message(&e.code))).collect();
    let summary: Vec<Value> = by_field
        .iter()
        .map(|(name, message)| json!({"field": name, "label": field_label(name), "message": message}))
        .collect();
    let township = session.person.township.clone().unwrap_or_default();
    let ctx = context! {
        ..frame(session, "new"),
        ..context! {
            draft,
            errors => by_field,
            summary,
            problem,
            township,
            materials => needed_materials(catalogue, draft),
            lines => LINES.map(|d| d.as_str()),
        }
    };
    page_with_status(status, "application_form.html", ctx)
}

async fn new_form(State(state): State<AppState>, session: Session) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let catalogue = catalogue(&state, &session).await?;
    let township = session.person.township.clone().unwrap_or_default();
    let mut values = BTreeMap::new();
    values.insert("household.division_code".to_string(), township);
    values.insert("household.hukou".to_string(), "urban".to_string());
    let draft = Draft { values, idempotency_key: crate::session::random_token(16), ..Draft::default() };
    Ok(render_form(&session, &catalogue, &draft, &[], None, StatusCode::OK))
}

#[derive(Debug, Deserialize)]
struct RowQuery {
    index: u32,
}

/// One more member row (htmx).
async fn member_row(session: Session, Query(q): Query<RowQuery>) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    Ok(page(
        "member_row.html",
        context! { i => q.index, m => MemberDraft::default(), errors => BTreeMap::<String, String>::new() },
    ))
}

/// The message under an ID number field as it is typed (htmx): the rules intake applies.
async fn check_id(session: Session, headers: HeaderMap, body: Bytes) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let pairs = form_pairs(&body);
    // htmx sends the whole form and names the field being typed in.
    let name = headers.get("hx-trigger-name").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let typed = field(&pairs, name).unwrap_or("");
    let today = chrono::Utc::now().date_naive();
    let message = match typed {
        "" => String::new(),
        raw => match IdNumber::parse(raw, today) {
            Ok(_) => String::new(),
            Err(e) => field_message(e.code()),
        },
    };
    Ok(Html(if message.is_empty() { String::new() } else { minijinja::HtmlEscape(&message).to_string() })
        .into_response())
}

/// The checklist of materials for the lines chosen so far (htmx).
async fn materials_checklist(State(state): State<AppState>, session: Session, body: Bytes) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let draft = Draft::from_pairs(&form_pairs(&body));
    let catalogue = catalogue(&state, &session).await?;
    Ok(page("materials_checklist.html", context! { materials => needed_materials(&catalogue, &draft) }))
}

async fn submit(State(state): State<AppState>, session: Session, body: Bytes) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let pairs = submitted_form(&session, &body)?;
    let mut draft = Draft::from_pairs(&pairs);
    if draft.idempotency_key.is_empty() {
        draft.idempotency_key = crate::session::random_token(16);
    }
    let catalogue = catalogue(&state, &session).await?;
    let (request, local) = draft.to_request();
    if !local.is_empty() {
        return Ok(render_form(&session, &catalogue, &draft, &local, None, StatusCode::BAD_REQUEST));
    }
    let answer = state
        .api
        .call(
            reqwest::Method::POST,
            Target::Intake,
            "/api/v1/applications",
            &session.token,
            Some(&request),
            &[("Idempotency-Key", &draft.idempotency_key)],
        )
        .await;
    match answer {
        Ok(created) => {
            let case_id = created["case_id"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/cases/{case_id}?accepted=1")).into_response())
        }
        Err(e @ ApiError::Problem { status: 400 | 422, .. }) => {
            let errors = draft.form_errors(&e);
            // A fresh key: the corrected form is a new request, not a retry.
            draft.idempotency_key = crate::session::random_token(16);
            let problem = json!({"message": wording::message_or_code(e.code())});
            Ok(render_form(&session, &catalogue, &draft, &errors, Some(problem), StatusCode::BAD_REQUEST))
        }
        Err(e @ ApiError::Problem { status: 409, .. }) => {
            let number = e.errors().iter().find(|p| p.code == "open_case_exists").map(|p| p.message.clone());
            // The existing case is linked when the clerk's township can open it.
            let link = match &number {
                Some(n) => {
                    let q: String =
                        form_urlencoded::Serializer::new(String::new()).append_pair("case_number", n).finish();
                    let page = state.api.get(Target::Intake, &format!("/api/v1/cases?{q}"), &session.token).await.ok();
                    page.and_then(|p| p["items"][0]["case_id"].as_str().map(|id| format!("/cases/{id}")))
                }
                None => None,
            };
            let errors = draft.form_errors(&e);
            let problem = json!({"message": wording::message_or_code(e.code()), "case_number": number, "link": link});
            Ok(render_form(&session, &catalogue, &draft, &errors, Some(problem), StatusCode::CONFLICT))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn api_errors_land_on_the_field_that_was_typed() {
        let draft = Draft::from_pairs(&pairs(&[
            ("lines", "education"),
            ("lines", "temporary"),
            ("members[3].name", "王小明"),
            ("members[7].name", "王小红"),
        ]));
        assert_eq!(draft.members.len(), 2);
        assert_eq!(draft.form_field("household.members[0].id_number"), "applicant.id_number");
        assert_eq!(draft.form_field("household.members[2].id_number"), "members[1].id_number");
        assert_eq!(draft.form_field("requests[1].amount_requested_fen"), "temporary.amount_requested");
        assert_eq!(draft.form_field("requests[0].stage"), "education.stage");
        assert_eq!(draft.form_field("household.monthly_income_fen"), "household.monthly_income");
        assert_eq!(draft.form_field("materials[1]"), "materials");
    }

    #[test]
    fn the_request_carries_the_applicant_as_first_member_and_amounts_in_fen() {
        let draft = Draft::from_pairs(&pairs(&[
            ("applicant.name", "王秀兰"),
            ("applicant.id_number", "11010519491231002X"),
            ("household.monthly_income", "1,200.50"),
            ("lines", "housing"),
            ("housing.kind", "renovation"),
            ("housing.house_rating", "D"),
            ("housing.monthly_rent", "800"),
        ]));
        let (body, local) = draft.to_request();
        assert!(local.is_empty());
        assert_eq!(body["household"]["members"][0]["relation"], "applicant");
        assert_eq!(body["household"]["monthly_income_fen"], 120050);
        assert_eq!(body["requests"][0], json!({"aid": "housing", "kind": "renovation", "house_rating": "D"}));

        let (_, local) = Draft::from_pairs(&pairs(&[("household.assets", "十万")])).to_request();
        assert_eq!(local[0].field, "household.assets");
    }
}
