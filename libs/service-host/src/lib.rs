//! How every OneDoor service runs: connect to its database and NATS, apply
//! migrations, run its outbox relay and consumers beside its HTTP API, and on
//! SIGTERM stop taking requests, finish what is in flight, and flush traces.
//!
//! A service is a [`Service`]: its name, its migrations, and how it
//! assembles its relay, consumers and API on a connected [`Host`]. This
//! crate owns the rest of the lifecycle ([`App`], [`main`]), so all five
//! start, stop and fail alike, and each `main.rs` only names its parts.

pub mod operations;
pub mod scrape;

pub use scrape::{Business, BusinessGauge};

use async_nats::jetstream;
use onedoor_messaging::consumer::{self, ConsumerSpec, Handler};
use onedoor_messaging::relay::{OutboxRelay, RelayConfig};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Settings every service reads from its environment.
#[derive(Debug, Clone, clap::Args)]
pub struct HostConfig {
    /// PostgreSQL database of this service.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The service's own broker user: its nkey seed (`SU...`). Required
    /// where `ONEDOOR_ENV=production`; the broker lets each service publish
    /// on its own subjects only (ADR 0014).
    #[arg(long, env = "ONEDOOR_NATS_NKEY", hide_env_values = true)]
    pub nats_nkey: Option<String>,
    /// The CA that signed the broker's certificate; TLS is then required.
    #[arg(long, env = "ONEDOOR_NATS_CA_FILE")]
    pub nats_ca_file: Option<std::path::PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "ONEDOOR_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Connections for the HTTP API.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub max_connections: u32,
    /// Connections for consumers and the outbox relay, apart from the API's,
    /// so requests never queue behind background work (and the reverse).
    /// The consumers handle their messages in as many transactions at once,
    /// less two.
    #[arg(long, env = "DATABASE_WORK_CONNECTIONS", default_value_t = 10)]
    pub work_connections: u32,
    /// Seconds a request waits for a database connection before it is
    /// answered 503 with `Retry-After`.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECONDS", default_value_t = 5)]
    pub acquire_timeout_seconds: u64,
    /// HS256 secret (at least 32 bytes) for development tokens; refused
    /// where `ONEDOOR_ENV=production`.
    #[arg(long, env = "ONEDOOR_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The identity provider's published keys (JWK Set URL; RS256, ES256).
    #[arg(long, env = "ONEDOOR_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// RS256 public key (PEM) of the identity provider, where it publishes no JWK Set.
    #[arg(long, env = "ONEDOOR_JWT_PUBLIC_KEY", hide_env_values = true)]
    pub jwt_public_key: Option<String>,
    #[arg(long, env = "ONEDOOR_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<std::path::PathBuf>,
    /// The identity provider's issuer (`iss`), required with its keys.
    #[arg(long, env = "ONEDOOR_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The audience tokens must name (`aud`).
    #[arg(long, env = "ONEDOOR_JWT_AUDIENCE", default_value = onedoor_http_kit::auth::DEFAULT_AUDIENCE)]
    pub jwt_audience: String,
    /// The audit chain's key (at least 32 bytes), kept outside the
    /// database; required where `ONEDOOR_ENV=production`.
    #[arg(long, env = "ONEDOOR_AUDIT_KEY", hide_env_values = true)]
    pub audit_key: Option<String>,
    /// Keys retired from sealing the audit chain (comma-separated): they
    /// verify the entries they sealed. Rotation: the old key moves here,
    /// a new one becomes `ONEDOOR_AUDIT_KEY`.
    #[arg(long, env = "ONEDOOR_AUDIT_RETIRED_KEYS", hide_env_values = true)]
    pub audit_retired_keys: Option<String>,
    /// The key-encryption key that wraps every household's data key: 32
    /// random bytes in base64 (`cargo xtask kek`), from a secret, kept
    /// outside the database; this or `ONEDOOR_KEK_FILE` is required where
    /// `ONEDOOR_ENV=production`. Without either, the development KEK.
    #[arg(long, env = "ONEDOOR_KEK", hide_env_values = true)]
    pub kek: Option<String>,
    /// A file holding the key-encryption key (as `ONEDOOR_KEK`).
    #[arg(long, env = "ONEDOOR_KEK_FILE")]
    pub kek_file: Option<std::path::PathBuf>,
    /// `production` refuses development tokens and a missing audit key at start.
    #[arg(long, env = "ONEDOOR_ENV", default_value = "development")]
    pub environment: String,
    /// Apply the database migrations and exit (an init container or Job runs
    /// this before a new version serves).
    #[arg(long, env = "ONEDOOR_MIGRATE_ONLY")]
    pub migrate_only: bool,
    /// Apply the migrations when the service starts (the default). Off
    /// where the service connects through PgBouncer in transaction mode:
    /// migrations hold a session-level advisory lock, which a transaction
    /// pooler cannot keep, so an init container applies them on a direct
    /// connection instead (k8s/base/services), and the service refuses to
    /// start while any of its version's migrations is missing.
    #[arg(long, env = "ONEDOOR_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,
}

