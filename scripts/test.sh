#!/usr/bin/env bash
# Every test: formatting, lints (host and wasm), host unit tests, the release build, the
# deploy bundle, end-to-end tests in workerd against a real OpenID Provider, and a real
# browser. Installs what it needs first (fast when already installed).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
start=$(date +%s)
step() { printf '\n== %s\n' "$*"; }

bash scripts/setup.sh --browser

step "cargo fmt --check"
cargo fmt --all -- --check
step "clippy (host)"
cargo clippy --all-targets -- -D warnings
step "clippy (wasm32)"
cargo clippy --target wasm32-unknown-unknown -- -D warnings
step "unit tests (host)"
cargo test --quiet
step "release build"
rm -rf build
bash scripts/build.sh > /tmp/portcullis-build.log 2>&1 || { cat /tmp/portcullis-build.log >&2; echo "build failed" >&2; exit 1; }
grep -iE '^(warning|error)' /tmp/portcullis-build.log && { echo "the build has warnings" >&2; exit 1; }
step "wrangler deploy --dry-run"
rm -rf dist
wrangler deploy --dry-run --outdir dist > /tmp/portcullis-deploy.log 2>&1 || { cat /tmp/portcullis-deploy.log >&2; exit 1; }
grep -E 'Total Upload' /tmp/portcullis-deploy.log
[ -f dist/index.js ] || { echo "deploy dry-run produced no bundle" >&2; exit 1; }
step "end-to-end (workerd + oidc-provider)"
node --test --test-concurrency=1 --test-timeout=300000 tests/e2e/
step "browser (headless chromium)"
node --test --test-concurrency=1 --test-timeout=300000 tests/browser/

wasm=build/index_bg.wasm
printf '\n== done in %ss; wasm %s bytes raw, %s bytes gzip\n' "$(( $(date +%s) - start ))" "$(stat -c %s $wasm)" "$(gzip -9c $wasm | wc -c)"
