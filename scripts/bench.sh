#!/usr/bin/env bash
# `make bench`: prints DynamoDB calls, round trips and CPU time per operation (release build).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
started_moto=
port_open "$MOTO_PORT" || started_moto=1
start_moto
trap '[ -n "$started_moto" ] && stop_pidfile "$STATE/moto.pid"; true' EXIT
cargo run --quiet --release -p portcullis-tests --bin bench -- "$@"

# The Lambda functions as deployed: release binary, stripped; cold start per function under
# cargo lambda's runtime emulator (scripts/lambda_check.sh prints them) and the zipped size.
log "release bootstrap: size and cold starts"
cargo build --quiet --release --bin bootstrap
cargo build --quiet --bin portcullis-local --bin portcullis
bin=target/release/bootstrap
python3 - "$bin" "$(uname -m)" <<'PY'
import io, os, sys, zipfile
path, arch = sys.argv[1:]
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.write(path, "bootstrap")
mb = 1024 * 1024
print(f"\nbootstrap ({arch}, stripped release): {os.path.getsize(path) / mb:.1f} MB binary, "
      f"{len(b.getvalue()) / mb:.1f} MB zipped (target: under 8 MB zipped)\n")
PY
PORTCULLIS_BOOTSTRAP_BIN="$ROOT/$bin" scripts/lambda_check.sh
