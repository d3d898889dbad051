//! Behind PgBouncer in transaction mode (k8s) a service must not migrate:
//! sqlx's migrator holds a session-level lock, which the pooler would hand
//! to another client. The init container applies the migrations first
//! (`<service> --migrate-only`, a direct connection); the service then starts
//! with `ONEDOOR_MIGRATE_ON_START=false` and serves on the schema it finds.

use onedoor_contracts::aid_line;
use onedoor_local_servers::{ServiceProcess, free_port, scratch_dir, workspace_binary};
use onedoor_test_support::driver::{Client, SECRET, tokens};
use onedoor_test_support::{TestDatabase, TestNats, fresh_database};
use std::time::Duration;

fn environment(db: &TestDatabase, nats: &TestNats, port: u16, migrate_on_start: &str) -> Vec<(String, String)> {
    let mut env = nats.server.service_env(aid_line::INTAKE_SERVICE.service);
    env.extend([
        ("DATABASE_URL".into(), db.url.clone()),
        (aid_line::INTAKE_SERVICE.port_env.into(), port.to_string()),
        ("ONEDOOR_HOST".into(), "127.0.0.1".into()),
        ("ONEDOOR_JWT_SECRET".into(), SECRET.into()),
        ("DATABASE_MAX_CONNECTIONS".into(), "3".into()),
        ("DATABASE_WORK_CONNECTIONS".into(), "2".into()),
        ("ONEDOOR_MIGRATE_ON_START".into(), migrate_on_start.into()),
    ]);
    env
}

/// The migrations sqlx recorded in `db`, or `None` when it never migrated it.
async fn applied_migrations(db: &TestDatabase) -> Option<i64> {
    let table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text").fetch_one(&db.pool).await.unwrap();
    table?;
    Some(sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&db.pool).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_container_migrates_and_the_service_behind_the_pooler_does_not() {
    let dir = scratch_dir("onedoor-migrations-").unwrap();
    let nats = TestNats::start();
    let db = fresh_database().await;

    // With migrations off, intake leaves an empty database alone and refuses
    // to serve on it, saying why.
    let port = free_port().unwrap();
    let log = dir.path().join("empty.log");
    let mut unmigrated = ServiceProcess::new("intake", port, environment(&db, &nats, port, "false"), log.clone());
    let started = tokio::task::block_in_place(|| unmigrated.start(Duration::from_secs(10)));
    unmigrated.kill();
    assert!(started.is_err(), "intake does not serve a database nobody migrated");
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("lacks migrations"), "intake says the migrations are missing: {said}");
    assert_eq!(applied_migrations(&db).await, None, "intake did not migrate with ONEDOOR_MIGRATE_ON_START=false");

    // The init container's run.
    let migrate = std::process::Command::new(workspace_binary("intake"))
        .arg("--migrate-only")
        .envs(environment(&db, &nats, port, "false"))
        .output()
        .unwrap();
    assert!(migrate.status.success(), "intake --migrate-only: {}", String::from_utf8_lossy(&migrate.stderr));
    let applied = applied_migrations(&db).await.expect("--migrate-only migrates, whatever the start-up setting");
    assert!(applied > 1, "the event store's and intake's migrations ({applied})");
    // And the upgrade step (ADR 0018): the case views were checked for what
    // an earlier release stored in the clear, before any replica serves.
    let upgraded: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sealing_passes WHERE stream_type = 'case_views')")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(upgraded, "--migrate-only runs the upgrade step");

    // The service, as behind the pooler: it serves on what it found.
    let mut service =
        ServiceProcess::new("intake", port, environment(&db, &nats, port, "false"), dir.path().join("intake.log"));
    tokio::task::block_in_place(|| service.start(Duration::from_secs(60)))
        .expect("intake serves on a migrated database");
    let (status, cases, _) = Client::new(service.url()).get(&tokens::clerk(), "/api/v1/cases").await;
    assert_eq!(status, 200, "the case list: {cases}");
    service.stop();
    assert_eq!(applied_migrations(&db).await, Some(applied));
}
