//! What caseworkers and approvers see of a referral.

use super::lane::{Lane, LaneStatus};
use super::policy::Recommendation;
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_contracts::intake::{AidRequest, ReferredHousehold};
use onedoor_working_calendar::WorkingCalendar;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalView {
    /// `approve` | `reject`
    #[schema(value_type = String)]
    pub outcome: onedoor_contracts::department::ProposalOutcome,
    pub amount_fen: i64,
    pub reason: Option<String>,
    pub proposed_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub event: String,
}

/// The applicant as a referral shows them: the ID number masked
/// (`110105********002X`), like every ID number in the view; a caseworker
/// who needs the full numbers (for a payment) asks for them once, stating
/// why (`POST /api/v1/referrals/{id}/unmask`, audited).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApplicantView {
    pub name: String,
    pub id_number: String,
    /// Only where the line is disclosed the phone (none of today's four
    /// lines: the window sends every message to the applicant).
    pub phone: Option<String>,
}

/// The full ID numbers of a referral, answered to a caseworker who stated why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnmaskedIds {
    pub applicant_id_number: String,
    /// The patient's, when the medical request names a member other than the applicant.
    pub patient_id_number: Option<String>,
    /// The student's (education).
    pub student_id_number: Option<String>,
}

impl UnmaskedIds {
    pub fn of(lane: &Lane) -> Self {
        let r = &lane.referral;
        let (patient_id_number, student_id_number) = match &r.request {
            AidRequest::Medical { patient_id_number, .. } => (patient_id_number.clone(), None),
            AidRequest::Education { student_id_number, .. } => (None, Some(student_id_number.clone())),
            _ => (None, None),
        };
        Self { applicant_id_number: r.applicant.id_number.clone(), patient_id_number, student_id_number }
    }
}

/// The request with its ID numbers masked.
fn masked(request: &AidRequest) -> AidRequest {
    let mut request = request.clone();
    match &mut request {
        AidRequest::Medical { patient_id_number: Some(id), .. }
        | AidRequest::Education { student_id_number: id, .. } => {
            *id = onedoor_contracts::mask_id_number(id);
        }
        _ => {}
    }
    request
}

/// A referral with the data the department needs, its state and the policy's recommendation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReferralView {
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub case_number: String,
    #[schema(value_type = String)]
    pub department: onedoor_contracts::Department,
    pub township: String,
    pub status: LaneStatus,
    pub received_at: DateTime<Utc>,
    /// The time limit today: the window's, moved by the working days a
    /// supplement was awaited (a pause still running counted to today), or
    /// an approver's extension. The window's case view shows the same.
    pub deadline: NaiveDate,
    /// Past the time limit while it is counting (not decided, not paused).
    pub overdue: bool,
    /// Set once an approver extended the time limit.
    pub extension: Option<ExtensionView>,
    pub applicant: ApplicantView,
    /// The household facts the line is disclosed: `division_code`, `hukou`,
    /// `members`, `existing_support`, and `monthly_income_fen` or
    /// `assets_fen` only where the line's policy uses them.
    #[schema(value_type = Object)]
    pub household: ReferredHousehold,
    #[schema(value_type = Object)]
    pub request: AidRequest,
    pub materials: Vec<String>,
    pub missing_materials: Vec<String>,
    pub supplement_items: Vec<String>,
    pub signed_by: Option<String>,
    pub proposal: Option<ProposalView>,
    pub approved_amount_fen: Option<i64>,
    pub disbursed_amount_fen: Option<i64>,
    pub reason: Option<String>,
    pub recommendation: Recommendation,
    pub history: Vec<HistoryEntry>,
    /// The lane's version; also the ETag.
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExtensionView {
    pub deadline: NaiveDate,
    pub reason: String,
    pub extended_by: String,
    pub extended_at: DateTime<Utc>,
}

/// A line of the department's inbox: no personal data beyond the masked ID.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReferralSummary {
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub case_number: String,
    pub township: String,
    pub status: LaneStatus,
    pub applicant_id_number_masked: String,
    pub received_at: DateTime<Utc>,
    pub deadline: NaiveDate,
    pub overdue: bool,
    pub approved_amount_fen: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl ReferralView {
    /// The view of `lane` on `today`, with a fresh recommendation if one is given.
    pub fn of(
        lane: &Lane,
        recommendation: Option<Recommendation>,
        calendar: &WorkingCalendar,
        today: NaiveDate,
    ) -> Self {
        let r = &lane.referral;
        let deadline = lane.deadline(calendar, today);
        Self {
            referral_id: r.referral_id,
            case_id: r.case_id,
            case_number: r.case_number.clone(),
            department: r.department,
            township: r.township.clone(),
            status: lane.status,
            received_at: lane.received_at,
            deadline,
            overdue: lane.clock_runs() && today > deadline,
            extension: lane.extension.as_ref().map(|e| ExtensionView {
                deadline: e.deadline,
                reason: e.reason.clone(),
                extended_by: e.by.clone(),
                extended_at: e.at,
            }),
            applicant: ApplicantView {
                name: r.applicant.name.clone(),
                id_number: onedoor_contracts::mask_id_number(&r.applicant.id_number),
                phone: r.applicant.phone.clone(),
            },
            household: r.household.clone(),
            request: masked(&r.request),
            materials: r.materials.clone(),
            missing_materials: r.missing_materials.clone(),
            supplement_items: lane.supplement_items.clone(),
            signed_by: lane.signed_by.clone(),
            proposal: lane.proposal.as_ref().map(|p| ProposalView {
                outcome: p.outcome,
                amount_fen: p.amount_fen,
                reason: p.reason.clone(),
                proposed_by: p.by.clone(),
            }),
            approved_amount_fen: lane.approved_amount_fen,
            disbursed_amount_fen: lane.disbursed_amount_fen,
            reason: lane.reason.clone(),
            recommendation: recommendation.unwrap_or_else(|| lane.recommendation.clone()),
            history: lane.history.iter().map(|(at, e)| HistoryEntry { at: *at, event: e.clone() }).collect(),
            version: lane.version,
            updated_at: lane.updated_at,
        }
    }

    pub fn summary(&self) -> ReferralSummary {
        ReferralSummary {
            referral_id: self.referral_id,
            case_id: self.case_id,
            case_number: self.case_number.clone(),
            township: self.township.clone(),
            status: self.status,
            applicant_id_number_masked: self.applicant.id_number.clone(),
            received_at: self.received_at,
            deadline: self.deadline,
            overdue: self.overdue,
            approved_amount_fen: self.approved_amount_fen,
            updated_at: self.updated_at,
            version: self.version,
        }
    }
}
