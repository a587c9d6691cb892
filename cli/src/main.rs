//! `portcullis`: the operator API at a terminal. Every request is signed with the operator key
//! in `PORTCULLIS_OPERATOR_KEY`; answers are printed as JSON. See docs/operator-api.md.

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use std::io::Read;
use std::io::Write as _;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Operate a Portcullis deployment"
)]
struct Cli {
    /// Base URL of the Portcullis API.
    #[arg(
        long,
        env = "PORTCULLIS_URL",
        default_value = "http://127.0.0.1:8765",
        global = true
    )]
    url: String,
    /// Operator key (alter_pk_…) of an organisation member.
    #[arg(
        long,
        env = "PORTCULLIS_OPERATOR_KEY",
        hide_env_values = true,
        global = true
    )]
    key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an organisation and its owner with the root secret (PORTCULLIS_ROOT_SECRET).
    Bootstrap {
        #[arg(long)]
        org_name: String,
        #[arg(long)]
        owner_email: String,
        #[arg(long, env = "PORTCULLIS_ROOT_SECRET", hide_env_values = true)]
        root_secret: String,
    },
    /// Show the caller's organisation and membership.
    Org,
    /// Change the organisation's settings (owners).
    OrgSettings {
        #[arg(long)]
        name: Option<String>,
        /// Longest life of a derived key, 1 to 720 hours (default 24).
        #[arg(long)]
        max_derived_key_ttl_hours: Option<u32>,
    },
    /// Organisation members.
    #[command(subcommand)]
    Members(Members),
    /// The calling member's own operator keys.
    #[command(subcommand)]
    MyKeys(MyKeys),
    /// Apps of the organisation.
    #[command(subcommand)]
    Apps(Apps),
    /// App keys (alter_rk_…).
    #[command(subcommand)]
    Keys(Keys),
    /// Managed secrets. Values are read from standard input as JSON, never from arguments.
    #[command(subcommand)]
    Secrets(Secrets),
    /// Grants (OAuth and managed-secret) of an app.
    #[command(subcommand)]
    Grants(Grants),
    /// Proxy calls waiting for approval: list them (with the approvers' links), decide one.
    #[command(subcommand)]
    Approvals(Approvals),
    /// OAuth provider configurations of an app. The configuration, client secret included,
    /// is read as JSON on stdin, never from arguments.
    #[command(subcommand)]
    Providers(Providers),
    /// The identity provider of an app (one per app), which verifies end users' tokens.
    #[command(subcommand)]
    Idp(Idp),
    /// Query an app's audit log (or the organisation's, without --app), newest first.
    Audit(AuditArgs),
}

#[derive(Subcommand)]
enum Members {
    List,
    Add {
        #[arg(long)]
        email: String,
        /// owner, admin or auditor
        #[arg(long)]
        role: String,
    },
    Remove {
        member_id: String,
    },
}

#[derive(Subcommand)]
enum MyKeys {
    List,
    Create {
        #[arg(long)]
        name: Option<String>,
    },
    Revoke {
        key_id: String,
    },
}

#[derive(Subcommand)]
enum Apps {
    List,
    Create {
        #[arg(long)]
        name: String,
    },
    Get {
        app_id: String,
    },
    /// Sets the app's policy document (docs/policies.md) from stdin; `{}` removes it.
    Policy {
        #[command(flatten)]
        app: AppArg,
    },
}

#[derive(Subcommand)]
enum Approvals {
    List {
        #[command(flatten)]
        app: AppArg,
        /// pending, executed, denied, expired, failed, executing
        #[arg(long)]
        status: Option<String>,
    },
    Decide {
        #[command(flatten)]
        app: AppArg,
        approval_id: String,
        /// approve or deny
        #[arg(long)]
        decision: String,
        #[arg(long)]
        reason: Option<String>,
        /// Which gate (1-based); the first undecided one by default.
        #[arg(long)]
        gate: Option<u32>,
    },
}

#[derive(Args)]
struct AppArg {
    /// The app's ID (`portcullis apps list`).
    #[arg(long)]
    app: String,
}

#[derive(Subcommand)]
enum Keys {
    List(AppArg),
    Create {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        name: String,
        /// Repeat for each scope; none means every scope.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        expires_at: Option<String>,
        /// Addresses the key may be used from (repeat), e.g. 203.0.113.0/24.
        #[arg(long = "cidr")]
        cidr_allowlist: Vec<String>,
        /// Requests per minute, 1 to 100000.
        #[arg(long)]
        rate_limit_rpm: Option<u32>,
    },
    Deprecate {
        #[command(flatten)]
        app: AppArg,
        key_id: String,
    },
    Undeprecate {
        #[command(flatten)]
        app: AppArg,
        key_id: String,
    },
    Revoke {
        #[command(flatten)]
        app: AppArg,
        key_id: String,
    },
}

