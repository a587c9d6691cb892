//! Proxy mode's call: the request a caller asks Portcullis to make (checked as it arrives) and
//! its execution with the grant's credential — now (`/sdk/proxy`) or once approved
//! (approvals). Only to the grant's hosts, only to public addresses (checked after DNS, and
//! again by the client on connect), no redirects followed, bounded in time and size. What
//! the audit row keeps of the exchange has sensitive headers dropped, bodies capped and the
//! credential redacted.

use base64::Engine;
use portcullis::model::secret::host_allowed;
use portcullis::model::{Grant, GrantKind};
use portcullis::oauth::refresh;
use portcullis::outbound::{self, Refusal};
use portcullis::service::{grants, secrets, token};
use portcullis::store::{Item, from_item};
use portcullis::{ApiError, Ctx, wire};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Instant;
use time::OffsetDateTime;

/// Caller headers the credential, or the proxy itself, owns (spec §7.4), refused with 422.
const FORBIDDEN: &[&str] = &[
    "host",
    "authorization",
    "proxy-authorization",
    "authentication",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-amz-security-token",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-goog-authorization",
    "x-goog-iam-authorization-token",
    "x-stripe-account",
    "x-shopify-access-token",
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
    // The connection's own framing.
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "proxy-connection",
    // Headers front ends use to reroute a request, around method and endpoint rules.
    "forwarded",
    "x-original-url",
    "x-rewrite-url",
    "x-original-method",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The longest URL sent upstream, query included (what the hosted product's client sends).
const MAX_URL: usize = 65_536;

/// A call as the caller asked for it, checked: method, full URL (query merged), headers,
/// JSON body. Stored as is while it waits for approval (it holds no credential).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outgoing {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, with = "portcullis::model::json_text")]
    pub body: Option<Value>,
}

impl Outgoing {
    pub fn new(
        method_raw: &str,
        url: &str,
        query: Option<&Map<String, Value>>,
        headers: BTreeMap<String, String>,
        body: Option<Value>,
    ) -> Result<Outgoing, ApiError> {
        Ok(Outgoing {
            method: method(method_raw)?,
            headers: caller_headers(headers)?,
            url: with_query(url, query)?,
            body,
        })
    }
}

/// Makes the call with the grant's credential: the answer (`ApprovalResult` without an
/// approval) and what the audit row keeps of the exchange (`None` when nothing was sent).
pub async fn execute(
    ctx: &Ctx,
    grant: &Grant,
    credential: Option<Item>,
    secret: Option<Item>,
    out: &Outgoing,
    request_id: &str,
) -> (Result<Value, ApiError>, Option<Value>) {
    let host = match portcullis::destination::host_of(&out.url) {
        Ok(h) => h,
        Err(e) => return (Err(e), None),
    };
    let injected = match inject(ctx, request_id, grant, credential, secret, &host).await {
        Ok(i) => i,
        Err(e) => return (Err(e), None),
    };
    // The credential's own header is the credential's: a caller's copy is refused, never sent
    // alongside it.
    if let Attach::Header { name, .. } = &injected.attach
        && out.headers.contains_key(&name.to_ascii_lowercase())
    {
        let e = ApiError::new(
            http::StatusCode::UNPROCESSABLE_ENTITY,
            "forbidden_header",
            format!(
                "`{}` carries this grant's credential: Portcullis sets it",
                name.to_ascii_lowercase()
            ),
        );
        return (Err(e), None);
    }
    // A credential never travels in the clear (local runs may call this machine over http).
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if out.url.starts_with("http://")
        && !(loopback && portcullis::service::validate::loopback_allowed())
    {
        return (
            Err(blocked(
                &host,
                request_id,
                "credentials are only sent over https",
            )),
            None,
        );
    }
    let Ok(mut parsed) = url::Url::parse(&out.url) else {
        return (Err(ApiError::validation("`url` does not parse")), None);
    };
    if let Attach::Query { name, value } = &injected.attach {
        // The credential's parameter is the credential's: a caller's own is refused.
        if parsed.query_pairs().any(|(k, _)| k == name.as_str()) {
            let e = ApiError::new(
                http::StatusCode::UNPROCESSABLE_ENTITY,
                "forbidden_query_param",
                format!("`{name}` carries this grant's credential: Portcullis sets it"),
            );
            return (Err(e), None);
        }
        parsed.query_pairs_mut().append_pair(name, value);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    match outbound::check(&host, port).await {
        Ok(()) => {}
        Err(Refusal::Internal) => {
            let why = "it is, or resolves to, an internal address";
            return (Err(blocked(&host, request_id, why)), None);
        }
        Err(Refusal::Unresolvable) => {
            return (
                Err(blocked(&host, request_id, "the name does not resolve")),
                None,
            );
        }
    }
    let Ok(verb) = http::Method::from_bytes(out.method.as_bytes()) else {
        return (Err(ApiError::internal()), None);
    };
    let mut request = outbound::client().request(verb, parsed);
    for (name, value) in &out.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let payload = out
        .body
        .as_ref()
        .map(|b| serde_json::to_vec(b).expect("JSON values serialise"))
        .unwrap_or_default();
    if out.body.is_some() {
        if !out.headers.contains_key("content-type") {
            request = request.header("content-type", "application/json");
        }
        request = request.body(payload.clone());
    }
    match &injected.attach {
        Attach::Header { name, value } => {
            request = request.header(name.as_str(), value.as_str());
        }
        Attach::Query { .. } => {}
        Attach::Aws {
            region,
            service,
            value,
        } => match sigv4_headers(out, &payload, region, service, value) {
            Ok(headers) => {
                for (name, value) in headers {
                    request = request.header(name, value);
                }
            }
            Err(e) => return (Err(e), None),
        },
    }
    let started = Instant::now();
    let sent = request.send().await;
    let mut exchange = json!({
        "kind": "proxy",
        "method": out.method,
        "url": out.url.chars().take(2048).collect::<String>(),
        "request_headers": wire::safe_headers(&to_map(&out.headers)),
        "request_body": wire::cap(out.body.clone()),
    });
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            let (status, code, why) = if e.is_timeout() {
                (
                    504,
                    "upstream_timeout",
                    "the upstream API did not answer in time",
                )
            } else {
                (
                    502,
                    "upstream_unreachable",
                    "the upstream API could not be reached",
                )
            };
            exchange["outcome"] = json!("network_error");
            exchange["duration_ms"] = json!(started.elapsed().as_millis() as u64);
            let mut err = ApiError::new(
                http::StatusCode::from_u16(status).expect("status"),
                code,
                why,
            );
            if e.is_timeout() {
                err = err.field("timeout_reason", json!("upstream_timeout"));
            }
            let err = err.field("request_id", json!(request_id));
            return (Err(err), Some(wire::scrub(exchange, &injected.redact)));
        }
    };
    let status = response.status().as_u16();
    let answered_headers = response_headers(response.headers());
    let (bytes, truncated) =
        outbound::read_truncating(response, outbound::MAX_RESPONSE_BYTES).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    exchange["outcome"] = json!(if status < 400 {
        "success"
    } else {
        "provider_error"
    });
    exchange["duration_ms"] = json!(duration_ms);
    exchange["response_status"] = json!(status);
    exchange["response_headers"] = json!(wire::safe_headers(&answered_headers));
    exchange["response_body"] = wire::cap(Some(match std::str::from_utf8(&bytes) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => Value::String(format!("<binary body: {} bytes>", bytes.len())),
    }));
    exchange["response_truncated"] = json!(truncated);
    let answer = json!({
        "status_code": status,
        "headers": answered_headers,
        "body_b64": base64::engine::general_purpose::STANDARD.encode(&bytes),
        "body_truncated": truncated,
        "duration_ms": duration_ms,
        // Set only when a 401/403 is known to come from the credential's shape (the SDK's
        // contract); Portcullis cannot tell, so it never guesses.
        "credential_hint": Value::Null,
        "approval_id": Value::Null,
    });
    (Ok(answer), Some(wire::scrub(exchange, &injected.redact)))
}