impl HostConfig {
    fn production(&self) -> bool {
        self.environment == "production"
    }

    /// The audit chain's key this configuration asks for.
    pub fn sealing_key(&self) -> Result<onedoor_audit::chain::SealingKey, onedoor_audit::chain::SealingKeyError> {
        onedoor_audit::chain::SealingKey::configure(
            self.audit_key.as_deref(),
            self.audit_retired_keys.as_deref(),
            self.production(),
        )
    }

    /// The key-encryption key this configuration asks for.
    pub fn kek(&self) -> Result<Arc<dyn onedoor_personal_data::Kek>, HostError> {
        use onedoor_personal_data::{FileKek, KekError};
        match (&self.kek, &self.kek_file) {
            (Some(text), _) => Ok(Arc::new(FileKek::from_base64(text).map_err(KekError::Value)?)),
            (None, Some(path)) => Ok(Arc::new(FileKek::from_file(path)?)),
            (None, None) if self.production() => Err(HostError::NoKek),
            (None, None) => Ok(Arc::new(FileKek::development())),
        }
    }

    /// Who the service is on the broker.
    pub fn broker_credentials(&self, service: &str) -> Result<onedoor_messaging::Credentials, HostError> {
        if self.production() && self.nats_nkey.is_none() {
            return Err(HostError::BrokerUser);
        }
        Ok(onedoor_messaging::Credentials {
            nkey_seed: self.nats_nkey.clone(),
            inbox_prefix: Some(onedoor_broker_access::inbox_prefix(service)),
            ca_file: self.nats_ca_file.clone(),
        })
    }

