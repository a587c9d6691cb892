#!/usr/bin/env bash
# `make test`: every test, against real parts: a moto endpoint for DynamoDB and KMS, the
# local server, and the official alter-sdk. Starts what it needs and stops what it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv moto "$ROOT/scripts/requirements/moto.txt"
ensure_venv sdk "$ROOT/scripts/requirements/sdk.txt"
ensure_venv infra "$ROOT/scripts/requirements/infra.txt"
ensure_npm tests/oauth-provider
ensure_npm tests/browser
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || die "the Connect page tests need Chromium (Debian: apt-get install chromium; or set CHROMIUM)"

started_moto=
if ! port_open "$MOTO_PORT"; then started_moto=1; fi
start_moto
cleanup() { [ -n "$started_moto" ] && stop_pidfile "$STATE/moto.pid"; true; }
trap cleanup EXIT

log "format and lint"
cargo fmt --all -- --check
cargo clippy --quiet --all-targets -- -D warnings

log "Rust unit and integration tests (against moto at $AWS_ENDPOINT_URL)"
# The binaries first: tests run the Lambda bootstrap, and the compatibility suite the server and CLI.
cargo build --quiet --bins
cargo test --quiet --workspace --exclude portcullis-tests
cargo test --quiet -p portcullis-tests --lib --bins
# One integration-test binary at a time on an emptied endpoint: moto copies its whole state on
# every transaction, so a suite's leftovers would slow the next one's timing-sensitive cases.
for target in $(sed -n '/^\[\[test\]\]/{n;s/^name = "\(.*\)"/\1/p}' tests/Cargo.toml); do
  reset_endpoint
  cargo test --quiet -p portcullis-tests --test "$target"
done

log "deployment template: cfn-lint (its consistency with the code is the infra test above)"
"$TOOLS/infra/bin/cfn-lint" infra/template.yaml

log "LocalStack init hook, run against the local endpoint"
hook() { PORTCULLIS_TABLE="localstack-hook-$$" "$TOOLS/moto/bin/python" localstack/init/ready.d/10-portcullis.py; }
first=$(hook) && second=$(hook) || die "the LocalStack init hook failed"
printf '%s\n' "$first"
case "$first/$second" in
  *"created table"*/*"table localstack-hook-$$ exists"*) ;;
  *) die "the LocalStack init hook did not create the table once and then find it: $first / $second" ;;
esac

log "LocalStack deploy script, run against the local endpoint (the template through CloudFormation)"
deploy_dir=$(mktemp -d)
# moto runs no function code: a stand-in bootstrap keeps its state small.
printf '#!/bin/sh\necho "moto runs no code" >&2; exit 1\n' > "$deploy_dir/bootstrap"
(cd "$deploy_dir" && "$TOOLS/infra/bin/python" -c 'import zipfile; zipfile.ZipFile("b.zip", "w").write("bootstrap")')
localstack/deploy.sh --stack "deploy-check-$$" --zip "$deploy_dir/b.zip" --no-smoke > "$deploy_dir/outputs.json"
"$TOOLS/infra/bin/python" - "deploy-check-$$" "$deploy_dir/outputs.json" <<'PY'
import boto3, json, os, re, sys
aws = boto3.session.Session(region_name=os.environ["AWS_REGION"])
stack, outputs = sys.argv[1], json.load(open(sys.argv[2]))
template = open("infra/template.yaml").read()
declared = len(re.findall(r"Type: AWS::Serverless::Function", template))
cfn, lam = aws.client("cloudformation"), aws.client("lambda")
resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
functions = [r["PhysicalResourceId"] for r in resources if r.get("ResourceType") == "AWS::Lambda::Function"]
roles = {lam.get_function(FunctionName=f)["Configuration"]["Role"] for f in functions}
assert declared == outputs["Functions"] == len(functions) == len(roles), (declared, outputs["Functions"], len(functions), len(roles))
table = outputs["TableName"]
desc = aws.client("dynamodb").describe_table(TableName=table)["Table"]
assert [k["AttributeName"] for k in desc["KeySchema"]] == ["pk", "sk"], desc["KeySchema"]
print(f"deployed {len(functions)} functions, each with its own role, and table {table}")
PY

log "benchmark smoke run (make bench prints the release figures)"
cargo run --quiet -p portcullis-tests --bin bench -- --quick

log "alter-sdk $(grep -i '^alter-sdk==' scripts/requirements/sdk.txt | cut -d= -f3) compatibility suite"
scan_dir=$(mktemp -d)
export PORTCULLIS_SECRETS_FILE="$scan_dir/secrets.json" PORTCULLIS_LOGS_DIR="$scan_dir/logs"
mkdir -p "$PORTCULLIS_LOGS_DIR"
"$TOOLS/sdk/bin/python" -m pytest tests/compat -q -p no:cacheprovider

log "Lambda functions under cargo lambda behind the template's routes; the LocalStack smoke script through them"
scripts/lambda_check.sh

log "secrets scan: table dump and server logs"
"$TOOLS/moto/bin/python" scripts/secret_scan.py --secrets "$PORTCULLIS_SECRETS_FILE" --logs "$PORTCULLIS_LOGS_DIR"