/// How the credential goes on the request, and the strings that would reveal it.
struct Injection {
    attach: Attach,
    redact: Vec<String>,
}

enum Attach {
    Header {
        name: String,
        value: String,
    },
    Query {
        name: String,
        value: String,
    },
    /// Signed per request (AWS Signature Version 4).
    Aws {
        region: String,
        service: String,
        value: portcullis::model::SecretValue,
    },
}

/// The SigV4 headers for this exact request (`authorization`, `x-amz-date`, and the session
/// token and payload hash when they apply).
fn sigv4_headers(
    out: &Outgoing,
    payload: &[u8],
    region: &str,
    service: &str,
    value: &portcullis::model::SecretValue,
) -> Result<Vec<(String, String)>, ApiError> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
    };
    let portcullis::model::SecretValue::Aws {
        access_key_id,
        secret_access_key,
        session_token,
    } = value
    else {
        return Err(ApiError::internal());
    };
    let identity = aws_credential_types::Credentials::new(
        access_key_id,
        secret_access_key,
        session_token.clone(),
        None,
        "portcullis",
    )
    .into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|_| ApiError::internal())?
        .into();
    let mut headers: Vec<(&str, &str)> = out
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if !payload.is_empty() && !out.headers.contains_key("content-type") {
        headers.push(("content-type", "application/json"));
    }
    let signable = SignableRequest::new(
        &out.method,
        out.url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(payload),
    )
    .map_err(|_| ApiError::validation("the request cannot be signed for AWS"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|_| ApiError::internal())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The grant's credential for a call to `host` (refused unless `host` is one of the grant's).
