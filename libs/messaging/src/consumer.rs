//! Durable pull consumers that act on each event exactly once.
//!
//! For every message: open a transaction, record the event id in the inbox
//! (a duplicate stops here), let the handler change state in the same
//! transaction, commit, and only then ack. A crash before the ack means
//! redelivery, which the inbox turns into a no-op. Messages that queued up
//! while a process's workers were busy share one transaction (if it fails,
//! each goes through one of its own), so a busy service commits less often
//! ([`Workers`]), and the read-model rows its handlers defer are written once
//! each, just before it commits (`onedoor_event_store::deferred`). A
//! transient failure is nak'ed with a growing delay; a message that fails
//! `max_deliver` times, or fails permanently, goes to the dead-letter stream
//! with its reason.
//!
//! Shutdown stops pulling, lets every fetched message finish, then returns.

use crate::{EVENT_ID_HEADER, MessagingError, dead_letter};
use async_nats::jetstream::{self, AckKind, consumer::pull};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use onedoor_contracts::{CE_SUBJECT_HEADER, CE_TYPE_HEADER, DecodeError, EnvelopeHead, StreamEvents};
use onedoor_event_store::inbox;
use onedoor_telemetry::propagation::TraceHeaders;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

/// A durable consumer, declared in code by the service that owns it.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The service that runs it: its dead letters go to that service's own
    /// dead-letter stream.
    pub service: String,
    /// The stream to read.
    pub stream: String,
    /// Durable name: replicas of one service share it and split the work.
    pub durable: String,
    /// The name the inbox records its events under (the durable's own,
    /// unless several consumers share one: see [`ConsumerSpec::inbox`]).
    pub inbox: String,
    pub filter_subjects: Vec<String>,
    /// Longer than the slowest handling (p99), or messages are redelivered while in work.
    pub ack_wait: Duration,
    pub max_deliver: i64,
    /// Delay before the n-th retry (the last value repeats).
    pub backoff: Vec<Duration>,
    /// Messages in work at once in this process (pulled, waiting for a
    /// worker or being handled: see [`Workers`]).
    pub concurrency: usize,
}

impl ConsumerSpec {
    pub fn new(service: &str, stream: &str, durable: &str, filter_subjects: Vec<String>) -> Self {
        Self {
            service: service.to_string(),
            stream: stream.to_string(),
            durable: durable.to_string(),
            inbox: durable.to_string(),
            filter_subjects,
            ack_wait: Duration::from_secs(30),
            max_deliver: 8,
            backoff: vec![
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(60),
            ],
            concurrency: 16,
        }
    }

    /// Records handled events in the inbox under `name`: consumers that
    /// split one reading of a stream between them (one per subject) share
    /// it, and so did the one consumer they replaced, whose events are not
    /// handled twice when the new ones read the stream from its start.
    pub fn inbox(mut self, name: &str) -> Self {
        self.inbox = name.to_string();
        self
    }

    fn retry_delay(&self, delivered: i64) -> Duration {
        let i = usize::try_from(delivered.max(1) - 1).unwrap_or(0);
        self.backoff.get(i).or(self.backoff.last()).copied().unwrap_or(Duration::from_secs(1))
    }
}

/// A message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: Uuid,
    /// The CloudEvents type from the `Ce-Type` routing header (`None` if the
    /// publisher set none: the body's own `type` is used then).
    pub event_type: Option<String>,
    pub subject: String,
    pub payload: Bytes,
    /// 1 on first delivery.
    pub delivered: i64,
    pub stream_sequence: u64,
}

