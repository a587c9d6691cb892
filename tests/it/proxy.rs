//! Proxy mode against a real HTTP server on loopback (`upstream`): Portcullis makes the call
//! with the credential, which the caller never sees; only to the grant's hosts and public
//! addresses; redirects not followed; answers bounded; the exchange audited without the
//! credential; a replayed request never repeats the call.

use base64::Engine;
use portcullis_tests::upstream::Upstream;
use portcullis_tests::*;
use serde_json::{Value, json};

fn decoded(r: &Resp) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(r.ok()["body_b64"].as_str().expect("body_b64"))
        .expect("standard base64")
}

async fn proxy(env: &Env, app: &TestApp, body: Value) -> Resp {
    app.sdk(env, "POST", "/sdk/proxy", body).await
}

#[tokio::test]
async fn the_call_is_made_with_the_credential_which_the_caller_never_sees() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let r = proxy(
        env,
        &app,
        json!({
            "grant_id": app.grant_id,
            "method": "post",
            "url": format!("{}/v1/things?fixed=1", up.url),
            "query_params": {"page": 2, "tag": ["a", "b"]},
            "headers": {"X-Trace": "t-1", "Accept": "application/json"},
            "body": {"name": "widget"},
            "reason": "make a widget",
        }),
    )
    .await;
    let answer = r.ok().clone();
    assert_eq!(answer["status_code"], 200);
    assert_eq!(answer["body_truncated"], false);
    assert_eq!(answer["approval_id"], Value::Null);
    assert!(answer["duration_ms"].is_u64());
    let seen: Value = serde_json::from_slice(&decoded(&r)).unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/v1/things");
    assert_eq!(seen["query"], "fixed=1&page=2&tag=a&tag=b");
    assert_eq!(
        seen["headers"]["authorization"],
        format!("Bearer {}", app.token)
    );
    assert_eq!(seen["headers"]["x-trace"], "t-1");
    assert_eq!(seen["headers"]["content-type"], "application/json");
    assert_eq!(seen["body"], r#"{"name":"widget"}"#);
    // The answer itself never carries the credential.
    let text = r.body.to_string();
    assert!(!text.contains(&app.token), "{text}");
    assert_eq!(answer["credential_hint"], Value::Null);

    // The audit row keeps the exchange, without the credential.
    let rows = app.audit(env, "action=sdk_proxy").await;
    let d = &rows[0]["detail"];
    assert_eq!(
        (
            &d["kind"],
            &d["method"],
            &d["response_status"],
            &d["outcome"]
        ),
        (
            &json!("proxy"),
            &json!("POST"),
            &json!(200),
            &json!("success")
        )
    );
    assert_eq!(d["request_headers"]["x-trace"], "t-1");
    assert_eq!(rows[0]["reason"], "make a widget");
    assert_eq!(rows[0]["grant_id"], json!(app.grant_id));
    assert!(!rows[0].to_string().contains(&app.token));
}

#[tokio::test]
async fn an_upstream_that_echoes_the_credential_is_audited_redacted() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let r = proxy(
        env,
        &app,
        json!({"grant_id": app.grant_id, "method": "GET", "url": format!("{}/echo-credential", up.url)}),
    )
    .await;
    // The caller asked for the upstream's answer: it gets it as is.
    assert!(String::from_utf8(decoded(&r)).unwrap().contains(&app.token));
    let rows = app.audit(env, "action=sdk_proxy").await;
    let row = rows[0].to_string();
    assert!(!row.contains(&app.token), "{row}");
    assert!(row.contains("[REDACTED]"), "{row}");
}

#[tokio::test]
async fn headers_the_credential_or_the_connection_owns_are_refused() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    for name in [
        "Authorization",
        "cookie",
        "X-Api-Key",
        "Host",
        "x-amz-security-token",
        "Proxy-Anything",
        "Transfer-Encoding",
        "X-HTTP-Method-Override",
    ] {
        let r = proxy(
            env,
            &app,
            json!({"grant_id": app.grant_id, "method": "GET", "url": up.url.clone() + "/x", "headers": {name: "v"}}),
        )
        .await;
        r.expect(422, "forbidden_header");
    }
    for (name, value) in [
        ("bad name", "v"),
        ("x-ok", "line\r\nInjected: yes"),
        ("", "v"),
    ] {
        let r = proxy(
            env,
            &app,
            json!({"grant_id": app.grant_id, "method": "GET", "url": up.url.clone() + "/x", "headers": {name: value}}),
        )
        .await;
        r.expect(422, "validation_error");
    }
    proxy(
        env,
        &app,
        json!({"grant_id": app.grant_id, "method": "TRACE", "url": up.url.clone() + "/x"}),
    )
    .await
    .expect(422, "validation_error");
    assert_eq!(up.hits(), 0, "nothing refused reached the upstream");
}

