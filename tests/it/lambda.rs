//! The Lambda side: API Gateway (HTTP API, payload 2.0) events through the adapter, and the
//! real `bootstrap` binary served by a stand-in Lambda Runtime API, timed from process start
//! to its first answer (the cold start).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use portcullis_functions::{lambda, routes};
use portcullis_tests::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An API Gateway HTTP API event for a signed SDK request.
fn event(key: &str, raw_path: &str, body: &Value) -> String {
    let bytes = body_bytes(body);
    let headers: serde_json::Map<String, Value> =
        portcullis::signing::request_headers(key, "POST", raw_path, &bytes, now())
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .chain([("content-type".to_string(), json!("application/json"))])
            .collect();
    json!({
        "version": "2.0",
        "routeKey": "POST /sdk/token",
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": "POST", "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "alter-sdk-python/0.29.0"},
            "requestId": "req-from-apigw-1", "routeKey": "POST /sdk/token", "stage": "$default",
            "time": "03/Dec/2026:10:00:00 +0000", "timeEpoch": 1796292000000u64
        },
        "body": String::from_utf8(bytes).unwrap(),
        "isBase64Encoded": false
    })
    .to_string()
}

#[tokio::test]
async fn api_gateway_events_reach_the_operation_with_source_ip_and_request_id() {
    let env = env().await;
    let app = app_fixture().await;
    let route = routes::by_name("sdk_token").unwrap();
    for path in ["/sdk/token", "/prod/sdk/token"] {
        let request =
            lambda_http::request::from_str(&event(&app.key, path, &app.token_body(&app.grant_id)))
                .expect("event parses");
        let req = lambda::to_api_request(request, route).expect("adapts");
        let response = lambda::to_lambda_response(route.serve(&env.ctx, req).await);
        assert_eq!(response.status(), 200, "{path}");
    }
    let row = &app.audit(env, "action=sdk_token").await[0];
    assert_eq!(row["client_ip"], "203.0.113.7");
    assert_eq!(row["request_id"], "req-from-apigw-1");
}

#[derive(Default)]
struct Runtime {
    event: String,
    served: bool,
    first_poll: Option<Instant>,
    response: Option<(Instant, Value)>,
}

async fn next(State(rt): State<Arc<Mutex<Runtime>>>) -> axum::response::Response {
    let event = {
        let mut rt = rt.lock().unwrap();
        rt.first_poll.get_or_insert_with(Instant::now);
        if rt.served {
            None
        } else {
            rt.served = true;
            Some(rt.event.clone())
        }
    };
    match event {
        Some(body) => axum::response::Response::builder()
            .header("lambda-runtime-aws-request-id", "inv-1")
            .header(
                "lambda-runtime-deadline-ms",
                (now() * 1000 + 30_000).to_string(),
            )
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:SdkToken",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(axum::body::Body::from(body))
            .unwrap(),
        // One invocation is enough: later polls wait until the process is stopped.
        None => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            axum::response::Response::new(axum::body::Body::empty())
        }
    }
}

async fn respond(
    State(rt): State<Arc<Mutex<Runtime>>>,
    Path(_id): Path<String>,
    body: String,
) -> &'static str {
    rt.lock().unwrap().response = Some((
        Instant::now(),
        serde_json::from_str(&body).unwrap_or(Value::Null),
    ));
    "{}"
}

#[tokio::test]
async fn the_bootstrap_binary_serves_a_token_call_as_a_lambda_function() {
    let env = env().await;
    let app = app_fixture().await;
    // `PORTCULLIS_BOOTSTRAP_BIN` measures another build (e.g. target/release/bootstrap).
    let binary = std::env::var_os("PORTCULLIS_BOOTSTRAP_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_exe()
                .unwrap()
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("bootstrap")
        });
    assert!(
        binary.exists(),
        "build it first: cargo build --bin bootstrap ({binary:?})"
    );

    let rt = Arc::new(Mutex::new(Runtime {
        event: event(&app.key, "/sdk/token", &app.token_body(&app.grant_id)),
        ..Default::default()
    }));
    let api = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api).await });

    let started = Instant::now();
    let mut child = tokio::process::Command::new(&binary)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("_HANDLER", "sdk_token")
        .env("AWS_LAMBDA_FUNCTION_NAME", "SdkToken")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("PORTCULLIS_TABLE", env.ctx.store.table_name())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("bootstrap starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (answered, response) = loop {
        if let Some(r) = rt.lock().unwrap().response.clone() {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no answer from the bootstrap binary"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.kill().await.ok();
    assert_eq!(response["statusCode"], 200, "{response}");
    let body = response["body"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_default();
    let decoded = if response["isBase64Encoded"] == true {
        String::from_utf8(base64_decode(&body)).unwrap()
    } else {
        body
    };
    let answer: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(answer["access_token"], app.token);
    let init = rt.lock().unwrap().first_poll.expect("polled") - started;
    println!(
        "cold start of {binary:?}: init (process start → first poll) {init:?}, first answer {:?}",
        answered - started
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
