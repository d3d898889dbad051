//! Housing aid policy: a rent subsidy of min(monthly rent, 600 yuan) × 12, or
//! a renovation grant of 20,000 yuan for a house rated C and 35,000 for D;
//! above the threshold an approver decides.

use onedoor_contracts::Department;
use onedoor_contracts::intake::{AidRequest, HouseRating, HousingKind, ReferralIssued};
use onedoor_department_workflow::domain::policy::{LedgerFacts, LedgerKey, Policy, Recommendation, yuan};

#[derive(Debug, Clone, clap::Args)]
pub struct HousingPolicy {
    #[arg(long, env = "HOUSING_RENT_CAP_MONTHLY_FEN", default_value_t = 60_000)]
    pub rent_cap_monthly_fen: i64,
    #[arg(long, env = "HOUSING_RENOVATION_C_FEN", default_value_t = 2_000_000)]
    pub renovation_c_fen: i64,
    #[arg(long, env = "HOUSING_RENOVATION_D_FEN", default_value_t = 3_500_000)]
    pub renovation_d_fen: i64,
    #[arg(long, env = "HOUSING_APPROVAL_THRESHOLD_FEN", default_value_t = 2_000_000)]
    pub threshold_fen: i64,
    /// A household gets one renovation grant within this many years (local practice).
    #[arg(long, env = "HOUSING_RENOVATION_PERIOD_YEARS", default_value_t = 5)]
    pub renovation_period_years: u32,
}

impl Default for HousingPolicy {
    fn default() -> Self {
        Self {
            rent_cap_monthly_fen: 60_000,
            renovation_c_fen: 2_000_000,
            renovation_d_fen: 3_500_000,
            threshold_fen: 2_000_000,
            renovation_period_years: 5,
        }
    }
}

impl HousingPolicy {
    /// The entitlement and how it was worked out.
    fn entitlement(&self, referral: &ReferralIssued) -> (i64, String) {
        match &referral.request {
            AidRequest::Housing { kind: HousingKind::RentSubsidy { monthly_rent_fen } } => {
                let monthly = (*monthly_rent_fen).min(self.rent_cap_monthly_fen);
                (
                    monthly * 12,
                    format!(
                        "租赁补贴：月租金{}与月补贴上限{}中的较低者 × 12个月",
                        yuan(*monthly_rent_fen),
                        yuan(self.rent_cap_monthly_fen)
                    ),
                )
            }
            AidRequest::Housing { kind: HousingKind::Renovation { house_rating } } => {
                let amount = match house_rating {
                    HouseRating::C => self.renovation_c_fen,
                    HouseRating::D => self.renovation_d_fen,
                };
                (amount, format!("危房改造补助（{house_rating:?}级危房）"))
            }
            _ => (0, "不是住房救助申请".into()),
        }
    }
}

impl Policy for HousingPolicy {
    fn department(&self) -> Department {
        Department::Housing
    }

    fn ledger_key(&self, referral: &ReferralIssued) -> LedgerKey {
        let kind = match &referral.request {
            AidRequest::Housing { kind: HousingKind::RentSubsidy { .. } } => "rent_subsidy",
            _ => "renovation",
        };
        // Once per household: any member's grant counts.
        LedgerKey::household(referral, kind)
    }

    /// A household gets one renovation grant within the configured period,
    /// and rent subsidies whose twelve months do not overlap: a second grant
    /// within the period, for any member, is not recommended and needs an
    /// approver's override.
    fn recommend(&self, referral: &ReferralIssued, ledger: LedgerFacts) -> Recommendation {
        let (amount, how) = self.entitlement(referral);
        let mut notes = vec![format!("{how}: {}", yuan(amount))];
        let again = ledger.approvals_this_year_same_category > 0;
        if again {
            notes.push("该家庭在规定期限内已获得同类住房救助".into());
        }
        Recommendation {
            eligible: amount > 0 && !again,
            suggested_amount_fen: if again { 0 } else { amount },
            notes,
            needs_approver_override: again,
        }
    }

    fn approval_threshold_fen(&self, _: &ReferralIssued) -> i64 {
        self.threshold_fen
    }

    /// A renovation grant's period is `renovation_period_years`; a rent
    /// subsidy covers twelve months, so one within the last twelve overlaps.
    fn counted_since(
        &self,
        referral: &ReferralIssued,
        now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        match &referral.request {
            AidRequest::Housing { kind: HousingKind::Renovation { .. } } => {
                now - chrono::Months::new(12 * self.renovation_period_years)
            }
            _ => now - chrono::Months::new(12),
        }
    }

    fn max_amount_fen(&self, referral: &ReferralIssued, _: LedgerFacts) -> i64 {
        self.entitlement(referral).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onedoor_department_workflow::domain::policy::testing::referral;

    fn housing(kind: HousingKind) -> Recommendation {
        HousingPolicy::default()
            .recommend(&referral(Department::Housing, AidRequest::Housing { kind }), LedgerFacts::default())
    }

    #[test]
    fn the_rent_subsidy_is_the_rent_up_to_600_yuan_for_twelve_months() {
        assert_eq!(housing(HousingKind::RentSubsidy { monthly_rent_fen: 80_000 }).suggested_amount_fen, 720_000);
        assert_eq!(housing(HousingKind::RentSubsidy { monthly_rent_fen: 45_000 }).suggested_amount_fen, 540_000);
    }

    #[test]
    fn a_second_grant_of_a_kind_for_the_household_in_a_year_is_not_recommended() {
        let r = referral(
            Department::Housing,
            AidRequest::Housing { kind: HousingKind::Renovation { house_rating: HouseRating::C } },
        );
        let p = HousingPolicy::default();
        let second =
            p.recommend(&r, LedgerFacts { approved_this_year_fen: 2_000_000, approvals_this_year_same_category: 1 });
        assert!(!second.eligible && second.needs_approver_override);
        let key = p.ledger_key(&r);
        assert_eq!(key.category, "renovation");
        let now = chrono::Utc::now();
        assert_eq!(p.counted_since(&r, now), now - chrono::Months::new(60), "five years by default");
        let rent = referral(
            Department::Housing,
            AidRequest::Housing { kind: HousingKind::RentSubsidy { monthly_rent_fen: 1 } },
        );
        assert_eq!(p.counted_since(&rent, now), now - chrono::Months::new(12), "twelve months may not overlap");
        assert!(key.counted.contains(&"110105201001010012".to_string()), "a member's earlier grant counts");
    }

    #[test]
    fn renovation_grants_follow_the_house_rating() {
        assert_eq!(housing(HousingKind::Renovation { house_rating: HouseRating::C }).suggested_amount_fen, 2_000_000);
        assert_eq!(housing(HousingKind::Renovation { house_rating: HouseRating::D }).suggested_amount_fen, 3_500_000);
    }
}