#[tokio::test]
async fn only_the_grants_hosts_and_only_public_addresses_are_called() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let call = |grant: String, url: String| {
        let app = &app;
        async move {
            proxy(
                env,
                app,
                json!({"grant_id": grant, "method": "GET", "url": url}),
            )
            .await
        }
    };
    // Not one of the secret's hosts.
    call(
        app.grant_id.clone(),
        "https://api.elsewhere.example/x".into(),
    )
    .await
    .expect(422, "blocked_destination");
    // Allowed by the secret, but internal: metadata, private, IPv4 in IPv6.
    let mut tried = 0;
    for host in [
        "169.254.169.254",
        "10.1.2.3",
        "[::ffff:10.0.0.1]",
        "0.0.0.0",
        "192.168.0.1",
    ] {
        let secret = app
            .org
            .op(
                env,
                "POST",
                &format!("/v1/apps/{}/secrets", app.app_id),
                json!({
                    "name": format!("internal {}", uuid::Uuid::new_v4().simple()),
                    "template": "bearer",
                    "allowed_hosts": [host.trim_matches(['[', ']'])],
                    "value": {"token": "t-internal-1"},
                }),
            )
            .await;
        if secret.status != 201 {
            // Some spellings are refused as hosts already; that is a refusal too.
            continue;
        }
        let grant = app
            .org
            .grant(env, &app.app_id, secret.body["id"].as_str().unwrap())
            .await;
        let r = call(grant, format!("http://{host}/latest/meta-data/")).await;
        r.expect(422, "blocked_destination");
        tried += 1;
    }
    assert!(
        tried >= 4,
        "only {tried} internal hosts could be configured"
    );
    // URLs a client could read differently are refused before anything else.
    call(app.grant_id.clone(), format!("{}\\@evil.example/", up.url))
        .await
        .expect(422, "validation_error");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn redirects_are_answered_not_followed_and_big_answers_are_cut() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let r = proxy(
        env,
        &app,
        json!({"grant_id": app.grant_id, "method": "GET", "url": format!("{}/redirect", up.url)}),
    )
    .await;
    assert_eq!(r.ok()["status_code"], 302);
    assert_eq!(
        r.ok()["headers"]["location"],
        "http://127.0.0.1:9/elsewhere"
    );
    assert_eq!(up.hits(), 1, "the redirect was not followed");

    let big = proxy(
        env,
        &app,
        json!({"grant_id": app.grant_id, "method": "GET", "url": format!("{}/big", up.url)}),
    )
    .await;
    assert_eq!(big.ok()["body_truncated"], true);
    assert_eq!(decoded(&big).len(), 4 * 1024 * 1024);

    // A provider error is the provider's answer, not ours.
    let failing = proxy(
        env,
        &app,
        json!({"grant_id": app.grant_id, "method": "GET", "url": format!("{}/status/503", up.url)}),
    )
    .await;
    assert_eq!(failing.ok()["status_code"], 503);
    let rows = app.audit(env, "action=sdk_proxy").await;
    assert_eq!(rows[0]["detail"]["outcome"], "provider_error");
    // Nothing listening: a gateway error, audited.
    let closed = proxy(
        env,
        &app,
        json!({"grant_id": app.grant_id, "method": "GET", "url": "http://127.0.0.1:9/x"}),
    )
    .await;
    closed.expect(502, "upstream_unreachable");
    let rows = app.audit(env, "action=sdk_proxy").await;
    assert_eq!(rows[0]["detail"]["outcome"], "network_error");
}

