//! The one builder of sample applications for black-box tests: a household
//! of two (an applicant on dibao and a child in school) in township
//! 330102001, with the requests and materials a test chooses.

use onedoor_contracts::Department;
use serde_json::{Value, json};

/// The township of every sample household (and of the sample clerk).
pub const TOWNSHIP: &str = "330102001";

/// Every material of the default catalogue.
pub const ALL_MATERIALS: [&str; 11] = [
    "id_card",
    "hukou_book",
    "income_statement",
    "verification_authorization",
    "medical_invoice",
    "discharge_summary",
    "insurance_settlement",
    "enrolment_proof",
    "tenancy_proof",
    "hardship_statement",
    "house_safety_appraisal",
];

/// The child in the sample requests (a junior-school student): a
/// placeholder that [`SampleApplication::json`] replaces with the child of
/// the household at hand (see [`child_of`]).
pub fn child_id() -> String {
    crate::id_number("33010220120915004")
}

/// The child of the household of `applicant` (18 characters): born in 2010
/// to 2019 on the applicant's day and month, with the applicant's sequence
/// number, so that households of different applicants share no member (the
/// duplicate guard is per household member).
pub fn child_of(applicant: &str) -> String {
    let year_digit = applicant.get(9..10).unwrap_or("2");
    let month_day = applicant.get(10..14).unwrap_or("0915");
    let sequence = applicant.get(14..17).unwrap_or("004");
    crate::id_number(&format!("330102201{year_digit}{month_day}{sequence}"))
}

/// An application form, built up and rendered with [`SampleApplication::json`].
#[derive(Debug, Clone)]
pub struct SampleApplication {
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub child_name: String,
    pub monthly_income_fen: i64,
    pub existing_support: Vec<String>,
    pub requests: Vec<Value>,
    pub materials: Vec<String>,
}

impl SampleApplication {
    /// 张三 (`id_number`) and a child, urban, on dibao, 1,200 yuan a month;
    /// no requests yet; every material handed in.
    pub fn household_of_two(id_number: &str) -> Self {
        Self {
            name: "张三".into(),
            id_number: id_number.into(),
            phone: "13800138000".into(),
            child_name: "张小明".into(),
            monthly_income_fen: 120_000,
            existing_support: vec!["dibao".into()],
            requests: Vec::new(),
            materials: ALL_MATERIALS.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// One request of each of the four lines (see [`four_requests`]).
    pub fn four_lines(mut self) -> Self {
        self.requests = four_requests();
        self
    }

    pub fn request(mut self, request: Value) -> Self {
        self.requests.push(request);
        self
    }

    pub fn requests(mut self, requests: Vec<Value>) -> Self {
        self.requests = requests;
        self
    }

    pub fn materials(mut self, materials: &[&str]) -> Self {
        self.materials = materials.iter().map(|m| m.to_string()).collect();
        self
    }

    pub fn named(mut self, name: &str, child_name: &str) -> Self {
        self.name = name.into();
        self.child_name = child_name.into();
        self
    }

    pub fn phone(mut self, phone: &str) -> Self {
        self.phone = phone.into();
        self
    }

    pub fn json(&self) -> Value {
        let child = child_of(&self.id_number);
        let requests: Vec<Value> = self
            .requests
            .iter()
            .cloned()
            .map(|mut r| {
                if r["student_id_number"] == child_id() {
                    r["student_id_number"] = json!(child);
                }
                if r["patient_id_number"] == child_id() {
                    r["patient_id_number"] = json!(child);
                }
                r
            })
            .collect();
        json!({
            "applicant": {"name": self.name, "id_number": self.id_number, "phone": self.phone},
            "household": {
                "division_code": format!("{TOWNSHIP}001"),
                "address": "西湖区某街道1号",
                "hukou": "urban",
                "members": [
                    {"name": self.name, "id_number": self.id_number, "relation": "applicant", "disability": false, "in_school": false},
                    {"name": self.child_name, "id_number": child, "relation": "child", "disability": false, "in_school": true}
                ],
                "monthly_income_fen": self.monthly_income_fen,
                "assets_fen": 0,
                "existing_support": self.existing_support
            },
            "requests": requests,
            "materials": self.materials
        })
    }
}

/// A medical request: out of pocket `total - insured` fen.
pub fn medical(diagnosis: &str, total_cost_fen: i64, insurance_paid_fen: i64) -> Value {
    json!({"aid": "medical", "hospital": "浙大一院", "diagnosis": diagnosis, "total_cost_fen": total_cost_fen, "insurance_paid_fen": insurance_paid_fen})
}

/// An education request for the household's child, in junior school.
pub fn education() -> Value {
    json!({"aid": "education", "student_id_number": child_id(), "stage": "junior", "school": "某中学"})
}

pub fn rent_subsidy(monthly_rent_fen: i64) -> Value {
    json!({"aid": "housing", "kind": "rent_subsidy", "monthly_rent_fen": monthly_rent_fen})
}

pub fn temporary(cause: &str, amount_requested_fen: i64, emergency: bool) -> Value {
    json!({"aid": "temporary", "cause": cause, "amount_requested_fen": amount_requested_fen, "emergency": emergency})
}

/// One request per line: medical (30,000 yuan, 18,000 insured), education,
/// rent of 800 yuan, temporary aid of 3,000 yuan for illness.
pub fn four_requests() -> Vec<Value> {
    vec![medical("肺炎", 3_000_000, 1_800_000), education(), rent_subsidy(80_000), temporary("illness", 300_000, false)]
}

/// The lane of `department` in a case view.
pub fn lane(view: &Value, department: Department) -> Value {
    view["lanes"].as_array().unwrap().iter().find(|l| l["department"] == department.as_str()).cloned().unwrap()
}
