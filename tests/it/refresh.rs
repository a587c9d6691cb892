//! Token refresh against a real OAuth server: every case of `../shared/cases/oauth-refresh.md`
//! (R1–R14), and the single flight across concurrent callers.
//!
//! A grant whose access token lives 30 s is inside the one-minute margin from the start, so
//! every token call on it refreshes first: no test waits for a token to expire.

use portcullis_tests::oauth::{PROVIDER, Provider};
use portcullis_tests::*;
use serde_json::{Value, json};

struct Case {
    env: &'static Env,
    app: TestApp,
    p: Provider,
    grant: String,
    url: String,
}

impl Case {
    async fn token(&self) -> Resp {
        self.app.token(self.env, &self.grant, &self.url).await
    }

    async fn listed(&self) -> Value {
        let list = self
            .app
            .sdk(self.env, "POST", "/sdk/grants/list", json!({}))
            .await;
        list.ok()["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["grant_id"] == self.grant.as_str())
            .unwrap()
            .clone()
    }

    /// The refresh requests the provider received, oldest first.
    async fn refreshes(&self) -> Vec<Value> {
        self.p.log().await["token_requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["grant_type"] == "refresh_token")
            .cloned()
            .collect()
    }
}

/// A connected grant; `provider` and `tweak` shape the provider before the connect.
async fn case(provider: Value, tweak: Value) -> Case {
    let env = env().await;
    let app = app_fixture().await;
    let p = Provider::start().await;
    app.use_provider(env, &p, &["read"], tweak).await.ok();
    p.config(provider).await;
    let grant = app.connect(env, &p).await;
    let url = format!("{}/api/me", p.issuer);
    Case {
        env,
        app,
        p,
        grant,
        url,
    }
}

fn short_lived() -> Value {
    json!({"access_ttl": 30})
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_first_and_works() {
    let c = case(short_lived(), json!({})).await;
    let t = c.token().await;
    let token = t.ok()["access_token"].as_str().unwrap().to_string();
    assert_eq!(c.p.refresh_count().await, 1);
    assert_eq!(c.p.api(&token).await, 200);
    // A token with time to spare is handed out as it is.
    c.p.config(json!({"access_ttl": 3600})).await;
    let fresh = c.token().await.ok()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(c.p.refresh_count().await, 2);
    assert_eq!(c.token().await.ok()["access_token"], fresh.as_str());
    assert_eq!(
        c.p.refresh_count().await,
        2,
        "no refresh while the token has time left"
    );
}

#[tokio::test]
async fn r1_a_refresh_without_a_refresh_token_keeps_the_old_one() {
    let c = case(short_lived(), json!({})).await;
    c.p.config(json!({"refresh_script": [{"omit_refresh_token": true}]}))
        .await;
    c.token().await.ok();
    c.token().await.ok();
    let r = c.refreshes().await;
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0]["fields"]["refresh_token"], r[1]["fields"]["refresh_token"],
        "the kept refresh token is used next time"
    );
}

#[tokio::test]
async fn r2_an_expired_token_without_refresh_token_asks_to_reconnect() {
    let c = case(
        json!({"issue_refresh_token": false, "access_ttl": 30}),
        json!({}),
    )
    .await;
    c.token().await.expect(403, "grant_expired");
    assert_eq!(c.listed().await["needs_reconnect"], true);
    c.token().await.expect(403, "grant_expired");
    assert_eq!(c.p.refresh_count().await, 0);
}

#[tokio::test]
async fn r3_fifty_concurrent_callers_make_one_refresh() {
    let c = case(short_lived(), json!({})).await;
    let before = c.refreshes().await.len();
    assert_eq!(before, 0);
    let calls: Vec<_> = (0..50).map(|_| c.token()).collect();
    let answers = join_all(calls).await;
    let tokens: std::collections::HashSet<String> = answers
        .iter()
        .map(|r| r.ok()["access_token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        c.p.refresh_count().await,
        1,
        "exactly one refresh reached the provider"
    );
    assert_eq!(tokens.len(), 1, "every caller got the refreshed token");
    let token = tokens.into_iter().next().unwrap();
    assert_eq!(c.p.api(&token).await, 200);
    assert_eq!(c.listed().await["status"], "active");
    // The rotated refresh token was stored: the next refresh uses it and succeeds.
    c.token().await.ok();
    let r = c.refreshes().await;
    assert_eq!(r.len(), 2);
    assert_ne!(
        r[0]["fields"]["refresh_token"],
        r[1]["fields"]["refresh_token"]
    );
}

#[tokio::test]
async fn r4_waiters_use_a_slow_refresh_and_give_up_in_time() {
    let c = case(short_lived(), json!({})).await;
    // Slow, but well inside a waiter's 7 s (the shared local endpoint is busy during the suite).
    c.p.config(json!({"token_delay_ms": 1500})).await;
    let answers = join_all((0..5).map(|_| c.token()).collect()).await;
    for a in &answers {
        a.ok();
    }
    assert_eq!(
        c.p.refresh_count().await,
        1,
        "waiters did not refresh again"
    );

    // A refresh slower than a caller will wait: the others answer 409, never a stale token.
    // Longer than a waiter waits (7 s), shorter than the provider timeout (10 s).
    c.p.config(json!({"token_delay_ms": 9000})).await;
    let answers = join_all((0..3).map(|_| c.token()).collect()).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let busy = answers
        .iter()
        .filter(|a| a.status == 409 && a.code() == "token_refresh_in_progress")
        .count();
    assert_eq!((ok, busy), (1, 2), "{answers:?}");
    assert_eq!(c.p.refresh_count().await, 2);
}

#[tokio::test]
async fn r5_a_provider_500_leaves_the_grant_and_answers_retry_info() {
    let c = case(short_lived(), json!({})).await;
    c.p.config(json!({"refresh_script": [{"status": 500}]}))
        .await;
    let r = c.token().await;
    r.expect(502, "token_refresh_failed");
    assert_eq!(r.body["retry_info"]["total_attempts"], 1);
    assert_eq!(r.body["retry_info"]["errors"][0]["error_type"], "http_5xx");
    assert_eq!(r.body["retry_info"]["errors"][0]["permanent"], false);
    assert_eq!(c.listed().await["status"], "active");
    assert_eq!(c.listed().await["needs_reconnect"], false);
    // The next call refreshes again, with the same refresh token.
    c.token().await.ok();
    let r = c.refreshes().await;
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0]["fields"]["refresh_token"],
        r[1]["fields"]["refresh_token"]
    );
}