    /// The token verifier this configuration asks for.
    pub fn authenticator(&self) -> Result<onedoor_http_kit::Authenticator, onedoor_http_kit::auth::AuthConfigError> {
        onedoor_http_kit::Authenticator::configure(&onedoor_http_kit::auth::AuthSettings {
            jwks_url: self.jwks_url.as_deref(),
            public_key_pem: self.jwt_public_key.as_deref(),
            public_key_file: self.jwt_public_key_file.as_deref(),
            issuer: self.jwt_issuer.as_deref(),
            audience: Some(&self.jwt_audience),
            secret: self.jwt_secret.as_deref(),
            production: self.production(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Auth(#[from] onedoor_http_kit::auth::AuthConfigError),
    #[error(transparent)]
    AuditKey(#[from] onedoor_audit::chain::SealingKeyError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] onedoor_event_store::StoreError),
    #[error(transparent)]
    Messaging(#[from] onedoor_messaging::MessagingError),
    #[error("ONEDOOR_ENV=production needs the service's broker user (ONEDOOR_NATS_NKEY)")]
    BrokerUser,
    #[error("ONEDOOR_ENV=production needs the key-encryption key (ONEDOOR_KEK or ONEDOOR_KEK_FILE)")]
    NoKek,
    #[error(transparent)]
    Kek(#[from] onedoor_personal_data::KekError),
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "background work (a consumer, the relay, a worker) ended while the service ran ({0}); it stopped to be restarted"
    )]
    BackgroundWorkEnded(String),
    #[error(
        "the database lacks migrations {0:?} of this version: apply them first (`<service> --migrate-only`, \
         the init container), or let the service migrate (ONEDOOR_MIGRATE_ON_START=true)"
    )]
    NotMigrated(Vec<i64>),
}

/// The service's database pool, with the event store's migrations applied
/// (or, unless `migrate`, found applied: see [`ensure_migrated`]). Waits up
/// to a minute for PostgreSQL to accept connections (it may start after the
/// service).
pub async fn connect_database(config: &HostConfig, migrate: bool) -> Result<PgPool, HostError> {
    let options = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(config.acquire_timeout_seconds));
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    let pool = loop {
        match options.clone().connect(&config.database_url).await {
            Ok(pool) => break pool,
            Err(error) if tokio::time::Instant::now() < give_up => {
                tracing::warn!(%error, "PostgreSQL not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error.into()),
        }
    };
    ensure_migrated(&pool, onedoor_event_store::migrator(), migrate).await?;
    ensure_migrated(&pool, onedoor_audit::migrator(), migrate).await?;
    ensure_migrated(&pool, onedoor_personal_data::migrator(), migrate).await?;
    Ok(pool)
}

/// Applies `migrator`'s migrations if `migrate`; otherwise (a service
/// behind a transaction pooler, see [`HostConfig::migrate_on_start`]) makes
/// sure they were applied, so that a version never serves on a schema older
/// than its own.
pub async fn ensure_migrated(pool: &PgPool, migrator: Migrator, migrate: bool) -> Result<(), HostError> {
    if migrate {
        return Ok(onedoor_event_store::apply_migrations(pool, migrator).await?);
    }
    let pending = onedoor_event_store::pending_migrations(pool, &migrator).await?;
    if pending.is_empty() { Ok(()) } else { Err(HostError::NotMigrated(pending)) }
}

/// A service's connections, and the background work running beside its API.
#[derive(Debug)]
pub struct Host {
    /// The API's connections.
    pub pool: PgPool,
    /// The consumers' and relay's connections (see [`HostConfig::work_connections`]).
    pub work_pool: PgPool,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    /// The households' data keys (`onedoor_personal_data::Keyring`).
    pub keyring: Arc<onedoor_personal_data::Keyring>,
    /// The service's name (its broker user, its dead-letter stream).
    service: String,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    consumers: Vec<(String, String)>,
    /// The transactions the consumers' messages are handled in, started with the first consumer.
    workers: Option<consumer::Workers>,
    /// How many: two fewer than the work connections (the relay and the
    /// background tasks keep theirs), at least one.
    worker_count: usize,
    replayers: operations::Replayers,
    streams: Vec<String>,
    business: Vec<BusinessGauge>,
    audit_key: onedoor_audit::chain::SealingKey,
}

impl Host {
    /// Connects (waiting for PostgreSQL up to a minute; NATS connects and
    /// reconnects in the background) and applies the event store's migrations.
    pub async fn connect(service: &str, config: &HostConfig) -> Result<Self, HostError> {
        let audit_key = config.sealing_key()?;
        let kek = config.kek()?;
        let broker = config.broker_credentials(service)?;
        let pool = connect_database(config, config.migrate_on_start).await?;
        // Background work may wait its turn for a connection; it is never answered 503.
        let work_pool = PgPoolOptions::new()
            .max_connections(config.work_connections.max(1))
            .acquire_timeout(Duration::from_secs(60))
            .connect(&config.database_url)
            .await?;
        let keyring = Arc::new(onedoor_personal_data::Keyring::new(kek));
        let nats = onedoor_messaging::connect(&config.nats_url, service, &broker).await?;
        let js = jetstream::new(nats.clone());
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tasks.spawn(onedoor_audit::chain::seal_continuously(work_pool.clone(), audit_key.clone(), shutdown.clone()));
        Ok(Self {
            pool,
            work_pool,
            nats,
            js,
            keyring,
            service: service.to_string(),
            shutdown,
            tasks,
            audit_key,
            consumers: Vec::new(),
            workers: None,
            worker_count: (config.work_connections as usize).saturating_sub(2).max(1),
            replayers: Default::default(),
            streams: vec![onedoor_contracts::dead_letter_stream(service)],
            business: Vec::new(),
        })
    }

    /// Declares the service's own stream and starts publishing its outbox,
    /// in the background: while NATS is away the service starts and serves,
    /// the outbox keeps what is accepted, and the stream is declared and the
    /// outbox sent when the broker returns.
    pub fn publish_outbox(&mut self, stream: &str, subjects: Vec<String>) {
        self.streams.push(stream.to_string());
        let declared = self.declare_stream(stream, subjects);
        let relay = OutboxRelay::new(self.work_pool.clone(), self.js.clone(), RelayConfig::default());
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            if declared.await {
                relay.run(shutdown).await;
            }
        });
        // An erased household's messages are taken off the broker (ADR 0019);
        // where each message went is kept while the stream keeps it.
        let (js, pool, service) = (self.js.clone(), self.work_pool.clone(), self.service.clone());
        self.tasks.spawn(onedoor_messaging::erasure::run(js, pool, service, self.shutdown.clone()));
        let keep = onedoor_messaging::StreamLimits::events().max_age;
        let forget = onedoor_event_store::outbox::forget_published_older_than(keep);
        self.housekeeping("places of messages aged out of the stream", Duration::from_secs(3600), forget);
    }

    /// Declares a stream, retrying until NATS answers; the future resolves
    /// `true` once it is declared, `false` if the service stopped first.
    pub fn declare_stream(&mut self, stream: &str, subjects: Vec<String>) -> impl Future<Output = bool> + use<> {
        let (js, shutdown, stream) = (self.js.clone(), self.shutdown.clone(), stream.to_string());
        async move {
            loop {
                match onedoor_messaging::ensure_stream(&js, &stream, subjects.clone()).await {
                    Ok(()) => return true,
                    Err(error) => tracing::warn!(%error, stream, "declaring the stream failed; retrying"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }

    /// Starts a durable consumer; it waits (retrying) for its stream to exist.
    pub fn consume<H: Handler>(&mut self, spec: ConsumerSpec, handler: Arc<H>) {
        assert_eq!(spec.service, self.service, "a service runs its own consumers");
        self.consumers.push((spec.stream.clone(), spec.durable.clone()));
        let (js, pool, replayed, replaying) =
            (self.js.clone(), self.pool.clone(), Arc::new(spec.clone()), handler.clone());
        let replayer: operations::Replayer = Arc::new(move |fetched| {
            let (js, pool, spec, handler) = (js.clone(), pool.clone(), replayed.clone(), replaying.clone());
            Box::pin(async move { consumer::replay_fetched(&js, &pool, &spec, handler.as_ref(), fetched).await })
        });
        self.replayers.0.insert(spec.durable.clone(), replayer);
        let workers = match &self.workers {
            Some(workers) => workers.clone(),
            None => {
                let workers = consumer::Workers::start(&self.js, &self.work_pool, self.worker_count, &mut self.tasks);
                self.workers.insert(workers).clone()
            }
        };
        let (js, shutdown) = (self.js.clone(), self.shutdown.clone());
        self.tasks.spawn(async move {
            if let Err(error) = consumer::run_on(js, spec, handler, workers, shutdown).await {
                tracing::error!(%error, "consumer stopped");
            }
        });
    }

    /// Runs `task` in the background until the service stops (it is handed
    /// the shutdown signal, and the service waits for it to return).
    pub fn background<F>(&mut self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task(self.shutdown.clone()));
    }

    /// Runs `sql` (a bounded clean-up: retention) on the work connections
    /// when the service starts and every `every` after, until it stops.
    pub fn housekeeping(&mut self, what: &'static str, every: Duration, sql: impl Into<String>) {
        let (pool, shutdown, sql) = (self.work_pool.clone(), self.shutdown.clone(), sql.into());
        self.tasks.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                match sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).execute(&pool).await {
                    Ok(done) => tracing::info!(what, rows = done.rows_affected(), "housekeeping done"),
                    Err(error) => tracing::warn!(%error, what, "housekeeping failed; trying again later"),
                }
            }
        });
    }

    /// A business gauge on `/metrics`, counted by `sql` (rows of label value
    /// and count) in the service's database at most once a minute.
    pub fn business_gauge(&mut self, gauge: Business, sql: impl Into<String>) {
        self.business.push(BusinessGauge { gauge, sql: sql.into() });
    }

    /// `GET /metrics` for this service (see [`scrape`]).
    pub fn metrics(&self) -> axum::Router {
        scrape::router(scrape::Scrape {
            pools: vec![("api", self.pool.clone()), ("work", self.work_pool.clone())],
            js: self.js.clone(),
            consumers: self.consumers.clone(),
            streams: self.streams.clone(),
            business: self.business.clone(),
            last_business: std::sync::Mutex::new(None),
        })
    }

    /// The operators' endpoints for this service's consumers and relay.
    pub fn operations(&self) -> (axum::Router, utoipa::openapi::OpenApi) {
        operations::router(operations::Operations {
            service: self.service.clone(),
            js: self.js.clone(),
            pool: self.pool.clone(),
            consumers: self.consumers.clone(),
            replayers: self.replayers.clone(),
        })
    }

    pub fn readiness(&self) -> onedoor_http_kit::health::Readiness {
        onedoor_http_kit::health::Readiness { postgres: Some(self.pool.clone()), nats: Some(self.nats.clone()) }
    }

    /// Serves `router` until `stop` resolves; then drains requests, consumers
    /// and the relay, in that order. Every step is bounded (see
    /// [`SHUTDOWN_BOUND`]): what has not finished in time is aborted, so a
    /// broker or database that is away cannot hold the process past an
    /// orchestrator's grace period.
    pub async fn serve(
        mut self,
        listener: tokio::net::TcpListener,
        router: axum::Router,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HostError> {
        let stopping = CancellationToken::new();
        let signal = stopping.clone();
        // Set when background work ended before it was asked to stop.
        let broken = CancellationToken::new();
        let broken_signal = broken.clone();
        let router = router.layer(axum::middleware::from_fn(wake_relay_after_writes));
        let server = onedoor_http_kit::serve(listener, router, async move {
            tokio::select! {
                _ = stop => {}
                _ = broken_signal.cancelled() => {}
            }
            signal.cancel();
        });
        let mut serving = std::pin::pin!(async {
            tokio::select! {
                served = server => served,
                _ = async { stopping.cancelled().await; tokio::time::sleep(HTTP_DRAIN).await } => {
                    tracing::warn!("requests still in flight after the drain period; stopping anyway");
                    Ok(())
                }
            }
        });
        // Every background task runs until the service stops: one that ends
        // sooner (a worker that panicked outside a handler, say) would leave
        // a process that answers its probes but no longer consumes, relays or
        // seals. It stops instead, with an error, and its orchestrator
        // starts it afresh; nothing is lost (what it pulled is redelivered).
        let mut ended_early = None;
        let served = tokio::select! {
            served = &mut serving => served,
            Some(ended) = self.tasks.join_next() => {
                let why = match ended {
                    Ok(()) => "returned".to_string(),
                    Err(error) if error.is_panic() => "panicked".to_string(),
                    Err(error) => error.to_string(),
                };
                tracing::error!(why, "background work ended while the service was running; stopping so that it is restarted");
                ended_early = Some(why);
                broken.cancel();
                serving.await
            }
        };
        self.shutdown.cancel();
        // The workers stop once the consumers stopped and this handle is gone.
        self.workers = None;
        let drained = tokio::time::timeout(TASK_DRAIN, async { while self.tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!("background work did not finish in time; aborting it");
            self.tasks.abort_all();
            let _ =
                tokio::time::timeout(Duration::from_secs(1), async { while self.tasks.join_next().await.is_some() {} })
                    .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.nats.flush()).await;
        let closed = async { tokio::join!(self.pool.close(), self.work_pool.close()) };
        if tokio::time::timeout(Duration::from_secs(3), closed).await.is_err() {
            tracing::warn!("database connections did not close in time");
        }
        served?;
        match ended_early {
            Some(why) => Err(HostError::BackgroundWorkEnded(why)),
            None => Ok(()),
        }
    }
}

/// After a successful request that may have changed state (and so
/// committed outbox messages before answering), wakes the relay instead of leaving the
/// messages to its fallback poll.
async fn wake_relay_after_writes(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let writes = !request.method().is_safe();
    let response = next.run(request).await;
    // A refused request committed nothing to announce.
    if writes && response.status().is_success() {
        onedoor_event_store::outbox::committed();
    }
    response
}

/// How long requests in flight may finish after SIGTERM.
const HTTP_DRAIN: Duration = Duration::from_secs(8);
/// How long consumers and the relay may finish what they hold.
const TASK_DRAIN: Duration = Duration::from_secs(10);
/// The longest a service takes to exit after SIGTERM, whatever is away:
/// the drains, one second for aborted tasks, two to flush NATS and three to
/// close the pool. Below Kubernetes' default grace period of 30 seconds.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(24);

/// What a service plugs into the host.
pub trait Service: Send + 'static {
    /// Its name in logs, traces and the NATS connection (`intake`, `medical-aid`).
    fn name(&self) -> String;
    /// The service's own migrations (the host runs them beside the event store's).
    fn migrator(&self) -> Migrator;
    /// What an upgrade does to the data earlier releases stored, after the
    /// migrations (sealing what they stored in the clear, re-keying lookup
    /// columns): run by `--migrate-only`, the init container, which no probe
    /// hurries through a long first pass, and again at every start, where it
    /// reads what was written since the last pass. Safe to repeat, and to run on several
    /// replicas at once.
    fn upgrade(
        &self,
        pool: &PgPool,
        keyring: &onedoor_personal_data::Keyring,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        let _ = (pool, keyring);
        async { Ok(()) }
    }
    /// Declares the service's streams, starts its outbox relay and consumers
    /// on `host`, and returns its API with the API's OpenAPI document.
    fn assemble(
        self,
        host: &mut Host,
    ) -> impl Future<Output = anyhow::Result<(axum::Router, utoipa::openapi::OpenApi)>> + Send;
}

/// A service, connected, assembled and listening, ready to run (port 0 picks
/// a free port: tests).
pub struct App {
    host: Host,
    router: axum::Router,
    listener: tokio::net::TcpListener,
}

impl App {
    pub async fn build<S: Service>(service: S, config: &HostConfig, port: u16) -> anyhow::Result<Self> {
        let auth = Arc::new(config.authenticator()?);
        let mut host = Host::connect(&service.name(), config).await?;
        ensure_migrated(&host.pool, service.migrator(), config.migrate_on_start).await?;
        service.upgrade(&host.pool, &host.keyring).await?;
        let (api, openapi) = service.assemble(&mut host).await?;
        let (operations, _) = host.operations();
        let trail = onedoor_audit::http::Trail { pool: host.pool.clone(), key: host.audit_key.clone() };
        let (audit, _) = onedoor_audit::http::router(trail);
        let api = api.merge(operations).merge(audit).merge(host.metrics()).layer(axum::middleware::from_fn_with_state(
            onedoor_audit::Recorder::start(host.pool.clone()),
            onedoor_audit::record_access,
        ));
        let router = onedoor_http_kit::service_router(api, document(openapi), auth, host.readiness());
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), port)).await?;
        Ok(Self { host, router, listener })
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.host.serve(self.listener, self.router, stop).await?;
        Ok(())
    }
}

