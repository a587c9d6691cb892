//! Managed agents: lifecycle, idempotent creation, agent keys and their limit, what an agent
//! key reaches, impersonation by an app key, and optimistic concurrency.

use portcullis_tests::*;
use serde_json::{Value, json};

async fn create(env: &Env, app: &TestApp, name: &str, slugs: &[&str]) -> Value {
    let scopes = if slugs.is_empty() {
        json!({})
    } else {
        json!({"managed_secret_slugs": slugs})
    };
    let body = json!({"name": name, "type": "agent", "scopes": scopes, "metadata": {}});
    let r = app.sdk(env, "POST", "/sdk/agents", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn slug_of(env: &Env, app: &TestApp, secret_id: &str) -> String {
    let s = app
        .org
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/secrets/{secret_id}", app.app_id),
            Value::Null,
        )
        .await;
    s.ok()["slug"].as_str().unwrap().to_string()
}

async fn grant_to_agent(env: &Env, app: &TestApp, secret_id: &str, agent_id: &str) -> String {
    let r = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/secrets/{secret_id}/grants", app.app_id),
            json!({"principal": {"type": "agent", "agent_id": agent_id}}),
        )
        .await;
    r.ok()["grant_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_agent_key_reaches_only_its_own_grants_within_its_access_set() {
    let env = env().await;
    let app = app_fixture().await;
    let slug = slug_of(env, &app, &app.secret_id).await;
    let agent = create(env, &app, "billing-bot", &[&slug]).await;
    let (agent_id, agent_key) = (
        agent["id"].as_str().unwrap(),
        agent["api_key"].as_str().unwrap(),
    );
    assert!(agent_key.starts_with("alter_key_"));
    let bound = grant_to_agent(env, &app, &app.secret_id, agent_id).await;

    let token = env
        .signed(agent_key, "POST", "/sdk/token", app.token_body(&bound))
        .await;
    assert_eq!(token.ok()["access_token"], app.token);
    // The app's own (system) grant of the same secret is not the agent's.
    env.signed(
        agent_key,
        "POST",
        "/sdk/token",
        app.token_body(&app.grant_id),
    )
    .await
    .expect(404, "grant_not_found");
    let listed = env
        .signed(agent_key, "POST", "/sdk/grants/list", json!({}))
        .await;
    let ids: Vec<&str> = listed.ok()["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![bound.as_str()]);
    // Bound, but outside the agent's access set.
    let other_secret = app
        .org
        .secret(env, &app.app_id, "bearer", json!({"token": "other-tok"}))
        .await;
    let outside = grant_to_agent(env, &app, &other_secret, agent_id).await;
    env.signed(agent_key, "POST", "/sdk/token", app.token_body(&outside))
        .await
        .expect(403, "agent_scope_not_allowed");
    // Provider mode resolves among the agent's grants.
    let by_provider =
        json!({"provider_id": slug, "request": {"method": "GET", "url": "http://127.0.0.1/"}});
    assert_eq!(
        env.signed(agent_key, "POST", "/sdk/token", by_provider)
            .await
            .ok()["grant_id"],
        bound.as_str()
    );
    // Audit rows name the agent as principal.
    let row = &app.audit(env, "action=sdk_token&outcome=success").await[0];
    assert_eq!(
        (row["principal_type"].as_str(), row["principal_id"].as_str()),
        (Some("agent"), Some(agent_id))
    );
    // Agents cannot create agents or read the app's agents.
    env.signed(
        agent_key,
        "POST",
        "/sdk/agents",
        json!({"name": "x", "scopes": {}}),
    )
    .await
    .expect(403, "insufficient_scope");
    let me = env
        .signed(agent_key, "GET", "/sdk/agents/me", Value::Null)
        .await;
    assert_eq!(me.ok()["id"], agent_id);
    app.sdk(env, "GET", "/sdk/agents/me", Value::Null)
        .await
        .expect(403, "me_requires_agent_key");
}

#[tokio::test]
async fn suspended_and_deleted_agents_lose_their_keys_at_once() {
    let env = env().await;
    let app = app_fixture().await;
    let agent = create(env, &app, "ops-bot", &[]).await;
    let (id, key) = (
        agent["id"].as_str().unwrap(),
        agent["api_key"].as_str().unwrap(),
    );
    env.signed(key, "GET", "/sdk/agents/me", Value::Null)
        .await
        .ok();
    let suspended = app
        .sdk(
            env,
            "PATCH",
            &format!("/sdk/agents/{id}"),
            json!({"status": "inactive"}),
        )
        .await;
    assert_eq!(suspended.ok()["status"], "inactive");
    env.signed(key, "GET", "/sdk/agents/me", Value::Null)
        .await
        .expect(401, "agent_inactive");
    app.sdk(
        env,
        "PATCH",
        &format!("/sdk/agents/{id}"),
        json!({"status": "active"}),
    )
    .await
    .ok();
    env.signed(key, "GET", "/sdk/agents/me", Value::Null)
        .await
        .ok();
    let deleted = app
        .sdk(env, "DELETE", &format!("/sdk/agents/{id}"), Value::Null)
        .await;
    assert_eq!(deleted.ok()["status"], "revoked");
    env.signed(key, "GET", "/sdk/agents/me", Value::Null)
        .await
        .expect(401, "agent_revoked");
    assert_eq!(
        app.sdk(env, "DELETE", &format!("/sdk/agents/{id}"), Value::Null)
            .await
            .ok()["status"],
        "revoked"
    );
    // The name is free again; listings hide revoked agents unless asked.
    create(env, &app, "ops-bot", &[]).await;
    let active = app
        .sdk(
            env,
            "GET",
            "/sdk/agents?include_revoked=false&limit=10&offset=0",
            Value::Null,
        )
        .await
        .ok()
        .clone();
    assert_eq!(active["total"], 1);
    let all = app
        .sdk(env, "GET", "/sdk/agents?include_revoked=true", Value::Null)
        .await
        .ok()
        .clone();
    assert_eq!(all["total"], 2);
    let by_name = app
        .sdk(env, "GET", "/sdk/agents?name=ops-bot", Value::Null)
        .await
        .ok()
        .clone();
    assert_eq!(by_name["items"][0]["status"], "active");
}

#[tokio::test]
async fn creation_is_idempotent_and_names_are_unique() {
    let env = env().await;
    let app = app_fixture().await;
    let body =
        json!({"name": "idem-bot", "type": "service", "scopes": {}, "metadata": {"team": "x"}});
    let send = |b: &Value| {
        let mut req = signed_at(&app.key, "POST", "/sdk/agents", &body_bytes(b), now());
        set(&mut req, "idempotency-key", "create-idem-bot-1");
        env.send(req)
    };
    let first = send(&body).await;
    assert_eq!(first.status, 201);
    let again = send(&body).await;
    assert_eq!(again.ok()["id"], first.body["id"]);
    assert!(again.body["api_key"].is_null());
    assert_eq!(again.body["key_id"], first.body["key_id"]);
    let mut changed = body.clone();
    changed["metadata"] = json!({"team": "y"});
    send(&changed)
        .await
        .expect(409, "idempotency_key_body_mismatch");
    // Without the key, the same name is taken.
    app.sdk(env, "POST", "/sdk/agents", body)
        .await
        .expect(409, "agent_name_exists");
    for bad in [
        json!({"name": "Bad Name", "scopes": {}}),
        json!({"name": "x", "scopes": {"g": []}}),
        json!({"name": "x", "type": "robot", "scopes": {}}),
    ] {
        app.sdk(env, "POST", "/sdk/agents", bad)
            .await
            .expect(422, "validation_error");
    }
}

#[tokio::test]
async fn agent_keys_mint_list_deprecate_and_revoke() {
    let env = env().await;
    let app = app_fixture().await;
    let agent = create(env, &app, "key-bot", &[]).await;
    let id = agent["id"].as_str().unwrap();
    let first_key_id = agent["key_id"].as_str().unwrap();
    let minted = app
        .sdk(env, "POST", &format!("/sdk/agents/{id}/keys"), json!({}))
        .await;
    assert_eq!(minted.status, 201);
    assert_eq!(minted.body["name"], "key-bot-2");
    let second = minted.body["api_key"].as_str().unwrap().to_string();
    let second_id = minted.body["key_id"].as_str().unwrap().to_string();
    let listed = app
        .sdk(env, "GET", &format!("/sdk/agents/{id}/keys"), Value::Null)
        .await
        .ok()
        .clone();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&second));

    let base = format!("/sdk/agents/{id}/keys/{second_id}");
    app.sdk(env, "PATCH", &format!("{base}/deprecate"), json!({}))
        .await
        .ok();
    let r = env
        .signed(&second, "GET", "/sdk/agents/me", Value::Null)
        .await;
    assert_eq!(r.headers["x-alter-key-deprecated"], "true");
    app.sdk(env, "PATCH", &format!("{base}/undeprecate"), json!({}))
        .await
        .ok();
    app.sdk(env, "DELETE", &base, Value::Null).await.ok();
    env.signed(&second, "GET", "/sdk/agents/me", Value::Null)
        .await
        .expect(401, "key_revoked");
    app.sdk(env, "DELETE", &base, Value::Null)
        .await
        .expect(409, "key_revoked");
    // The first key is now the last one: revoking it needs force.
    let last = format!("/sdk/agents/{id}/keys/{first_key_id}");
    app.sdk(env, "DELETE", &last, Value::Null)
        .await
        .expect(409, "last_active_key");
    app.sdk(env, "DELETE", &format!("{last}?force=true"), Value::Null)
        .await
        .ok();
    // Agent keys are not app keys: the operator's app-key routes do not reach them.
    app.org
        .op(
            env,
            "DELETE",
            &format!("/v1/apps/{}/keys/{first_key_id}", app.app_id),
            Value::Null,
        )
        .await
        .expect(404, "key_not_found");
}

