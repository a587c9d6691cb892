//! The SDK runtime path: token retrieval per template, key and grant lifecycle as the SDK
//! sees it, grants listing, managed-secret grants, audit reports, and bad input.

use portcullis::store::Write;
use portcullis::store::keys;
use portcullis_tests::*;
use serde_json::{Value, json};
use uuid::Uuid;

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// Moves a stored timestamp into the past, as time passing would.
async fn backdate(env: &Env, key: keys::ItemKey, attribute: &str) {
    let write = Write::Update {
        key,
        update: "SET #a = :t".into(),
        condition: Some("attribute_exists(pk)".into()),
        names: vec![("#a".into(), attribute.into())],
        values: vec![(
            ":t".into(),
            aws_sdk_dynamodb::types::AttributeValue::S("2020-01-01T00:00:00Z".into()),
        )],
    };
    env.ctx.store.transact(vec![write]).await.unwrap();
}

#[tokio::test]
async fn bearer_token_answer_matches_the_sdk_contract() {
    let env = env().await;
    let app = app_fixture().await;
    let r = app
        .sdk(env, "POST", "/sdk/token", app.token_body(&app.grant_id))
        .await;
    let b = r.ok();
    assert_eq!(b["access_token"], app.token);
    assert_eq!(b["grant_id"], app.grant_id);
    assert_eq!(
        (
            b["injection_header"].as_str(),
            b["injection_format"].as_str()
        ),
        (Some("Authorization"), Some("Bearer {token}"))
    );
    assert_eq!(b["scopes"], json!([]));
    assert!(b["provider_id"].is_string() && b["token_generation"].is_string());
    assert_eq!(r.headers["cache-control"], "no-store");
    let row = &app.audit(env, "action=sdk_token").await[0];
    assert_eq!(
        (row["outcome"].as_str(), row["grant_id"].as_str()),
        (Some("success"), Some(app.grant_id.as_str()))
    );
    assert!(
        !row.to_string().contains(&app.token),
        "no secret in the audit row"
    );
}

#[tokio::test]
async fn api_key_and_basic_templates_inject_their_own_way() {
    let env = env().await;
    let app = app_fixture().await;
    let s = app
        .org
        .secret(env, &app.app_id, "api_key", json!({"api_key": "k-123456"}))
        .await;
    let g = app.org.grant(env, &app.app_id, &s).await;
    let b = app
        .sdk(env, "POST", "/sdk/token", app.token_body(&g))
        .await
        .ok()
        .clone();
    assert_eq!(
        (
            b["injection_header"].as_str(),
            b["injection_format"].as_str(),
            b["access_token"].as_str()
        ),
        (Some("X-Api-Key"), Some("{token}"), Some("k-123456"))
    );

    let s = app
        .org
        .secret(
            env,
            &app.app_id,
            "basic",
            json!({"username": "ann", "password": "p@ss:word"}),
        )
        .await;
    let g = app.org.grant(env, &app.app_id, &s).await;
    let b = app
        .sdk(env, "POST", "/sdk/token", app.token_body(&g))
        .await
        .ok()
        .clone();
    assert_eq!(b["injection_format"], "Basic {token}");
    assert_eq!(b["access_token"], "YW5uOnBAc3M6d29yZA=="); // base64("ann:p@ss:word")
}

