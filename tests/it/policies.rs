//! Policies on every runtime call, fail closed: a grant's methods and endpoints (proxy-only),
//! the app's IP allowlist and schedule, quotas on grants and agents, against a real upstream.

use portcullis_tests::oauth::{Provider, browse};
use portcullis_tests::upstream::Upstream;
use portcullis_tests::*;
use serde_json::{Value, json};

async fn grant_with(env: &Env, app: &TestApp, policy: Value) -> String {
    let r = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/secrets/{}/grants", app.app_id, app.secret_id),
            json!({"principal": {"type": "system"}, "policy": policy}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["grant_id"].as_str().unwrap().to_string()
}

async fn call(env: &Env, app: &TestApp, grant: &str, method: &str, url: &str) -> Resp {
    app.sdk(
        env,
        "POST",
        "/sdk/proxy",
        json!({"grant_id": grant, "method": method, "url": url}),
    )
    .await
}

async fn retrieve(env: &Env, app: &TestApp, grant: &str, url: &str) -> Resp {
    app.sdk(
        env,
        "POST",
        "/sdk/token",
        json!({"grant_id": grant, "request": {"method": "GET", "url": url}}),
    )
    .await
}

#[tokio::test]
async fn a_restricted_grant_is_proxy_only_and_only_for_its_methods_and_endpoints() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let grant = grant_with(
        env,
        &app,
        json!({"allowed_methods": ["get"], "allowed_endpoints": ["/v1/items/*"]}),
    )
    .await;
    let item = format!("{}/v1/items/7", up.url);
    retrieve(env, &app, &grant, &item)
        .await
        .expect(400, "restricted_grant_requires_proxy");
    assert_eq!(
        call(env, &app, &grant, "GET", &item).await.ok()["status_code"],
        200
    );
    let refused = call(env, &app, &grant, "DELETE", &item).await;
    refused.expect(403, "method_not_allowed");
    assert_eq!(refused.body["policy"], "grant");
    call(env, &app, &grant, "GET", &format!("{}/v1/admin/7", up.url))
        .await
        .expect(403, "endpoint_not_allowed");
    assert_eq!(up.hits(), 1, "only the allowed call went out");
    let rows = app.audit(env, "action=sdk_proxy").await;
    assert_eq!(rows[0]["error_code"], "endpoint_not_allowed");
    // Bad documents are refused when set.
    let bad = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/secrets/{}/grants", app.app_id, app.secret_id),
            json!({"principal": {"type": "system"}, "policy": {"allowed_methods": ["FETCH"]}}),
        )
        .await;
    bad.expect(422, "invalid_policy");
}

#[tokio::test]
async fn the_apps_ip_allowlist_and_schedule_apply_to_every_call() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let url = format!("{}/x", up.url);
    let set = |policy: Value| {
        let app = &app;
        async move {
            app.org
                .op(
                    env,
                    "PUT",
                    &format!("/v1/apps/{}/policy", app.app_id),
                    policy,
                )
                .await
        }
    };
    let from = |ip: Option<&str>| {
        let body = body_bytes(&json!({"grant_id": app.grant_id, "method": "GET", "url": url}));
        let mut req = signed_at(&app.key, "POST", "/sdk/proxy", &body, now());
        req.source_ip = ip.map(|i| i.parse().unwrap());
        env.send(req)
    };
    let r = set(json!({"ip_allowlist": ["203.0.113.0/24"]})).await;
    assert_eq!(r.ok()["policy"]["ip_allowlist"], json!(["203.0.113.0/24"]));
    from(Some("203.0.113.9")).await.ok();
    from(Some("198.51.100.1"))
        .await
        .expect(403, "ip_not_allowed");
    // An address that cannot be known is refused, not waved through.
    from(None).await.expect(403, "ip_not_allowed");
    let got = app
        .org
        .op(env, "GET", &format!("/v1/apps/{}", app.app_id), Value::Null)
        .await;
    assert_eq!(got.ok()["policy"]["ip_allowlist"][0], "203.0.113.0/24");

    // Only on days that are not today, in UTC: refused; today: allowed.
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let today = DAYS[time::OffsetDateTime::now_utc()
        .weekday()
        .number_days_from_monday() as usize];
    let others: Vec<&str> = DAYS.iter().copied().filter(|d| *d != today).collect();
    set(json!({"schedule": {"time_zone": "UTC", "days": others}}))
        .await
        .ok();
    let r = retrieve(env, &app, &app.grant_id, &url).await;
    r.expect(403, "outside_allowed_hours");
    assert_eq!(r.body["policy"], "app");
    set(json!({"schedule": {"time_zone": "UTC", "days": [today]}}))
        .await
        .ok();
    retrieve(env, &app, &app.grant_id, &url).await.ok();
    set(json!({"schedule": {"time_zone": "Nowhere/Special"}}))
        .await
        .expect(422, "invalid_policy");
    // `{}` removes the policy.
    assert_eq!(set(json!({})).await.ok()["policy"], Value::Null);
}