#[derive(Subcommand)]
enum Secrets {
    List(AppArg),
    Get {
        #[command(flatten)]
        app: AppArg,
        secret_id: String,
    },
    /// Reads the value as JSON on stdin: {"token":…}, {"api_key":…} or {"username":…,"password":…}.
    Create {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        name: String,
        /// bearer, api_key or basic
        #[arg(long)]
        template: String,
        /// The header an api_key secret is sent in.
        #[arg(long)]
        header_name: Option<String>,
        /// For `query_param`: the query parameter the key goes in.
        #[arg(long)]
        param_name: Option<String>,
        /// For `aws_sigv4`: the region and service requests are signed for.
        #[arg(long)]
        aws_region: Option<String>,
        #[arg(long)]
        aws_service: Option<String>,
        /// Repeat for each host the secret may be sent to.
        #[arg(long = "allowed-host", required = true)]
        allowed_hosts: Vec<String>,
    },
    /// Reads the new value as JSON on stdin.
    Rotate {
        #[command(flatten)]
        app: AppArg,
        secret_id: String,
    },
    Delete {
        #[command(flatten)]
        app: AppArg,
        secret_id: String,
    },
}

#[derive(Subcommand)]
enum Grants {
    List {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        offset: Option<u32>,
    },
    Create {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        secret: String,
        /// Grant to the app itself.
        #[arg(long, conflicts_with_all = ["user", "agent"])]
        system: bool,
        /// Grant to an app user ID.
        #[arg(long, conflicts_with = "agent")]
        user: Option<String>,
        /// Grant to an agent ID.
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        expires_at: Option<String>,
        /// Read a policy document (docs/policies.md) for the grant from stdin.
        #[arg(long)]
        policy_stdin: bool,
    },
    Revoke {
        #[command(flatten)]
        app: AppArg,
        grant_id: String,
    },
}

#[derive(Subcommand)]
enum Providers {
    List(AppArg),
    Get {
        #[command(flatten)]
        app: AppArg,
        provider_id: String,
    },
    /// Creates or replaces; stdin: {"client_id":…,"client_secret":…,"scopes":[…],…}
    /// (docs/operator-api.md lists every field).
    Set {
        #[command(flatten)]
        app: AppArg,
        provider_id: String,
    },
    Delete {
        #[command(flatten)]
        app: AppArg,
        provider_id: String,
    },
}

#[derive(Subcommand)]
enum Idp {
    Get(AppArg),
    /// Creates or replaces; stdin: {"preset":"auth0","domain":…,"audience":…} or
    /// {"preset":"oidc","issuer":…,"audience":…} (docs/operator-api.md lists every field).
    Set(AppArg),
    Delete(AppArg),
}

#[derive(Args)]
struct AuditArgs {
    /// The app whose log to read; without it, the organisation's own log.
    #[arg(long)]
    app: Option<String>,
    /// Start of the range, RFC 3339 (default: 7 days before --to).
    #[arg(long)]
    from: Option<String>,
    /// End of the range, RFC 3339 (default: now).
    #[arg(long)]
    to: Option<String>,
    /// Only rows of keys with this prefix (e.g. alter_rk_abcde).
    #[arg(long)]
    key_prefix: Option<String>,
    #[arg(long)]
    grant_id: Option<String>,
    #[arg(long)]
    principal_id: Option<String>,
    /// The operation, e.g. sdk_token.
    #[arg(long)]
    action: Option<String>,
    /// success, denied, not_found, invalid or error.
    #[arg(long)]
    outcome: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    #[arg(long)]
    limit: Option<u32>,
    /// The next_cursor of the previous page.
    #[arg(long)]
    cursor: Option<String>,
}

