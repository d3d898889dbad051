//! The department and the published language (`onedoor-contracts`), both
//! ways: each change to a lane becomes the integration event that tells the
//! window; the window's events come in as [`IntakeEvent`] (decoded by the
//! consumer in `window.rs`).

use crate::domain::lane::{Lane, LaneEvent};
use chrono::{DateTime, Utc};
use onedoor_contracts::department::*;
use onedoor_contracts::{CloudEvent, IntegrationEvent};
use onedoor_event_store::outbox::OutboxMessage;

pub use onedoor_contracts::intake::IntakeEvent;

/// The outbox message announcing `event`, the lane's `version`-th (which
/// `lane` now includes), if the window is told of it.
pub fn announce(
    lane: &Lane,
    version: i64,
    event: &LaneEvent,
    now: DateTime<Utc>,
) -> Result<Option<OutboxMessage>, serde_json::Error> {
    fn msg<T: IntegrationEvent>(data: T, now: DateTime<Utc>) -> Result<Option<OutboxMessage>, serde_json::Error> {
        OutboxMessage::announcing(&CloudEvent::new(data, now)).map(Some)
    }
    let r = &lane.referral;
    let lane_ref = LaneRef {
        referral_id: r.referral_id,
        case_id: r.case_id,
        department: r.department,
        lane_version: Some(version),
    };
    match event.clone() {
        LaneEvent::SignedFor { by, at } => {
            msg(ReferralSignedFor { lane: lane_ref, signed_by: by, occurred_at: at }, now)
        }
        LaneEvent::SupplementRequested { materials, note, by, at } => {
            msg(SupplementRequested { lane: lane_ref, materials, note, requested_by: by, occurred_at: at }, now)
        }
        LaneEvent::ProposalMade { outcome, amount_fen, reason, by, at } => msg(
            ProposalMade {
                lane: lane_ref,
                outcome,
                amount_fen: Some(amount_fen),
                reason,
                proposed_by: by,
                occurred_at: at,
            },
            now,
        ),
        LaneEvent::Approved { amount_fen, override_reason, by, at } => {
            msg(ReferralApproved { lane: lane_ref, amount_fen, override_reason, decided_by: by, occurred_at: at }, now)
        }
        LaneEvent::Rejected { reason, by, at } => {
            msg(ReferralRejected { lane: lane_ref, reason, decided_by: by, occurred_at: at }, now)
        }
        LaneEvent::Disbursed { amount_fen, channel, by, at, .. } => {
            msg(AidDisbursed { lane: lane_ref, amount_fen, channel, disbursed_by: by, occurred_at: at }, now)
        }
        LaneEvent::Returned { reason, by, at } => {
            msg(ReferralReturned { lane: lane_ref, reason, returned_by: by, occurred_at: at }, now)
        }
        LaneEvent::Withdrawn { at, .. } => msg(ReferralWithdrawn { lane: lane_ref, occurred_at: at }, now),
        LaneEvent::DeadlineExtended { deadline, reason, by, at } => {
            msg(ReferralDeadlineExtended { lane: lane_ref, deadline, reason, extended_by: by, occurred_at: at }, now)
        }
        LaneEvent::ReferralReceived { .. } | LaneEvent::Supplemented { .. } | LaneEvent::PartlySupplemented { .. } => {
            Ok(None)
        }
    }
}
