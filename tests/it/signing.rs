//! Request authentication: signatures, freshness, replay, tampering and downgrade.

use portcullis::signing::{SignedParts, sign};
use portcullis_tests::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_signed_request_passes_and_its_replay_is_refused() {
    let env = env().await;
    let app = app_fixture().await;
    let body = body_bytes(&app.token_body(&app.grant_id));
    let req = signed_at(&app.key, "POST", "/sdk/token", &body, now());
    let replay = clone_request(&req);
    env.send(req).await.ok();
    env.send(replay).await.expect(401, "nonce_replayed");
    let rows = app.audit(env, "action=sdk_token").await;
    assert_eq!(
        rows[0]["error_code"], "nonce_replayed",
        "the replay is audited"
    );
    assert_eq!(rows[1]["outcome"], "success");
}

#[tokio::test]
async fn a_failed_request_spends_its_nonce_too() {
    let env = env().await;
    let app = app_fixture().await;
    let body = body_bytes(
        &json!({"grant_id": uuid::Uuid::new_v4(), "request": {"method": "GET", "url": "http://127.0.0.1/"}}),
    );
    let req = signed_at(&app.key, "POST", "/sdk/token", &body, now());
    let replay = clone_request(&req);
    env.send(req).await.expect(404, "grant_not_found");
    env.send(replay).await.expect(401, "nonce_replayed");
}

#[tokio::test]
async fn timestamps_outside_the_window_are_refused_at_both_edges() {
    let env = env().await;
    let app = app_fixture().await;
    let body = body_bytes(&app.token_body(&app.grant_id));
    for (skew, ok) in [
        (-290, true),
        (290, true),
        (-310, false),
        (310, false),
        (-100_000, false),
    ] {
        let r = env
            .send(signed_at(
                &app.key,
                "POST",
                "/sdk/token",
                &body,
                now() + skew,
            ))
            .await;
        if ok {
            r.ok();
        } else {
            r.expect(401, "timestamp_out_of_window");
        }
    }
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_audited() {
    let env = env().await;
    let app = app_fixture().await;
    let mut req = signed_at(&app.key, "GET", "/sdk/scopes", b"", now());
    set(&mut req, "x-alter-signature", &"ab".repeat(32));
    env.send(req).await.expect(401, "invalid_signature");
    let mut req = signed_at(&app.key, "GET", "/sdk/scopes", b"", now());
    set(&mut req, "x-alter-signature", "not-hex");
    env.send(req).await.expect(401, "invalid_signature");
    let rows = app.audit(env, "action=sdk_scopes").await;
    assert!(
        rows.iter()
            .all(|r| r["error_code"] == "invalid_signature" && r["outcome"] == "denied")
    );
    assert_eq!(rows.len(), 2);
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let env = env().await;
    let app = app_fixture().await;
    let body = body_bytes(&app.token_body(&app.grant_id));
    let signed = signed_at(&app.key, "POST", "/sdk/token", &body, now());
    // Body swapped, content hash left: the hash no longer matches.
    let mut req = clone_request(&signed);
    req.body = bytes::Bytes::from_static(b"{\"grant_id\":\"x\"}");
    env.send(req).await.expect(401, "content_hash_mismatch");
    // Body and hash swapped: the signature no longer verifies.
    let mut req = clone_request(&signed);
    let other = b"{\"grant_id\":\"y\"}";
    req.body = bytes::Bytes::from_static(other);
    set(
        &mut req,
        "x-alter-content-sha256",
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(other)),
    );
    env.send(req).await.expect(401, "invalid_signature");
}

