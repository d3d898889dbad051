//! Temporary aid policy: the suggestion is the amount requested up to 3 times
//! the local monthly dibao line (by the household's hukou), never more than 10
//! times; above 3 times an approver decides. Normally once per household per
//! cause per calendar year: a repeat needs an approver's explicit override.

use onedoor_contracts::Department;
use onedoor_contracts::intake::{AidRequest, Hukou, ReferralIssued};
use onedoor_department_workflow::domain::policy::{LedgerFacts, LedgerKey, Policy, Recommendation, yuan};

#[derive(Debug, Clone, clap::Args)]
pub struct TemporaryPolicy {
    #[arg(long, env = "ONEDOOR_DIBAO_LINE_URBAN_FEN", default_value_t = 33_000)]
    pub dibao_line_urban_fen: i64,
    #[arg(long, env = "ONEDOOR_DIBAO_LINE_RURAL_FEN", default_value_t = 16_500)]
    pub dibao_line_rural_fen: i64,
    /// Multiples of the line: suggested at most, and the township's own authority.
    #[arg(long, env = "TEMPORARY_SUGGESTED_MULTIPLE", default_value_t = 3)]
    pub suggested_multiple: i64,
    /// Multiples of the line never exceeded.
    #[arg(long, env = "TEMPORARY_MAX_MULTIPLE", default_value_t = 10)]
    pub max_multiple: i64,
}

impl Default for TemporaryPolicy {
    fn default() -> Self {
        Self { dibao_line_urban_fen: 33_000, dibao_line_rural_fen: 16_500, suggested_multiple: 3, max_multiple: 10 }
    }
}

impl TemporaryPolicy {
    fn line(&self, referral: &ReferralIssued) -> i64 {
        match referral.household.hukou {
            Hukou::Urban => self.dibao_line_urban_fen,
            Hukou::Rural => self.dibao_line_rural_fen,
        }
    }
}

impl Policy for TemporaryPolicy {
    fn department(&self) -> Department {
        Department::Temporary
    }

    /// Once per household per cause per year: any member's approval counts.
    fn ledger_key(&self, referral: &ReferralIssued) -> LedgerKey {
        let cause = match &referral.request {
            AidRequest::Temporary { cause, .. } => format!("{cause:?}").to_lowercase(),
            _ => "other".into(),
        };
        LedgerKey::household(referral, cause)
    }

    fn recommend(&self, referral: &ReferralIssued, ledger: LedgerFacts) -> Recommendation {
        let AidRequest::Temporary { amount_requested_fen, emergency, .. } = &referral.request else {
            return Recommendation { notes: vec!["不是临时救助申请".into()], ..Default::default() };
        };
        let line = self.line(referral);
        let cap = line * self.suggested_multiple;
        let suggested = (*amount_requested_fen).min(cap).max(0);
        let mut notes = vec![format!(
            "申请{}；建议不超过{}倍{}低保标准{}，即{}",
            yuan(*amount_requested_fen),
            self.suggested_multiple,
            if referral.household.hukou == Hukou::Urban { "城镇" } else { "农村" },
            yuan(line),
            yuan(cap)
        )];
        if *emergency {
            notes.push("急难情形：先行救助，材料后补".into());
        }
        let repeat = ledger.approvals_this_year_same_category > 0;
        if repeat {
            notes.push("该家庭本年度已因同一原因获得临时救助：须由审批人超政策批准".into());
        }
        Recommendation {
            eligible: suggested > 0 && !repeat,
            suggested_amount_fen: suggested,
            notes,
            needs_approver_override: repeat,
        }
    }

    fn approval_threshold_fen(&self, referral: &ReferralIssued) -> i64 {
        self.line(referral) * self.suggested_multiple
    }

    fn max_amount_fen(&self, referral: &ReferralIssued, _: LedgerFacts) -> i64 {
        self.line(referral) * self.max_multiple
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onedoor_contracts::intake::HardshipCause;
    use onedoor_department_workflow::domain::policy::testing::referral;

    fn temporary(requested: i64, hukou: Hukou) -> ReferralIssued {
        let mut r = referral(
            Department::Temporary,
            AidRequest::Temporary { cause: HardshipCause::Fire, amount_requested_fen: requested, emergency: false },
        );
        r.household.hukou = hukou;
        r
    }

    #[test]
    fn the_suggestion_is_the_request_up_to_three_dibao_lines() {
        let p = TemporaryPolicy::default();
        assert_eq!(p.recommend(&temporary(50_000, Hukou::Urban), LedgerFacts::default()).suggested_amount_fen, 50_000);
        assert_eq!(p.recommend(&temporary(300_000, Hukou::Urban), LedgerFacts::default()).suggested_amount_fen, 99_000);
        assert_eq!(p.recommend(&temporary(300_000, Hukou::Rural), LedgerFacts::default()).suggested_amount_fen, 49_500);
        assert_eq!(p.approval_threshold_fen(&temporary(1, Hukou::Urban)), 99_000);
        assert_eq!(p.max_amount_fen(&temporary(1, Hukou::Urban), LedgerFacts::default()), 330_000);
    }

    #[test]
    fn a_second_approval_for_the_same_cause_this_year_needs_an_override() {
        let p = TemporaryPolicy::default();
        let again = LedgerFacts { approved_this_year_fen: 99_000, approvals_this_year_same_category: 1 };
        let r = p.recommend(&temporary(50_000, Hukou::Urban), again);
        assert!(!r.eligible);
        assert!(r.needs_approver_override);
        assert_eq!(p.ledger_key(&temporary(1, Hukou::Urban)).category, "fire");
    }
}
