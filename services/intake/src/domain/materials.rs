//! The materials catalogue and the one-time notice (一次性告知制): every
//! item missing across every requested aid line, listed once, with the lines
//! that need it. A household is never sent home twice for paperwork.

use onedoor_contracts::Department;
use onedoor_contracts::aid_line::{AID_LINES, EVERY_LINE_MATERIALS, ON_REQUEST_MATERIALS};
use onedoor_contracts::intake::AidRequest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which materials each aid line needs. Configuration: the defaults come
/// from the table of aid lines (`onedoor_contracts::aid_line`);
/// `ONEDOOR_MATERIALS_FILE` may replace them with a JSON object holding
/// `every_line` and one list per requirement key (`medical`,
/// `housing_rent_subsidy`, ...), and optionally `on_request`: the items no
/// request needs up front that departments may ask for in a supplement
/// request (default: `onedoor_contracts::aid_line::ON_REQUEST_MATERIALS`).
/// A key missing or unknown is an error at start-up, never a silent default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, Vec<String>>", into = "BTreeMap<String, Vec<String>>")]
pub struct MaterialsCatalogue {
    every_line: Vec<String>,
    /// Keyed by [`AidRequest::requirement_key`].
    by_requirement: BTreeMap<String, Vec<String>>,
    /// Asked for by departments in supplement requests, never up front.
    on_request: Vec<String>,
}

const EVERY_LINE_KEY: &str = "every_line";
const ON_REQUEST_KEY: &str = "on_request";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn requirement_keys() -> impl Iterator<Item = &'static str> {
    AID_LINES.iter().flat_map(|l| l.requirements.iter().map(|r| r.key))
}

impl Default for MaterialsCatalogue {
    fn default() -> Self {
        Self {
            every_line: strings(EVERY_LINE_MATERIALS),
            by_requirement: AID_LINES
                .iter()
                .flat_map(|l| l.requirements)
                .map(|r| (r.key.to_string(), strings(r.materials)))
                .collect(),
            on_request: strings(ON_REQUEST_MATERIALS),
        }
    }
}

impl TryFrom<BTreeMap<String, Vec<String>>> for MaterialsCatalogue {
    type Error = String;
    fn try_from(mut lists: BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let every_line = lists.remove(EVERY_LINE_KEY).ok_or("the catalogue has no `every_line` list")?;
        let on_request = lists.remove(ON_REQUEST_KEY).unwrap_or_else(|| strings(ON_REQUEST_MATERIALS));
        for key in requirement_keys() {
            if !lists.contains_key(key) {
                return Err(format!("the catalogue has no materials for `{key}`"));
            }
        }
        if let Some(unknown) = lists.keys().find(|k| !requirement_keys().any(|r| r == k.as_str())) {
            return Err(format!("the catalogue names an unknown requirement `{unknown}`"));
        }
        Ok(Self { every_line, by_requirement: lists, on_request })
    }
}

impl From<MaterialsCatalogue> for BTreeMap<String, Vec<String>> {
    fn from(catalogue: MaterialsCatalogue) -> Self {
        let mut lists = catalogue.by_requirement;
        lists.insert(EVERY_LINE_KEY.to_string(), catalogue.every_line);
        lists.insert(ON_REQUEST_KEY.to_string(), catalogue.on_request);
        lists
    }
}

/// The catalogue as the window's forms read it (`GET /api/v1/materials`):
/// what every line needs, what each kind of request adds, each item's name,
/// and each line's time limit in working days for the receipt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublishedCatalogue {
    /// Every material the catalogue knows, in catalogue order, with its Chinese name.
    pub items: Vec<CatalogueItem>,
    /// Needed whatever the lines.
    pub every_line: Vec<String>,
    /// Keyed by requirement: `medical`, `education`, `housing_rent_subsidy`,
    /// `housing_renovation`, `temporary`.
    pub requirements: BTreeMap<String, Vec<String>>,
    /// Needed by no request up front; departments ask for them in supplement requests.
    pub on_request: Vec<String>,
    /// Working days each line has to decide, once referred.
    #[schema(value_type = BTreeMap<String, u32>)]
    pub time_limits: BTreeMap<Department, u32>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CatalogueItem {
    pub code: String,
    /// The glossary's term; the code itself for an item configured beyond the default catalogue.
    pub name: String,
}

/// One item of the one-time notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MissingMaterial {
    pub code: String,
    #[schema(value_type = Vec<String>)]
    pub needed_for: Vec<Department>,
}

impl MaterialsCatalogue {
    pub fn is_known(&self, code: &str) -> bool {
        self.lists().any(|list| list.iter().any(|c| c == code))
    }

    fn lists(&self) -> impl Iterator<Item = &Vec<String>> {
        std::iter::once(&self.every_line).chain(self.by_requirement.values()).chain(std::iter::once(&self.on_request))
    }