impl Delivery {
    /// Decodes the JSON body; a body that cannot be decoded never will be.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_slice(&self.payload).map_err(|e| HandlerError::Permanent(format!("undecodable body: {e}")))
    }

    /// The message with its personal fields opened (sealed by the publisher
    /// for the broker: `onedoor_event_store::outbox::OutboxMessage::seal`).
    /// One that does not open is dead-lettered: never stored as erased.
    pub fn opened(&self, transit: &onedoor_personal_data::Transit) -> Result<Delivery, HandlerError> {
        let event_type = match &self.event_type {
            Some(t) => t.clone(),
            None => self.json::<EnvelopeHead>()?.event_type,
        };
        let fields = onedoor_contracts::personal_fields(&event_type);
        if fields.is_empty() {
            return Ok(self.clone());
        }
        let mut envelope: serde_json::Value = self.json()?;
        transit
            .open(&mut envelope, onedoor_personal_data::PersonalFields(fields))
            .map_err(|e| HandlerError::Permanent(e.to_string()))?;
        let payload = serde_json::to_vec(&envelope).map_err(|e| HandlerError::Permanent(e.to_string()))?;
        Ok(Delivery { payload: payload.into(), ..self.clone() })
    }

    /// Decodes the message, once, into the events of its stream, routing on
    /// the `Ce-Type` header. A type or version this build does not know is
    /// [`HandlerError::UnknownEvent`]: dead-lettered for operators, never dropped.
    pub fn decode<E: StreamEvents>(&self) -> Result<E, HandlerError> {
        let event_type = match &self.event_type {
            Some(t) => t.clone(),
            None => self.json::<EnvelopeHead>()?.event_type,
        };
        E::decode(&event_type, &self.payload).map_err(|e| match e {
            DecodeError::UnknownType(t) => HandlerError::UnknownEvent(t),
            malformed @ DecodeError::Malformed { .. } => HandlerError::Permanent(malformed.to_string()),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// May succeed later (database busy, a conflict): retry with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (malformed message): dead-letter now.
    #[error("permanent: {0}")]
    Permanent(String),
    /// An event type or version this build does not know (a newer publisher
    /// during a rolling upgrade): dead-letter now, so operators replay it
    /// once this service is upgraded.
    #[error("unknown_event_version: {0}")]
    UnknownEvent(String),
}

impl From<onedoor_event_store::StoreError> for HandlerError {
    fn from(e: onedoor_event_store::StoreError) -> Self {
        match e {
            onedoor_event_store::StoreError::Codec(e) => Self::Permanent(e.to_string()),
            other => Self::Transient(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        Self::Transient(e.to_string())
    }
}

/// What a service does with a message, inside the transaction that also
/// records it in the inbox. Must not ack, commit or publish by itself:
/// integration events it causes go to the outbox on `tx`.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        tx: &mut PgConnection,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Declares the durable consumer described by `spec` (creating or updating it).
pub async fn ensure_consumer(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
) -> Result<jetstream::consumer::Consumer<pull::Config>, MessagingError> {
    let stream = js.get_stream(&spec.stream).await.map_err(MessagingError::js)?;
    let (filter_subject, filter_subjects) = match spec.filter_subjects.as_slice() {
        [one] => (one.clone(), Vec::new()),
        many => (String::new(), many.to_vec()),
    };
    stream
        .create_consumer(pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subject,
            filter_subjects,
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_deliver: spec.max_deliver,
            ..Default::default()
        })
        .await
        .map_err(MessagingError::js)
}

/// The transactions a process handles its consumers' messages in, shared
/// by all its consumers: each worker takes every message waiting for it when
/// it comes free and handles them in one transaction ([`handle_together`]).
/// Under light load that is one message at a time, as before; under load a
/// transaction carries many, and its fixed cost (its begin, its inbox
/// statement, its commit and the relay's wake-up after it) is paid once.
///
/// A case's messages always go to the same worker, whichever consumer
/// pulled them: one case's messages are handled in the order they arrived,
/// and two workers never wait on each other's cases (the departments'
/// reports on one case, arriving together on four consumers, would
/// otherwise queue behind whole transactions of other cases).
#[derive(Debug, Clone)]
pub struct Workers {
    queues: Arc<[mpsc::UnboundedSender<Pulled>]>,
    next: Arc<std::sync::atomic::AtomicUsize>,
}

impl Workers {
    /// Starts `n` workers on `pool`'s connections (into `tasks`). They stop
    /// once every clone of the returned handle is dropped (each consumer's
    /// [`run_on`] holds one until it stops) and what they were given is handled.
    pub fn start(js: &jetstream::Context, pool: &PgPool, n: usize, tasks: &mut JoinSet<()>) -> Self {
        let queues: Vec<_> = (0..n.max(1))
            .map(|_| {
                let (queue, mut waiting) = mpsc::unbounded_channel::<Pulled>();
                let (js, pool) = (js.clone(), pool.clone());
                tasks.spawn(async move {
                    while let Some(first) = waiting.recv().await {
                        let mut group = vec![first];
                        while let Ok(more) = waiting.try_recv() {
                            group.push(more);
                        }
                        process(&js, &pool, group).await;
                    }
                });
                queue
            })
            .collect();
        Self { queues: queues.into(), next: Default::default() }
    }

    /// Hands `pulled` to the worker of its case (any worker, in turn, if its case is not known).
    fn hand(&self, pulled: Pulled) {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let n = self.queues.len();
        let i = match &pulled.case {
            Some(case) => {
                BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(case) as usize % n
            }
            None => self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n,
        };
        // A worker stops once every handle is gone (not yet: this is one),
        // or if it panicked outside a handler (which would be a bug here):
        // the service host then stops the service, to be restarted.
        if self.queues[i].send(pulled).is_err() {
            tracing::error!(worker = i, "a consumer worker has stopped; its cases' messages wait for a restart");
        }
    }
}

/// Consumes until `shutdown` with one worker of its own (tools and tests; a
/// service's consumers share its workers: [`run_on`]); then finishes what
/// it pulled and returns.
pub async fn run<H: Handler>(
    js: jetstream::Context,
    pool: PgPool,
    spec: ConsumerSpec,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<(), MessagingError> {
    let mut tasks = JoinSet::new();
    let workers = Workers::start(&js, &pool, 1, &mut tasks);
    let pulled = run_on(js, spec, handler, workers, shutdown).await;
    while tasks.join_next().await.is_some() {}
    pulled
}

/// Pulls the consumer's messages for `workers` until `shutdown`; every
/// message pulled is handed on, so none sits out its ack_wait after a restart.
pub async fn run_on<H: Handler>(
    js: jetstream::Context,
    spec: ConsumerSpec,
    handler: Arc<H>,
    workers: Workers,
    shutdown: CancellationToken,
) -> Result<(), MessagingError> {
    let spec = Arc::new(spec);
    let handler: Arc<dyn AnyHandler> = handler;
    let permits = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    'outer: while !shutdown.is_cancelled() {
        // Declared on every (re)start of the loop, retrying while NATS is away.
        let declared = async {
            dead_letter::ensure_stream(&js, &spec.service).await?;
            ensure_consumer(&js, &spec).await
        };
        let consumer = match declared.await {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(%error, durable = %spec.durable, "declaring the consumer failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            if shutdown.is_cancelled() {
                break 'outer;
            }
            // Short pull requests rather than a standing subscription: every
            // message fetched is handled, even when shutdown comes mid-batch.
            let wanted = permits.available_permits().max(1);
            let mut batch = match consumer.batch().max_messages(wanted).expires(Duration::from_secs(1)).messages().await
            {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, durable = %spec.durable, "pulling failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'outer,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'outer,
                    }
                }
            };
            while let Some(next) = batch.next().await {
                match next {
                    Ok(message) => {
                        let permit = permits.clone().acquire_owned().await.expect("semaphore never closes");
                        workers.hand(Pulled::new(&spec, &handler, message, permit));
                    }
                    Err(error) => {
                        tracing::debug!(%error, durable = %spec.durable, "pull request ended early");
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

fn event_id_of(message: &jetstream::Message) -> Option<Uuid> {
    let headers = message.headers.as_ref()?;
    headers
        .get(EVENT_ID_HEADER)
        .or_else(|| headers.get(async_nats::header::NATS_MESSAGE_ID))
        .and_then(|v| Uuid::parse_str(v.as_str()).ok())
}

/// A message pulled and waiting for its worker, with its span (begun when
/// it arrived, in the trace its headers name), the consumer that pulled it
/// and its place among that consumer's messages in work (released once it
/// is acked, retried or dead-lettered).
struct Pulled {
    message: jetstream::Message,
    /// `None` if the message carries no event id (it is dead-lettered).
    delivery: Option<Delivery>,
    /// The case it is about (`Ce-Subject`): `None` from a publisher of an
    /// earlier release, and such a message is handled alone.
    case: Option<String>,
    spec: Arc<ConsumerSpec>,
    handler: Arc<dyn AnyHandler>,
    span: tracing::Span,
    started: std::time::Instant,
    _permit: OwnedSemaphorePermit,
}

impl Pulled {
    fn new(
        spec: &Arc<ConsumerSpec>,
        handler: &Arc<dyn AnyHandler>,
        message: jetstream::Message,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        let (delivered, stream_sequence) = message.info().map(|i| (i.delivered, i.stream_sequence)).unwrap_or((1, 0));
        let subject = message.subject.to_string();
        let event_id = event_id_of(&message);
        let span = tracing::info_span!(
            "process",
            otel.name = format!("process {subject}"),
            otel.kind = "consumer",
            messaging.system = "nats",
            messaging.operation.type = "process",
            messaging.destination.name = %subject,
            messaging.consumer.group.name = %spec.durable,
            messaging.message.id = event_id.map(tracing::field::display),
            messaging.message.delivery_count = delivered,
            messaging.batch.message_count = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let _ = span.set_parent(TraceHeaders::from_nats(message.headers.as_ref()).to_context());
        let header = |name| message.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
        let delivery = event_id.map(|event_id| Delivery {
            event_id,
            event_type: header(CE_TYPE_HEADER),
            subject,
            payload: message.payload.clone(),
            delivered,
            stream_sequence,
        });
        let case = header(CE_SUBJECT_HEADER);
        Self {
            delivery,
            case,
            spec: spec.clone(),
            handler: handler.clone(),
            span,
            started: std::time::Instant::now(),
            _permit: permit,
            message,
        }
    }

    /// May share a transaction: a first delivery whose case is known. A
    /// message that failed before is handled alone, so that it cannot fail
    /// the others again.
    fn groupable(&self) -> bool {
        self.case.is_some() && self.delivery.as_ref().is_some_and(|d| d.delivered == 1)
    }

    fn work(&self) -> Option<Work<'_>> {
        Some(Work {
            delivery: self.delivery.as_ref()?,
            span: &self.span,
            inbox: &self.spec.inbox,
            handler: self.handler.as_ref(),
        })
    }
}

/// Handles a worker's group of pulled messages: those that may share a
/// transaction together (in the order of their cases), the rest alone, and
/// all of them again one by one if the shared transaction fails (which one
/// failed, and whether it would fail alone, is only known that way).
async fn process(js: &jetstream::Context, pool: &PgPool, group: Vec<Pulled>) {
    let (mut together, mut alone): (Vec<_>, Vec<_>) = group.into_iter().partition(Pulled::groupable);
    if together.len() > 1 {
        // One case's messages keep their order.
        together.sort_by(|a, b| a.case.cmp(&b.case));
        let count = together.len();
        let work: Vec<_> = together.iter().filter_map(Pulled::work).collect();
        // Rows the handlers write about one case several times are written once, at the end.
        match onedoor_event_store::deferred::scope(handle_together(pool, &work)).await {
            Ok(outcomes) => {
                for (pulled, outcome) in together.into_iter().zip(outcomes) {
                    pulled.span.record("messaging.batch.message_count", count);
                    finish(js, pulled, Ok(outcome)).await;
                }
            }
            Err(error) => {
                tracing::debug!(%error, count, "a shared transaction failed; handling its messages one by one");
                alone.extend(together);
            }
        }
    } else {
        alone.extend(together);
    }
    for pulled in alone {
        let result = match pulled.work() {
            None => Err(HandlerError::Permanent("message has no event id header".into())),
            Some(work) => handle_together(pool, &[work]).await.map(|outcomes| outcomes[0]),
        };
        finish(js, pulled, result).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Duplicate,
}

/// Acks what was handled, retries what may succeed later, dead-letters the rest.
async fn finish(js: &jetstream::Context, pulled: Pulled, result: Result<Outcome, HandlerError>) {
    let Pulled { message, span, started, spec, .. } = pulled;
    let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
    let outcome = async {
        let span = tracing::Span::current();
        match result {
            Ok(outcome) => {
                let outcome = if outcome == Outcome::Done { "handled" } else { "duplicate" };
                span.record("outcome", outcome);
                if let Err(error) = message.ack().await {
                    // Committed already: a redelivery will meet the inbox.
                    tracing::warn!(%error, "ack failed after commit");
                }
                outcome
            }
            Err(HandlerError::Transient(reason)) if delivered < spec.max_deliver => {
                span.record("outcome", "retry");
                let delay = spec.retry_delay(delivered);
                tracing::warn!(%reason, delivered, delay_ms = delay.as_millis() as u64, "handling failed; will retry");
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                "retry"
            }
            Err(error) => {
                span.record("outcome", "dead_lettered");
                let reason = error.to_string();
                tracing::error!(%reason, delivered, "message dead-lettered");
                match dead_letter::send(js, &spec.service, &spec.durable, &message, &reason, delivered).await {
                    Ok(()) => {
                        let _ = message.ack_with(AckKind::Term).await;
                    }
                    Err(error) => {
                        // Keep it in the stream rather than lose it.
                        tracing::error!(%error, "dead-lettering failed; message will be redelivered");
                        let _ = message.ack_with(AckKind::Nak(Some(spec.retry_delay(delivered)))).await;
                    }
                }
                "dead_lettered"
            }
        }
    }
    .instrument(span)
    .await;
    onedoor_metrics::metrics().message(&spec.durable, outcome, started.elapsed());
}

/// [`Handler`] as an object, so that messages of consumers with different
/// handlers share a worker's transaction.
trait AnyHandler: Send + Sync {
    fn handle_any<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        delivery: &'a Delivery,
    ) -> futures::future::BoxFuture<'a, Result<(), HandlerError>>;
}

impl<H: Handler> AnyHandler for H {
    fn handle_any<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        delivery: &'a Delivery,
    ) -> futures::future::BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.handle(tx, delivery))
    }
}

/// One message to handle: its delivery, the span to handle it in, and its
/// consumer's inbox and handler.
struct Work<'a> {
    delivery: &'a Delivery,
    span: &'a tracing::Span,
    inbox: &'a str,
    handler: &'a dyn AnyHandler,
}

/// Handles `work` in one transaction: records every event id in its
/// consumer's inbox (one statement), lets each handler act on the ones seen
/// for the first time, in order, then commits. Any failure rolls back all
/// of them. A handler that panics (a bug, an overflow) fails like any
/// other: the message is retried and dead-lettered after `max_deliver`,
/// never dropped.
async fn handle_together(pool: &PgPool, work: &[Work<'_>]) -> Result<Vec<Outcome>, HandlerError> {
    std::panic::AssertUnwindSafe(async {
        let mut tx = pool.begin().await?;
        let entries: Vec<(&str, Uuid)> = work.iter().map(|w| (w.inbox, w.delivery.event_id)).collect();
        let fresh = inbox::record_all(&mut tx, &entries).await?;
        let mut outcomes = Vec::with_capacity(work.len());
        for (w, fresh) in work.iter().zip(fresh) {
            if fresh {
                w.handler.handle_any(&mut tx, w.delivery).instrument(w.span.clone()).await?;
                outcomes.push(Outcome::Done);
            } else {
                outcomes.push(Outcome::Duplicate);
            }
        }
        if outcomes.contains(&Outcome::Done) {
            onedoor_event_store::deferred::flush(&mut tx).await?;
            tx.commit().await?;
            onedoor_event_store::outbox::committed();
        } else {
            tx.rollback().await?;
        }
        Ok(outcomes)
    })
    .catch_unwind()
    .await
    .unwrap_or_else(|_| Err(HandlerError::Transient("the handler panicked".into())))
}

/// What an operator's replay of a dead letter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// The handler took it; the dead letter is gone.
    Handled,
    /// Its event had been handled after all (the inbox knew it); the dead letter is gone.
    AlreadyHandled,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no dead letter {0}")]
    NotFound(u64),
    /// The dead letter is another consumer's: only its own service replays it.
    #[error("dead letter {sequence} belongs to consumer {consumer}")]
    OtherConsumer { sequence: u64, consumer: String },
    /// It failed again; the dead letter stays for the next attempt.
    #[error("the replay failed again: {0}")]
    Failed(HandlerError),
    #[error(transparent)]
    Messaging(#[from] MessagingError),
}

/// Hands dead letter `sequence` of the consumer `spec` to `handler` again, in
/// a transaction with the inbox as on first delivery (so an event handled
/// since changes nothing), and removes it from the dead-letter stream once
/// that committed. Nothing is published: the replay happens in the service
/// that owns the consumer. If it fails again the dead letter stays.
pub async fn replay<H: Handler>(
    js: &jetstream::Context,
    pool: &PgPool,
    spec: &ConsumerSpec,
    handler: &H,
    sequence: u64,
) -> Result<Replayed, ReplayError> {
    let Some(fetched) = dead_letter::fetch(js, &spec.service, sequence).await? else {
        return Err(ReplayError::NotFound(sequence));
    };
    replay_fetched(js, pool, spec, handler, fetched).await
}

/// [`replay`] of a dead letter already read (the operators' endpoint reads
/// it to find its consumer).
pub async fn replay_fetched<H: Handler>(
    js: &jetstream::Context,
    pool: &PgPool,
    spec: &ConsumerSpec,
    handler: &H,
    fetched: dead_letter::Fetched,
) -> Result<Replayed, ReplayError> {
    let durable = spec.durable.as_str();
    let dead_letter::Fetched { letter, delivery, headers } = fetched;
    let sequence = letter.sequence;
    if letter.consumer != durable {
        return Err(ReplayError::OtherConsumer { sequence, consumer: letter.consumer });
    }
    let span = tracing::info_span!(
        "replay dead letter",
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.destination.name = %delivery.subject,
        messaging.consumer.group.name = %durable,
        messaging.message.id = %delivery.event_id,
    );
    let _ = span.set_parent(TraceHeaders::from_nats(Some(&headers)).to_context());
    let started = std::time::Instant::now();
    let work = Work { delivery: &delivery, span: &span, inbox: &spec.inbox, handler };
    let handled = handle_together(pool, &[work]).await.map(|outcomes| outcomes[0]);
    let outcome = match handled {
        Ok(Outcome::Done) => Replayed::Handled,
        Ok(Outcome::Duplicate) => Replayed::AlreadyHandled,
        Err(error) => {
            onedoor_metrics::metrics().message(durable, "replay_failed", started.elapsed());
            return Err(ReplayError::Failed(error));
        }
    };
    onedoor_metrics::metrics().message(durable, "replayed", started.elapsed());
    dead_letter::remove(js, &spec.service, sequence).await?;
    Ok(outcome)
}
