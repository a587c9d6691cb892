#!/usr/bin/env bash
# `make package [ARCH=arm64|x86_64]`: the release bootstrap binary every function ships, built
# by cargo-lambda (from PyPI, with zig as the linker, into .tools/infra) for Amazon Linux 2023,
# zipped at target/lambda/bootstrap/bootstrap.zip. Prints the zip's path and size.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
arch=${1:-${ARCH:-arm64}}
case "$arch" in
  arm64|aarch64) flag=--arm64 target=aarch64-unknown-linux-gnu ;;
  x86_64|amd64) flag=--x86-64 target=x86_64-unknown-linux-gnu ;;
  *) die "ARCH is arm64 or x86_64, not $arch" ;;
esac
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
  die "the Rust target $target is missing: rustup target add $target (or ARCH=$(uname -m | sed s/aarch64/arm64/))"
fi
ensure_venv infra "$ROOT/scripts/requirements/infra.txt"
log "cargo lambda build --release $flag (bootstrap, zipped)"
PATH="$TOOLS/infra/bin:$PATH" "$TOOLS/infra/bin/cargo-lambda" lambda build --release "$flag" \
  --bin bootstrap --output-format zip --quiet
zip=target/lambda/bootstrap/bootstrap.zip
[ -f "$zip" ] || die "cargo lambda did not write $zip"
echo "$zip ($arch): $(( $(stat -c %s "$zip") / 1024 )) KiB zipped"
