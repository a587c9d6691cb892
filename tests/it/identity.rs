//! End-user identity against a real OIDC issuer process (`tests/oauth-provider` as an IDP):
//! the app's identity provider, JWT verification and every way a token must fail, app users
//! made on first sight, and grants that belong to one user only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use portcullis_tests::oauth::{AUDIENCE, Provider};
use portcullis_tests::*;
use serde_json::{Value, json};

async fn with_idp() -> (&'static Env, TestApp, Provider) {
    let env = env().await;
    let app = app_fixture().await;
    let idp = Provider::start().await;
    let r = app.use_idp(env, &idp, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    (env, app, idp)
}

fn user(sub: &str) -> Value {
    json!({"sub": sub, "email": format!("{sub}@example.test")})
}

async fn list_as(env: &Env, app: &TestApp, token: &str) -> Resp {
    app.sdk(
        env,
        "POST",
        "/sdk/grants/list",
        json!({ "user_token": token }),
    )
    .await
}

/// The reason a refused token was given.
fn reason(r: &Resp) -> String {
    r.expect(401, "jwt_validation_error");
    r.body["details"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_identity_provider_is_configured_checked_and_read_back() {
    let env = env().await;
    let app = app_fixture().await;
    let idp = Provider::start().await;
    let path = format!("/v1/apps/{}/idp", app.app_id);
    app.org
        .op(env, "GET", &path, Value::Null)
        .await
        .expect(404, "idp_not_found");

    let bad = [
        (json!({"preset": "auth0", "audience": "a"}), "domain"),
        (
            json!({"preset": "auth0", "domain": "https://x.auth0.com", "audience": "a"}),
            "host name",
        ),
        (json!({"preset": "oidc", "audience": "a"}), "issuer"),
        (json!({"preset": "oidc", "issuer": idp.issuer}), "audience"),
        (
            json!({"preset": "oidc", "issuer": "http://idp.example.com", "jwks_url": "http://idp.example.com/jwks", "audience": "a"}),
            "https",
        ),
        (
            json!({"preset": "oidc", "issuer": idp.issuer, "audience": "a", "algorithms": ["HS256"]}),
            "RS256",
        ),
        (
            json!({"preset": "oidc", "issuer": idp.issuer, "audience": "a", "algorithms": []}),
            "empty",
        ),
        (
            json!({"preset": "oidc", "issuer": format!("{}/other", idp.issuer), "audience": "a"}),
            "could not read",
        ),
        (
            json!({"preset": "clerk", "domain": "clerk.acme.com", "issuer": "https://x", "audience": "a"}),
            "derive",
        ),
        (
            json!({"preset": "oidc", "issuer": idp.issuer, "audience": "a", "surprise": 1}),
            "surprise",
        ),
    ];
    for (body, words) in bad {
        let r = app.org.op(env, "PUT", &path, body.clone()).await;
        r.expect(422, "validation_error");
        assert!(
            r.body["message"].as_str().unwrap().contains(words),
            "{body} → {}",
            r.body
        );
    }
    app.org
        .op(env, "GET", &path, Value::Null)
        .await
        .expect(404, "idp_not_found");

    // Discovery finds the JWKS URL; presets derive theirs from the domain.
    let made = app.use_idp(env, &idp, json!({})).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let made = made.body.clone();
    assert_eq!(made["jwks_url"], format!("{}/jwks", idp.issuer));
    assert_eq!(made["algorithms"], json!(["RS256"]));
    assert_eq!(made["claims"]["user_id"], "sub");
    assert_eq!(made["claims_locked"], false);
    let read = app.org.op(env, "GET", &path, Value::Null).await;
    assert_eq!(read.ok()["idp_id"], made["idp_id"]);

    let auth0 = app
        .org
        .op(
            env,
            "PUT",
            &path,
            json!({"preset": "auth0", "domain": "Acme.us.auth0.com", "audience": "https://api.acme"}),
        )
        .await;
    let auth0 = auth0.ok();
    assert_eq!(auth0["issuer"], "https://acme.us.auth0.com/");
    assert_eq!(
        auth0["jwks_url"],
        "https://acme.us.auth0.com/.well-known/jwks.json"
    );
    assert_eq!(
        auth0["idp_id"], made["idp_id"],
        "reconfiguring keeps the ID"
    );
    let okta = app
        .org
        .op(
            env,
            "PUT",
            &path,
            json!({"preset": "okta", "domain": "acme.okta.com", "audience": "api://default"}),
        )
        .await;
    assert_eq!(
        okta.ok()["jwks_url"],
        "https://acme.okta.com/oauth2/default/v1/keys"
    );
    assert_eq!(okta.ok()["claims"]["groups"], "groups");

    let deleted = app.org.op(env, "DELETE", &path, Value::Null).await;
    assert_eq!(deleted.status, 204);
    app.org
        .op(env, "GET", &path, Value::Null)
        .await
        .expect(404, "idp_not_found");
}

#[tokio::test]
async fn without_an_identity_provider_user_tokens_are_refused() {
    let env = env().await;
    let app = app_fixture().await;
    let idp = Provider::start().await;
    let token = idp.id_token(user("u1")).await;
    let r = list_as(env, &app, &token).await;
    assert_eq!(reason(&r), "no_identity_provider");
}

#[tokio::test]
async fn a_valid_token_names_one_app_user_made_on_first_sight_and_locks_the_mappings() {
    let (env, app, idp) = with_idp().await;
    let token = idp.id_token(user("alice")).await;
    list_as(env, &app, &token).await.ok();
    let again = idp.id_token(user("alice")).await;
    list_as(env, &app, &again).await.ok();
    let rows = app.audit(env, "action=sdk_grants_list").await;
    assert_eq!(rows.len(), 2);
    let principal = &rows[0]["principal_id"];
    assert!(principal.is_string());
    assert!(
        rows.iter()
            .all(|r| r["principal_type"] == "user" && r["principal_id"] == *principal)
    );
    // The token itself is never in the audit trail.
    assert!(!serde_json::to_string(&rows).unwrap().contains(&token));

    let bob = idp.id_token(user("bob")).await;
    list_as(env, &app, &bob).await.ok();
    let rows = app.audit(env, "action=sdk_grants_list").await;
    assert_ne!(
        rows[0]["principal_id"], *principal,
        "another subject, another user"
    );

    // After the first sign-in the claim mappings are locked; the rest may change.
    let path = format!("/v1/apps/{}/idp", app.app_id);
    let read = app.org.op(env, "GET", &path, Value::Null).await;
    assert_eq!(read.ok()["claims_locked"], true);
    app.use_idp(env, &idp, json!({"claims": {"user_id": "email"}}))
        .await
        .expect(409, "idp_claims_locked");
    // Nor may the issuer change: its subjects would become these users.
    let other = Provider::start().await;
    app.use_idp(env, &other, json!({}))
        .await
        .expect(409, "idp_issuer_locked");
    app.use_idp(env, &idp, json!({"audience": [AUDIENCE, "other"]}))
        .await
        .ok();
}

fn forge(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = URL_SAFE_NO_PAD.encode(sign(input.as_bytes()));
    format!("{input}.{sig}")
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_reason_and_nothing_is_listed() {
    let (env, app, idp) = with_idp().await;
    let now = now();
    let good = idp.id_token(user("carol")).await;
    list_as(env, &app, &good).await.ok();

    let jwks = idp.jwks().await;
    let public = jwks["keys"][0].clone();
    let kid = public["kid"].as_str().unwrap().to_string();
    let claims = payload(&good);
    let hmac_with = |secret: Vec<u8>| {
        move |m: &[u8]| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
            mac.update(m);
            mac.finalize().into_bytes().to_vec()
        }
    };
    let mut tampered = claims.clone();
    tampered["sub"] = json!("mallory");
    let good_sig = good.split('.').nth(2).unwrap().to_string();
    let resigned = |claims: &Value| {
        let header = good.split('.').next().unwrap();
        format!(
            "{header}.{}.{good_sig}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    };
    let mut cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            idp.id_token(json!({"sub": "carol", "exp": now - 3600}))
                .await,
            "expired",
        ),
        (
            "not yet valid",
            idp.id_token(json!({"sub": "carol", "nbf": now + 3600}))
                .await,
            "not_yet_valid",
        ),
        (
            "wrong audience",
            idp.id_token(json!({"sub": "carol", "aud": "someone-else"}))
                .await,
            "wrong_audience",
        ),
        (
            "no audience",
            idp.id_token(json!({"sub": "carol", "aud": null})).await,
            "wrong_audience",
        ),
        (
            "wrong issuer",
            idp.id_token(json!({"sub": "carol", "iss": "https://evil.example.com"}))
                .await,
            "wrong_issuer",
        ),
        (
            "no subject",
            idp.id_token(json!({"sub": null})).await,
            "missing_claim",
        ),
        (
            "no expiry",
            idp.id_token(json!({"sub": "carol", "exp": null})).await,
            "missing_claim",
        ),
        (
            "alg none",
            forge(json!({"alg": "none", "kid": kid}), &claims, |_| Vec::new()),
            "algorithm_not_allowed",
        ),
        (
            "HS256 keyed with the public JWK",
            forge(
                json!({"alg": "HS256", "kid": kid}),
                &claims,
                hmac_with(public.to_string().into_bytes()),
            ),
            "algorithm_not_allowed",
        ),
        (
            "HS256 keyed with the modulus",
            forge(
                json!({"alg": "HS256", "kid": kid}),
                &claims,
                hmac_with(
                    URL_SAFE_NO_PAD
                        .decode(public["n"].as_str().unwrap())
                        .unwrap(),
                ),
            ),
            "algorithm_not_allowed",
        ),
        (
            "payload changed after signing",
            resigned(&tampered),
            "bad_signature",
        ),
        ("not a JWT", "not-a-jwt".into(), "malformed"),
        ("empty", String::new(), "malformed"),
    ];
    // (The IDP signs with its keys in turn: new keys come after the tokens above.)
    let es_kid = idp.new_key("ES256").await;
    cases.push((
        "ES256 while only RS256 is allowed",
        idp.id_token_with(json!({"claims": {"sub": "carol", "aud": AUDIENCE}, "kid": es_kid}))
            .await,
        "algorithm_not_allowed",
    ));
    for (what, token, want) in cases {
        let r = list_as(env, &app, &token).await;
        assert_eq!(reason(&r), want, "{what}: {}", r.body);
        assert!(r.body.get("grants").is_none());
        assert!(
            !r.body.to_string().contains(&token) || token.is_empty(),
            "{what}: the token is echoed"
        );
    }

    // Allowing ES256 (and only then) admits the same kind of token.
    app.use_idp(env, &idp, json!({"algorithms": ["RS256", "ES256"]}))
        .await
        .ok();
    let es = idp
        .id_token_with(json!({"claims": {"sub": "carol", "aud": AUDIENCE}, "kid": es_kid}))
        .await;
    list_as(env, &app, &es).await.ok();
    let ed_kid = idp.new_key("EdDSA").await;
    app.use_idp(env, &idp, json!({"algorithms": ["EdDSA"]}))
        .await
        .ok();
    let ed = idp
        .id_token_with(json!({"claims": {"sub": "carol", "aud": AUDIENCE}, "kid": ed_kid}))
        .await;
    list_as(env, &app, &ed).await.ok();
    let rs = idp
        .id_token_with(json!({"claims": {"sub": "carol", "aud": AUDIENCE}, "kid": kid}))
        .await;
    assert_eq!(
        reason(&list_as(env, &app, &rs).await),
        "algorithm_not_allowed",
        "RS256 is no longer allowed"
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_made_up_kids_do_not_hammer_the_idp() {
    let (env, app, idp) = with_idp().await;
    list_as(env, &app, &idp.id_token(user("dave")).await)
        .await
        .ok();
    let fetched = idp.log().await["jwks_requests"].as_u64().unwrap();
    assert_eq!(fetched, 1, "keys are fetched once and cached");
    list_as(env, &app, &idp.id_token(user("dave")).await)
        .await
        .ok();
    assert_eq!(idp.log().await["jwks_requests"], fetched);

    // The IDP rotates: a token signed with the new key forces one refetch and verifies.
    let kid = idp.new_key("RS256").await;
    let rotated = idp
        .id_token_with(json!({"claims": {"sub": "dave", "aud": AUDIENCE}, "kid": kid}))
        .await;
    list_as(env, &app, &rotated).await.ok();
    assert_eq!(idp.log().await["jwks_requests"], fetched + 1);

    // A flood of made-up kids right after: refused, and no more fetches for a while.
    let good = idp.id_token(user("dave")).await;
    let claims = payload(&good);
    for i in 0..20 {
        let forged = forge(
            json!({"alg": "RS256", "kid": format!("made-up-{i}")}),
            &claims,
            |_| vec![1; 256],
        );
        assert_eq!(reason(&list_as(env, &app, &forged).await), "unknown_key");
    }
    assert_eq!(idp.log().await["jwks_requests"], fetched + 1);
}

#[tokio::test]
async fn a_token_of_another_apps_identity_provider_is_refused() {
    let (env, app_a, _idp_a) = with_idp().await;
    let (_, app_b, idp_b) = with_idp().await;
    let token_b = idp_b.id_token(user("erin")).await;
    list_as(env, &app_b, &token_b).await.ok();
    let r = list_as(env, &app_a, &token_b).await;
    assert!(
        ["unknown_key", "wrong_issuer"].contains(&reason(&r).as_str()),
        "{}",
        r.body
    );
}

/// A managed-secret grant of the app's secret to the user a token names: its ID.
async fn grant_to(env: &Env, app: &TestApp, token: &str, label: &str) -> String {
    let r = app
        .sdk(
            env,
            "POST",
            &format!("/sdk/managed-secrets/{}/grants", app.secret_id),
            json!({"principal": {"type": "user", "user_token": token, "label": label}}),
        )
        .await;
    assert_eq!(r.ok()["principal_type"], "user");
    r.ok()["grant_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn each_user_reaches_only_their_own_grants() {
    let (env, app, idp) = with_idp().await;
    let (t1, t2) = (
        idp.id_token(user("frank")).await,
        idp.id_token(user("grace")).await,
    );
    let g1 = grant_to(env, &app, &t1, "frank's").await;
    let g2 = grant_to(env, &app, &t2, "grace's").await;
    let slug = app
        .sdk(env, "POST", "/sdk/grants/list", json!({}))
        .await
        .ok()["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grant_id"] == g1.as_str())
        .expect("the app lists every grant")["managed_secret_slug"]
        .as_str()
        .unwrap()
        .to_string();

    // Listing: each user sees their own grant only.
    for (token, mine, theirs) in [(&t1, &g1, &g2), (&t2, &g2, &g1)] {
        let listed = list_as(env, &app, token).await;
        let ids: Vec<&str> = listed.ok()["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["grant_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![mine.as_str()], "not {theirs}");
    }

    // Provider mode picks the caller's own grant.
    let target = json!({"method": "GET", "url": "http://127.0.0.1:9/x"});
    let by_provider =
        |token: &str| json!({"provider_id": slug, "user_token": token, "request": target});
    let r = app.sdk(env, "POST", "/sdk/token", by_provider(&t1)).await;
    assert_eq!(r.ok()["grant_id"], g1.as_str());
    let r = app.sdk(env, "POST", "/sdk/token", by_provider(&t2)).await;
    assert_eq!(r.ok()["grant_id"], g2.as_str());

    // By ID: another user's grant is missing; the app's own grant is refused by name.
    let by_id = |grant: &str, token: &str| json!({"grant_id": grant, "user_token": token, "request": target});
    app.sdk(env, "POST", "/sdk/token", by_id(&g2, &t1))
        .await
        .expect(404, "grant_not_found");
    app.sdk(env, "POST", "/sdk/token", by_id(&app.grant_id, &t1))
        .await
        .expect(403, "system_grant_user_token_mismatch");
    app.sdk(env, "POST", "/sdk/token", by_id(&g1, &t1))
        .await
        .ok();

    // Revocation: only by its owner (or the app without a user token).
    let revoke = |grant: &str| format!("/sdk/oauth/grants/{grant}/revoke");
    app.sdk(env, "POST", &revoke(&g2), json!({"user_token": t1}))
        .await
        .expect(404, "grant_not_found");
    app.sdk(env, "POST", &revoke(&g2), json!({"user_token": t2}))
        .await
        .ok();
    app.sdk(env, "POST", "/sdk/token", by_provider(&t2))
        .await
        .expect(404, "grant_not_found");
    app.sdk(env, "POST", "/sdk/token", by_provider(&t1))
        .await
        .ok();
}

#[tokio::test]
async fn a_user_with_two_grants_of_one_provider_must_name_one() {
    let (env, app, idp) = with_idp().await;
    let token = idp.id_token(user("heidi")).await;
    let work = grant_to(env, &app, &token, "work").await;
    let home = grant_to(env, &app, &token, "home").await;
    let slug_of = |list: &Value| {
        list["grants"][0]["managed_secret_slug"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let slug = slug_of(list_as(env, &app, &token).await.ok());
    let target = json!({"method": "GET", "url": "http://127.0.0.1:9/x"});
    let r = app
        .sdk(
            env,
            "POST",
            "/sdk/token",
            json!({"provider_id": slug, "user_token": token, "request": target}),
        )
        .await;
    r.expect(409, "ambiguous_grant");
    let mut ids: Vec<&str> = r.body["grant_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![work.as_str(), home.as_str()];
    want.sort();
    assert_eq!(ids, want, "only the caller's own candidates");
    assert_eq!(r.body["app_user_ids"].as_array().unwrap().len(), 1);
    let r = app
        .sdk(
            env,
            "POST",
            "/sdk/token",
            json!({"provider_id": slug, "user_token": token, "label": "home", "request": target}),
        )
        .await;
    assert_eq!(r.ok()["grant_id"], home.as_str());
}

#[tokio::test]
async fn verify_token_and_resolve_identity_answer_the_verified_user_only() {
    let env = env().await;
    let app = app_fixture().await;
    let idp = Provider::start().await;
    let token = idp.id_token(user("ivan")).await;
    let verify = |t: &str| json!({ "token": t });
    app.sdk(env, "POST", "/sdk/auth/verify-token", verify(&token))
        .await
        .expect(400, "idp_not_configured");
    app.use_idp(env, &idp, json!({"claims": {"groups": "groups"}}))
        .await
        .ok();
    let r = app
        .sdk(env, "POST", "/sdk/auth/verify-token", verify(&token))
        .await;
    assert_eq!(
        r.ok(),
        &json!({"sub": "ivan"}),
        "the subject and nothing else"
    );
    let expired = idp
        .id_token(json!({"sub": "ivan", "exp": now() - 3600}))
        .await;
    app.sdk(env, "POST", "/sdk/auth/verify-token", verify(&expired))
        .await
        .expect(401, "jwt_validation_error");

    let grouped = idp
        .id_token(json!({"sub": "ivan", "email": "ivan@example.test", "groups": ["eng", "ops"]}))
        .await;
    let resolve = |body: Value| app.sdk(env, "POST", "/sdk/identity/resolve", body);
    let plain = resolve(json!({"user_token": grouped})).await;
    let plain = plain.ok();
    assert_eq!(plain["app_id"], app.app_id.as_str());
    assert_eq!(plain["external_subject_id"], "ivan");
    assert_eq!(plain["group_ids"], json!(["eng", "ops"]));
    assert_eq!(plain["user_status"], "active");
    assert!(plain["email"].is_null(), "profile only on request");
    let profile = resolve(json!({"user_token": grouped, "include_profile": true})).await;
    assert_eq!(profile.ok()["email"], "ivan@example.test");
    assert_eq!(profile.ok()["app_user_id"], plain["app_user_id"]);
    // The app's backend may name a known user by ID; an unknown one is not found.
    let by_id = resolve(json!({"app_user_id": plain["app_user_id"]})).await;
    assert_eq!(by_id.ok()["external_subject_id"], "ivan");
    resolve(json!({"app_user_id": uuid::Uuid::new_v4().to_string()}))
        .await
        .expect(404, "app_user_not_found");
    let headless = resolve(json!({})).await;
    assert!(headless.ok()["app_user_id"].is_null());
}

#[tokio::test]
async fn identity_assertions_are_checked_signed_and_published() {
    let (env, app, idp) = with_idp().await;
    let jwks_path = format!("/sdk/identity/apps/{}/jwks.json", app.app_id);
    let published = || env.send(request("GET", &jwks_path, b""));
    assert_eq!(
        published().await.ok()["keys"],
        json!([]),
        "nothing signed yet"
    );
    let token = idp.id_token(user("judy")).await;
    let assert = |body: Value| app.sdk(env, "POST", "/sdk/identity/assert", body);
    for bad in [
        json!({"audience": "not a uri"}),
        json!({"audience": format!("https://x.example/{}", "a".repeat(600))}),
        json!({"audience": "https://x.example", "ttl_seconds": 9}),
        json!({"audience": "https://x.example", "ttl_seconds": 301}),
        json!({"audience": "https://x.example", "user_token": token, "app_user_id": "x"}),
    ] {
        assert(bad.clone()).await.expect(422, "validation_error");
    }
    let r = assert(json!({"audience": "https://x.example", "user_token": token})).await;
    let minted = r.ok().clone();
    let jws = minted["token"].as_str().unwrap();
    let part = |i: usize| -> Value {
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jws.split('.').nth(i).unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let (header, claims) = (part(0), part(1));
    assert_eq!(
        (&header["alg"], &header["typ"]),
        (&json!("ES256"), &json!("alter-identity+jwt"))
    );
    assert_eq!(
        claims["sub"],
        format!(
            "alter:user:{}",
            minted["identity"]["app_user_id"].as_str().unwrap()
        )
    );
    assert_eq!(claims["azp"], app.app_id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    let keys = published().await.ok()["keys"].clone();
    assert_eq!(keys[0]["kid"], header["kid"]);
    assert!(keys[0].get("d").is_none(), "no private part is published");
    // The same key signs the next one; the sealed private key is not in any answer.
    let again = assert(json!({"audience": "https://x.example"})).await;
    let again_header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(
                again.ok()["token"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again_header["kid"], header["kid"]);
}

#[tokio::test]
async fn a_sign_in_session_hands_the_app_the_users_token_once() {
    use portcullis_tests::oauth::{callback_target, web};
    let (env, app, idp) = with_idp().await;
    let start = || app.sdk(env, "POST", "/sdk/auth/session", json!({}));
    start().await.expect(409, "idp_signin_not_configured");
    let signin = json!({"signin": {"client_id": "portcullis-test", "client_secret": "portcullis-test-secret"}});
    let configured = app.use_idp(env, &idp, signin).await;
    assert_eq!(configured.ok()["signin"]["client_id"], "portcullis-test");
    assert!(
        !configured
            .body
            .to_string()
            .contains("portcullis-test-secret")
    );
    // The stored client secret is never sent to another issuer's token endpoint.
    let elsewhere = Provider::start().await;
    app.use_idp(
        env,
        &elsewhere,
        json!({"signin": {"client_id": "portcullis-test"}}),
    )
    .await
    .expect(422, "validation_error");
    app.use_idp(
        env,
        &idp,
        json!({"signin": {"client_id": "portcullis-test"}}),
    )
    .await
    .ok();

    let session = start().await;
    assert_eq!(session.status, 201, "{}", session.body);
    let token = session.body["session_token"].as_str().unwrap().to_string();
    let auth_url = session.body["auth_url"].as_str().unwrap().to_string();
    let query: Vec<(String, String)> = url::Url::parse(&auth_url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert!(auth_url.starts_with(&format!("{}/authorize?", idp.issuer)));
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    assert!(q("nonce").is_some() && q("state").is_some());
    assert!(
        !auth_url.contains(&token),
        "the poll credential is not in the link"
    );
    let poll = |t: &str| app.sdk(env, "POST", "/sdk/auth/poll", json!({"session_token": t}));
    assert_eq!(poll(&token).await.ok()["status"], "pending");

    // The person signs in at the IdP and comes back.
    let location = idp.authorize(&auth_url).await;
    let (status, page) = web(env, "GET", &callback_target(&location), Value::Null).await;
    assert_eq!(status, 200);
    assert!(page.contains("signed in"), "{page}");
    let done = poll(&token).await;
    let done = done.ok();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["user_info"]["sub"], "user-1");
    let user_token = done["user_token"].as_str().unwrap();
    list_as(env, &app, user_token).await.ok();
    // Once only; and a replayed callback changes nothing.
    let again = poll(&token).await;
    assert_eq!(
        (&again.ok()["status"], &again.ok()["error_code"]),
        (&json!("error"), &json!("auth_session_used"))
    );
    let (_, replay) = web(env, "GET", &callback_target(&location), Value::Null).await;
    assert!(replay.contains("expired or was already used"), "{replay}");

    // A declined sign-in ends the session in error; a forged state finds nothing.
    idp.config(json!({"deny": true})).await;
    let declined = start().await;
    let declined_token = declined.body["session_token"].as_str().unwrap().to_string();
    let location = idp
        .authorize(declined.body["auth_url"].as_str().unwrap())
        .await;
    web(env, "GET", &callback_target(&location), Value::Null).await;
    let r = poll(&declined_token).await;
    assert_eq!(
        (&r.ok()["status"], &r.ok()["error_code"]),
        (&json!("error"), &json!("access_denied"))
    );
    let forged = format!(
        "/sdk/auth/callback?code=x&state={}.{}.{}",
        app.app_id.replace('-', ""),
        "0".repeat(32),
        "a".repeat(30)
    );
    let (status, page) = web(env, "GET", &forged, Value::Null).await;
    assert_eq!(status, 200);
    assert!(page.contains("expired or was already used"));
    // Another app's key cannot poll this app's session.
    let other = app_fixture().await;
    other
        .sdk(
            env,
            "POST",
            "/sdk/auth/poll",
            json!({"session_token": token}),
        )
        .await
        .expect(404, "auth_session_not_found");
}

#[tokio::test]
async fn a_groups_grant_reaches_its_members_only() {
    let (env, app, idp) = with_idp().await;
    let path = format!("/sdk/managed-secrets/{}/grants", app.secret_id);
    let group_grant = |extra: Value| {
        let mut principal = json!({"type": "group", "external_group_id": "eng", "label": "eng"});
        for (k, v) in extra.as_object().unwrap() {
            principal[k] = v.clone();
        }
        app.sdk(env, "POST", &path, json!({ "principal": principal }))
    };
    // Groups need a mapped groups claim, and this app's IdP.
    group_grant(json!({})).await.expect(422, "validation_error");
    let idp_id = app
        .use_idp(env, &idp, json!({"claims": {"groups": "groups"}}))
        .await
        .ok()["idp_id"]
        .as_str()
        .unwrap()
        .to_string();
    group_grant(json!({"idp_id": uuid::Uuid::new_v4().to_string()}))
        .await
        .expect(422, "validation_error");
    let made = group_grant(json!({ "idp_id": idp_id })).await;
    assert_eq!(made.ok()["principal_type"], "group");
    let grant = made.body["grant_id"].as_str().unwrap().to_string();

    let member = idp
        .id_token(json!({"sub": "kim", "groups": ["eng", "ops"]}))
        .await;
    let outsider = idp
        .id_token(json!({"sub": "lou", "groups": ["sales"]}))
        .await;
    let ids = |r: &Resp| -> Vec<String> {
        r.ok()["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["grant_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&list_as(env, &app, &member).await), vec![grant.clone()]);
    // Operators grant to groups too.
    let ops = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/secrets/{}/grants", app.app_id, app.secret_id),
            json!({"principal": {"type": "group", "external_group_id": "ops"}}),
        )
        .await;
    assert_eq!(ops.status, 201, "{}", ops.body);
    assert_eq!(ids(&list_as(env, &app, &member).await).len(), 2);
    assert!(ids(&list_as(env, &app, &outsider).await).is_empty());
    let target = json!({"method": "GET", "url": "http://127.0.0.1:9/x"});
    let by_id = |t: &str| json!({"grant_id": grant, "user_token": t, "request": target});
    app.sdk(env, "POST", "/sdk/token", by_id(&member))
        .await
        .ok();
    app.sdk(env, "POST", "/sdk/token", by_id(&outsider))
        .await
        .expect(404, "grant_not_found");
    // A group member cannot revoke the group's grant; the app can.
    app.sdk(
        env,
        "POST",
        &format!("/sdk/oauth/grants/{grant}/revoke"),
        json!({"user_token": member}),
    )
    .await
    .expect(404, "grant_not_found");
}
