//! `make bench`: per operation, the DynamoDB calls a request makes, how many of them are
//! sequential round trips, the handler's own CPU time and its wall time against the local
//! endpoint. CPU time is the thread's (`RUSAGE_THREAD`) on a single-threaded runtime, so it
//! counts our code and the SDK clients' work, not the DynamoDB endpoint's.

use portcullis::store::sequential_depth;
use portcullis_functions::routes::dispatch;
use portcullis_tests::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn thread_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a full rusage into the pointer on success.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Row {
    name: &'static str,
    calls: usize,
    depth: usize,
    apis: String,
    cpu_p50: Duration,
    cpu_p99: Duration,
    wall_p50: Duration,
}

async fn measure(
    env: &Env,
    name: &'static str,
    n: usize,
    make: impl Fn() -> portcullis::ApiRequest,
) -> Row {
    eprintln!("measuring {name} ({n} requests)…");
    // Warm the instance caches first, as a warm Lambda would be.
    let warm = dispatch(&env.ctx, make()).await;
    assert!(
        warm.status.is_success(),
        "{name}: {} {}",
        warm.status,
        String::from_utf8_lossy(&warm.body)
    );
    env.ctx.store.calls.drain();
    let (mut cpu, mut wall) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut last_calls = Vec::new();
    for _ in 0..n {
        let req = make();
        let (c0, w0) = (thread_cpu(), Instant::now());
        let r = dispatch(&env.ctx, req).await;
        wall.push(w0.elapsed());
        cpu.push(thread_cpu() - c0);
        assert!(r.status.is_success(), "{name}: {}", r.status);
        last_calls = env.ctx.store.calls.drain();
    }
    cpu.sort();
    wall.sort();
    Row {
        name,
        calls: last_calls.len(),
        depth: sequential_depth(&last_calls),
        apis: last_calls
            .iter()
            .map(|c| c.api)
            .collect::<Vec<_>>()
            .join(" + "),
        cpu_p50: percentile(&cpu, 0.5),
        cpu_p99: percentile(&cpu, 0.99),
        wall_p50: percentile(&wall, 0.5),
    }
}

