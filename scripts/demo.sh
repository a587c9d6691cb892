#!/usr/bin/env bash
# Creates a demo organisation through the operator API (with the CLI) and prints
# .portcullis/demo.json: base_url, app_key, grant_id, app_id, operator_key, echo_url. The app also gets
# the local OAuth provider (make run starts it) as `demo-oauth` and as its identity provider.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cli="$ROOT/target/debug/portcullis"
export PORTCULLIS_URL="http://127.0.0.1:$PORTCULLIS_PORT"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

boot=$("$cli" bootstrap --org-name "Demo organisation" --owner-email "owner@demo.local")
export PORTCULLIS_OPERATOR_KEY; PORTCULLIS_OPERATOR_KEY=$(field "['operator_key']['api_key']" <<<"$boot")
app_id=$("$cli" apps create --name "Demo app" | field "['id']")
app_key=$("$cli" keys create --app "$app_id" --name "demo key (every scope)" | field "['api_key']")
secret_id=$(printf '{"token":"demo-%s"}' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  | "$cli" secrets create --app "$app_id" --name "Echo service" --template bearer \
      --allowed-host 127.0.0.1 --allowed-host localhost | field "['id']")
grant_id=$("$cli" grants create --app "$app_id" --secret "$secret_id" --system | field "['grant_id']")
issuer="http://127.0.0.1:$OAUTH_PORT"
"$cli" providers set --app "$app_id" demo-oauth >/dev/null <<JSON
{"client_id": "portcullis-test", "client_secret": "portcullis-test-secret",
 "scopes": ["read"], "allowed_scopes": ["read", "write"],
 "custom": {"name": "Demo OAuth", "authorize_url": "$issuer/authorize", "token_url": "$issuer/token",
   "revocation_url": "$issuer/revoke", "userinfo_url": "$issuer/userinfo", "account_field": "email",
   "api_base_url": "$issuer", "hosts": ["127.0.0.1"], "scope_separator": " ", "pkce": true,
   "token_auth": "client_secret_basic", "refresh": {"refresh_tokens": true, "rotates": true},
   "default_scopes": ["read"]}}
JSON

# The same local server is the app's identity provider: end users are whoever its tokens name
# (mint one: POST $issuer/control/idp/token), and it runs their sign-in for /sdk/auth/session.
"$cli" idp set --app "$app_id" >/dev/null <<JSON
{"preset": "oidc", "issuer": "$issuer", "audience": "demo-app", "claims": {"groups": "groups"},
 "signin": {"client_id": "portcullis-test", "client_secret": "portcullis-test-secret"}}
JSON

python3 - "$PORTCULLIS_URL" "$app_key" "$grant_id" "$app_id" "$PORTCULLIS_OPERATOR_KEY" "http://127.0.0.1:$ECHO_PORT" <<'PY'
import json, sys
url, app_key, grant_id, app_id, operator_key, echo_url = sys.argv[1:]
print(json.dumps({"base_url": url, "app_key": app_key, "grant_id": grant_id,
                  "app_id": app_id, "operator_key": operator_key, "echo_url": echo_url}, indent=2))
PY
