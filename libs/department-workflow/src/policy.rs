//! What differs between departments: their policy. The workflow asks it for a
//! recommendation (eligibility, a suggested amount, and notes that explain
//! them), the approval threshold, and any hard limit on amounts.

use onedoor_contracts::intake::ReferralIssued;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the department's own ledger says about earlier approvals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerFacts {
    /// Approved this calendar year for the same ledger key (person or household).
    pub approved_this_year_fen: i64,
    /// Approvals this calendar year for the same key and category (e.g. cause).
    pub approvals_this_year_same_category: i64,
}

/// Where approvals are booked: who (a person or household) and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerKey {
    pub key: String,
    pub category: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recommendation {
    pub eligible: bool,
    pub suggested_amount_fen: i64,
    /// Why: each rule applied, in words a caseworker can check.
    pub notes: Vec<String>,
    /// An approver must sign off whatever the amount (e.g. a once-a-year rule was hit).
    #[serde(default)]
    pub needs_approver_override: bool,
}

/// A department's policy. Amounts are in fen; the per-capita income is the
/// household's monthly income divided by its members.
pub trait Policy: Send + Sync + 'static {
    fn department(&self) -> onedoor_contracts::Department;
    /// Which ledger the referral's approvals are booked in.
    fn ledger_key(&self, referral: &ReferralIssued) -> LedgerKey;
    fn recommend(&self, referral: &ReferralIssued, ledger: LedgerFacts) -> Recommendation;
    /// Above this amount a second person (an approver) must approve.
    fn approval_threshold_fen(&self, referral: &ReferralIssued) -> i64;
    /// No approval may exceed this (e.g. a remaining annual cap).
    fn max_amount_fen(&self, referral: &ReferralIssued, ledger: LedgerFacts) -> i64;
}

/// Formats fen as yuan for notes: `8400.00 yuan`.
pub fn yuan(fen: i64) -> String {
    format!("{}.{:02} yuan", fen / 100, (fen % 100).abs())
}
