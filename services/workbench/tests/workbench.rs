//! The workbench in process against a real intake (PostgreSQL, nats-server):
//! sign-in through OpenID Connect with PKCE against an identity provider
//! that checks the protocol, sessions and CSRF, the security headers, and
//! the application form's answers to the API's refusals. The browser story
//! is `tests/tests/browser`.

use axum::extract::{Form, Query};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use base64::Engine;
use onedoor_http_kit::{Claims, Role};
use onedoor_test_support::driver::{SECRET, TestApp};
use onedoor_test_support::{TestNats, id_number, sample};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use workbench::sign_in::OidcConfig;
use workbench::{AppState, Config};

/// An identity provider that holds the client to the protocol: the code is
/// given once, to the registered redirect URI, and exchanged only with the
/// verifier whose S256 challenge came with the authorization request.
async fn identity_provider(redirect_uri: String) -> String {
    type Pending = Arc<Mutex<HashMap<String, (String, String)>>>;
    let pending: Pending = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let discovery = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "end_session_endpoint": format!("{issuer}/logout"),
    });
    let (p1, p2) = (pending.clone(), pending.clone());
    let router = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
        .route(
            "/authorize",
            get(move |Query(q): Query<HashMap<String, String>>| async move {
                let ok = q.get("response_type").map(String::as_str) == Some("code")
                    && q.get("code_challenge_method").map(String::as_str) == Some("S256")
                    && q.get("client_id").map(String::as_str) == Some("onedoor-workbench");
                if !ok {
                    return StatusCode::BAD_REQUEST.into_response();
                }
                let code = format!("code-{}", p1.lock().unwrap().len());
                p1.lock().unwrap().insert(code.clone(), (q["code_challenge"].clone(), q["redirect_uri"].clone()));
                Redirect::to(&format!("{}?code={code}&state={}", q["redirect_uri"], q["state"])).into_response()
            }),
        )
        .route(
            "/token",
            post(move |Form(f): Form<HashMap<String, String>>| async move {
                let Some((challenge, uri)) = p2.lock().unwrap().remove(f.get("code").map(String::as_str).unwrap_or(""))
                else {
                    return (StatusCode::BAD_REQUEST, "invalid_grant").into_response();
                };
                let verifier = f.get("code_verifier").cloned().unwrap_or_default();
                let s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
                if s256 != challenge
                    || uri != redirect_uri
                    || f.get("grant_type").map(String::as_str) != Some("authorization_code")
                {
                    return (StatusCode::BAD_REQUEST, "invalid_grant").into_response();
                }
                let claims = Claims {
                    sub: "clerk-oidc".into(),
                    role: Role::WindowClerk,
                    township: Some(sample::TOWNSHIP.into()),
                    department: None,
                    exp: chrono::Utc::now().timestamp() + 600,
                };
                let token = onedoor_http_kit::auth::mint_hs256(SECRET.as_bytes(), &claims);
                axum::Json(serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 600}))
                    .into_response()
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    issuer
}

struct Platform {
    workbench: String,
    _intake: TestApp,
    _nats: TestNats,
}

impl Platform {
    /// The workbench on `port` (0: any), against a real intake; the departments are not running.
    async fn start(issuer: Option<String>, port: u16) -> Self {
        let nats = TestNats::start();
        let intake = TestApp::start(
            intake::Intake::with_defaults().unwrap(),
            onedoor_test_support::fresh_database().await,
            &nats,
        )
        .await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = Config {
            port: 0,
            host: "127.0.0.1".into(),
            session_key: Some("the workbench tests' session key, 32+ bytes".into()),
            public_url: url.clone(),
            dev_login: true,
            jwt_secret: Some(SECRET.into()),
            oidc: OidcConfig {
                issuer,
                client_id: "onedoor-workbench".into(),
                client_secret: None,
                scopes: "openid".into(),
            },
        };
        let apis: BTreeMap<String, String> = onedoor_contracts::aid_line::services()
            .iter()
            .map(|s| {
                (
                    s.service.to_string(),
                    if s.service == "intake" { intake.url().to_string() } else { "http://127.0.0.1:9".into() },
                )
            })
            .collect();
        let mut state = AppState::new(&config, &apis).unwrap();
        state.live_wait = LIVE_WAIT;
        let router = workbench::router(state);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { workbench: url, _intake: intake, _nats: nats }
    }
}

