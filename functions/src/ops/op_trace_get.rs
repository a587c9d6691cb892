//! `GET /v1/apps/{app_id}/traces/{trace_id}`: the spans agents sent for one trace, by start
//! time (what `X-Alter-Context`'s `run_id` ties to audit rows).

use super::common::{app_in_path, app_of};
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Item, Query, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde_json::{Value, json};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_trace_get";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let trace = call.req.param("trace_id")?.to_string();
        let spans: Vec<Value> = ctx
            .store
            .query_all(Query::partition(keys::span(app_of(call), &trace, "").pk))
            .await?;
        let mut spans: Vec<Value> = spans
            .into_iter()
            .map(|mut s| {
                if let Some(o) = s.as_object_mut() {
                    for k in ["pk", "sk", "ttl"] {
                        o.remove(k);
                    }
                }
                s
            })
            .collect();
        spans.sort_by(|a, b| a["start_time"].as_str().cmp(&b["start_time"].as_str()));
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "trace_id": trace, "spans": spans }),
        )))
    }
}

super::handler!(Op);
