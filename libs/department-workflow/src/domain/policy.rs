//! What differs between departments: their policy. The workflow asks it for a
//! recommendation (eligibility, a suggested amount, and notes that explain
//! them), the approval threshold, and any hard limit on amounts.

use onedoor_contracts::intake::ReferralIssued;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the department's own ledger says about earlier approvals within the
/// rule's period ([`Policy::counted_since`]; a calendar year unless the
/// policy says otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerFacts {
    /// Approved within the period for the same ledger key (person or household).
    pub approved_this_year_fen: i64,
    /// Approvals within the period for the same key and category (e.g. cause).
    pub approvals_this_year_same_category: i64,
}

/// The calendar year of `at` in China Standard Time (the ledger's `year`).
pub fn china_year(at: chrono::DateTime<chrono::Utc>) -> i32 {
    use chrono::Datelike;
    at.with_timezone(&onedoor_contracts::china_time::offset()).year()
}

/// The start, in China Standard Time, of the calendar year of `now`.
pub fn start_of_year(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::NaiveDate::from_ymd_opt(china_year(now), 1, 1)
        .expect("valid date")
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_local_timezone(onedoor_contracts::china_time::offset())
        .single()
        .expect("a fixed offset is unambiguous")
        .to_utc()
}

/// The start of a household's ledger key ([`LedgerKey::household`]); any
/// other key is a person's ID number.
pub const HOUSEHOLD_LEDGER: &str = "household:";

/// Where approvals are booked, and which earlier ones count against this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerKey {
    /// The person the approval is booked for (a patient, a student, the applicant).
    pub key: String,
    pub category: String,
    /// Whose earlier approvals count: `key` alone for a rule per person,
    /// every member of the household for a rule per household.
    pub counted: Vec<String>,
}

impl LedgerKey {
    /// A rule per person: only `person`'s approvals count.
    pub fn person(person: &str, category: impl Into<String>) -> Self {
        Self { key: person.to_string(), category: category.into(), counted: vec![person.to_string()] }
    }

    /// A rule per household: booked for the household of intake's register
    /// (`household:<id>`; the applicant, for a referral from before the
    /// register), and the household's earlier approvals count, as do those
    /// booked for any member before the register (a spouse applying counts
    /// as the household applying).
    pub fn household(referral: &ReferralIssued, category: impl Into<String>) -> Self {
        let key = match referral.household_id {
            Some(id) => format!("{HOUSEHOLD_LEDGER}{id}"),
            None => referral.applicant.id_number.clone(),
        };
        let mut counted: Vec<String> = referral.members.iter().map(|m| m.id_number.clone()).collect();
        counted.push(referral.applicant.id_number.clone());
        counted.push(key.clone());
        counted.sort();
        counted.dedup();
        Self { key, category: category.into(), counted }
    }
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
    /// Since when earlier approvals count against this referral: the
    /// rule's period. By default the calendar year of `now`.
    fn counted_since(
        &self,
        _referral: &ReferralIssued,
        now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        start_of_year(now)
    }
}

/// Formats fen as yuan for notes: `8400.00元`.
pub fn yuan(fen: i64) -> String {
    format!("{}.{:02}元", fen / 100, (fen % 100).abs())
}

/// Sample referrals for the departments' policy tests.
pub mod testing {
    use chrono::{NaiveDate, Utc};
    use onedoor_contracts::Department;
    use onedoor_contracts::intake::*;
    use uuid::Uuid;

    /// A referral of an urban household of two with 1,200 yuan a month and
    /// no support, as the department's line is disclosed it.
    pub fn referral(department: Department, request: AidRequest) -> ReferralIssued {
        let disclosure = department.line().discloses;
        ReferralIssued {
            referral_id: Uuid::now_v7(),
            case_id: Uuid::now_v7(),
            case_number: "330102001-2026-000001".into(),
            department,
            township: "330102001".into(),
            issued_at: Utc::now(),
            deadline: NaiveDate::from_ymd_opt(2026, 12, 21).expect("valid date"),
            applicant: ReferredApplicant::of(
                &Applicant {
                    name: "张三".into(), id_number: "11010519491231002X".into(), phone: "13800138000".into()
                },
                disclosure,
            ),
            household: ReferredHousehold::of(
                HouseholdFacts {
                    division_code: "330102001001".into(),
                    hukou: Hukou::Urban,
                    members: 2,
                    monthly_income_fen: 120_000,
                    assets_fen: 0,
                    existing_support: vec![],
                },
                disclosure,
            ),
            members: vec![
                HouseholdMember { id_number: "11010519491231002X".into(), relation: "applicant".into() },
                HouseholdMember { id_number: "110105201001010012".into(), relation: "child".into() },
            ],
            household_id: None,
            request,
            materials: vec![],
            missing_materials: vec![],
        }
    }
}