#[tokio::test]
async fn r6_no_expires_in_uses_the_default_ttl_or_waits_for_a_401() {
    // With a catalogue default TTL.
    let c = case(
        json!({"access_ttl": 30}),
        json!({"refresh": {"refresh_tokens": true, "rotates": true, "default_ttl_seconds": 7200}}),
    )
    .await;
    c.p.config(json!({"refresh_script": [{"omit_expires_in": true}]}))
        .await;
    let t = c.token().await;
    let left = t.ok()["expires_in"].as_i64().unwrap();
    assert!((7100..=7200).contains(&left), "{left}");

    // Without one: the token counts as non-expiring, until the provider refuses it.
    let c = case(json!({"access_ttl": 30}), json!({})).await;
    c.p.config(json!({"refresh_script": [{"omit_expires_in": true}]}))
        .await;
    let t = c.token().await;
    assert!(t.ok()["expires_in"].is_null() && t.body["expires_at"].is_null());
    let generation = t.body["token_generation"].as_str().unwrap().to_string();
    c.token().await.ok();
    assert_eq!(
        c.p.refresh_count().await,
        1,
        "a token without end is not refreshed"
    );
    // The SDK reports the provider's 401 for this token: the next call refreshes.
    let report = json!({"grant_id": c.grant, "provider_id": PROVIDER, "token_generation": generation,
        "method": "GET", "url": c.url, "response_status": 401});
    let r = c
        .app
        .sdk(c.env, "POST", "/sdk/oauth/audit/api-call", report)
        .await;
    assert_eq!(r.status, 204);
    let after = c.token().await;
    assert_ne!(after.ok()["token_generation"], generation.as_str());
    assert_eq!(c.p.refresh_count().await, 2);
}