#[tokio::test]
async fn a_replayed_proxy_request_never_repeats_the_call() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let body = body_bytes(&json!({
        "grant_id": app.grant_id, "method": "POST", "url": format!("{}/pay", up.url), "body": {"amount": 100}
    }));
    let req = signed_at(&app.key, "POST", "/sdk/proxy", &body, now());
    let replay = clone_request(&req);
    env.send(req).await.ok();
    env.send(replay).await.expect(401, "nonce_replayed");
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn grants_resolve_as_for_retrieval() {
    let env = env().await;
    let app = app_fixture().await;
    let other = app_fixture().await;
    let up = Upstream::start().await;
    let url = format!("{}/x", up.url);
    // Another app's grant is missing, like a made-up one.
    let foreign = proxy(
        env,
        &other,
        json!({"grant_id": app.grant_id, "method": "GET", "url": url}),
    )
    .await;
    let missing = proxy(
        env,
        &other,
        json!({"grant_id": uuid::Uuid::new_v4(), "method": "GET", "url": url}),
    )
    .await;
    foreign.expect(404, "grant_not_found");
    assert_eq!(foreign.body, missing.body);
    // Provider mode by the secret's slug.
    let slug = app
        .org
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/secrets/{}", app.app_id, app.secret_id),
            Value::Null,
        )
        .await
        .ok()["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let by_provider = proxy(
        env,
        &app,
        json!({"provider_id": slug, "method": "GET", "url": url}),
    )
    .await;
    assert_eq!(by_provider.ok()["status_code"], 200);
    // A revoked grant is refused before anything is sent.
    app.org
        .op(
            env,
            "DELETE",
            &format!("/v1/apps/{}/grants/{}", app.app_id, app.grant_id),
            Value::Null,
        )
        .await
        .ok();
    let hits = up.hits();
    proxy(
        env,
        &app,
        json!({"grant_id": app.grant_id, "method": "GET", "url": url}),
    )
    .await
    .expect(403, "grant_revoked");
    assert_eq!(up.hits(), hits);
}

#[tokio::test]
async fn a_requests_own_deny_rule_sees_the_method_portcullis_sends() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let rule = URL_SAFE_NO_PAD.encode(
        r#"{"rule_type":"json_match","rule_body":{"when":{"method":"POST"},"effect":"deny"}}"#,
    );
    let send = |method: &str| {
        let body =
            json!({"grant_id": app.grant_id, "method": method, "url": format!("{}/x", up.url)});
        let bytes = body_bytes(&body);
        let mut req = signed_at(&app.key, "POST", "/sdk/proxy", &bytes, now());
        // The rule is signed (it is part of the string to sign): sign it in.
        let h = |n: &str| req.header(n).unwrap().to_string();
        let (ts, nonce, sha) = (
            h("x-alter-timestamp"),
            h("x-alter-nonce"),
            h("x-alter-content-sha256"),
        );
        let parts = portcullis::signing::SignedParts {
            method: "POST",
            target: "/sdk/proxy",
            timestamp: &ts,
            nonce: &nonce,
            content_sha256: &sha,
            scope_constraints: "",
            request_rule: &rule,
            caller: "",
            caller_type: "",
            actor_id: "",
            actor_context: "",
        };
        let signature = portcullis::signing::sign(
            &portcullis::apikey::signing_key(&app.key),
            &parts.string_to_sign(),
        );
        set(&mut req, "x-alter-request-rule", &rule);
        set(&mut req, "x-alter-signature", &signature);
        env.send(req)
    };
    send("GET").await.ok();
    send("POST").await.expect(403, "request_rule_denied");
    assert_eq!(up.hits(), 1);
}

/// AWS Signature Version 4 recomputed here, from the request the upstream received: an
/// independent check of what Portcullis signed.
fn sigv4_signature(
    secret: &str,
    seen: &Value,
    region: &str,
    service: &str,
    signed_headers: &str,
    amz_date: &str,
) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let hmac = |key: &[u8], data: &str| {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    let mut query: Vec<&str> = seen["query"]
        .as_str()
        .unwrap_or_default()
        .split('&')
        .filter(|q| !q.is_empty())
        .collect();
    query.sort();
    let headers: String = signed_headers
        .split(';')
        .map(|h| format!("{h}:{}\n", seen["headers"][h].as_str().unwrap().trim()))
        .collect();
    let canonical = format!(
        "{}\n{}\n{}\n{headers}\n{signed_headers}\n{}",
        seen["method"].as_str().unwrap(),
        seen["path"].as_str().unwrap(),
        query.join("&"),
        hex::encode(Sha256::digest(seen["body"].as_str().unwrap().as_bytes())),
    );
    let scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), &amz_date[..8]);
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part);
    }
    hex::encode(hmac(&key, &to_sign))
}

