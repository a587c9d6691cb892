//! Delegation of a user's OAuth grant to agents: consent in Connect (`agent=`), what the agent
//! then lists and uses, onward delegation and its limits, and how revoking any link ends
//! everything below it. The provider and the identity provider are real processes.

use portcullis_tests::oauth::{PROVIDER, Provider, browse};
use portcullis_tests::*;
use serde_json::{Value, json};

struct Setup {
    env: &'static Env,
    app: TestApp,
    p: Provider,
    user_token: String,
    /// (agent ID, agent key)
    a: (String, String),
    b: (String, String),
}

async fn agent(env: &Env, app: &TestApp, name: &str) -> (String, String) {
    let body =
        json!({"name": name, "type": "agent", "scopes": {PROVIDER: ["read"]}, "metadata": {}});
    let r = app.sdk(env, "POST", "/sdk/agents", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["api_key"].as_str().unwrap().to_string(),
    )
}

async fn setup() -> Setup {
    let env = env().await;
    let app = app_fixture().await;
    let p = Provider::start().await;
    app.use_provider(env, &p, &["read"], json!({})).await.ok();
    app.use_idp(env, &p, json!({})).await.ok();
    let user_token = p.id_token(json!({"sub": "olivia"})).await;
    let a = agent(env, &app, "agent-a").await;
    let b = agent(env, &app, "agent-b").await;
    Setup {
        env,
        app,
        p,
        user_token,
        a,
        b,
    }
}

impl Setup {
    /// The user connects the provider, consenting to `agent`: the poll's grant entry.
    async fn connect_for(&self, agent: &str, extra: Value) -> Value {
        let mut body = json!({"user_token": self.user_token, "agent": agent});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let session = self.app.connect_session(self.env, body).await;
        let page = browse(self.env, &self.p, &session).await;
        assert!(page.contains("\"ok\":true"), "{page}");
        let polled = self.app.poll(self.env, &session).await;
        assert_eq!(polled["status"], "completed", "{polled}");
        polled["grants"][0].clone()
    }

    async fn as_agent(&self, key: &str, method: &str, target: &str, body: Value) -> Resp {
        self.env.signed(key, method, target, body).await
    }

    /// The agent calls the provider's API through proxy mode (a delegation is proxy-only).
    async fn proxy_by_provider(&self, key: &str, extra: Value) -> Resp {
        let mut body = json!({"provider_id": PROVIDER, "method": "GET", "url": format!("{}/api/me", self.p.issuer)});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.as_agent(key, "POST", "/sdk/proxy", body).await
    }

    /// A proxied call that reached the provider and was answered 200.
    async fn reaches_api(&self, key: &str, extra: Value) {
        let r = self.proxy_by_provider(key, extra).await;
        assert_eq!(r.ok()["status_code"], 200, "{}", r.body);
    }

    async fn listed(&self, key: &str) -> Vec<Value> {
        self.as_agent(key, "POST", "/sdk/grants/list", json!({}))
            .await
            .ok()["grants"]
            .as_array()
            .unwrap()
            .clone()
    }
}

#[tokio::test]
async fn a_consented_delegation_is_listed_and_used_by_its_agent_only() {
    let s = setup().await;
    let entry = s.connect_for(&s.a.0, json!({"delegable": true})).await;
    let user_grant = entry["grant_id"].as_str().unwrap().to_string();
    assert_eq!(
        entry["delegation"],
        json!({"agent_id": s.a.0, "delegable": true, "policy_refused": false})
    );

    // Agent A lists exactly its delegation; agent B nothing.
    let listed = s.listed(&s.a.1).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let d = &listed[0];
    assert_eq!(
        (
            &d["access_via"],
            &d["parent_grant_id"],
            &d["depth"],
            &d["principal_type"]
        ),
        (
            &json!("oauth_delegation"),
            &json!(user_grant),
            &json!(1),
            &json!("agent")
        )
    );
    assert!(s.listed(&s.b.1).await.is_empty());

    // A calls the API with it in proxy mode (never retrieving the token); B has no delegation.
    s.reaches_api(&s.a.1, json!({})).await;
    let retrieve = json!({"provider_id": PROVIDER, "request": {"method": "GET", "url": format!("{}/api/me", s.p.issuer)}});
    s.as_agent(&s.a.1, "POST", "/sdk/token", retrieve)
        .await
        .expect(400, "delegated_grant_requires_proxy");
    s.proxy_by_provider(&s.b.1, json!({}))
        .await
        .expect(404, "no_delegated_grant");
    // Acting for another user, A has nothing.
    let other = s.p.id_token(json!({"sub": "someone-else"})).await;
    s.proxy_by_provider(&s.a.1, json!({"user_token": other}))
        .await
        .expect(404, "no_delegated_grant");
    s.reaches_api(&s.a.1, json!({"user_token": s.user_token}))
        .await;

    // The user's grant lists its delegated agent.
    let mine = s
        .app
        .sdk(
            s.env,
            "POST",
            "/sdk/grants/list",
            json!({"user_token": s.user_token}),
        )
        .await;
    assert_eq!(
        mine.ok()["grants"][0]["delegated_agent_ids"],
        json!([s.a.0])
    );
}

