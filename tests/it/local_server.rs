//! The local HTTP server adapter: real sockets, peer address, body limits, unknown routes.

use portcullis_tests::*;
use serde_json::Value;
use std::sync::Arc;

async fn server() -> String {
    let env = env().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ctx: Arc<portcullis::Ctx> = env.ctx.clone();
    tokio::spawn(portcullis_functions::local::serve(listener, ctx));
    format!("http://{addr}")
}

#[tokio::test]
async fn serves_signed_calls_and_records_the_peer_address() {
    let env = env().await;
    let app = app_fixture().await;
    let base = server().await;
    let body = body_bytes(&app.token_body(&app.grant_id));
    let mut req = reqwest::Client::new()
        .post(format!("{base}/sdk/token"))
        .body(body.clone());
    for (k, v) in portcullis::signing::request_headers(&app.key, "POST", "/sdk/token", &body, now())
    {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let row = &app.audit(env, "action=sdk_token").await[0];
    assert_eq!(row["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn errors_outside_any_operation_use_the_envelope() {
    let base = server().await;
    let client = reqwest::Client::new();
    let r = client.get(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "route_not_found");
    let big = vec![b'x'; portcullis::http::MAX_BODY + 10];
    let r = client
        .post(format!("{base}/sdk/token"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    let r = client
        .post(format!("{base}/sdk/token"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_key");
}