#[tokio::test]
async fn r7_expires_in_as_a_string_is_parsed() {
    let c = case(short_lived(), json!({})).await;
    c.p.config(json!({"access_ttl": 3600, "refresh_script": [{"expires_in_string": true}]}))
        .await;
    let left = c.token().await.ok()["expires_in"].as_i64().unwrap();
    assert!((3500..=3600).contains(&left), "{left}");
}

#[tokio::test]
async fn r8_comma_separated_scopes() {
    let env = env().await;
    let app = app_fixture().await;
    let p = Provider::start().await;
    app.use_provider(env, &p, &["read", "write"], json!({"scope_separator": ","}))
        .await
        .ok();
    p.config(json!({"scope_separator": ","})).await;
    let session = app.connect_session(env, json!({})).await;
    let url = portcullis_tests::oauth::authorize_url(env, &session).await;
    let q: std::collections::HashMap<_, _> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["scope"], "read,write");
    let location = p.authorize(&url).await;
    portcullis_tests::oauth::web(
        env,
        "GET",
        &portcullis_tests::oauth::callback_target(&location),
        Value::Null,
    )
    .await;
    let polled = app.poll(env, &session).await;
    assert_eq!(polled["grants"][0]["scopes"], json!(["read", "write"]));
}

#[tokio::test]
async fn r9_a_refresh_request_carries_only_what_it_needs() {
    let c = case(short_lived(), json!({})).await;
    c.token().await.ok();
    let r = &c.refreshes().await[0];
    let mut fields: Vec<&str> = r["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(fields, ["grant_type", "refresh_token"]);
    assert_eq!(
        r["auth"], "basic",
        "client credentials by HTTP Basic, as configured"
    );
    // With client_secret_post the credentials join the form, and nothing else does.
    let c = case(short_lived(), json!({"token_auth": "client_secret_post"})).await;
    c.token().await.ok();
    let r = &c.refreshes().await[0];
    let mut fields: Vec<&str> = r["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["client_id", "client_secret", "grant_type", "refresh_token"]
    );
}

#[tokio::test]
async fn r10_an_empty_or_null_token_answer_changes_nothing() {
    for body in [json!({}), json!({"access_token": null})] {
        let c = case(short_lived(), json!({})).await;
        c.p.config(json!({"refresh_script": [{"body": body}]}))
            .await;
        let r = c.token().await;
        r.expect(502, "token_refresh_failed");
        assert_eq!(
            r.body["retry_info"]["errors"][0]["error_type"],
            "malformed_response"
        );
        // The grant still holds the refresh token that works.
        let t = c.token().await;
        assert_eq!(c.p.api(t.ok()["access_token"].as_str().unwrap()).await, 200);
        let r = c.refreshes().await;
        assert_eq!(
            r[0]["fields"]["refresh_token"],
            r[1]["fields"]["refresh_token"]
        );
    }
}

#[tokio::test]
async fn r11_invalid_grant_marks_the_grant_and_stops_calling_the_provider() {
    let c = case(short_lived(), json!({})).await;
    c.p.config(json!({"refresh_script": [{"invalid_grant": true}]}))
        .await;
    c.token().await.expect(403, "credential_revoked");
    let listed = c.listed().await;
    assert_eq!(listed["needs_reconnect"], true);
    c.token().await.expect(403, "credential_revoked");
    assert_eq!(
        c.p.refresh_count().await,
        1,
        "later calls answer without the provider"
    );
    // A repair (reconnect in place) mends it.
    let session = c
        .app
        .connect_session(c.env, json!({"repair_grant_id": c.grant}))
        .await;
    portcullis_tests::oauth::browse(c.env, &c.p, &session).await;
    assert_eq!(c.listed().await["needs_reconnect"], false);
    c.token().await.ok();
}

#[tokio::test]
async fn r14_a_lower_case_bearer_is_accepted() {
    let c = case(short_lived(), json!({})).await;
    c.p.config(json!({"refresh_script": [{"token_type": "bearer"}]}))
        .await;
    let t = c.token().await;
    assert_eq!(t.ok()["token_type"], "Bearer");
    assert_eq!(t.body["injection_format"], "Bearer {token}");
}
