#!/usr/bin/env bash
# Starts conflux-balancer as the "extra" target of ../shared/bench/peers.sh (see
# scripts/bench/peers): one node (peers.sh's fake BBB node), BENCH_SECRET as the integration
# secret, and 50 meetings created through the balancer so that getMeetings answers a list of
# the same size as the fake node's (50 meetings). Polling is slow so the fake node's fixed
# getMeetings answer does not make the balancer forget those meetings during the run.
# CONFLUX_BENCH_TLS=1 registers the node's HTTPS URL instead (trusting peers.sh's private CA),
# to be measured against peers.sh's proxy-https target.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
lb="$root/target/release/conflux-balancer"
port="${CONFLUX_BENCH_PORT:-18190}"
export CONFLUX_DATA_DIR="$EXTRA_DIR/data" LOADBALANCER_SECRET="$BENCH_SECRET" POLL_INTERVAL=3600
node_url="$NODE_URL"
if [ "${CONFLUX_BENCH_TLS:-0}" = 1 ]; then
  node_url="$NODE_TLS_URL"
  export SSL_CERT_FILE="$NODE_CA"
fi
"$lb" servers add "$node_url" "$NODE_SECRET" --name node --enable >/dev/null
"$lb" serve --listen "127.0.0.1:$port" &
server=$!
trap 'kill $server 2>/dev/null' EXIT TERM INT
until curl -sf "http://127.0.0.1:$port/bigbluebutton/api" >/dev/null; do sleep 0.1; done
sleep 0.5 # the first poll marks the node online
for i in $(seq 1 49); do
  query="name=Bench+room&meetingID=m$i"
  sum=$(printf 'create%s%s' "$query" "$BENCH_SECRET" | sha256sum | cut -d' ' -f1)
  curl -sf "http://127.0.0.1:$port/bigbluebutton/api/create?$query&checksum=$sum" >/dev/null
done
wait $server
