#!/usr/bin/env bash
# Gateway vs nginx vs Caddy vs a bare ReverseProxy as load balancers over the
# same two catalog clones of a running stack (default: the test stack): CPU
# per proxied request with the proxy and the generator on a core each, same
# rates, random order, 3 repeats, median and spread.
#   gateway/bench/run.sh [gatewaybench flags, e.g. -rates 1000,2000 -step 5s -repeats 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE_DIR=${SCALESHOP_STATE_DIR:-$PWD/.state}
STACK=${SCALESHOP_STACK:-$STATE_DIR/test/stack.json}
# The peers: Debian's nginx and Debian's Caddy 2.6 (the best-known Go
# reverse proxy). Debian's caddy package starts no server of its own here.
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v caddy >/dev/null || missing+=(caddy)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]} (Debian) for the comparison"
  apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}" >/dev/null ||
    { apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}" >/dev/null; }
fi
[ -f "$STACK" ] || { echo "no running stack at $STACK: start one with 'stackctl up --profile test --detach'"; exit 1; }
mkdir -p "$STATE_DIR/bin"
go build -o "$STATE_DIR/bin/gateway" ./gateway/cmd/gateway
exec go run ./gateway/cmd/gatewaybench -stack "$STACK" -gateway "$STATE_DIR/bin/gateway" "$@"