#[tokio::test]
async fn missing_signature_headers_are_named() {
    let env = env().await;
    let app = app_fixture().await;
    for header in [
        "x-alter-timestamp",
        "x-alter-nonce",
        "x-alter-content-sha256",
        "x-alter-signature",
    ] {
        let mut req = signed_at(&app.key, "GET", "/sdk/scopes", b"", now());
        req.headers.remove(header);
        env.send(req).await.expect(401, "signature_required");
    }
    let mut req = signed_at(&app.key, "GET", "/sdk/scopes", b"", now());
    set(&mut req, "x-alter-nonce", "short");
    env.send(req).await.expect(401, "invalid_nonce");
    let mut req = signed_at(&app.key, "GET", "/sdk/scopes", b"", now());
    set(&mut req, "x-alter-timestamp", "12e9");
    env.send(req).await.expect(401, "invalid_timestamp");
}

/// Signs with identity headers (v2), as the SDK does for a client with `caller=`.
fn signed_v2(key: &str, target: &str, caller: &str, context: &str) -> portcullis::ApiRequest {
    let mut req = signed_at(key, "GET", target, b"", now());
    let h = |n: &str| req.header(n).unwrap().to_string();
    let (ts, nonce, sha) = (
        h("x-alter-timestamp"),
        h("x-alter-nonce"),
        h("x-alter-content-sha256"),
    );
    let parts = SignedParts {
        method: "GET",
        target,
        timestamp: &ts,
        nonce: &nonce,
        content_sha256: &sha,
        scope_constraints: "",
        request_rule: "",
        caller,
        caller_type: "service",
        actor_id: "",
        actor_context: context,
    };
    let sig = sign(
        &portcullis::apikey::signing_key(key),
        &parts.string_to_sign(),
    );
    set(&mut req, "x-alter-signature", &sig);
    set(&mut req, "x-alter-signature-v2", &sig);
    set(&mut req, "x-alter-caller", caller);
    set(&mut req, "x-alter-caller-type", "service");
    if !context.is_empty() {
        set(&mut req, "x-alter-context", context);
    }
    req
}

#[tokio::test]
async fn identity_headers_are_signed_and_cannot_be_stripped_or_altered() {
    let env = env().await;
    let app = app_fixture().await;
    let ctx = r#"{"run_id":"r1"}"#;
    env.send(signed_v2(&app.key, "/sdk/scopes", "svc", ctx))
        .await
        .ok();
    let row = &app.audit(env, "action=sdk_scopes").await[0];
    assert_eq!(
        (row["caller"].as_str(), row["caller_type"].as_str()),
        (Some("svc"), Some("service"))
    );
    assert_eq!(row["context"], json!({"run_id": "r1"}));

    for strip in [
        "x-alter-caller",
        "x-alter-caller-type",
        "x-alter-context",
        "x-alter-signature-v2",
    ] {
        let mut req = signed_v2(&app.key, "/sdk/scopes", "svc", ctx);
        req.headers.remove(strip);
        let r = env.send(req).await;
        if strip == "x-alter-signature-v2" {
            // The legacy header already carries the v2 digest: still verifies.
            r.ok();
        } else {
            r.expect(401, "invalid_signature");
        }
    }
    let mut req = signed_v2(&app.key, "/sdk/scopes", "svc", ctx);
    set(&mut req, "x-alter-caller", "someone-else");
    env.send(req).await.expect(401, "invalid_signature");
    let mut req = signed_v2(&app.key, "/sdk/scopes", "svc", ctx);
    set(&mut req, "x-alter-signature-v2", &"0".repeat(64));
    env.send(req).await.expect(401, "invalid_signature");
}

#[tokio::test]
async fn a_malformed_context_is_refused() {
    let env = env().await;
    let app = app_fixture().await;
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    for bad in [
        r#"{"a":1}"#.to_string(),
        "[]".into(),
        "not json".into(),
        Value::Object(many).to_string(),
    ] {
        env.send(signed_v2(&app.key, "/sdk/scopes", "svc", &bad))
            .await
            .expect(400, "invalid_context");
    }
}

#[tokio::test]
async fn unsorted_queries_verify_against_the_canonical_form() {
    let env = env().await;
    let app = app_fixture().await;
    let target = format!(
        "/v1/apps/{}/audit?outcome=success&limit=5&action=op_app_create",
        app.app_id
    );
    app.org.op(env, "GET", &target, Value::Null).await.ok();
}

