//! The app boundary: whatever another app (or organisation) reaches for answers exactly like
//! something that does not exist: same status, same body. Every route is walked; a route
//! added without a case here fails `every_route_has_a_boundary_case`.

use portcullis_functions::routes::ROUTES;
use portcullis_tests::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// Routes that name no resource of an app, with the reason.
const NO_APP_RESOURCE: &[(&str, &str)] = &[
    ("sdk_scopes", "the catalogue is the same for every app"),
    ("sdk_agent_create", "creates in the caller's own app"),
    ("sdk_key_derive", "derives from the caller's own key"),
    ("sdk_agent_me", "answers the calling agent itself"),
    (
        "sdk_auth_session_create",
        "creates in the caller's own app, from its own identity provider",
    ),
    (
        "web_secret_connect_page",
        "a static page: the session token in its fragment names the app",
    ),
    (
        "web_secret_connect_describe",
        "keyless: the session token names its app (tests/it/secret_connect.rs)",
    ),
    (
        "web_secret_connect_signin",
        "keyless: the session token names its app",
    ),
    (
        "web_secret_connect_confirm",
        "keyless: the session token and the signed-in browser's cookie name the app",
    ),
    (
        "web_secret_connect_cancel",
        "keyless: the session token names its app",
    ),
    (
        "sdk_spans",
        "writes under the caller's own app; traces are read per app (tests/it/runtime.rs)",
    ),
    (
        "web_approval_page",
        "a static page: the link's token in its fragment names the app",
    ),
    (
        "web_approval_describe",
        "keyless: the link's token names its app and approval (tests/it/approvals.rs)",
    ),
    (
        "web_approval_decide",
        "keyless: the link's token names its app and approval",
    ),
    (
        "web_auth_callback",
        "keyless: `state` is the credential and names its app",
    ),
    (
        "sdk_auth_poll",
        "the session token names its app; another app's key is refused like an unknown token (tests/it/identity.rs)",
    ),
    (
        "web_identity_jwks",
        "public keys, published for verifiers like any issuer's JWKS",
    ),
    (
        "sdk_auth_verify_token",
        "verifies with the caller's own app's identity provider",
    ),
    (
        "op_bootstrap",
        "authorised by the root secret, creates a new organisation",
    ),
    ("op_org_get", "answers the caller's own organisation"),
    ("op_org_update", "changes the caller's own organisation"),
    (
        "op_org_audit_query",
        "reads the caller's own organisation partition",
    ),
    ("op_members_list", "lists the caller's own organisation"),
    (
        "op_member_create",
        "creates in the caller's own organisation",
    ),
    ("op_my_keys_list", "lists the caller's own keys"),
    ("op_my_key_create", "creates for the caller"),
    ("op_app_create", "creates in the caller's own organisation"),
    (
        "sdk_provider_catalog",
        "the catalogue plus the caller's own app's providers",
    ),
    (
        "sdk_provider_specs_list",
        "the catalogue is the same for every app",
    ),
    (
        "sdk_provider_spec_get",
        "the catalogue is the same for every app",
    ),
    (
        "sdk_provider_spec_operations",
        "the catalogue is the same for every app",
    ),
    (
        "sdk_provider_spec_operation",
        "the catalogue is the same for every app",
    ),
    (
        "sdk_connect_session_create",
        "creates in the caller's own app, from its own providers",
    ),
    (
        "web_connect_page",
        "a static page; the session token in its fragment never reaches the server",
    ),
    (
        "web_connect_describe",
        "keyless: the session token is the credential and names its app",
    ),
    (
        "web_connect_authorize",
        "keyless: the session token is the credential and names its app",
    ),
    (
        "web_connect_cancel",
        "keyless: the session token is the credential and names its app",
    ),
    (
        "web_oauth_callback",
        "keyless: `state` is the credential and names its app",
    ),
];