/// The case view's live wait in these tests (25 s in service).
const LIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn cookie(answer: &reqwest::Response, name: &str) -> Option<String> {
    answer
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

async fn dev_session(wb: &str, who: &str) -> String {
    let answer = http().get(format!("{wb}/dev-login?{who}")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    cookie(&answer, "onedoor_session").unwrap()
}

/// A page's HTML, with the escaped slashes of attribute values read as a browser reads them.
async fn page(wb: &str, session: &str, path: &str) -> (StatusCode, String) {
    let answer = http().get(format!("{wb}{path}")).header(COOKIE, session).send().await.unwrap();
    (answer.status(), answer.text().await.unwrap().replace("&#x2f;", "/"))
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with its CSRF token") + 19;
    html[at..].chars().take_while(|c| *c != '"').collect()
}

#[tokio::test]
async fn sign_in_runs_the_authorization_code_flow_with_pkce_and_refuses_a_forged_state() {
    // The workbench's address must be known before the provider is, for the redirect URI.
    let port = onedoor_local_servers::free_port().unwrap();
    let wb = format!("http://127.0.0.1:{port}");
    let issuer = identity_provider(format!("{wb}/oidc/callback")).await;
    let _platform = Platform::start(Some(issuer.clone()), port).await;

    // A clerk sent to sign in from a page goes back to it afterwards.
    let (status, html) = page(&wb, "", "/sign-in?next=/cases").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("href=\"/oidc/start?next=/cases\""), "{html}");
    let start = http().get(format!("{wb}/oidc/start?next=/cases")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let pending = cookie(&start, "onedoor_oidc").expect("the pending sign-in is kept in a cookie");
    let to_idp = start.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(
        to_idp.starts_with(&format!("{issuer}/authorize?")) && to_idp.contains("code_challenge_method=S256"),
        "{to_idp}"
    );
    assert!(!to_idp.contains("code_verifier"), "the verifier never leaves the workbench");

    let back = http().get(&to_idp).send().await.unwrap();
    let callback = back.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(callback.starts_with(&format!("{wb}/oidc/callback?code=")), "{callback}");

    // A forged state is refused, and the code is not spent on it.
    let forged = callback.replace("state=", "state=x");
    let refused = http().get(&forged).header(COOKIE, &pending).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(cookie(&refused, "onedoor_session").is_none());
    // Without the pending cookie (another browser) it is refused too.
    let refused = http().get(&callback).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let signed_in = http().get(&callback).header(COOKIE, &pending).send().await.unwrap();
    // A page of the workbench's own moves on to /cases, so that the browser sends the Strict
    // session cookie (a redirect would continue the provider's cross-site navigation).
    assert_eq!(signed_in.status(), StatusCode::OK);
    let session = cookie(&signed_in, "onedoor_session").expect("a session");
    let set =
        signed_in.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    let landing = signed_in.text().await.unwrap().replace("&#x2f;", "/");
    assert!(landing.contains("http-equiv=\"refresh\" content=\"0;url=/cases\""), "{landing}");
    assert!(
        set.iter()
            .any(|c| c.starts_with("onedoor_session=") && c.contains("HttpOnly") && c.contains("SameSite=Strict"))
    );

    // The provider's token works against the API: the clerk's cases page answers.
    let (status, html) = page(&wb, &session, "/cases").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("clerk-oidc"));

    // The code was spent: replaying the callback signs nobody in.
    let replay = http().get(&callback).header(COOKIE, &pending).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);

    // Signing out clears the session and goes to the provider's end of session.
    let csrf = csrf_of(&html);
    let out = http()
        .post(format!("{wb}/sign-out"))
        .header(COOKIE, &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.headers()[LOCATION].to_str().unwrap(), format!("{issuer}/logout"));
    assert_eq!(cookie(&out, "onedoor_session").as_deref(), Some("onedoor_session="));
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_a_form_without_its_csrf_token_changes_nothing() {
    let platform = Platform::start(None, 0).await;
    let wb = &platform.workbench;
    let (status, _) = page(wb, "", "/cases").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "no session: to the sign-in");
    let session = dev_session(wb, "role=window_clerk&township=330102001&sub=clerk-7").await;
    let answer = http().get(format!("{wb}/applications/new")).header(COOKIE, &session).send().await.unwrap();
    let h = answer.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let html = answer.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains(" style="), "no inline script or style");
    // Every input has a label.
    for id in html.split("<input id=\"").skip(1).map(|s| s.split('"').next().unwrap()) {
        assert!(html.contains(&format!("for=\"{id}\"")), "the input {id} has no <label>");
    }

    // A complete application, posted without the CSRF token: refused, no case.
    let form = [("applicant.name", "王秀兰"), ("applicant.id_number", "11010519491231002X")];
    let refused =
        http().post(format!("{wb}/applications/new")).header(COOKIE, &session).form(&form).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (_, cases) = page(wb, &session, "/cases").await;
    assert!(cases.contains("没有符合条件的案件"));

    // The development sign-in refuses a clerk without a township.
    let answer = http().get(format!("{wb}/dev-login?role=window_clerk")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(cookie(&answer, "onedoor_session").is_none());
}

