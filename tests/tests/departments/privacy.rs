//! Full ID numbers only where the job needs them: a referral shows them
//! masked, and a caseworker of the department gets them by stating why,
//! which the audit trail records with the purpose.

use crate::harness::*;
use onedoor_contracts::Department::*;
use onedoor_http_kit::auth::Role;
use serde_json::json;

#[tokio::test]
async fn a_referral_masks_every_id_number_and_a_caseworker_unmasks_them_once_with_a_purpose() {
    let p = Platform::start(&[Education]).await;
    let applicant = id_number("33010219800307205");
    let student = sample::child_of(&applicant);
    let created = p.submit(&application(&applicant, json!([sample::education()]))).await;
    let referral = lane_of(&created, Education)["referral_id"].as_str().unwrap().to_string();

    for token in [caseworker(Education), approver(Education)] {
        let view = p.referral(Education, &referral, &token).await;
        let text = view.to_string();
        assert!(!text.contains(&applicant) && !text.contains(&student), "no full ID number: {text}");
        assert_eq!(view["applicant"]["id_number"], format!("{}********{}", &applicant[..6], &applicant[14..]));
        assert_eq!(view["request"]["student_id_number"], format!("{}********{}", &student[..6], &student[14..]));
    }

    let unmask = |token: String, body: serde_json::Value| {
        let url = format!("{}/api/v1/referrals/{referral}/unmask", p.url(Education));
        let http = p.http.clone();
        async move {
            let answer = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            let no_store = answer.headers().get("cache-control").is_some_and(|v| v == "no-store");
            (answer.status().as_u16(), no_store, answer.json::<serde_json::Value>().await.unwrap())
        }
    };
    let purpose = json!({"purpose": "发放助学金到学生账户"});
    let (status, no_store, ids) = unmask(caseworker(Education), purpose.clone()).await;
    assert_eq!((status, no_store), (200, true), "{ids}");
    assert_eq!(ids, json!({"applicant_id_number": applicant, "student_id_number": student, "patient_id_number": null}));

    // Only the department's caseworkers, only with a purpose, only for its referrals.
    assert_eq!(unmask(approver(Education), purpose.clone()).await.0, 403);
    assert_eq!(unmask(token(Role::Caseworker, Some(Medical), "med-cw"), purpose.clone()).await.0, 403);
    assert_eq!(unmask(clerk(), purpose.clone()).await.0, 403);
    let (status, _, problem) = unmask(caseworker(Education), json!({"purpose": " "})).await;
    assert_eq!((status, &problem["errors"][0]["code"]), (400, &json!("purpose_length")), "{problem}");
    assert_eq!(unmask(caseworker(Education), json!({})).await.0, 400);

    // The trail has the disclosure with its purpose, and the refusals.
    let trail: Vec<(String, i16, Option<String>)> = sqlx::query_as(
        "SELECT actor, outcome, purpose FROM audit_trail WHERE action = 'POST /api/v1/referrals/{referral_id}/unmask'
          ORDER BY entry_id",
    )
    .fetch_all(p.db(Education))
    .await
    .unwrap();
    assert_eq!(trail[0], ("education-cw-1".to_string(), 200, Some("发放助学金到学生账户".to_string())));
    assert_eq!(trail.iter().map(|t| t.1).collect::<Vec<_>>(), [200, 403, 403, 403, 400, 400]);

    // In the department's own log, the ID numbers and the name are sealed
    // with the case's key (ADR 0015); only its API opens them.
    let log: String = sqlx::query_scalar("SELECT string_agg(payload::text, E'\\n') FROM events")
        .fetch_one(p.db(Education))
        .await
        .unwrap();
    assert!(log.contains("enc:v1:"), "{log}");
    for plain in [&applicant, &student, &"张三".to_string()] {
        assert!(!log.contains(plain.as_str()), "{plain} plain in the department's log: {log}");
    }
}