#[tokio::test]
async fn keys_that_are_malformed_or_unknown_are_invalid() {
    let env = env().await;
    let unknown = "alter_rk_abcdefghijklmnopqrstuv_iwpykn"; // valid checksum, never minted
    env.signed(unknown, "GET", "/sdk/scopes", Value::Null)
        .await
        .expect(401, "invalid_key");
    env.signed(
        "alter_rk_abcdefghijklmnopqrstuv_iwpyko",
        "GET",
        "/sdk/scopes",
        Value::Null,
    )
    .await
    .expect(401, "invalid_key");
    env.send(request("GET", "/sdk/scopes", b""))
        .await
        .expect(401, "invalid_key");
}

#[tokio::test]
async fn scope_constraints_only_narrow() {
    let env = env().await;
    let app = app_fixture().await;
    let org = &app.org;
    let narrow_key = org
        .app_key(env, &app.app_id, Some(vec!["grants:read"]))
        .await;
    let body = body_bytes(&app.token_body(&app.grant_id));
    // Broader than the key: refused.
    let mut req = signed_constrained(&narrow_key, &body, "grants:read,tokens:retrieve");
    env.send(clone_request(&req))
        .await
        .expect(400, "constraint_not_narrowing");
    // Narrower than the key, but the operation needs what was dropped.
    req = signed_constrained(&app.key, &body, "grants:read");
    let r = env.send(req).await;
    r.expect(403, "insufficient_scope");
    assert_eq!(r.body["missing"], json!(["tokens:retrieve"]));
    env.send(signed_constrained(&app.key, &body, "tokens:retrieve"))
        .await
        .ok();
    // A signed deny rule applies to the request it rides on.
    use base64::Engine;
    let b64 = |j: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
    let deny_posts =
        b64(r#"{"rule_type":"json_match","rule_body":{"when":{"method":"POST"},"effect":"deny"}}"#);
    env.send(signed_with(&app.key, &body, "", &deny_posts))
        .await
        .expect(403, "request_rule_denied");
    let deny_other = b64(
        r#"{"rule_type":"json_match","rule_body":{"when":{"provider_id":"someone-else"},"effect":"deny"}}"#,
    );
    env.send(signed_with(&app.key, &body, "", &deny_other))
        .await
        .ok();
    let unknown =
        b64(r#"{"rule_type":"json_match","rule_body":{"when":{"url":"x"},"effect":"deny"}}"#);
    env.send(signed_with(&app.key, &body, "", &unknown))
        .await
        .expect(400, "invalid_request_rule");
}

fn signed_constrained(key: &str, body: &[u8], constraints: &str) -> portcullis::ApiRequest {
    signed_with(key, body, constraints, "")
}

fn signed_with(key: &str, body: &[u8], constraints: &str, rule: &str) -> portcullis::ApiRequest {
    let mut req = signed_at(key, "POST", "/sdk/token", body, now());
    let h = |n: &str| req.header(n).unwrap().to_string();
    let (ts, nonce, sha) = (
        h("x-alter-timestamp"),
        h("x-alter-nonce"),
        h("x-alter-content-sha256"),
    );
    let parts = SignedParts {
        method: "POST",
        target: "/sdk/token",
        timestamp: &ts,
        nonce: &nonce,
        content_sha256: &sha,
        scope_constraints: constraints,
        request_rule: rule,
        caller: "",
        caller_type: "",
        actor_id: "",
        actor_context: "",
    };
    set(
        &mut req,
        "x-alter-signature",
        &sign(
            &portcullis::apikey::signing_key(key),
            &parts.string_to_sign(),
        ),
    );
    if !constraints.is_empty() {
        set(&mut req, "x-alter-scope-constraints", constraints);
    }
    if !rule.is_empty() {
        set(&mut req, "x-alter-request-rule", rule);
    }
    req
}
