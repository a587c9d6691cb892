#!/usr/bin/env bash
# Part of `make test` (and `make bench` with a release binary): the bootstrap, token,
# grants-list and audit operations run as real Lambda functions (the `bootstrap` binary under
# cargo lambda's Runtime API emulator, API Gateway v2 events), behind the routes of
# infra/template.yaml; the LocalStack smoke script runs through them with alter-sdk. Other
# routes go to the local server. The root secret is read from Secrets Manager by ARN, as on AWS.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv infra "$ROOT/scripts/requirements/infra.txt"
ensure_venv sdk "$ROOT/scripts/requirements/sdk.txt"
bin=${PORTCULLIS_BOOTSTRAP_BIN:-$ROOT/target/debug/bootstrap}
[ -x "$bin" ] || die "build the functions first: cargo build --bin bootstrap"
py="$TOOLS/infra/bin/python"

export PORTCULLIS_TABLE="lambda-check-$$"
unset PORTCULLIS_ROOT_SECRET
PORTCULLIS_ROOT_SECRET_ARN=$("$py" - <<'PY'
import boto3, os, secrets
sm = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"])
print(sm.create_secret(Name=f"portcullis-root-{os.getpid()}", SecretString=secrets.token_hex(24))["ARN"])
PY
)
export PORTCULLIS_ROOT_SECRET_ARN

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Logs go where the test command's secrets scan reads them.
logs=${PORTCULLIS_LOGS_DIR:-$STATE}
"$ROOT/target/debug/portcullis-local" --init --addr "127.0.0.1:$port" > "$logs/lambda-check-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
wait_for_port "$port" "the local server"

"$py" tests/lambda/harness.py --bootstrap "$bin" --logs "$logs" \
  --functions op_bootstrap,sdk_token,sdk_grants_list,sdk_audit_api_call \
  --fallback "http://127.0.0.1:$port" -- localstack/smoke.sh
