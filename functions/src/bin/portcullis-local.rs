//! `portcullis-local`: every operation behind one local HTTP server. With `--init` it first
//! creates the table (from infra/table.json) and the KMS key alias if they are missing.
//! `PORTCULLIS_PUBLIC_URL` defaults to `http://<the bound address>`.

use portcullis::Ctx;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut addr = "127.0.0.1:8765".to_string();
    let mut init = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs host:port")?,
            "--init" => init = true,
            other => {
                return Err(
                    format!("unknown argument {other:?}; use --addr HOST:PORT [--init]").into(),
                );
            }
        }
    }
    let mut ctx = Ctx::from_env().await;
    if init {
        portcullis::setup::ensure(&ctx).await?;
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    // Connect links and the OAuth redirect URI point here unless a proxy in front says otherwise.
    ctx.config
        .public_url
        .get_or_insert_with(|| format!("http://{local}"));
    tracing::info!(addr = %local, public_url = ?ctx.config.public_url, "portcullis listening");
    portcullis_functions::local::serve(listener, Arc::new(ctx)).await?;
    Ok(())
}
