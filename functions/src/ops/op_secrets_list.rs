//! `GET /v1/apps/{app_id}/secrets`: the app's managed secrets (metadata only).

use super::common::{app_in_path, app_of};
use portcullis::model::ManagedSecret;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::store::{Item, Query, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde_json::json;
use uuid::Uuid;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_secrets_list";
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
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = Query::index(keys::app_secrets_index(app_of(call)), "gsi1");
            q.start = start.take();
            let page = ctx.store.query(q).await?;
            for item in page.items {
                items.push(views::secret(&from_item::<ManagedSecret>(item)?));
            }
            match page.last_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(Outcome::respond(ApiResponse::ok(
            &json!({ "items": items }),
        )))
    }
}

super::handler!(Op);