/// Routes walked below.
const WALKED: &[&str] = &[
    "sdk_key_rotate",
    "sdk_key_revoke",
    "sdk_agents_list",
    "sdk_agent_get",
    "sdk_agent_update",
    "sdk_agent_delete",
    "sdk_agent_key_mint",
    "sdk_agent_keys_list",
    "sdk_agent_key_deprecate",
    "sdk_agent_key_undeprecate",
    "sdk_agent_key_revoke",
    "sdk_token",
    "sdk_proxy",
    "sdk_approval_get",
    "sdk_approval_result",
    "sdk_audit_api_call",
    "sdk_grants_list",
    "sdk_managed_secret_grant_create",
    "sdk_secret_connect_session_create",
    "sdk_grant_revoke",
    "sdk_grant_report_scope_mismatch",
    "sdk_connect_session_poll",
    "sdk_identity_resolve",
    "sdk_identity_assert",
    "sdk_grant_delegate",
    "sdk_delegation_revoke",
    "sdk_delegation_revoke_self",
    "op_providers_list",
    "op_provider_get",
    "op_provider_put",
    "op_provider_delete",
    "op_idp_get",
    "op_idp_put",
    "op_idp_delete",
    "op_apps_list",
    "op_member_remove",
    "op_my_key_revoke",
    "op_app_get",
    "op_app_policy_put",
    "op_approvals_list",
    "op_trace_get",
    "op_approval_decide",
    "op_app_keys_list",
    "op_app_key_create",
    "op_app_key_deprecate",
    "op_app_key_undeprecate",
    "op_app_key_revoke",
    "op_secrets_list",
    "op_secret_create",
    "op_secret_get",
    "op_secret_rotate",
    "op_secret_delete",
    "op_grant_create",
    "op_grants_list",
    "op_grant_revoke",
    "op_audit_query",
];

#[test]
fn every_route_has_a_boundary_case() {
    for r in ROUTES {
        assert!(
            WALKED.contains(&r.name) || NO_APP_RESOURCE.iter().any(|(n, _)| *n == r.name),
            "route {} has no boundary case in tests/it/boundary.rs",
            r.name
        );
    }
}

#[track_caller]
fn same(foreign: &Resp, missing: &Resp) {
    assert_eq!(foreign.status, 404, "foreign: {}", foreign.body);
    assert_eq!(
        (foreign.status, &foreign.body),
        (missing.status, &missing.body),
        "foreign and missing differ"
    );
}

