#!/usr/bin/env bash
# The demo: two local OpenID Providers on 127.0.0.1:9090 (staff) and :9091 (partners) and
# `wrangler dev` on 127.0.0.1:8787 in front of the demo site in public/. Open
# http://127.0.0.1:8787/, choose a provider and sign in as alice or bob (any password).
# Ctrl-C stops all three. It needs no terminal: under nohup, in a container or with stdin
# closed it runs the same. DEMO_PORT, DEMO_STAFF_PORT and DEMO_PARTNERS_PORT move the ports.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
# Without a terminal (stdin closed or a pipe at its end), nothing may read or probe stdin.
[ -t 0 ] || exec </dev/null
port="${DEMO_PORT:-8787}"
staff_port="${DEMO_STAFF_PORT:-9090}"
partners_port="${DEMO_PARTNERS_PORT:-9091}"
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

origins=(--redirect "http://127.0.0.1:$port" --redirect "http://localhost:$port")
node tests/support/idp.mjs --port "$staff_port" --callback-id staff "${origins[@]}" &
staff=$!
node tests/support/idp.mjs --port "$partners_port" --callback-id partners "${origins[@]}" &
partners=$!
trap 'kill $staff $partners 2>/dev/null || true' EXIT INT TERM
sleep 1
# The issuers in wrangler.toml name the default ports; other ports override them.
vars=()
if [ "$staff_port" != 9090 ] || [ "$partners_port" != 9091 ]; then
  vars=(--var "STAFF_OIDC_ISSUER:http://127.0.0.1:$staff_port" --var "PARTNERS_OIDC_ISSUER:http://127.0.0.1:$partners_port")
fi
echo "portcullis: open http://127.0.0.1:$port/ (two providers; users alice or bob, any password)"
# Not exec: the trap stops the providers when wrangler ends.
wrangler dev --ip 127.0.0.1 --port "$port" --show-interactive-dev-session=false "${vars[@]}"
