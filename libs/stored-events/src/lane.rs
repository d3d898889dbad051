//! A department's lane stream: the referral as received, with the policy's
//! recommendation at receipt, and every step of the lane.
//!
//! - Version 1 stored every referral with the applicant's phone and the
//!   household's income and assets, whatever the line.
//! - Version 2 stores them only where the line is disclosed them
//!   (`onedoor_contracts::aid_line::Disclosure`). Only `ReferralReceived`
//!   changed; [`referral_received_v1_to_v2`] upcasts a version-1 one,
//!   dropping what its line is not disclosed, so a lane received before the
//!   change shows what one received today would. Every other event reads the
//!   same in both versions.

use crate::StoredFormat;
use crate::shared::{
    AidRequestV1, ApplicantV1, DepartmentV1, DisbursementChannelV1, HukouV1, ProposalOutcomeV1, SupportKindV1, each,
};
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_contracts::intake::{HouseholdMember, ReferralIssued, ReferredApplicant, ReferredHousehold};
use onedoor_personal_data::PersonalFields;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
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

/// An event of a lane stream, version 2, as stored (`event_type` = the `type` tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum LaneEventV2 {
    ReferralReceived {
        referral: Box<ReferralV2>,
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

impl StoredFormat for LaneEventV2 {
    const STREAM_TYPE: &'static str = "lane";
    const VERSION: i32 = 2;
}

impl LaneEventV2 {
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

    /// The personal fields of each event type, sealed in the department's
    /// log with the case's data key (the department keys by case: it is not
    /// told every line's household). A version-1 event is upcast before it
    /// is opened, and was stored plain.
    pub fn personal_fields(event_type: &str) -> PersonalFields {
        match event_type {
            "ReferralReceived" => PersonalFields(&[
                "/referral/applicant/name",
                "/referral/applicant/id_number",
                "/referral/applicant/phone",
                "/referral/members/*/id_number",
                "/referral/request/hospital",
                "/referral/request/diagnosis",
                "/referral/request/patient_id_number",
                "/referral/request/student_id_number",
            ]),
            "SupplementRequested" => PersonalFields(&["/note"]),
            "ProposalMade" | "Rejected" | "Returned" | "DeadlineExtended" => PersonalFields(&["/reason"]),
            "Approved" => PersonalFields(&["/override_reason"]),
            "Disbursed" => PersonalFields(&["/reference"]),
            _ => PersonalFields::NONE,
        }
    }

    /// The case whose key seals a lane: named, plain, by its first event.
    pub fn key_owner(first: &Value) -> Option<Uuid> {
        first.pointer("/referral/case_id").and_then(Value::as_str).and_then(|id| Uuid::parse_str(id).ok())
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

// Version 1: with every household fact.
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

/// The referral as the department received it (version 2: only the
/// household facts its line is disclosed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReferralV2 {
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub case_number: String,
    pub department: DepartmentV1,
    pub township: String,
    pub issued_at: DateTime<Utc>,
    pub deadline: NaiveDate,
    pub applicant: ApplicantV2,
    pub household: HouseholdV2,
    pub members: Vec<MemberRefV1>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_id: Option<Uuid>,
    pub request: AidRequestV1,
    pub materials: Vec<String>,
    pub missing_materials: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApplicantV2 {
    pub name: String,
    pub id_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HouseholdV2 {
    pub division_code: String,
    pub hukou: HukouV1,
    pub members: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_income_fen: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets_fen: Option<i64>,
    pub existing_support: Vec<SupportKindV1>,
}

/// The upcaster of a version-1 `ReferralReceived`: the members stored
/// before there were members become the applicant alone (as the contract's
/// upcaster does), and the phone, income and assets its line is not
/// disclosed are dropped.
pub fn referral_received_v1_to_v2(mut payload: Value) -> Value {
    let Some(referral) = payload.get_mut("referral").and_then(Value::as_object_mut) else { return payload };
    let disclosure = referral
        .get("department")
        .and_then(|d| serde_json::from_value::<DepartmentV1>(d.clone()).ok())
        .map(|d| onedoor_contracts::Department::from(d).line().discloses)
        .unwrap_or_default();
    let members_missing = referral.get("members").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if members_missing {
        let id_number = referral.get("applicant").and_then(|a| a.get("id_number")).cloned().unwrap_or(Value::Null);
        referral.insert("members".into(), json!([{ "id_number": id_number, "relation": "applicant" }]));
    }
    if let Some(applicant) = referral.get_mut("applicant").and_then(Value::as_object_mut)
        && !disclosure.phone
    {
        applicant.remove("phone");
    }
    if let Some(household) = referral.get_mut("household").and_then(Value::as_object_mut) {
        if !disclosure.income {
            household.remove("monthly_income_fen");
        }
        if !disclosure.assets {
            household.remove("assets_fen");
        }
    }
    payload
}

impl From<ReferralIssued> for ReferralV2 {
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
            applicant: ApplicantV2 {
                name: r.applicant.name,
                id_number: r.applicant.id_number,
                phone: r.applicant.phone,
            },
            household: HouseholdV2 {
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

impl From<ReferralV2> for ReferralIssued {
    fn from(r: ReferralV2) -> Self {
        let h = r.household;
        Self {
            referral_id: r.referral_id,
            case_id: r.case_id,
            case_number: r.case_number,
            department: r.department.into(),
            township: r.township,
            issued_at: r.issued_at,
            deadline: r.deadline,
            applicant: ReferredApplicant {
                name: r.applicant.name,
                id_number: r.applicant.id_number,
                phone: r.applicant.phone,
            },
            household: ReferredHousehold {
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
                .map(|m| HouseholdMember { id_number: m.id_number, relation: m.relation })
                .collect(),
            household_id: r.household_id,
            request: r.request.into(),
            materials: r.materials,
            missing_materials: r.missing_materials,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `ReferralReceived` as version 1 stored it: every household fact, whatever the line.
    fn received_v1(department: &str) -> Value {
        json!({
            "type": "ReferralReceived",
            "referral": {
                "referral_id": "0190b5c8-8d3e-7000-8000-000000000001",
                "case_id": "0190b5c8-8d3e-7000-8000-000000000002",
                "case_number": "330102001-2026-000001",
                "department": department,
                "township": "330102001",
                "issued_at": "2026-11-20T02:00:00Z",
                "deadline": "2026-12-18",
                "applicant": {"name": "张三", "id_number": "11010519491231002X", "phone": "13800138000"},
                "household": {
                    "division_code": "330102001001", "hukou": "urban", "members": 2,
                    "monthly_income_fen": 120000, "assets_fen": 5000, "existing_support": ["dibao"]
                },
                "request": {"aid": "temporary", "cause": "fire", "amount_requested_fen": 50000, "emergency": false},
                "materials": [], "missing_materials": []
            },
            "recommendation": {"eligible": true, "suggested_amount_fen": 50000, "notes": []},
            "at": "2026-11-20T02:00:01Z"
        })
    }

    fn upcast(department: &str) -> ReferralV2 {
        let LaneEventV2::ReferralReceived { referral, .. } =
            serde_json::from_value(referral_received_v1_to_v2(received_v1(department))).unwrap()
        else {
            panic!("still a ReferralReceived")
        };
        *referral
    }

    #[test]
    fn a_lane_stored_in_version_1_keeps_only_what_its_line_is_disclosed() {
        let temporary = upcast("temporary");
        assert_eq!(temporary.applicant.phone, None);
        assert_eq!((temporary.household.monthly_income_fen, temporary.household.assets_fen), (None, None));
        assert_eq!(temporary.household.members, 2);
        assert_eq!(
            temporary.members,
            [MemberRefV1 { id_number: "11010519491231002X".into(), relation: "applicant".into() }]
        );

        let education = upcast("education");
        assert_eq!(education.household.monthly_income_fen, Some(120_000), "education weighs the income");
        assert_eq!((education.applicant.phone, education.household.assets_fen), (None, None));
    }
}
