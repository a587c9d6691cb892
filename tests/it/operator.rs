//! The operator API: bootstrap, roles, members, operator keys, apps, secrets, audit queries.

use portcullis_tests::*;
use serde_json::{Value, json};

#[tokio::test]
async fn bootstrap_needs_the_root_secret() {
    let env = env().await;
    let body = body_bytes(&json!({"org_name": "x", "owner_email": "a@b.io"}));
    env.send(request("POST", "/v1/bootstrap", &body))
        .await
        .expect(401, "invalid_root_secret");
    let mut req = request("POST", "/v1/bootstrap", &body);
    set(&mut req, "authorization", "Bearer wrong");
    env.send(req).await.expect(401, "invalid_root_secret");
    let mut req = request(
        "POST",
        "/v1/bootstrap",
        &body_bytes(&json!({"org_name": "x", "owner_email": "nope"})),
    );
    set(&mut req, "authorization", &format!("Bearer {ROOT_SECRET}"));
    env.send(req).await.expect(422, "validation_error");
    let org = env.org().await;
    let rows = org
        .op(env, "GET", "/v1/org/audit", Value::Null)
        .await
        .ok()
        .clone();
    assert_eq!(rows["items"][0]["action"], "op_bootstrap");
    assert_eq!(rows["items"][0]["principal_type"], "root");
}

async fn member(env: &Env, owner: &Org, role: &str) -> (String, Org) {
    let r = owner
        .op(
            env,
            "POST",
            "/v1/org/members",
            json!({"email": format!("{role}@x.io"), "role": role}),
        )
        .await;
    let b = r.ok().clone();
    (
        b["member"]["id"].as_str().unwrap().to_string(),
        Org {
            org_id: owner.org_id.clone(),
            operator_key: b["operator_key"]["api_key"].as_str().unwrap().to_string(),
        },
    )
}

#[tokio::test]
async fn roles_decide_what_a_member_may_do() {
    let env = env().await;
    let app = app_fixture().await;
    let (_, admin) = member(env, &app.org, "admin").await;
    let (auditor_id, auditor) = member(env, &app.org, "auditor").await;

    // The auditor reads audit logs and nothing else that changes anything.
    auditor
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/audit", app.app_id),
            Value::Null,
        )
        .await
        .ok();
    for (m, p, b) in [
        ("POST", "/v1/apps".to_string(), json!({"name": "x"})),
        (
            "POST",
            format!("/v1/apps/{}/keys", app.app_id),
            json!({"name": "x"}),
        ),
        (
            "GET",
            format!("/v1/apps/{}/secrets", app.app_id),
            Value::Null,
        ),
        (
            "GET",
            format!("/v1/apps/{}/grants", app.app_id),
            Value::Null,
        ),
        (
            "POST",
            "/v1/org/members".to_string(),
            json!({"email": "e@x.io", "role": "owner"}),
        ),
    ] {
        auditor
            .op(env, m, &p, b)
            .await
            .expect(403, "insufficient_role");
    }
    // Admins see the members; the list holds every member with their role.
    let list = admin
        .op(env, "GET", "/v1/org/members", Value::Null)
        .await
        .ok()
        .clone();
    let roles: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"admin") && roles.contains(&"auditor"),
        "{list}"
    );
    auditor
        .op(env, "GET", "/v1/org/members", Value::Null)
        .await
        .expect(403, "insufficient_role");
    // Admins run apps but not membership.
    admin
        .op(env, "POST", "/v1/apps", json!({"name": "by admin"}))
        .await
        .ok();
    admin
        .op(
            env,
            "POST",
            "/v1/org/members",
            json!({"email": "e@x.io", "role": "admin"}),
        )
        .await
        .expect(403, "insufficient_role");
    // Removing a member kills their keys at once.
    app.org
        .op(
            env,
            "DELETE",
            &format!("/v1/org/members/{auditor_id}"),
            Value::Null,
        )
        .await
        .ok();
    auditor
        .op(env, "GET", "/v1/org", Value::Null)
        .await
        .expect(401, "invalid_key");
    // The last owner stays.
    let me = app.org.op(env, "GET", "/v1/org", Value::Null).await.ok()["me"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.org
        .op(env, "DELETE", &format!("/v1/org/members/{me}"), Value::Null)
        .await
        .expect(409, "last_owner");
}