#[tokio::test]
async fn concurrent_mints_never_exceed_the_limit() {
    let env = env().await;
    let app = app_fixture().await;
    let agent = create(env, &app, "busy-bot", &[]).await;
    let path = format!("/sdk/agents/{}/keys", agent["id"].as_str().unwrap());
    // 50 at once, as many parallel operators would.
    let results = join_all(
        (0..50)
            .map(|_| app.sdk(env, "POST", &path, json!({})))
            .collect(),
    )
    .await;
    let ok = results.iter().filter(|r| r.status == 201).count();
    assert!(
        results
            .iter()
            .all(|r| r.status == 201 || r.code() == "agent_key_limit_reached" || r.status == 503),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let listed = app.sdk(env, "GET", &path, Value::Null).await.ok().clone();
    let active = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["revoked_at"].is_null())
        .count();
    assert_eq!(active, 1 + ok);
    assert!(
        active <= portcullis::model::agent::MAX_AGENT_KEYS as usize,
        "{active} active keys"
    );
}

#[tokio::test]
async fn scope_changes_need_the_version_and_narrowing_is_staged() {
    let env = env().await;
    let app = app_fixture().await;
    let agent = create(env, &app, "scope-bot", &["a"]).await;
    let id = agent["id"].as_str().unwrap();
    let path = format!("/sdk/agents/{id}");
    app.sdk(
        env,
        "PATCH",
        &path,
        json!({"scopes": {"managed_secret_slugs": ["a", "b"]}}),
    )
    .await
    .expect(422, "validation_error");
    let broadened = app
        .sdk(
            env,
            "PATCH",
            &format!("{path}?grace_seconds=0&expected_version=1"),
            json!({"scopes": {"managed_secret_slugs": ["a", "b"]}}),
        )
        .await;
    assert_eq!(
        broadened.ok()["scopes"]["managed_secret_slugs"],
        json!(["a", "b"])
    );
    assert_eq!(broadened.body["version"], 2);
    let narrowed = app
        .sdk(
            env,
            "PATCH",
            &format!("{path}?expected_version=2"),
            json!({"scopes": {"managed_secret_slugs": ["a"]}}),
        )
        .await;
    let b = narrowed.ok();
    assert_eq!(
        b["scopes"]["managed_secret_slugs"],
        json!(["a", "b"]),
        "still in force during the grace"
    );
    assert_eq!(b["scopes_pending"]["managed_secret_slugs"], json!(["a"]));
    assert!(b["scopes_applies_at"].is_string());
    app.sdk(
        env,
        "PATCH",
        &format!("{path}?expected_version=2"),
        json!({"scopes": {}}),
    )
    .await
    .expect(409, "agent_concurrent_update");

    // 20 updates racing on the same version: exactly one wins.
    let app = &app;
    let tries = (0..20).map(|i| {
        let body = json!({"scopes": {"managed_secret_slugs": [format!("s{i}")]}});
        let target = format!("{path}?grace_seconds=0&expected_version=3");
        async move { app.sdk(env, "PATCH", &target, body).await }
    });
    let results = join_all(tries.collect()).await;
    assert_eq!(
        results.iter().filter(|r| r.status == 200).count(),
        1,
        "{:?}",
        results
            .iter()
            .map(|r| (r.status, r.code().to_string()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_app_key_can_act_as_one_of_its_agents_for_attribution() {
    let env = env().await;
    let app = app_fixture().await;
    let agent = create(env, &app, "impersonated", &[]).await;
    let id = agent["id"].as_str().unwrap();
    let r = env
        .send(signed_as(
            &app.key,
            "POST",
            "/sdk/token",
            &app.token_body(&app.grant_id),
            id,
            "agent",
        ))
        .await;
    assert_eq!(
        r.ok()["grant_id"],
        app.grant_id,
        "attribution, not isolation"
    );
    assert_eq!(r.headers["x-alter-actor-id"], id);
    let row = &app.audit(env, "action=sdk_token").await[0];
    assert_eq!(
        (row["principal_type"].as_str(), row["principal_id"].as_str()),
        (Some("agent"), Some(id))
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    env.send(signed_as(
        &app.key,
        "GET",
        "/sdk/scopes",
        &Value::Null,
        &unknown,
        "agent",
    ))
    .await
    .expect(404, "caller_agent_unresolved");
    // Another app's agent is as unknown as a random one.
    let other = app_fixture().await;
    let foreign = create(env, &other, "foreign", &[]).await;
    env.send(signed_as(
        &app.key,
        "GET",
        "/sdk/scopes",
        &Value::Null,
        foreign["id"].as_str().unwrap(),
        "agent",
    ))
    .await
    .expect(404, "caller_agent_unresolved");
    // A free-form caller label gets a stable actor ID of its own.
    let a = env
        .send(signed_as(
            &app.key,
            "GET",
            "/sdk/scopes",
            &Value::Null,
            "billing-service",
            "service",
        ))
        .await;
    let b = env
        .send(signed_as(
            &app.key,
            "GET",
            "/sdk/scopes",
            &Value::Null,
            "billing-service",
            "service",
        ))
        .await;
    assert_eq!(a.headers["x-alter-actor-id"], b.headers["x-alter-actor-id"]);
}

#[tokio::test]
async fn grants_go_only_to_agents_that_exist() {
    let env = env().await;
    let app = app_fixture().await;
    let path = format!("/v1/apps/{}/secrets/{}/grants", app.app_id, app.secret_id);
    let to = |agent_id: String| {
        app.org.op(
            env,
            "POST",
            &path,
            json!({"principal": {"type": "agent", "agent_id": agent_id}}),
        )
    };
    to(uuid::Uuid::new_v4().to_string())
        .await
        .expect(404, "agent_not_found");
    let agent = create(env, &app, "granted", &[]).await;
    let id = agent["id"].as_str().unwrap().to_string();
    assert_eq!(to(id.clone()).await.status, 201);
    app.sdk(env, "DELETE", &format!("/sdk/agents/{id}"), Value::Null)
        .await
        .ok();
    to(id).await.expect(404, "agent_not_found");
    // Another app's agent is as unknown as a random one.
    let other = app_fixture().await;
    let foreign = create(env, &other, "foreign-granted", &[]).await;
    to(foreign["id"].as_str().unwrap().to_string())
        .await
        .expect(404, "agent_not_found");
}