#[tokio::test]
async fn key_lifecycle_as_the_sdk_sees_it() {
    let env = env().await;
    let app = app_fixture().await;
    let key_id = app.key_id(env, &app.key).await;
    let base = format!("/v1/apps/{}/keys/{key_id}", app.app_id);
    app.org
        .op(env, "POST", &format!("{base}/deprecate"), Value::Null)
        .await
        .ok();
    let r = app.sdk(env, "GET", "/sdk/scopes", Value::Null).await;
    r.ok();
    assert_eq!(r.headers["x-alter-key-deprecated"], "true");
    let r = app.sdk(env, "POST", "/sdk/token", json!({})).await;
    assert_eq!(r.headers["x-alter-key-deprecated"], "true", "on errors too");
    app.org
        .op(env, "POST", &format!("{base}/undeprecate"), Value::Null)
        .await
        .ok();
    assert!(
        app.sdk(env, "GET", "/sdk/scopes", Value::Null)
            .await
            .headers
            .get("x-alter-key-deprecated")
            .is_none()
    );
    app.org.op(env, "DELETE", &base, Value::Null).await.ok();
    app.sdk(env, "GET", "/sdk/scopes", Value::Null)
        .await
        .expect(401, "key_revoked");
    app.org
        .op(env, "POST", &format!("{base}/undeprecate"), Value::Null)
        .await
        .expect(409, "key_revoked");
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let env = env().await;
    let app = app_fixture().await;
    let key_id = app.key_id(env, &app.key).await;
    backdate(
        env,
        keys::app_key(uuid(&app.app_id), uuid(&key_id)),
        "expires_at",
    )
    .await;
    app.sdk(env, "GET", "/sdk/scopes", Value::Null)
        .await
        .expect(401, "key_expired");
}

#[tokio::test]
async fn revoked_expired_and_orphaned_grants_are_refused_with_their_codes() {
    let env = env().await;
    let app = app_fixture().await;
    let r = app
        .sdk(
            env,
            "POST",
            "/sdk/token",
            app.token_body(&uuid::Uuid::new_v4().to_string()),
        )
        .await;
    r.expect(404, "grant_not_found");

    let g2 = app.org.grant(env, &app.app_id, &app.secret_id).await;
    backdate(env, keys::grant(uuid(&app.app_id), uuid(&g2)), "expires_at").await;
    app.sdk(env, "POST", "/sdk/token", app.token_body(&g2))
        .await
        .expect(403, "grant_expired");

    app.org
        .op(
            env,
            "DELETE",
            &format!("/v1/apps/{}/grants/{}", app.app_id, app.grant_id),
            Value::Null,
        )
        .await
        .ok();
    let r = app
        .sdk(env, "POST", "/sdk/token", app.token_body(&app.grant_id))
        .await;
    r.expect(403, "grant_revoked");
    assert_eq!(r.body["grant_id"], app.grant_id);

    // Deleting the secret revokes its grants; a grant the index missed fails closed anyway.
    let g3 = app.org.grant(env, &app.app_id, &app.secret_id).await;
    let d = app
        .org
        .op(
            env,
            "DELETE",
            &format!("/v1/apps/{}/secrets/{}", app.app_id, app.secret_id),
            Value::Null,
        )
        .await;
    d.ok();
    let r = app
        .sdk(env, "POST", "/sdk/token", app.token_body(&g3))
        .await;
    assert!(
        matches!(r.code(), "grant_revoked" | "credential_revoked"),
        "{:?}",
        r.body
    );
    let listed = app.sdk(env, "POST", "/sdk/grants/list", json!({})).await;
    assert!(
        listed.ok()["grants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["status"] != "active")
    );
}

#[tokio::test]
async fn secrets_go_only_to_their_allowed_hosts() {
    let env = env().await;
    let app = app_fixture().await;
    for (url, ok) in [
        ("http://127.0.0.1:8080/x", true),
        ("https://localhost/x", true),
        ("https://evil.example/x", false),
        ("https://127.0.0.1.evil.example/x", false),
    ] {
        let body = json!({"grant_id": app.grant_id, "request": {"method": "GET", "url": url}});
        let r = app.sdk(env, "POST", "/sdk/token", body).await;
        if ok {
            r.ok();
        } else {
            r.expect(422, "blocked_destination");
        }
    }
    let body =
        json!({"grant_id": app.grant_id, "request": {"method": "GET", "url": "ftp://127.0.0.1/x"}});
    app.sdk(env, "POST", "/sdk/token", body)
        .await
        .expect(422, "validation_error");
}

#[tokio::test]
async fn scopes_are_enforced_with_the_insufficient_scope_body() {
    let env = env().await;
    let app = app_fixture().await;
    let key = app
        .org
        .app_key(env, &app.app_id, Some(vec!["grants:read"]))
        .await;
    let r = env
        .signed(&key, "POST", "/sdk/token", app.token_body(&app.grant_id))
        .await;
    r.expect(403, "insufficient_scope");
    for field in [
        "required",
        "granted",
        "missing",
        "scope_version",
        "current_scope_version",
        "required_any_of",
    ] {
        assert!(!r.body[field].is_null(), "{field} in {}", r.body);
    }
    env.signed(&key, "POST", "/sdk/grants/list", json!({}))
        .await
        .ok();
    env.signed(&key, "POST", "/sdk/oauth/audit/api-call", json!({}))
        .await
        .expect(403, "insufficient_scope");
}

#[tokio::test]
async fn provider_mode_resolves_one_system_grant_or_says_which() {
    let env = env().await;
    let app = app_fixture().await;
    let secret = app
        .org
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/secrets/{}", app.app_id, app.secret_id),
            Value::Null,
        )
        .await;
    let slug = secret.ok()["slug"].as_str().unwrap().to_string();
    let by_provider = json!({"provider_id": slug, "reason": "r", "request": {"method": "GET", "url": "http://127.0.0.1/"}});
    assert_eq!(
        app.sdk(env, "POST", "/sdk/token", by_provider.clone())
            .await
            .ok()["grant_id"],
        app.grant_id
    );
    app.org.grant(env, &app.app_id, &app.secret_id).await;
    let r = app.sdk(env, "POST", "/sdk/token", by_provider).await;
    r.expect(409, "ambiguous_grant");
    assert_eq!(r.body["candidates"].as_array().unwrap().len(), 2);
    let none =
        json!({"provider_id": "no-such", "request": {"method": "GET", "url": "http://127.0.0.1/"}});
    app.sdk(env, "POST", "/sdk/token", none)
        .await
        .expect(404, "grant_not_found");
}

