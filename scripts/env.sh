# Sourced by the other scripts: where the toolchain lives and what worker-build needs.
# worker-build would download wasm-bindgen, wasm-opt and esbuild from GitHub, which these
# machines cannot reach: point it at the installed ones instead.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
export WRANGLER_SEND_METRICS=false
export WORKER_BUILD_VERSION="0.8.7"
# Local runs use Miniflare's placeholder `request.cf` instead of asking workers.cloudflare.com
# for one (a lookup that fails here and prints a stack trace at every start).
export CLOUDFLARE_CF_FETCH_ENABLED=false
