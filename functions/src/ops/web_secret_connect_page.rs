//! `GET /sdk/managed-secrets/connect`: the hosted managed-secret Connect page. Static: the
//! session token stays in the URL fragment (kept in the tab's session storage across the
//! identity provider's round trip) and the page's script reads it.

use portcullis::{ApiRequest, ApiResponse, Ctx};
use std::future::Future;
use std::pin::Pin;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::Policy::NONE;

pub fn handle(_: &Ctx, _: ApiRequest) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async { crate::web::page(crate::web::SECRET_CONNECT_PAGE, &[]) })
}