/// The minimum necessary: every line gets the applicant's name and ID
/// number and the household's standing; the phone, the income and the
/// assets stay at the window unless the line's policy uses them (only
/// education weighs the income). Checked where a department could read
/// them: the message on the broker, its own event log and read model, and
/// the referral its staff see. What each does receive travels sealed.
#[tokio::test]
async fn each_department_receives_only_the_household_facts_its_policy_uses() {
    const PHONE: &str = "13912345678";
    const INCOME: i64 = 123_457;
    const ASSETS: i64 = 7_654_321;
    let all = [Medical, Education, Housing, Temporary];
    let p = Platform::start(&all).await;
    let applicant = id_number("33010219800307301");
    let mut form = sample::SampleApplication::household_of_two(&applicant).four_lines().phone(PHONE).json();
    form["household"]["monthly_income_fen"] = json!(INCOME);
    form["household"]["assets_fen"] = json!(ASSETS);
    let created = p.submit(&form).await;

    for d in all {
        let referral = lane_of(&created, d)["referral_id"].as_str().unwrap().to_string();
        let view = p.referral(d, &referral, &caseworker(d)).await;
        let income_disclosed = d == Education;
        assert_eq!(view["applicant"]["phone"], json!(null), "{d}: {view}");
        assert_eq!(view["household"].get("monthly_income_fen").cloned(), income_disclosed.then(|| json!(INCOME)));
        assert_eq!(view["household"].get("assets_fen"), None, "{d}: {view}");
        assert_eq!(view["household"]["members"], 2, "the household's size still goes to every line");

        let stored: Vec<String> =
            sqlx::query_scalar("SELECT payload::text FROM events UNION ALL SELECT view::text FROM referral_views")
                .fetch_all(p.db(d))
                .await
                .unwrap();
        assert!(!stored.is_empty());
        for text in &stored {
            assert!(!text.contains(PHONE) && !text.contains(&ASSETS.to_string()), "{d} keeps {text}");
            assert_eq!(
                text.contains(&INCOME.to_string()),
                income_disclosed && text.contains("household"),
                "{d}: {text}"
            );
        }
    }

    // On the broker: what each department's referral subject carries.
    let (_client, js) = p.nats.jetstream().await;
    let mut stream = js.get_stream("INTAKE").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut referrals = 0;
    for seq in state.first_sequence..=state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        let Some(department) = m.subject.as_str().strip_prefix("onedoor.intake.referral.") else { continue };
        referrals += 1;
        let text = String::from_utf8(m.payload.to_vec()).unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(event["type"], "onedoor.intake.referral_issued.v4");
        assert!(!text.contains(PHONE) && !text.contains(&ASSETS.to_string()), "{department}: {text}");
        let income = event["data"]["household"].get("monthly_income_fen").cloned();
        assert_eq!(income, (department == "education").then(|| json!(INCOME)), "{department}: {text}");
        // The name and the ID numbers travel sealed (ADR 0015), opened by the department.
        assert!(event["data"]["applicant"]["name"].as_str().unwrap().starts_with("enc:v1:"), "{text}");
        assert!(!text.contains(&applicant) && !text.contains("张三"), "{department}: {text}");
    }
    assert_eq!(referrals, 4);

    // A department's reasons travel sealed too, and the window reads them.
    const REASON: &str = "张三的住院病历不全";
    let medical = lane_of(&created, Medical)["referral_id"].as_str().unwrap().to_string();
    assert_eq!(p.act(Medical, &medical, "sign-for", &caseworker(Medical), json!({})).await.0, 200);
    let (status, body) = p.act(Medical, &medical, "return", &caseworker(Medical), json!({"reason": REASON})).await;
    assert_eq!(status, 200, "{body}");
    let case_id = created["case_id"].as_str().unwrap();
    p.case_until(case_id, "the window shows the return's reason", |v| lane_of(v, Medical)["reason"] == REASON).await;
    let mut stream = js.get_stream(Medical.stream()).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    for seq in state.first_sequence..=state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        let text = String::from_utf8(m.payload.to_vec()).unwrap();
        assert!(!text.contains("张三"), "{text}");
    }
}

