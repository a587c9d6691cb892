# Shared by the scripts: paths, ports, the local AWS environment, and helpers.
# Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="$ROOT/.portcullis"
TOOLS="$ROOT/.tools"
mkdir -p "$STATE" "$TOOLS"

: "${PORTCULLIS_PORT:=8765}"
: "${MOTO_PORT:=4599}"
: "${ECHO_PORT:=8799}"
: "${OAUTH_PORT:=8798}"
export PORTCULLIS_PORT MOTO_PORT ECHO_PORT OAUTH_PORT

# The local AWS endpoint (moto) unless one is given: LocalStack or AWS work the same way.
USE_MOTO=
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then USE_MOTO=1; fi
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:$MOTO_PORT}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
# Local runs and tests configure OAuth and identity providers on this machine; a deployment
# refuses loopback endpoints (shared/src/service/validate.rs).
export PORTCULLIS_ALLOW_LOOPBACK="${PORTCULLIS_ALLOW_LOOPBACK:-1}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ensure_venv NAME REQUIREMENTS: a project-local venv with exactly the pinned packages;
# rebuilt only when the requirements file changes.
ensure_venv() {
  local name=$1 req=$2 dir="$TOOLS/$1" stamp
  stamp=$(sha256sum "$req" | cut -c1-16)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  log "installing $name tools (pinned in ${req#"$ROOT"/})"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$req"
  echo "$stamp" > "$dir/.stamp"
}

# ensure_npm DIR: DIR/node_modules exactly as DIR/package-lock.json pins it; reinstalled
# only when the lock file changes.
ensure_npm() {
  local dir="$ROOT/$1" stamp
  command -v node >/dev/null || die "Node.js 20 or later is needed for $1 (Debian: apt-get install nodejs npm)"
  stamp=$(sha256sum "$dir/package-lock.json" | cut -c1-16)
  [ "$(cat "$dir/node_modules/.stamp" 2>/dev/null)" = "$stamp" ] && return 0
  log "installing $1 (pinned in $1/package-lock.json)"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
  echo "$stamp" > "$dir/node_modules/.stamp"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 what=$2 i
  for i in $(seq 1 100); do
    port_open "$port" && return 0
    sleep 0.2
  done
  die "$what did not start on port $port (see $STATE/*.log)"
}

# stop_pidfile FILE: stops the process recorded there, if it still runs.
stop_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# The moto server (DynamoDB + KMS), reused if one already answers on the port.
# reset_endpoint: empties the local moto (tables, KMS keys); a real endpoint is left alone.
reset_endpoint() {
  [ -n "$USE_MOTO" ] || return 0
  curl -sf -X POST "http://127.0.0.1:$MOTO_PORT/moto-api/reset" >/dev/null || die "could not reset moto"
}

start_moto() {
  [ -n "$USE_MOTO" ] || { log "using the AWS endpoint $AWS_ENDPOINT_URL"; return 0; }
  ensure_venv moto "$ROOT/scripts/requirements/moto.txt"
  if port_open "$MOTO_PORT"; then
    curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null \
      || die "port $MOTO_PORT is taken by something that is not moto; set MOTO_PORT"
    log "reusing the moto already running on 127.0.0.1:$MOTO_PORT"
    return 0
  fi
  log "starting moto (DynamoDB and KMS) on 127.0.0.1:$MOTO_PORT"
  nohup "$TOOLS/moto/bin/python" "$ROOT/scripts/moto_serial.py" 127.0.0.1 "$MOTO_PORT" > "$STATE/moto.log" 2>&1 &
  echo $! > "$STATE/moto.pid"
  wait_for_port "$MOTO_PORT" moto
}
