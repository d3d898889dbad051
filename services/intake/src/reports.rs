//! The departments' reports, projected into the one case view: the broker's
//! handler, as `http.rs` is the clerks' (decode, call, answer).
//!
//! A durable consumer per department stream takes each integration event,
//! records it in the case's own stream (so the view can be rebuilt from
//! intake's log alone) and updates the read models, in the transaction that
//! also records the message in the inbox. The case row is locked first, so
//! replies from several departments about one case take turns; their order
//! of arrival does not matter (the line reads its reports in time order).
//!
//! Which department reports is known by the stream it arrived on (only that
//! department may publish there: `onedoor_broker_access`), never by the
//! payload alone: a report naming another department is dead-lettered.

use crate::config::Policy;
use crate::domain::case::CaseEvent;
use crate::{integration, store};
use chrono::Utc;
use onedoor_contracts::Department;
use onedoor_contracts::department::DepartmentEvent;
use onedoor_messaging::consumer::{ConsumerSpec, Delivery, Handler, HandlerError};
use sqlx::PgConnection;
use std::sync::Arc;

/// The consumer of one department's stream.
pub fn consumer_spec(department: Department) -> ConsumerSpec {
    let durable = onedoor_broker_access::lanes_consumer(department);
    ConsumerSpec::new(durable.service, durable.stream, &durable.name, vec![durable.filter])
}

pub struct LaneReports {
    /// The department whose stream this consumer reads: only that
    /// department's broker user may publish there, so a report's department
    /// is known by where it arrived, and the payload must agree.
    pub department: Department,
    pub keyring: Arc<onedoor_personal_data::Keyring>,
    pub policy: Arc<Policy>,
}

impl Handler for LaneReports {
    #[tracing::instrument(name = "project lane report", skip_all, fields(event.id = %delivery.event_id))]
    async fn handle(&self, tx: &mut PgConnection, delivery: &Delivery) -> Result<(), HandlerError> {
        let event: DepartmentEvent = delivery.opened(self.keyring.in_transit())?.decode()?;
        let (lane, at, by, report) = integration::lane_report(event);
        if lane.department != self.department {
            return Err(HandlerError::Permanent(format!(
                "a report on {}'s subject {} names the {} lane",
                self.department, delivery.subject, lane.department
            )));
        }
        let Some(listed) = store::case_row(tx, lane.case_id, true).await? else {
            return Err(HandlerError::Permanent(format!("no case {} for referral {}", lane.case_id, lane.referral_id)));
        };
        let case = store::load_case(tx, &self.keyring, lane.case_id, Some(&listed))
            .await?
            .ok_or_else(|| HandlerError::Permanent(format!("case {} has no events", lane.case_id)))?;
        let known = case.line_of_referral(lane.referral_id).is_some_and(|l| l.department == lane.department);
        if !known {
            return Err(HandlerError::Permanent(format!(
                "referral {} is not the {} lane of case {}",
                lane.referral_id, lane.department, lane.case_id
            )));
        }
        let event_name = report.event_name();
        let event = CaseEvent::LaneReported {
            event_id: delivery.event_id,
            department: lane.department,
            referral_id: lane.referral_id,
            lane_version: lane.lane_version,
            by,
            occurred_at: at,
            report,
        };
        let actor = format!("{}-aid", lane.department);
        store::save(
            tx,
            &self.keyring,
            &case,
            &[event],
            store::Cause { actor: &actor, causation_id: Some(delivery.event_id) },
            &self.policy,
            Utc::now(),
        )
        .await?;
        tracing::info!(case.id = %lane.case_id, department = %lane.department, event = event_name, "lane report projected");
        Ok(())
    }
}