/// An erasure at the window reaches every department that had the case: its
/// key of the case is destroyed, its inbox shows the person as erased, and
/// nothing of them is left in its database, while the lane's history (dates,
/// steps, amounts) stays.
#[tokio::test]
async fn an_erasure_at_the_window_reaches_every_department_that_had_the_case() {
    const DIAGNOSIS: &str = "慢性肾功能衰竭";
    let both = [Medical, Education];
    let p = Platform::start_keeping_for(&both, 0).await;
    let applicant = id_number("33010219800307404");
    let student = sample::child_of(&applicant);
    let form = sample::SampleApplication::household_of_two(&applicant)
        .requests(vec![sample::medical(DIAGNOSIS, 900_000, 100_000), sample::education()])
        .json();
    let created = p.submit(&form).await;
    let case_id = created["case_id"].as_str().unwrap().to_string();
    let referrals: Vec<(onedoor_contracts::Department, String)> =
        both.iter().map(|d| (*d, lane_of(&created, *d)["referral_id"].as_str().unwrap().to_string())).collect();
    for (d, referral) in &referrals {
        let view = p.referral(*d, referral, &caseworker(*d)).await;
        assert_eq!(view["applicant"]["name"], "张三", "{view}");
    }
    // The medical department's caseworker gives a reason (sealed for the
    // broker in the department's message), and a message about the case
    // that the department cannot read waits in its dead letters.
    let medical = &referrals[0].1;
    let cw = caseworker(Medical);
    assert_eq!(p.act(Medical, medical, "sign-for", &cw, json!({})).await.0, 200);
    let proposal = json!({"outcome": "reject", "reason": "张三的医保已全额报销"});
    assert_eq!(p.act(Medical, medical, "proposal", &cw, proposal).await.0, 200);
    let (_client, js) = p.nats.jetstream().await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(onedoor_contracts::CE_TYPE_HEADER, "onedoor.intake.referral_issued.v99");
    headers.insert(onedoor_messaging::EVENT_ID_HEADER, uuid::Uuid::now_v7().to_string().as_str());
    let unreadable = json!({"subject": case_id, "data": {"applicant": {"name": "张三", "id_number": applicant}}});
    let published = js
        .publish_with_headers(
            onedoor_contracts::intake::referral_subject(Medical),
            headers,
            serde_json::to_vec(&unreadable).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    onedoor_test_support::driver::eventually("the dead letter", std::time::Duration::from_secs(20), || async {
        let letters = onedoor_messaging::dead_letter::list(&js, "medical-aid", 100).await.unwrap();
        if letters.is_empty() { Err("none yet".to_string()) } else { Ok(()) }
    })
    .await;
    // Its original stands for a newer intake's message, which that intake
    // would erase itself; the copy in medical's dead letters is medical's.
    js.get_stream(&published.stream).await.unwrap().delete_message(published.sequence).await.unwrap();
    let personal = [applicant.as_str(), student.as_str(), "张三", "张小明", DIAGNOSIS, "医保已全额报销"];
    assert!(!on_the_broker(&js, &personal).await.is_empty(), "the broker holds the case's messages before the erasure");
    let (status, _) = p
        .call(
            reqwest::Method::POST,
            format!("{}/api/v1/cases/{case_id}/withdraw", p.intake),
            &clerk(),
            Some(json!({"reason": "张三另有安排"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, household) = p
        .call(reqwest::Method::GET, format!("{}/api/v1/households?id_number={applicant}", p.intake), &clerk(), None)
        .await;
    let erase = format!("{}/api/v1/admin/households/{}/erasure", p.intake, household["household_id"].as_str().unwrap());
    let operator = onedoor_test_support::driver::tokens::operator();
    let (status, erased) =
        p.call(reqwest::Method::POST, erase, &operator, Some(json!({"purpose": "保存期限届满"}))).await;
    assert_eq!(status, 200, "{erased}");

    for (d, referral) in &referrals {
        let view = onedoor_test_support::driver::eventually(
            &format!("{d} shows the person erased"),
            std::time::Duration::from_secs(20),
            || async {
                let view = p.referral(*d, referral, &caseworker(*d)).await;
                if view["applicant"]["name"] == "[已删除]" { Ok(view) } else { Err(view.to_string()) }
            },
        )
        .await;
        let ended = if *d == Medical { "rejected" } else { "withdrawn" };
        assert_eq!(view["status"], ended, "the lane's history stays: {view}");
        // No replica serves the lane as it folded it before the erasure:
        // its inbox row names no event a kept fold could match.
        let kept: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT last_event_id FROM referral_views WHERE referral_id = $1::uuid")
                .bind(referral)
                .fetch_one(p.db(*d))
                .await
                .unwrap();
        assert_eq!(kept, None, "{d}'s lane can be served as folded before the erasure");
        let dump = onedoor_test_support::dump_tables(p.db(*d)).await;
        assert!(dump.contains(referral.as_str()), "the dump reads every table");
        for plain in [applicant.as_str(), student.as_str(), "张三", "张小明", DIAGNOSIS] {
            assert!(!dump.contains(plain), "{plain} left in {d}'s database");
        }
    }
    // Nor is anything of them left on the broker: not in intake's stream,
    // the departments' or their dead letters, even to one holding the KEK.
    onedoor_test_support::driver::eventually("the broker forgets them", std::time::Duration::from_secs(20), || async {
        let left = on_the_broker(&js, &personal).await;
        if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) }
    })
    .await;
    // The window's case tells when it was erased.
    let view = p.case(&case_id).await;
    assert!(view["timeline"].as_array().unwrap().iter().any(|t| t["event"] == "PersonalDataErased"), "{view}");
}

/// A department's lanes that an earlier release stored with their personal
/// fields in the clear are sealed, under the case's key, when a new release
/// starts, and read as before.
#[tokio::test]
async fn a_departments_lanes_stored_in_the_clear_by_an_earlier_release_are_sealed_at_start_up() {
    use onedoor_stored_events::lane::LaneEventV2;
    const DIAGNOSIS: &str = "系统性红斑狼疮";
    let mut p = Platform::start(&[Medical]).await;
    let applicant = id_number("33010219800307418");
    let form = sample::SampleApplication::household_of_two(&applicant)
        .requests(vec![sample::medical(DIAGNOSIS, 900_000, 100_000)])
        .json();
    let created = p.submit(&form).await;
    let case_id: uuid::Uuid = created["case_id"].as_str().unwrap().parse().unwrap();
    let referral = lane_of(&created, Medical)["referral_id"].as_str().unwrap().to_string();
    let cw = caseworker(Medical);
    p.referral(Medical, &referral, &cw).await;
    assert_eq!(p.act(Medical, &referral, "sign-for", &cw, json!({})).await.0, 200);

    // As an earlier release left them: in the clear, and no key of the case.
    let db = p.db(Medical).clone();
    let key = onedoor_personal_data::Keyring::development()
        .for_opening(&mut db.acquire().await.unwrap(), case_id)
        .await
        .unwrap()
        .unwrap();
    let events: Vec<(i64, String, serde_json::Value)> =
        sqlx::query_as("SELECT global_position, event_type, payload FROM events").fetch_all(&db).await.unwrap();
    for (position, event_type, mut payload) in events {
        LaneEventV2::personal_fields(&event_type).open(&mut payload, Some(&key));
        sqlx::query("UPDATE events SET payload = $1 WHERE global_position = $2")
            .bind(payload)
            .bind(position)
            .execute(&db)
            .await
            .unwrap();
    }
    for table in ["household_keys", "sealing_passes"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&db).await.unwrap();
    }
    let personal = [applicant.as_str(), "张三", DIAGNOSIS];
    let dump = onedoor_test_support::dump_tables(&db).await;
    assert!(personal.iter().all(|plain| dump.contains(plain)), "the test's earlier release is not one");

    p.restart(Medical).await;
    let dump = onedoor_test_support::dump_tables(p.db(Medical)).await;
    for plain in personal {
        assert!(!dump.contains(plain), "{plain} left in the clear");
    }
    let view = p.referral(Medical, &referral, &cw).await;
    assert_eq!(
        (view["applicant"]["name"].as_str(), view["request"]["diagnosis"].as_str()),
        (Some("张三"), Some(DIAGNOSIS))
    );
    assert_eq!(view["status"], "signed_for", "{view}");
}

/// The messages on the broker (every stream, dead letters included) that
/// hold one of `personal`, once their sealed fields are opened with the
/// development KEK the test's services use: what one who holds the KEK
/// could read there. Named by stream and sequence.
async fn on_the_broker(js: &async_nats::jetstream::Context, personal: &[&str]) -> Vec<String> {
    use futures::TryStreamExt;
    let transit = onedoor_personal_data::Transit::of(&onedoor_personal_data::FileKek::development());
    let names: Vec<String> = js.stream_names().try_collect().await.unwrap();
    let mut found = Vec::new();
    for name in names {
        let mut stream = js.get_stream(&name).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        if state.messages == 0 {
            continue;
        }
        for sequence in state.first_sequence..=state.last_sequence {
            let Ok(raw) = stream.get_raw_message(sequence).await else { continue };
            let mut text = String::from_utf8_lossy(&raw.payload).to_string();
            let event_type = raw.headers.get(onedoor_contracts::CE_TYPE_HEADER).map(|t| t.as_str().to_string());
            if let (Some(t), Ok(mut envelope)) = (event_type, serde_json::from_slice::<serde_json::Value>(&raw.payload))
            {
                let fields = onedoor_personal_data::PersonalFields(onedoor_contracts::personal_fields(&t));
                if transit.open(&mut envelope, fields).is_ok() {
                    text = envelope.to_string();
                }
            }
            if personal.iter().any(|p| text.contains(p)) {
                found.push(format!("{name} #{sequence}"));
            }
        }
    }
    found
}