#[tokio::test]
async fn user_tokens_fail_closed_without_an_identity_provider() {
    let env = env().await;
    let app = app_fixture().await;
    let mut body = app.token_body(&app.grant_id);
    body["user_token"] = json!("eyJhbGciOiJub25lIn0.e30.");
    app.sdk(env, "POST", "/sdk/token", body)
        .await
        .expect(401, "jwt_validation_error");
    app.sdk(env, "POST", "/sdk/grants/list", json!({"user_token": "x"}))
        .await
        .expect(401, "jwt_validation_error");
}

#[tokio::test]
async fn grants_list_pages_filters_and_validates() {
    let env = env().await;
    let app = app_fixture().await;
    for _ in 0..3 {
        app.org.grant(env, &app.app_id, &app.secret_id).await;
    }
    let all = app
        .sdk(env, "POST", "/sdk/grants/list", json!({}))
        .await
        .ok()
        .clone();
    assert_eq!(
        (all["total"].as_u64(), all["has_more"].as_bool()),
        (Some(4), Some(false))
    );
    let item = &all["grants"][0];
    for field in [
        "grant_kind",
        "grant_id",
        "managed_secret_id",
        "managed_secret_slug",
        "managed_secret_name",
        "status",
        "created_at",
        "principal_type",
    ] {
        assert!(item[field].is_string(), "{field} in {item}");
    }
    let page = app
        .sdk(
            env,
            "POST",
            "/sdk/grants/list",
            json!({"limit": 3, "offset": 2}),
        )
        .await
        .ok()
        .clone();
    assert_eq!(
        (
            page["grants"].as_array().unwrap().len(),
            page["has_more"].as_bool()
        ),
        (2, Some(false))
    );
    let page = app
        .sdk(
            env,
            "POST",
            "/sdk/grants/list",
            json!({"limit": 2, "offset": 0}),
        )
        .await
        .ok()
        .clone();
    assert_eq!(page["has_more"], true);
    let none = app
        .sdk(
            env,
            "POST",
            "/sdk/grants/list",
            json!({"provider_id": "nope"}),
        )
        .await
        .ok()
        .clone();
    assert_eq!(none["total"], 0);
    for bad in [
        json!({"limit": 0}),
        json!({"limit": 1001}),
        json!({"offset": -1}),
        json!({"status": "weird"}),
    ] {
        app.sdk(env, "POST", "/sdk/grants/list", bad)
            .await
            .expect(422, "validation_error");
    }
}