#[tokio::test]
async fn quotas_count_calls_per_window_for_grants_and_agents() {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let url = format!("{}/x", up.url);
    let grant = grant_with(env, &app, json!({"quotas": [{"per": "month", "limit": 2}]})).await;
    retrieve(env, &app, &grant, &url).await.ok();
    call(env, &app, &grant, "GET", &url).await.ok();
    let over = call(env, &app, &grant, "GET", &url).await;
    over.expect(429, "quota_exceeded");
    let retry = over.body["retry_after"].as_u64().unwrap();
    assert!((1..=31 * 86_400).contains(&retry), "{retry}");
    assert_eq!(over.headers["retry-after"], retry.to_string().as_str());
    assert_eq!(
        (
            &over.body["policy"],
            &over.body["limit"],
            &over.body["window"]
        ),
        (&json!("grant"), &json!(2), &json!("month"))
    );
    assert_eq!(up.hits(), 1, "the refused call never went out");

    // An agent's quota counts its calls whatever grant they use.
    let created = app
        .sdk(
            env,
            "POST",
            "/sdk/agents",
            json!({"name": "counted", "type": "agent", "scopes": {}, "metadata": {},
                   "policy": {"quotas": [{"per": "month", "limit": 1}]}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let agent = created.body["id"].as_str().unwrap().to_string();
    let as_agent = |target: &str| {
        let body = json!({"grant_id": app.grant_id, "request": {"method": "GET", "url": target}});
        env.send(signed_as(
            &app.key,
            "POST",
            "/sdk/token",
            &body,
            &agent,
            "agent",
        ))
    };
    as_agent(&url).await.ok();
    as_agent(&url).await.expect(429, "quota_exceeded");
    // A policy that is not one is refused when set.
    app.sdk(
        env,
        "POST",
        "/sdk/agents",
        json!({"name": "bad", "type": "agent", "scopes": {}, "metadata": {}, "policy": {"quotas": [{"per": "week", "limit": 1}]}}),
    )
    .await
    .expect(422, "invalid_policy");
}

#[tokio::test]
async fn connect_restrictions_make_the_users_grant_proxy_only() {
    let env = env().await;
    let app = app_fixture().await;
    let p = Provider::start().await;
    app.use_provider(env, &p, &["read"], json!({})).await.ok();
    let session = app
        .connect_session(
            env,
            json!({"requested_grant": {"label": "narrow", "restrictions": {"allowed_methods": ["GET"], "allowed_endpoints": ["/api/me"]}}}),
        )
        .await;
    browse(env, &p, &session).await;
    let polled = app.poll(env, &session).await;
    let grant = polled["grants"][0]["grant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let me = format!("{}/api/me", p.issuer);
    retrieve(env, &app, &grant, &me)
        .await
        .expect(400, "restricted_grant_requires_proxy");
    assert_eq!(
        call(env, &app, &grant, "GET", &me).await.ok()["status_code"],
        200
    );
    call(env, &app, &grant, "POST", &me)
        .await
        .expect(403, "method_not_allowed");
    // Restrictions are methods and endpoints; other policy parts are the operator's.
    app.sdk(
        env,
        "POST",
        "/sdk/oauth/connect/session",
        json!({"allowed_providers": ["acme-oauth"], "return_url": null, "allowed_origin": null, "metadata": null,
               "requested_grant": {"label": "x", "restrictions": {"quotas": [{"per": "day", "limit": 1}]}}}),
    )
    .await
    .expect(422, "validation_error");
}
