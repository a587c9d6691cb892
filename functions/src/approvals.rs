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

/// A new approval for `out` with `grant`, its gates' link tokens sealed for operators.
pub async fn create(
    ctx: &Ctx,
    call: &Call<'_>,
    grant: &Grant,
    out: &Outgoing,
    rule: &ApprovalRule,
) -> Result<Approval, ApiError> {
    let app = call.caller.app();
    let approval_id = Uuid::new_v4();
    let mut gates = Vec::new();
    let mut tokens = Vec::new();
    for n in 0..usize::from(rule.approvers) {
        let (token, token_hash) = approvals::new_token(app, approval_id, n);
        tokens.push(token);
        gates.push(Gate {
            approval_id: if n == 0 { approval_id } else { Uuid::new_v4() },
            token_hash,
            status: GateState::Pending,
            decided_at: None,
            decided_by: None,
        });
    }
    let expires_at = call.now + time::Duration::seconds(rule.expires_in_seconds);
    let mut a = Approval {
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
        links: None,
        claimed_at: None,
        result: None,
        result_taken: false,
        version: 0,
        ttl: (expires_at + time::Duration::days(30)).unix_timestamp(),
    };
    let sealed = ctx
        .sealer
        .seal(
            app,
            &a.links_aad(),
            serde_json::to_vec(&tokens).expect("strings").as_slice(),
        )
        .await?;
    a.links = Some(sealed);
    Ok(a)
}

/// The approvers' links of the gates still waiting (operators hand them out).
pub async fn pending_links(ctx: &Ctx, a: &Approval, public: &str) -> Result<Vec<Value>, ApiError> {
    let Some(sealed) = &a.links else {
        return Ok(Vec::new());
    };
    let plain = ctx.sealer.open(a.app_id, &a.links_aad(), sealed).await?;
    let tokens: Vec<String> = serde_json::from_slice(&plain).map_err(|_| ApiError::internal())?;
    Ok(a.gates
        .iter()
        .zip(tokens)
        .enumerate()
        .filter(|(_, (g, _))| g.status == GateState::Pending)
        .map(|(n, (g, t))| {
            json!({"gate": n + 1, "approval_id": g.approval_id,
                   "approval_url": format!("{public}/sdk/approvals/decide#token={t}")})
        })
        .collect())
}

/// What a person deciding sees: who asks, for what call, why, and how far the group is.
pub fn describe(a: &Approval, app_name: &str, gate: usize, now: OffsetDateTime) -> Value {
    let request = a.request.clone().unwrap_or_default();
    // Every header is named; the values of those that may carry secrets are not shown.
    let headers: serde_json::Map<String, Value> = request["headers"]
        .as_object()
        .map(|h| {
            let safe = portcullis::wire::safe_headers(h);
            h.keys()
                .map(|k| {
                    let shown = safe.get(k).cloned().unwrap_or_else(|| json!("[not shown]"));
                    (k.clone(), shown)
                })
                .collect()
        })
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
    // N of N means N people: one operator decides one gate of a request at most.
    if decided_by.starts_with("operator:")
        && a.gates
            .iter()
            .any(|g| g.decided_by.as_deref() == Some(decided_by.as_str()))
    {
        return Err(ApiError::conflict(
            "approver_already_decided",
            "you already decided another approval of this request: each needs its own approver",
        ));
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
        a.claimed_at = Some(now);
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
            keep_small(&mut answer);
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

/// A stored result must fit its record (DynamoDB items are at most 400 KB): a longer body is
/// cut, and says so.
fn keep_small(answer: &mut Value) {
    use base64::Engine;
    const KEEP: usize = 192 * 1024;
    let engine = base64::engine::general_purpose::STANDARD;
    let Some(body) = answer["body_b64"]
        .as_str()
        .and_then(|b| engine.decode(b).ok())
    else {
        return;
    };
    if body.len() > KEEP {
        answer["body_b64"] = json!(engine.encode(&body[..KEEP]));
        answer["body_truncated"] = json!(true);
    }
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
        // An agent that asked must still be active: suspending it stops what it queued.
        let asked_by = a
            .requested_by
            .as_ref()
            .and_then(|r| r["agent_id"].as_str())
            .and_then(|id| Uuid::try_parse(id).ok());
        if let Some(agent) = asked_by {
            let record: Option<portcullis::model::Agent> = ctx
                .store
                .get(&portcullis::store::keys::agent(a.app_id, agent), true)
                .await?
                .map(from_item)
                .transpose()?;
            if !record.is_some_and(|r| r.status == portcullis::model::AgentStatus::Active) {
                return Err(ApiError::forbidden(
                    "agent_inactive",
                    "the agent that asked is no longer active",
                ));
            }
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
