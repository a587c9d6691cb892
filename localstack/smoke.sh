#!/usr/bin/env bash
# The smoke call after a deploy, through the API alone: bootstrap an organisation with the
# root secret, create an app, a key and a bearer secret granted to the app (operator CLI),
# then retrieve it with the official alter-sdk (App.request: /sdk/token, the call, then
# /sdk/oauth/audit/api-call) and list the app's grants (/sdk/grants/list).
#
#   localstack/smoke.sh API_URL
# The root secret: PORTCULLIS_ROOT_SECRET, or PORTCULLIS_ROOT_SECRET_ARN (the stack's
# RootSecretArn output), read from Secrets Manager at AWS_ENDPOINT_URL.
# `make test` runs it against the Lambda functions under cargo lambda (scripts/lambda_check.sh).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
url=${1:-${PORTCULLIS_GATEWAY_URL:-}}
[ -n "$url" ] || die "usage: localstack/smoke.sh API_URL"
cli=${PORTCULLIS_CLI:-$ROOT/target/debug/portcullis}
[ -x "$cli" ] || die "build the CLI first: cargo build --bin portcullis"
ensure_venv sdk "$ROOT/scripts/requirements/sdk.txt"
ensure_venv infra "$ROOT/scripts/requirements/infra.txt"
export PORTCULLIS_URL="$url"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

if [ -z "${PORTCULLIS_ROOT_SECRET:-}" ]; then
  [ -n "${PORTCULLIS_ROOT_SECRET_ARN:-}" ] || die "set PORTCULLIS_ROOT_SECRET or PORTCULLIS_ROOT_SECRET_ARN"
  PORTCULLIS_ROOT_SECRET=$("$TOOLS/infra/bin/python" -c '
import boto3, os, sys
sm = boto3.client("secretsmanager", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"), region_name=os.environ.get("AWS_REGION"))
print(sm.get_secret_value(SecretId=sys.argv[1])["SecretString"])' "$PORTCULLIS_ROOT_SECRET_ARN")
fi
export PORTCULLIS_ROOT_SECRET

boot=$("$cli" bootstrap --org-name "Smoke test" --owner-email "smoke@portcullis.local")
export PORTCULLIS_OPERATOR_KEY; PORTCULLIS_OPERATOR_KEY=$(field "['operator_key']['api_key']" <<<"$boot")
app_id=$("$cli" apps create --name "Smoke app" | field "['id']")
app_key=$("$cli" keys create --app "$app_id" --name "smoke key" | field "['api_key']")
token="smoke-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
secret_id=$(printf '{"token":"%s"}' "$token" \
  | "$cli" secrets create --app "$app_id" --name "Smoke echo" --template bearer --allowed-host 127.0.0.1 \
  | field "['id']")
grant_id=$("$cli" grants create --app "$app_id" --secret "$secret_id" --system | field "['grant_id']")

# Under the test command, the secrets scan looks for these too.
if [ -n "${PORTCULLIS_SECRETS_FILE:-}" ]; then
  python3 - "$PORTCULLIS_SECRETS_FILE" "$app_key" "$PORTCULLIS_OPERATOR_KEY" "$token" "$PORTCULLIS_ROOT_SECRET" <<'PY'
import json, pathlib, sys
f = pathlib.Path(sys.argv[1])
known = json.loads(f.read_text()) if f.exists() else []
f.write_text(json.dumps(known + sys.argv[2:]))
PY
fi

"$TOOLS/sdk/bin/python" - "$url" "$app_key" "$grant_id" "$token" "$ROOT/tests/compat/echo_server.py" <<'PY'
import asyncio, os, socket, subprocess, sys, time
url, app_key, grant_id, token, echo = sys.argv[1:]
os.environ["ALTER_BASE_URL"] = url
from alter_sdk import App

with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
server = subprocess.Popen([sys.executable, echo, str(port)])
for _ in range(100):
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0: break
    time.sleep(0.05)

async def main():
    async with App(api_key=app_key, caller="smoke") as app:
        r = await app.request("GET", f"http://127.0.0.1:{port}/smoke", grant_id=grant_id)
        got = r.json()["headers"]["authorization"]
        assert got == f"Bearer {token}", "the retrieved credential is not the stored one"
        grants = await app.list_grants()
        ids = [str(g.grant_id) for g in grants.grants]
        assert grant_id in ids, f"{grant_id} not in {ids}"
try:
    asyncio.run(main())
finally:
    server.terminate()
print(f"smoke: alter-sdk retrieved grant {grant_id} and listed it through {url}")
PY
