//! A department's lane stream, version 1: the referral as received, with the
//! policy's recommendation at receipt, and every step of the lane.

use crate::StoredFormat;
use crate::shared::{
    AidRequestV1, ApplicantV1, DepartmentV1, DisbursementChannelV1, HukouV1, ProposalOutcomeV1, SupportKindV1, each,
};
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_contracts::intake::{HouseholdFacts, HouseholdMember, ReferralIssued};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event of a lane stream, as stored (`event_type` = the `type` tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum LaneEventV1 {
    ReferralReceived {
        referral: Box<ReferralV1>,
        recommendation: RecommendationV1,
        at: DateTime<Utc>,
    },
    SignedFor {
        by: String,
        at: DateTime<Utc>,
    },
    SupplementRequested {
        materials: Vec<String>,
        note: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    Supplemented {
        materials: Vec<String>,
        at: DateTime<Utc>,
    },
    /// Materials handed in after a supplement request that answer only part
    /// of it: the lane keeps waiting for the rest. Added beside
    /// `Supplemented`, whose meaning (the lane resumed) is unchanged.
    PartlySupplemented {
        materials: Vec<String>,
        at: DateTime<Utc>,
    },
    ProposalMade {
        outcome: ProposalOutcomeV1,
        amount_fen: i64,
        reason: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    Approved {
        amount_fen: i64,
        /// Added in place (additive): absent in events stored before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        override_reason: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    Rejected {
        reason: String,
        by: String,
        at: DateTime<Utc>,
    },
    Disbursed {
        amount_fen: i64,
        channel: DisbursementChannelV1,
        reference: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    Returned {
        reason: String,
        by: String,
        at: DateTime<Utc>,
    },
    Withdrawn {
        reason: String,
        at: DateTime<Utc>,
    },
    /// Added beside the others (additive): an approver extended the time limit.
    DeadlineExtended {
        deadline: NaiveDate,
        reason: String,
        by: String,
        at: DateTime<Utc>,
    },
}

impl StoredFormat for LaneEventV1 {
    const STREAM_TYPE: &'static str = "lane";
    const VERSION: i32 = 1;
}

impl LaneEventV1 {
    /// The stored `event_type` (the same as the `type` tag).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ReferralReceived { .. } => "ReferralReceived",
            Self::SignedFor { .. } => "SignedFor",
            Self::SupplementRequested { .. } => "SupplementRequested",
            Self::Supplemented { .. } => "Supplemented",
            Self::PartlySupplemented { .. } => "PartlySupplemented",
            Self::ProposalMade { .. } => "ProposalMade",
            Self::Approved { .. } => "Approved",
            Self::Rejected { .. } => "Rejected",
            Self::Disbursed { .. } => "Disbursed",
            Self::Returned { .. } => "Returned",
            Self::Withdrawn { .. } => "Withdrawn",
            Self::DeadlineExtended { .. } => "DeadlineExtended",
        }
    }
}

/// The policy's recommendation at receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecommendationV1 {
    pub eligible: bool,
    pub suggested_amount_fen: i64,
    pub notes: Vec<String>,
    #[serde(default)]
    pub needs_approver_override: bool,
}

/// The referral as the department received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReferralV1 {
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub case_number: String,
    pub department: DepartmentV1,
    pub township: String,
    pub issued_at: DateTime<Utc>,
    pub deadline: NaiveDate,
    pub applicant: ApplicantV1,
    pub household: HouseholdV1,
    /// Added in place (additive): absent in lanes stored before it.
    #[serde(default)]
    pub members: Vec<MemberRefV1>,
    /// The household in intake's register. Added in place (additive):
    /// absent in lanes stored before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_id: Option<Uuid>,
    pub request: AidRequestV1,
    pub materials: Vec<String>,
    pub missing_materials: Vec<String>,
}

/// A household member as the department keys its rules on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberRefV1 {
    pub id_number: String,
    pub relation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HouseholdV1 {
    pub division_code: String,
    pub hukou: HukouV1,
    pub members: u32,
    pub monthly_income_fen: i64,
    pub assets_fen: i64,
    pub existing_support: Vec<SupportKindV1>,
}

impl From<ReferralIssued> for ReferralV1 {
    fn from(r: ReferralIssued) -> Self {
        let h = r.household;
        Self {
            referral_id: r.referral_id,
            case_id: r.case_id,
            case_number: r.case_number,
            department: r.department.into(),
            township: r.township,
            issued_at: r.issued_at,
            deadline: r.deadline,
            applicant: r.applicant.into(),
            household: HouseholdV1 {
                division_code: h.division_code,
                hukou: h.hukou.into(),
                members: h.members,
                monthly_income_fen: h.monthly_income_fen,
                assets_fen: h.assets_fen,
                existing_support: each(h.existing_support),
            },
            members: r
                .members
                .into_iter()
                .map(|m| MemberRefV1 { id_number: m.id_number, relation: m.relation })
                .collect(),
            household_id: r.household_id,
            request: r.request.into(),
            materials: r.materials,
            missing_materials: r.missing_materials,
        }
    }
}

impl From<ReferralV1> for ReferralIssued {
    fn from(r: ReferralV1) -> Self {
        let h = r.household;
        let applicant_id = r.applicant.id_number.clone();
        Self {
            referral_id: r.referral_id,
            case_id: r.case_id,
            case_number: r.case_number,
            department: r.department.into(),
            township: r.township,
            issued_at: r.issued_at,
            deadline: r.deadline,
            applicant: r.applicant.into(),
            household: HouseholdFacts {
                division_code: h.division_code,
                hukou: h.hukou.into(),
                members: h.members,
                monthly_income_fen: h.monthly_income_fen,
                assets_fen: h.assets_fen,
                existing_support: each(h.existing_support),
            },
            members: if r.members.is_empty() {
                // Stored before members were: the applicant alone, as the contract's upcaster does.
                vec![HouseholdMember { id_number: applicant_id, relation: "applicant".into() }]
            } else {
                r.members
                    .into_iter()
                    .map(|m| HouseholdMember { id_number: m.id_number, relation: m.relation })
                    .collect()
            },
            household_id: r.household_id,
            request: r.request.into(),
            materials: r.materials,
            missing_materials: r.missing_materials,
        }
    }
}
