//! What the browser routes of the Connect flow share: the pages' security headers, their
//! JSON answers, and audit rows for requests that carry no API key (the session or `state`
//! names the app instead).

use portcullis::audit::AuditEvent;
use portcullis::model::rfc3339;
use portcullis::store::{Item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse};
use uuid::Uuid;

pub const CONNECT_PAGE: &str = include_str!("../web/connect.html");
pub const RESULT_PAGE: &str = include_str!("../web/result.html");
pub const SIGNIN_PAGE: &str = include_str!("../web/signin.html");
pub const SECRET_CONNECT_PAGE: &str = include_str!("../web/secret-connect.html");
pub const APPROVAL_PAGE: &str = include_str!("../web/approval.html");
/// Inlined into both pages (a CSP nonce covers inline code only).
const PAGE_CSS: &str = include_str!("../web/page.css");
const DELIVER_JS: &str = include_str!("../web/deliver.js");

fn nonce() -> String {
    let mut b = [0u8; 18];
    rand::fill(&mut b);
    hex::encode(b)
}

/// A page with its per-response CSP nonce; `fill` replaces the template's other placeholders.
pub fn page(template: &str, fill: &[(&str, &str)]) -> ApiResponse {
    let nonce = nonce();
    let mut html = template
        .replace("__PAGE_CSS__", PAGE_CSS)
        .replace("__DELIVER_JS__", DELIVER_JS)
        .replace("__NONCE__", &nonce);
    for (placeholder, value) in fill {
        html = html.replace(placeholder, value);
    }
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    ApiResponse::html(html)
        .header("content-security-policy", &csp)
        .header("referrer-policy", "no-referrer")
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-store")
}

/// JSON for a `<script type="application/json">` block: `<` escaped so no `</script>` or
/// comment opener can end the block early.
pub fn script_json(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

pub fn json(v: &serde_json::Value) -> ApiResponse {
    ApiResponse::ok(v).header("cache-control", "no-store")
}

pub fn error(e: &ApiError) -> ApiResponse {
    ApiResponse::error(e).header("cache-control", "no-store")
}

/// The audit row of a browser request against one app's Connect session.
pub fn audit_row(
    req: &ApiRequest,
    app: Uuid,
    action: &str,
    status: u16,
    error_code: Option<&str>,
    session_ref: &str,
    detail: Option<serde_json::Value>,
) -> Item {
    let event = AuditEvent {
        request_id: req.request_id.clone(),
        time: rfc3339(req.received_at),
        app_id: Some(app.to_string()),
        action: action.to_string(),
        outcome: AuditEvent::outcome_for(status).to_string(),
        status,
        error_code: error_code.map(String::from),
        principal_type: Some("end_user".into()),
        resource_type: Some("connect_session".into()),
        resource_id: Some(session_ref.to_string()),
        grant_id: detail
            .as_ref()
            .and_then(|d| d["grant_id"].as_str())
            .map(String::from),
        detail,
        latency_ms: req.received.elapsed().as_millis() as u64,
        client_ip: req.source_ip.map(|ip| ip.to_string()),
        user_agent: req.user_agent(),
        ..Default::default()
    };
    event.to_item(&keys::app_partition(app), req.received_at)
}

/// A browser session's new state, written only while it is still pending (a replayed or raced
/// step then changes nothing).
pub fn while_pending(item: Item) -> portcullis::store::Write {
    use portcullis::store::{Condition, Write};
    Write::Put {
        item,
        condition: Some(Condition::new("#s = :pending").name("#s", "status").value(
            ":pending",
            aws_sdk_dynamodb::types::AttributeValue::S("pending".into()),
        )),
    }
}

/// Ends a pending session in `error` (what the poll then answers), with its audit row. A
/// session that already ended keeps its outcome.
pub async fn end_in_error(
    ctx: &portcullis::Ctx,
    req: &ApiRequest,
    action: &str,
    session: &mut portcullis::model::connect::ConnectSession,
    error: portcullis::model::connect::ConnectError,
) -> Result<(), ApiError> {
    use portcullis::model::connect::ConnectStatus;
    use portcullis::store::{TxError, Write};
    let code = error.error_code.clone();
    session.status = ConnectStatus::Error;
    session.error = Some(error);
    session.attempt = None;
    let writes = vec![
        while_pending(portcullis::oauth::connect::item(session)),
        Write::Put {
            item: audit_row(
                req,
                session.app_id,
                action,
                400,
                Some(&code),
                &session.ref_id,
                None,
            ),
            condition: None,
        },
    ];
    match ctx.store.transact(writes).await {
        Ok(()) | Err(TxError::ConditionFailed(_)) => Ok(()),
        Err(TxError::Unavailable(e)) => Err(e),
    }
}
