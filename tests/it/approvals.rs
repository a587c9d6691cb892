//! Human approval of proxy calls: a policy asks for it, the call waits (202), each gate's link
//! (or an operator) decides, the call is made exactly once when the last approval lands, and
//! its result is handed out once; denials and expiry end it.

use base64::Engine;
use portcullis_tests::oauth::web;
use portcullis_tests::upstream::Upstream;
use portcullis_tests::*;
use serde_json::{Value, json};

struct Case {
    env: &'static Env,
    app: TestApp,
    up: Upstream,
    grant: String,
}

async fn case(approval: Value) -> Case {
    let env = env().await;
    let app = app_fixture().await;
    let up = Upstream::start().await;
    let r = app
        .org
        .op(
            env,
            "POST",
            &format!("/v1/apps/{}/secrets/{}/grants", app.app_id, app.secret_id),
            json!({"principal": {"type": "system"}, "policy": {"approval": approval}}),
        )
        .await;
    let grant = r.ok()["grant_id"].as_str().unwrap().to_string();
    Case {
        env,
        app,
        up,
        grant,
    }
}

/// A gate link's token.
fn token(link: &Value) -> String {
    let link = link.as_str().unwrap();
    link.split("#token=").nth(1).unwrap().to_string()
}

impl Case {
    /// The approvers' links of a pending request, as its operators get them.
    async fn links(&self, id: &str) -> Vec<String> {
        let r = self
            .app
            .org
            .op(
                self.env,
                "GET",
                &format!("/v1/apps/{}/approvals?status=pending", self.app.app_id),
                Value::Null,
            )
            .await;
        let item = r.ok()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["approval_id"] == id)
            .cloned()
            .unwrap_or_default();
        item["approver_links"]
            .as_array()
            .map(|l| l.iter().map(|g| token(&g["approval_url"])).collect())
            .unwrap_or_default()
    }

    async fn ask(&self, method: &str, path: &str) -> Resp {
        let body = json!({"grant_id": self.grant, "method": method, "url": format!("{}{path}", self.up.url),
                          "body": {"amount": 5}, "reason": "refund the customer"});
        self.app.sdk(self.env, "POST", "/sdk/proxy", body).await
    }

    async fn status(&self, id: &str) -> Value {
        let r = self
            .app
            .sdk(
                self.env,
                "GET",
                &format!("/sdk/approvals/{id}"),
                Value::Null,
            )
            .await;
        r.ok().clone()
    }

    async fn decide_by_link(&self, token: &str, decision: &str) -> (u16, Value) {
        let (status, body) = web(
            self.env,
            "POST",
            "/sdk/approvals/decide",
            json!({"token": token, "decision": decision}),
        )
        .await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn two_approvers_then_the_call_is_made_once_and_its_result_handed_out_once() {
    let c = case(json!({"approvers": 2, "methods": ["POST"]})).await;
    // Calls the rule does not name go through; retrieval is refused outright.
    assert_eq!(c.ask("GET", "/list").await.ok()["status_code"], 200);
    c.app
        .sdk(
            c.env,
            "POST",
            "/sdk/token",
            json!({"grant_id": c.grant, "request": {"method": "GET", "url": c.up.url.clone() + "/x"}}),
        )
        .await
        .expect(400, "hitl_grant_requires_proxy");

    let pending = c.ask("POST", "/refunds").await;
    assert_eq!(pending.status, 202, "{}", pending.body);
    let p = pending.body.clone();
    assert_eq!(p["status"], "pending");
    assert_eq!(p["gates"].as_array().unwrap().len(), 2);
    assert_eq!(p["gates"][0]["approval_id"], p["approval_id"]);
    assert!(p["expires_in"].as_i64().unwrap() > 3500);
    let id = p["approval_id"].as_str().unwrap().to_string();
    // The caller's links show the state only: it cannot approve its own call.
    for g in p["gates"].as_array().unwrap() {
        let url = g["approval_url"].as_str().unwrap();
        assert!(
            url.contains("#approval=") && !url.contains("token="),
            "{url}"
        );
    }
    let links = c.links(&id).await;
    assert_eq!(links.len(), 2);
    let (t1, t2) = (links[0].clone(), links[1].clone());
    assert_eq!(c.up.hits(), 1, "nothing sent before approval");

    // The page shows who asks and for what, never the credential.
    let (status, shown) = web(
        c.env,
        "POST",
        "/sdk/approvals/decide/describe",
        json!({"token": t1}),
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["request"]["method"], "POST");
    assert_eq!(shown["reason"], "refund the customer");
    assert_eq!(
        shown["gate"],
        json!({"number": 1, "of": 2, "status": "pending"})
    );
    assert!(!shown.to_string().contains(&c.app.token));
    // A made-up token, or one gate's token for another gate, finds nothing.
    let forged = format!("{}x", &t1[..t1.len() - 1]);
    let (status, _) = web(
        c.env,
        "POST",
        "/sdk/approvals/decide/describe",
        json!({"token": forged}),
    )
    .await;
    assert_eq!(status, 404);

    assert_eq!(c.decide_by_link(&t1, "approve").await.0, 200);
    let (again, body) = c.decide_by_link(&t1, "approve").await;
    assert_eq!(
        (again, body["error"].as_str()),
        (409, Some("approval_already_decided"))
    );
    let s = c.status(&id).await;
    assert_eq!(
        (
            &s["status"],
            &s["gates"][0]["status"],
            &s["gates"][1]["status"],
            &s["has_result"]
        ),
        (
            &json!("pending"),
            &json!("approved"),
            &json!("pending"),
            &json!(false)
        )
    );
    // The result is not there yet.
    c.app
        .sdk(
            c.env,
            "GET",
            &format!("/sdk/approvals/{id}/result"),
            Value::Null,
        )
        .await
        .expect(409, "approval_pending");

    // The last approval, twice at once: one wins and makes the call, the other is refused.
    let decide_path = format!("/v1/apps/{}/approvals/{id}/decide", c.app.app_id);
    let op = c
        .app
        .org
        .op(c.env, "POST", &decide_path, json!({"decision": "approve"}));
    let (by_op, by_link) = tokio::join!(op, c.decide_by_link(&t2, "approve"));
    let wins = [by_op.status == 200, by_link.0 == 200];
    assert_eq!(
        wins.iter().filter(|w| **w).count(),
        1,
        "{:?} {:?}",
        by_op.body,
        by_link
    );
    assert_eq!(c.up.hits(), 2, "the approved call was made once");
    let s = c.status(&id).await;
    assert_eq!(
        (&s["status"], &s["has_result"]),
        (&json!("executed"), &json!(true))
    );

    let result = c
        .app
        .sdk(
            c.env,
            "GET",
            &format!("/sdk/approvals/{id}/result"),
            Value::Null,
        )
        .await;
    let r = result.ok();
    assert_eq!(
        (&r["status_code"], &r["approval_id"]),
        (&json!(200), &json!(id))
    );
    let seen: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(r["body_b64"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        seen["headers"]["authorization"],
        format!("Bearer {}", c.app.token)
    );
    assert_eq!(seen["body"], r#"{"amount":5}"#);
    c.app
        .sdk(
            c.env,
            "GET",
            &format!("/sdk/approvals/{id}/result"),
            Value::Null,
        )
        .await
        .expect(410, "approval_result_taken");
    // The operator sees it; the decisions are audited without the credential.
    let listed = c
        .app
        .org
        .op(
            c.env,
            "GET",
            &format!("/v1/apps/{}/approvals?status=executed", c.app.app_id),
            Value::Null,
        )
        .await;
    assert_eq!(listed.ok()["items"][0]["approval_id"], json!(id));
    let rows = c.app.audit(c.env, "").await;
    assert!(rows.iter().any(|r| r["action"] == "web_approval_decide"));
    assert!(!serde_json::to_string(&rows).unwrap().contains(&c.app.token));
}

#[tokio::test]
async fn a_denial_ends_it_and_an_expired_request_cannot_be_approved() {
    let c = case(json!({})).await;
    let p = c.ask("POST", "/refunds").await;
    let id = p.body["approval_id"].as_str().unwrap().to_string();
    let t = c.links(&id).await.remove(0);
    assert_eq!(c.decide_by_link(&t, "deny").await.0, 200);
    let s = c.status(&id).await;
    assert_eq!(
        (&s["status"], &s["gates"][0]["status"]),
        (&json!("denied"), &json!("denied"))
    );
    c.app
        .sdk(
            c.env,
            "GET",
            &format!("/sdk/approvals/{id}/result"),
            Value::Null,
        )
        .await
        .expect(403, "approval_denied");

    // Past its expiry a request reads expired and no link can approve it.
    let p = c.ask("POST", "/refunds").await;
    let id = p.body["approval_id"].as_str().unwrap().to_string();
    let t = c.links(&id).await.remove(0);
    let (app, aid) = (c.app.app_id.parse().unwrap(), id.parse().unwrap());
    let past =
        portcullis::model::rfc3339(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
    c.env
        .ctx
        .store
        .transact(vec![portcullis::store::Write::Update {
            key: portcullis::store::keys::approval(app, aid),
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
    assert_eq!(c.status(&id).await["status"], "expired");
    let (status, body) = c.decide_by_link(&t, "approve").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("approval_expired"))
    );
    assert_eq!(c.up.hits(), 0);
}

#[tokio::test]
async fn polling_waits_for_a_decision_and_stays_within_bounds() {
    let c = case(json!({})).await;
    let p = c.ask("DELETE", "/thing").await;
    let id = p.body["approval_id"].as_str().unwrap().to_string();
    let t = c.links(&id).await.remove(0);
    c.app
        .sdk(
            c.env,
            "GET",
            &format!("/sdk/approvals/{id}?wait=26"),
            Value::Null,
        )
        .await
        .expect(422, "validation_error");
    let started = std::time::Instant::now();
    let decide_later = async {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        c.decide_by_link(&t, "approve").await
    };
    let wait_path = format!("/sdk/approvals/{id}?wait=10");
    let (waited, decided) = tokio::join!(
        c.app.sdk(c.env, "GET", &wait_path, Value::Null),
        decide_later
    );
    assert_eq!(decided.0, 200);
    assert_eq!(waited.ok()["status"], "executed");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(9),
        "it answered on the change"
    );
    // Another app's key, or a made-up ID: the same 404.
    let other = app_fixture().await;
    let foreign = other
        .sdk(c.env, "GET", &format!("/sdk/approvals/{id}"), Value::Null)
        .await;
    let missing = other
        .sdk(
            c.env,
            "GET",
            &format!("/sdk/approvals/{}", uuid::Uuid::new_v4()),
            Value::Null,
        )
        .await;
    foreign.expect(404, "approval_not_found");
    assert_eq!(foreign.body, missing.body);
}

#[tokio::test]
async fn each_gate_needs_its_own_approver_and_big_answers_still_complete() {
    let c = case(json!({"approvers": 2})).await;
    let p = c.ask("GET", "/big").await;
    let id = p.body["approval_id"].as_str().unwrap().to_string();
    let decide = format!("/v1/apps/{}/approvals/{id}/decide", c.app.app_id);
    let approve = json!({"decision": "approve"});
    c.app
        .org
        .op(c.env, "POST", &decide, approve.clone())
        .await
        .ok();
    // The same operator cannot fill the second gate too.
    c.app
        .org
        .op(c.env, "POST", &decide, approve)
        .await
        .expect(409, "approver_already_decided");
    let t = c.links(&id).await.remove(0);
    assert_eq!(c.decide_by_link(&t, "approve").await.0, 200);
    // A 5 MB answer is kept cut to what a record holds, and says so.
    assert_eq!(c.status(&id).await["status"], "executed");
    let r = c
        .app
        .sdk(
            c.env,
            "GET",
            &format!("/sdk/approvals/{id}/result"),
            Value::Null,
        )
        .await;
    assert_eq!(r.ok()["body_truncated"], true);
}

#[tokio::test]
async fn a_suspended_agents_queued_call_is_not_made() {
    let c = case(json!({})).await;
    let created = c
        .app
        .sdk(
            c.env,
            "POST",
            "/sdk/agents",
            json!({"name": "queued", "type": "agent", "scopes": {}, "metadata": {}}),
        )
        .await;
    let agent = created.body["id"].as_str().unwrap().to_string();
    let body = json!({"grant_id": c.grant, "method": "POST", "url": format!("{}/pay", c.up.url)});
    let p = c
        .env
        .send(signed_as(
            &c.app.key,
            "POST",
            "/sdk/proxy",
            &body,
            &agent,
            "agent",
        ))
        .await;
    assert_eq!(p.status, 202, "{}", p.body);
    let id = p.body["approval_id"].as_str().unwrap().to_string();
    c.app
        .sdk(
            c.env,
            "PATCH",
            &format!("/sdk/agents/{agent}"),
            json!({"status": "inactive"}),
        )
        .await
        .ok();
    let t = c.links(&id).await.remove(0);
    assert_eq!(c.decide_by_link(&t, "approve").await.0, 200);
    let s = c.status(&id).await;
    assert_eq!(
        (&s["status"], &s["execution_error"]),
        (&json!("failed"), &json!("agent_inactive"))
    );
    assert_eq!(c.up.hits(), 0);
}
