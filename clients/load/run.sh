#!/usr/bin/env bash
# Runs the load scenarios of BENCHMARKS.md, each against a fresh
# `tertulia serve` pinned to core 0 (taskset -c 0) with the load tool pinned
# to core 1 (taskset -c 1), and prints the table; the full run also writes the
# figures into BENCHMARKS.md between its "bench:begin" and "bench:end" markers.
#
#   clients/load/run.sh [full|short|targets|issue|peer|history]   (make bench / make bench-short / WS targets only / issue 10's four figures / the same with the coder client, as centrifugo.sh / history on and off)
#
# Every connection is a distinct user with its own token and every subscriber
# joins the room, as in a deployment; the rows marked "100users" and "lobby"
# repeat the old set-up (--users 100, --room -) for comparison. The server
# runs with its rate limits and per-IP connection cap off.
#
# Outputs go to bench-out/ (override with BENCH_OUT): per run the tool's
# output, the server's log, its CPU profile over the measured phase and the
# latency SVG; results.tsv holds one "label TAB JSON" line per run and
# targets.txt the issue's targets, each met or not.
set -euo pipefail

MODE=${1:-full}
ROOT=$(git rev-parse --show-toplevel)
BIN=$ROOT/bin/tertulia
OUT=${BENCH_OUT:-$ROOT/bench-out}
HTTP=127.0.0.1:18080
GRPC=127.0.0.1:19090
PPROF=127.0.0.1:16060
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
# Bounds each set-up of 10,000 connections; the target is 1 s.
SETUP_TIMEOUT=${SETUP_TIMEOUT:-60s}
# A fresh secret per run of the script; the server and the tool share it, and
# the tool signs one token per user exactly as `tertulia token` does.
SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

# shellcheck source=server.sh
source "$ROOT/clients/load/server.sh"
mkdir -p "$OUT"
: > "$OUT/results.tsv"
go build -o "$BIN" "$ROOT/server/cmd/tertulia"

trap stop_server EXIT

# SERVE is the server's command line, pinned; rate limits and connection
# caps off (LIMITS_OFF, server.sh).
# shellcheck disable=SC2206 # SERVE_ARGS are words
SERVE=(taskset -c "$SERVER_CORE" "$BIN" serve --jwt-secret "$SECRET"
	--http-addr "$HTTP" --grpc-addr "$GRPC" --pprof-addr "$PPROF"
	--log-level warn "${LIMITS_OFF[@]}" ${SERVE_ARGS:-})

start_server() {
	local label=$1
	"${SERVE[@]}" >"$OUT/$label.server.log" 2>&1 &
	server_pid=$!
	# Out of the job table: bench --restart kills it with SIGKILL, which the
	# shell would report ("Killed") as if something had gone wrong.
	disown "$server_pid"
	wait_healthy "$HTTP" "$OUT/$label.server.log"
	# Whoever answered must be this server: one left by a run that died
	# would hold the ports, and this one would have exited.
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "server exited; see $OUT/$label.server.log" >&2
		exit 1
	fi
	# The tokens the tool signs must be what the server accepts: check one
	# made by `tertulia token`.
	local tok
	tok=$("$BIN" token --user bench-check --jwt-secret "$SECRET")
	grpcurl -plaintext -H "authorization: Bearer $tok" "$GRPC" chat.v1.ChatService/GetStats >/dev/null
}

# run LABEL BENCH-FLAGS...: one scenario against a fresh server.
run() {
	local label=$1
	shift
	start_server "$label"
	bench_run "$label" taskset -c "$LOAD_CORE" "$BIN" bench --jwt-secret "$SECRET" --http-addr "$HTTP" --grpc-addr "$GRPC" \
		--server-pid "$server_pid" --quiet --svg "$OUT/$label.svg" \
		--profile-url "http://$PPROF/debug/pprof/profile" --profile-out "$OUT/$label.pprof" "$@"
}

# ok MS: the last run published at the rate asked (95% of it at least),
# delivered every message to every subscriber once (nothing refused, lost
# or extra: duplicates), dropped nobody and had p99 under MS ms.
ok() {
	[[ $(judge "$LAST_JSON" "q >= 0.95 && p > 0 && p < $1 && r == 0 && l == 0 && x == 0 && d == 0") == met* ]]
}

# saturate TRANSPORT DURATION RATES...: the highest rate with 1,000
# subscribers that is published in time and delivers everything, once, with
# p99 under 100 ms.
saturate() {
	local transport=$1 dur=$2 best=""
	shift 2
	for rate in "$@"; do
		LAST_JSON=""
		run "saturation-$transport-$rate" --scenario fanout --transport "$transport" --conns 1000 --rate "$rate" --duration "$dur"
		if [[ -n $LAST_JSON ]] && ok 100; then best=$rate; else break; fi
	done
	echo "saturation over $transport: ${best:-none} msg/s to 1,000 subscribers" | tee -a "$OUT/saturation.txt"
}

