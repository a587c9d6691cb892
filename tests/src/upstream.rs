//! A third-party API stand-in for proxy mode: a real HTTP server on loopback that echoes what
//! it received and counts the requests, plus routes that redirect, answer big bodies or echo
//! the credential back.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Upstream {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/{*path}", any(answer))
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Upstream { url, hits }
    }

    /// Requests answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn answer(State(hits): State<Arc<AtomicUsize>>, req: Request) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let headers = headers_json(&parts.headers);
    match path.as_str() {
        "/redirect" => (
            StatusCode::FOUND,
            [("location", "http://127.0.0.1:9/elsewhere")],
            "moved",
        )
            .into_response(),
        "/big" => vec![b'x'; 5 * 1024 * 1024].into_response(),
        "/echo-credential" => {
            let auth = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (
                [
                    ("x-echoed-auth", auth.clone()),
                    ("content-type", "application/json".into()),
                ],
                json!({ "you_sent": auth }).to_string(),
            )
                .into_response()
        }
        _ if path.starts_with("/status/") => {
            let code = path[8..].parse().unwrap_or(500);
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "status",
            )
                .into_response()
        }
        _ => (
            [("content-type", "application/json")],
            json!({
                "method": parts.method.as_str(),
                "path": path,
                "query": parts.uri.query(),
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            })
            .to_string(),
        )
            .into_response(),
    }
}

fn headers_json(h: &HeaderMap) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in h {
        out.insert(
            k.as_str().to_string(),
            json!(v.to_str().unwrap_or_default()),
        );
    }
    Value::Object(out)
}
