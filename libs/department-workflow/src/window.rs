//! What the window tells the department, taken in: the broker's handler, as
//! `http.rs` is the caseworkers' (decode, call, answer). Referrals open a
//! lane (once, even if the referral is delivered again), materials handed in
//! resume a waiting lane, and withdrawals close open lanes.

use crate::domain::lane::Lane;
use crate::domain::policy::Policy;
use crate::integration::IntakeEvent;
use crate::store;
use chrono::Utc;
use onedoor_contracts::Department;
use onedoor_messaging::consumer::{ConsumerSpec, Delivery, Handler, HandlerError};
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

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

const ACTOR: &str = "intake";

impl Handler for WindowEvents {
    #[tracing::instrument(name = "take window event", skip_all, fields(event.id = %delivery.event_id))]
    async fn handle(&self, tx: &mut PgConnection, delivery: &Delivery) -> Result<(), HandlerError> {
        let cause = Some(delivery.event_id);
        match delivery.decode::<IntakeEvent>()? {
            IntakeEvent::ReferralIssued(e) => self.open_lane(tx, e.data, cause).await,
            IntakeEvent::MaterialsSupplemented(e) => {
                let e = e.data;
                self.each_lane(tx, &e.referral_ids, cause, |lane| {
                    lane.supplemented(e.materials.clone(), e.supplemented_at)
                })
                .await
            }
            IntakeEvent::ApplicationWithdrawn(e) => {
                let e = e.data;
                self.each_lane(tx, &e.referral_ids, cause, |lane| lane.withdrawn(e.reason.clone(), e.withdrawn_at))
                    .await
            }
            // The window's bookkeeping: nothing for a department to do.
            IntakeEvent::ApplicationAccepted(_) => Ok(()),
        }
    }
}

impl WindowEvents {
    #[tracing::instrument(name = "open lane", skip_all, fields(referral.id = %referral.referral_id))]
    async fn open_lane(
        &self,
        tx: &mut PgConnection,
        referral: onedoor_contracts::intake::ReferralIssued,
        cause: Option<Uuid>,
    ) -> Result<(), HandlerError> {
        let policy = self.policy.as_ref();
        let now = Utc::now();
        if referral.department != policy.department() {
            return Err(HandlerError::Permanent(format!(
                "a {} referral reached {}",
                referral.department,
                policy.department()
            )));
        }
        if store::lock_lane(tx, referral.referral_id).await? {
            tracing::info!("referral already received");
            return Ok(());
        }
        let opening = Lane::open(referral, Default::default(), now);
        // The recommendation at receipt, with the ledger as it stands now.
        let lane = Lane::from_events([&opening]).expect("opening event");
        let facts = store::ledger_facts(tx, policy, &lane, now).await?;
        let recommendation = policy.recommend(&lane.referral, facts);
        let opening = Lane::open(lane.referral, recommendation, now);
        let lane = store::save(tx, None, &[opening], ACTOR, cause, policy, now).await?;
        tracing::info!(case.id = %lane.referral.case_id, "referral received");
        Ok(())
    }

    /// Applies a window event to each of this department's lanes among `referral_ids`.
    async fn each_lane(
        &self,
        tx: &mut PgConnection,
        referral_ids: &[Uuid],
        cause: Option<Uuid>,
        decide: impl Fn(&Lane) -> Vec<crate::domain::lane::LaneEvent>,
    ) -> Result<(), HandlerError> {
        let now = Utc::now();
        for referral_id in referral_ids {
            if !store::lock_lane(tx, *referral_id).await? {
                continue; // another department's lane
            }
            if let Some(lane) = store::load_lane(tx, *referral_id).await? {
                store::save(tx, Some(&lane), &decide(&lane), ACTOR, cause, self.policy.as_ref(), now).await?;
            }
        }
        Ok(())
    }
}