#[tokio::test]
async fn onward_delegation_only_narrows_and_stops_where_it_must() {
    let s = setup().await;
    let entry = s.connect_for(&s.a.0, json!({"delegable": true})).await;
    let user_grant = entry["grant_id"].as_str().unwrap().to_string();
    let held = s.listed(&s.a.1).await[0]["grant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let delegate = |to: &str, extra: Value| {
        let mut body = json!({ "to_agent_id": to });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let path = format!("/sdk/grants/{held}/delegate");

    // Only the holder, only with its own key, only narrowing.
    s.app
        .sdk(s.env, "POST", &path, delegate(&s.b.0, json!({})))
        .await
        .expect(403, "agent_key_required");
    s.as_agent(&s.b.1, "POST", &path, delegate(&s.a.0, json!({})))
        .await
        .expect(404, "grant_not_found");
    s.as_agent(
        &s.a.1,
        "POST",
        &path,
        delegate(&s.b.0, json!({"scope_constraint": ["admin"]})),
    )
    .await
    .expect(422, "invalid_scope_constraint");
    s.as_agent(
        &s.a.1,
        "POST",
        &path,
        delegate(&uuid::Uuid::new_v4().to_string(), json!({})),
    )
    .await
    .expect(404, "agent_not_found");
    s.as_agent(
        &s.a.1,
        "POST",
        &format!("/sdk/grants/{user_grant}/delegate"),
        delegate(&s.b.0, json!({})),
    )
    .await
    .expect(404, "grant_not_found");

    let r = s
        .as_agent(
            &s.a.1,
            "POST",
            &path,
            delegate(&s.b.0, json!({"ttl_seconds": 600})),
        )
        .await;
    let child = r.ok().clone();
    assert_eq!(
        (
            &child["parent_grant_id"],
            &child["depth"],
            &child["delegable"],
            &child["grant_kind"]
        ),
        (&json!(held), &json!(2), &json!(false), &json!("oauth"))
    );
    let listed = s.listed(&s.b.1).await;
    assert_eq!(listed[0]["grant_id"], child["grant_id"]);
    // An onward delegation works in proxy mode too.
    s.reaches_api(&s.b.1, json!({})).await;
    // B's delegation was made non-delegable: it stops here.
    let onward = format!(
        "/sdk/grants/{}/delegate",
        child["grant_id"].as_str().unwrap()
    );
    let r = s
        .as_agent(&s.b.1, "POST", &onward, delegate(&s.a.0, json!({})))
        .await;
    r.expect(403, "grant_not_delegable");
    assert_eq!(r.body["detail_reason"], "holder_not_delegable");

    // A grant given to an agent directly has no consenting user to delegate for.
    let secret_grant = s
        .app
        .org
        .op(
            s.env,
            "POST",
            &format!(
                "/v1/apps/{}/secrets/{}/grants",
                s.app.app_id, s.app.secret_id
            ),
            json!({"principal": {"type": "agent", "agent_id": s.a.0}}),
        )
        .await;
    let direct = secret_grant.ok()["grant_id"].as_str().unwrap().to_string();
    let r = s
        .as_agent(
            &s.a.1,
            "POST",
            &format!("/sdk/grants/{direct}/delegate"),
            delegate(&s.b.0, json!({})),
        )
        .await;
    r.expect(403, "grant_not_delegable");
    assert_eq!(r.body["detail_reason"], "no_consenting_user");

    // The user revokes their grant: A's delegation ends with it, and B's (two links down)
    // reads as revoked too, since its chain is broken.
    s.app
        .sdk(
            s.env,
            "POST",
            &format!("/sdk/oauth/grants/{user_grant}/revoke"),
            json!({"user_token": s.user_token}),
        )
        .await
        .ok();
    assert_eq!(s.listed(&s.b.1).await[0]["status"], "revoked");
    assert_eq!(
        s.listed(&s.a.1)
            .await
            .iter()
            .filter(|g| g["status"] == "active")
            .count(),
        1,
        "only A's direct secret grant is left active"
    );
}

#[tokio::test]
async fn revoking_a_delegation_or_the_grant_ends_everything_below_it() {
    let s = setup().await;
    let entry = s.connect_for(&s.a.0, json!({"delegable": true})).await;
    let user_grant = entry["grant_id"].as_str().unwrap().to_string();
    let held = s.listed(&s.a.1).await[0]["grant_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.as_agent(
        &s.a.1,
        "POST",
        &format!("/sdk/grants/{held}/delegate"),
        json!({"to_agent_id": s.b.0, "delegable": false}),
    )
    .await
    .ok();

    // The app withdraws A's delegation: A and, through the chain, B lose access; idempotent.
    let withdraw = format!("/sdk/grants/{user_grant}/delegations/{}", s.a.0);
    s.as_agent(&s.a.1, "DELETE", &withdraw, Value::Null)
        .await
        .expect(403, "use_self_revoke_path");
    for _ in 0..2 {
        let r = s.app.sdk(s.env, "DELETE", &withdraw, Value::Null).await;
        assert_eq!(r.status, 204, "{}", r.body);
    }
    s.proxy_by_provider(&s.a.1, json!({}))
        .await
        .expect(404, "no_delegated_grant");
    let b_listed = s.listed(&s.b.1).await;
    assert_eq!(
        b_listed[0]["status"], "revoked",
        "the onward delegation ended too"
    );
    // The user's own grant is untouched.
    let mine = json!({"grant_id": user_grant, "user_token": s.user_token, "request": {"method": "GET", "url": format!("{}/api/me", s.p.issuer)}});
    s.app
        .sdk(s.env, "POST", "/sdk/token", mine.clone())
        .await
        .ok();

    // Consent again, then the agent gives it up itself.
    s.connect_for(&s.a.0, json!({})).await;
    s.reaches_api(&s.a.1, json!({})).await;
    let me = format!("/sdk/grants/{user_grant}/delegations/me");
    s.app
        .sdk(s.env, "DELETE", &me, Value::Null)
        .await
        .expect(403, "agent_key_required");
    for _ in 0..2 {
        let r = s.as_agent(&s.a.1, "DELETE", &me, Value::Null).await;
        assert_eq!(r.status, 204, "{}", r.body);
    }
    s.proxy_by_provider(&s.a.1, json!({}))
        .await
        .expect(404, "no_delegated_grant");

    // Consent once more; revoking the user's grant ends the delegation with it.
    s.connect_for(&s.a.0, json!({})).await;
    s.reaches_api(&s.a.1, json!({})).await;
    s.app
        .sdk(
            s.env,
            "POST",
            &format!("/sdk/oauth/grants/{user_grant}/revoke"),
            json!({"user_token": s.user_token}),
        )
        .await
        .ok();
    s.proxy_by_provider(&s.a.1, json!({}))
        .await
        .expect(404, "no_delegated_grant");
    // Every call is audited, the refused agent's too.
    let audit = s.app.audit(s.env, "action=sdk_delegation_revoke").await;
    let mut codes: Vec<u64> = audit
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, vec![204, 204, 403]);
}

