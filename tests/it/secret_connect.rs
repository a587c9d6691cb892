//! Managed-secret Connect: an end user signs in at the app's identity provider (a real OIDC
//! process) on the hosted page, enters their own key or approves access they hold, and
//! optionally delegates it to an agent. Only the session's user, on the browser that signed
//! in, can complete it; the key is stored sealed and never comes back.

use base64::Engine;
use portcullis_tests::oauth::{Browser, Provider, callback_target};
use portcullis_tests::upstream::Upstream;
use portcullis_tests::*;
use serde_json::{Value, json};

const SIGNIN: &str =
    r#"{"signin": {"client_id": "portcullis-test", "client_secret": "portcullis-test-secret"}}"#;

struct Setup {
    env: &'static Env,
    app: TestApp,
    idp: Provider,
    /// The managed secret's slug.
    slug: String,
    user_token: String,
    /// The API the secret is for (its hosts are loopback).
    up: Upstream,
}

async fn setup() -> Setup {
    let env = env().await;
    let app = app_fixture().await;
    let idp = Provider::start().await;
    let signin: Value = serde_json::from_str(SIGNIN).unwrap();
    app.use_idp(env, &idp, signin).await.ok();
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
    let user_token = idp.id_token(json!({"sub": "user-1"})).await;
    Setup {
        env,
        app,
        idp,
        slug,
        user_token,
        up: Upstream::start().await,
    }
}

impl Setup {
    async fn session(&self, extra: Value) -> Resp {
        let mut body = json!({"provider": self.slug, "user_token": self.user_token});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app
            .sdk(
                self.env,
                "POST",
                "/sdk/managed-secrets/connect/session",
                body,
            )
            .await
    }

    async fn session_token(&self, extra: Value) -> String {
        let r = self.session(extra).await;
        r.ok()["session_token"].as_str().unwrap().to_string()
    }

    /// Signs the browser in at the identity provider; answers where the callback sent it.
    async fn sign_in(&self, browser: &mut Browser, token: &str) -> String {
        let started = browser
            .send(
                self.env,
                "POST",
                "/sdk/managed-secrets/connect/signin",
                json!({"session_token": token}),
            )
            .await;
        assert_eq!(started.status, 200, "{}", started.body);
        let location = self
            .idp
            .authorize(started.json()["authorize_url"].as_str().unwrap())
            .await;
        let back = browser
            .send(self.env, "GET", &callback_target(&location), Value::Null)
            .await;
        assert_eq!(back.status, 303, "{}", back.body);
        back.location.expect("back to the page")
    }

