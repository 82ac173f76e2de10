#!/usr/bin/env bash
# Measures Centrifugo v6 on this machine with the load tool, on issue 10's
# workloads as run.sh's issue_targets runs them for Tertulia (but for the
# reconnect storm: here the tool closes its connections with the server
# running, as run.sh did until its storm became a kill -9 and restart): each
# run against a fresh centrifugo pinned to core 0 (taskset -c 0), the tool
# pinned to core 1 speaking Centrifugo's JSON protocol (--protocol
# centrifugo, a client built on coder/websocket), every connection a
# distinct user with its own token subscribed to one channel. It prints the
# same table as run.sh, so that a target can be said to be bound by this
# machine or not.
#
#   clients/load/centrifugo.sh [targets|short]
#
# Centrifugo is an instrument here, not a dependency of the project: the
# binary is $CENTRIFUGO_BIN, or built once with `go install` into
# $CENTRIFUGO_CACHE (default ~/.cache/tertulia/centrifugo-v6.9.1). Its
# configuration is centrifugo.json: channels without namespace, no presence,
# no join/leave, no history, subscribe and publish allowed to clients; no
# connection limits; a slow client bounded as by Tertulia's defaults (a
# 4 MiB outbound queue, a 10 s write timeout). The port and the token secret
# come from the environment. DURATION overrides the publishing/holding time
# of every run (e.g. DURATION=2s for a quick check); BENCH_ARGS are added to
# every run's flags (e.g. BENCH_ARGS="--drain 30s" to tell a late delivery
# from a lost one); PIN=0 runs without
# taskset (when the machine is shared and pinning would disturb others).
#
# Outputs go to bench-out/centrifugo/ (override with BENCH_OUT): per run the
# tool's output, centrifugo's log and CPU profile; results.tsv holds one
# "label TAB JSON" line per run, results.md the Markdown table.
set -euo pipefail

MODE=${1:-targets}
ROOT=$(git rev-parse --show-toplevel)
BIN=$ROOT/bin/tertulia
OUT=${BENCH_OUT:-$ROOT/bench-out}/centrifugo
CF_VERSION=v6.9.1
CF_CACHE=${CENTRIFUGO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tertulia/centrifugo-$CF_VERSION}
CF_BIN=${CENTRIFUGO_BIN:-$CF_CACHE/centrifugo}
CF_CONFIG=$ROOT/clients/load/centrifugo.json
PORT=${CENTRIFUGO_PORT:-18000}
HTTP=127.0.0.1:$PORT
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
PIN=${PIN:-1}
SETUP_TIMEOUT=${SETUP_TIMEOUT:-60s}
SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

# shellcheck source=server.sh
source "$ROOT/clients/load/server.sh"

if [[ ! -x $CF_BIN ]]; then
	echo "building centrifugo $CF_VERSION into $CF_CACHE (once)" >&2
	mkdir -p "$CF_CACHE"
	# Outside any module, so that the project's go.mod is not touched.
	(cd "$CF_CACHE" && GOBIN=$CF_CACHE GOFLAGS= go install \
		-ldflags "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=${CF_VERSION#v}" \
		"github.com/centrifugal/centrifugo/v6@$CF_VERSION")
fi
mkdir -p "$OUT"
: >"$OUT/results.tsv"
go build -o "$BIN" "$ROOT/server/cmd/tertulia"
"$CF_BIN" version >"$OUT/version.txt"
cp "$CF_CONFIG" "$OUT/config.json"

trap stop_server EXIT

# PIN_SERVER and PIN_TOOL prefix the server's and the tool's command: taskset
# onto their cores, unless PIN=0. (Prefixes, not a shell function, so that
# $! is the server itself: taskset and env exec what they run.)
PIN_SERVER=(taskset -c "$SERVER_CORE")
PIN_TOOL=(taskset -c "$LOAD_CORE")
if [[ $PIN == 0 ]]; then PIN_SERVER=() PIN_TOOL=(); fi

start_centrifugo() {
	local label=$1
	if curl -s -o /dev/null "http://$HTTP/health"; then
		echo "something already listens on $HTTP: stop it or set CENTRIFUGO_PORT" >&2
		exit 1
	fi
	# This script's own CENTRIFUGO_* settings are not Centrifugo's.
	env -u CENTRIFUGO_BIN -u CENTRIFUGO_CACHE -u CENTRIFUGO_PORT \
		CENTRIFUGO_HTTP_SERVER_PORT="$PORT" CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY="$SECRET" \
		"${PIN_SERVER[@]}" "$CF_BIN" --config "$CF_CONFIG" >"$OUT/$label.server.log" 2>&1 &
	server_pid=$!
	wait_healthy "$HTTP" "$OUT/$label.server.log"
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "centrifugo exited; see $OUT/$label.server.log" >&2
		exit 1
	fi
}

# run LABEL BENCH-FLAGS...: one scenario against a fresh centrifugo.
run() {
	local label=$1
	shift
	start_centrifugo "$label"
	bench_run "$label" "${PIN_TOOL[@]}" "$BIN" bench --protocol centrifugo --jwt-secret "$SECRET" --http-addr "$HTTP" \
		--server-pid "$server_pid" --quiet --svg "$OUT/$label.svg" \
		--profile-url "http://$HTTP/debug/pprof/profile" --profile-out "$OUT/$label.pprof" "$@" ${BENCH_ARGS:-}
}

echo "$(cat "$OUT/version.txt"), pinned: $([[ $PIN == 0 ]] && echo no || echo "server core $SERVER_CORE, tool core $LOAD_CORE")"
bench_header
case $MODE in
targets)
	# Issue 10's four workloads, as run.sh's issue_targets.
	run "cf-join-10k-one-room" --scenario idle --conns 10000 --rooms 1 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration "${DURATION:-10s}"
	run "cf-fanout-10k-room" --scenario fanout --conns 10000 --rate 10 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration "${DURATION:-10s}"
	run "cf-fanout-1k" --scenario fanout --conns 1000 --rate 1000 --duration "${DURATION:-10s}"
	run "cf-reconnect-10k" --scenario reconnect --conns 10000 --rate 10 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration "${DURATION:-3s}"
	;;
short)
	run "cf-fanout-1k" --scenario fanout --conns 1000 --rate 1000 --duration "${DURATION:-3s}"
	run "cf-idle-2k" --scenario idle --conns 2000 --rooms 200 --duration "${DURATION:-3s}"
	run "cf-reconnect-1k" --scenario reconnect --conns 1000 --rate 10 --duration "${DURATION:-1s}"
	;;
*)
	echo "usage: $0 [targets|short]" >&2
	exit 2
	;;
esac
"$BIN" bench --markdown "$OUT/results.tsv" >"$OUT/results.md"
echo "results in $OUT"