#[tokio::test]
async fn connect_with_an_agent_needs_a_consenting_user_and_a_real_agent() {
    let s = setup().await;
    let create = |body: Value| s.app.sdk(s.env, "POST", "/sdk/oauth/connect/session", body);
    create(json!({"allowed_providers": [PROVIDER], "agent": s.a.0}))
        .await
        .expect(400, "agent_requires_user_token");
    create(json!({"allowed_providers": [PROVIDER], "agent": "nobody", "user_token": s.user_token}))
        .await
        .expect(404, "agent_not_found");
    create(
        json!({"allowed_providers": [PROVIDER], "agent": "agent-a", "user_token": s.user_token}),
    )
    .await
    .ok();
    // A scope constraint outside what the provider grants: the grant is made, the
    // delegation refused and said so.
    let entry = s
        .connect_for(&s.a.0, json!({"scope_constraint": ["admin"]}))
        .await;
    assert_eq!(entry["delegation"]["policy_refused"], true);
    assert!(s.listed(&s.a.1).await.is_empty());
}

#[tokio::test]
async fn an_agent_refreshing_a_delegated_token_refreshes_the_users_grant() {
    let s = setup().await;
    // Tokens that always need a refresh (they expire within the minute a caller is promised),
    // and a provider that rotates refresh tokens.
    s.p.config(json!({"access_ttl": 30})).await;
    let entry = s.connect_for(&s.a.0, json!({})).await;
    let user_grant = entry["grant_id"].as_str().unwrap().to_string();
    s.reaches_api(&s.a.1, json!({})).await;
    assert_eq!(s.p.refresh_count().await, 1);
    // The user's own grant carries on with the rotated refresh token the agent's call stored.
    let mine = json!({"grant_id": user_grant, "user_token": s.user_token, "request": {"method": "GET", "url": format!("{}/api/me", s.p.issuer)}});
    let user_token = s.app.sdk(s.env, "POST", "/sdk/token", mine).await;
    let user_token = user_token.ok()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.p.api(&user_token).await, 200);
    let listed = s
        .app
        .sdk(
            s.env,
            "POST",
            "/sdk/grants/list",
            json!({"user_token": s.user_token}),
        )
        .await;
    assert_eq!(listed.ok()["grants"][0]["needs_reconnect"], false);
}

