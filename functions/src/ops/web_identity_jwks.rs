//! `GET /sdk/identity/apps/{app_id}/jwks.json`: the public key an app's identity assertions
//! are signed with, for verifiers. Public by design, like any issuer's JWKS; an app that has
//! not signed anything yet (or does not exist) publishes an empty set.

use portcullis::idp::assertion::AssertionKey;
use portcullis::store::{from_item, keys};
use portcullis::{ApiRequest, ApiResponse, Ctx};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::Policy::of(&[portcullis::iam::Action::GetItem]);

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        let app = req
            .param("app_id")
            .ok()
            .and_then(|a| Uuid::try_parse(a).ok());
        let key: Option<AssertionKey> = match app {
            None => None,
            Some(app) => match ctx.store.get(&keys::assertion_key(app), false).await {
                Ok(item) => match item.map(from_item).transpose() {
                    Ok(k) => k,
                    Err(e) => return ApiResponse::error(&e),
                },
                Err(e) => return ApiResponse::error(&e),
            },
        };
        let keys: Vec<_> = key.iter().map(AssertionKey::jwk).collect();
        ApiResponse::ok(&json!({ "keys": keys })).header("cache-control", "public, max-age=300")
    })
}
