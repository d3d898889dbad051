//! The application form as the window clerk submits it, and its validation.
//!
//! Enumerations and amounts arrive as plain JSON values and are checked here
//! rather than by the JSON decoder, so that every invalid field is reported
//! in one answer: one-time notification applies to forms too.

use super::InvalidField;
use super::materials::MaterialsCatalogue;
use chrono::NaiveDate;
use onedoor_contracts::Department;
use onedoor_contracts::identity::{DivisionCode, IdNumber, is_phone_number};
use onedoor_contracts::intake::{
    AidRequest, Applicant, HardshipCause, HouseRating, HousingKind, Hukou, SchoolStage, SupportKind,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;

/// `POST /api/v1/applications`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationForm {
    pub applicant: ApplicantForm,
    pub household: HouseholdForm,
    pub requests: Vec<RequestForm>,
    #[serde(default)]
    pub materials: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicantForm {
    pub name: String,
    pub id_number: String,
    pub phone: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdForm {
    /// 12-digit division code; its first 9 digits must be the clerk's township.
    pub division_code: String,
    pub address: String,
    /// `urban` | `rural`
    pub hukou: String,
    pub members: Vec<MemberForm>,
    pub monthly_income_fen: i64,
    pub assets_fen: i64,
    /// Any of `dibao`, `tekun`, `low_income`.
    #[serde(default)]
    pub existing_support: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberForm {
    pub name: String,
    pub id_number: String,
    /// `applicant` | `spouse` | `child` | `parent` | `grandparent` | `grandchild` | `sibling` | `other`
    pub relation: String,
    #[serde(default)]
    pub disability: bool,
    #[serde(default)]
    pub in_school: bool,
}

/// One aid line's request; which fields apply depends on `aid`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"aid": "temporary", "cause": "illness", "amount_requested_fen": 300000, "emergency": false}))]
pub struct RequestForm {
    /// `medical` | `education` | `housing` | `temporary`
    pub aid: String,
    pub hospital: Option<String>,
    pub diagnosis: Option<String>,
    pub total_cost_fen: Option<i64>,
    pub insurance_paid_fen: Option<i64>,
    /// Medical: the household member treated (default: the applicant).
    pub patient_id_number: Option<String>,
    pub student_id_number: Option<String>,
    pub stage: Option<String>,
    pub school: Option<String>,
    /// Housing: `rent_subsidy` | `renovation`
    pub kind: Option<String>,
    pub monthly_rent_fen: Option<i64>,
    /// Housing renovation: `C` | `D`
    pub house_rating: Option<String>,
    pub cause: Option<String>,
    pub amount_requested_fen: Option<i64>,
    pub emergency: Option<bool>,
}

const RELATIONS: [&str; 8] =
    ["applicant", "spouse", "child", "parent", "grandparent", "grandchild", "sibling", "other"];

/// A household member as kept in the case record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub id_number: String,
    pub relation: String,
    pub disability: bool,
    pub in_school: bool,
}

/// A validated application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub applicant: Applicant,
    pub division_code: String,
    pub address: String,
    pub hukou: Hukou,
    pub members: Vec<Member>,
    pub monthly_income_fen: i64,
    pub assets_fen: i64,
    pub existing_support: Vec<SupportKind>,
    pub requests: Vec<AidRequest>,
    pub materials: BTreeSet<String>,
}

impl Application {
    pub fn township(&self) -> &str {
        &self.division_code[..9]
    }

    /// The ID numbers of everyone in the household, the applicant first.
    pub fn person_ids(&self) -> Vec<&str> {
        let mut ids = vec![self.applicant.id_number.as_str()];
        ids.extend(self.members.iter().map(|m| m.id_number.as_str()).filter(|id| *id != self.applicant.id_number));
        ids
    }

    pub fn departments(&self) -> Vec<Department> {
        self.requests.iter().map(AidRequest::department).collect()
    }
}

/// Collects every problem of a form.
#[derive(Default)]
struct Errors(Vec<InvalidField>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(InvalidField::new(field, code, message));
    }

    fn required_text(&mut self, field: &str, value: &str, max: usize) -> String {
        let v = value.trim();
        if v.is_empty() {
            self.add(field, "required", "must not be empty");
        } else if v.chars().count() > max {
            self.add(field, "too_long", format!("at most {max} characters"));
        }
        v.to_string()
    }

    fn id_number(&mut self, field: &str, value: &str, today: NaiveDate) -> Option<IdNumber> {
        IdNumber::parse(value, today).map_err(|e| self.add(field, e.code(), e.message())).ok()
    }

    fn amount(&mut self, field: &str, value: Option<i64>) -> i64 {
        match value {
            None => {
                self.add(field, "required", "an amount in fen is required");
                0
            }
            Some(v) if v < 0 => {
                self.add(field, "negative_amount", "amounts are non-negative integers in fen");
                0
            }
            Some(v) => v,
        }
    }

    fn one_of<T: for<'de> Deserialize<'de>>(&mut self, field: &str, value: Option<&str>, allowed: &str) -> Option<T> {
        let Some(v) = value else {
            self.add(field, "required", format!("one of {allowed}"));
            return None;
        };
        serde_json::from_value(serde_json::Value::String(v.to_string()))
            .map_err(|_| self.add(field, "invalid_value", format!("must be one of {allowed}")))
            .ok()
    }

    fn not_applicable(&mut self, field: &str, present: bool, aid: &str) {
        if present {
            self.add(field, "not_applicable", format!("does not apply to a {aid} request"));
        }
    }
}

