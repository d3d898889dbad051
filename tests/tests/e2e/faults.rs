use crate::stack::*;
use onedoor_contracts::Department::{self, *};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_killed_with_referrals_in_flight_processes_each_exactly_once_after_restart() {
    let mut stack = Stack::start(&[]).await;
    const N: u32 = 8;
    for n in 0..N {
        let (status, _) = stack.submit(&four_line_application(&applicant_id(n), &ALL_MATERIALS)).await;
        assert_eq!(status, 201);
        if n == 2 {
            tokio::task::block_in_place(|| stack.service("medical-aid").kill()); // kill -9 mid-stream
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| stack.service("medical-aid").start(Duration::from_secs(60))).unwrap();
    let inbox = stack.inbox_until(Medical, N as usize).await;
    assert_eq!(inbox.len(), N as usize);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ReferralReceived'")
        .fetch_one(stack.db("medical-aid"))
        .await
        .unwrap();
    assert_eq!(received, i64::from(N), "every referral exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_keeps_accepting_while_nats_is_down_and_everything_flows_after() {
    let mut stack = Stack::start(&[]).await;
    stack.nats.server.stop();
    for n in 0..3 {
        let (status, body) = stack.submit(&four_line_application(&applicant_id(n), &ALL_MATERIALS)).await;
        assert_eq!((status, body["status"].as_str()), (201, Some("accepted")), "accepted with the broker down");
    }
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(stack.db("intake")).await.unwrap();
    assert!(waiting >= 15, "the referrals wait in the outbox: {waiting}");
    stack.nats.server.restart().unwrap();
    for d in Department::ALL {
        assert_eq!(stack.inbox_until(d, 3).await.len(), 3, "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intake_restart_keeps_the_case_view_and_a_rebuild_gives_the_same() {
    let mut stack = Stack::start(&[]).await;
    let (_, created) = stack.submit(&four_line_application(&applicant_id(4), &ALL_MATERIALS)).await;
    let case_id = created["case_id"].as_str().unwrap().to_string();
    let id = stack.inbox_until(Temporary, 1).await[0]["referral_id"].as_str().unwrap().to_string();
    assert_eq!(stack.act(Temporary, &id, "sign-for", &caseworker(Temporary), json!({})).await.0, 200);
    assert_eq!(
        stack.act(Temporary, &id, "proposal", &caseworker(Temporary), json!({"outcome": "approve"})).await.0,
        200
    );
    // Both of the lane's reports are in (they may arrive in any order), not only the approval.
    let before = stack
        .case_until(&case_id, "the signature and the approval are in", |v| {
            let reported = |event: &str| {
                v["timeline"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|e| e["event"] == event && e["department"] == "temporary"))
            };
            // and the applicant's messages (acceptance, the decision) are recorded.
            let told = v["notifications"].as_array().is_some_and(|n| n.len() == 2);
            lane(v, Temporary)["status"] == "approved" && reported("ReferralSignedFor") && told
        })
        .await;

    tokio::task::block_in_place(|| {
        let intake = stack.service("intake");
        intake.kill();
        intake.start(Duration::from_secs(60))
    })
    .unwrap();
    assert_eq!(stack.case(&case_id).await, before, "the case view survived the crash");

    let operator = onedoor_test_support::driver::tokens::operator();
    let url = format!("{}/api/v1/admin/case-views/rebuild", stack.url("intake"));
    let (status, job) = stack.call(reqwest::Method::POST, url.clone(), &operator, None).await;
    assert_eq!(status, 202, "{job}");
    let progress = format!("{url}/{}", job["job_id"].as_str().unwrap());
    onedoor_test_support::driver::eventually("the rebuild is done", Duration::from_secs(30), || async {
        let (_, job) = stack.call(reqwest::Method::GET, progress.clone(), &operator, None).await;
        if job["status"] == "done" { Ok(()) } else { Err(job.to_string()) }
    })
    .await;
    assert_eq!(stack.case(&case_id).await, before, "the rebuilt view is the same");
    let (status, lag) =
        stack.call(reqwest::Method::GET, format!("{}/api/v1/admin/lag", stack.url("intake")), &operator, None).await;
    assert_eq!(status, 200);
    assert_eq!(lag["consumers"].as_array().unwrap().len(), 5, "lag of every consumer is visible: {lag}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_whose_broker_and_database_are_both_gone_exits_within_its_bound_after_sigterm() {
    use onedoor_local_servers::{Durability, PostgresServer, ServiceProcess, free_port, scratch_dir};
    use sqlx::Connection;
    let scratch = scratch_dir("onedoor-pg-gone-").unwrap();
    let mut pg = tokio::task::block_in_place(|| {
        PostgresServer::start(onedoor_test_support::tools(), scratch.path(), 0, Durability::Throwaway)
    })
    .unwrap();
    let mut admin = sqlx::PgConnection::connect(&pg.url("postgres")).await.unwrap();
    sqlx::query("CREATE DATABASE onedoor_intake").execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    let mut nats = onedoor_test_support::TestNats::start();
    let port = free_port().unwrap();
    let mut env = nats.server.service_env("intake");
    env.extend([
        ("DATABASE_URL".to_string(), pg.url("onedoor_intake")),
        ("INTAKE_PORT".to_string(), port.to_string()),
        ("ONEDOOR_HOST".to_string(), "127.0.0.1".to_string()),
        ("ONEDOOR_JWT_SECRET".to_string(), onedoor_test_support::driver::SECRET.to_string()),
    ]);
    let mut intake = ServiceProcess::new("intake", port, env, scratch.path().join("intake.log"));
    tokio::task::block_in_place(|| intake.start(Duration::from_secs(60))).unwrap();
    let client = onedoor_test_support::driver::Client::new(intake.url());
    let (status, _, _) =
        client.post(&clerk(), "/api/v1/applications", &four_line_application(&applicant_id(7), &ALL_MATERIALS)).await;
    assert_eq!(status, 201);

    // Both go, as in a network partition; work in hand can no longer finish.
    tokio::task::block_in_place(|| {
        pg.kill();
        nats.server.kill();
    });
    let asked = std::time::Instant::now();
    let (status, body, headers) = client.get(&clerk(), "/api/v1/cases").await;
    assert_eq!((status, body["code"].as_str()), (503, Some("database_unavailable")), "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert!(asked.elapsed() < Duration::from_secs(10), "answered, not left hanging");

    // A request in flight on the database as the signal comes.
    let stuck = tokio::spawn({
        let client = client.clone();
        async move { client.get(&clerk(), "/api/v1/cases").await.0 }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let grace = onedoor_service_host::SHUTDOWN_BOUND + Duration::from_secs(5);
    let started = std::time::Instant::now();
    let exited = tokio::task::block_in_place(|| intake.stop_within(grace));
    let log = std::fs::read_to_string(scratch.path().join("intake.log")).unwrap_or_default();
    assert!(exited, "intake ignored SIGTERM for {grace:?}; its log:\n{log}");
    assert!(started.elapsed() <= grace);
    let _ = stuck.await;
}