    async fn describe(&self, browser: &mut Browser, token: &str) -> Value {
        let r = browser
            .send(
                self.env,
                "POST",
                "/sdk/managed-secrets/connect/describe",
                json!({"session_token": token}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    async fn confirm(&self, browser: &mut Browser, body: Value) -> (u16, Value) {
        let r = browser
            .send(
                self.env,
                "POST",
                "/sdk/managed-secrets/connect/confirm",
                body,
            )
            .await;
        (r.status, r.json())
    }

    async fn token(&self, key: &str, body: Value) -> Resp {
        let mut b = json!({"request": {"method": "GET", "url": "https://127.0.0.1/x"}});
        for (k, v) in body.as_object().unwrap() {
            b[k] = v.clone();
        }
        self.env.signed(key, "POST", "/sdk/token", b).await
    }

    /// A proxied call (as an agent's delegation requires): the credential the API received.
    async fn proxied(&self, key: &str, body: Value) -> Resp {
        let mut b = json!({"method": "GET", "url": format!("{}/x", self.up.url)});
        for (k, v) in body.as_object().unwrap() {
            b[k] = v.clone();
        }
        self.env.signed(key, "POST", "/sdk/proxy", b).await
    }

    async fn sent_credential(&self, key: &str, body: Value) -> String {
        let r = self.proxied(key, body).await;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(r.ok()["body_b64"].as_str().unwrap())
            .unwrap();
        let seen: Value = serde_json::from_slice(&raw).unwrap();
        seen["headers"]["authorization"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn agent(&self, name: &str, slugs: &[&str]) -> (String, String) {
        let scopes = if slugs.is_empty() {
            json!({})
        } else {
            json!({"managed_secret_slugs": slugs})
        };
        let body = json!({"name": name, "type": "agent", "scopes": scopes, "metadata": {}});
        let r = self.app.sdk(self.env, "POST", "/sdk/agents", body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        (
            r.body["id"].as_str().unwrap().to_string(),
            r.body["api_key"].as_str().unwrap().to_string(),
        )
    }
}

#[tokio::test]
async fn a_user_enters_their_own_key_and_the_app_uses_it_without_ever_seeing_it_again() {
    let s = setup().await;
    let created = s
        .session(json!({"requested_grant": {"label": "mine"}}))
        .await;
    let c = created.ok();
    assert_eq!(c["path"], "key_entry");
    assert_eq!(c["existing_grant_id"], Value::Null);
    assert_eq!(c["secret_slug"], json!(s.slug));
    assert_eq!(c["template_slug"], "bearer");
    assert_eq!(
        (&c["delegable_requested"], &c["direct"], &c["agent_id"]),
        (&json!(false), &json!(false), &Value::Null)
    );
    let token = c["session_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ms_sess_"));
    assert!(
        c["connect_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/sdk/managed-secrets/connect#session={token}"))
    );

    // Nothing is shown, and nothing can be confirmed, before the user signs in.
    let mut browser = Browser::default();
    let before = s.describe(&mut browser, &token).await;
    assert_eq!(before["signed_in"], false);
    assert!(before.get("secret").is_none(), "{before}");
    let key = json!({"token": "users-own-key-123"});
    let (status, body) = s
        .confirm(&mut browser, json!({"session_token": token, "key": key}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("signin_required"))
    );

    let back = s.sign_in(&mut browser, &token).await;
    assert!(
        back.ends_with("/sdk/managed-secrets/connect#signin=ok"),
        "{back}"
    );
    assert!(browser.has_cookie("pcms_"));
    let after = s.describe(&mut browser, &token).await;
    assert_eq!(after["signed_in"], true);
    assert_eq!(after["path"], "key_entry");
    assert_eq!(after["secret"]["fields"][0]["name"], "token");
    // Another browser holding the same link is not signed in.
    let mut elsewhere = Browser::default();
    assert_eq!(s.describe(&mut elsewhere, &token).await["signed_in"], false);
    let (status, _) = s
        .confirm(&mut elsewhere, json!({"session_token": token, "key": key}))
        .await;
    assert_eq!(status, 403);

    // A key that does not fit the template is refused, and nothing is stored.
    let (status, body) = s
        .confirm(
            &mut browser,
            json!({"session_token": token, "key": {"api_key": "x"}}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("validation_error"))
    );

    let (status, done) = s
        .confirm(&mut browser, json!({"session_token": token, "key": key}))
        .await;
    assert_eq!(status, 200, "{done}");
    let entry = &done["grants"][0];
    assert_eq!(
        (&entry["operation"], &entry["credential_kind"]),
        (&json!("creation"), &json!("end_user"))
    );
    let grant_id = entry["grant_id"].as_str().unwrap().to_string();
    let (status, again) = s
        .confirm(&mut browser, json!({"session_token": token, "key": key}))
        .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (409, Some("connect_session_used"))
    );

    // The app uses the user's key through the user's token; the developer's value is not it.
    let used = s
        .token(
            &s.app.key,
            json!({"provider_id": s.slug, "user_token": s.user_token}),
        )
        .await;
    let used = used.ok();
    assert_eq!(used["access_token"], "users-own-key-123");
    assert_eq!(used["grant_id"], json!(grant_id));
    let by_id = s
        .token(
            &s.app.key,
            json!({"grant_id": grant_id, "user_token": s.user_token}),
        )
        .await;
    assert_eq!(by_id.ok()["access_token"], "users-own-key-123");
    let listed = s
        .app
        .sdk(
            s.env,
            "POST",
            "/sdk/grants/list",
            json!({"user_token": s.user_token}),
        )
        .await;
    let mine = &listed.ok()["grants"][0];
    assert_eq!(
        (
            &mine["credential_kind"],
            &mine["credential_label"],
            &mine["label"]
        ),
        (&json!("end_user"), &json!("mine"), &json!("mine"))
    );
    // The key is in no audit row, and no answer but the token call carries it.
    let rows = s.app.org.audit(s.env, &s.app.app_id, "").await;
    assert!(
        rows.iter()
            .any(|r| r["action"] == "web_secret_connect_confirm")
    );
    assert!(
        !serde_json::to_string(&rows)
            .unwrap()
            .contains("users-own-key-123")
    );
    assert!(!listed.body.to_string().contains("users-own-key-123"));

    // Revoking the grant erases the key.
    s.app
        .sdk(
            s.env,
            "POST",
            &format!("/sdk/oauth/grants/{grant_id}/revoke"),
            json!({"user_token": s.user_token}),
        )
        .await
        .ok();
    let stored = s
        .env
        .ctx
        .store
        .get(
            &portcullis::store::keys::grant_tokens(
                s.app.app_id.parse().unwrap(),
                grant_id.parse().unwrap(),
            ),
            true,
        )
        .await
        .unwrap();
    assert!(stored.is_none(), "the user's key outlived its grant");
}

#[tokio::test]
async fn only_the_sessions_user_on_the_browser_that_signed_in_can_approve() {
    let s = setup().await;
    let token = s.session_token(json!({})).await;
    let mut browser = Browser::default();
    // Someone else signs in: the page says so and the session stays pending.
    s.idp.config(json!({"subject": "mallory"})).await;
    let back = s.sign_in(&mut browser, &token).await;
    assert!(back.ends_with("#signin=wrong_user"), "{back}");
    assert_eq!(s.describe(&mut browser, &token).await["signed_in"], false);
    s.idp.config(json!({"subject": "user-1"})).await;

    // The sign-in must come back to the browser that started it.
    let started = browser
        .send(
            s.env,
            "POST",
            "/sdk/managed-secrets/connect/signin",
            json!({"session_token": token}),
        )
        .await;
    let location = s
        .idp
        .authorize(started.json()["authorize_url"].as_str().unwrap())
        .await;
    let mut other = Browser::default();
    let back = other
        .send(s.env, "GET", &callback_target(&location), Value::Null)
        .await;
    assert!(
        back.location
            .as_deref()
            .unwrap()
            .ends_with("#signin=other_browser"),
        "{:?}",
        back.location
    );
    // That attempt is spent; a replay finds nothing to finish.
    let replay = browser
        .send(s.env, "GET", &callback_target(&location), Value::Null)
        .await;
    assert_eq!(replay.status, 200);
    assert!(replay.body.contains("expired or was already used"));

    // The right user on the right browser can; a cancel after the end changes nothing.
    assert!(
        s.sign_in(&mut browser, &token)
            .await
            .ends_with("#signin=ok")
    );
    let (status, _) = s
        .confirm(
            &mut browser,
            json!({"session_token": token, "key": {"token": "k-1"}}),
        )
        .await;
    assert_eq!(status, 200);
    let cancelled = browser
        .send(
            s.env,
            "POST",
            "/sdk/managed-secrets/connect/cancel",
            json!({"session_token": token}),
        )
        .await;
    assert_eq!(cancelled.status, 409);

    // A cancelled session is over.
    let token = s.session_token(json!({})).await;
    let cancelled = browser
        .send(
            s.env,
            "POST",
            "/sdk/managed-secrets/connect/cancel",
            json!({"session_token": token}),
        )
        .await;
    assert_eq!(cancelled.status, 200);
    let d = s.describe(&mut browser, &token).await;
    assert_eq!(
        (&d["status"], &d["error"]["error_code"]),
        (&json!("error"), &json!("connect_denied"))
    );
}

#[tokio::test]
async fn an_agent_is_delegated_the_users_key_and_loses_it_when_the_user_takes_it_back() {
    let s = setup().await;
    let (agent_id, agent_key) = s.agent("mail-bot", &[&s.slug]).await;
    let created = s
        .session(json!({"agent": "mail-bot", "delegable": true, "requested_ttl_seconds": 3600}))
        .await;
    let c = created.ok();
    assert_eq!(
        (
            &c["path"],
            &c["agent_id"],
            &c["delegable_requested"],
            &c["direct"]
        ),
        (
            &json!("key_entry"),
            &json!(agent_id),
            &json!(true),
            &json!(false)
        )
    );
    let token = c["session_token"].as_str().unwrap().to_string();
    let mut browser = Browser::default();
    s.sign_in(&mut browser, &token).await;
    let d = s.describe(&mut browser, &token).await;
    assert_eq!(d["agent"]["name"], "mail-bot");
    assert_eq!(d["delegable"], json!({"offered": true, "default": true}));
    assert_eq!(d["lifetime"]["default_seconds"], 3600);
    // The lifetime is the user's to pick, within the bounds.
    let (status, _) = s
        .confirm(&mut browser, json!({"session_token": token, "key": {"token": "k-agent"}, "ttl_seconds": 91 * 86_400}))
        .await;
    assert_eq!(status, 422);
    let (status, done) = s
        .confirm(
            &mut browser,
            json!({"session_token": token, "key": {"token": "k-agent"}, "delegable": false}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let entry = &done["grants"][0];
    assert_eq!(
        (&entry["agent_id"], &entry["updated"], &entry["delegable"]),
        (&json!(agent_id), &json!(false), &json!(false))
    );
    let user_grant = entry["grant_id"].as_str().unwrap().to_string();
    let delegation = entry["delegation_id"].as_str().unwrap().to_string();

    // The agent uses the user's key through its delegation, and lists it.
    assert_eq!(
        s.sent_credential(&agent_key, json!({"grant_id": delegation}))
            .await,
        "Bearer k-agent"
    );
    assert_eq!(
        s.sent_credential(&agent_key, json!({"provider_id": s.slug}))
            .await,
        "Bearer k-agent"
    );
    // The agent never holds the key itself.
    s.token(&agent_key, json!({"grant_id": delegation}))
        .await
        .expect(400, "delegated_grant_requires_proxy");
    let listed = s
        .env
        .signed(&agent_key, "POST", "/sdk/grants/list", json!({}))
        .await;
    let g = &listed.ok()["grants"][0];
    assert_eq!(
        (&g["access_via"], &g["credential_kind"]),
        (&json!("ms_delegation"), &json!("end_user"))
    );
    assert!(
        g["grant_expires_at"].is_string(),
        "the delegation has its lifetime"
    );

    // Asking again finds the user's grant: a one-click approval that renews the delegation.
    let again = s
        .session(json!({"agent": agent_id, "delegable": true}))
        .await;
    let again = again.ok();
    assert_eq!(
        (&again["path"], &again["existing_grant_id"]),
        (&json!("fast_path"), &json!(user_grant))
    );
    let token = again["session_token"].as_str().unwrap().to_string();
    s.sign_in(&mut browser, &token).await;
    let d = s.describe(&mut browser, &token).await;
    assert_eq!(d["path"], "fast_path");
    assert_eq!(
        d["delegable"]["default"], false,
        "starts from the stored delegation"
    );
    assert!(d["secret"]["fields"].is_array());
    let (status, done) = s
        .confirm(
            &mut browser,
            json!({"session_token": token, "delegable": true}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (
            &done["grants"][0]["updated"],
            &done["grants"][0]["delegable"],
            &done["grants"][0]["delegation_id"]
        ),
        (&json!(true), &json!(true), &json!(delegation))
    );

    // The user takes it back: the agent's delegation ends, the user's grant stays.
    let r = s
        .app
        .sdk(
            s.env,
            "DELETE",
            &format!("/sdk/grants/{user_grant}/delegations/{agent_id}"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    s.proxied(&agent_key, json!({"grant_id": delegation}))
        .await
        .expect(404, "no_delegated_grant");
    let mine = s
        .token(
            &s.app.key,
            json!({"grant_id": user_grant, "user_token": s.user_token}),
        )
        .await;
    assert_eq!(mine.ok()["access_token"], "k-agent");

    // An agent that may not use this secret cannot be delegated it.
    s.agent("other-bot", &[]).await;
    let refused = s.session(json!({"agent": "other-bot"})).await;
    refused.expect(409, "no_eligible_grants");
    assert_eq!(refused.body["details"]["reason"], "agent_not_allowlisted");
}

#[tokio::test]
async fn an_agents_own_key_asks_for_itself_and_learns_nothing_of_what_the_user_holds() {
    let s = setup().await;
    let (agent_id, agent_key) = s.agent("own-bot", &[&s.slug]).await;
    let (other_id, _) = s.agent("someone-else", &[&s.slug]).await;
    let ask = |extra: Value| {
        let mut body = json!({"provider": s.slug, "user_token": s.user_token});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        s.env.signed(
            &agent_key,
            "POST",
            "/sdk/managed-secrets/connect/session",
            body,
        )
    };
    ask(json!({"agent": other_id}))
        .await
        .expect(400, "agent_cannot_delegate_to_other_agent");
    let r = ask(json!({"delegable": true})).await;
    let r = r.ok();
    assert_eq!(
        (&r["path"], &r["existing_grant_id"], &r["agent_id"]),
        (&Value::Null, &Value::Null, &json!(agent_id))
    );
    let token = r["session_token"].as_str().unwrap().to_string();
    let mut browser = Browser::default();
    s.sign_in(&mut browser, &token).await;
    let d = s.describe(&mut browser, &token).await;
    assert_eq!(
        (&d["requested_by"], &d["delegable"]["default"]),
        (&json!("agent"), &json!(false)),
        "onward sharing is opted into by the user"
    );
    let (status, done) = s
        .confirm(
            &mut browser,
            json!({"session_token": token, "key": {"token": "k-own"}}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["grants"][0]["delegable"], false);
    assert_eq!(
        s.sent_credential(&agent_key, json!({"provider_id": s.slug}))
            .await,
        "Bearer k-own"
    );
    // Agent keys still cannot run OAuth Connect or sign-in sessions.
    s.env
        .signed(&agent_key, "POST", "/sdk/oauth/connect/session", json!({}))
        .await
        .expect(403, "app_key_required");
}

#[tokio::test]
async fn a_repair_replaces_the_users_key_in_place() {
    let s = setup().await;
    let token = s.session_token(json!({})).await;
    let mut browser = Browser::default();
    s.sign_in(&mut browser, &token).await;
    let (_, done) = s
        .confirm(
            &mut browser,
            json!({"session_token": token, "key": {"token": "old-key"}}),
        )
        .await;
    let grant_id = done["grants"][0]["grant_id"].as_str().unwrap().to_string();
    let before = s
        .token(
            &s.app.key,
            json!({"grant_id": grant_id, "user_token": s.user_token}),
        )
        .await;
    let generation = before.ok()["token_generation"].clone();

    // Not with an agent; not another user's grant (missing, like any unknown grant).
    s.session(json!({"repair_grant_id": grant_id, "agent": "x"}))
        .await
        .expect(422, "validation_error");
    let other = s.idp.id_token(json!({"sub": "user-2"})).await;
    let foreign = s
        .app
        .sdk(
            s.env,
            "POST",
            "/sdk/managed-secrets/connect/session",
            json!({"provider": s.slug, "user_token": other, "repair_grant_id": grant_id}),
        )
        .await;
    let unknown = s
        .session(json!({"repair_grant_id": uuid::Uuid::new_v4().to_string()}))
        .await;
    foreign.expect(404, "grant_not_found");
    assert_eq!(foreign.body, unknown.body);

    let r = s.session(json!({"repair_grant_id": grant_id})).await;
    let r = r.ok();
    assert_eq!(
        (&r["path"], &r["existing_grant_id"], &r["direct"]),
        (&json!("repair"), &json!(grant_id), &json!(true))
    );
    let token = r["session_token"].as_str().unwrap().to_string();
    s.sign_in(&mut browser, &token).await;
    let (status, done) = s
        .confirm(
            &mut browser,
            json!({"session_token": token, "key": {"token": "new-key"}}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["grants"][0]["grant_id"], json!(grant_id));
    assert_eq!(done["grants"][0]["operation"], "repair");
    let after = s
        .token(
            &s.app.key,
            json!({"grant_id": grant_id, "user_token": s.user_token}),
        )
        .await;
    let after = after.ok();
    assert_eq!(after["access_token"], "new-key");
    assert_ne!(after["token_generation"], generation);
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_documented_codes() {
    let s = setup().await;
    let post = |body: Value| {
        s.app
            .sdk(s.env, "POST", "/sdk/managed-secrets/connect/session", body)
    };
    post(json!({"provider": s.slug}))
        .await
        .expect(422, "validation_error");
    post(json!({"user_token": s.user_token}))
        .await
        .expect(422, "validation_error");
    post(json!({"provider": "Not A Slug", "user_token": s.user_token}))
        .await
        .expect(422, "validation_error");
    post(json!({"provider": "no-such-secret", "user_token": s.user_token}))
        .await
        .expect(404, "secret_not_found");
    post(json!({"provider": s.slug, "template_slug": "basic", "user_token": s.user_token}))
        .await
        .expect(422, "secret_template_mismatch");
    post(json!({"provider": s.slug, "user_token": "not-a-jwt"}))
        .await
        .expect(401, "jwt_validation_error");
    post(json!({"provider": s.slug, "user_token": s.user_token, "agent": "nobody"}))
        .await
        .expect(404, "agent_not_found");
    post(json!({"provider": s.slug, "user_token": s.user_token, "grant_policy": {"max_ttl_seconds": 3600}, "requested_ttl_seconds": 60}))
        .await
        .expect(422, "validation_error");
    post(json!({"provider": s.slug, "user_token": s.user_token, "surprise": 1}))
        .await
        .expect(422, "validation_error");
    // The deprecated template form finds the app's one secret of that template.
    let r = post(json!({"template_slug": "BEARER", "user_token": s.user_token})).await;
    assert_eq!(r.ok()["secret_slug"], json!(s.slug));
    post(json!({"template_slug": "basic", "user_token": s.user_token}))
        .await
        .expect(409, "no_eligible_grants");
    // Without the identity provider's sign-in client no one could approve.
    let bare = app_fixture().await;
    bare.use_idp(s.env, &s.idp, json!({})).await.ok();
    let r = bare
        .sdk(
            s.env,
            "POST",
            "/sdk/managed-secrets/connect/session",
            json!({"provider": "anything", "user_token": s.idp.id_token(json!({"sub": "u"})).await}),
        )
        .await;
    r.expect(409, "idp_signin_not_configured");
    // A page request with a made-up or foreign session token finds nothing.
    let mut browser = Browser::default();
    for token in [
        "ms_sess_nope",
        &format!(
            "ms_sess_{}_{}",
            uuid::Uuid::new_v4().simple(),
            "a".repeat(43)
        ),
    ] {
        let r = browser
            .send(
                s.env,
                "POST",
                "/sdk/managed-secrets/connect/describe",
                json!({"session_token": token}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
    }
}

/// The grant's stored item, read from the table.
async fn stored(s: &Setup, key: portcullis::store::ItemKey) -> Option<portcullis::store::Item> {
    s.env.ctx.store.get(&key, true).await.unwrap()
}

fn ids(s: &Setup, grant: &str) -> (uuid::Uuid, uuid::Uuid) {
    (s.app.app_id.parse().unwrap(), grant.parse().unwrap())
}

/// Signs in and confirms a new key on a fresh session; answers the confirmation.
async fn enter_key(s: &Setup, browser: &mut Browser, extra: Value, key: &str) -> (u16, Value) {
    let token = s.session_token(extra).await;
    s.sign_in(browser, &token).await;
    s.confirm(
        browser,
        json!({"session_token": token, "key": {"token": key}}),
    )
    .await
}

#[tokio::test]
async fn a_deleted_secret_takes_the_users_keys_with_it() {
    let s = setup().await;
    let mut browser = Browser::default();
    let (_, done) = enter_key(&s, &mut browser, json!({}), "k-gone").await;
    let grant = done["grants"][0]["grant_id"].as_str().unwrap().to_string();
    let (app, g) = ids(&s, &grant);
    assert!(
        stored(&s, portcullis::store::keys::grant_tokens(app, g))
            .await
            .is_some()
    );
    s.app
        .org
        .op(
            s.env,
            "DELETE",
            &format!("/v1/apps/{}/secrets/{}", s.app.app_id, s.app.secret_id),
            Value::Null,
        )
        .await
        .ok();
    assert!(
        stored(&s, portcullis::store::keys::grant_tokens(app, g))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn an_agents_own_key_cannot_probe_what_the_user_holds() {
    let s = setup().await;
    let (_, agent_key) = s.agent("probe-bot", &[&s.slug]).await;
    let ask = |body: Value| {
        s.env.signed(
            &agent_key,
            "POST",
            "/sdk/managed-secrets/connect/session",
            body,
        )
    };
    let mut browser = Browser::default();
    let (_, done) = enter_key(&s, &mut browser, json!({}), "k-probe").await;
    let mine = done["grants"][0]["grant_id"].as_str().unwrap().to_string();
    // Naming the user's key or a made-up one: the same refusal.
    for id in [mine.clone(), uuid::Uuid::new_v4().to_string()] {
        ask(json!({"provider": s.slug, "user_token": s.user_token, "repair_grant_id": id}))
            .await
            .expect(422, "validation_error");
    }
    // `direct` says what was asked, not which path the user's holdings chose.
    let r = ask(json!({"provider": s.slug, "user_token": s.user_token})).await;
    assert_eq!(
        (&r.ok()["direct"], &r.ok()["path"]),
        (&json!(false), &Value::Null)
    );
    // With two secrets of one template, the template form cannot tell which one the user holds.
    s.app
        .org
        .secret(s.env, &s.app.app_id, "bearer", json!({"token": "t-second"}))
        .await;
    let by_template = json!({"template_slug": "bearer", "user_token": s.user_token});
    ask(by_template.clone())
        .await
        .expect(409, "no_eligible_grants");
    let app_view = s
        .app
        .sdk(
            s.env,
            "POST",
            "/sdk/managed-secrets/connect/session",
            by_template,
        )
        .await;
    assert_eq!(
        app_view.ok()["existing_grant_id"],
        json!(mine),
        "the app may know"
    );
}

#[tokio::test]
async fn one_own_key_per_user_and_secret_even_when_two_confirmations_race() {
    let s = setup().await;
    let (mut one, mut two) = (Browser::default(), Browser::default());
    let (a, b) = (
        s.session_token(json!({})).await,
        s.session_token(json!({})).await,
    );
    s.sign_in(&mut one, &a).await;
    s.sign_in(&mut two, &b).await;
    let (ra, rb) = tokio::join!(
        s.confirm(
            &mut one,
            json!({"session_token": a, "key": {"token": "k-a"}})
        ),
        s.confirm(
            &mut two,
            json!({"session_token": b, "key": {"token": "k-b"}})
        ),
    );
    let mut statuses = [ra.0, rb.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{ra:?} {rb:?}");
    let used = s
        .token(
            &s.app.key,
            json!({"provider_id": s.slug, "user_token": s.user_token}),
        )
        .await;
    assert!(["k-a", "k-b"].contains(&used.ok()["access_token"].as_str().unwrap()));
}

#[tokio::test]
async fn a_repair_keeps_its_lifetime_and_an_agents_request_still_delegates() {
    let s = setup().await;
    let mut browser = Browser::default();
    let policy = json!({"grant_policy": {"max_ttl_seconds": 7200, "default_ttl_seconds": 3600}});
    let (_, done) = enter_key(&s, &mut browser, policy.clone(), "k-1").await;
    let grant = done["grants"][0]["grant_id"].as_str().unwrap().to_string();
    let listed = || async {
        let r = s
            .app
            .sdk(
                s.env,
                "POST",
                "/sdk/grants/list",
                json!({"user_token": s.user_token}),
            )
            .await;
        r.ok()["grants"][0].clone()
    };
    assert!(listed().await["grant_expires_at"].is_string());
    // A lifetime outside the bounds is refused, however large.
    let mut extra = policy.clone();
    extra["repair_grant_id"] = json!(grant);
    let token = s.session_token(extra.clone()).await;
    s.sign_in(&mut browser, &token).await;
    let (status, _) = s
        .confirm(&mut browser, json!({"session_token": token, "key": {"token": "k-2"}, "ttl_seconds": 1_000_000_000_000i64}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = s
        .confirm(
            &mut browser,
            json!({"session_token": token, "key": {"token": "k-2"}}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        listed().await["grant_expires_at"].is_string(),
        "the repair kept a lifetime"
    );

    // The key expires; an agent's request then repairs it and delegates.
    let (app, g) = ids(&s, &grant);
    let past =
        portcullis::model::rfc3339(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
    s.env
        .ctx
        .store
        .transact(vec![portcullis::store::Write::Update {
            key: portcullis::store::keys::grant(app, g),
            update: "SET expires_at = :p".into(),
            condition: None,
            names: vec![],
            values: vec![(
                ":p".into(),
                aws_sdk_dynamodb::types::AttributeValue::S(past),
            )],
        }])
        .await
        .unwrap();
    let (agent_id, agent_key) = s.agent("fix-bot", &[&s.slug]).await;
    let r = s.session(json!({"agent": agent_id})).await;
    assert_eq!(r.ok()["path"], "repair");
    let token = r.ok()["session_token"].as_str().unwrap().to_string();
    s.sign_in(&mut browser, &token).await;
    let (status, done) = s
        .confirm(
            &mut browser,
            json!({"session_token": token, "key": {"token": "k-3"}}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let delegation = done["grants"][0]["delegation_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(listed().await["status"], "active");
    assert_eq!(
        s.sent_credential(&agent_key, json!({"grant_id": delegation}))
            .await,
        "Bearer k-3"
    );
}
