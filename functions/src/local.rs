//! The local HTTP server: every route of the table in one process, for `make run` and tests.
//! It only adapts requests; the operations are the same functions Lambda runs.

use crate::routes;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::Request;
use axum::response::Response;
use portcullis::http::MAX_BODY;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use std::net::SocketAddr;
use std::sync::Arc;

async fn handle(
    State(ctx): State<Arc<Ctx>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response {
    let (parts, body) = req.into_parts();
    let response = match axum::body::to_bytes(body, MAX_BODY).await {
        Err(_) => ApiResponse::error(&ApiError::payload_too_large(MAX_BODY)),
        Ok(bytes) => {
            let target = parts
                .uri
                .path_and_query()
                .map(|pq| pq.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            let mut api = ApiRequest::new(parts.method, target, parts.headers, bytes);
            api.source_ip = Some(peer.ip());
            routes::dispatch(&ctx, api).await
        }
    };
    let mut builder = Response::builder().status(response.status);
    for (name, value) in response.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Body::from(response.body))
        .expect("valid response parts")
}

pub fn router(ctx: Arc<Ctx>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(ctx)
}

/// Serves until the listener closes.
pub async fn serve(listener: tokio::net::TcpListener, ctx: Arc<Ctx>) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(ctx).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