fn stdin_json() -> Result<Value, String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&s).map_err(|e| format!("stdin is not JSON: {e}"))
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// (method, path, body, needs operator key)
fn plan(command: Command) -> Result<(&'static str, String, Option<Value>), String> {
    Ok(match command {
        Command::Bootstrap { .. } => unreachable!("handled separately"),
        Command::Org => ("GET", "/v1/org".into(), None),
        Command::OrgSettings {
            name,
            max_derived_key_ttl_hours,
        } => (
            "PATCH",
            "/v1/org".into(),
            Some(json!({"name": name, "max_derived_key_ttl_hours": max_derived_key_ttl_hours})),
        ),
        Command::Members(m) => match m {
            Members::List => ("GET", "/v1/org/members".into(), None),
            Members::Add { email, role } => (
                "POST",
                "/v1/org/members".into(),
                Some(json!({"email": email, "role": role})),
            ),
            Members::Remove { member_id } => (
                "DELETE",
                format!("/v1/org/members/{}", enc(&member_id)),
                None,
            ),
        },
        Command::MyKeys(k) => match k {
            MyKeys::List => ("GET", "/v1/me/keys".into(), None),
            MyKeys::Create { name } => ("POST", "/v1/me/keys".into(), Some(json!({"name": name}))),
            MyKeys::Revoke { key_id } => ("DELETE", format!("/v1/me/keys/{}", enc(&key_id)), None),
        },
        Command::Apps(a) => match a {
            Apps::List => ("GET", "/v1/apps".into(), None),
            Apps::Create { name } => ("POST", "/v1/apps".into(), Some(json!({"name": name}))),
            Apps::Get { app_id } => ("GET", format!("/v1/apps/{}", enc(&app_id)), None),
            Apps::Policy { app } => (
                "PUT",
                format!("/v1/apps/{}/policy", enc(&app.app)),
                Some(stdin_json()?),
            ),
        },
        Command::Keys(k) => match k {
            Keys::List(a) => ("GET", format!("/v1/apps/{}/keys", enc(&a.app)), None),
            Keys::Create {
                app,
                name,
                scopes,
                expires_at,
                cidr_allowlist,
                rate_limit_rpm,
            } => (
                "POST",
                format!("/v1/apps/{}/keys", enc(&app.app)),
                Some(json!({
                    "name": name,
                    "scopes": if scopes.is_empty() { Value::Null } else { json!(scopes) },
                    "expires_at": expires_at,
                    "cidr_allowlist": if cidr_allowlist.is_empty() { Value::Null } else { json!(cidr_allowlist) },
                    "rate_limit_rpm": rate_limit_rpm,
                })),
            ),
            Keys::Deprecate { app, key_id } => (
                "POST",
                format!("/v1/apps/{}/keys/{}/deprecate", enc(&app.app), enc(&key_id)),
                None,
            ),
            Keys::Undeprecate { app, key_id } => (
                "POST",
                format!(
                    "/v1/apps/{}/keys/{}/undeprecate",
                    enc(&app.app),
                    enc(&key_id)
                ),
                None,
            ),
            Keys::Revoke { app, key_id } => (
                "DELETE",
                format!("/v1/apps/{}/keys/{}", enc(&app.app), enc(&key_id)),
                None,
            ),
        },
        Command::Approvals(a) => match a {
            Approvals::List { app, status } => (
                "GET",
                format!(
                    "/v1/apps/{}/approvals{}",
                    enc(&app.app),
                    status
                        .map(|s| format!("?status={}", enc(&s)))
                        .unwrap_or_default()
                ),
                None,
            ),
            Approvals::Decide {
                app,
                approval_id,
                decision,
                reason,
                gate,
            } => (
                "POST",
                format!(
                    "/v1/apps/{}/approvals/{}/decide",
                    enc(&app.app),
                    enc(&approval_id)
                ),
                Some(json!({"decision": decision, "reason": reason, "gate": gate})),
            ),
        },
        Command::Secrets(s) => match s {
            Secrets::List(a) => ("GET", format!("/v1/apps/{}/secrets", enc(&a.app)), None),
            Secrets::Get { app, secret_id } => (
                "GET",
                format!("/v1/apps/{}/secrets/{}", enc(&app.app), enc(&secret_id)),
                None,
            ),
            Secrets::Create {
                app,
                name,
                template,
                header_name,
                param_name,
                aws_region,
                aws_service,
                allowed_hosts,
            } => (
                "POST",
                format!("/v1/apps/{}/secrets", enc(&app.app)),
                Some(json!({
                    "name": name, "template": template, "header_name": header_name,
                    "param_name": param_name, "aws_region": aws_region, "aws_service": aws_service,
                    "allowed_hosts": allowed_hosts, "value": stdin_json()?,
                })),
            ),
            Secrets::Rotate { app, secret_id } => (
                "POST",
                format!(
                    "/v1/apps/{}/secrets/{}/rotate",
                    enc(&app.app),
                    enc(&secret_id)
                ),
                Some(json!({"value": stdin_json()?})),
            ),
            Secrets::Delete { app, secret_id } => (
                "DELETE",
                format!("/v1/apps/{}/secrets/{}", enc(&app.app), enc(&secret_id)),
                None,
            ),
        },
        Command::Grants(g) => match g {
            Grants::List { app, limit, offset } => {
                let mut q = form_urlencoded::Serializer::new(String::new());
                if let Some(l) = limit {
                    q.append_pair("limit", &l.to_string());
                }
                if let Some(o) = offset {
                    q.append_pair("offset", &o.to_string());
                }
                let q = q.finish();
                let base = format!("/v1/apps/{}/grants", enc(&app.app));
                (
                    "GET",
                    if q.is_empty() {
                        base
                    } else {
                        format!("{base}?{q}")
                    },
                    None,
                )
            }
            Grants::Create {
                app,
                secret,
                system,
                user,
                agent,
                label,
                expires_at,
                policy_stdin,
            } => {
                let policy = if policy_stdin {
                    Some(stdin_json()?)
                } else {
                    None
                };
                let principal = match (system, user, agent) {
                    (true, None, None) => json!({"type": "system"}),
                    (false, Some(u), None) => json!({"type": "user", "app_user_id": u}),
                    (false, None, Some(a)) => json!({"type": "agent", "agent_id": a}),
                    _ => return Err("name the principal: --system, --user ID or --agent ID".into()),
                };
                (
                    "POST",
                    format!("/v1/apps/{}/secrets/{}/grants", enc(&app.app), enc(&secret)),
                    Some(
                        json!({"principal": principal, "label": label, "expires_at": expires_at, "policy": policy}),
                    ),
                )
            }
            Grants::Revoke { app, grant_id } => (
                "DELETE",
                format!("/v1/apps/{}/grants/{}", enc(&app.app), enc(&grant_id)),
                None,
            ),
        },
        Command::Providers(p) => {
            let at = |app: &AppArg, id: &str| {
                format!("/v1/apps/{}/providers/{}", enc(&app.app), enc(id))
            };
            match p {
                Providers::List(a) => ("GET", format!("/v1/apps/{}/providers", enc(&a.app)), None),
                Providers::Get { app, provider_id } => ("GET", at(&app, &provider_id), None),
                Providers::Set { app, provider_id } => {
                    ("PUT", at(&app, &provider_id), Some(stdin_json()?))
                }
                Providers::Delete { app, provider_id } => ("DELETE", at(&app, &provider_id), None),
            }
        }
        Command::Idp(i) => {
            let at = |app: &AppArg| format!("/v1/apps/{}/idp", enc(&app.app));
            match i {
                Idp::Get(a) => ("GET", at(&a), None),
                Idp::Set(a) => ("PUT", at(&a), Some(stdin_json()?)),
                Idp::Delete(a) => ("DELETE", at(&a), None),
            }
        }
        Command::Audit(a) => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("from", a.from),
                ("to", a.to),
                ("key_prefix", a.key_prefix),
                ("grant_id", a.grant_id),
                ("principal_id", a.principal_id),
                ("action", a.action),
                ("outcome", a.outcome),
                ("limit", a.limit.map(|l| l.to_string())),
                ("cursor", a.cursor),
            ] {
                if let Some(v) = v {
                    q.append_pair(k, &v);
                }
            }
            let q = q.finish();
            let base = match a.app {
                Some(app) => format!("/v1/apps/{}/audit", enc(&app)),
                None => "/v1/org/audit".into(),
            };
            (
                "GET",
                if q.is_empty() {
                    base
                } else {
                    format!("{base}?{q}")
                },
                None,
            )
        }
    })
}