#[tokio::test]
async fn managed_secret_grants_from_the_sdk_route() {
    let env = env().await;
    let app = app_fixture().await;
    let path = format!("/sdk/managed-secrets/{}/grants", app.secret_id);
    let r = app
        .sdk(
            env,
            "POST",
            &path,
            json!({"principal": {"type": "system", "label": "ops"}, "grant_policy": {}}),
        )
        .await;
    let b = r.ok().clone();
    assert_eq!(
        (b["principal_type"].as_str(), b["label"].as_str()),
        (Some("system"), Some("ops"))
    );
    assert!(b.as_object().unwrap().contains_key("credential_id"));
    let g = b["grant_id"].as_str().unwrap();
    app.sdk(env, "POST", "/sdk/token", app.token_body(g))
        .await
        .ok();

    app.sdk(env, "POST", &path, json!({"principal": {"type": "agent"}}))
        .await
        .expect(422, "validation_error");
    app.sdk(
        env,
        "POST",
        &path,
        json!({"principal": {"type": "user", "user_token": "x"}}),
    )
    .await
    .expect(401, "jwt_validation_error");
    app.sdk(env, "POST", &path, json!({"principal": {"type": "alien"}}))
        .await
        .expect(422, "validation_error");
    let missing = format!("/sdk/managed-secrets/{}/grants", Uuid::new_v4());
    app.sdk(
        env,
        "POST",
        &missing,
        json!({"principal": {"type": "system"}}),
    )
    .await
    .expect(404, "secret_not_found");
    app.sdk(
        env,
        "POST",
        "/sdk/managed-secrets/not-a-uuid/grants",
        json!({"principal": {"type": "system"}}),
    )
    .await
    .expect(404, "secret_not_found");
}

#[tokio::test]
async fn rotation_keeps_grant_ids_and_changes_the_generation() {
    let env = env().await;
    let app = app_fixture().await;
    let before = app
        .sdk(env, "POST", "/sdk/token", app.token_body(&app.grant_id))
        .await
        .ok()
        .clone();
    let path = format!("/v1/apps/{}/secrets/{}/rotate", app.app_id, app.secret_id);
    let rotated = app
        .org
        .op(
            env,
            "POST",
            &path,
            json!({"value": {"token": "rotated-value-1"}}),
        )
        .await;
    assert!(
        !rotated.ok().to_string().contains("rotated-value-1"),
        "values are write-only"
    );
    let after = app
        .sdk(env, "POST", "/sdk/token", app.token_body(&app.grant_id))
        .await
        .ok()
        .clone();
    assert_eq!(after["access_token"], "rotated-value-1");
    assert_eq!(after["grant_id"], before["grant_id"]);
    assert_ne!(after["token_generation"], before["token_generation"]);
    app.org
        .op(
            env,
            "POST",
            &path,
            json!({"value": {"api_key": "wrong-shape"}}),
        )
        .await
        .expect(422, "validation_error");
}

#[tokio::test]
async fn reported_provider_calls_are_audited_without_the_credential() {
    let env = env().await;
    let app = app_fixture().await;
    let report = json!({
        "grant_id": app.grant_id, "provider_id": "x", "token_generation": null, "method": "GET",
        "url": "http://127.0.0.1:9/echo?q=secret-query",
        "request_headers": {"Authorization": format!("Bearer {}", app.token), "X-Trace": "t1"},
        "request_body": {"nested": [format!("echo {}", app.token)]},
        "response_status": 200,
        "response_headers": {"Set-Cookie": "s=1", "Content-Type": "application/json"},
        "response_body": format!("{{\"seen\":\"Bearer {}\"}}", app.token),
        "latency_ms": 12, "reason": "why", "context": {"tool": "search"},
    });
    let r = app
        .sdk(env, "POST", "/sdk/oauth/audit/api-call", report.clone())
        .await;
    assert_eq!(r.status, 204);
    let row = &app.audit(env, "action=sdk_audit_api_call").await[0];
    let text = row.to_string();
    assert!(!text.contains(&app.token), "credential scrubbed: {text}");
    assert!(
        !text.contains("secret-query") && !text.contains("Set-Cookie") && !text.contains("s=1")
    );
    assert_eq!(row["detail"]["request_headers"]["X-Trace"], "t1");
    assert_eq!(row["context"]["tool"], "search");
    assert_eq!(row["reason"], "why");

    let mut foreign = report;
    foreign["grant_id"] = json!(Uuid::new_v4());
    app.sdk(env, "POST", "/sdk/oauth/audit/api-call", foreign)
        .await
        .expect(404, "grant_not_found");
}

