#!/usr/bin/env bash
# Builds the functions and deploys the whole stack (infra/template.yaml) to LocalStack, then
# makes the smoke call through its API Gateway with alter-sdk (localstack/smoke.sh).
#
#   docker compose -f localstack/docker-compose.yml up -d
#   localstack/deploy.sh [--stack NAME] [--zip PATH] [--no-smoke]
#
# --zip skips the build (any bootstrap zip for this machine's architecture); --no-smoke stops
# after the deploy. AWS_ENDPOINT_URL defaults to LocalStack's http://localhost:4566.
# `make test` runs it against moto with --no-smoke (moto has no API Gateway v2 in
# CloudFormation and runs no Lambda code), so the build-transform-deploy path cannot rot.
set -euo pipefail
export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://localhost:4566}
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
stack=portcullis-local zip= smoke=1
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack=$2; shift 2 ;;
    --zip) zip=$2; shift 2 ;;
    --no-smoke) smoke=; shift ;;
    *) die "usage: localstack/deploy.sh [--stack NAME] [--zip PATH] [--no-smoke]" ;;
  esac
done
# LocalStack runs each function in a container of the host's architecture.
arch=$(uname -m | sed 's/aarch64/arm64/')
ensure_venv infra "$ROOT/scripts/requirements/infra.txt"
if [ -z "$zip" ]; then
  scripts/package.sh "$arch"
  zip=target/lambda/bootstrap/bootstrap.zip
fi
[ -f "$zip" ] || die "no zip at $zip"

log "deploying stack $stack to $AWS_ENDPOINT_URL"
outputs=$("$TOOLS/infra/bin/python" localstack/deploy.py --zip "$zip" --stack "$stack" --architecture "$arch")
echo "$outputs"
output() { python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', ''))" <<<"$outputs"; }
[ -n "$smoke" ] || exit 0

url=$(output LocalApiUrl)
[ -n "$url" ] || die "the stack has no HTTP API: does this LocalStack serve API Gateway v2?"
cargo build --quiet --bin portcullis
PORTCULLIS_ROOT_SECRET_ARN=$(output RootSecretArn) localstack/smoke.sh "$url"
