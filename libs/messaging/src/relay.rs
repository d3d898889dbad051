//! The outbox relay: moves committed integration events from a service's
//! `outbox` table to JetStream.
//!
//! A batch is claimed inside one transaction (see `event_store::outbox` for
//! why several replicas can run it) and published in rounds: each round
//! sends the next message of every case (stream key) on every subject at
//! once, with pipelined acks, and waits for them. A case's next message on a
//! subject goes out only after its previous one there was acknowledged, so
//! one case's events on a subject are stored in order even when some
//! publishes fail; a case whose message failed waits on that subject for the
//! next batch, the rest goes on. A case's messages on different subjects
//! (a submission's four referrals) leave in one round: they are stored in
//! the order sent unless one fails, and no consumer depends on the order of
//! different subjects (ADR 0003). Only acknowledged messages are
//! removed from the outbox; a batch with failures is retried after a growing
//! pause (at most 30 s, well inside the broker's 120 s duplicate window).
//!
//! The guarantee is at least once, in order per case and subject: a crash between
//! publish and commit, or a lost PubAck, republishes a message, which
//! JetStream drops as a duplicate within its window (`Nats-Msg-Id` = event
//! id) and the consumers' inboxes ignore for ever after.

use crate::{EVENT_ID_HEADER, MessagingError};
use async_nats::jetstream;
use onedoor_event_store::outbox::{self, PendingMessage};
use onedoor_telemetry::propagation::TraceHeaders;
use sqlx::PgPool;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Messages per transaction.
    pub batch_size: i64,
    /// The longest pause when the outbox is empty: a commit in this process
    /// wakes the relay sooner (see `event_store::outbox::committed`); this
    /// finds writes it cannot see, such as another replica's.
    pub idle_poll: Duration,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Messages acknowledged by JetStream and removed from the outbox.
    pub sent: usize,
    /// Cases whose next message was not acknowledged: it and the case's
    /// later messages stay in the outbox for the next batch.
    pub failed: usize,
    /// Another replica's relay held the turn: nothing was read.
    pub busy: bool,
}

/// The longest pause between retries of a failing relay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a woken relay waits for more commits before it reads the outbox:
/// under load one batch then carries many messages (one transaction, acks
/// pipelined) instead of one transaction per message.
const LINGER: Duration = Duration::from_millis(2);
/// The pause before asking again for a turn another replica holds (its
/// batch takes a few milliseconds).
const TURN_POLL: Duration = Duration::from_millis(10);

impl Default for RelayConfig {
    fn default() -> Self {
        Self { batch_size: 2000, idle_poll: Duration::from_millis(250) }
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
        let mut commits = outbox::commits();
        while !shutdown.is_cancelled() {
            // Commits from now on wake the idle pause, even those during the batch.
            commits.borrow_and_update();
            let (pause, wake_on_commit) = match self.relay_batch().await {
                Ok(o) if o.failed > 0 => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        sent = o.sent,
                        failed = o.failed,
                        failures,
                        "some outbox messages were not acknowledged; retrying them"
                    );
                    (backoff(failures), false)
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, failures, "outbox relay batch failed; retrying");
                    (backoff(failures), false)
                }
                Ok(o) => {
                    failures = 0;
                    match (o.busy, o.sent as i64) {
                        (true, _) => (TURN_POLL, false),
                        // A full batch: more is waiting.
                        (false, n) if n >= self.config.batch_size => continue,
                        // Commits during the batch have already woken the wait.
                        (false, _) => (self.config.idle_poll, true),
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
                Ok(()) = commits.changed(), if wake_on_commit => {
                    // Lets the commits of a busy moment gather into one batch.
                    tokio::time::sleep(LINGER).await;
                }
            }
        }
    }

    /// Publishes one batch (see the module docs).
    pub async fn relay_batch(&self) -> Result<BatchOutcome, MessagingError> {
        let mut tx = self.pool.begin().await?;
        let Some(batch) = outbox::claim(&mut tx, self.config.batch_size).await? else {
            return Ok(BatchOutcome { busy: true, ..BatchOutcome::default() });
        };
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(BatchOutcome::default());
        }
        // One queue per case and subject, in outbox order.
        let mut queues: Vec<VecDeque<&PendingMessage>> = Vec::new();
        let mut queue_of: HashMap<(&str, &str), usize> = HashMap::new();
        for message in &batch {
            let key = (message.message.stream_key.as_str(), message.message.subject.as_str());
            let i = *queue_of.entry(key).or_insert_with(|| {
                queues.push(VecDeque::new());
                queues.len() - 1
            });
            queues[i].push_back(message);
        }
        let mut outcome = BatchOutcome::default();
        let mut sent = Vec::with_capacity(batch.len());
        let mut blocked = vec![false; queues.len()];
        'rounds: loop {
            let round: Vec<(usize, &PendingMessage)> = queues
                .iter()
                .enumerate()
                .filter(|(i, _)| !blocked[*i])
                .filter_map(|(i, q)| q.front().map(|m| (i, *m)))
                .collect();
            if round.is_empty() {
                break;
            }
            let mut pending = Vec::with_capacity(round.len());
            for (i, message) in round {
                let published = std::time::Instant::now();
                match self.publish(message).await {
                    Ok(ack) => pending.push((i, message, ack, published)),
                    Err(error) => {
                        // The broker is away: what is in flight is awaited, the rest waits.
                        tracing::warn!(%error, "publishing from the outbox failed");
                        blocked.iter_mut().for_each(|b| *b = true);
                        break;
                    }
                }
            }
            for (i, message, (ack, span), published) in pending {
                match ack.await {
                    Ok(ack) => {
                        let m = onedoor_metrics::metrics();
                        m.relay_publish.observe(published.elapsed().as_secs_f64());
                        m.relay_published.inc();
                        let personal = !message.message.personal_fields().is_empty();
                        sent.push(outbox::Sent {
                            position: message.position,
                            stored_at: personal.then_some((ack.stream, ack.sequence)),
                        });
                        queues[i].pop_front();
                    }
                    Err(error) => {
                        span.in_scope(|| tracing::warn!(%error, "no PubAck for an outbox message"));
                        blocked[i] = true;
                    }
                }
            }
            if blocked.iter().all(|b| *b) {
                break 'rounds;
            }
        }
        outcome.sent = sent.len();
        outcome.failed = queues.iter().zip(&blocked).filter(|(q, b)| **b && !q.is_empty()).count();
        outbox::remove_published(&mut tx, &sent).await?;
        tx.commit().await?;
        Ok(outcome)
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

/// 100 ms, doubling with each failure in a row, at most [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.clamp(1, 16).saturating_sub(1))).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_up_to_half_a_minute() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
