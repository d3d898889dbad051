//! Messages to the applicant (by SMS, the usual channel of Chinese
//! government services): on acceptance (the case number), on a one-time
//! notice (the missing items), on each line's decision.
//!
//! A change to a case puts a `NotificationRequested` event in intake's
//! outbox (`crate::integration`), in the change's own transaction, so no
//! message is lost and none is sent for a change that did not happen. This
//! consumer takes each from the broker, sends it through the configured
//! [`SmsProvider`], and records in the case's log that it was sent (the
//! case view lists what was sent). A provider that fails for now (network,
//! 5xx, throttling) is retried with the consumer's backoff and then
//! dead-lettered like any message; a refusal that cannot change (an invalid
//! number, a template the provider does not know) is dead-lettered at once.
//! Sending is at least once: a send whose record fails is sent again.

use crate::config::Policy;
use crate::domain::case::{CaseEvent, SentNotification};
use crate::store;
use chrono::Utc;
use onedoor_contracts::intake::IntakeEvent;
use onedoor_contracts::intake::{NotificationKind, NotificationRequested};
use onedoor_messaging::consumer::{ConsumerSpec, Delivery, Handler, HandlerError};
use sqlx::PgConnection;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub mod aliyun;

/// The consumer of the applicant's messages.
pub fn consumer_spec() -> ConsumerSpec {
    let durable = onedoor_broker_access::notifications_consumer();
    ConsumerSpec::new(durable.service, durable.stream, &durable.name, vec![durable.filter])
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// May go through later: retried.
    #[error("transient: {0}")]
    Transient(String),
    /// Never will (an invalid number, an unknown template): dead-lettered.
    #[error("permanent: {0}")]
    Permanent(String),
}

pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Where messages to applicants leave from.
pub trait SmsProvider: Send + Sync + 'static {
    /// `log` | `aliyun`: recorded with each message sent.
    fn name(&self) -> &'static str;
    fn send<'a>(&'a self, message: &'a NotificationRequested) -> Sending<'a>;
}

/// Development: the message is logged (its kind and case, never the phone
/// or the words), not sent.
#[derive(Debug, Default)]
pub struct LogProvider;

impl SmsProvider for LogProvider {
    fn name(&self) -> &'static str {
        "log"
    }

    fn send<'a>(&'a self, message: &'a NotificationRequested) -> Sending<'a> {
        Box::pin(async move {
            tracing::info!(
                case.id = %message.case_id,
                notification.id = %message.notification_id,
                kind = kind_code(message.kind),
                "message to the applicant (log provider: not sent)"
            );
            Ok(())
        })
    }
}

pub fn kind_code(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Accepted => "accepted",
        NotificationKind::Notice => "notice",
        NotificationKind::Decision => "decision",
    }
}

/// The provider configured: `log` (the default) or `aliyun`.
pub fn provider(name: &str, aliyun: aliyun::Settings) -> anyhow::Result<Arc<dyn SmsProvider>> {
    match name {
        "log" => Ok(Arc::new(LogProvider)),
        "aliyun" => Ok(Arc::new(aliyun::AliyunSms::new(aliyun)?)),
        other => anyhow::bail!("ONEDOOR_SMS_PROVIDER must be `log` or `aliyun`, not {other:?}"),
    }
}

pub struct Notifications {
    pub provider: Arc<dyn SmsProvider>,
    pub keyring: Arc<onedoor_personal_data::Keyring>,
    pub policy: Arc<Policy>,
}

impl Handler for Notifications {
    #[tracing::instrument(name = "send notification", skip_all, fields(event.id = %delivery.event_id))]
    async fn handle(&self, tx: &mut PgConnection, delivery: &Delivery) -> Result<(), HandlerError> {
        let opened = delivery.opened(self.keyring.in_transit())?;
        let IntakeEvent::NotificationRequested(event) = opened.decode::<IntakeEvent>()? else {
            return Ok(());
        };
        let message = event.data;
        let case_id = message.case_id;
        let sent_before = |case: &crate::domain::case::Case| {
            case.notifications.iter().any(|n| n.notification_id == message.notification_id)
        };
        let case = store::load_case(tx, &self.keyring, case_id, None)
            .await?
            .ok_or_else(|| HandlerError::Permanent(format!("no case {case_id} for notification")))?;
        if sent_before(&case) {
            return Ok(());
        }
        self.provider.send(&message).await.map_err(|e| match e {
            SendError::Transient(m) => HandlerError::Transient(m),
            SendError::Permanent(m) => HandlerError::Permanent(m),
        })?;
        // Recorded under the case's lock, after the send (never while waiting for the provider).
        let listed = store::case_row(tx, case_id, true).await?;
        let case = store::load_case(tx, &self.keyring, case_id, listed.as_ref())
            .await?
            .ok_or_else(|| HandlerError::Permanent(format!("no case {case_id} for notification")))?;
        let sent = CaseEvent::NotificationSent(SentNotification {
            notification_id: message.notification_id,
            kind: kind_code(message.kind).to_string(),
            provider: self.provider.name().to_string(),
            sent_at: Utc::now(),
        });
        store::save(
            tx,
            &self.keyring,
            &case,
            &[sent],
            store::Cause { actor: "notifications", causation_id: Some(delivery.event_id) },
            &self.policy,
            Utc::now(),
        )
        .await?;
        tracing::info!(case.id = %case_id, kind = kind_code(message.kind), "message to the applicant sent");
        Ok(())
    }
}
