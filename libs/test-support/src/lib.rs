//! Real servers for tests, isolated per test.
//!
//! - [`fresh_database`]: a new, empty database on the test binary's own
//!   PostgreSQL server (started on first use, on a random port, in a scratch
//!   folder that disappears with the process).
//! - [`TestNats`]: a nats-server of the test's own, on a random port with a
//!   temporary JetStream store, that the test can stop, kill and restart.
//!
//! - [`driver`]: the one driver of black-box tests (start a service, mint
//!   tokens, call the API, wait for a condition).
//! - [`sample`]: the one builder of sample applications.
//! - [`identity`]: an identity provider publishing its keys (JWKS), and its tokens.
//!
//! No mocks: a test that passes here passed against the servers production runs.

pub mod driver;
pub mod identity;
pub mod sample;

use onedoor_local_servers::{NatsServer, PostgresServer, Tools};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::OnceLock;
use std::time::Duration;
use uuid::Uuid;

pub use onedoor_local_servers as local_servers;

/// The server binaries, installed on first use.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| Tools::ensure().expect("installing nats-server and PostgreSQL for the tests"))
}

fn shared_postgres() -> &'static PostgresServer {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    SERVER.get_or_init(|| PostgresServer::start_ephemeral(tools()).expect("starting the test PostgreSQL server"))
}

/// A database created for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

/// Creates an empty database for one test and connects to it.
pub async fn fresh_database() -> TestDatabase {
    let server = tokio::task::spawn_blocking(shared_postgres).await.expect("starting PostgreSQL");
    let name = format!("test_{}", Uuid::now_v7().simple());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&server.url("postgres"))
        .await
        .expect("connecting to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("creating the test database");
    admin.close().await;
    let url = server.url(&name);
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&url)
        .await
        .expect("connecting to the test database");
    TestDatabase { name, url, pool }
}

/// Every row of every table of a database, as text: what a plain dump of it
/// (a backup) holds, for tests that look for what must not be there.
pub async fn dump_tables(pool: &PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(table_name) FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .expect("listing the tables");
    let mut text = String::new();
    for table in tables {
        let sql = format!("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM {table} t");
        let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await.expect("reading a table");
        text.push_str(&rows);
        text.push('\n');
    }
    text
}

/// A nats-server of one test's own.
#[derive(Debug)]
pub struct TestNats {
    pub server: NatsServer,
    _store: tempfile::TempDir,
}

impl TestNats {
    pub fn start() -> Self {
        let store = local_servers::scratch_dir("onedoor-nats-").expect("scratch folder");
        let server = NatsServer::start(tools(), store.path(), 0).expect("starting nats-server");
        Self { server, _store: store }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The nkey seed a client named `service` connects with: the service's
    /// own broker user, or the operators' (every permission) for a name
    /// the broker does not know (a test's own stand-in service).
    pub fn seed_for(&self, service: &str) -> String {
        let user = match onedoor_broker_access::Principal::from_service(service) {
            Some(_) => service,
            None => onedoor_broker_access::OPERATOR,
        };
        self.server.seed(user)
    }

    /// A client and JetStream context connected as the operators' user
    /// (the test plays the broker's other clients).
    pub async fn jetstream(&self) -> (async_nats::Client, async_nats::jetstream::Context) {
        self.jetstream_as(onedoor_broker_access::OPERATOR).await
    }

    /// A client and JetStream context connected as `user` (a service's
    /// name or the operators'), with that user's inbox.
    pub async fn jetstream_as(&self, user: &str) -> (async_nats::Client, async_nats::jetstream::Context) {
        let client = async_nats::ConnectOptions::with_nkey(self.server.seed(user))
            .custom_inbox_prefix(onedoor_broker_access::inbox_prefix(user))
            .connect(self.url())
            .await
            .expect("connecting to nats-server");
        let js = async_nats::jetstream::new(client.clone());
        (client, js)
    }
}

/// A valid resident ID number from its first 17 digits (adds the check character).
pub fn id_number(first17: &str) -> String {
    let check = onedoor_contracts::identity::check_character(first17).expect("17 digits");
    format!("{first17}{check}")
}

/// A signed HS256 token for a member of staff, valid for an hour.
pub fn staff_token(
    secret: &str,
    role: onedoor_http_kit::Role,
    township: Option<&str>,
    department: Option<onedoor_contracts::Department>,
    sub: &str,
) -> String {
    onedoor_http_kit::auth::mint_hs256(
        secret.as_bytes(),
        &onedoor_http_kit::Claims {
            sub: sub.into(),
            role,
            township: township.map(String::from),
            department,
            exp: chrono::Utc::now().timestamp() + 3600,
        },
    )
}
