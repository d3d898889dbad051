//! The outbox relay: moves committed integration events from a service's
//! `outbox` table to JetStream.
//!
//! A batch is claimed inside one transaction (see `event_store::outbox` for
//! why several replicas can run it), published with pipelined acks, and
//! only the acknowledged prefix is removed from the outbox before commit. A crash between
//! publish and commit republishes the same messages, which JetStream drops as
//! duplicates (`Nats-Msg-Id` = event id) and consumers' inboxes ignore.

use crate::{EVENT_ID_HEADER, MessagingError};
use async_nats::jetstream;
use onedoor_event_store::outbox::{self, PendingMessage};
use onedoor_telemetry::propagation::TraceHeaders;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Messages per transaction.
    pub batch_size: i64,
    /// Pause when the outbox is empty (or another replica holds the turn).
    pub idle_poll: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self { batch_size: 2000, idle_poll: Duration::from_millis(20) }
    }
}

#[derive(Debug, Clone)]
pub struct OutboxRelay {
    pool: PgPool,
    js: jetstream::Context,
    config: RelayConfig,
}

impl OutboxRelay {
    pub fn new(pool: PgPool, js: jetstream::Context, config: RelayConfig) -> Self {
        Self { pool, js, config }
    }

    /// Relays until `shutdown`, then returns after finishing the batch in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let pause = match self.relay_batch().await {
                Ok(n) if n as i64 == self.config.batch_size => {
                    failures = 0;
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    self.config.idle_poll
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, failures, "outbox relay batch failed; retrying");
                    Duration::from_millis(100 * u64::from(failures.min(50)))
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Publishes one batch; returns how many messages were confirmed.
    pub async fn relay_batch(&self) -> Result<usize, MessagingError> {
        let mut tx = self.pool.begin().await?;
        let Some(batch) = outbox::claim(&mut tx, self.config.batch_size).await? else {
            return Ok(0);
        };
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let mut pending = Vec::with_capacity(batch.len());
        for message in &batch {
            match self.publish(message).await {
                Ok(ack) => pending.push(ack),
                Err(error) => {
                    tracing::warn!(%error, "publishing from the outbox failed");
                    break;
                }
            }
        }
        let mut sent = Vec::with_capacity(pending.len());
        for ((ack, span), message) in pending.into_iter().zip(&batch) {
            match ack.await {
                Ok(_) => sent.push(message.position),
                Err(error) => {
                    span.in_scope(|| tracing::warn!(%error, "no PubAck for an outbox message"));
                    break;
                }
            }
        }
        outbox::remove_published(&mut tx, &sent).await?;
        tx.commit().await?;
        Ok(sent.len())
    }

    /// Sends one message; the returned future resolves on its PubAck.
    async fn publish(
        &self,
        pending: &PendingMessage,
    ) -> Result<(jetstream::context::PublishAckFuture, tracing::Span), MessagingError> {
        let message = &pending.message;
        let saved = TraceHeaders {
            traceparent: message.headers.get("traceparent").cloned(),
            tracestate: message.headers.get("tracestate").cloned(),
        };
        let span = tracing::info_span!(
            "publish",
            otel.name = format!("publish {}", message.subject),
            otel.kind = "producer",
            messaging.system = "nats",
            messaging.operation.type = "send",
            messaging.destination.name = %message.subject,
            messaging.message.id = %message.event_id,
        );
        let _ = span.set_parent(saved.to_context());
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in &message.headers {
            if name != "traceparent" && name != "tracestate" {
                headers.insert(name.as_str(), value.as_str());
            }
        }
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message.event_id.to_string().as_str());
        headers.insert(EVENT_ID_HEADER, message.event_id.to_string().as_str());
        span.in_scope(TraceHeaders::current).inject_nats(&mut headers);
        let ack = self
            .js
            .publish_with_headers(message.subject.clone(), headers, message.payload.clone().into())
            .instrument(span.clone())
            .await
            .map_err(MessagingError::js)?;
        Ok((ack, span))
    }
}
