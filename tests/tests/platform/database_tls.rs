//! Every service reaches PostgreSQL over TLS and verifies who it talks to
//! (`sslmode=verify-full` against the CA in `sslrootcert`), as in the
//! production overlay with CloudNativePG's CA. A server whose certificate
//! another CA signed is refused.
//!
//! The PostgreSQL that `xtask` installs from PyPI is built without SSL, so
//! this test runs Debian's PostgreSQL (the machine's own `postgresql`
//! package: `/usr/lib/postgresql/<version>/bin`), as a server of its own on a
//! scratch folder.

use onedoor_contracts::aid_line;
use onedoor_local_servers::{Durability, PostgresServer, ServiceProcess, Tools, free_port, scratch_dir};
use onedoor_test_support::TestNats;
use onedoor_test_support::driver::SECRET;
use sqlx::Connection;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl (Debian's openssl package)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a server certificate it signed for 127.0.0.1 and localhost; and a second, unrelated CA.
pub(crate) fn certificates(dir: &Path) {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=OneDoor test {ca}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// The newest Debian PostgreSQL on the machine (built with OpenSSL).
fn debian_postgres() -> std::path::PathBuf {
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().expect("Debian's postgresql package (/usr/lib/postgresql/<version>/bin), a PostgreSQL built with SSL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_connects_with_verify_full_and_a_server_of_another_ca_is_refused() {
    let dir = scratch_dir("onedoor-tls-").unwrap();
    certificates(dir.path());
    let mut tools = Tools::ensure().unwrap();
    tools.pg_bin = debian_postgres();
    let mut pg = PostgresServer::start(&tools, &dir.path().join("pg"), 0, Durability::Throwaway).unwrap();
    if let Err(e) = pg.enable_tls(&dir.path().join("server.pem"), &dir.path().join("server.key")) {
        let log = std::fs::read_to_string(dir.path().join("pg/postgres.log")).unwrap_or_default();
        panic!("PostgreSQL with TLS did not start: {e}\n{log}");
    }
    let ca = dir.path().join("ca.pem");
    let verified = |db: &str, root: &Path| format!("{}?sslmode=verify-full&sslrootcert={}", pg.url(db), root.display());

    let mut admin =
        sqlx::PgConnection::connect(&verified("postgres", &ca)).await.expect("verify-full with the right CA");
    let encrypted: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(encrypted, "the connection is encrypted");

    let refused = sqlx::PgConnection::connect(&verified("postgres", &dir.path().join("other-ca.pem"))).await;
    assert!(refused.is_err(), "a server certificate another CA signed is refused");
    // verify-full also checks the name: the certificate is not for this host name.
    let wrong_name = verified("postgres", &ca).replace("127.0.0.1", "127.0.0.2");
    assert!(sqlx::PgConnection::connect(&wrong_name).await.is_err(), "a certificate for another host is refused");

    // Every service migrates and serves over verify-full.
    let nats = TestNats::start();
    let mut services = Vec::new();
    for s in aid_line::services() {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {}", s.database))).execute(&mut admin).await.unwrap();
        let port = free_port().unwrap();
        let mut env = nats.server.service_env(s.service);
        env.extend([
            ("DATABASE_URL".to_string(), verified(s.database, &ca)),
            (s.port_env.to_string(), port.to_string()),
            ("ONEDOOR_HOST".to_string(), "127.0.0.1".to_string()),
            ("ONEDOOR_JWT_SECRET".to_string(), SECRET.to_string()),
            ("DATABASE_MAX_CONNECTIONS".to_string(), "3".to_string()),
            ("DATABASE_WORK_CONNECTIONS".to_string(), "2".to_string()),
        ]);
        let mut service = ServiceProcess::new(s.service, port, env, dir.path().join(format!("{}.log", s.service)));
        tokio::task::block_in_place(|| service.start(Duration::from_secs(60)))
            .unwrap_or_else(|e| panic!("{} over verify-full: {e}", s.service));
        services.push(service);
    }
    let over_tls: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE s.ssl AND a.datname LIKE 'onedoor_%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let plain: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE NOT s.ssl AND a.datname LIKE 'onedoor_%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(over_tls >= services.len() as i64, "each service holds encrypted connections ({over_tls})");
    assert_eq!(plain, 0, "no service connected in the clear");

    // A service given the wrong CA does not start.
    let s = aid_line::INTAKE_SERVICE;
    let port = free_port().unwrap();
    let mut env = nats.server.service_env(s.service);
    env.extend([
        ("DATABASE_URL".to_string(), verified(s.database, &dir.path().join("other-ca.pem"))),
        (s.port_env.to_string(), port.to_string()),
        ("ONEDOOR_HOST".to_string(), "127.0.0.1".to_string()),
        ("ONEDOOR_JWT_SECRET".to_string(), SECRET.to_string()),
    ]);
    let mut wrong = ServiceProcess::new(s.service, port, env, dir.path().join("intake-wrong-ca.log"));
    let started = tokio::task::block_in_place(|| wrong.start(Duration::from_secs(10)));
    assert!(started.is_err(), "intake refuses a database whose certificate its CA did not sign");
    wrong.kill();
    for mut s in services {
        s.stop();
    }
}
