//! The key lifecycle through the SDK routes: derived keys (narrower, shorter, dying with their
//! parent), rotation with overlap, revocation, and CIDR allowlists.

use portcullis_tests::*;
use serde_json::{Value, json};

#[tokio::test]
async fn derived_keys_are_narrower_shorter_and_die_with_their_parent() {
    let env = env().await;
    let app = app_fixture().await;
    let parent = app.org.app_key(env, &app.app_id, None).await;
    let derive = |body: Value| env.signed(&parent, "POST", "/sdk/keys/derive", body);
    let d = derive(json!({"scopes": ["tokens:retrieve"], "expires_in": 999_999})).await;
    assert_eq!(d.status, 201, "{}", d.body);
    let (dk, b) = (
        d.body["api_key"].as_str().unwrap().to_string(),
        d.body.clone(),
    );
    assert!(dk.starts_with("alter_dk_"));
    assert_eq!(b["key_type"], "dk");
    assert_eq!(b["scopes"], json!(["tokens:retrieve"]));
    let expires = time::OffsetDateTime::parse(
        b["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        expires <= time::OffsetDateTime::now_utc() + time::Duration::hours(24),
        "capped at 24 h"
    );
    env.signed(&dk, "POST", "/sdk/token", app.token_body(&app.grant_id))
        .await
        .ok();
    env.signed(&dk, "POST", "/sdk/grants/list", json!({}))
        .await
        .expect(403, "insufficient_scope");
    // A derived key cannot derive (keys:derive is never passed on), nor be asked for it.
    env.signed(
        &dk,
        "POST",
        "/sdk/keys/derive",
        json!({"scopes": ["tokens:retrieve"], "expires_in": 60}),
    )
    .await
    .expect(403, "insufficient_scope");
    derive(json!({"scopes": ["keys:derive"], "expires_in": 60}))
        .await
        .expect(400, "invalid_scope_for_derived_key");
    let narrow = app
        .org
        .app_key(
            env,
            &app.app_id,
            Some(vec!["tokens:retrieve", "keys:derive"]),
        )
        .await;
    env.signed(
        &narrow,
        "POST",
        "/sdk/keys/derive",
        json!({"scopes": ["grants:read"], "expires_in": 60}),
    )
    .await
    .expect(400, "constraint_not_narrowing");
    // Revoking the parent stops the derived key at once.
    let parent_id = app.key_id(env, &parent).await;
    app.sdk(
        env,
        "DELETE",
        &format!("/sdk/keys/{parent_id}"),
        Value::Null,
    )
    .await
    .ok();
    env.signed(&dk, "POST", "/sdk/token", app.token_body(&app.grant_id))
        .await
        .expect(401, "key_revoked");
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_the_overlap() {
    let env = env().await;
    let app = app_fixture().await;
    let old = app.org.app_key(env, &app.app_id, None).await;
    let old_id = app.key_id(env, &old).await;
    let r = app
        .sdk(
            env,
            "POST",
            &format!("/sdk/keys/{old_id}/rotate"),
            json!({"overlap_days": 7}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let new = r.body["api_key"].as_str().unwrap().to_string();
    env.signed(&new, "GET", "/sdk/scopes", Value::Null)
        .await
        .ok();
    env.signed(&old, "GET", "/sdk/scopes", Value::Null)
        .await
        .ok();
    app.sdk(
        env,
        "POST",
        &format!("/sdk/keys/{old_id}/rotate"),
        json!({}),
    )
    .await
    .expect(409, "key_already_rotated");
    // Zero overlap: the old key is done at once, with its own code.
    let other = app.org.app_key(env, &app.app_id, None).await;
    let other_id = app.key_id(env, &other).await;
    app.sdk(
        env,
        "POST",
        &format!("/sdk/keys/{other_id}/rotate"),
        json!({"overlap_days": 0}),
    )
    .await;
    env.signed(&other, "GET", "/sdk/scopes", Value::Null)
        .await
        .expect(401, "key_rotated_grace_expired");
    app.sdk(
        env,
        "POST",
        &format!("/sdk/keys/{other_id}/rotate"),
        json!({"overlap_days": 31}),
    )
    .await
    .expect(422, "validation_error");
}

#[tokio::test]
async fn revocation_through_the_sdk_is_final() {
    let env = env().await;
    let app = app_fixture().await;
    let victim = app.org.app_key(env, &app.app_id, None).await;
    let id = app.key_id(env, &victim).await;
    let r = app
        .sdk(env, "DELETE", &format!("/sdk/keys/{id}"), Value::Null)
        .await;
    assert!(r.ok()["revoked_at"].is_string());
    env.signed(&victim, "GET", "/sdk/scopes", Value::Null)
        .await
        .expect(401, "key_revoked");
    app.sdk(env, "DELETE", &format!("/sdk/keys/{id}"), Value::Null)
        .await
        .expect(409, "key_revoked");
}

#[tokio::test]
async fn cidr_allowlists_are_enforced_on_the_client_address() {
    let env = env().await;
    let app = app_fixture().await;
    let r = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/keys", app.app_id),
            json!({"name": "office", "cidr_allowlist": ["203.0.113.0/24"]}),
        )
        .await;
    let key = r.ok()["api_key"].as_str().unwrap().to_string();
    let from = |ip: &str| {
        let mut req = signed_at(&key, "GET", "/sdk/scopes", b"", now());
        req.source_ip = Some(ip.parse().unwrap());
        env.send(req)
    };
    from("203.0.113.20").await.ok();
    from("198.51.100.1").await.expect(403, "ip_not_allowed");
    // A derived key inherits the allowlist, and may only narrow it.
    let mut req = signed_at(
        &key,
        "POST",
        "/sdk/keys/derive",
        &body_bytes(
            &json!({"scopes": ["tokens:retrieve"], "expires_in": 60, "cidr_allowlist": ["198.51.100.0/24"]}),
        ),
        now(),
    );
    req.source_ip = Some("203.0.113.20".parse().unwrap());
    env.send(req).await.expect(400, "constraint_not_narrowing");
    for bad in [json!(["0.0.0.0/0"]), json!(["not-a-cidr"])] {
        app.org
            .op(
                env,
                "POST",
                &format!("/v1/apps/{}/keys", app.app_id),
                json!({"name": "x", "cidr_allowlist": bad}),
            )
            .await
            .expect(422, "validation_error");
    }
}

/// Requests counted so far in this minute for a subject (`key:<id>`, `agent:<id>`).
async fn counted(env: &Env, app: &TestApp, subject: &str) -> u32 {
    let key = portcullis::ratelimit::counter(&app.app_id, subject, time::OffsetDateTime::now_utc());
    portcullis::ratelimit::used(env.ctx.store.get(&key, true).await.unwrap())
}

#[tokio::test]
async fn rate_limits_refuse_with_headers_and_count_nothing_refused() {
    let env = env().await;
    let app = app_fixture().await;
    // Stay inside one window: the limits are per calendar minute.
    let second = time::OffsetDateTime::now_utc().second();
    if second > 45 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - second as u64)).await;
    }
    let r = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/keys", app.app_id),
            json!({"name": "limited", "rate_limit_rpm": 5}),
        )
        .await;
    let b = r.ok().clone();
    assert_eq!(
        (
            b["effective_rate_limit_rpm"].as_u64(),
            b["rate_limit_source"].as_str()
        ),
        (Some(5), Some("key"))
    );
    let (key, key_id) = (
        b["api_key"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    );
    // An agent limited to 2 a minute, acted as by the key: the tighter limit refuses first.
    let agent = env
        .signed(
            &key,
            "POST",
            "/sdk/agents",
            json!({"name": "slow", "scopes": {}, "rate_limit_per_minute": 2}),
        )
        .await;
    let agent_id = agent.body["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let ok = env
            .send(signed_as(
                &key,
                "GET",
                "/sdk/scopes",
                &Value::Null,
                &agent_id,
                "agent",
            ))
            .await;
        ok.ok();
        assert!(ok.headers.contains_key("x-ratelimit-remaining"));
    }
    let refused = env
        .send(signed_as(
            &key,
            "GET",
            "/sdk/scopes",
            &Value::Null,
            &agent_id,
            "agent",
        ))
        .await;
    refused.expect(429, "rate_limit_exceeded");
    assert_eq!(
        (
            refused.body["scope"].as_str(),
            refused.body["limit"].as_u64()
        ),
        (Some("agent"), Some(2))
    );
    assert!(
        refused.headers.contains_key("retry-after")
            && refused.headers["x-ratelimit-remaining"] == "0"
    );
    // All or nothing: the refused request did not count against the key either.
    assert_eq!(
        counted(env, &app, &format!("key:{key_id}")).await,
        3,
        "create + 2 calls"
    );
    assert_eq!(counted(env, &app, &format!("agent:{agent_id}")).await, 2);
    // The key alone: two more fit (5), the next is refused.
    env.signed(&key, "GET", "/sdk/scopes", Value::Null)
        .await
        .ok();
    let last = env.signed(&key, "GET", "/sdk/scopes", Value::Null).await;
    last.ok();
    assert_eq!(last.headers["x-ratelimit-remaining"], "0");
    let over = env.signed(&key, "GET", "/sdk/scopes", Value::Null).await;
    over.expect(429, "rate_limit_exceeded");
    assert_eq!(over.body["scope"], "api_key");
    assert_eq!(counted(env, &app, &format!("key:{key_id}")).await, 5);
    let row = &app.audit(env, "outcome=denied").await[0];
    assert_eq!(row["error_code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn the_organisation_caps_derived_key_life() {
    let env = env().await;
    let app = app_fixture().await;
    let r = app
        .org
        .op(
            env,
            "PATCH",
            "/v1/org",
            json!({"max_derived_key_ttl_hours": 1}),
        )
        .await;
    assert_eq!(r.ok()["org"]["max_derived_key_ttl_hours"], 1);
    app.org
        .op(
            env,
            "PATCH",
            "/v1/org",
            json!({"max_derived_key_ttl_hours": 0}),
        )
        .await
        .expect(422, "validation_error");
    let d = app
        .sdk(
            env,
            "POST",
            "/sdk/keys/derive",
            json!({"scopes": ["tokens:retrieve"], "expires_in": 7200}),
        )
        .await;
    let expires = time::OffsetDateTime::parse(
        d.body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        expires <= time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        "{}",
        d.body
    );
}