#[tokio::test]
async fn bad_input_gets_the_error_envelope() {
    let env = env().await;
    let app = app_fixture().await;
    let raw = |body: &'static [u8]| signed_at(&app.key, "POST", "/sdk/token", body, now());
    env.send(raw(b"{not json"))
        .await
        .expect(400, "invalid_json");
    env.send(raw(b"[1,2]"))
        .await
        .expect(422, "validation_error");
    env.send(raw(b"{\"grant_id\": 5}"))
        .await
        .expect(422, "validation_error");
    app.sdk(env, "POST", "/sdk/token", json!({"grant_id": app.grant_id}))
        .await
        .expect(422, "validation_error");
    app.sdk(
        env,
        "POST",
        "/sdk/token",
        json!({"grant_id": "nope", "request": {"method": "GET", "url": "http://127.0.0.1/"}}),
    )
    .await
    .expect(422, "validation_error");
    let big = vec![b' '; portcullis::http::MAX_BODY + 1];
    let r = env
        .send(signed_at(&app.key, "POST", "/sdk/token", &big, now()))
        .await;
    r.expect(413, "payload_too_large");
    env.signed(&app.key, "GET", "/sdk/nowhere", Value::Null)
        .await
        .expect(404, "route_not_found");
    env.signed(&app.key, "DELETE", "/sdk/token", Value::Null)
        .await
        .expect(405, "method_not_allowed");
    // Every one of those that reached the app was audited, none left a half-written grant.
    let rows = app.audit(env, "action=sdk_token").await;
    assert!(rows.len() >= 5, "{} rows", rows.len());
    assert!(rows.iter().all(|r| r["outcome"] != "success"));
}