#[tokio::test]
async fn sdk_routes_answer_a_foreign_app_like_a_missing_one() {
    let env = env().await;
    let a = app_fixture().await;
    let b = app_fixture().await;
    let random = Uuid::new_v4().to_string();

    let foreign = b
        .sdk(env, "POST", "/sdk/token", a.token_body(&a.grant_id))
        .await;
    let missing = b
        .sdk(env, "POST", "/sdk/token", a.token_body(&random))
        .await;
    same(&foreign, &missing);
    assert_eq!(foreign.code(), "grant_not_found");
    for tail in ["", "/result"] {
        // Approvals are looked up under the caller's app only: any ID of another is unknown.
        same(
            &b.sdk(
                env,
                "GET",
                &format!("/sdk/approvals/{}{tail}", Uuid::new_v4()),
                Value::Null,
            )
            .await,
            &b.sdk(
                env,
                "GET",
                &format!("/sdk/approvals/{random}{tail}"),
                Value::Null,
            )
            .await,
        );
    }
    let call = |g: &str| json!({"grant_id": g, "method": "GET", "url": "http://127.0.0.1:9/x"});
    same(
        &b.sdk(env, "POST", "/sdk/proxy", call(&a.grant_id)).await,
        &b.sdk(env, "POST", "/sdk/proxy", call(&random)).await,
    );

    let report = |g: &str| json!({"grant_id": g, "method": "GET", "url": "http://127.0.0.1/", "response_status": 200});
    same(
        &b.sdk(
            env,
            "POST",
            "/sdk/oauth/audit/api-call",
            report(&a.grant_id),
        )
        .await,
        &b.sdk(env, "POST", "/sdk/oauth/audit/api-call", report(&random))
            .await,
    );

    let create = json!({"principal": {"type": "system"}});
    same(
        &b.sdk(
            env,
            "POST",
            &format!("/sdk/managed-secrets/{}/grants", a.secret_id),
            create.clone(),
        )
        .await,
        &b.sdk(
            env,
            "POST",
            &format!("/sdk/managed-secrets/{random}/grants"),
            create,
        )
        .await,
    );

    for tail in ["oauth/grants/{}/revoke", "grants/{}/report-scope-mismatch"] {
        let path = |g: &str| format!("/sdk/{}", tail.replace("{}", g));
        same(
            &b.sdk(env, "POST", &path(&a.grant_id), json!({})).await,
            &b.sdk(env, "POST", &path(&random), json!({})).await,
        );
    }
    let some_agent = Uuid::new_v4();
    let withdraw = |g: &str| format!("/sdk/grants/{g}/delegations/{some_agent}");
    same(
        &b.sdk(env, "DELETE", &withdraw(&a.grant_id), Value::Null)
            .await,
        &b.sdk(env, "DELETE", &withdraw(&random), Value::Null).await,
    );
    // B's own agent reaching for A's grant: delegate, give up.
    let agent = b
        .sdk(
            env,
            "POST",
            "/sdk/agents",
            json!({"name": "b-agent", "type": "agent", "scopes": {}, "metadata": {}}),
        )
        .await;
    let agent_key = agent.body["api_key"].as_str().unwrap().to_string();
    let delegate = json!({"to_agent_id": agent.body["id"]});
    for (method, tail, body) in [
        ("POST", "delegate", delegate),
        ("DELETE", "delegations/me", Value::Null),
    ] {
        let path = |g: &str| format!("/sdk/grants/{g}/{tail}");
        same(
            &env.signed(&agent_key, method, &path(&a.grant_id), body.clone())
                .await,
            &env.signed(&agent_key, method, &path(&random), body).await,
        );
    }

    // A Connect session of A, polled by B, is as unknown as a made-up one.
    a.org
        .op(
            env,
            "PUT",
            &format!("/v1/apps/{}/providers/github", a.app_id),
            json!({"client_id": "cid", "client_secret": "cs", "scopes": ["repo"]}),
        )
        .await
        .ok();
    let session = a
        .sdk(
            env,
            "POST",
            "/sdk/oauth/connect/session",
            json!({"allowed_providers": ["github"]}),
        )
        .await
        .ok()["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let poll = |t: &str| json!({"session_token": t});
    let made_up = format!("cs_{}_{}", a.app_id.replace('-', ""), "0".repeat(43));
    let (foreign, missing) = (
        b.sdk(
            env,
            "POST",
            "/sdk/oauth/connect/session/poll",
            poll(&session),
        )
        .await,
        b.sdk(
            env,
            "POST",
            "/sdk/oauth/connect/session/poll",
            poll(&made_up),
        )
        .await,
    );
    assert_eq!(foreign.body["status"], "expired", "{}", foreign.body);
    assert_eq!(
        (foreign.status, &foreign.body),
        (missing.status, &missing.body)
    );
    assert_eq!(
        a.sdk(
            env,
            "POST",
            "/sdk/oauth/connect/session/poll",
            poll(&session)
        )
        .await
        .ok()["status"],
        "pending",
        "A's session is untouched"
    );

    let listed = b
        .sdk(env, "POST", "/sdk/grants/list", json!({}))
        .await
        .ok()
        .clone();
    let ids: Vec<&str> = listed["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![b.grant_id.as_str()], "B sees only its own grants");
    // And A's grant was untouched by B's attempts.
    a.sdk(env, "POST", "/sdk/token", a.token_body(&a.grant_id))
        .await
        .ok();
}

/// (method, path under /v1/apps/{app}, body) for every app-scoped operator route.
fn app_routes(a: &TestApp) -> Vec<(&'static str, String, Value)> {
    let (k, s, g) = (Uuid::new_v4(), &a.secret_id, &a.grant_id);
    vec![
        ("GET", String::new(), Value::Null),
        ("GET", "/keys".into(), Value::Null),
        ("POST", "/keys".into(), json!({"name": "x"})),
        ("POST", format!("/keys/{k}/deprecate"), Value::Null),
        ("POST", format!("/keys/{k}/undeprecate"), Value::Null),
        ("DELETE", format!("/keys/{k}"), Value::Null),
        ("GET", "/secrets".into(), Value::Null),
        (
            "POST",
            "/secrets".into(),
            json!({"name": "n", "template": "bearer", "allowed_hosts": ["a.io"], "value": {"token": "t"}}),
        ),
        ("GET", format!("/secrets/{s}"), Value::Null),
        (
            "POST",
            format!("/secrets/{s}/rotate"),
            json!({"value": {"token": "t2"}}),
        ),
        ("DELETE", format!("/secrets/{s}"), Value::Null),
        (
            "POST",
            format!("/secrets/{s}/grants"),
            json!({"principal": {"type": "system"}}),
        ),
        ("GET", "/grants".into(), Value::Null),
        ("DELETE", format!("/grants/{g}"), Value::Null),
        ("GET", "/providers".into(), Value::Null),
        ("GET", "/providers/github".into(), Value::Null),
        (
            "PUT",
            "/providers/github".into(),
            json!({"client_id": "cid", "client_secret": "cs"}),
        ),
        ("DELETE", "/providers/github".into(), Value::Null),
        ("GET", "/idp".into(), Value::Null),
        (
            "PUT",
            "/idp".into(),
            json!({"preset": "auth0", "domain": "acme.auth0.com", "audience": "x"}),
        ),
        ("DELETE", "/idp".into(), Value::Null),
        ("GET", "/audit".into(), Value::Null),
        (
            "PUT",
            "/policy".into(),
            json!({"ip_allowlist": ["10.0.0.0/8"]}),
        ),
        ("GET", "/approvals".into(), Value::Null),
        ("GET", "/traces/some-trace".into(), Value::Null),
        (
            "POST",
            format!("/approvals/{k}/decide"),
            json!({"decision": "approve"}),
        ),
    ]
}

#[tokio::test]
async fn operator_routes_answer_another_organisations_app_like_a_missing_one() {
    let env = env().await;
    let a = app_fixture().await;
    let b = app_fixture().await;
    let random = Uuid::new_v4();
    for (method, tail, body) in app_routes(&a) {
        let foreign = b
            .org
            .op(
                env,
                method,
                &format!("/v1/apps/{}{tail}", a.app_id),
                body.clone(),
            )
            .await;
        let missing = b
            .org
            .op(env, method, &format!("/v1/apps/{random}{tail}"), body)
            .await;
        same(&foreign, &missing);
        assert_eq!(foreign.code(), "app_not_found", "{method} {tail}");
    }
    let apps = b
        .org
        .op(env, "GET", "/v1/apps", Value::Null)
        .await
        .ok()
        .clone();
    assert!(
        apps["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != a.app_id.as_str())
    );
    // A is intact: its secret still serves its grant.
    a.sdk(env, "POST", "/sdk/token", a.token_body(&a.grant_id))
        .await
        .ok();
}

#[tokio::test]
async fn within_one_organisation_an_id_from_another_app_is_missing() {
    let env = env().await;
    let a = app_fixture().await;
    // A second app of the same organisation.
    let a2 = a
        .org
        .op(env, "POST", "/v1/apps", json!({"name": "second"}))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let keys = a
        .org
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/keys", a.app_id),
            Value::Null,
        )
        .await;
    let key_a = keys.ok()["items"][0]["id"].as_str().unwrap().to_string();
    let random = Uuid::new_v4();
    let pairs = [
        (
            "POST",
            format!("/keys/{key_a}/deprecate"),
            format!("/keys/{random}/deprecate"),
            Value::Null,
        ),
        (
            "DELETE",
            format!("/keys/{key_a}"),
            format!("/keys/{random}"),
            Value::Null,
        ),
        (
            "GET",
            format!("/secrets/{}", a.secret_id),
            format!("/secrets/{random}"),
            Value::Null,
        ),
        (
            "POST",
            format!("/secrets/{}/rotate", a.secret_id),
            format!("/secrets/{random}/rotate"),
            json!({"value": {"token": "x"}}),
        ),
        (
            "POST",
            format!("/secrets/{}/grants", a.secret_id),
            format!("/secrets/{random}/grants"),
            json!({"principal": {"type": "system"}}),
        ),
        (
            "DELETE",
            format!("/secrets/{}", a.secret_id),
            format!("/secrets/{random}"),
            Value::Null,
        ),
        (
            "DELETE",
            format!("/grants/{}", a.grant_id),
            format!("/grants/{random}"),
            Value::Null,
        ),
    ];
    for (method, foreign, missing, body) in pairs {
        let f = a
            .org
            .op(
                env,
                method,
                &format!("/v1/apps/{a2}{foreign}"),
                body.clone(),
            )
            .await;
        let m = a
            .org
            .op(env, method, &format!("/v1/apps/{a2}{missing}"), body)
            .await;
        same(&f, &m);
    }
    a.sdk(env, "POST", "/sdk/token", a.token_body(&a.grant_id))
        .await
        .ok();
}

#[tokio::test]
async fn members_and_operator_keys_of_another_organisation_are_missing() {
    let env = env().await;
    let a = env.org().await;
    let b = env.org().await;
    let a_member = a.op(env, "GET", "/v1/org", Value::Null).await.ok()["me"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_key = a.op(env, "GET", "/v1/me/keys", Value::Null).await.ok()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let random = Uuid::new_v4();
    same(
        &b.op(
            env,
            "DELETE",
            &format!("/v1/org/members/{a_member}"),
            Value::Null,
        )
        .await,
        &b.op(
            env,
            "DELETE",
            &format!("/v1/org/members/{random}"),
            Value::Null,
        )
        .await,
    );
    same(
        &b.op(env, "DELETE", &format!("/v1/me/keys/{a_key}"), Value::Null)
            .await,
        &b.op(env, "DELETE", &format!("/v1/me/keys/{random}"), Value::Null)
            .await,
    );
    a.op(env, "GET", "/v1/org", Value::Null).await.ok();
}

#[tokio::test]
async fn agents_of_another_app_are_missing() {
    let env = env().await;
    let a = app_fixture().await;
    let b = app_fixture().await;
    let created = a
        .sdk(
            env,
            "POST",
            "/sdk/agents",
            json!({"name": "a-agent", "scopes": {}}),
        )
        .await;
    let (agent, key) = (
        created.body["id"].as_str().unwrap().to_string(),
        created.body["key_id"].as_str().unwrap().to_string(),
    );
    let (ra, rk) = (Uuid::new_v4(), Uuid::new_v4());
    let cases = [
        (
            "GET",
            format!("/sdk/agents/{agent}"),
            format!("/sdk/agents/{ra}"),
            Value::Null,
        ),
        (
            "PATCH",
            format!("/sdk/agents/{agent}"),
            format!("/sdk/agents/{ra}"),
            json!({"status": "inactive"}),
        ),
        (
            "DELETE",
            format!("/sdk/agents/{agent}"),
            format!("/sdk/agents/{ra}"),
            Value::Null,
        ),
        (
            "POST",
            format!("/sdk/agents/{agent}/keys"),
            format!("/sdk/agents/{ra}/keys"),
            json!({}),
        ),
        (
            "GET",
            format!("/sdk/agents/{agent}/keys"),
            format!("/sdk/agents/{ra}/keys"),
            Value::Null,
        ),
        (
            "PATCH",
            format!("/sdk/agents/{agent}/keys/{key}/deprecate"),
            format!("/sdk/agents/{ra}/keys/{rk}/deprecate"),
            json!({}),
        ),
        (
            "PATCH",
            format!("/sdk/agents/{agent}/keys/{key}/undeprecate"),
            format!("/sdk/agents/{ra}/keys/{rk}/undeprecate"),
            json!({}),
        ),
        (
            "DELETE",
            format!("/sdk/agents/{agent}/keys/{key}"),
            format!("/sdk/agents/{ra}/keys/{rk}"),
            Value::Null,
        ),
    ];
    for (method, foreign, missing, body) in cases {
        same(
            &b.sdk(env, method, &foreign, body.clone()).await,
            &b.sdk(env, method, &missing, body).await,
        );
    }
    let listed = b
        .sdk(env, "GET", "/sdk/agents?include_revoked=true", Value::Null)
        .await
        .ok()
        .clone();
    assert_eq!(listed["total"], 0, "B sees none of A's agents");
    // A's agent is untouched.
    assert_eq!(
        a.sdk(env, "GET", &format!("/sdk/agents/{agent}"), Value::Null)
            .await
            .ok()["status"],
        "active"
    );
}

#[tokio::test]
async fn keys_of_another_app_are_missing() {
    let env = env().await;
    let a = app_fixture().await;
    let b = app_fixture().await;
    let listed = a
        .org
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/keys", a.app_id),
            Value::Null,
        )
        .await;
    let key_a = listed.ok()["items"][0]["id"].as_str().unwrap().to_string();
    let random = Uuid::new_v4();
    same(
        &b.sdk(env, "POST", &format!("/sdk/keys/{key_a}/rotate"), json!({}))
            .await,
        &b.sdk(
            env,
            "POST",
            &format!("/sdk/keys/{random}/rotate"),
            json!({}),
        )
        .await,
    );
    same(
        &b.sdk(env, "DELETE", &format!("/sdk/keys/{key_a}"), Value::Null)
            .await,
        &b.sdk(env, "DELETE", &format!("/sdk/keys/{random}"), Value::Null)
            .await,
    );
    a.sdk(env, "GET", "/sdk/scopes", Value::Null).await.ok();
}

#[tokio::test]
async fn another_apps_user_is_as_unknown_as_a_made_up_one() {
    let env = env().await;
    let a = app_fixture().await;
    let b = app_fixture().await;
    let idp = portcullis_tests::oauth::Provider::start().await;
    a.use_idp(env, &idp, json!({})).await.ok();
    let token = idp.id_token(json!({"sub": "someone"})).await;
    let me = a
        .sdk(
            env,
            "POST",
            "/sdk/identity/resolve",
            json!({"user_token": token}),
        )
        .await;
    let user = me.ok()["app_user_id"].as_str().unwrap().to_string();
    let ask = |id: &str| json!({ "app_user_id": id });
    let random = Uuid::new_v4().to_string();
    let (foreign, missing) = (
        b.sdk(env, "POST", "/sdk/identity/resolve", ask(&user))
            .await,
        b.sdk(env, "POST", "/sdk/identity/resolve", ask(&random))
            .await,
    );
    same(&foreign, &missing);
    assert_eq!(foreign.code(), "app_user_not_found");
    let assert = |id: &str| json!({"app_user_id": id, "audience": "https://x.example"});
    same(
        &b.sdk(env, "POST", "/sdk/identity/assert", assert(&user))
            .await,
        &b.sdk(env, "POST", "/sdk/identity/assert", assert(&random))
            .await,
    );
    a.sdk(env, "POST", "/sdk/identity/resolve", ask(&user))
        .await
        .ok();
}

#[tokio::test]
async fn managed_secret_connect_reaches_nothing_of_another_app() {
    let env = env().await;
    let a = app_fixture().await;
    let b = app_fixture().await;
    let idp = portcullis_tests::oauth::Provider::start().await;
    let signin = json!({"signin": {"client_id": "portcullis-test", "client_secret": "portcullis-test-secret"}});
    a.use_idp(env, &idp, signin.clone()).await.ok();
    b.use_idp(env, &idp, signin).await.ok();
    let token = idp.id_token(json!({"sub": "someone"})).await;
    let mut slugs = Vec::new();
    for app in [&a, &b] {
        let path = format!("/v1/apps/{}/secrets/{}", app.app_id, app.secret_id);
        let r = app.org.op(env, "GET", &path, Value::Null).await;
        slugs.push(r.ok()["slug"].as_str().unwrap().to_string());
    }
    let (a_slug, b_slug) = (slugs[0].clone(), slugs[1].clone());
    let ask = |extra: Value| {
        let mut body = json!({"user_token": token});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        b.sdk(env, "POST", "/sdk/managed-secrets/connect/session", body)
    };
    same(
        &ask(json!({"provider": a_slug})).await,
        &ask(json!({"provider": "made-up-secret"})).await,
    );
    let a_agent = a
        .sdk(
            env,
            "POST",
            "/sdk/agents",
            json!({"name": "a-agent", "type": "agent", "scopes": {}, "metadata": {}}),
        )
        .await;
    let a_agent = a_agent.body["id"].as_str().unwrap().to_string();
    same(
        &ask(json!({"provider": b_slug, "agent": a_agent})).await,
        &ask(json!({"provider": b_slug, "agent": Uuid::new_v4().to_string()})).await,
    );
    same(
        &ask(json!({"provider": b_slug, "repair_grant_id": a.grant_id})).await,
        &ask(json!({"provider": b_slug, "repair_grant_id": Uuid::new_v4().to_string()})).await,
    );
}
