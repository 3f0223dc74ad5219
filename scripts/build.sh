#!/usr/bin/env bash
# Builds the release wasm worker into build/ (wrangler.toml's build command).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
for tool in worker-build wasm-bindgen; do
  command -v "$tool" >/dev/null || { echo "portcullis: $tool is missing; run 'make setup' first" >&2; exit 1; }
done
[ -x "$WASM_OPT_BIN" ] || { echo "portcullis: node_modules is missing; run 'make setup' first" >&2; exit 1; }
worker-build --release
# A second -Oz pass after worker-build's (which runs with the names section in): 1.9 KB less
# gzip. The profiling copy (bench/profile.mjs) gets the same pass and keeps the function names.
mkdir -p target/profile
wasm-opt -Oz -g build/index_bg.wasm -o target/profile/index_bg.wasm
# The entry module: worker-build's bundle becomes build/shim.js, and build/index.js calls its
# fetch handler directly (src/runtime/entry.mjs says why).
mv build/index.js build/shim.js
cp src/runtime/entry.mjs build/entry.mjs
esbuild build/entry.mjs --bundle --format=esm --minify --log-level=warning \
  --external:./index_bg.wasm --external:'cloudflare:*' --outfile=build/index.js
rm build/shim.js build/entry.mjs
# Drop the name section (140 KB of function names) that worker-build leaves in. Cargo's
# `strip = true` cannot do it: it also drops the target_features section wasm-bindgen reads.
wasm-opt -Oz --strip-debug --strip-producers build/index_bg.wasm -o build/index_bg.wasm
