//! The departments' replies, projected into the one case view.
//!
//! A durable consumer per department stream takes each integration event,
//! records it in the case's own stream (so the view can be rebuilt from
//! intake's log alone) and updates the read models, in the transaction that
//! also records the message in the inbox. The case row is locked first, so
//! replies from several departments about one case take turns; their order
//! of arrival does not matter (the lane reads its reports in time order).

use crate::config::Policy;
use crate::domain::case::{CaseEvent, LaneReport};
use crate::store;
use chrono::Utc;
use onedoor_contracts::department::*;
use onedoor_contracts::{CloudEvent, Department, EnvelopeHead, IntegrationEvent};
use onedoor_messaging::consumer::{ConsumerSpec, Delivery, Handler, HandlerError};
use sqlx::PgConnection;
use std::sync::Arc;

/// The consumer of one department's stream.
pub fn consumer_spec(department: Department) -> ConsumerSpec {
    ConsumerSpec::new(
        department.stream(),
        &format!("intake-lanes-{department}"),
        vec![format!("onedoor.{department}.referral.>")],
    )
}

pub struct LaneReports {
    pub policy: Arc<Policy>,
}

fn decode<T: IntegrationEvent>(delivery: &Delivery) -> Result<CloudEvent<T>, HandlerError> {
    delivery.json()
}

impl Handler for LaneReports {
    async fn handle(&self, tx: &mut PgConnection, delivery: &Delivery) -> Result<(), HandlerError> {
        let head: EnvelopeHead = delivery.json()?;
        let t = head.event_type.as_str();
        let (lane, at, report) = if t == ReferralSignedFor::cloud_event_type() {
            let e = decode::<ReferralSignedFor>(delivery)?.data;
            (e.lane, e.occurred_at, LaneReport::SignedFor)
        } else if t == SupplementRequested::cloud_event_type() {
            let e = decode::<SupplementRequested>(delivery)?.data;
            (e.lane, e.occurred_at, LaneReport::SupplementRequested { materials: e.materials, note: e.note })
        } else if t == ProposalMade::cloud_event_type() {
            let e = decode::<ProposalMade>(delivery)?.data;
            (
                e.lane,
                e.occurred_at,
                LaneReport::ProposalMade { outcome: e.outcome, amount_fen: e.amount_fen, reason: e.reason },
            )
        } else if t == ReferralApproved::cloud_event_type() {
            let e = decode::<ReferralApproved>(delivery)?.data;
            (e.lane, e.occurred_at, LaneReport::Approved { amount_fen: e.amount_fen })
        } else if t == ReferralRejected::cloud_event_type() {
            let e = decode::<ReferralRejected>(delivery)?.data;
            (e.lane, e.occurred_at, LaneReport::Rejected { reason: e.reason })
        } else if t == AidDisbursed::cloud_event_type() {
            let e = decode::<AidDisbursed>(delivery)?.data;
            (e.lane, e.occurred_at, LaneReport::Disbursed { amount_fen: e.amount_fen, channel: e.channel })
        } else if t == ReferralReturned::cloud_event_type() {
            let e = decode::<ReferralReturned>(delivery)?.data;
            (e.lane, e.occurred_at, LaneReport::Returned { reason: e.reason })
        } else {
            // A newer event type this intake does not know yet: not its business to fail on.
            tracing::info!(event.type = t, "ignoring an unknown department event type");
            return Ok(());
        };
        if store::lock_case(tx, lane.case_id).await?.is_none() {
            return Err(HandlerError::Permanent(format!("no case {} for referral {}", lane.case_id, lane.referral_id)));
        }
        let case = store::load_case(tx, lane.case_id)
            .await?
            .ok_or_else(|| HandlerError::Permanent(format!("case {} has no events", lane.case_id)))?;
        let known = case.lanes.get(&lane.department).and_then(|l| l.referral_id) == Some(lane.referral_id);
        if !known {
            return Err(HandlerError::Permanent(format!(
                "referral {} is not the {} lane of case {}",
                lane.referral_id, lane.department, lane.case_id
            )));
        }
        let event = CaseEvent::LaneReported {
            event_id: delivery.event_id,
            department: lane.department,
            referral_id: lane.referral_id,
            occurred_at: at,
            report,
        };
        let actor = format!("{}-aid", lane.department);
        store::save(tx, &case, &[event], &actor, Some(delivery.event_id), &self.policy, Utc::now()).await?;
        tracing::info!(case.id = %lane.case_id, department = %lane.department, event.type = t, "lane report projected");
        Ok(())
    }
}