# judge JSON CONDITION: "met" or "NOT MET", then the run's figures, for
# the run whose JSON line is JSON and CONDITION, an awk expression over the
# variables c (connect_per_s), k (server KiB/conn), p (p99 ms), r (refused:
# messages the server said it could not take, unavailable), l (lost: summed
# over subscribers, the messages each should have received, not refused,
# and did not), x (extra: summed over subscribers, the copies of messages
# each had already received), q (the publishing rate achieved over the rate
# asked; 1 where nothing is published), d (dropped), s (reconnect_s), f
# (reconnect_failed), n (connected) and w (the run's wanted connections).
# A figure missing from JSON counts as 0.
judge() {
	local json=$1 cond=$2
	num() { sed -nE "s/.*\"$1\":([0-9.eE+-]+).*/\1/p" <<<"$json"; }
	awk -v c="$(num connect_per_s)" -v k="$(num server_rss_per_conn_kib)" \
		-v p="$(num p99_ms)" -v r="$(num refused)" -v l="$(num lost)" \
		-v x="$(num extra)" -v d="$(num dropped)" \
		-v a="$(num rate_per_s)" -v t="$(num target_rate_per_s)" \
		-v s="$(num reconnect_s)" -v f="$(num reconnect_failed)" \
		-v n="$(num connected)" -v w="$(num conns)" \
		"BEGIN { c += 0; k += 0; p += 0; r += 0; l += 0; x += 0; d += 0; a += 0; t += 0; s += 0; f += 0; n += 0; w += 0
			q = t > 0 ? a / t : 1
			printf \"%s (conn/s %.0f, KiB/conn %.1f, p99 %.1f ms, rate %.4g of %.4g/s, refused %d, lost %d, extra %d, dropped %d, reconnect %.2f s, %d of %d connected)\", ($cond) ? \"met\" : \"NOT MET\", c, k, p, a, t, r, l, x, d, s, n, w }"
}

# target LABEL TEXT CONDITION: records in targets.txt whether LABEL's run met
# CONDITION (see judge).
target() {
	local label=$1 text=$2 cond=$3 json verdict
	json=$(awk -F'\t' -v l="$label" '$1 == l { print $2 }' "$OUT/results.tsv")
	if [[ -z $json ]]; then
		verdict="no result"
	else
		verdict=$(judge "$json" "$cond")
	fi
	echo "$text: $verdict" | tee -a "$OUT/targets.txt"
}

# shquote WORD...: the words, each quoted for sh -c, as the tool's --restart
# runs its command (printf %q quotes for bash, in forms such as $'...' that
# sh does not read).
shquote() {
	local w out=
	for w; do out+="'${w//\'/\'\\\'\'}' "; done
	printf '%s' "$out"
}

# issue_targets [CLIENT]: the runs of issue 10's figures, each connection a
# distinct user joining one room of 10,000, with the WebSocket client CLIENT
# (own, the default, or coder: then each label but the 1k fan-out's, which
# always uses coder, ends in -coder), and their verdicts.
issue_targets() {
	local client=${1:-own} as="" who=""
	if [[ $client != own ]]; then
		as=-$client who=", $client client"
	fi
	local ws=(--transport ws --client "$client")
	run "join-10k-one-room-ws$as" --scenario idle "${ws[@]}" --conns 10000 --rooms 1 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration 10s
	run "fanout-10k-room-ws$as" --scenario fanout "${ws[@]}" --conns 10000 --rate 10 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration 10s
	run "fanout-1k-ws-coder" --scenario fanout --transport ws --client coder --conns 1000 --rate 1000 --duration 10s
	# The storm of a real restart: the tool kills the server with SIGKILL
	# under its 10,000 connections and starts it again (SERVE), and every
	# client reconnects by itself; timed from the kill.
	run "reconnect-10k-ws$as" --scenario reconnect "${ws[@]}" --conns 10000 --rate 10 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration 3s --restart "$(shquote "${SERVE[@]}")"
	target "join-10k-one-room-ws$as" "10,000 distinct users join one room at >= 10,000/s, <= 10 KiB/conn$who" "n == w && c >= 10000 && k > 0 && k <= 10"
	target "fanout-10k-room-ws$as" "fan-out 10,000 x 10/s to that room: p99 <= 150 ms, none lost$who" "n == w && q >= 0.95 && p > 0 && p <= 150 && r == 0 && l == 0 && x == 0 && d == 0"
	target fanout-1k-ws-coder "1,000 x 1,000/s, coder/websocket client: p99 <= 35 ms" "n == w && q >= 0.95 && p > 0 && p <= 35 && r == 0 && l == 0 && x == 0 && d == 0"
	target "reconnect-10k-ws$as" "reconnect storm of 10,000 distinct users after a restart (kill -9): all re-joined in < 5 s of the kill$who" "n == w && s > 0 && s < 5 && f == 0 && r == 0 && l == 0 && x == 0"
}

