#!/usr/bin/env bash
# Gateway vs nginx as load balancers over the same two catalog clones of a
# running stack (default: the test stack), same open-model load, same steps.
#   gateway/bench/run.sh [gatewaybench flags, e.g. -rates 1000,2000 -step 5s]
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE_DIR=${SCALESHOP_STATE_DIR:-$PWD/.state}
STACK=${SCALESHOP_STACK:-$STATE_DIR/test/stack.json}
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "==> installing nginx-light (Debian) for the comparison"
  apt-get install -y nginx-light >/dev/null || { apt-get update >/dev/null && apt-get install -y nginx-light >/dev/null; }
fi
[ -f "$STACK" ] || { echo "no running stack at $STACK: start one with 'stackctl up --profile test --detach'"; exit 1; }
mkdir -p "$STATE_DIR/bin"
go build -o "$STATE_DIR/bin/gateway" ./gateway/cmd/gateway
exec go run ./gateway/cmd/gatewaybench -stack "$STACK" -gateway "$STATE_DIR/bin/gateway" "$@"