#[tokio::test]
async fn aws_secrets_are_signed_per_request_in_proxy_mode_only() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let created = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/secrets", app.app_id),
            json!({"name": format!("aws {}", uuid::Uuid::new_v4().simple()), "template": "aws_sigv4",
                   "aws_region": "eu-west-1", "aws_service": "execute-api", "allowed_hosts": ["127.0.0.1"],
                   "value": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": secret, "session_token": "session-token-1"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["aws_region"], "eu-west-1");
    let grant = app
        .org
        .grant(env, &app.app_id, created.body["id"].as_str().unwrap())
        .await;
    let url = format!("{}/v1/items?b=2&a=1", up.url);
    app.sdk(
        env,
        "POST",
        "/sdk/token",
        json!({"grant_id": grant, "request": {"method": "POST", "url": url}}),
    )
    .await
    .expect(400, "restricted_grant_requires_proxy");
    let r = proxy(
        env,
        &app,
        json!({"grant_id": grant, "method": "POST", "url": url, "body": {"name": "x"}}),
    )
    .await;
    let seen: Value = serde_json::from_slice(&decoded(&r)).unwrap();
    let auth = seen["headers"]["authorization"].as_str().unwrap();
    let amz_date = seen["headers"]["x-amz-date"].as_str().unwrap();
    assert_eq!(seen["headers"]["x-amz-security-token"], "session-token-1");
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/eu-west-1/execute-api/aws4_request, SignedHeaders=",
        &amz_date[..8]
    );
    assert!(auth.starts_with(&prefix), "{auth}");
    let (signed, signature) = auth[prefix.len()..].split_once(", Signature=").unwrap();
    assert!(signed.split(';').any(|h| h == "host"));
    assert_eq!(
        signature,
        sigv4_signature(secret, &seen, "eu-west-1", "execute-api", signed, amz_date)
    );
    let rows = app.audit(env, "action=sdk_proxy").await;
    let row = rows[0].to_string();
    assert!(
        !row.contains(secret) && !row.contains("session-token-1"),
        "{row}"
    );
    // A value that is not AWS keys is refused for such a secret.
    let bad = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/secrets", app.app_id),
            json!({"name": "bad aws", "template": "aws_sigv4", "aws_region": "eu-west-1", "aws_service": "s3",
                   "allowed_hosts": ["127.0.0.1"], "value": {"token": "x"}}),
        )
        .await;
    bad.expect(422, "validation_error");
}

#[tokio::test]
async fn the_credentials_own_header_and_plain_http_are_refused() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let keyed = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/secrets", app.app_id),
            json!({"name": format!("keyed {}", uuid::Uuid::new_v4().simple()), "template": "api_key",
                   "header_name": "X-Custom-Key", "allowed_hosts": ["127.0.0.1", "api.example.test"],
                   "value": {"api_key": "real-key-1234567"}}),
        )
        .await;
    let grant = app
        .org
        .grant(env, &app.app_id, keyed.ok()["id"].as_str().unwrap())
        .await;
    proxy(
        env,
        &app,
        json!({"grant_id": grant, "method": "GET", "url": format!("{}/x", up.url), "headers": {"X-CUSTOM-KEY": "mine"}}),
    )
    .await
    .expect(422, "forbidden_header");
    for routing in ["X-Forwarded-Host", "X-Original-URL", "Forwarded"] {
        proxy(
            env,
            &app,
            json!({"grant_id": grant, "method": "GET", "url": format!("{}/x", up.url), "headers": {routing: "v"}}),
        )
        .await
        .expect(422, "forbidden_header");
    }
    proxy(
        env,
        &app,
        json!({"grant_id": grant, "method": "GET", "url": "http://api.example.test/x"}),
    )
    .await
    .expect(422, "blocked_destination");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn query_parameter_secrets_go_on_the_url_in_proxy_mode_only() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let created = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/secrets", app.app_id),
            json!({"name": format!("query {}", uuid::Uuid::new_v4().simple()), "template": "query_param",
                   "param_name": "key", "allowed_hosts": ["127.0.0.1"], "value": {"api_key": "qp-secret-123456"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["param_name"], "key");
    let grant = app
        .org
        .grant(env, &app.app_id, created.body["id"].as_str().unwrap())
        .await;
    let r = proxy(
        env,
        &app,
        json!({"grant_id": grant, "method": "GET", "url": format!("{}/search?q=1", up.url)}),
    )
    .await;
    let seen: Value = serde_json::from_slice(&decoded(&r)).unwrap();
    assert_eq!(seen["query"], "q=1&key=qp-secret-123456");
    proxy(
        env,
        &app,
        json!({"grant_id": grant, "method": "GET", "url": format!("{}/search?key=mine", up.url)}),
    )
    .await
    .expect(422, "forbidden_query_param");
    app.sdk(
        env,
        "POST",
        "/sdk/token",
        json!({"grant_id": grant, "request": {"method": "GET", "url": format!("{}/search", up.url)}}),
    )
    .await
    .expect(400, "restricted_grant_requires_proxy");
    let rows = app.audit(env, "action=sdk_proxy").await;
    assert!(
        !serde_json::to_string(&rows)
            .unwrap()
            .contains("qp-secret-123456")
    );
}
