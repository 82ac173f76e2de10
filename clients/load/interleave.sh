#!/usr/bin/env bash
# Runs the Go benchmarks of the fan-out path and of idle cost at several
# commits, alternating between them ROUNDS times (so that the machine's drift
# falls on all of them), then compares them with benchstat.
#
#   clients/load/interleave.sh ROUNDS COMMIT...
#   clients/load/interleave.sh 8 3c659e4 0b12bea
#
# Results in bench-out/interleave/<commit>.txt; benchstat of the first commit
# against each other one on stdout.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
rounds=$1
shift
OUT=${BENCH_OUT:-$ROOT/bench-out}/interleave
mkdir -p "$OUT"
for c in "$@"; do
	dir=$OUT/src-$c
	[[ -d $dir ]] || git -C "$ROOT" worktree add -q --detach "$dir" "$c"
	for p in bridge server/grpcapi server/hub; do
		(cd "$dir" && go test -c -o "$OUT/$c-${p##*/}.test" "./$p")
	done
	: >"$OUT/$c.txt"
done
bench() { # bench COMMIT PKGDIR BINARY ARGS...: one run, appended to COMMIT's results
	local c=$1 dir=$2 bin=$3
	shift 3
	(cd "$OUT/src-$c/$dir" && "$OUT/$c-$bin.test" -test.run '^$' -test.benchmem -test.count 1 "$@" >>"$OUT/$c.txt" 2>&1)
}
for _ in $(seq "$rounds"); do
	for c in "$@"; do
		bench "$c" bridge bridge -test.bench 'EncodeFrame|FanoutWS'
		bench "$c" bridge bridge -test.bench 'IdleConnectionCost' -test.benchtime 1x
		bench "$c" server/grpcapi grpcapi -test.bench 'FanoutGRPC|EncodeProto'
		bench "$c" server/hub hub -test.bench 'Fanout$|FanoutRooms'
		bench "$c" server/hub hub -test.bench 'IdleSession$' -test.benchtime 1x
	done
done
base=$1
shift
for c in "$@"; do
	benchstat "$OUT/$base.txt" "$OUT/$c.txt"
done
