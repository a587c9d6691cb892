//! API Gateway (HTTP API, payload v2) → `ApiRequest` → operation → API Gateway response.

use crate::routes::Route;
use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use portcullis::http::MAX_BODY;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};

pub fn to_api_request(event: Request, route: &Route) -> Result<ApiRequest, ApiError> {
    let source_ip = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => {
            c.http.source_ip.as_deref().and_then(|ip| ip.parse().ok())
        }
        _ => None,
    };
    let request_id = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        _ => None,
    };
    let (parts, body) = event.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    if body.len() > MAX_BODY {
        return Err(ApiError::payload_too_large(MAX_BODY));
    }
    let target = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut req = ApiRequest::new(parts.method, target, parts.headers, body);
    req.source_ip = source_ip;
    if let Some(id) = request_id {
        req.request_id = id;
    }
    req.path_params = route
        .match_path(req.path())
        .ok_or_else(|| ApiError::not_found("route_not_found", "route"))?;
    Ok(req)
}

pub fn to_lambda_response(r: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder().status(r.status);
    for (name, value) in r.headers {
        builder = builder.header(name, value);
    }
    let body = if r.body.is_empty() {
        Body::Empty
    } else {
        Body::Binary(r.body.to_vec())
    };
    builder.body(body).expect("valid response parts")
}

/// Serves one operation as a Lambda function until the runtime stops it.
pub async fn serve(route: &'static Route, ctx: &'static Ctx) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(move |event: Request| async move {
        let response = match to_api_request(event, route) {
            Ok(req) => (route.handler)(ctx, req).await,
            Err(e) => ApiResponse::error(&e),
        };
        Ok::<_, lambda_http::Error>(to_lambda_response(response))
    }))
    .await
}