/// The fields of a complete one-line application as the form posts them.
fn temporary_aid_form(csrf: &str, id: &str, key: &str) -> Vec<(String, String)> {
    [
        ("csrf", csrf),
        ("idempotency_key", key),
        ("applicant.name", "王秀兰"),
        ("applicant.id_number", id),
        ("applicant.phone", "13812345678"),
        ("household.division_code", "330102001001"),
        ("household.address", "西湖区文三路1号"),
        ("household.hukou", "urban"),
        ("household.monthly_income", "1200"),
        ("household.assets", "0"),
        ("lines", "temporary"),
        ("temporary.cause", "illness"),
        ("temporary.amount_requested", "3000"),
        ("materials", "id_card"),
        ("materials", "hukou_book"),
        ("materials", "income_statement"),
        ("materials", "verification_authorization"),
        ("materials", "hardship_statement"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[tokio::test]
async fn the_form_keeps_what_was_typed_shows_errors_in_chinese_and_a_duplicate_links_the_open_case() {
    let platform = Platform::start(None, 0).await;
    let wb = &platform.workbench;
    let session = dev_session(wb, "role=window_clerk&township=330102001&sub=clerk-7").await;
    let (_, html) = page(wb, &session, "/applications/new").await;
    let csrf = csrf_of(&html);
    let id = id_number("33010219800307123");
    let post = |form: Vec<(String, String)>| {
        let session = session.clone();
        async move {
            let answer =
                http().post(format!("{wb}/applications/new")).header(COOKIE, session).form(&form).send().await.unwrap();
            let status = answer.status();
            let location = answer.headers().get(LOCATION).map(|l| l.to_str().unwrap().to_string());
            (status, location, answer.text().await.unwrap().replace("&#x2f;", "/"))
        }
    };

    // Errors: a bad phone and an amount that is not one. All shown, all typed values kept.
    let mut bad = temporary_aid_form(&csrf, &id, "k-1");
    bad.iter_mut().find(|(k, _)| k == "applicant.phone").unwrap().1 = "12345".into();
    let (status, _, html) = post(bad.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("西湖区文三路1号") && html.contains(&id) && html.contains("value=\"12345\""),
        "typed values stay"
    );
    assert!(html.contains("联系电话应为11位手机号或带区号的固定电话"), "{html}");
    bad.iter_mut().find(|(k, _)| k == "temporary.amount_requested").unwrap().1 = "三千".into();
    let (status, _, html) = post(bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("请填写金额（元），最多两位小数") && html.contains("value=\"三千\""));

    // Accepted: to the case view. A retry of the same submission is the same case.
    let (status, location, _) = post(temporary_aid_form(&csrf, &id, "k-2")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let case = location.unwrap();
    let (_, _, _) = post(temporary_aid_form(&csrf, &id, "k-2")).await;
    let (_, list) = page(wb, &session, "/cases").await;
    assert_eq!(list.matches("href=\"/cases/").count(), 1, "a retry never makes a second case");
    let (_, view) = page(wb, &session, &case.replace("?accepted=1", "")).await;
    assert!(view.contains("临时救助") && view.contains("330102********"), "masked in the view");

    // A new application for the same line: the open case is named and linked.
    let (status, _, html) = post(temporary_aid_form(&csrf, &id, "k-3")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("不能重复受理"), "{html}");
    let case_path = case.split('?').next().unwrap();
    assert!(html.contains(&format!("href=\"{case_path}\"")), "the open case is linked: {html}");

    // Search by ID number finds it; by a part of it, nothing.
    let (_, found) = page(wb, &session, &format!("/cases?q={id}")).await;
    assert!(found.contains(case_path));
    let (_, none) = page(wb, &session, &format!("/cases?q={}", &id[..10])).await;
    assert!(!none.contains(case_path));
}

/// Where the case view's live part asks for itself next.
fn asks_next(html: &str) -> String {
    let marker = "id=\"case-live\" hx-get=\"";
    let at = html.find(marker).unwrap_or_else(|| panic!("no live part: {html}")) + marker.len();
    html[at..].chars().take_while(|c| *c != '"').collect::<String>().replace("&amp;", "&")
}

#[tokio::test]
async fn the_case_views_live_part_waits_for_the_case_to_change_and_then_shows_it() {
    let platform = Platform::start(None, 0).await;
    let wb = platform.workbench.clone();
    let session = dev_session(&wb, "role=window_clerk&township=330102001&sub=clerk-7").await;
    let (_, form) = page(&wb, &session, "/applications/new").await;
    let id = id_number("33010219800307123");
    let accepted = http()
        .post(format!("{wb}/applications/new"))
        .header(COOKIE, &session)
        .form(&temporary_aid_form(&csrf_of(&form), &id, "k-live"))
        .send()
        .await
        .unwrap();
    let case_path = accepted.headers()[LOCATION].to_str().unwrap().split('?').next().unwrap().to_string();
    let (_, view) = page(&wb, &session, &case_path).await;
    let mut live = asks_next(&view);
    assert!(live.starts_with(&format!("{case_path}/live?etag=")), "{live}");
    // It asks again a second after a wait ends unchanged (or fails).
    let every = format!("hx-trigger=\"load, every {}s\"", LIVE_WAIT.as_secs() + 1);
    assert!(view.contains(&every), "{view}");

    // The page follows the case (intake notes the referral just after the
    // submission) until nothing changes: then, after the wait, "no change"
    // (204, which htmx leaves in place).
    let mut answers = 0;
    loop {
        let (status, part) = page(&wb, &session, &live).await;
        answers += 1;
        assert!(answers < 10, "the case keeps changing: {part}");
        match status {
            StatusCode::OK => live = asks_next(&part),
            StatusCode::NO_CONTENT => break,
            other => panic!("{other}: {part}"),
        }
    }

    // The clerk withdraws the case in another tab while the page waits:
    // the waiting request answers with the withdrawn case.
    let waiting = tokio::spawn({
        let (wb, session, live) = (wb.clone(), session.clone(), live.clone());
        async move { page(&wb, &session, &live).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let form = [("csrf", csrf_of(&view)), ("reason", "申请人已外出务工".to_string()), ("confirm", "yes".to_string())];
    let withdrawn =
        http().post(format!("{wb}{case_path}/withdraw")).header(COOKIE, &session).form(&form).send().await.unwrap();
    assert_eq!(withdrawn.status(), StatusCode::SEE_OTHER);
    let (status, part) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(part.contains("已撤回") && part.contains("申请人已外出务工"), "{part}");
    // It asks next with the new view's ETag: still current, so it waits again.
    let next = asks_next(&part);
    assert_ne!(next, live);
    assert_eq!(page(&wb, &session, &next).await.0, StatusCode::NO_CONTENT);
    // A page without an ETag (or with a stale one) is answered at once.
    let (status, part) = page(&wb, &session, &format!("{case_path}/live")).await;
    assert_eq!((status, part.contains("已撤回")), (StatusCode::OK, true));
}

#[tokio::test]
async fn operators_see_each_services_lag_and_dead_letters_and_other_roles_do_not() {
    let platform = Platform::start(None, 0).await;
    let wb = &platform.workbench;
    let operator = dev_session(wb, "role=operator&sub=ops-1").await;
    let (status, html) = page(wb, &operator, "/operations").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"svc-intake\"") && html.contains("发件箱积压"), "intake's lag is shown: {html}");
    assert!(html.contains("无死信"), "{html}");
    // The departments are not running here: the page says so instead of failing.
    assert!(html.contains("无法连接该服务"));

    let clerk = dev_session(wb, "role=window_clerk&township=330102001&sub=clerk-7").await;
    let (status, _) = page(wb, &clerk, "/operations").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn auditors_land_on_the_trail_and_the_chain_check_and_other_roles_do_not() {
    let platform = Platform::start(None, 0).await;
    let wb = &platform.workbench;
    let clerk = dev_session(wb, "role=window_clerk&township=330102001&sub=clerk-7").await;
    assert_eq!(page(wb, &clerk, "/cases").await.0, StatusCode::OK);

    let auditor = dev_session(wb, "role=auditor&sub=auditor-1").await;
    let answer = http().get(format!("{wb}/")).header(COOKIE, &auditor).send().await.unwrap();
    assert_eq!(answer.headers()["location"], "/audit", "an auditor lands on the trail");
    let (status, html) = page(wb, &auditor, "/audit?actor=clerk-7").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"chain-intake\"") && html.contains("完整"), "intake's chain is whole: {html}");
    assert!(html.contains("无法连接该服务"), "the departments are not running here: {html}");
    assert!(html.contains("GET /api/v1/cases") && html.contains("clerk-7"), "the clerk's list is in the trail: {html}");
    let (_, html) = page(wb, &auditor, "/audit?actor=nobody").await;
    assert!(html.contains("没有符合条件的记录"), "{html}");

    assert_eq!(page(wb, &clerk, "/audit").await.0, StatusCode::FORBIDDEN);
    let operator = dev_session(wb, "role=operator&sub=ops-1").await;
    assert_eq!(page(wb, &operator, "/audit").await.0, StatusCode::FORBIDDEN);
}
