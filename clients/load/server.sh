# Sourced by run.sh, soak.sh and centrifugo.sh: what they need to start a server to load.

# LIMITS_OFF: the flags that turn off the rate limits and the per-IP and
# per-user connection caps, since one tool process opens thousands of
# connections from one address and publishes faster than a person.
LIMITS_OFF=(--limit-messages-per-second 0 --limit-messages-burst 0 --limit-user-messages-per-second 0
	--limit-joins-per-second 0 --limit-conns-per-ip 0 --limit-conns-per-user 0)

# wait_healthy HTTP LOG: waits at most 10 s for the server's /health, or
# exits pointing at its log.
wait_healthy() {
	for _ in $(seq 100); do
		curl -sf "http://$1/health" >/dev/null && return 0
		sleep 0.1
	done
	echo "server did not start; see $2" >&2
	exit 1
}

# server_pid is the server a script started; stop_server stops it (SIGTERM,
# then waits) if there is one. Scripts call it between runs and on EXIT.
server_pid=""
stop_server() {
	if [[ -n $server_pid ]]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		# A server the script disowned is not waited for: it is gone once
		# signal 0 finds nothing (within a minute).
		local tries
		for tries in $(seq 700); do
			kill -0 "$server_pid" 2>/dev/null || break
			# A minute of SIGTERM, then SIGKILL: the next run needs its ports.
			[[ $tries -eq 600 ]] && kill -KILL "$server_pid" 2>/dev/null
			sleep 0.1
		done
		server_pid=""
	fi
}

# bench_header prints the heading of the rows bench_run prints.
bench_header() {
	printf "%-28s %s\n" run "scenario transport conns rate/s secs delivered/s p50 p90 p99 max refused lost extra dropped conn/s srv-cpu% tool-cpu% srv-us/msg tool-us/msg srv-KiB/conn frames/write reconnect-s"
}

# bench_run LABEL CMD...: runs CMD, a `tertulia bench` against the server a
# script started, into $OUT/LABEL.txt and .err, then stops that server;
# appends "LABEL TAB JSON" to $OUT/results.tsv, prints the table row, and
# leaves the JSON line in LAST_JSON. A run without a result is reported,
# not fatal.
bench_run() {
	local label=$1
	shift
	set +e
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
	# The tool's warnings (a publisher short of its rate): seen even with --quiet.
	sed -n 's/^warning: /'"$label"': warning: /p' "$OUT/$label.err" >&2
	printf '%-28s %s\n' "$label" "$(sed -n 2p "$OUT/$label.txt")"
	LAST_JSON=$json
}