#[tokio::test]
async fn members_hold_their_own_operator_keys() {
    let env = env().await;
    let org = env.org().await;
    let minted = org
        .op(env, "POST", "/v1/me/keys", json!({"name": "laptop"}))
        .await
        .ok()
        .clone();
    let second = Org {
        org_id: org.org_id.clone(),
        operator_key: minted["api_key"].as_str().unwrap().to_string(),
    };
    second.op(env, "GET", "/v1/org", Value::Null).await.ok();
    let listed = org
        .op(env, "GET", "/v1/me/keys", Value::Null)
        .await
        .ok()
        .clone();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&second.operator_key),
        "listings never show a key"
    );
    org.op(
        env,
        "DELETE",
        &format!("/v1/me/keys/{}", minted["id"].as_str().unwrap()),
        Value::Null,
    )
    .await
    .ok();
    second
        .op(env, "GET", "/v1/org", Value::Null)
        .await
        .expect(401, "key_revoked");
}

#[tokio::test]
async fn keys_of_the_wrong_surface_are_refused() {
    let env = env().await;
    let app = app_fixture().await;
    app.sdk(env, "GET", "/v1/apps", Value::Null)
        .await
        .expect(401, "invalid_key");
    app.org
        .op(env, "GET", "/sdk/scopes", Value::Null)
        .await
        .expect(401, "invalid_key");
}

#[tokio::test]
async fn secrets_are_validated_slugged_and_never_shown() {
    let env = env().await;
    let app = app_fixture().await;
    let path = format!("/v1/apps/{}/secrets", app.app_id);
    let create = |name: &str, template: &str, header: Value, hosts: Value, value: Value| json!({"name": name, "template": template, "header_name": header, "allowed_hosts": hosts, "value": value});
    let a = app
        .org
        .op(
            env,
            "POST",
            &path,
            create(
                "Stripe Production",
                "bearer",
                Value::Null,
                json!(["api.stripe.com"]),
                json!({"token": "sk-live-1"}),
            ),
        )
        .await;
    let b = app
        .org
        .op(
            env,
            "POST",
            &path,
            create(
                "Stripe Production",
                "bearer",
                Value::Null,
                json!(["api.stripe.com"]),
                json!({"token": "sk-live-2"}),
            ),
        )
        .await;
    assert_eq!(a.ok()["slug"], "stripe-production");
    assert_eq!(b.ok()["slug"], "stripe-production-2");
    let listed = app
        .org
        .op(env, "GET", &path, Value::Null)
        .await
        .ok()
        .to_string();
    assert!(!listed.contains("sk-live-1") && !listed.contains("sk-live-2"));
    for bad in [
        create("x", "bearer", Value::Null, json!([]), json!({"token": "t"})),
        create(
            "x",
            "bearer",
            Value::Null,
            json!(["https://a.io/path"]),
            json!({"token": "t"}),
        ),
        create(
            "x",
            "bearer",
            Value::Null,
            json!(["a.io"]),
            json!({"api_key": "t"}),
        ),
        create(
            "x",
            "bearer",
            Value::Null,
            json!(["a.io"]),
            json!({"token": "line\nbreak"}),
        ),
        create(
            "x",
            "api_key",
            Value::Null,
            json!(["a.io"]),
            json!({"api_key": "t"}),
        ),
        create(
            "x",
            "api_key",
            json!("Host"),
            json!(["a.io"]),
            json!({"api_key": "t"}),
        ),
        create(
            "x",
            "api_key",
            json!("Bad Header"),
            json!(["a.io"]),
            json!({"api_key": "t"}),
        ),
        create(
            "x",
            "basic",
            Value::Null,
            json!(["a.io"]),
            json!({"username": "a:b", "password": "p"}),
        ),
        create(
            "x",
            "kerberos",
            Value::Null,
            json!(["a.io"]),
            json!({"token": "t"}),
        ),
        create(
            "!!!",
            "bearer",
            Value::Null,
            json!(["a.io"]),
            json!({"token": "t"}),
        ),
        json!({"name": "x", "template": "bearer", "allowed_hosts": ["a.io"], "value": {"token": "t"}, "extra": 1}),
    ] {
        app.org
            .op(env, "POST", &path, bad)
            .await
            .expect(422, "validation_error");
    }
}

#[tokio::test]
async fn audit_queries_filter_and_page_newest_first() {
    let env = env().await;
    let app = app_fixture().await;
    for _ in 0..7 {
        app.sdk(env, "POST", "/sdk/token", app.token_body(&app.grant_id))
            .await
            .ok();
    }
    app.sdk(
        env,
        "POST",
        "/sdk/token",
        app.token_body(&uuid::Uuid::new_v4().to_string()),
    )
    .await
    .expect(404, "grant_not_found");
    let base = format!("/v1/apps/{}/audit", app.app_id);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{base}?action=sdk_token&outcome=success&limit=3&cursor={c}"),
            None => format!("{base}?action=sdk_token&outcome=success&limit=3"),
        };
        let page = app.org.op(env, "GET", &q, Value::Null).await.ok().clone();
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    let times: Vec<&str> = seen.iter().map(|r| r["time"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let ids: std::collections::HashSet<_> = seen
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 7, "no row twice across pages");
    let not_found = app.audit(env, "outcome=not_found").await;
    assert_eq!(not_found.len(), 1);
    let prefix: String = app.key.chars().take(14).collect();
    assert!(
        app.audit(
            env,
            &format!("key_prefix={prefix}&grant_id={}", app.grant_id)
        )
        .await
        .len()
            >= 7
    );
    for bad in [
        "cursor=zzz",
        "limit=0",
        "from=yesterday",
        "from=2020-01-01T00:00:00Z",
        "to=2020-01-01T00:00:00Z&from=2021-01-01T00:00:00Z",
        "nope=1",
    ] {
        app.org
            .op(env, "GET", &format!("{base}?{bad}"), Value::Null)
            .await
            .expect(422, "validation_error");
    }
}

