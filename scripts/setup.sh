#!/usr/bin/env bash
# Installs everything portcullis needs, and skips what is already there (fast the second
# time). Usage: scripts/setup.sh [--browser]   (--browser adds Debian's chromium for tests)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
step() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null; then
  echo "portcullis: Rust (cargo) is required: https://rustup.rs" >&2; exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "Rust wasm target"; rustup target add wasm32-unknown-unknown
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

if ! worker-build --version 2>/dev/null | grep -qw "$WORKER_BUILD_VERSION"; then
  step "worker-build $WORKER_BUILD_VERSION (a few minutes, once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION"
fi
# wasm-bindgen's CLI must be exactly the library version in Cargo.lock. No --locked: its
# lockfile pins a crate release the registry here does not serve.
WBG=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qw "$WBG"; then
  step "wasm-bindgen-cli $WBG (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "$WBG"
fi

# npm packages: wrangler/workerd, wasm-opt, esbuild, the test provider and browser driver.
stamp=node_modules/.portcullis-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

if [ "${1:-}" = "--browser" ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v wrk >/dev/null || missing+=(wrk)
  # `make bench` counts instructions under callgrind (bench/profile.mjs --instructions).
  [ "${2:-}" != "--bench" ] || command -v valgrind >/dev/null || missing+=(valgrind)
  if [ ${#missing[@]} -gt 0 ]; then
    step "Debian packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
echo "portcullis: toolchain ready"
