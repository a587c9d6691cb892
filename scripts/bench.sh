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
