#!/usr/bin/env bash
# The demo: two local OpenID Providers on 127.0.0.1:9090 (staff) and :9091 (partners) and
# `wrangler dev` on 127.0.0.1:8787 in front of the demo site in public/. Open
# http://127.0.0.1:8787/, choose a provider and sign in as alice or bob (any password).
# Ctrl-C stops all three.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/setup.sh

# Local secrets for wrangler dev (never deployed): the demo clients' secrets and a cookie key.
# Written again when an older demo's file lacks the two providers' secrets.
if ! grep -q '^PARTNERS_OIDC_CLIENT_SECRET=' .dev.vars 2>/dev/null; then
  {
    echo "STAFF_OIDC_CLIENT_SECRET=portcullis-demo-secret"
    echo "PARTNERS_OIDC_CLIENT_SECRET=portcullis-demo-secret"
    echo "COOKIE_SECRET=$(head -c 32 /dev/urandom | base64)"
  } > .dev.vars
  echo "portcullis: wrote .dev.vars (demo secrets)"
fi

node tests/support/idp.mjs --port 9090 --redirect http://127.0.0.1:8787 --redirect http://localhost:8787 &
staff=$!
node tests/support/idp.mjs --port 9091 --redirect http://127.0.0.1:8787 --redirect http://localhost:8787 &
partners=$!
trap 'kill $staff $partners 2>/dev/null || true' EXIT INT TERM
sleep 1
echo "portcullis: open http://127.0.0.1:8787/ (two providers; users alice or bob, any password)"
wrangler dev --ip 127.0.0.1 --port 8787 --show-interactive-dev-session=false