/// A service's OpenAPI document as served and checked in: its API's
/// operations, the operators' and auditors' endpoints every service has, and the statuses
/// and problem+json answers of `onedoor_http_kit::openapi::document`.
pub fn document(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    api.merge(operations::openapi());
    api.merge(onedoor_audit::http::openapi());
    onedoor_http_kit::openapi::document(api)
}

/// A service's `main`: telemetry, then either `--migrate-only` or serving
/// until SIGTERM / Ctrl-C; traces are flushed either way.
pub async fn main<S: Service>(service: S, config: &HostConfig, port: u16) -> anyhow::Result<()> {
    let name = service.name();
    let telemetry = onedoor_telemetry::init(&name)?;
    let result = if config.migrate_only {
        let result = async {
            let pool = connect_database(config, true).await?;
            ensure_migrated(&pool, service.migrator(), true).await?;
            service.upgrade(&pool, &onedoor_personal_data::Keyring::new(config.kek()?)).await?;
            anyhow::Ok(())
        }
        .await;
        tracing::info!(ok = result.is_ok(), "migrations and upgrade applied");
        result
    } else {
        match App::build(service, config, port).await {
            Ok(app) => {
                tracing::info!(address = %app.address(), "{name} listening");
                app.run_until(onedoor_http_kit::shutdown_signal()).await
            }
            Err(error) => Err(error),
        }
    };
    telemetry.shutdown();
    result
}

pub use onedoor_http_kit::health::healthcheck_if_asked;
