//! One module per operation. The module name is the operation's name: its route in
//! `routes.rs`, its Lambda function in `infra/`, and the `action` of its audit rows.

macro_rules! handler {
    ($op:ty) => {
        pub fn handle(
            ctx: &portcullis::Ctx,
            req: portcullis::ApiRequest,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = portcullis::ApiResponse> + Send + '_>> {
            Box::pin(portcullis::pipeline::serve::<$op>(ctx, req))
        }
    };
}
pub(crate) use handler;

pub mod common;

pub mod op_app_create;
pub mod op_app_get;
pub mod op_app_key_create;
pub mod op_app_key_deprecate;
pub mod op_app_key_revoke;
pub mod op_app_key_undeprecate;
pub mod op_app_keys_list;
pub mod op_app_policy_put;
pub mod op_approval_decide;
pub mod op_approvals_list;
pub mod op_apps_list;
pub mod op_audit_query;
pub mod op_bootstrap;
pub mod op_grant_create;
pub mod op_grant_revoke;
pub mod op_grants_list;
pub mod op_idp_delete;
pub mod op_idp_get;
pub mod op_idp_put;
pub mod op_member_create;
pub mod op_member_remove;
pub mod op_members_list;
pub mod op_my_key_create;
pub mod op_my_key_revoke;
pub mod op_my_keys_list;
pub mod op_org_audit_query;
pub mod op_org_get;
pub mod op_org_update;
pub mod op_provider_delete;
pub mod op_provider_get;
pub mod op_provider_put;
pub mod op_providers_list;
pub mod op_secret_create;
pub mod op_secret_delete;
pub mod op_secret_get;
pub mod op_secret_rotate;
pub mod op_secrets_list;
pub mod op_trace_get;
pub mod sdk_agent_create;
pub mod sdk_agent_delete;
pub mod sdk_agent_get;
pub mod sdk_agent_key_deprecate;
pub mod sdk_agent_key_mint;
pub mod sdk_agent_key_revoke;
pub mod sdk_agent_key_undeprecate;
pub mod sdk_agent_keys_list;
pub mod sdk_agent_me;
pub mod sdk_agent_update;
pub mod sdk_agents_list;
pub mod sdk_approval_get;
pub mod sdk_approval_result;
pub mod sdk_audit_api_call;
pub mod sdk_auth_poll;
pub mod sdk_auth_session_create;
pub mod sdk_auth_verify_token;
pub mod sdk_connect_session_create;
pub mod sdk_connect_session_poll;
pub mod sdk_delegation_revoke;
pub mod sdk_delegation_revoke_self;
pub mod sdk_grant_delegate;
pub mod sdk_grant_report_scope_mismatch;
pub mod sdk_grant_revoke;
pub mod sdk_grants_list;
pub mod sdk_identity_assert;
pub mod sdk_identity_resolve;
pub mod sdk_key_derive;
pub mod sdk_key_revoke;
pub mod sdk_key_rotate;
pub mod sdk_managed_secret_grant_create;
pub mod sdk_provider_catalog;
pub mod sdk_provider_spec_get;
pub mod sdk_provider_spec_operation;
pub mod sdk_provider_spec_operations;
pub mod sdk_provider_specs_list;
pub mod sdk_proxy;
pub mod sdk_scopes;
pub mod sdk_secret_connect_session_create;
pub mod sdk_spans;
pub mod sdk_token;
pub mod web_approval_decide;
pub mod web_approval_describe;
pub mod web_approval_page;
pub mod web_auth_callback;
pub mod web_connect_authorize;
pub mod web_connect_cancel;
pub mod web_connect_describe;
pub mod web_connect_page;
pub mod web_identity_jwks;
pub mod web_oauth_callback;
pub mod web_secret_connect_cancel;
pub mod web_secret_connect_confirm;
pub mod web_secret_connect_describe;
pub mod web_secret_connect_page;
pub mod web_secret_connect_signin;
