#!/usr/bin/env bash
# `make test`: every test, against real parts: a moto endpoint for DynamoDB and KMS, the
# local server, and the official alter-sdk. Starts what it needs and stops what it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv moto "$ROOT/scripts/requirements/moto.txt"
ensure_venv sdk "$ROOT/scripts/requirements/sdk.txt"
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
cargo test --quiet --workspace

log "LocalStack init hook, run against the local endpoint"
hook() { PORTCULLIS_TABLE="localstack-hook-$$" "$TOOLS/moto/bin/python" localstack/init/ready.d/10-portcullis.py; }
first=$(hook) && second=$(hook) || die "the LocalStack init hook failed"
printf '%s\n' "$first"
case "$first/$second" in
  *"created table"*/*"table localstack-hook-$$ exists"*) ;;
  *) die "the LocalStack init hook did not create the table once and then find it: $first / $second" ;;
esac

log "benchmark smoke run (make bench prints the release figures)"
cargo run --quiet -p portcullis-tests --bin bench -- --quick

log "alter-sdk $(grep -i '^alter-sdk==' scripts/requirements/sdk.txt | cut -d= -f3) compatibility suite"
scan_dir=$(mktemp -d)
export PORTCULLIS_SECRETS_FILE="$scan_dir/secrets.json" PORTCULLIS_LOGS_DIR="$scan_dir/logs"
mkdir -p "$PORTCULLIS_LOGS_DIR"
"$TOOLS/sdk/bin/python" -m pytest tests/compat -q -p no:cacheprovider

log "secrets scan: table dump and server logs"
"$TOOLS/moto/bin/python" scripts/secret_scan.py --secrets "$PORTCULLIS_SECRETS_FILE" --logs "$PORTCULLIS_LOGS_DIR"
