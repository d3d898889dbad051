//! Shapes both wings store: the department, a household's request, the
//! applicant, and the codes they use. Each converts to and from the
//! published type it mirrors.

use crate::stored_enum;
use onedoor_contracts::department::{DisbursementChannel, ProposalOutcome};
use onedoor_contracts::intake::{
    AidRequest, Applicant, HardshipCause, HouseRating, HousingKind, Hukou, SchoolStage, SupportKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

stored_enum! {
    #[serde(rename_all = "snake_case")]
    DepartmentV1 <=> onedoor_contracts::Department { Medical, Education, Housing, Temporary }
}

stored_enum! {
    #[serde(rename_all = "snake_case")]
    HukouV1 <=> Hukou { Urban, Rural }
}

stored_enum! {
    #[serde(rename_all = "snake_case")]
    SupportKindV1 <=> SupportKind { Dibao, Tekun, LowIncome }
}

stored_enum! {
    #[serde(rename_all = "snake_case")]
    SchoolStageV1 <=> SchoolStage { Preschool, Primary, Junior, Senior, Vocational, College }
}

stored_enum! {
    HouseRatingV1 <=> HouseRating { C, D }
}

stored_enum! {
    #[serde(rename_all = "snake_case")]
    HardshipCauseV1 <=> HardshipCause { Illness, Accident, Fire, Disaster, Other }
}

stored_enum! {
    #[serde(rename_all = "snake_case")]
    ProposalOutcomeV1 <=> ProposalOutcome { Approve, Reject }
}

stored_enum! {
    #[serde(rename_all = "snake_case")]
    DisbursementChannelV1 <=> DisbursementChannel { BankCard, Cash, InKind }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApplicantV1 {
    pub name: String,
    pub id_number: String,
    pub phone: String,
}

impl From<Applicant> for ApplicantV1 {
    fn from(a: Applicant) -> Self {
        Self { name: a.name, id_number: a.id_number, phone: a.phone }
    }
}

impl From<ApplicantV1> for Applicant {
    fn from(a: ApplicantV1) -> Self {
        Self { name: a.name, id_number: a.id_number, phone: a.phone }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HousingKindV1 {
    RentSubsidy { monthly_rent_fen: i64 },
    Renovation { house_rating: HouseRatingV1 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "aid", rename_all = "snake_case")]
pub enum AidRequestV1 {
    Medical {
        hospital: String,
        diagnosis: String,
        total_cost_fen: i64,
        insurance_paid_fen: i64,
        /// Added in place (additive): absent in events stored before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patient_id_number: Option<String>,
    },
    Education {
        student_id_number: String,
        stage: SchoolStageV1,
        school: String,
    },
    Housing {
        #[serde(flatten)]
        kind: HousingKindV1,
    },
    Temporary {
        cause: HardshipCauseV1,
        amount_requested_fen: i64,
        emergency: bool,
    },
}

impl From<AidRequest> for AidRequestV1 {
    fn from(r: AidRequest) -> Self {
        match r {
            AidRequest::Medical { hospital, diagnosis, total_cost_fen, insurance_paid_fen, patient_id_number } => {
                Self::Medical { hospital, diagnosis, total_cost_fen, insurance_paid_fen, patient_id_number }
            }
            AidRequest::Education { student_id_number, stage, school } => {
                Self::Education { student_id_number, stage: stage.into(), school }
            }
            AidRequest::Housing { kind: HousingKind::RentSubsidy { monthly_rent_fen } } => {
                Self::Housing { kind: HousingKindV1::RentSubsidy { monthly_rent_fen } }
            }
            AidRequest::Housing { kind: HousingKind::Renovation { house_rating } } => {
                Self::Housing { kind: HousingKindV1::Renovation { house_rating: house_rating.into() } }
            }
            AidRequest::Temporary { cause, amount_requested_fen, emergency } => {
                Self::Temporary { cause: cause.into(), amount_requested_fen, emergency }
            }
        }
    }
}

impl From<AidRequestV1> for AidRequest {
    fn from(r: AidRequestV1) -> Self {
        match r {
            AidRequestV1::Medical { hospital, diagnosis, total_cost_fen, insurance_paid_fen, patient_id_number } => {
                Self::Medical { hospital, diagnosis, total_cost_fen, insurance_paid_fen, patient_id_number }
            }
            AidRequestV1::Education { student_id_number, stage, school } => {
                Self::Education { student_id_number, stage: stage.into(), school }
            }
            AidRequestV1::Housing { kind: HousingKindV1::RentSubsidy { monthly_rent_fen } } => {
                Self::Housing { kind: HousingKind::RentSubsidy { monthly_rent_fen } }
            }
            AidRequestV1::Housing { kind: HousingKindV1::Renovation { house_rating } } => {
                Self::Housing { kind: HousingKind::Renovation { house_rating: house_rating.into() } }
            }
            AidRequestV1::Temporary { cause, amount_requested_fen, emergency } => {
                Self::Temporary { cause: cause.into(), amount_requested_fen, emergency }
            }
        }
    }
}

/// Converts each element (for lists of mirrored codes).
pub fn each<A: Into<B>, B>(items: Vec<A>) -> Vec<B> {
    items.into_iter().map(Into::into).collect()
}
