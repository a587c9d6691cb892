//! Approvals of proxy calls: made when a policy in force asks for them, decided through each
//! gate's link or by an operator, and executed exactly once — by the decision that completes
//! the group, which first claims it (`pending` → `executing`, conditional on the version it
//! read), so a second approval, a retry or many pollers never make the call again.

use crate::proxy::{self, Outgoing};
use portcullis::model::approval::{Approval, ApprovalState, Gate, GateState};
use portcullis::model::{Grant, rfc3339};
use portcullis::pipeline::Call;
use portcullis::policy::ApprovalRule;
use portcullis::service::{approvals, delegations, grants};
use portcullis::store::{TxError, Write, from_item};
use portcullis::{ApiError, ApiRequest, Ctx};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// A new approval for `out` with `grant`: the record and each gate's link.
pub fn create(
    ctx: &Ctx,
    call: &Call<'_>,
    grant: &Grant,
    out: &Outgoing,
    rule: &ApprovalRule,
) -> Result<(Approval, Vec<String>), ApiError> {
    let app = call.caller.app();
    let approval_id = Uuid::new_v4();
    let public = ctx.public_url(call.req)?;
    let mut gates = Vec::new();
    let mut links = Vec::new();
    for n in 0..usize::from(rule.approvers) {
        let (token, token_hash) = approvals::new_token(app, approval_id, n);
        links.push(format!("{public}/sdk/approvals/decide#token={token}"));
        gates.push(Gate {
            approval_id: if n == 0 { approval_id } else { Uuid::new_v4() },
            token_hash,
            status: GateState::Pending,
            decided_at: None,
            decided_by: None,
        });
    }
    let expires_at = call.now + time::Duration::seconds(rule.expires_in_seconds);
    let a = Approval {
        app_id: app,
        approval_id,
        group_id: Uuid::new_v4(),
        status: ApprovalState::Pending,
        gates,
        grant_id: grant.grant_id,
        request: Some(serde_json::to_value(out).expect("calls serialise")),
        reason: call.audit.reason.clone(),
        context: call.audit.context.clone(),
        requested_by: Some(json!({
            "key_prefix": call.audit.key_prefix,
            "agent_id": call.caller.agent.as_ref().map(|a| a.agent_id),
            "agent_name": call.caller.agent.as_ref().map(|a| a.display_name.clone().unwrap_or_else(|| a.name.clone())),
            "caller": call.caller.identity.caller,
        })),
        created_at: call.now,
        expires_at,
        decided_at: None,
        decision_reason: None,
        executed_at: None,
        execution_error: None,
        result: None,
        result_taken: false,
        version: 0,
        ttl: (expires_at + time::Duration::days(30)).unix_timestamp(),
    };
    Ok((a, links))
}

/// What a person deciding sees: who asks, for what call, why, and how far the group is.
pub fn describe(a: &Approval, app_name: &str, gate: usize, now: OffsetDateTime) -> Value {
    let request = a.request.clone().unwrap_or_default();
    let headers = request["headers"]
        .as_object()
        .map(portcullis::wire::safe_headers)
        .unwrap_or_default();
    json!({
        "app": { "name": app_name },
        "status": a.status_at(now),
        "gate": {
            "number": gate + 1,
            "of": a.gates.len(),
            "status": a.gates.get(gate).map(|g| g.status),
        },
        "approved_so_far": a.gates.iter().filter(|g| g.status == GateState::Approved).count(),
        "requested_by": a.requested_by,
        "request": {
            "method": request["method"],
            "url": request["url"],
            "headers": headers,
            "body": portcullis::wire::cap(request.get("body").cloned().filter(|b| !b.is_null())),
        },
        "reason": a.reason,
        "context": a.context,
        "created_at": rfc3339(a.created_at),
        "expires_at": rfc3339(a.expires_at),
    })
}

