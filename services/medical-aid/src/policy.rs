//! Medical aid policy: eligible out-of-pocket cost = total cost − insurance
//! paid; 70% of it for households with dibao or tekun support, 50% otherwise;
//! at most the annual cap per person (across all of that person's approvals
//! this calendar year, from the department's ledger); above the threshold an
//! approver decides.

use onedoor_contracts::Department;
use onedoor_contracts::intake::{AidRequest, ReferralIssued, SupportKind};
use onedoor_department_workflow::domain::policy::{LedgerFacts, LedgerKey, Policy, Recommendation, yuan};

#[derive(Debug, Clone, clap::Args)]
pub struct MedicalPolicy {
    /// Percent of the eligible cost covered for dibao and tekun households.
    #[arg(long, env = "MEDICAL_RATIO_SUPPORTED_PERCENT", default_value_t = 70)]
    pub ratio_supported_percent: i64,
    #[arg(long, env = "MEDICAL_RATIO_OTHER_PERCENT", default_value_t = 50)]
    pub ratio_other_percent: i64,
    #[arg(long, env = "MEDICAL_ANNUAL_CAP_FEN", default_value_t = 5_000_000)]
    pub annual_cap_fen: i64,
    #[arg(long, env = "MEDICAL_APPROVAL_THRESHOLD_FEN", default_value_t = 1_000_000)]
    pub threshold_fen: i64,
}

impl Default for MedicalPolicy {
    fn default() -> Self {
        Self {
            ratio_supported_percent: 70,
            ratio_other_percent: 50,
            annual_cap_fen: 5_000_000,
            threshold_fen: 1_000_000,
        }
    }
}

impl Policy for MedicalPolicy {
    fn department(&self) -> Department {
        Department::Medical
    }

    /// The annual cap is per patient (the member treated; the applicant if none is named).
    fn ledger_key(&self, referral: &ReferralIssued) -> LedgerKey {
        let patient = match &referral.request {
            AidRequest::Medical { patient_id_number: Some(patient), .. } => patient.as_str(),
            _ => referral.applicant.id_number.as_str(),
        };
        LedgerKey::person(patient, "medical")
    }

    fn recommend(&self, referral: &ReferralIssued, ledger: LedgerFacts) -> Recommendation {
        let AidRequest::Medical { total_cost_fen, insurance_paid_fen, .. } = &referral.request else {
            return Recommendation { notes: vec!["不是医疗救助申请".into()], ..Default::default() };
        };
        let out_of_pocket = (total_cost_fen - insurance_paid_fen).max(0);
        let supported =
            referral.household.existing_support.iter().any(|s| matches!(s, SupportKind::Dibao | SupportKind::Tekun));
        let percent = if supported { self.ratio_supported_percent } else { self.ratio_other_percent };
        let covered = out_of_pocket * percent / 100;
        let remaining = self.max_amount_fen(referral, ledger);
        let suggested = covered.min(remaining);
        let mut notes = vec![
            format!(
                "政策范围内自付费用{}（医疗费用总额{} − 医保已报销{}）",
                yuan(out_of_pocket),
                yuan(*total_cost_fen),
                yuan(*insurance_paid_fen)
            ),
            format!("{}按{percent}%救助：{}", if supported { "低保对象、特困人员" } else { "其他家庭" }, yuan(covered)),
        ];
        if covered > remaining {
            notes.push(format!(
                "受年度救助上限{1}限制，本人本年度已批准{2}，尚余{0}",
                yuan(remaining),
                yuan(self.annual_cap_fen),
                yuan(ledger.approved_this_year_fen)
            ));
        }
        Recommendation {
            eligible: suggested > 0,
            suggested_amount_fen: suggested,
            notes,
            needs_approver_override: false,
        }
    }

    fn approval_threshold_fen(&self, _: &ReferralIssued) -> i64 {
        self.threshold_fen
    }

    fn max_amount_fen(&self, _: &ReferralIssued, ledger: LedgerFacts) -> i64 {
        (self.annual_cap_fen - ledger.approved_this_year_fen).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onedoor_department_workflow::domain::policy::testing::referral;

    fn medical(total: i64, insured: i64, support: Vec<SupportKind>) -> ReferralIssued {
        let mut r = referral(
            Department::Medical,
            AidRequest::Medical {
                hospital: "h".into(),
                diagnosis: "d".into(),
                total_cost_fen: total,
                insurance_paid_fen: insured,
                patient_id_number: None,
            },
        );
        r.household.existing_support = support;
        r
    }

    #[test]
    fn a_dibao_household_gets_seventy_percent_of_the_out_of_pocket_cost() {
        let r = recommend(&medical(3_000_000, 1_800_000, vec![SupportKind::Dibao]), 0);
        assert_eq!(r.suggested_amount_fen, 840_000);
        assert!(r.eligible);
    }

    #[test]
    fn other_households_get_fifty_percent() {
        assert_eq!(
            recommend(&medical(3_000_000, 1_800_000, vec![SupportKind::LowIncome]), 0).suggested_amount_fen,
            600_000
        );
    }

    #[test]
    fn the_annual_cap_counts_every_approval_of_the_person_this_year() {
        // A first application approved 45,000 yuan; the second may add only 5,000.
        let r = recommend(&medical(20_000_000, 0, vec![SupportKind::Dibao]), 4_500_000);
        assert_eq!(r.suggested_amount_fen, 500_000);
        assert!(r.notes.iter().any(|n| n.contains("年度救助上限")));
        let spent = recommend(&medical(20_000_000, 0, vec![SupportKind::Dibao]), 5_000_000);
        assert!(!spent.eligible);
        assert_eq!(MedicalPolicy::default().max_amount_fen(&medical(1, 0, vec![]), facts(4_500_000)), 500_000);
    }

    fn facts(approved: i64) -> LedgerFacts {
        LedgerFacts { approved_this_year_fen: approved, approvals_this_year_same_category: 0 }
    }

    fn recommend(r: &ReferralIssued, approved: i64) -> Recommendation {
        MedicalPolicy::default().recommend(r, facts(approved))
    }
}
