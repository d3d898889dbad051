//! Production tokens against a real HTTP identity provider on loopback
//! publishing its keys as a JWK Set: RS256 and ES256 keys verify; issuer,
//! audience and algorithm are held to; a rotated key is fetched without a
//! restart, made-up key ids cannot make the services hammer the provider,
//! and the keys held keep working while the provider is away. A service in
//! production takes the provider's tokens and refuses development ones, and
//! refuses to start with development tokens only, or without an audit key.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use onedoor_http_kit::Authenticator;
use onedoor_test_support::identity::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test]
async fn tokens_signed_with_a_published_rs256_or_es256_key_verify_for_this_issuer_and_audience_only() {
    let idp = Provider::start(&["ec1", "rsa", "enc"]).await;
    let auth = Authenticator::jwks(&idp.url, ISSUER, "onedoor").unwrap();
    let good = claims(ISSUER, "onedoor");
    assert_eq!(auth.verify(&token("ec1", &good)).await.unwrap().sub, "cw-1");
    assert_eq!(auth.verify(&token("rsa", &good)).await.unwrap().sub, "cw-1");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "the keys are fetched once and kept");

    for (why, token) in [
        ("another issuer", token("ec1", &claims("https://evil.test/realms/onedoor", "onedoor"))),
        ("another audience", token("ec1", &claims(ISSUER, "account"))),
        ("an unknown key", token("ec2", &good)),
        (
            "a development token",
            onedoor_http_kit::auth::mint_hs256(
                b"a-development-secret-of-32-bytes",
                &serde_json::from_value(good.clone()).unwrap(),
            ),
        ),
    ] {
        let refused = auth.verify(&token).await.expect_err(why);
        assert_eq!(refused.status, 401, "{why}");
    }
    // A token claiming HS256 with the published key's id (algorithm confusion).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa".into());
    let confused = jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(b"AQAB")).unwrap();
    assert_eq!(auth.verify(&confused).await.unwrap_err().status, 401);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_without_a_restart_and_the_held_keys_outlive_an_outage() {
    let idp = Provider::start(&["ec1"]).await;
    let auth = Authenticator::jwks(&idp.url, ISSUER, "onedoor").unwrap();
    let good = claims(ISSUER, "onedoor");
    assert!(auth.verify(&token("ec1", &good)).await.is_ok());

    // The provider rotates to ec2. Tokens naming it verify once the keys are
    // fetched again (at most every two seconds, whatever tokens arrive).
    *idp.keys.lock().unwrap() = vec!["ec1", "ec2"];
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(auth.verify(&token("ec2", &good)).await.is_ok(), "the new key, without a restart");
    let fetches = idp.fetches.load(Ordering::SeqCst);
    assert_eq!(fetches, 2);
    let mut made_up = Header::new(Algorithm::ES256);
    for n in 0..20 {
        made_up.kid = Some(format!("made-up-{n}"));
        let (key, _) = signing_key("ec1");
        let token = jsonwebtoken::encode(&made_up, &good, &key).unwrap();
        assert_eq!(auth.verify(&token).await.unwrap_err().status, 401);
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), fetches, "made-up key ids fetch nothing more within the window");

    // The provider goes away: the keys held still verify.
    *idp.up.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(auth.verify(&token("ec2", &good)).await.is_ok());
    assert!(auth.verify(&token("ec1", &good)).await.is_ok());
}

#[tokio::test]
async fn a_service_in_production_takes_the_providers_tokens_and_refuses_development_ones() {
    let idp = Provider::start(&["ec1"]).await;
    let db = onedoor_test_support::fresh_database().await;
    let nats = onedoor_test_support::TestNats::start();
    let mut config = onedoor_test_support::driver::host_config(&db.url, &nats, "intake");
    config.environment = "production".into();
    let build = |config: onedoor_service_host::HostConfig| async move {
        onedoor_service_host::App::build(intake::Intake::with_defaults().unwrap(), &config, 0).await
    };
    let error = build(config.clone()).await.err().expect("development tokens in production").to_string();
    assert!(error.contains("development tokens"), "{error}");

    config.jwt_secret = None;
    config.jwks_url = Some(idp.url.clone());
    config.jwt_issuer = Some(ISSUER.into());
    let error = build(config.clone()).await.err().expect("production without an audit key").to_string();
    assert!(error.contains("ONEDOOR_AUDIT_KEY"), "{error}");
    config.audit_key = Some("the audit chain's key, 32 bytes or more".into());
    let error = build(config.clone()).await.err().expect("production without a key-encryption key").to_string();
    assert!(error.contains("ONEDOOR_KEK"), "{error}");
    config.kek = Some("not base64!".into());
    let error = build(config.clone()).await.err().expect("a malformed key-encryption key").to_string();
    assert!(error.contains("ONEDOOR_KEK") && error.contains("base64"), "{error}");
    config.kek = Some(onedoor_personal_data::FileKek::generate());
    let keyless = onedoor_service_host::HostConfig { nats_nkey: None, ..config.clone() };
    let error = build(keyless).await.err().expect("production without a broker user").to_string();
    assert!(error.contains("ONEDOOR_NATS_NKEY"), "{error}");
    let app = build(config).await.unwrap();
    let base = format!("http://{}", app.address());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
    let client = onedoor_test_support::driver::Client::new(base);
    let clerk = serde_json::json!({"sub": "clerk-7", "role": "window_clerk", "township": "330102001",
        "iss": ISSUER, "aud": "onedoor", "exp": chrono::Utc::now().timestamp() + 300});
    let (status, body, _) = client.get(&token("ec1", &clerk), "/api/v1/materials").await;
    assert_eq!(status, 200, "{body}");
    let (status, problem, _) = client.get(&onedoor_test_support::driver::tokens::clerk(), "/api/v1/materials").await;
    assert_eq!((status, problem["status"].as_i64()), (401, Some(401)), "a development token: {problem}");
    stop.cancel();
    running.await.unwrap().unwrap();
}