/// Records a gate's decision; the one that completes the group makes the call. Answers the
/// approval as it now stands and, when the call was made, what the audit keeps of it.
pub async fn decide(
    ctx: &Ctx,
    req: &ApiRequest,
    mut a: Approval,
    gate: usize,
    approve: bool,
    reason: Option<String>,
    decided_by: String,
) -> Result<(Approval, Option<Value>), ApiError> {
    let now = OffsetDateTime::now_utc();
    if let Some(e) = approvals::not_decidable(&a, gate, now) {
        return Err(e);
    }
    let read = a.version;
    a.version += 1;
    let g = &mut a.gates[gate];
    g.status = if approve {
        GateState::Approved
    } else {
        GateState::Denied
    };
    g.decided_at = Some(now);
    g.decided_by = Some(decided_by);
    let complete = a.gates.iter().all(|g| g.status == GateState::Approved);
    if !approve {
        a.status = ApprovalState::Denied;
    } else if complete {
        a.status = ApprovalState::Executing;
    }
    if !approve || complete {
        a.decided_at = Some(now);
        a.decision_reason = reason.map(|r| r.chars().take(1024).collect());
    }
    write(ctx, &a, read).await?;
    if !complete || !approve {
        return Ok((a, None));
    }
    // This decision won the claim: it alone makes the call.
    let (outcome, exchange) = execute(ctx, &a, req.request_id.as_str()).await;
    let claimed = a.version;
    a.version += 1;
    a.executed_at = Some(OffsetDateTime::now_utc());
    match outcome {
        Ok(mut answer) => {
            answer["approval_id"] = json!(a.approval_id);
            let sealed = ctx
                .sealer
                .seal(a.app_id, &a.aad(), answer.to_string().as_bytes())
                .await?;
            a.result = Some(sealed);
            a.status = ApprovalState::Executed;
        }
        Err(e) => {
            a.status = ApprovalState::Failed;
            a.execution_error = Some(e.code.to_string());
        }
    }
    write(ctx, &a, claimed).await?;
    Ok((a, exchange))
}

async fn write(ctx: &Ctx, a: &Approval, read_version: u64) -> Result<(), ApiError> {
    match ctx
        .store
        .transact(vec![approvals::put_over(a, read_version)])
        .await
    {
        Ok(()) => Ok(()),
        Err(TxError::ConditionFailed(_)) => Err(ApiError::conflict(
            "approval_already_decided",
            "this request was decided meanwhile",
        )),
        Err(TxError::Unavailable(e)) => Err(e),
    }
}

/// The approved call, with the grant as it is now: still active, its chain intact.
async fn execute(
    ctx: &Ctx,
    a: &Approval,
    request_id: &str,
) -> (Result<Value, ApiError>, Option<Value>) {
    let loaded = async {
        let keys = grants::prefetch_credential(ctx, a.app_id, a.grant_id);
        let mut items = ctx.store.get_many(&keys).await?.into_iter();
        let grant: Grant = items
            .next()
            .flatten()
            .map(from_item)
            .transpose()?
            .ok_or_else(grants::grant_not_found)?;
        let now = OffsetDateTime::now_utc();
        if grant.status_at(now) != "active" {
            return Err(ApiError::forbidden(
                "grant_revoked",
                "the grant is no longer active",
            ));
        }
        let (mut credential, secret) = (items.next().flatten(), items.next().flatten());
        if grant.delegation.is_some() {
            credential = delegations::check_chain(ctx, &grant, now).await?.credential;
        }
        let out: Outgoing = serde_json::from_value(a.request.clone().unwrap_or_default())
            .map_err(|_| ApiError::internal())?;
        Ok::<_, ApiError>((grant, credential, secret, out))
    };
    match loaded.await {
        Ok((grant, credential, secret, out)) => {
            proxy::execute(ctx, &grant, credential, secret, &out, request_id).await
        }
        Err(e) => (Err(e), None),
    }
}

/// Writes the approval's audit row for a decision made through a link (no key).
pub fn link_audit(
    req: &ApiRequest,
    a: &Approval,
    status: u16,
    code: Option<&str>,
    detail: Value,
) -> Write {
    Write::Put {
        item: crate::web::audit_row(
            req,
            a.app_id,
            "web_approval_decide",
            status,
            code,
            &a.approval_id.to_string(),
            Some(detail),
        ),
        condition: None,
    }
}