    /// The catalogue as published to the window, with the lines' time limits.
    pub fn published(&self, time_limits: BTreeMap<Department, u32>) -> PublishedCatalogue {
        let mut items: Vec<CatalogueItem> = Vec::new();
        for code in self.lists().flatten() {
            if !items.iter().any(|i| &i.code == code) {
                let name = onedoor_contracts::aid_line::material_name(code).unwrap_or(code).to_string();
                items.push(CatalogueItem { code: code.clone(), name });
            }
        }
        PublishedCatalogue {
            items,
            every_line: self.every_line.clone(),
            requirements: self.by_requirement.clone(),
            on_request: self.on_request.clone(),
            time_limits,
        }
    }

    /// What one request needs.
    pub fn required_for(&self, request: &AidRequest) -> Vec<&str> {
        // Every requirement key has its list: checked when the catalogue was made.
        let specific = self.by_requirement.get(request.requirement_key()).map(Vec::as_slice).unwrap_or_default();
        self.every_line.iter().chain(specific).map(String::as_str).collect()
    }

    /// The one-time notice: what the requests need minus what was handed in,
    /// each item once (catalogue order), with every line that needs it.
    pub fn missing(&self, requests: &[AidRequest], handed_in: &BTreeSet<String>) -> Vec<MissingMaterial> {
        let mut needed: BTreeMap<&str, BTreeSet<Department>> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        for request in requests {
            for code in self.required_for(request) {
                if handed_in.contains(code) {
                    continue;
                }
                if !needed.contains_key(code) {
                    order.push(code);
                }
                needed.entry(code).or_default().insert(request.department());
            }
        }
        order
            .into_iter()
            .map(|code| MissingMaterial { code: code.to_string(), needed_for: needed[code].iter().copied().collect() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onedoor_contracts::intake::{HardshipCause, HousingKind};

    fn medical() -> AidRequest {
        AidRequest::Medical {
            hospital: "h".into(),
            diagnosis: "d".into(),
            total_cost_fen: 1,
            insurance_paid_fen: 0,
            patient_id_number: None,
        }
    }

    fn temporary() -> AidRequest {
        AidRequest::Temporary { cause: HardshipCause::Illness, amount_requested_fen: 1, emergency: false }
    }

    #[test]
    fn the_notice_lists_every_missing_item_once_with_every_line_needing_it() {
        let handed_in: BTreeSet<String> = ["id_card".to_string(), "medical_invoice".to_string()].into();
        let missing = MaterialsCatalogue::default().missing(&[medical(), temporary()], &handed_in);
        let codes: Vec<&str> = missing.iter().map(|m| m.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "hukou_book",
                "income_statement",
                "verification_authorization",
                "discharge_summary",
                "insurance_settlement",
                "hardship_statement"
            ]
        );
        assert_eq!(missing[0].needed_for, [Department::Medical, Department::Temporary]);
        assert_eq!(missing[3].needed_for, [Department::Medical]);
        assert_eq!(missing[5].needed_for, [Department::Temporary]);
    }

    #[test]
    fn housing_needs_tenancy_proof_or_a_safety_appraisal_by_kind() {
        let c = MaterialsCatalogue::default();
        let rent = AidRequest::Housing { kind: HousingKind::RentSubsidy { monthly_rent_fen: 1 } };
        assert!(c.required_for(&rent).contains(&"tenancy_proof"));
        assert!(!c.required_for(&rent).contains(&"house_safety_appraisal"));
    }

    #[test]
    fn nothing_is_missing_when_everything_was_handed_in() {
        let c = MaterialsCatalogue::default();
        let all: BTreeSet<String> = c.required_for(&medical()).into_iter().map(String::from).collect();
        assert!(c.missing(&[medical()], &all).is_empty());
    }

    #[test]
    fn a_catalogue_file_keeps_its_format_and_refuses_a_missing_or_unknown_line() {
        let default = MaterialsCatalogue::default();
        let json = serde_json::to_value(&default).unwrap();
        assert_eq!(json["housing_renovation"], serde_json::json!(["house_safety_appraisal"]));
        assert_eq!(serde_json::from_value::<MaterialsCatalogue>(json.clone()).unwrap(), default);
        let mut missing = json.clone();
        missing.as_object_mut().unwrap().remove("temporary");
        let error = serde_json::from_value::<MaterialsCatalogue>(missing).unwrap_err().to_string();
        assert!(error.contains("no materials for `temporary`"), "{error}");
        let mut unknown = json;
        unknown["employment"] = serde_json::json!(["labour_contract"]);
        let error = serde_json::from_value::<MaterialsCatalogue>(unknown).unwrap_err().to_string();
        assert!(error.contains("unknown requirement `employment`"), "{error}");
    }
}