async fn inject(
    ctx: &Ctx,
    request_id: &str,
    grant: &Grant,
    credential: Option<Item>,
    secret: Option<Item>,
    host: &str,
) -> Result<Injection, ApiError> {
    match &grant.kind {
        GrantKind::ManagedSecret { .. } => {
            let injected = secrets::injected(ctx, grant, secret, credential)
                .await?
                .ok_or_else(|| grants::credential_erased(grant))?;
            if !host_allowed(&injected.secret.allowed_hosts, host) {
                return Err(blocked(
                    host,
                    request_id,
                    "this secret is limited to its allowed hosts",
                ));
            }
            let redact = wire::with_encodings(wire::revealing(&injected.value));
            if let (
                portcullis::model::Template::QueryParam { param },
                portcullis::model::SecretValue::ApiKey { api_key },
            ) = (&injected.secret.template, &injected.value)
            {
                return Ok(Injection {
                    attach: Attach::Query {
                        name: param.clone(),
                        value: api_key.clone(),
                    },
                    redact,
                });
            }
            if let portcullis::model::Template::AwsSigv4 { region, service } =
                &injected.secret.template
            {
                return Ok(Injection {
                    attach: Attach::Aws {
                        region: region.clone(),
                        service: service.clone(),
                        value: injected.value.clone(),
                    },
                    redact,
                });
            }
            let (name, format, token) =
                token::injection(&injected.secret.template, &injected.value)
                    .ok_or_else(ApiError::internal)?;
            Ok(Injection {
                attach: Attach::Header {
                    name,
                    value: format.replace("{token}", &token),
                },
                redact,
            })
        }
        GrantKind::OAuth { hosts, .. } => {
            if !host_allowed(hosts, host) {
                return Err(blocked(
                    host,
                    request_id,
                    "this provider's token may only be sent to its API hosts",
                ));
            }
            let set = match credential {
                Some(item) => Some(from_item(item)?),
                None => grants::tokens_of(ctx, grant).await?,
            };
            let set = set.ok_or_else(|| grants::credential_erased(grant))?;
            let fresh = refresh::fresh(ctx, grant, set, OffsetDateTime::now_utc()).await?;
            let access = fresh.secret.access_token.clone();
            Ok(Injection {
                attach: Attach::Header {
                    name: "Authorization".into(),
                    value: format!("Bearer {access}"),
                },
                redact: wire::with_encodings(vec![access]),
            })
        }
    }
}

