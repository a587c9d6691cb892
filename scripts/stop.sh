#!/usr/bin/env bash
# `make stop`: stops what `make run` started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
for p in server echo oauth moto; do stop_pidfile "$STATE/$p.pid"; done
log "stopped"
