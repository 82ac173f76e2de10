#!/usr/bin/env bash
# make soak: starts a fresh `tertulia serve` (memory broker, rate limits and
# per-IP/per-user caps off, /metrics and pprof on an admin address), then
# runs `tertulia soak` against it: thousands of connections over WebSocket
# and gRPC churning (connect, join, chat, leave, close) while messages flow,
# with the server's RSS, heap and goroutines read before (after a warm-up
# churn), every SOAK_EVERY during, and after, and checked to come back near
# the baseline.
# Bounded (SOAK_DURATION, default 3m); not run in CI.
#
#   SOAK_DURATION=60s SOAK_LIVE=1000 SOAK_USERS=3000 clients/load/soak.sh [extra tertulia soak flags]
#
# The server's log and the soak's output go to bench-out/ (BENCH_OUT).
set -euo pipefail

ROOT=$(git rev-parse --show-toplevel)
BIN=$ROOT/bin/tertulia
OUT=${BENCH_OUT:-$ROOT/bench-out}
HTTP=${SOAK_HTTP:-127.0.0.1:18181}
GRPC=${SOAK_GRPC:-127.0.0.1:19191}
ADMIN=${SOAK_ADMIN:-127.0.0.1:16161}
SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

# shellcheck source=server.sh
source "$ROOT/clients/load/server.sh"
mkdir -p "$OUT"
go build -o "$BIN" "$ROOT/server/cmd/tertulia"

trap stop_server EXIT

TERTULIA_JWT_SECRET=$SECRET \
	"$BIN" serve --http-addr "$HTTP" --grpc-addr "$GRPC" --admin-addr "$ADMIN" "${LIMITS_OFF[@]}" \
	--shutdown-spread 1s --shutdown-timeout 10s --log-level warn >"$OUT/soak.server.log" 2>&1 &
server_pid=$!
wait_healthy "$HTTP" "$OUT/soak.server.log"

"$BIN" soak --jwt-secret "$SECRET" --http-addr "$HTTP" --grpc-addr "$GRPC" \
	--metrics-url "http://$ADMIN/metrics" --gc-url "http://$ADMIN/debug/pprof/heap?gc=1" \
	--server-pid "$server_pid" \
	--duration "${SOAK_DURATION:-3m}" --every "${SOAK_EVERY:-10s}" \
	--live "${SOAK_LIVE:-1000}" --users "${SOAK_USERS:-3000}" "$@" 2>&1 | tee "$OUT/soak.txt"
