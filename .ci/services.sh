# shellcheck shell=bash
# Sourced by .ci/run: makes the services the tests need and exports where they are
# (and installs Debian's python3-torch, the torch engine's reference, when no Python imports torch).
#   FSPO_TEST_POSTGRES  URL of a throwaway PostgreSQL 15 cluster on a free loopback port
#   FSPO_TEST_CHROMIUM  path of Debian's Chromium, for the headless browser test
# Works as root on a fresh Debian 12 machine (installs postgresql and chromium with apt
# when missing) and as an ordinary user when they are installed. Reads no standard input.
# fspo_services_stop stops the cluster and removes its folder; it runs at shell exit
# unless the sourcing shell already has an EXIT trap (then call it yourself).

fspo_services_log() { echo "services.sh: $*" >&2; }

# fspo_services_as DIR CMD…: runs CMD from DIR (the postgres user may not be
# allowed into the caller's folder), leaving the caller's folder unchanged.
fspo_services_as() { (cd "$1" && shift && "$@"); }

fspo_services_start() {
	local need=() pgbin port dir runas=()
	command -v chromium >/dev/null 2>&1 || need+=(chromium)
	# PyTorch for the torch engine's equivalence test (Debian's python3-torch),
	# asked from / because the repository's own torch/ folder would pass for it
	fspo_services_as / python3 -c 'import torch.nn' >/dev/null 2>&1 ||
		fspo_services_as / /usr/bin/python3 -c 'import torch.nn' >/dev/null 2>&1 || need+=(python3-torch)
	pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1) || pgbin=""
	[ -n "$pgbin" ] && [ -x "$pgbin/initdb" ] || need+=(postgresql)
	if [ ${#need[@]} -gt 0 ]; then
		if [ "$(id -u)" -ne 0 ]; then
			fspo_services_log "missing ${need[*]} and not root: install them with apt-get install -y ${need[*]}"
			return 1
		fi
		fspo_services_log "installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q </dev/null >&2 || return 1
		apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null >&2 || return 1
		pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1) || pgbin=""
	fi
	[ -x "$pgbin/initdb" ] || { fspo_services_log "no initdb under /usr/lib/postgresql/*/bin"; return 1; }

	# PostgreSQL refuses to run as root: run it as the postgres user then.
	dir=$(mktemp -d /tmp/fspo-pg.XXXXXX) || return 1
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres || return 1
		chown postgres: "$dir"
		runas=(runuser -u postgres --)
	fi
	chmod 700 "$dir"

	# A free loopback port: the first in the range nobody answers on.
	for port in $(seq 55432 55532); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	done

	fspo_services_as "$dir" "${runas[@]}" "$pgbin/initdb" -D "$dir/data" -U fspo -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 </dev/null || {
		fspo_services_log "initdb failed:"; cat "$dir/initdb.log" >&2; return 1; }
	fspo_services_as "$dir" "${runas[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null </dev/null || {
		fspo_services_log "postgres failed to start:"; cat "$dir/server.log" >&2; return 1; }
	fspo_services_as "$dir" "${runas[@]}" "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U fspo fspo_test </dev/null || return 1

	export FSPO_PG_DIR="$dir" FSPO_PG_BIN="$pgbin"
	export FSPO_TEST_POSTGRES="postgres://fspo@127.0.0.1:$port/fspo_test?sslmode=disable"
	export FSPO_TEST_CHROMIUM
	FSPO_TEST_CHROMIUM=$(command -v chromium)
	fspo_services_log "postgres at $FSPO_TEST_POSTGRES (data in $dir), chromium at $FSPO_TEST_CHROMIUM"
}

fspo_services_stop() {
	[ -n "${FSPO_PG_DIR:-}" ] && [ -d "$FSPO_PG_DIR/data" ] || return 0
	local runas=()
	[ "$(id -u)" -eq 0 ] && runas=(runuser -u postgres --)
	fspo_services_as / "${runas[@]}" "$FSPO_PG_BIN/pg_ctl" -D "$FSPO_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 </dev/null
	rm -rf "$FSPO_PG_DIR"
	unset FSPO_PG_DIR FSPO_TEST_POSTGRES
}

fspo_services_start || return 1 2>/dev/null || exit 1
if [ -z "$(trap -p EXIT)" ]; then
	trap fspo_services_stop EXIT
fi
