//! The route table: every operation's name, method and path, and its handler. The Lambda
//! bootstrap, the local server, `infra/` and the consistency test all read this one list.

use crate::ops;
use http::Method;
use portcullis::iam::Policy;
use portcullis::{ApiRequest, ApiResponse, Ctx};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

pub type Handler =
    for<'a> fn(&'a Ctx, ApiRequest) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + 'a>>;

pub struct Route {
    /// Operation name = handler module = Lambda function (`_HANDLER`).
    pub name: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub handler: Handler,
    /// What the operation may do to AWS: its function's IAM policy (`portcullis::iam`).
    pub iam: Policy,
}

macro_rules! routes {
    ($($method:ident $path:literal => $op:ident,)*) => {
        pub static ROUTES: &[Route] = &[
            $(Route { name: stringify!($op), method: Method::$method, path: $path, handler: ops::$op::handle, iam: ops::$op::IAM },)*
        ];
    };
}

routes! {
    // SDK API (alter-sdk compatible).
    POST "/sdk/token" => sdk_token,
    POST "/sdk/proxy" => sdk_proxy,
    POST "/sdk/spans" => sdk_spans,
    // The approver page (browser, unsigned: the gate link's token is the credential); before
    // `/sdk/approvals/{approval_id}`, as the first route that matches wins.
    GET "/sdk/approvals/decide" => web_approval_page,
    GET "/sdk/approvals/{approval_id}" => sdk_approval_get,
    GET "/sdk/approvals/{approval_id}/result" => sdk_approval_result,
    POST "/sdk/approvals/decide/describe" => web_approval_describe,
    POST "/sdk/approvals/decide" => web_approval_decide,
    POST "/sdk/oauth/audit/api-call" => sdk_audit_api_call,
    POST "/sdk/grants/list" => sdk_grants_list,
    POST "/sdk/oauth/grants/{grant_id}/revoke" => sdk_grant_revoke,
    POST "/sdk/grants/{grant_id}/report-scope-mismatch" => sdk_grant_report_scope_mismatch,
    POST "/sdk/grants/{grant_id}/delegate" => sdk_grant_delegate,
    // Before the parameter route: "me" is the calling agent.
    DELETE "/sdk/grants/{grant_id}/delegations/me" => sdk_delegation_revoke_self,
    DELETE "/sdk/grants/{grant_id}/delegations/{agent_id}" => sdk_delegation_revoke,
    POST "/sdk/auth/verify-token" => sdk_auth_verify_token,
    POST "/sdk/auth/session" => sdk_auth_session_create,
    POST "/sdk/auth/poll" => sdk_auth_poll,
    GET "/sdk/auth/callback" => web_auth_callback,
    POST "/sdk/identity/resolve" => sdk_identity_resolve,
    POST "/sdk/identity/assert" => sdk_identity_assert,
    GET "/sdk/identity/apps/{app_id}/jwks.json" => web_identity_jwks,
    GET "/sdk/oauth/provider-catalog" => sdk_provider_catalog,
    GET "/sdk/provider-specs" => sdk_provider_specs_list,
    GET "/sdk/provider-specs/{kind}/{provider_id}" => sdk_provider_spec_get,
    GET "/sdk/provider-specs/{kind}/{provider_id}/operations" => sdk_provider_spec_operations,
    GET "/sdk/provider-specs/{kind}/{provider_id}/operation" => sdk_provider_spec_operation,
    POST "/sdk/oauth/connect/session" => sdk_connect_session_create,
    POST "/sdk/oauth/connect/session/poll" => sdk_connect_session_poll,
    // The hosted Connect pages (browser, unsigned: the session token or `state` is the credential).
    GET "/sdk/oauth/connect" => web_connect_page,
    POST "/sdk/oauth/connect/session/describe" => web_connect_describe,
    POST "/sdk/oauth/connect/authorize" => web_connect_authorize,
    POST "/sdk/oauth/connect/session/cancel" => web_connect_cancel,
    GET "/sdk/oauth/callback" => web_oauth_callback,
    POST "/sdk/managed-secrets/{managed_secret_id}/grants" => sdk_managed_secret_grant_create,
    POST "/sdk/managed-secrets/connect/session" => sdk_secret_connect_session_create,
    // The hosted managed-secret Connect page (browser, unsigned: the session token, and after
    // sign-in the session's browser cookie, are the credentials).
    GET "/sdk/managed-secrets/connect" => web_secret_connect_page,
    POST "/sdk/managed-secrets/connect/describe" => web_secret_connect_describe,
    POST "/sdk/managed-secrets/connect/signin" => web_secret_connect_signin,
    POST "/sdk/managed-secrets/connect/confirm" => web_secret_connect_confirm,
    POST "/sdk/managed-secrets/connect/cancel" => web_secret_connect_cancel,
    GET "/sdk/scopes" => sdk_scopes,
    POST "/sdk/keys/derive" => sdk_key_derive,
    POST "/sdk/keys/{key_id}/rotate" => sdk_key_rotate,
    DELETE "/sdk/keys/{key_id}" => sdk_key_revoke,
    POST "/sdk/agents" => sdk_agent_create,
    GET "/sdk/agents" => sdk_agents_list,
    // Before `/sdk/agents/{agent_id}`: the first route that matches wins.
    GET "/sdk/agents/me" => sdk_agent_me,
    GET "/sdk/agents/{agent_id}" => sdk_agent_get,
    PATCH "/sdk/agents/{agent_id}" => sdk_agent_update,
    DELETE "/sdk/agents/{agent_id}" => sdk_agent_delete,
    POST "/sdk/agents/{agent_id}/keys" => sdk_agent_key_mint,
    GET "/sdk/agents/{agent_id}/keys" => sdk_agent_keys_list,
    PATCH "/sdk/agents/{agent_id}/keys/{key_id}/deprecate" => sdk_agent_key_deprecate,
    PATCH "/sdk/agents/{agent_id}/keys/{key_id}/undeprecate" => sdk_agent_key_undeprecate,
    DELETE "/sdk/agents/{agent_id}/keys/{key_id}" => sdk_agent_key_revoke,
    // Operator API: organisation.
    POST "/v1/bootstrap" => op_bootstrap,
    GET "/v1/org" => op_org_get,
    PATCH "/v1/org" => op_org_update,
    GET "/v1/org/audit" => op_org_audit_query,
    GET "/v1/org/members" => op_members_list,
    POST "/v1/org/members" => op_member_create,
    DELETE "/v1/org/members/{member_id}" => op_member_remove,
    GET "/v1/me/keys" => op_my_keys_list,
    POST "/v1/me/keys" => op_my_key_create,
    DELETE "/v1/me/keys/{key_id}" => op_my_key_revoke,
    // Operator API: apps and what they own.
    GET "/v1/apps" => op_apps_list,
    POST "/v1/apps" => op_app_create,
    GET "/v1/apps/{app_id}" => op_app_get,
    PUT "/v1/apps/{app_id}/policy" => op_app_policy_put,
    GET "/v1/apps/{app_id}/keys" => op_app_keys_list,
    POST "/v1/apps/{app_id}/keys" => op_app_key_create,
    POST "/v1/apps/{app_id}/keys/{key_id}/deprecate" => op_app_key_deprecate,
    POST "/v1/apps/{app_id}/keys/{key_id}/undeprecate" => op_app_key_undeprecate,
    DELETE "/v1/apps/{app_id}/keys/{key_id}" => op_app_key_revoke,
    GET "/v1/apps/{app_id}/secrets" => op_secrets_list,
    POST "/v1/apps/{app_id}/secrets" => op_secret_create,
    GET "/v1/apps/{app_id}/secrets/{secret_id}" => op_secret_get,
    POST "/v1/apps/{app_id}/secrets/{secret_id}/rotate" => op_secret_rotate,
    DELETE "/v1/apps/{app_id}/secrets/{secret_id}" => op_secret_delete,
    POST "/v1/apps/{app_id}/secrets/{secret_id}/grants" => op_grant_create,
    GET "/v1/apps/{app_id}/providers" => op_providers_list,
    GET "/v1/apps/{app_id}/providers/{provider_id}" => op_provider_get,
    PUT "/v1/apps/{app_id}/providers/{provider_id}" => op_provider_put,
    DELETE "/v1/apps/{app_id}/providers/{provider_id}" => op_provider_delete,
    GET "/v1/apps/{app_id}/idp" => op_idp_get,
    PUT "/v1/apps/{app_id}/idp" => op_idp_put,
    DELETE "/v1/apps/{app_id}/idp" => op_idp_delete,
    GET "/v1/apps/{app_id}/grants" => op_grants_list,
    DELETE "/v1/apps/{app_id}/grants/{grant_id}" => op_grant_revoke,
    GET "/v1/apps/{app_id}/audit" => op_audit_query,
    GET "/v1/apps/{app_id}/traces/{trace_id}" => op_trace_get,
    GET "/v1/apps/{app_id}/approvals" => op_approvals_list,
    POST "/v1/apps/{app_id}/approvals/{approval_id}/decide" => op_approval_decide,
}

