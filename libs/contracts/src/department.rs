//! Events a department publishes on its own stream (`MEDICAL`, `EDUCATION`,
//! `HOUSING`, `TEMPORARY`) as it works its lane of a case. Intake projects
//! them into the one case view.

use crate::{Department, IntegrationEvent, SUBJECT_PREFIX};
use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which lane an event is about; flattened into every department event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LaneRef {
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub department: Department,
    /// The lane's own version after this event (1 = received): readers order
    /// a lane's events by it, never by clocks of different machines.
    /// Additive: absent from events of earlier publishers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane_version: Option<i64>,
}

/// 签收: a caseworker took the referral on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferralSignedFor {
    #[serde(flatten)]
    pub lane: LaneRef,
    pub signed_by: String,
    pub occurred_at: DateTime<Utc>,
}

/// 补正: the department needs more materials; its clock pauses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SupplementRequested {
    #[serde(flatten)]
    pub lane: LaneRef,
    pub materials: Vec<String>,
    pub note: Option<String>,
    pub requested_by: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalOutcome {
    Approve,
    Reject,
}

/// A caseworker proposed a decision above the approval threshold: it waits for an approver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProposalMade {
    #[serde(flatten)]
    pub lane: LaneRef,
    pub outcome: ProposalOutcome,
    pub amount_fen: Option<i64>,
    pub reason: Option<String>,
    pub proposed_by: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferralApproved {
    #[serde(flatten)]
    pub lane: LaneRef,
    pub amount_fen: i64,
    /// The approver's written reason when the approval is above the policy's
    /// entitlement or for a household it finds ineligible (an override).
    /// Additive: absent from events of earlier publishers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    pub decided_by: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferralRejected {
    #[serde(flatten)]
    pub lane: LaneRef,
    pub reason: String,
    pub decided_by: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisbursementChannel {
    BankCard,
    Cash,
    InKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AidDisbursed {
    #[serde(flatten)]
    pub lane: LaneRef,
    pub amount_fen: i64,
    pub channel: DisbursementChannel,
    pub disbursed_by: String,
    pub occurred_at: DateTime<Utc>,
}

/// Not this department's matter: back to the window for re-routing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferralReturned {
    #[serde(flatten)]
    pub lane: LaneRef,
    pub reason: String,
    pub returned_by: String,
    pub occurred_at: DateTime<Utc>,
}

/// The application was withdrawn at the window and the department closed
/// its lane (a lane already paid, rejected or returned stays as it was and
/// sends nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferralWithdrawn {
    #[serde(flatten)]
    pub lane: LaneRef,
    pub occurred_at: DateTime<Utc>,
}

/// An approver extended the lane's time limit (once), with a reason: the
/// window shows the new date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferralDeadlineExtended {
    #[serde(flatten)]
    pub lane: LaneRef,
    pub deadline: NaiveDate,
    pub reason: String,
    pub extended_by: String,
    pub occurred_at: DateTime<Utc>,
}

macro_rules! department_event {
    ($ty:ty, $name:literal) => {
        impl IntegrationEvent for $ty {
            const TYPE: &'static str = concat!("onedoor.department.", $name);
            const VERSION: u32 = 1;
            const SOURCE: &'static str = "onedoor/department";
            fn subject(&self) -> String {
                format!("{SUBJECT_PREFIX}.{}.referral.{}", self.lane.department, $name)
            }
            fn case_id(&self) -> Uuid {
                self.lane.case_id
            }
        }
    };
}

department_event!(ReferralSignedFor, "signed_for");
department_event!(SupplementRequested, "supplement_requested");
department_event!(ProposalMade, "proposal_made");
department_event!(ReferralApproved, "approved");
department_event!(ReferralRejected, "rejected");
department_event!(AidDisbursed, "disbursed");
department_event!(ReferralReturned, "returned");
department_event!(ReferralWithdrawn, "withdrawn");
department_event!(ReferralDeadlineExtended, "deadline_extended");

crate::stream_events! {
    /// Every event on a department's stream, as a consumer decodes it.
    DepartmentEvent {
        SignedFor(ReferralSignedFor),
        SupplementRequested(SupplementRequested),
        ProposalMade(ProposalMade),
        Approved(ReferralApproved),
        Rejected(ReferralRejected),
        Disbursed(AidDisbursed),
        Returned(ReferralReturned),
        Withdrawn(ReferralWithdrawn),
        DeadlineExtended(ReferralDeadlineExtended),
    }
}