impl ApplicationForm {
    /// Checks every field; returns the application or every invalid field at once.
    pub fn validate(&self, catalogue: &MaterialsCatalogue, today: NaiveDate) -> Result<Application, Vec<InvalidField>> {
        let mut e = Errors::default();
        let name = e.required_text("applicant.name", &self.applicant.name, 50);
        let applicant_id = e.id_number("applicant.id_number", &self.applicant.id_number, today);
        if !is_phone_number(self.applicant.phone.trim()) {
            e.add("applicant.phone", "invalid_phone", "a mobile number (11 digits) or a landline with area code");
        }

        let h = &self.household;
        if DivisionCode::parse(h.division_code.trim()).is_none() {
            e.add("household.division_code", "invalid_division_code", "a division code has 12 digits");
        }
        let address = e.required_text("household.address", &h.address, 200);
        let hukou = e.one_of::<Hukou>("household.hukou", Some(&h.hukou), "urban, rural");
        if h.monthly_income_fen < 0 {
            e.add("household.monthly_income_fen", "negative_amount", "amounts are non-negative integers in fen");
        }
        if h.assets_fen < 0 {
            e.add("household.assets_fen", "negative_amount", "amounts are non-negative integers in fen");
        }
        let mut support = Vec::new();
        for (i, s) in h.existing_support.iter().enumerate() {
            if let Some(kind) = e.one_of::<SupportKind>(
                &format!("household.existing_support[{i}]"),
                Some(s),
                "dibao, tekun, low_income",
            ) && !support.contains(&kind)
            {
                support.push(kind);
            }
        }

        let mut members = Vec::new();
        let mut member_ids = BTreeSet::new();
        if h.members.is_empty() {
            e.add("household.members", "required", "list every member of the household");
        }
        for (i, m) in h.members.iter().enumerate() {
            let path = format!("household.members[{i}]");
            let name = e.required_text(&format!("{path}.name"), &m.name, 50);
            let id = e.id_number(&format!("{path}.id_number"), &m.id_number, today);
            if !RELATIONS.contains(&m.relation.as_str()) {
                e.add(format!("{path}.relation"), "invalid_value", format!("must be one of {}", RELATIONS.join(", ")));
            }
            if let Some(id) = id {
                if !member_ids.insert(id.as_str().to_string()) {
                    e.add(format!("{path}.id_number"), "duplicate_member", "this person is listed twice");
                }
                members.push(Member {
                    name,
                    id_number: id.as_str().to_string(),
                    relation: m.relation.clone(),
                    disability: m.disability,
                    in_school: m.in_school,
                });
            }
        }
        if let Some(id) = &applicant_id
            && !h.members.is_empty()
            && !member_ids.contains(id.as_str())
            && h.members.iter().all(|m| IdNumber::parse(&m.id_number, today).is_ok())
        {
            e.add("household.members", "applicant_not_listed", "the applicant must be one of the household members");
        }

        let mut requests = Vec::new();
        let mut lines = BTreeSet::new();
        if self.requests.is_empty() {
            e.add("requests", "required", "at least one aid request");
        }
        for (i, r) in self.requests.iter().enumerate() {
            let path = format!("requests[{i}]");
            let Some(department) =
                e.one_of::<Department>(&format!("{path}.aid"), Some(&r.aid), "medical, education, housing, temporary")
            else {
                continue;
            };
            if !lines.insert(department) {
                e.add(format!("{path}.aid"), "duplicate_aid_line", "at most one request per aid line");
            }
            if let Some(request) = validate_request(&mut e, &path, department, r, &member_ids, today) {
                requests.push(request);
            }
        }

        let mut materials = BTreeSet::new();
        for (i, code) in self.materials.iter().enumerate() {
            if catalogue.is_known(code) {
                materials.insert(code.clone());
            } else {
                e.add(
                    format!("materials[{i}]"),
                    "unknown_material",
                    format!("{code:?} is not in the materials catalogue"),
                );
            }
        }

        if !e.0.is_empty() {
            return Err(e.0);
        }
        Ok(Application {
            applicant: Applicant {
                name,
                id_number: applicant_id.expect("validated").as_str().to_string(),
                phone: self.applicant.phone.trim().to_string(),
            },
            division_code: h.division_code.trim().to_string(),
            address,
            hukou: hukou.expect("validated"),
            members,
            monthly_income_fen: h.monthly_income_fen,
            assets_fen: h.assets_fen,
            existing_support: support,
            requests,
            materials,
        })
    }
}

