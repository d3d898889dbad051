//! Intake's case stream, version 1: an application at the window and what
//! happened to it, including each department report as received.

use crate::StoredFormat;
use crate::shared::{
    AidRequestV1, ApplicantV1, DepartmentV1, DisbursementChannelV1, HukouV1, ProposalOutcomeV1, SupportKindV1,
};
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_personal_data::PersonalFields;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// An event of a case stream, as stored (`event_type` = the `type` tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum CaseEventV1 {
    ApplicationSubmitted {
        case_number: String,
        accepted_by: String,
        submitted_at: DateTime<Utc>,
        application: Box<ApplicationV1>,
        missing_materials: Vec<MissingMaterialV1>,
        /// The household in the register. Added in place (additive): absent
        /// in events stored before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        household_id: Option<Uuid>,
    },
    ApplicationAccepted {
        accepted_at: DateTime<Utc>,
    },
    ReferralIssued {
        referral_id: Uuid,
        department: DepartmentV1,
        issued_at: DateTime<Utc>,
        deadline: NaiveDate,
    },
    MaterialsSupplemented {
        materials: Vec<String>,
        supplemented_at: DateTime<Utc>,
        supplemented_by: String,
    },
    LaneReported {
        event_id: Uuid,
        department: DepartmentV1,
        referral_id: Uuid,
        /// Added in place (additive): absent in events stored before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lane_version: Option<i64>,
        /// The department's staff id who acted. Added in place (additive):
        /// absent in events stored before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        occurred_at: DateTime<Utc>,
        report: LaneReportV1,
    },
    ApplicationWithdrawn {
        reason: String,
        withdrawn_at: DateTime<Utc>,
        withdrawn_by: String,
    },
    /// Added beside the others (additive): an aid line added to an open case.
    LineAdded {
        request: AidRequestV1,
        added_at: DateTime<Utc>,
        added_by: String,
    },
    /// Added beside the others (additive): the case handed over to another clerk.
    HandedOver {
        to: String,
        handed_over_at: DateTime<Utc>,
        handed_over_by: String,
    },
    /// Added beside the others (additive): a scan of a material uploaded.
    DocumentAttached {
        document_id: Uuid,
        material: String,
        sha256: String,
        content_type: String,
        size: u64,
        attached_at: DateTime<Utc>,
        attached_by: String,
    },
    /// Added beside the others (additive): a message sent to the applicant.
    NotificationSent {
        notification_id: Uuid,
        kind: String,
        provider: String,
        sent_at: DateTime<Utc>,
    },
    /// Added beside the others (additive): the case closed (结案).
    CaseClosed {
        informed_by: InformedByV1,
        note: Option<String>,
        closed_at: DateTime<Utc>,
        closed_by: String,
    },
    /// Added beside the others (additive): the household's personal data
    /// erased, its key destroyed.
    PersonalDataErased {
        erased_at: DateTime<Utc>,
        erased_by: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InformedByV1 {
    Sms,
    Letter,
    InPerson,
}

impl StoredFormat for CaseEventV1 {
    const STREAM_TYPE: &'static str = "case";
    const VERSION: i32 = 1;
}

impl CaseEventV1 {
    /// The stored `event_type` (the same as the `type` tag).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ApplicationSubmitted { .. } => "ApplicationSubmitted",
            Self::ApplicationAccepted { .. } => "ApplicationAccepted",
            Self::ReferralIssued { .. } => "ReferralIssued",
            Self::MaterialsSupplemented { .. } => "MaterialsSupplemented",
            Self::LaneReported { .. } => "LaneReported",
            Self::ApplicationWithdrawn { .. } => "ApplicationWithdrawn",
            Self::LineAdded { .. } => "LineAdded",
            Self::HandedOver { .. } => "HandedOver",
            Self::DocumentAttached { .. } => "DocumentAttached",
            Self::NotificationSent { .. } => "NotificationSent",
            Self::CaseClosed { .. } => "CaseClosed",
            Self::PersonalDataErased { .. } => "PersonalDataErased",
        }
    }

    /// The personal fields of each event type, sealed in the log with the
    /// household's data key (names, ID numbers, phone, address, the illness
    /// and free text); the rest (codes, amounts, dates, staff ids) stays
    /// plain so the log can be queried and explained without the key.
    pub fn personal_fields(event_type: &str) -> PersonalFields {
        match event_type {
            "ApplicationSubmitted" => PersonalFields(&[
                "/application/applicant/name",
                "/application/applicant/id_number",
                "/application/applicant/phone",
                "/application/address",
                "/application/members/*/name",
                "/application/members/*/id_number",
                "/application/requests/*/hospital",
                "/application/requests/*/diagnosis",
                "/application/requests/*/patient_id_number",
                "/application/requests/*/student_id_number",
            ]),
            "LineAdded" => PersonalFields(&[
                "/request/hospital",
                "/request/diagnosis",
                "/request/patient_id_number",
                "/request/student_id_number",
            ]),
            "LaneReported" => PersonalFields(&["/report/note", "/report/reason", "/report/override_reason"]),
            "ApplicationWithdrawn" => PersonalFields(&["/reason"]),
            "CaseClosed" => PersonalFields(&["/note"]),
            _ => PersonalFields::NONE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApplicationV1 {
    pub applicant: ApplicantV1,
    pub division_code: String,
    pub address: String,
    pub hukou: HukouV1,
    pub members: Vec<MemberV1>,
    pub monthly_income_fen: i64,
    pub assets_fen: i64,
    pub existing_support: Vec<SupportKindV1>,
    pub requests: Vec<AidRequestV1>,
    pub materials: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberV1 {
    pub name: String,
    pub id_number: String,
    pub relation: String,
    pub disability: bool,
    pub in_school: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MissingMaterialV1 {
    pub code: String,
    pub needed_for: Vec<DepartmentV1>,
}

/// What a department reported about its lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LaneReportV1 {
    SignedFor,
    SupplementRequested {
        materials: Vec<String>,
        note: Option<String>,
    },
    ProposalMade {
        outcome: ProposalOutcomeV1,
        amount_fen: Option<i64>,
        reason: Option<String>,
    },
    Approved {
        amount_fen: i64,
        /// Added in place (additive): absent in events stored before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        override_reason: Option<String>,
    },
    Rejected {
        reason: String,
    },
    Disbursed {
        amount_fen: i64,
        channel: DisbursementChannelV1,
    },
    Returned {
        reason: String,
    },
    Withdrawn,
    /// Added beside the others (additive).
    DeadlineExtended {
        deadline: NaiveDate,
        reason: String,
    },
}