pub fn by_name(name: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.name == name)
}

impl Route {
    /// Runs the operation, held to its IAM policy as its Lambda function is on AWS.
    pub async fn serve(&'static self, ctx: &Ctx, req: ApiRequest) -> ApiResponse {
        portcullis::iam::scope(self.name, self.iam, (self.handler)(ctx, req)).await
    }

    /// Matches a raw (percent-encoded) path against this route's template; parameters are
    /// decoded. A path with extra leading segments (a stage or function-URL prefix) matches
    /// on its tail, which is how a Lambda behind any front door finds its parameters.
    pub fn match_path(&self, path: &str) -> Option<HashMap<String, String>> {
        let template: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if segments.len() < template.len() {
            return None;
        }
        let tail = &segments[segments.len() - template.len()..];
        let mut params = HashMap::new();
        for (t, s) in template.iter().zip(tail) {
            if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                if s.is_empty() {
                    return None;
                }
                params.insert(name.to_string(), portcullis::signing::unquote(s));
            } else if t != s {
                return None;
            }
        }
        Some(params)
    }

    fn match_exact(&self, path: &str) -> Option<HashMap<String, String>> {
        let depth = |p: &str| p.trim_start_matches('/').split('/').count();
        (depth(self.path) == depth(path))
            .then(|| self.match_path(path))
            .flatten()
    }
}

