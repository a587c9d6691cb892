//! `GET /sdk/approvals/decide`: the approver page. Static: the link's token stays in the URL
//! fragment and the page's script reads it.

use portcullis::{ApiRequest, ApiResponse, Ctx};
use std::future::Future;
use std::pin::Pin;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::Policy::NONE;

pub fn handle(_: &Ctx, _: ApiRequest) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async { crate::web::page(crate::web::APPROVAL_PAGE, &[]) })
}
