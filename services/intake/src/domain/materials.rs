//! The materials catalogue and the one-time notice (一次性告知制): every
//! item missing across every requested aid line, listed once, with the lines
//! that need it. A household is never sent home twice for paperwork.

use onedoor_contracts::Department;
use onedoor_contracts::intake::{AidRequest, HousingKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which materials each aid line needs. Configuration: the defaults are the
/// catalogue of the API contract; `ONEDOOR_MATERIALS_FILE` may replace them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialsCatalogue {
    pub every_line: Vec<String>,
    pub medical: Vec<String>,
    pub education: Vec<String>,
    pub housing_rent_subsidy: Vec<String>,
    pub housing_renovation: Vec<String>,
    pub temporary: Vec<String>,
}

impl Default for MaterialsCatalogue {
    fn default() -> Self {
        let v = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Self {
            every_line: v(&["id_card", "hukou_book", "income_statement", "verification_authorization"]),
            medical: v(&["medical_invoice", "discharge_summary", "insurance_settlement"]),
            education: v(&["enrolment_proof"]),
            housing_rent_subsidy: v(&["tenancy_proof"]),
            housing_renovation: v(&["house_safety_appraisal"]),
            temporary: v(&["hardship_statement"]),
        }
    }
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
        [
            &self.every_line,
            &self.medical,
            &self.education,
            &self.housing_rent_subsidy,
            &self.housing_renovation,
            &self.temporary,
        ]
        .iter()
        .any(|list| list.iter().any(|c| c == code))
    }

    /// What one request needs.
    pub fn required_for(&self, request: &AidRequest) -> Vec<&str> {
        let specific = match request {
            AidRequest::Medical { .. } => &self.medical,
            AidRequest::Education { .. } => &self.education,
            AidRequest::Housing { kind: HousingKind::RentSubsidy { .. } } => &self.housing_rent_subsidy,
            AidRequest::Housing { kind: HousingKind::Renovation { .. } } => &self.housing_renovation,
            AidRequest::Temporary { .. } => &self.temporary,
        };
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
    use onedoor_contracts::intake::HardshipCause;

    fn medical() -> AidRequest {
        AidRequest::Medical { hospital: "h".into(), diagnosis: "d".into(), total_cost_fen: 1, insurance_paid_fen: 0 }
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
}