impl RequestForm {
    /// Checks one request on its own (a line added to an open case), against
    /// the household the case was accepted with; fields are named from the
    /// request's root (`aid`, `hospital`, ...).
    pub fn validate(&self, member_ids: &BTreeSet<String>, today: NaiveDate) -> Result<AidRequest, Vec<InvalidField>> {
        let mut e = Errors::default();
        let request = e
            .one_of::<Department>("aid", Some(&self.aid), "medical, education, housing, temporary")
            .and_then(|department| validate_request(&mut e, "", department, self, member_ids, today));
        match request {
            Some(request) if e.0.is_empty() => Ok(request),
            _ => Err(e.0),
        }
    }
}

fn validate_request(
    e: &mut Errors,
    path: &str,
    department: Department,
    r: &RequestForm,
    member_ids: &BTreeSet<String>,
    today: NaiveDate,
) -> Option<AidRequest> {
    let f = |name: &str| if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
    let aid = department.as_str();
    let fields: [(&str, bool, Department); 13] = [
        ("hospital", r.hospital.is_some(), Department::Medical),
        ("patient_id_number", r.patient_id_number.is_some(), Department::Medical),
        ("diagnosis", r.diagnosis.is_some(), Department::Medical),
        ("total_cost_fen", r.total_cost_fen.is_some(), Department::Medical),
        ("insurance_paid_fen", r.insurance_paid_fen.is_some(), Department::Medical),
        ("student_id_number", r.student_id_number.is_some(), Department::Education),
        ("stage", r.stage.is_some(), Department::Education),
        ("school", r.school.is_some(), Department::Education),
        ("kind", r.kind.is_some(), Department::Housing),
        ("house_rating", r.house_rating.is_some(), Department::Housing),
        ("cause", r.cause.is_some(), Department::Temporary),
        ("amount_requested_fen", r.amount_requested_fen.is_some(), Department::Temporary),
        ("emergency", r.emergency.is_some(), Department::Temporary),
    ];
    for (name, present, owner) in fields {
        if owner != department {
            e.not_applicable(&f(name), present, aid);
        }
    }
    if department != Department::Housing {
        e.not_applicable(&f("monthly_rent_fen"), r.monthly_rent_fen.is_some(), aid);
    }
    match department {
        Department::Medical => {
            let hospital = e.required_text(&f("hospital"), r.hospital.as_deref().unwrap_or(""), 100);
            let diagnosis = e.required_text(&f("diagnosis"), r.diagnosis.as_deref().unwrap_or(""), 200);
            let total = e.amount(&f("total_cost_fen"), r.total_cost_fen);
            let insured = e.amount(&f("insurance_paid_fen"), r.insurance_paid_fen);
            if insured > total {
                e.add(f("insurance_paid_fen"), "exceeds_total_cost", "insurance cannot pay more than the total cost");
            }
            let patient = match r.patient_id_number.as_deref() {
                None => None,
                Some(raw) => {
                    let id = e.id_number(&f("patient_id_number"), raw, today);
                    if let Some(id) = &id
                        && !member_ids.contains(id.as_str())
                    {
                        e.add(f("patient_id_number"), "patient_not_listed", "the patient must be a household member");
                    }
                    id.map(|id| id.as_str().to_string())
                }
            };
            Some(AidRequest::Medical {
                hospital,
                diagnosis,
                total_cost_fen: total,
                insurance_paid_fen: insured,
                patient_id_number: patient,
            })
        }
        Department::Education => {
            let student = e.id_number(&f("student_id_number"), r.student_id_number.as_deref().unwrap_or(""), today);
            if let Some(id) = &student
                && !member_ids.is_empty()
                && !member_ids.contains(id.as_str())
            {
                e.add(f("student_id_number"), "student_not_listed", "the student must be a household member");
            }
            let stage = e.one_of::<SchoolStage>(
                &f("stage"),
                r.stage.as_deref(),
                "preschool, primary, junior, senior, vocational, college",
            );
            let school = e.required_text(&f("school"), r.school.as_deref().unwrap_or(""), 100);
            Some(AidRequest::Education { student_id_number: student?.as_str().to_string(), stage: stage?, school })
        }
        Department::Housing => match r.kind.as_deref() {
            Some("rent_subsidy") => {
                e.not_applicable(&f("house_rating"), r.house_rating.is_some(), "rent_subsidy");
                let rent = e.amount(&f("monthly_rent_fen"), r.monthly_rent_fen);
                Some(AidRequest::Housing { kind: HousingKind::RentSubsidy { monthly_rent_fen: rent } })
            }
            Some("renovation") => {
                e.not_applicable(&f("monthly_rent_fen"), r.monthly_rent_fen.is_some(), "renovation");
                let rating = e.one_of::<HouseRating>(&f("house_rating"), r.house_rating.as_deref(), "C, D");
                Some(AidRequest::Housing { kind: HousingKind::Renovation { house_rating: rating? } })
            }
            Some(_) => {
                e.add(f("kind"), "invalid_value", "must be one of rent_subsidy, renovation");
                None
            }
            None => {
                e.add(f("kind"), "required", "one of rent_subsidy, renovation");
                None
            }
        },
        Department::Temporary => {
            let cause =
                e.one_of::<HardshipCause>(&f("cause"), r.cause.as_deref(), "illness, accident, fire, disaster, other");
            let amount = e.amount(&f("amount_requested_fen"), r.amount_requested_fen);
            Some(AidRequest::Temporary {
                cause: cause?,
                amount_requested_fen: amount,
                emergency: r.emergency.unwrap_or(false),
            })
        }
    }
}