#[tokio::test]
async fn two_owners_removing_each_other_at_once_leave_one_owner() {
    let env = env().await;
    for _ in 0..3 {
        let first = env.org().await;
        let first_id = first.op(env, "GET", "/v1/org", Value::Null).await.ok()["me"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (second_id, second) = member(env, &first, "owner").await;
        let (remove_second, remove_first) = (
            format!("/v1/org/members/{second_id}"),
            format!("/v1/org/members/{first_id}"),
        );
        let (a, b) = tokio::join!(
            first.op(env, "DELETE", &remove_second, Value::Null),
            second.op(env, "DELETE", &remove_first, Value::Null),
        );
        let succeeded = [&a, &b].iter().filter(|r| r.status == 200).count();
        assert!(
            succeeded <= 1,
            "both removals succeeded: {} / {}",
            a.body,
            b.body
        );
        // Whoever removed the other is still an owner; if neither could, both still are.
        if succeeded == 1 {
            let survivor = if a.status == 200 { &first } else { &second };
            survivor.op(env, "GET", "/v1/org", Value::Null).await.ok();
        } else {
            first.op(env, "GET", "/v1/org", Value::Null).await.ok();
            second.op(env, "GET", "/v1/org", Value::Null).await.ok();
        }
    }
}

#[tokio::test]
async fn errors_never_quote_a_misplaced_secret_value() {
    let env = env().await;
    let app = app_fixture().await;
    let path = format!("/v1/apps/{}/secrets", app.app_id);
    let body = json!({"name": "x", "template": "bearer", "allowed_hosts": ["a.io"], "value": "sk_live_do_not_echo"});
    let r = app.org.op(env, "POST", &path, body).await;
    r.expect(422, "validation_error");
    assert!(
        !r.body.to_string().contains("sk_live_do_not_echo"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn ambiguous_or_invisible_input_is_refused() {
    let env = env().await;
    let app = app_fixture().await;
    let base = format!("/v1/apps/{}/audit", app.app_id);
    app.org
        .op(env, "GET", &format!("{base}?limit=1&limit=2"), Value::Null)
        .await
        .expect(422, "validation_error");
    app.org
        .op(
            env,
            "POST",
            "/v1/apps",
            json!({"name": "safe\u{202e}txt.exe"}),
        )
        .await
        .expect(422, "validation_error");
    let r = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/keys", app.app_id),
            json!({"name": "k", "expires_at": "2999-12-31T23:59:59-23:59"}),
        )
        .await;
    assert!(
        r.ok()["expires_at"].as_str().unwrap().ends_with('Z'),
        "times are kept in UTC: {}",
        r.body
    );
}

#[tokio::test]
async fn a_sparse_query_over_a_long_range_pages_in_bounded_steps() {
    let env = env().await;
    let app = app_fixture().await;
    let from = time::OffsetDateTime::now_utc() - time::Duration::days(60);
    let from = from
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let base = format!(
        "/v1/apps/{}/audit?action=no_such_action&from={from}",
        app.app_id
    );
    let (mut pages, mut cursor) = (0, None::<String>);
    loop {
        let q = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.clone(),
        };
        let page = app.org.op(env, "GET", &q, Value::Null).await.ok().clone();
        assert!(page["items"].as_array().unwrap().is_empty());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!(
        (9..=10).contains(&pages),
        "61 days in steps of 7: {pages} pages"
    );
}

#[tokio::test]
async fn operators_list_an_apps_grants() {
    let env = env().await;
    let app = app_fixture().await;
    let r = app
        .org
        .op(
            env,
            "GET",
            &format!("/v1/apps/{}/grants", app.app_id),
            Value::Null,
        )
        .await;
    let items = r.ok()["items"].as_array().expect("items").clone();
    assert!(
        items.iter().any(|g| g["grant_id"] == app.grant_id.as_str()),
        "{}",
        r.body
    );
}
