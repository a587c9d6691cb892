//! API Gateway (HTTP API, payload v2) → `ApiRequest` → operation → API Gateway response.

use crate::metrics;
use crate::routes::Route;
use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use portcullis::http::MAX_BODY;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use std::time::Instant;

pub fn to_api_request(event: Request, route: &Route) -> Result<ApiRequest, ApiError> {
    let source_ip = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => {
            c.http.source_ip.as_deref().and_then(|ip| ip.parse().ok())
        }
        _ => None,
    };
    let (request_id, public_base) = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => (c.request_id.clone(), public_base(c)),
        _ => (None, None),
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
    req.public_base = public_base;
    if let Some(id) = request_id {
        req.request_id = id;
    }
    req.path_params = route
        .match_path(req.path())
        .ok_or_else(|| ApiError::not_found("route_not_found", "route"))?;
    Ok(req)
}

/// `https://{domain}` plus the stage, unless it is the default one.
fn public_base(
    c: &lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext,
) -> Option<String> {
    let domain = c.domain_name.as_deref().filter(|d| !d.is_empty())?;
    match c.stage.as_deref() {
        None | Some("$default") | Some("") => Some(format!("https://{domain}")),
        Some(stage) => Some(format!("https://{domain}/{stage}")),
    }
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

/// Serves one operation as a Lambda function until the runtime stops it. After each request
/// it prints the request's metrics line (the instance serves one request at a time, so the
/// store's call log holds exactly this request's DynamoDB calls).
pub async fn serve(route: &'static Route, ctx: &'static Ctx) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(move |event: Request| async move {
        let started = Instant::now();
        ctx.store.calls.drain();
        let response = match to_api_request(event, route) {
            Ok(req) => route.serve(ctx, req).await,
            Err(e) => ApiResponse::error(&e),
        };
        println!(
            "{}",
            metrics::emf_line(&metrics::Sample {
                operation: route.name,
                status: response.status.as_u16(),
                latency: started.elapsed(),
                dynamodb_calls: ctx.store.calls.drain().len(),
            })
        );
        Ok::<_, lambda_http::Error>(to_lambda_response(response))
    }))
    .await
}