fn main() {
    // moto copies its state on every transaction, so long runs slow down as the table grows:
    // 200 requests per operation keep the figures stable (`--requests N` to change it).
    let args: Vec<String> = std::env::args().collect();
    let n = match args.iter().position(|a| a == "--requests") {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .expect("--requests N"),
        None if args.iter().any(|a| a == "--quick") => 20,
        None => 200,
    };
    // One thread: every poll of the request runs here, so the thread's CPU is the request's.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let env = env().await;
        let app = env.app().await;
        let sign = |key: &str, method: &str, target: &str, body: &Value| signed_at(key, method, target, &body_bytes(body), now());
        let token = app.token_body(&app.grant_id);
        let report = json!({"grant_id": app.grant_id, "method": "GET", "url": "http://127.0.0.1/x", "response_status": 200, "response_body": "ok"});
        let ms_grant = format!("/sdk/managed-secrets/{}/grants", app.secret_id);
        // An agent holding a grant of the same secret, and a key under a (generous) rate limit.
        let slug = app.org.op(env, "GET", &format!("/v1/apps/{}/secrets/{}", app.app_id, app.secret_id), Value::Null).await.body["slug"].clone();
        let agent = app.sdk(env, "POST", "/sdk/agents", json!({"name": "bench-agent", "scopes": {"managed_secret_slugs": [slug]}})).await.body;
        let agent_key = agent["api_key"].as_str().expect("agent key").to_string();
        let agent_grant = app.org.op(env, "POST", &format!("/v1/apps/{}/secrets/{}/grants", app.app_id, app.secret_id),
            json!({"principal": {"type": "agent", "agent_id": agent["id"]}})).await.body["grant_id"].as_str().expect("grant").to_string();
        let agent_token = app.token_body(&agent_grant);
        let limited = app.org.op(env, "POST", &format!("/v1/apps/{}/keys", app.app_id), json!({"name": "limited", "rate_limit_rpm": 100000})).await.body["api_key"]
            .as_str().expect("limited key").to_string();
        // An OAuth grant made through Connect with the test OAuth server; its token lives an
        // hour, so no measured call refreshes.
        let provider = portcullis_tests::oauth::Provider::start().await;
        app.use_provider(env, &provider, &["read"], json!({})).await.ok();
        let oauth_grant = app.connect(env, &provider).await;
        let oauth_token = json!({"grant_id": oauth_grant, "reason": null, "request": {"method": "GET", "url": format!("{}/api/x", provider.issuer)}});
        // The same provider process as the app's identity provider, and a grant to one user.
        app.use_idp(env, &provider, json!({})).await.ok();
        let user_token = provider.id_token(json!({"sub": "bench-user"})).await;
        let user_grant = app.sdk(env, "POST", &format!("/sdk/managed-secrets/{}/grants", app.secret_id),
            json!({"principal": {"type": "user", "user_token": user_token}})).await.body["grant_id"].as_str().expect("user grant").to_string();
        let mut user_call = app.token_body(&user_grant);
        user_call["user_token"] = json!(user_token);
        let key_fetches = provider.log().await["jwks_requests"].as_u64().unwrap_or(0);
        let rows = vec![
            measure(env, "POST /sdk/token", n, || sign(&app.key, "POST", "/sdk/token", &token)).await,
            measure(env, "POST /sdk/token (OAuth grant)", n, || sign(&app.key, "POST", "/sdk/token", &oauth_token)).await,
            measure(env, "POST /sdk/token (user_token)", n, || sign(&app.key, "POST", "/sdk/token", &user_call)).await,
            measure(env, "POST /sdk/token (agent key)", n, || sign(&agent_key, "POST", "/sdk/token", &agent_token)).await,
            measure(env, "POST /sdk/token (rate-limited key)", n, || sign(&limited, "POST", "/sdk/token", &token)).await,
            measure(env, "POST /sdk/grants/list", n, || sign(&app.key, "POST", "/sdk/grants/list", &json!({"limit": 10}))).await,
            measure(env, "POST /sdk/oauth/audit/api-call", n, || sign(&app.key, "POST", "/sdk/oauth/audit/api-call", &report)).await,
            measure(env, "GET /sdk/scopes", n, || sign(&app.key, "GET", "/sdk/scopes", &Value::Null)).await,
            measure(env, "POST /sdk/managed-secrets/{id}/grants", n.min(100), || {
                sign(&app.key, "POST", &ms_grant, &json!({"principal": {"type": "system"}}))
            })
            .await,
        ];
        println!("\nPortcullis benchmark: {n} requests per operation, in process, against {}", std::env::var("AWS_ENDPOINT_URL").unwrap_or_default());
        println!("(DynamoDB calls and round trips are per request on a warm instance; CPU is the handler's own thread time.)\n");
        println!("{:<40} {:>6} {:>7} {:>12} {:>12} {:>10}  calls", "operation", "calls", "depth", "cpu p50", "cpu p99", "wall p50");
        for r in &rows {
            println!(
                "{:<40} {:>6} {:>7} {:>10.3}ms {:>10.3}ms {:>8.2}ms  {}",
                r.name,
                r.calls,
                r.depth,
                r.cpu_p50.as_secs_f64() * 1e3,
                r.cpu_p99.as_secs_f64() * 1e3,
                r.wall_p50.as_secs_f64() * 1e3,
                r.apis
            );
        }
        let (t, o) = (&rows[0], &rows[1]);
        println!("\ntarget for /sdk/token: ≤ 3 DynamoDB calls and ≤ 2 sequential round trips → {} calls, {} round trips: {}",
            t.calls, t.depth, if t.calls <= 3 && t.depth <= 2 { "met" } else { "NOT MET" });
        let same = (o.calls, o.depth) == (t.calls, t.depth);
        println!("target for an OAuth token without refresh: the managed-secret path's calls and depth → {} calls, {} round trips: {}",
            o.calls, o.depth, if same { "met" } else { "NOT MET" });
        assert!(same, "an OAuth token call costs more DynamoDB work than a managed-secret one");
        let u = &rows[2];
        let fetched = provider.log().await["jwks_requests"].as_u64().unwrap_or(0) - key_fetches;
        let same = (u.calls, u.depth) == (t.calls, t.depth) && fetched == 0;
        println!("target for a user_token call on a warm instance: no added round trip → {} calls, {} round trips, {fetched} IdP key fetches: {}",
            u.calls, u.depth, if same { "met" } else { "NOT MET" });
        assert!(same, "verifying a user token added a round trip");
    });
}