pub enum Resolved {
    Found(&'static Route, HashMap<String, String>),
    MethodNotAllowed,
    NotFound,
}

/// Finds the route for a method and path (exact match, for the local server).
pub fn resolve(method: &Method, path: &str) -> Resolved {
    let mut path_known = false;
    for r in ROUTES {
        if let Some(params) = r.match_exact(path) {
            if r.method == *method {
                return Resolved::Found(r, params);
            }
            path_known = true;
        }
    }
    if path_known {
        Resolved::MethodNotAllowed
    } else {
        Resolved::NotFound
    }
}

/// Dispatches a request to its operation, or answers 404/405 in the error envelope.
pub async fn dispatch(ctx: &Ctx, mut req: ApiRequest) -> ApiResponse {
    match resolve(&req.method, req.path()) {
        Resolved::Found(route, params) => {
            req.path_params = params;
            route.serve(ctx, req).await
        }
        Resolved::MethodNotAllowed => ApiResponse::error(&portcullis::ApiError::new(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on {}", req.method, req.path()),
        )),
        Resolved::NotFound => {
            ApiResponse::error(&portcullis::ApiError::not_found("route_not_found", "route"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_routes_are_unique() {
        let mut names: Vec<_> = ROUTES.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ROUTES.len());
        let mut keys: Vec<_> = ROUTES.iter().map(|r| (r.method.as_str(), r.path)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), ROUTES.len());
    }

    #[test]
    fn resolves_with_params_and_refuses_unknown() {
        match resolve(&Method::POST, "/sdk/managed-secrets/abc%2Dd/grants") {
            Resolved::Found(r, p) => {
                assert_eq!(r.name, "sdk_managed_secret_grant_create");
                assert_eq!(p["managed_secret_id"], "abc-d");
            }
            _ => panic!("not found"),
        }
        assert!(matches!(
            resolve(&Method::GET, "/sdk/token"),
            Resolved::MethodNotAllowed
        ));
        assert!(matches!(resolve(&Method::GET, "/nope"), Resolved::NotFound));
        assert!(matches!(
            resolve(&Method::POST, "/prefix/sdk/token"),
            Resolved::NotFound
        ));
        let r = by_name("sdk_token").unwrap();
        assert!(r.match_path("/lambda-url/sdk_token/sdk/token").is_some());
    }
}