#[tokio::test]
async fn renewed_consent_or_a_deleted_agent_ends_what_was_passed_on() {
    let s = setup().await;
    let entry = s.connect_for(&s.a.0, json!({"delegable": true})).await;
    let user_grant = entry["grant_id"].as_str().unwrap().to_string();
    let pass_on = || async {
        let held = s.listed(&s.a.1).await[0]["grant_id"]
            .as_str()
            .unwrap()
            .to_string();
        s.as_agent(
            &s.a.1,
            "POST",
            &format!("/sdk/grants/{held}/delegate"),
            json!({"to_agent_id": s.b.0}),
        )
        .await
        .ok()["grant_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let b_status = || async { s.listed(&s.b.1).await[0]["status"].clone() };
    pass_on().await;
    assert_eq!(b_status().await, "active");
    // The user consents again (now without onward sharing): B's delegation ends, and does
    // not come back when A's is withdrawn and granted once more.
    assert_eq!(
        s.connect_for(&s.a.0, json!({})).await["grant_id"],
        json!(user_grant),
        "a reconnect keeps the grant"
    );
    assert_eq!(b_status().await, "revoked");
    let withdraw = format!("/sdk/grants/{user_grant}/delegations/{}", s.a.0);
    s.app.sdk(s.env, "DELETE", &withdraw, Value::Null).await;
    s.connect_for(&s.a.0, json!({"delegable": true})).await;
    assert_eq!(b_status().await, "revoked");

    // B holds a fresh onward delegation and may name the user; then A is deleted.
    pass_on().await;
    let user_id = s
        .app
        .sdk(
            s.env,
            "POST",
            "/sdk/identity/resolve",
            json!({"user_token": s.user_token}),
        )
        .await
        .ok()["app_user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let as_b = |body: Value| s.as_agent(&s.b.1, "POST", "/sdk/identity/resolve", body);
    as_b(json!({ "app_user_id": user_id })).await.ok();
    let deleted = s
        .app
        .sdk(
            s.env,
            "DELETE",
            &format!("/sdk/agents/{}", s.a.0),
            Value::Null,
        )
        .await;
    assert!(deleted.status < 300, "{}", deleted.body);
    let statuses: Vec<Value> = s
        .listed(&s.b.1)
        .await
        .iter()
        .map(|g| g["status"].clone())
        .collect();
    assert!(statuses.iter().all(|st| st == "revoked"), "{statuses:?}");
    as_b(json!({ "app_user_id": user_id }))
        .await
        .expect(404, "app_user_not_found");

    // Agents never run sign-in sessions.
    s.as_agent(&s.b.1, "POST", "/sdk/auth/session", json!({}))
        .await
        .expect(403, "app_key_required");
}
