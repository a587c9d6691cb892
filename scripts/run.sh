#!/usr/bin/env bash
# `make run`: a local Portcullis with a demo organisation, app, key and managed-secret grant.
# Starts (or reuses) moto, replaces any running local server, and leaves both running.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv sdk "$ROOT/scripts/requirements/sdk.txt"
ensure_npm tests/oauth-provider
start_moto

log "building"
cargo build --quiet --bin portcullis-local --bin portcullis

# A root secret for this machine's local runs, kept in .portcullis/ (never committed).
if [ ! -s "$STATE/root-secret" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/root-secret")
fi
export PORTCULLIS_ROOT_SECRET; PORTCULLIS_ROOT_SECRET=$(cat "$STATE/root-secret")

stop_pidfile "$STATE/server.pid"
port_open "$PORTCULLIS_PORT" && die "port $PORTCULLIS_PORT is in use by another program; set PORTCULLIS_PORT"
log "starting Portcullis on 127.0.0.1:$PORTCULLIS_PORT"
nohup "$ROOT/target/debug/portcullis-local" --init --addr "127.0.0.1:$PORTCULLIS_PORT" > "$STATE/server.log" 2>&1 &
echo $! > "$STATE/server.pid"
wait_for_port "$PORTCULLIS_PORT" Portcullis

stop_pidfile "$STATE/echo.pid"
port_open "$ECHO_PORT" && die "port $ECHO_PORT (echo service) is in use by another program; set ECHO_PORT"
nohup "$TOOLS/sdk/bin/python" "$ROOT/tests/compat/echo_server.py" "$ECHO_PORT" > "$STATE/echo.log" 2>&1 &
echo $! > "$STATE/echo.pid"
wait_for_port "$ECHO_PORT" "echo service"

stop_pidfile "$STATE/oauth.pid"
port_open "$OAUTH_PORT" && die "port $OAUTH_PORT (demo OAuth provider) is in use by another program; set OAUTH_PORT"
nohup node "$ROOT/tests/oauth-provider/provider.mjs" --port "$OAUTH_PORT" < /dev/null > "$STATE/oauth.log" 2>&1 &
echo $! > "$STATE/oauth.pid"
wait_for_port "$OAUTH_PORT" "demo OAuth provider"
# Whoever signs in at it is the example's end user, alice (so her Connect pages accept her).
curl -sf -X POST "http://127.0.0.1:$OAUTH_PORT/control/config" -H 'content-type: application/json' \
  -d '{"subject": "alice"}' > /dev/null || die "could not configure the demo OAuth provider"

log "creating the demo organisation, app, key, secret, grant and OAuth provider"
"$ROOT/scripts/demo.sh" > "$STATE/demo.json"
json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$STATE/demo.json" "$1"; }

cat <<MSG

Portcullis is running at http://127.0.0.1:$PORTCULLIS_PORT (logs: .portcullis/server.log)
DynamoDB and KMS are served by moto at $AWS_ENDPOINT_URL: it keeps data only while it runs.
A local echo service (a stand-in third-party API) answers at http://127.0.0.1:$ECHO_PORT
A local OAuth provider ("demo-oauth", approving every consent) runs at http://127.0.0.1:$OAUTH_PORT

  app key   $(json app_key)      (shown once; also in .portcullis/demo.json)
  grant     $(json grant_id)
  operator  export PORTCULLIS_URL=http://127.0.0.1:$PORTCULLIS_PORT PORTCULLIS_OPERATOR_KEY=$(json operator_key)

Try it with the official SDK (installed in .tools/sdk):

.tools/sdk/bin/python - <<'PY'
import asyncio, json, os
demo = json.load(open(".portcullis/demo.json"))
os.environ["ALTER_BASE_URL"] = demo["base_url"]   # before App(): the SDK reads it there
from alter_sdk import App
async def main():
    async with App(api_key=demo["app_key"], caller="readme-example") as app:
        r = await app.request("GET", "http://127.0.0.1:$ECHO_PORT/hello", grant_id=demo["grant_id"])
        print(r.status_code, r.json()["headers"]["authorization"])
asyncio.run(main())
PY

(The SDK warns that http:// is only for local development: expected here.)

Connect an OAuth account: this prints a Connect link; open it in a browser, continue, and the
script sees the new grant and calls the provider's API with its fresh token.

.tools/sdk/bin/python - <<'PY'
import asyncio, json, os
demo = json.load(open(".portcullis/demo.json"))
os.environ["ALTER_BASE_URL"] = demo["base_url"]
from alter_sdk import App
async def main():
    async with App(api_key=demo["app_key"]) as app:
        session = await app.create_connect_session(allowed_providers=["demo-oauth"])
        print("open:", session.connect_url)
        [grant] = await app.poll_connect_session(session.session_token)
        print("connected", grant.account_identifier, "grant", grant.grant_id)
        r = await app.request("GET", "http://127.0.0.1:$OAUTH_PORT/api/me", grant_id=grant.grant_id)
        print(r.status_code, r.json())
asyncio.run(main())
PY

Act for an end user: the local provider is also the app's identity provider (it signs
everyone in as "alice"). Mint a user's token from it, and the app sees only that user's grants
(Connect as them to give them one):

.tools/sdk/bin/python - <<'PY'
import asyncio, json, os, urllib.request
demo = json.load(open(".portcullis/demo.json"))
os.environ["ALTER_BASE_URL"] = demo["base_url"]
from alter_sdk import App
mint = urllib.request.Request("http://127.0.0.1:$OAUTH_PORT/control/idp/token", method="POST",
    data=json.dumps({"claims": {"sub": "alice", "aud": "demo-app", "email": "alice@demo.local"}}).encode(),
    headers={"content-type": "application/json"})
alice = json.load(urllib.request.urlopen(mint))["token"]
async def main():
    async with App(api_key=demo["app_key"], user_token_getter=lambda: alice) as app:
        print(await app.resolve_identity(include_profile=True))
        print("alice's grants:", [g.grant_id for g in (await app.list_grants()).grants])
asyncio.run(main())
PY

Then read the audit log:
  PORTCULLIS_URL=http://127.0.0.1:$PORTCULLIS_PORT PORTCULLIS_OPERATOR_KEY=$(json operator_key) target/debug/portcullis audit --app $(json app_id)

Stop everything with: make stop
MSG