#[tokio::test]
async fn json_dynamodb_cannot_hold_is_stored_as_text() {
    let env = env().await;
    let app = app_fixture().await;
    let deep = (0..40).fold(json!(1), |inner, _| json!([inner]));
    let report = json!({
        "grant_id": app.grant_id, "method": "GET", "url": "http://127.0.0.1/", "response_status": 200,
        "request_body": {"amount": 1e200, "": "empty key", "deep": deep},
        "context": {"": "dropped", "ok": "kept"},
    });
    assert_eq!(
        app.sdk(env, "POST", "/sdk/oauth/audit/api-call", report)
            .await
            .status,
        204
    );
    let row = &app.audit(env, "action=sdk_audit_api_call").await[0];
    assert_eq!(row["detail"]["request_body"]["amount"], 1e200);
    assert_eq!(row["context"], json!({"ok": "kept"}));

    let path = format!("/sdk/managed-secrets/{}/grants", app.secret_id);
    let odd = json!({"principal": {"type": "system"}, "grant_policy": {"": "x", "n": 1e200}});
    app.sdk(env, "POST", &path, odd).await.ok();
    let listed = app.sdk(env, "POST", "/sdk/grants/list", json!({})).await;
    assert!(
        listed.ok()["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["grant_policy"]["n"] == 1e200)
    );
}

#[tokio::test]
async fn the_credential_is_scrubbed_from_every_field_of_a_report() {
    let env = env().await;
    let app = app_fixture().await;
    let rotate = format!("/v1/apps/{}/secrets/{}/rotate", app.app_id, app.secret_id);
    let token = "tok/with+base64=chars";
    app.org
        .op(env, "POST", &rotate, json!({"value": {"token": token}}))
        .await
        .ok();
    let encoded: String = url_encoded(token);
    let report = json!({
        "grant_id": app.grant_id, "method": "GET", "url": "http://127.0.0.1/", "response_status": 200,
        "reason": format!("because {token}"),
        "context": {"tool": format!("t {token}")},
        "request_body": {token: "as a key", "form": format!("a={encoded}")},
    });
    assert_eq!(
        app.sdk(env, "POST", "/sdk/oauth/audit/api-call", report)
            .await
            .status,
        204
    );
    let row = app.audit(env, "action=sdk_audit_api_call").await[0].to_string();
    assert!(!row.contains(token) && !row.contains(&encoded), "{row}");
    assert!(row.contains("[REDACTED]"));
}

fn url_encoded(s: &str) -> String {
    s.replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D")
}

#[tokio::test]
async fn a_call_that_never_reached_the_provider_is_still_audited() {
    let env = env().await;
    let app = app_fixture().await;
    // What alter-sdk sends after a transport error: status 0, no response headers.
    let report = json!({
        "grant_id": app.grant_id, "provider_id": null, "token_generation": null,
        "method": "GET", "url": "http://127.0.0.1:9/x",
        "request_headers": null, "request_body": null,
        "response_status": 0, "response_headers": null,
        "response_body": "<transport error: network>", "latency_ms": 3,
        "reason": null, "context": null,
    });
    let r = app
        .sdk(env, "POST", "/sdk/oauth/audit/api-call", report)
        .await;
    assert!((200..300).contains(&r.status), "{}", r.body);
    let rows = app.audit(env, "action=sdk_audit_api_call").await;
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn spans_are_stored_once_per_trace_and_span_and_read_by_operators() {
    let env = env().await;
    let app = app_fixture().await;
    let trace = format!("run-{}", uuid::Uuid::new_v4().simple());
    let batch = json!({"spans": [
        {"trace_id": trace, "span_id": "s1", "name": "plan", "start_time": "2026-12-04T10:00:00Z",
         "end_time": "2026-12-04T10:00:01Z", "attributes": {"tool": "search"}},
        {"trace_id": trace, "name": "act", "start_time": "2026-12-04T10:00:02Z", "parent_span_id": "s1"},
    ]});
    let first = app.sdk(env, "POST", "/sdk/spans", batch.clone()).await;
    assert_eq!(first.ok()["accepted"], 2);
    // A retried batch: the span with its own ID is absorbed.
    let again = app.sdk(env, "POST", "/sdk/spans", batch).await;
    assert_eq!(again.ok()["accepted"], 1);
    let read = app
        .org
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/traces/{trace}", app.app_id),
            Value::Null,
        )
        .await;
    let spans = read.ok()["spans"].as_array().unwrap().clone();
    assert_eq!(spans.len(), 3);
    assert_eq!(
        (&spans[0]["name"], &spans[0]["attributes"]["tool"]),
        (&json!("plan"), &json!("search"))
    );
    // Bad batches are refused whole.
    for bad in [
        json!({"spans": []}),
        json!({"spans": [{"trace_id": trace, "name": "x", "start_time": "2026-12-04T10:00:02Z", "end_time": "2026-12-04T10:00:01Z"}]}),
        json!({"spans": [{"trace_id": "", "name": "x", "start_time": "2026-12-04T10:00:02Z"}]}),
        json!({"spans": (0..51).map(|i| json!({"trace_id": "t", "name": format!("n{i}"), "start_time": "2026-12-04T10:00:00Z"})).collect::<Vec<_>>()}),
    ] {
        app.sdk(env, "POST", "/sdk/spans", bad)
            .await
            .expect(422, "validation_error");
    }
    // Another app's operators see nothing of this trace (as of any unknown one).
    let other = app_fixture().await;
    let foreign = other
        .org
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/traces/{trace}", other.app_id),
            Value::Null,
        )
        .await;
    assert_eq!(foreign.ok()["spans"], json!([]));
}