: > "$OUT/saturation.txt"
: > "$OUT/targets.txt"
bench_header
case $MODE in
short)
	for t in ws grpc; do
		run "fanout-1k-$t" --scenario fanout --transport $t --conns 1000 --rate 1000 --duration 3s
		run "idle-2k-$t" --scenario idle --transport $t --conns 2000 --rooms 200 --duration 3s
	done
	run "fanout-1k-ws-coder" --scenario fanout --transport ws --client coder --conns 1000 --rate 1000 --duration 3s
	run "rooms-ws" --scenario rooms --transport ws --conns 1000 --rooms 100 --rate 5 --duration 3s
	run "churn-ws" --scenario churn --transport ws --conns 500 --rate 500 --churn-rate 50 --duration 3s
	run "reconnect-1k-ws" --scenario reconnect --transport ws --conns 1000 --rate 10 --duration 1s
	;;
history)
	# The cost of room history on the hot path: the same runs with the
	# default history (100 per room) and with it off (SERVE_ARGS is added
	# to every serve: e.g. SERVE_ARGS="--broker redis --redis-url ...").
	for h in 100 0; do
		SERVE_ARGS="${SERVE_ARGS:-} --history-size $h" run "fanout-1k-ws-history-$h" --scenario fanout --transport ws --conns 1000 --rate 1000 --duration 10s
		SERVE_ARGS="${SERVE_ARGS:-} --history-size $h" run "rooms-ws-history-$h" --scenario rooms --transport ws --conns 1000 --rooms 100 --rate 10 --duration 10s
	done
	;;
issue)
	# Issue 10's four figures alone (about a minute).
	issue_targets
	;;
peer)
	# Issue 10's workloads and verdicts with the coder/websocket client
	# throughout, as centrifugo.sh measures Centrifugo (its client is built
	# on the same library): the figures as a peer would see them.
	issue_targets coder
	;;
targets)
	# The issue's WebSocket targets only, for a quick re-measure.
	issue_targets
	run "fanout-1k-ws" --scenario fanout --transport ws --conns 1000 --rate 1000 --duration 10s
	saturate ws 10s 1000 1500 2000 2500 3000 4000
	;;
full)
	issue_targets
	for t in ws grpc; do
		run "fanout-1k-$t" --scenario fanout --transport $t --conns 1000 --rate 1000 --duration 10s
		# Over WebSocket, issue_targets ran it: fanout-10k-room-ws.
		[[ $t == ws ]] || run "fanout-10k-$t" --scenario fanout --transport $t --conns 10000 --rate 10 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration 10s
		run "idle-10k-$t" --scenario idle --transport $t --conns 10000 --rooms 1000 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration 30s
		run "rooms-$t" --scenario rooms --transport $t --conns 1000 --rooms 100 --rate 10 --duration 10s
		run "churn-$t" --scenario churn --transport $t --conns 1000 --rate 1000 --churn-rate 100 --duration 10s
	done
	run "reconnect-10k-grpc" --scenario reconnect --transport grpc --conns 10000 --rate 10 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration 3s
	# As Centrifugo's idle test: each connection in a channel of its own, so a
	# join is announced to nobody else.
	run "idle-10k-ws-own-room" --scenario idle --transport ws --conns 10000 --rooms 10000 --dialers 256 --setup-timeout "$SETUP_TIMEOUT" --duration 30s
	# The old set-up, for comparison: 100 users sharing the connections, in
	# the lobby (no joins).
	run "fanout-10k-ws-lobby-100users" --scenario fanout --transport ws --conns 10000 --users 100 --room - --rate 10 --dialers 256 --duration 10s
	saturate ws 10s 250 500 750 1000 1500 2000 3000 4000
	saturate grpc 10s 100 200 300 500 750 1000 1500
	;;
*)
	echo "usage: $0 [full|short|targets|issue|peer|history]" >&2
	exit 2
	;;
esac

# Write the figures into BENCHMARKS.md, between the markers.
md=$ROOT/BENCHMARKS.md
if [[ $MODE == full && -f $md ]] && grep -q '<!-- bench:begin -->' "$md"; then
	table=$(mktemp)
	{
		echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`make bench${MODE/full/}\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), Go $(go env GOVERSION | sed 's/^go//'), commit $(git -C "$ROOT" rev-parse --short HEAD)."
		echo
		"$BIN" bench --markdown "$OUT/results.tsv"
		echo
		sed 's/^/- /' "$OUT/targets.txt"
		sed 's/^/- /' "$OUT/saturation.txt"
	} >"$table"
	awk -v f="$table" '
		/<!-- bench:begin -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
		/<!-- bench:end -->/ { skip = 0 }
		!skip' "$md" >"$md.tmp" && mv "$md.tmp" "$md"
	rm -f "$table"
	echo "figures written to BENCHMARKS.md"
fi
