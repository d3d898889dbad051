//! What the window tells the department: referrals (a lane opens, once, even
//! if the referral is delivered again), materials handed in (a waiting lane
//! resumes) and withdrawals (open lanes close).

use crate::lane::Lane;
use crate::policy::Policy;
use crate::store;
use chrono::Utc;
use onedoor_contracts::intake::{ApplicationWithdrawn, MaterialsSupplemented, ReferralIssued};
use onedoor_contracts::{CloudEvent, Department, EnvelopeHead, IntegrationEvent};
use onedoor_messaging::consumer::{ConsumerSpec, Delivery, Handler, HandlerError};
use sqlx::PgConnection;
use std::sync::Arc;

pub fn consumer_spec(department: Department) -> ConsumerSpec {
    ConsumerSpec::new(
        onedoor_contracts::intake::STREAM,
        &format!("{department}-aid-window"),
        vec![
            onedoor_contracts::intake::referral_subject(department),
            "onedoor.intake.materials.supplemented".into(),
            "onedoor.intake.application.withdrawn".into(),
        ],
    )
}

pub struct WindowEvents {
    pub policy: Arc<dyn Policy>,
}

impl Handler for WindowEvents {
    async fn handle(&self, tx: &mut PgConnection, delivery: &Delivery) -> Result<(), HandlerError> {
        let head: EnvelopeHead = delivery.json()?;
        let now = Utc::now();
        let policy = self.policy.as_ref();
        let actor = "intake";
        let cause = Some(delivery.event_id);
        if head.event_type == ReferralIssued::cloud_event_type() {
            let referral = delivery.json::<CloudEvent<ReferralIssued>>()?.data;
            if referral.department != policy.department() {
                return Err(HandlerError::Permanent(format!(
                    "a {} referral reached {}",
                    referral.department,
                    policy.department()
                )));
            }
            if store::lock_lane(tx, referral.referral_id).await? {
                tracing::info!(referral.id = %referral.referral_id, "referral already received");
                return Ok(());
            }
            let opening = Lane::open(referral, Default::default(), now);
            // The recommendation at receipt, with the ledger as it stands now.
            let lane = Lane::from_events([&opening]).expect("opening event");
            let facts = store::ledger_facts(tx, policy, &lane, now).await?;
            let recommendation = policy.recommend(&lane.referral, facts);
            let opening = Lane::open(lane.referral, recommendation, now);
            let lane = store::save(tx, None, &[opening], actor, cause, policy, now).await?;
            tracing::info!(referral.id = %lane.referral.referral_id, case.id = %lane.referral.case_id, "referral received");
        } else if head.event_type == MaterialsSupplemented::cloud_event_type() {
            let e = delivery.json::<CloudEvent<MaterialsSupplemented>>()?.data;
            for referral_id in e.referral_ids {
                if !store::lock_lane(tx, referral_id).await? {
                    continue; // another department's lane
                }
                if let Some(lane) = store::load_lane(tx, referral_id).await? {
                    let events = lane.supplemented(e.materials.clone(), e.supplemented_at);
                    store::save(tx, Some(&lane), &events, actor, cause, policy, now).await?;
                }
            }
        } else if head.event_type == ApplicationWithdrawn::cloud_event_type() {
            let e = delivery.json::<CloudEvent<ApplicationWithdrawn>>()?.data;
            for referral_id in e.referral_ids {
                if !store::lock_lane(tx, referral_id).await? {
                    continue;
                }
                if let Some(lane) = store::load_lane(tx, referral_id).await? {
                    let events = lane.withdrawn(e.reason.clone(), e.withdrawn_at);
                    store::save(tx, Some(&lane), &events, actor, cause, policy, now).await?;
                }
            }
        } else {
            tracing::info!(event.type = %head.event_type, "ignoring a window event this department does not act on");
        }
        Ok(())
    }
}
