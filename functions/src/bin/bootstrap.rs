//! The Lambda bootstrap: one binary for every operation, which serves the operation named
//! by the function's handler setting (`_HANDLER`, e.g. `sdk_token`). See docs/packaging.md.

use portcullis_functions::{lambda, routes};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    let name = std::env::var("_HANDLER").or_else(|_| std::env::var("PORTCULLIS_OPERATION"))?;
    let route = routes::by_name(&name).ok_or_else(|| format!("no operation named {name:?}"))?;
    let ctx: &'static portcullis::Ctx = Box::leak(Box::new(portcullis::Ctx::from_env().await));
    lambda::serve(route, ctx).await
}
