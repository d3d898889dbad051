//! What the window tells the department, taken in: the broker's handler, as
//! `http.rs` is the caseworkers' (decode, call, answer). Referrals open a
//! lane (once, even if the referral is delivered again), materials handed in
//! resume a waiting lane, and withdrawals close open lanes.

use crate::domain::lane::Lane;
use crate::domain::policy::Policy;
use crate::integration::IntakeEvent;
use crate::store::{self, EarlyWindowEvent};
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::stream::ConsumerErrorKind;
use chrono::Utc;
use onedoor_contracts::Department;
use onedoor_contracts::intake::ReferralIssuedV3;
use onedoor_messaging::consumer::{ConsumerSpec, Delivery, Handler, HandlerError};
use onedoor_personal_data::Keyring;
use onedoor_working_calendar::WorkingCalendar;
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

/// The department's consumers of the window's events, one per subject (so
/// the broker pins what each reads: `onedoor_broker_access::Durable`),
/// sharing one inbox.
pub fn consumer_specs(department: Department) -> Vec<ConsumerSpec> {
    let inbox = onedoor_broker_access::window_inbox(department);
    onedoor_broker_access::window_consumers(department)
        .into_iter()
        .map(|c| ConsumerSpec::new(c.service, c.stream, &c.name, vec![c.filter]).inbox(&inbox))
        .collect()
}