/// The compose realm (deploy/keycloak/onedoor-realm.json): each of its staff
/// accounts gets, through the workbench client's scopes, the access token
/// Keycloak would issue (its mappers' claims and audience, `sub` from the
/// built-in `basic` scope, and the claims Keycloak always adds); the
/// services take it as the account's role, township and department. The
/// accounts' attributes may only take values the services know, and only
/// an administrator may change them.
#[tokio::test]
async fn the_compose_realms_staff_get_tokens_the_services_take() {
    use onedoor_http_kit::Role;
    use serde_json::{Value, json};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/keycloak/onedoor-realm.json");
    let realm: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let profile = &realm["components"]["org.keycloak.userprofile.UserProfileProvider"][0]["config"];
    let profile: Value = serde_json::from_str(profile["kc.user.profile.config"][0].as_str().unwrap()).unwrap();
    let attribute = |name: &str| profile["attributes"].as_array().unwrap().iter().find(|a| a["name"] == name).cloned();
    let options = |name: &str| -> Vec<String> {
        let listed = &attribute(name).unwrap()["validations"]["options"]["options"];
        listed.as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(options("role"), Role::ALL.map(|r| r.as_str().to_string()));
    assert_eq!(options("department"), onedoor_contracts::Department::ALL.map(|d| d.as_str().to_string()));
    let township = attribute("township").unwrap();
    assert_eq!(township["validations"]["pattern"]["pattern"], "^[0-9]{9}$");
    for name in ["role", "township", "department"] {
        assert_eq!(
            attribute(name).unwrap()["permissions"]["edit"],
            json!(["admin"]),
            "staff cannot change their {name}"
        );
    }

    let client = realm["clients"].as_array().unwrap().iter().find(|c| c["clientId"] == "onedoor-workbench").unwrap();
    let scopes: Vec<&Value> = realm["clientScopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| client["defaultClientScopes"].as_array().unwrap().contains(&s["name"]))
        .collect();
    let idp = Provider::start(&["rsa"]).await;
    let auth = Authenticator::jwks(&idp.url, ISSUER, onedoor_http_kit::auth::DEFAULT_AUDIENCE).unwrap();
    let users = realm["users"].as_array().unwrap();
    assert_eq!(users.len(), Role::ALL.len(), "one account of each role");
    for user in users {
        let now = chrono::Utc::now().timestamp();
        let sub = uuid::Uuid::now_v7().to_string();
        let mut token_claims = json!({"exp": now + 900, "iat": now, "jti": uuid::Uuid::now_v7().to_string(),
            "iss": ISSUER, "sub": sub, "typ": "Bearer", "azp": "onedoor-workbench", "sid": uuid::Uuid::now_v7().to_string(),
            "acr": "1", "scope": "openid", "allowed-origins": ["https://onedoor.localhost:8443"]});
        let mut audiences = Vec::new();
        for mapper in scopes.iter().flat_map(|s| s["protocolMappers"].as_array().unwrap()) {
            let config = &mapper["config"];
            if config["access.token.claim"] != "true" {
                continue;
            }
            match mapper["protocolMapper"].as_str().unwrap() {
                "oidc-usermodel-attribute-mapper" => {
                    assert_eq!(config["multivalued"], "false", "one value per claim");
                    let values = &user["attributes"][config["user.attribute"].as_str().unwrap()];
                    if let Some(value) = values.get(0) {
                        token_claims[config["claim.name"].as_str().unwrap()] = value.clone();
                    }
                }
                "oidc-audience-mapper" => audiences.push(config["included.custom.audience"].clone()),
                other => panic!("a mapper this test does not know: {other}"),
            }
        }
        token_claims["aud"] = if audiences.len() == 1 { audiences[0].clone() } else { Value::Array(audiences) };
        let taken =
            auth.verify(&token("rsa", &token_claims)).await.unwrap_or_else(|p| panic!("{}: {p:?}", user["username"]));
        let attribute = |name: &str| user["attributes"][name].get(0).and_then(Value::as_str).map(str::to_string);
        assert_eq!(taken.sub, sub);
        assert_eq!(Some(taken.role.as_str().to_string()), attribute("role"));
        assert_eq!(taken.township, attribute("township"));
        assert_eq!(taken.department.map(|d| d.as_str().to_string()), attribute("department"));
    }
}
