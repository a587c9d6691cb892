//! OAuth providers and the Connect flow, against a real OAuth server process: provider
//! configuration, the hosted pages, `state` and PKCE, the callback, the grant it makes, and
//! every way the flow can end without one.

use portcullis_tests::oauth::{PROVIDER, Provider, authorize_url, browse, callback_target, web};
use portcullis_tests::*;
use serde_json::{Value, json};

async fn connected() -> (&'static Env, TestApp, Provider) {
    let env = env().await;
    let app = app_fixture().await;
    let p = Provider::start().await;
    app.use_provider(env, &p, &["read"], json!({})).await.ok();
    (env, app, p)
}

fn oauth_grants(list: &Value) -> Vec<Value> {
    list["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["grant_kind"] == "oauth")
        .cloned()
        .collect()
}

async fn grants_list(env: &Env, app: &TestApp) -> Vec<Value> {
    oauth_grants(
        app.sdk(env, "POST", "/sdk/grants/list", json!({}))
            .await
            .ok(),
    )
}

#[tokio::test]
async fn the_catalogue_and_specs_are_served() {
    let env = env().await;
    let app = app_fixture().await;
    let r = app
        .sdk(env, "GET", "/sdk/oauth/provider-catalog", Value::Null)
        .await;
    let providers = r.ok()["providers"].as_object().unwrap().clone();
    assert!(providers.len() >= 25, "{} providers", providers.len());
    for id in [
        "google",
        "github",
        "slack",
        "microsoft",
        "notion",
        "shopify",
    ] {
        let p = &providers[id];
        assert_eq!(p["id"], id);
        assert_eq!(p["status"], "active");
        assert!(p["available_scopes"].is_object() && p["default_scopes"].is_array());
    }
    let specs = app
        .sdk(env, "GET", "/sdk/provider-specs?kind=oauth", Value::Null)
        .await;
    assert!(specs.ok()["total"].as_u64().unwrap() >= 25);
    let one = app
        .sdk(env, "GET", "/sdk/provider-specs/oauth/github", Value::Null)
        .await;
    assert_eq!(one.ok()["provider_id"], "github");
    assert!(
        one.ok()["content_hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let ops = app
        .sdk(
            env,
            "GET",
            "/sdk/provider-specs/oauth/github/operations?limit=2",
            Value::Null,
        )
        .await;
    let first = ops.ok()["items"][0]["operation_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ops.ok()["limit"], 2);
    let detail = app
        .sdk(
            env,
            "GET",
            &format!("/sdk/provider-specs/oauth/github/operation?operation_id={first}"),
            Value::Null,
        )
        .await;
    assert_eq!(detail.ok()["operation_id"], first.as_str());
    app.sdk(env, "GET", "/sdk/provider-specs/oauth/nope", Value::Null)
        .await
        .expect(404, "provider_spec_not_found");
    app.sdk(env, "GET", "/sdk/provider-specs?kind=both", Value::Null)
        .await
        .expect(422, "validation_error");
    let managed = app
        .sdk(env, "GET", "/sdk/provider-specs?kind=managed", Value::Null)
        .await;
    assert!(managed.ok()["total"].as_u64().unwrap() >= 10);
}

#[tokio::test]
async fn provider_configuration_is_validated_and_its_secret_write_only() {
    let env = env().await;
    let app = app_fixture().await;
    let p = Provider::start().await;
    let path = |id: &str| format!("/v1/apps/{}/providers/{id}", app.app_id);
    // Not in the catalogue and not defined.
    app.org
        .op(
            env,
            "PUT",
            &path("acme"),
            json!({"client_id": "c", "client_secret": "s"}),
        )
        .await
        .expect(422, "validation_error");
    // A custom provider may not use plain http off loopback.
    let mut bad = p.definition(json!({}));
    bad["token_url"] = json!("http://oauth.example.com/token");
    app.org
        .op(
            env,
            "PUT",
            &path("acme"),
            json!({"client_id": "c", "client_secret": "s", "custom": bad}),
        )
        .await
        .expect(422, "validation_error");
    // A catalogue provider needs its client secret the first time.
    app.org
        .op(env, "PUT", &path("github"), json!({"client_id": "c"}))
        .await
        .expect(422, "validation_error");
    // Shopify URLs need the shop.
    app.org
        .op(
            env,
            "PUT",
            &path("shopify"),
            json!({"client_id": "c", "client_secret": "s"}),
        )
        .await
        .expect(422, "validation_error");
    let created = app
        .org
        .op(env, "PUT", &path("shopify"), json!({"client_id": "c", "client_secret": "shh-123456", "url_params": {"shop": "acme"}}))
        .await;
    assert_eq!(created.status, 201);
    assert!(!created.body.to_string().contains("shh-123456"));
    assert_eq!(created.body["client_secret_set"], true);
    assert_eq!(
        created.body["redirect_uri"],
        format!("{PUBLIC_URL}/sdk/oauth/callback")
    );
    // Updating keeps the secret when none is given.
    let updated = app
        .org
        .op(
            env,
            "PUT",
            &path("shopify"),
            json!({"client_id": "c2", "url_params": {"shop": "acme"}}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let listed = app
        .org
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/providers", app.app_id),
            Value::Null,
        )
        .await;
    assert_eq!(listed.ok()["total"], 1);
    app.org
        .op(env, "DELETE", &path("shopify"), Value::Null)
        .await;
    app.org
        .op(env, "GET", &path("shopify"), Value::Null)
        .await
        .expect(404, "provider_not_found");
}

#[tokio::test]
async fn a_connect_flow_makes_a_grant_whose_token_works_at_the_provider() {
    let (env, app, p) = connected().await;
    let session = app
        .connect_session(env, json!({"allowed_origin": "https://app.example", "return_url": "https://app.example/done"}))
        .await;
    assert!(session.starts_with("cs_"));
    // The page learns what to show from the session token alone.
    let (status, described) = web(
        env,
        "POST",
        "/sdk/oauth/connect/session/describe",
        json!({"session_token": session}),
    )
    .await;
    assert_eq!(status, 200, "{described}");
    let described: Value = serde_json::from_str(&described).unwrap();
    assert_eq!(described["app"]["name"], "test app");
    assert_eq!(described["providers"][0]["provider_id"], PROVIDER);
    assert_eq!(described["providers"][0]["scopes"], json!(["read"]));

    let url = authorize_url(env, &session).await;
    let parsed = url::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert_eq!(q["scope"], "read");
    assert_eq!(
        q["redirect_uri"],
        format!("{PUBLIC_URL}/sdk/oauth/callback")
    );
    assert!(q["state"].len() > 60, "an unguessable state");
    assert_eq!(app.poll(env, &session).await["status"], "pending");

    let location = p.authorize(&url).await;
    let (status, page) = web(env, "GET", &callback_target(&location), Value::Null).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("\"ok\":true") && page.contains("alter_connect")
            || page.contains("\"ok\":true"),
        "{page}"
    );
    let polled = app.poll(env, &session).await;
    assert_eq!(polled["status"], "completed");
    let g = &polled["grants"][0];
    assert_eq!(g["provider_id"], PROVIDER);
    assert_eq!(g["operation"], "creation");
    assert_eq!(g["scopes"], json!(["read"]));
    assert_eq!(g["account_identifier"], "user-1@example.test");
    let grant_id = g["grant_id"].as_str().unwrap();

    // The code was exchanged with the PKCE verifier.
    let log = p.log().await;
    let exchange = &log["token_requests"][0]["fields"];
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert!(exchange["code_verifier"].as_str().unwrap().len() >= 43);

    let t = app
        .token(env, grant_id, &format!("{}/api/me", p.issuer))
        .await;
    let token = t.ok()["access_token"].as_str().unwrap().to_string();
    assert_eq!(t.body["injection_format"], "Bearer {token}");
    assert_eq!(t.body["scopes"], json!(["read"]));
    assert_eq!(t.body["scope_mismatch"], false);
    assert!(t.body["expires_in"].as_i64().unwrap() > 3500);
    assert_eq!(p.api(&token).await, 200);
    // Only to the provider's own hosts.
    app.token(env, grant_id, "https://evil.example/steal")
        .await
        .expect(422, "blocked_destination");

    let listed = grants_list(env, &app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "active");
    assert_eq!(listed[0]["needs_reconnect"], false);
    assert_eq!(listed[0]["principal_type"], "system");

    // The flow is audited; no row carries the tokens.
    let rows = app.audit(env, "action=web_oauth_callback").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["grant_id"], grant_id);
    assert!(
        !serde_json::to_string(&app.audit(env, "").await)
            .unwrap()
            .contains(&token)
    );
    // The session is single-use: it cannot start another round trip.
    let (status, _) = web(
        env,
        "POST",
        "/sdk/oauth/connect/authorize",
        json!({"session_token": session, "provider_id": PROVIDER}),
    )
    .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn denied_consent_ends_in_connect_denied_with_nothing_stored() {
    let (env, app, p) = connected().await;
    p.config(json!({"deny": true})).await;
    let session = app.connect_session(env, json!({})).await;
    let page = browse(env, &p, &session).await;
    assert!(page.contains("connect_denied"), "{page}");
    let polled = app.poll(env, &session).await;
    assert_eq!(polled["status"], "error");
    assert_eq!(polled["error"]["error_code"], "connect_denied");
    assert!(grants_list(env, &app).await.is_empty());
    assert_eq!(p.log().await["code_exchange_count"], 0);
}

#[tokio::test]
async fn a_wrong_state_ends_the_session_in_error_with_nothing_stored() {
    let (env, app, p) = connected().await;
    let session = app.connect_session(env, json!({})).await;
    let location = p.authorize(&authorize_url(env, &session).await).await;
    let target = callback_target(&location);
    let url = url::Url::parse(&format!("{PUBLIC_URL}{target}")).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    // Same session, another secret part.
    let state = &q["state"];
    let forged = format!("{}{}", &state[..state.len() - 4], "AAAA");
    let (_, page) = web(
        env,
        "GET",
        &format!("/sdk/oauth/callback?code={}&state={}", q["code"], forged),
        Value::Null,
    )
    .await;
    assert!(page.contains("invalid_state"), "{page}");
    let polled = app.poll(env, &session).await;
    assert_eq!(polled["error"]["error_code"], "invalid_state");
    // The genuine callback can no longer complete the ended session.
    let (_, page) = web(env, "GET", &target, Value::Null).await;
    assert!(page.contains("connect_session_used"), "{page}");
    assert!(grants_list(env, &app).await.is_empty());
    // Garbage states never reach a session.
    for bad in [
        "",
        "x",
        "not.a.state",
        "00000000000000000000000000000000.zz.zz",
    ] {
        let (status, page) = web(
            env,
            "GET",
            &format!("/sdk/oauth/callback?code=c&state={bad}"),
            Value::Null,
        )
        .await;
        assert_eq!(status, 200);
        assert!(page.contains("invalid_state"), "{bad}: {page}");
    }
}

#[tokio::test]
async fn a_replayed_callback_makes_no_second_grant() {
    let (env, app, p) = connected().await;
    let session = app.connect_session(env, json!({})).await;
    let location = p.authorize(&authorize_url(env, &session).await).await;
    let target = callback_target(&location);
    let (_, first) = web(env, "GET", &target, Value::Null).await;
    assert!(first.contains("\"ok\":true"));
    let (_, second) = web(env, "GET", &target, Value::Null).await;
    assert!(second.contains("connect_session_used"), "{second}");
    assert_eq!(app.poll(env, &session).await["status"], "completed");
    assert_eq!(grants_list(env, &app).await.len(), 1);
    assert_eq!(p.log().await["code_exchange_count"], 1);
}

#[tokio::test]
async fn a_provider_error_at_the_code_exchange_ends_in_error() {
    let (env, app, p) = connected().await;
    // The provider no longer knows the app's client secret.
    p.config(json!({"client_secret": "rotated-elsewhere"}))
        .await;
    let session = app.connect_session(env, json!({})).await;
    let page = browse(env, &p, &session).await;
    assert!(page.contains("token_exchange_failed"), "{page}");
    let polled = app.poll(env, &session).await;
    assert_eq!(polled["status"], "error");
    assert_eq!(polled["error"]["error_code"], "token_exchange_failed");
    assert!(grants_list(env, &app).await.is_empty());
}

#[tokio::test]
async fn the_page_cancel_and_unknown_sessions() {
    let (env, app, _p) = connected().await;
    let session = app.connect_session(env, json!({})).await;
    let (status, _) = web(
        env,
        "POST",
        "/sdk/oauth/connect/session/cancel",
        json!({"session_token": session}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.poll(env, &session).await["error"]["error_code"],
        "connect_denied"
    );
    // Unknown, malformed and other apps' sessions all read "expired" to the poll.
    let other = app_fixture().await;
    let p2 = Provider::start().await;
    other
        .use_provider(env, &p2, &["read"], json!({}))
        .await
        .ok();
    let foreign = other.connect_session(env, json!({})).await;
    for token in [foreign.as_str(), "cs_nope", "garbage"] {
        assert_eq!(app.poll(env, token).await, json!({"status": "expired"}));
    }
    let (status, body) = web(
        env,
        "POST",
        "/sdk/oauth/connect/session/describe",
        json!({"session_token": "cs_nope"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // The page itself is a real page with a strict policy.
    let r =
        portcullis_functions::routes::dispatch(&env.ctx, request("GET", "/sdk/oauth/connect", b""))
            .await;
    assert_eq!(r.status, 200);
    let csp = r
        .headers
        .iter()
        .find(|(k, _)| k == "content-security-policy")
        .unwrap()
        .1
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'nonce-") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = String::from_utf8_lossy(&r.body);
    assert!(
        !html.contains("__NONCE__") && html.contains("data-provider")
            || !html.contains("__NONCE__")
    );
}

#[tokio::test]
async fn session_options_are_checked() {
    let (env, app, _p) = connected().await;
    let create = |body: Value| app.sdk(env, "POST", "/sdk/oauth/connect/session", body);
    // Without `allowed_providers` the session offers every configured provider.
    let every = create(json!({"allowed_providers": null})).await;
    assert_eq!(every.ok()["single_provider"], true, "{}", every.body);
    create(
        json!({"allowed_providers": [PROVIDER], "required_scopes": {PROVIDER: ["read", "root"]}}),
    )
    .await
    .expect(400, "scope_not_allowed");
    create(json!({"allowed_providers": ["github"]}))
        .await
        .expect(400, "provider_not_configured");
    create(json!({"allowed_providers": [PROVIDER], "agent": "bot"}))
        .await
        .expect(400, "agent_requires_user_token");
    create(json!({"allowed_providers": [PROVIDER], "return_url": "javascript:alert(1)"}))
        .await
        .expect(422, "validation_error");
    create(json!({"allowed_providers": [PROVIDER], "allowed_origin": "https://app.example/path"}))
        .await
        .expect(422, "validation_error");
    create(json!({"allowed_providers": [PROVIDER], "repair_grant_id": uuid::Uuid::new_v4()}))
        .await
        .expect(404, "grant_not_found");
    let ok = create(
        json!({"allowed_providers": [" ACME-OAUTH "], "required_scopes": {PROVIDER: ["write"]}}),
    )
    .await;
    let body = ok.ok();
    assert!(
        body["connect_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{PUBLIC_URL}/sdk/oauth/connect#session=cs_"))
    );
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["single_provider"], true);
}

#[tokio::test]
async fn several_accounts_of_one_provider_are_addressed_by_account() {
    let (env, app, p) = connected().await;
    let first = app.connect(env, &p).await;
    p.config(json!({"subject": "user-2"})).await;
    let second = app.connect(env, &p).await;
    assert_ne!(first, second);
    let url = format!("{}/api/me", p.issuer);
    let by_provider = |account: Option<&str>| {
        app.sdk(env, "POST", "/sdk/token", json!({"provider_id": PROVIDER, "reason": null, "request": {"method": "GET", "url": url}, "account": account}))
    };
    let r = by_provider(None).await;
    r.expect(409, "ambiguous_grant");
    let mut accounts: Vec<&str> = r.body["account_identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    accounts.sort();
    assert_eq!(accounts, ["user-1@example.test", "user-2@example.test"]);
    assert_eq!(r.body["candidates"].as_array().unwrap().len(), 2);
    let two = by_provider(Some("user-2@example.test")).await;
    assert_eq!(two.ok()["grant_id"], second.as_str());
    by_provider(Some("user-3@example.test"))
        .await
        .expect(404, "grant_not_found");

    // Consenting again with the same account renews that grant in place.
    let session = app.connect_session(env, json!({})).await;
    browse(env, &p, &session).await;
    let polled = app.poll(env, &session).await;
    assert_eq!(polled["grants"][0]["grant_id"], second.as_str());
    assert_eq!(polled["grants"][0]["operation"], "reauth");
    // So does a repair, whatever account comes back.
    p.config(json!({"subject": "user-9"})).await;
    let session = app
        .connect_session(env, json!({"repair_grant_id": first}))
        .await;
    browse(env, &p, &session).await;
    let polled = app.poll(env, &session).await;
    assert_eq!(polled["grants"][0]["grant_id"], first.as_str());
    assert_eq!(polled["grants"][0]["operation"], "reauth");
    assert_eq!(grants_list(env, &app).await.len(), 2);
}

#[tokio::test]
async fn scopes_granted_narrower_or_required_later_flag_scope_mismatch() {
    let (env, app, p) = connected().await;
    // R13: the provider grants less than asked.
    app.use_provider(env, &p, &["read", "write"], json!({}))
        .await
        .ok();
    p.config(json!({"grant_scopes": "read"})).await;
    let narrow = app.connect(env, &p).await;
    let listed = grants_list(env, &app).await;
    assert_eq!(listed[0]["scopes"], json!(["read"]));
    assert_eq!(listed[0]["scope_mismatch"], true);
    let t = app
        .token(env, &narrow, &format!("{}/api/x", p.issuer))
        .await;
    assert_eq!(t.ok()["scope_mismatch"], true);

    // A full grant, then the app starts requiring a scope it lacks.
    p.config(json!({"grant_scopes": null, "subject": "user-2"}))
        .await;
    let full = app.connect(env, &p).await;
    let find =
        |list: &[Value], id: &str| list.iter().find(|g| g["grant_id"] == id).unwrap().clone();
    assert_eq!(
        find(&grants_list(env, &app).await, &full)["scope_mismatch"],
        false
    );
    app.use_provider(env, &p, &["read", "write", "admin"], json!({}))
        .await
        .ok();
    assert_eq!(
        find(&grants_list(env, &app).await, &full)["scope_mismatch"],
        true
    );

    // The SDK's report flags a grant too.
    let p3 = app_fixture().await;
    let provider3 = Provider::start().await;
    p3.use_provider(env, &provider3, &["read"], json!({}))
        .await
        .ok();
    let g = p3.connect(env, &provider3).await;
    let r = p3
        .sdk(env, "POST", &format!("/sdk/grants/{g}/report-scope-mismatch"), json!({
            "provider_status_code": 403, "provider_error_code": "insufficient_scope",
            "missing_scopes": ["write"], "raw_www_authenticate": "Bearer error=\"insufficient_scope\"",
            "api_endpoint": "http://127.0.0.1/api/x?token=secret", "detection_source": "www_authenticate_rfc6750",
            "sdk_correlation_id": "c-1"}))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(grants_list(env, &p3).await[0]["scope_mismatch"], true);
    let row = &p3
        .audit(env, "action=sdk_grant_report_scope_mismatch")
        .await[0];
    assert!(
        !row.to_string().contains("token=secret"),
        "queries are not kept"
    );
}

#[tokio::test]
async fn revoking_erases_tokens_revokes_at_the_provider_and_is_audited() {
    // R12
    let (env, app, p) = connected().await;
    let grant = app.connect(env, &p).await;
    let url = format!("{}/api/me", p.issuer);
    let token = app.token(env, &grant, &url).await.ok()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .sdk(
            env,
            "POST",
            &format!("/sdk/oauth/grants/{grant}/revoke"),
            json!({"reason": "user asked"}),
        )
        .await;
    assert_eq!(r.ok()["success"], true);
    assert_eq!(r.body["grant_id"], grant.as_str());
    let log = p.log().await;
    assert_eq!(log["revocations"].as_array().unwrap().len(), 1);
    assert_eq!(log["revocations"][0]["token_type_hint"], "refresh_token");
    assert_eq!(
        p.api(&token).await,
        401,
        "the provider revoked the authorization"
    );
    let row = &app.audit(env, "action=sdk_grant_revoke").await[0];
    assert_eq!(row["detail"]["provider_revocation"], "revoked");
    app.token(env, &grant, &url)
        .await
        .expect(403, "grant_revoked");
    // The stored tokens are gone.
    let key =
        portcullis::store::keys::grant_tokens(app.app_id.parse().unwrap(), grant.parse().unwrap());
    assert!(env.ctx.store.get(&key, true).await.unwrap().is_none());
    // Revoking again answers the same revocation; another app's grant reads as missing.
    let again = app
        .sdk(
            env,
            "POST",
            &format!("/sdk/oauth/grants/{grant}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(again.ok()["revoked_at"], r.body["revoked_at"]);
    let other = app_fixture().await;
    other
        .sdk(
            env,
            "POST",
            &format!("/sdk/oauth/grants/{grant}/revoke"),
            json!({}),
        )
        .await
        .expect(404, "grant_not_found");
}

#[tokio::test]
async fn an_operator_revoking_an_oauth_grant_erases_and_revokes_it_at_the_provider() {
    let (env, app, p) = connected().await;
    let grant = app.connect(env, &p).await;
    let r = app
        .org
        .op(
            env,
            "DELETE",
            &format!("/v1/apps/{}/grants/{grant}", app.app_id),
            Value::Null,
        )
        .await;
    assert_eq!(r.ok()["status"], "revoked", "{}", r.body);
    assert_eq!(p.log().await["revocations"].as_array().unwrap().len(), 1);
    let row = &app.audit(env, "action=op_grant_revoke").await[0];
    assert_eq!(row["detail"]["provider_revocation"], "revoked");
    let key =
        portcullis::store::keys::grant_tokens(app.app_id.parse().unwrap(), grant.parse().unwrap());
    assert!(env.ctx.store.get(&key, true).await.unwrap().is_none());
    app.token(env, &grant, &format!("{}/api/me", p.issuer))
        .await
        .expect(403, "grant_revoked");
}