fn blocked(host: &str, request_id: &str, why: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::UNPROCESSABLE_ENTITY,
        "blocked_destination",
        format!("`{host}` is not an allowed destination: {why}"),
    )
    .details(json!({ "host": host, "request_id": request_id }))
}

fn method(raw: &str) -> Result<String, ApiError> {
    let m = raw.to_ascii_uppercase();
    if METHODS.contains(&m.as_str()) {
        Ok(m)
    } else {
        Err(ApiError::validation(format!(
            "`method` must be one of {}",
            METHODS.join(", ")
        )))
    }
}

/// RFC 9110 `tchar`.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The caller's headers, lower-cased and checked: RFC 9110 names, no control characters in
/// values, none that the credential or the connection owns.
fn caller_headers(raw: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    if raw.len() > 100 {
        return Err(ApiError::validation("at most 100 `headers`"));
    }
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        if !is_token(&name) {
            return Err(ApiError::validation(format!(
                "`headers`: `{}` is not a valid header name",
                name.chars().take(64).collect::<String>()
            )));
        }
        let name = name.to_ascii_lowercase();
        if FORBIDDEN.contains(&name.as_str())
            || name.starts_with("proxy-")
            || name.starts_with("x-forwarded-")
        {
            return Err(ApiError::new(
                http::StatusCode::UNPROCESSABLE_ENTITY,
                "forbidden_header",
                format!("`{name}` is set by Portcullis, not by the caller: the credential is attached at execution"),
            )
            .field("header", json!(name)));
        }
        if value.len() > 8192 || value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(ApiError::validation(format!(
                "`headers.{name}` must be at most 8 KiB without control characters"
            )));
        }
        if out.insert(name.clone(), value).is_some() {
            return Err(ApiError::validation(format!(
                "`headers.{name}` is given twice (names are case-insensitive)"
            )));
        }
    }
    Ok(out)
}

/// The URL with `query_params` appended (lists repeat their name); at most 64 KiB in all.
fn with_query(raw: &str, params: Option<&Map<String, Value>>) -> Result<String, ApiError> {
    portcullis::destination::host_of(raw)?;
    let mut url = url::Url::parse(raw).map_err(|_| ApiError::validation("`url` does not parse"))?;
    url.set_fragment(None);
    if let Some(params) = params.filter(|p| !p.is_empty()) {
        let mut q = url.query_pairs_mut();
        for (name, value) in params {
            let values = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for v in values {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => continue,
                    _ => {
                        return Err(ApiError::validation(format!(
                            "`query_params.{name}` must be a string, number, boolean or a list of them"
                        )));
                    }
                };
                q.append_pair(name, &text);
            }
        }
    }
    let url = url.to_string();
    if url.len() > MAX_URL {
        return Err(ApiError::new(
            http::StatusCode::UNPROCESSABLE_ENTITY,
            "query_too_long",
            "the URL with its query parameters is longer than 65536 characters",
        ));
    }
    Ok(url)
}

/// Response headers as the answer carries them: lower-case names, repeated ones joined.
fn response_headers(h: &http::HeaderMap) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for (name, value) in h {
        let Ok(v) = value.to_str() else { continue };
        match out.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(v);
            }
            _ => {
                out.insert(name.as_str().to_string(), Value::String(v.to_string()));
            }
        }
    }
    out
}

fn to_map(h: &BTreeMap<String, String>) -> Map<String, Value> {
    h.iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}