/// Removes the one consumer of several filters that the ones of
/// [`consumer_specs`] replaced (it would keep every later message pending,
/// and its lag would alert operators). Retried while the broker is away;
/// gone already is done.
pub async fn retire_the_single_consumer(js: async_nats::jetstream::Context, department: Department) {
    let name = onedoor_broker_access::window_inbox(department);
    for _ in 0..12 {
        match js.delete_consumer_from_stream(&name, onedoor_contracts::intake::STREAM).await {
            Ok(_) => return tracing::info!(consumer = %name, "the window's former consumer removed"),
            Err(e) if matches!(e.kind(), ConsumerErrorKind::JetStream(j) if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND) =>
            {
                return;
            }
            Err(error) => tracing::debug!(%error, consumer = %name, "removing the former consumer failed; retrying"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

pub struct WindowEvents {
    pub policy: Arc<dyn Policy>,
    pub calendar: Arc<WorkingCalendar>,
    pub keyring: Arc<Keyring>,
}

const ACTOR: &str = "intake";

impl Handler for WindowEvents {
    #[tracing::instrument(name = "take window event", skip_all, fields(event.id = %delivery.event_id))]
    async fn handle(&self, tx: &mut PgConnection, delivery: &Delivery) -> Result<(), HandlerError> {
        let cause = Some(delivery.event_id);
        match delivery.opened(self.keyring.in_transit())?.decode::<IntakeEvent>()? {
            IntakeEvent::ReferralIssued(e) => self.open_lane(tx, e.data, cause).await,
            // An earlier intake's referral, upcast (the applicant as the only member).
            IntakeEvent::ReferralIssuedV1(e) => self.open_lane(tx, ReferralIssuedV3::from(e.data).into(), cause).await,
            // An earlier intake's referral without the household's id, upcast.
            IntakeEvent::ReferralIssuedV2(e) => self.open_lane(tx, ReferralIssuedV3::from(e.data).into(), cause).await,
            // An earlier intake's referral with every household fact: only
            // what this line is disclosed is kept.
            IntakeEvent::ReferralIssuedV3(e) => self.open_lane(tx, e.data.into(), cause).await,
            IntakeEvent::MaterialsSupplemented(e) => {
                let e = e.data;
                let event = EarlyWindowEvent::Supplemented { materials: e.materials, at: e.supplemented_at };
                self.each_lane(tx, &e.referral_ids, delivery.event_id, event).await
            }
            IntakeEvent::ApplicationWithdrawn(e) => {
                let e = e.data;
                let event = EarlyWindowEvent::Withdrawn { reason: e.reason, at: e.withdrawn_at };
                self.each_lane(tx, &e.referral_ids, delivery.event_id, event).await
            }
            // The household's personal data erased at the window: this
            // department's key of the case goes too.
            IntakeEvent::CaseErased(e) => self.erase_case(tx, e.data).await,
            // Scans this department's referrals need (on its own subject;
            // possibly before the referral itself).
            IntakeEvent::DocumentAttached(e) => {
                store::record_document(tx, &e.data.referral_ids, &e.data).await?;
                Ok(())
            }
            // The window's bookkeeping and its messages to the applicant:
            // nothing for a department to do (never delivered here).
            IntakeEvent::ApplicationAccepted(_) | IntakeEvent::NotificationRequested(_) => Ok(()),
        }
    }
}

impl WindowEvents {
    #[tracing::instrument(name = "open lane", skip_all, fields(referral.id = %referral.referral_id))]
    async fn open_lane(
        &self,
        tx: &mut PgConnection,
        mut referral: onedoor_contracts::intake::ReferralIssued,
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
        store::serialise_referral(tx, referral.referral_id).await?;
        if store::lock_lane(tx, referral.referral_id).await?.is_some() {
            tracing::info!("referral already received");
            return Ok(());
        }
        // What the window said of this referral before it arrived.
        let early = store::take_early(tx, referral.referral_id).await?;
        for event in &early {
            if let EarlyWindowEvent::Supplemented { materials, .. } = event {
                for m in materials {
                    if !referral.materials.contains(m) {
                        referral.materials.push(m.clone());
                    }
                }
                referral.missing_materials.retain(|m| !materials.contains(m));
            }
        }
        let opening = Lane::open(referral, Default::default(), now);
        // The recommendation at receipt, with the ledger as it stands now.
        let lane = Lane::from_events([&opening]).expect("opening event");
        let facts = store::ledger_facts(tx, &self.keyring, policy, &lane, now).await?;
        let recommendation = policy.recommend(&lane.referral, facts);
        let opening = Lane::open(lane.referral, recommendation, now);
        let rules = store::Rules { policy, calendar: &self.calendar, keyring: &self.keyring };
        let mut lane = store::save(tx, None, &[opening], ACTOR, cause, rules, now).await?;
        for event in early {
            if let EarlyWindowEvent::Withdrawn { reason, at } = event {
                // Withdrawn before it arrived: the lane closes on arrival.
                let closing = lane.withdrawn(reason, at);
                lane = store::save(tx, Some(&lane), &closing, ACTOR, cause, rules, now).await?;
            }
        }
        tracing::info!(case.id = %lane.referral.case_id, status = lane.status.as_str(), "referral received");
        Ok(())
    }

    /// Destroys the department's key of the case, then rewrites its lanes'
    /// inbox rows, whose personal fields now read as erased (one
    /// transaction). Done again, it changes nothing more.
    #[tracing::instrument(name = "erase case", skip_all, fields(case.id = %erased.case_id))]
    async fn erase_case(
        &self,
        tx: &mut PgConnection,
        erased: onedoor_contracts::intake::CaseErased,
    ) -> Result<(), HandlerError> {
        self.keyring.erase(tx, erased.case_id).await.map_err(onedoor_event_store::StoreError::from)?;
        // And the department's messages about the case, off the broker (ADR 0019).
        onedoor_event_store::outbox::request_broker_erasure(tx, &[erased.case_id.to_string()]).await?;
        let now = Utc::now();
        let mut lanes = 0;
        for referral_id in &erased.referral_ids {
            store::serialise_referral(tx, *referral_id).await?;
            if store::lock_lane(tx, *referral_id).await?.is_some()
                && store::forget_lane(tx, &self.keyring, &self.calendar, *referral_id, now).await?
            {
                lanes += 1;
            }
        }
        tracing::info!(lanes, "the case's personal data erased");
        Ok(())
    }

    /// Applies a window event to each of this department's lanes among
    /// `referral_ids`; a referral not received yet keeps the event for when it
    /// arrives (it may be another department's, and then never does).
    async fn each_lane(
        &self,
        tx: &mut PgConnection,
        referral_ids: &[Uuid],
        event_id: Uuid,
        event: EarlyWindowEvent,
    ) -> Result<(), HandlerError> {
        let now = Utc::now();
        for referral_id in referral_ids {
            store::serialise_referral(tx, *referral_id).await?;
            let Some(listed) = store::lock_lane(tx, *referral_id).await? else {
                store::record_early(tx, *referral_id, event_id, &event).await?;
                continue;
            };
            if let Some(lane) = store::load_lane(tx, &self.keyring, *referral_id, Some(listed)).await? {
                let events = match &event {
                    EarlyWindowEvent::Supplemented { materials, at } => lane.supplemented(materials.clone(), *at),
                    EarlyWindowEvent::Withdrawn { reason, at } => lane.withdrawn(reason.clone(), *at),
                };
                let rules =
                    store::Rules { policy: self.policy.as_ref(), calendar: &self.calendar, keyring: &self.keyring };
                store::save(tx, Some(&lane), &events, ACTOR, Some(event_id), rules, now).await?;
            }
        }
        Ok(())
    }
}
