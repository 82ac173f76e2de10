#!/usr/bin/env bash
# Runs the load scenarios of BENCHMARKS.md, each against a fresh
# `tertulia serve` pinned to core 0 (taskset -c 0) with the load tool pinned
# to core 1 (taskset -c 1), and prints the table; the full run also writes the
# figures into BENCHMARKS.md between its "bench:begin" and "bench:end" markers.
#
#   clients/load/run.sh [full|short|targets]   (make bench / make bench-short / WS targets only)
#
# Outputs go to bench-out/ (override with BENCH_OUT): per run the tool's
# output, the server's log, its CPU profile over the measured phase and the
# latency SVG; results.tsv holds one "label TAB JSON" line per run.
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
# A fresh secret per run of the script; the server and the tool share it, and
# the tool signs one token per user exactly as `tertulia token` does.
SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

mkdir -p "$OUT"
: > "$OUT/results.tsv"
go build -o "$BIN" "$ROOT/server/cmd/tertulia"

server_pid=""
stop_server() {
	if [[ -n $server_pid ]]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=""
	fi
}
trap stop_server EXIT

start_server() {
	local label=$1
	taskset -c "$SERVER_CORE" "$BIN" serve --jwt-secret "$SECRET" \
		--http-addr "$HTTP" --grpc-addr "$GRPC" --pprof-addr "$PPROF" \
		--log-level warn --limit-messages-per-second 0 --limit-user-messages-per-second 0 \
		--limit-joins-per-second 0 --limit-conns-per-ip 0 --limit-conns-per-user 0 >"$OUT/$label.server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 100); do # at most 10 s
		curl -sf "http://$HTTP/health" >/dev/null && break
		sleep 0.1
	done
	curl -sf "http://$HTTP/health" >/dev/null || { echo "server did not start; see $OUT/$label.server.log" >&2; exit 1; }
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
	set +e
	taskset -c "$LOAD_CORE" "$BIN" bench --jwt-secret "$SECRET" --http-addr "$HTTP" --grpc-addr "$GRPC" \
		--server-pid "$server_pid" --quiet --svg "$OUT/$label.svg" \
		--profile-url "http://$PPROF/debug/pprof/profile" --profile-out "$OUT/$label.pprof" \
		"$@" >"$OUT/$label.txt" 2>"$OUT/$label.err"
	local rc=$?
	set -e
	stop_server
	local json
	json=$(grep '^{' "$OUT/$label.txt" || true)
	if [[ -z $json ]]; then
		echo "$label: no result (exit $rc): $(tail -3 "$OUT/$label.err")" >&2
		return 0
	fi
	printf '%s\t%s\n' "$label" "$json" >>"$OUT/results.tsv"
	[[ $rc -eq 0 ]] || echo "$label: $(tail -1 "$OUT/$label.err")" >&2
	printf '%-28s %s\n' "$label" "$(sed -n 2p "$OUT/$label.txt")"
	LAST_JSON=$json
}

# ok: the last run lost nothing, dropped nobody and had p99 under $1 ms.
ok() {
	local p99 lost dropped
	p99=$(sed -E 's/.*"p99_ms":([0-9.]+).*/\1/' <<<"$LAST_JSON")
	lost=$(sed -E 's/.*"lost":([0-9]+).*/\1/' <<<"$LAST_JSON")
	dropped=$(sed -E 's/.*"dropped":([0-9]+).*/\1/' <<<"$LAST_JSON")
	[[ $lost == 0 && $dropped == 0 ]] && awk -v p="$p99" -v m="$1" 'BEGIN { exit !(p < m) }'
}

# saturate TRANSPORT DURATION RATES...: the highest rate with 1,000
# subscribers that delivers everything with p99 under 100 ms.
saturate() {
	local transport=$1 dur=$2 best=""
	shift 2
	for rate in "$@"; do
		LAST_JSON=""
		run "saturation-$transport-$rate" --scenario fanout --transport "$transport" --conns 1000 --users 100 --rate "$rate" --duration "$dur"
		if [[ -n $LAST_JSON ]] && ok 100; then best=$rate; else break; fi
	done
	echo "saturation over $transport: ${best:-none} msg/s to 1,000 subscribers" | tee -a "$OUT/saturation.txt"
}

: > "$OUT/saturation.txt"
printf "%-28s %s\n" run "scenario transport conns rate/s secs delivered/s p50 p90 p99 max lost dropped conn/s srv-cpu% tool-cpu% srv-KiB/conn"
case $MODE in
short)
	for t in ws grpc; do
		run "fanout-1k-$t" --scenario fanout --transport $t --conns 1000 --users 100 --rate 1000 --duration 3s
		run "idle-2k-$t" --scenario idle --transport $t --conns 2000 --users 100 --rooms 200 --duration 3s
	done
	run "rooms-ws" --scenario rooms --transport ws --conns 1000 --rooms 100 --rate 5 --duration 3s
	run "churn-ws" --scenario churn --transport ws --conns 500 --users 50 --rate 500 --churn-rate 50 --duration 3s
	;;
targets)
	# The issue's WebSocket targets only, for a quick re-measure.
	run "fanout-1k-ws" --scenario fanout --transport ws --conns 1000 --users 100 --rate 1000 --duration 10s
	run "fanout-10k-ws" --scenario fanout --transport ws --conns 10000 --users 100 --room - --rate 10 --duration 10s
	run "idle-10k-ws" --scenario idle --transport ws --conns 10000 --users 100 --rooms 1000 --dialers 256 --duration 30s
	run "idle-10k-ws-own-room" --scenario idle --transport ws --conns 10000 --users 100 --rooms 10000 --dialers 256 --duration 30s
	saturate ws 10s 1000 1500 2000 2500 3000 4000
	;;
full)
	for t in ws grpc; do
		run "fanout-1k-$t" --scenario fanout --transport $t --conns 1000 --users 100 --rate 1000 --duration 10s
		run "fanout-10k-$t" --scenario fanout --transport $t --conns 10000 --users 100 --room - --rate 10 --duration 10s
		run "idle-10k-$t" --scenario idle --transport $t --conns 10000 --users 100 --rooms 1000 --dialers 256 --duration 30s
		run "rooms-$t" --scenario rooms --transport $t --conns 1000 --rooms 100 --rate 10 --duration 10s
		run "churn-$t" --scenario churn --transport $t --conns 1000 --users 100 --rate 1000 --churn-rate 100 --duration 10s
	done
	# As Centrifugo's idle test: each connection in a channel of its own, so a
	# join is announced to nobody else.
	run "idle-10k-ws-own-room" --scenario idle --transport ws --conns 10000 --users 100 --rooms 10000 --dialers 256 --duration 30s
	saturate ws 10s 250 500 750 1000 1500 2000 3000 4000
	saturate grpc 10s 100 200 300 500 750 1000 1500
	;;
*)
	echo "usage: $0 [full|short|targets]" >&2
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
		sed 's/^/- /' "$OUT/saturation.txt"
	} >"$table"
	awk -v f="$table" '
		/<!-- bench:begin -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
		/<!-- bench:end -->/ { skip = 0 }
		!skip' "$md" >"$md.tmp" && mv "$md.tmp" "$md"
	rm -f "$table"
	echo "figures written to BENCHMARKS.md"
fi
