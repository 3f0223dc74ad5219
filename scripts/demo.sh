#!/usr/bin/env bash
# The demo: a local OpenID Provider on 127.0.0.1:9090 and `wrangler dev` on 127.0.0.1:8787 in
# front of the demo site in public/. Open http://127.0.0.1:8787/ and sign in as alice or bob
# (any password). Ctrl-C stops both.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/setup.sh

# Local secrets for wrangler dev (never deployed): the demo client's secret and a cookie key.
if [ ! -f .dev.vars ]; then
  {
    echo "OIDC_CLIENT_SECRET=portcullis-demo-secret"
    echo "COOKIE_SECRET=$(head -c 32 /dev/urandom | base64)"
  } > .dev.vars
  echo "portcullis: wrote .dev.vars (demo secrets)"
fi

node tests/support/idp.mjs --port 9090 --redirect http://127.0.0.1:8787 --redirect http://localhost:8787 &
idp=$!
trap 'kill $idp 2>/dev/null || true' EXIT INT TERM
sleep 1
echo "portcullis: open http://127.0.0.1:8787/ (users alice or bob, any password)"
wrangler dev --ip 127.0.0.1 --port 8787 --show-interactive-dev-session=false