/// Drops null fields so optional flags that were not given are not sent.
fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, compact(v)))
                .collect(),
        ),
        other => other,
    }
}

async fn run(cli: Cli) -> Result<Value, String> {
    let client = reqwest::Client::new();
    let base = cli.url.trim_end_matches('/').to_string();
    if let Command::Bootstrap {
        org_name,
        owner_email,
        root_secret,
    } = cli.command
    {
        let resp = client
            .post(format!("{base}/v1/bootstrap"))
            .bearer_auth(root_secret)
            .json(&json!({"org_name": org_name, "owner_email": owner_email}))
            .send()
            .await
            .map_err(|e| format!("cannot reach {base}: {e}"))?;
        return answer(resp).await;
    }
    let key = cli
        .key
        .ok_or("set PORTCULLIS_OPERATOR_KEY (or --key) to an operator key")?;
    let (method, path, body) = plan(cli.command)?;
    let body = body
        .map(|b| serde_json::to_vec(&compact(b)).expect("JSON"))
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut req = client.request(method.parse().expect("method"), format!("{base}{path}"));
    for (name, value) in portcullis::signing::request_headers(&key, method, &path, &body, now) {
        req = req.header(name, value);
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/json").body(body);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("cannot reach {base}: {e}"))?;
    answer(resp).await
}

async fn answer(resp: reqwest::Response) -> Result<Value, String> {
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let value: Value = if text.is_empty() {
        json!({"status": status.as_u16()})
    } else {
        serde_json::from_str(&text).unwrap_or(json!({"raw": text}))
    };
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "HTTP {status}\n{}",
            serde_json::to_string_pretty(&value).unwrap_or(text)
        ))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(v) => {
            // A closed pipe (`| head`) is the reader's choice, not a failure to report.
            let text = serde_json::to_string_pretty(&v).expect("JSON");
            let _ = writeln!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
