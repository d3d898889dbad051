//! The lane's events in their stored format (`onedoor_stored_events::lane`),
//! and back. The domain's types and the contracts may change freely; what is
//! in the log only changes as a new stored version with an upcaster.

use crate::domain::lane::LaneEvent;
use crate::domain::policy::Recommendation;
use onedoor_event_store::{NewEvent, RecordedEvent, StoreError, Upcasters};
use onedoor_personal_data::DataKey;
use onedoor_stored_events::StoredFormat;
use onedoor_stored_events::lane::{self, LaneEventV2, RecommendationV1};

/// How older stored versions of the lane's events are read: a version-1
/// `ReferralReceived` loses what its line is not disclosed; every other
/// event reads the same in both versions.
pub fn upcasters() -> Upcasters {
    Upcasters::new().with("ReferralReceived", 1, lane::referral_received_v1_to_v2)
}

/// The stored event, its personal fields sealed with the case's key.
pub fn encode(event: &LaneEvent, key: &DataKey) -> Result<NewEvent, StoreError> {
    let stored = to_stored(event.clone());
    let mut payload = serde_json::to_value(&stored)?;
    LaneEventV2::personal_fields(stored.event_type()).seal(&mut payload, key);
    Ok(NewEvent::new(stored.event_type(), LaneEventV2::VERSION, payload))
}

/// The event, its personal fields opened with the case's key (without one,
/// they read as erased).
pub fn decode(recorded: &RecordedEvent, key: Option<&DataKey>) -> Result<LaneEvent, StoreError> {
    Ok(from_stored(recorded.decode(LaneEventV2::personal_fields(&recorded.event_type), key)?))
}

fn to_stored(event: LaneEvent) -> LaneEventV2 {
    match event {
        LaneEvent::ReferralReceived { referral, recommendation: r, at } => LaneEventV2::ReferralReceived {
            referral: Box::new((*referral).into()),
            recommendation: RecommendationV1 {
                eligible: r.eligible,
                suggested_amount_fen: r.suggested_amount_fen,
                notes: r.notes,
                needs_approver_override: r.needs_approver_override,
            },
            at,
        },
        LaneEvent::SignedFor { by, at } => LaneEventV2::SignedFor { by, at },
        LaneEvent::SupplementRequested { materials, note, by, at } => {
            LaneEventV2::SupplementRequested { materials, note, by, at }
        }
        LaneEvent::Supplemented { materials, at } => LaneEventV2::Supplemented { materials, at },
        LaneEvent::PartlySupplemented { materials, at } => LaneEventV2::PartlySupplemented { materials, at },
        LaneEvent::ProposalMade { outcome, amount_fen, reason, by, at } => {
            LaneEventV2::ProposalMade { outcome: outcome.into(), amount_fen, reason, by, at }
        }
        LaneEvent::Approved { amount_fen, override_reason, by, at } => {
            LaneEventV2::Approved { amount_fen, override_reason, by, at }
        }
        LaneEvent::Rejected { reason, by, at } => LaneEventV2::Rejected { reason, by, at },
        LaneEvent::Disbursed { amount_fen, channel, reference, by, at } => {
            LaneEventV2::Disbursed { amount_fen, channel: channel.into(), reference, by, at }
        }
        LaneEvent::Returned { reason, by, at } => LaneEventV2::Returned { reason, by, at },
        LaneEvent::Withdrawn { reason, at } => LaneEventV2::Withdrawn { reason, at },
        LaneEvent::DeadlineExtended { deadline, reason, by, at } => {
            LaneEventV2::DeadlineExtended { deadline, reason, by, at }
        }
    }
}

fn from_stored(event: LaneEventV2) -> LaneEvent {
    match event {
        LaneEventV2::ReferralReceived { referral, recommendation: r, at } => LaneEvent::ReferralReceived {
            referral: Box::new((*referral).into()),
            recommendation: Recommendation {
                eligible: r.eligible,
                suggested_amount_fen: r.suggested_amount_fen,
                notes: r.notes,
                needs_approver_override: r.needs_approver_override,
            },
            at,
        },
        LaneEventV2::SignedFor { by, at } => LaneEvent::SignedFor { by, at },
        LaneEventV2::SupplementRequested { materials, note, by, at } => {
            LaneEvent::SupplementRequested { materials, note, by, at }
        }
        LaneEventV2::Supplemented { materials, at } => LaneEvent::Supplemented { materials, at },
        LaneEventV2::PartlySupplemented { materials, at } => LaneEvent::PartlySupplemented { materials, at },
        LaneEventV2::ProposalMade { outcome, amount_fen, reason, by, at } => {
            LaneEvent::ProposalMade { outcome: outcome.into(), amount_fen, reason, by, at }
        }
        LaneEventV2::Approved { amount_fen, override_reason, by, at } => {
            LaneEvent::Approved { amount_fen, override_reason, by, at }
        }
        LaneEventV2::Rejected { reason, by, at } => LaneEvent::Rejected { reason, by, at },
        LaneEventV2::Disbursed { amount_fen, channel, reference, by, at } => {
            LaneEvent::Disbursed { amount_fen, channel: channel.into(), reference, by, at }
        }
        LaneEventV2::Returned { reason, by, at } => LaneEvent::Returned { reason, by, at },
        LaneEventV2::Withdrawn { reason, at } => LaneEvent::Withdrawn { reason, at },
        LaneEventV2::DeadlineExtended { deadline, reason, by, at } => {
            LaneEvent::DeadlineExtended { deadline, reason, by, at }
        }
    }
}
