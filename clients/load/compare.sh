#!/usr/bin/env bash
# Compares two builds of the server on one workload: each run starts one of
# them (pinned to core 0, limits off where it has them), drives it with this
# checkout's load tool (pinned to core 1) and prints the run's main figures;
# the two alternate, ROUNDS times, so that the machine's drift falls on both.
#
#   clients/load/compare.sh OLD_COMMIT NEW_COMMIT ROUNDS -- BENCH-ARGS...
#   clients/load/compare.sh 3c659e4 HEAD 2 -- --scenario fanout --conns 10000 --users 100 --room - --rate 10 --dialers 256
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
old=$1 new=$2 rounds=$3
shift 3
[[ ${1:-} == -- ]] && shift
OUT=${BENCH_OUT:-$ROOT/bench-out}/compare
mkdir -p "$OUT"
# shellcheck source=server.sh
source "$ROOT/clients/load/server.sh"
HTTP=127.0.0.1:18180
GRPC=127.0.0.1:19190
SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

build() { # build COMMIT: the server at COMMIT, in OUT
	local dir=$OUT/src-$1
	[[ -d $dir ]] || git -C "$ROOT" worktree add -q --detach "$dir" "$1"
	(cd "$dir" && go build -o "$OUT/tertulia-$1" ./server/cmd/tertulia)
}
build "$old"
build "$new"
go build -o "$OUT/bench" "$ROOT/server/cmd/tertulia"

run() { # run COMMIT BENCH-ARGS...: one run of the workload against the server at COMMIT
	local c=$1 bin=$OUT/tertulia-$1 off=()
	shift
	local help
	help=$("$bin" serve --help 2>&1 || true)
	if [[ $help == *limit-messages-per-second* ]]; then off=("${LIMITS_OFF[@]}"); fi
	taskset -c 0 "$bin" serve --jwt-secret "$SECRET" --http-addr "$HTTP" --grpc-addr "$GRPC" \
		--log-level warn "${off[@]}" >"$OUT/$c.log" 2>&1 &
	server_pid=$!
	wait_healthy "$HTTP" "$OUT/$c.log"
	taskset -c 1 "$OUT/bench" bench --jwt-secret "$SECRET" --http-addr "$HTTP" --grpc-addr "$GRPC" \
		--server-pid "$server_pid" --quiet "$@" 2>>"$OUT/$c.err" | { grep '^{' || true; } |
		sed -E 's/^/'"$c"' /; s/"(scenario|transport|client|conns|rooms|target_rate_per_s|seconds|published|expected|delivered|server_writes|tool_rss_per_conn_kib)":[^,}]*,?//g'
	stop_server
}
trap stop_server EXIT
for _ in $(seq "$rounds"); do
	run "$old" "$@"
	run "$new" "$@"
done
