#!/usr/bin/env bash
# Installs what agentd's dev server and tests need from Debian's packages,
# if it is missing. Quiet and idempotent when everything is present.
#
#   scripts/ensure-deps.sh [--postgres] [--chromium] [--node]
#
#   --postgres  PostgreSQL server binaries (initdb, pg_ctl): package postgresql
#   --chromium  a Chromium browser for the browser tests: package chromium
#   --node      Node.js, which runs the JavaScript webhook receiver of
#               docs/webhooks.md in the tests: package nodejs
#
# As root, missing packages are installed with apt-get (apt-get update runs at
# most once). Otherwise the script says what to install: a missing PostgreSQL
# is an error (exit 1), a missing Chromium or Node.js only a warning.
set -euo pipefail

want_postgres=0
want_chromium=0
want_node=0
for arg in "$@"; do
	case "$arg" in
	--postgres) want_postgres=1 ;;
	--chromium) want_chromium=1 ;;
	--node) want_node=1 ;;
	-h | --help)
		sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "ensure-deps: unknown argument: $arg (want --postgres, --chromium, --node)" >&2
		exit 2
		;;
	esac
done

have_postgres() {
	local dir
	for dir in /usr/lib/postgresql/*/bin; do
		[[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && return 0
	done
	if command -v pg_config >/dev/null 2>&1; then
		dir="$(pg_config --bindir 2>/dev/null || true)"
		[[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && return 0
	fi
	command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}

have_chromium() {
	command -v chromium >/dev/null 2>&1
}

apt_updated=0
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	if [[ $apt_updated -eq 0 ]]; then
		echo "ensure-deps: apt-get update" >&2
		apt-get update -qq
		apt_updated=1
	fi
	echo "ensure-deps: apt-get install $*" >&2
	apt-get install -y -qq "$@" >/dev/null
}

is_root() { [[ $EUID -eq 0 ]]; }

status=0

if [[ $want_postgres -eq 1 ]] && ! have_postgres; then
	if is_root; then
		apt_install postgresql
		if ! have_postgres; then
			echo "ensure-deps: postgresql installed but initdb/pg_ctl still not found" >&2
			exit 1
		fi
	else
		echo "ensure-deps: PostgreSQL server binaries (initdb, pg_ctl) are missing." >&2
		echo "ensure-deps: install them as root: apt-get install postgresql" >&2
		status=1
	fi
fi

if [[ $want_chromium -eq 1 ]] && ! have_chromium; then
	if is_root; then
		apt_install chromium
		if ! have_chromium; then
			echo "ensure-deps: chromium installed but not on PATH" >&2
			exit 1
		fi
	else
		echo "ensure-deps: warning: chromium is not on PATH; browser tests need it." >&2
		echo "ensure-deps: install it as root: apt-get install chromium" >&2
	fi
fi

if [[ $want_node -eq 1 ]] && ! command -v node >/dev/null 2>&1; then
	if is_root; then
		apt_install nodejs
	else
		echo "ensure-deps: warning: node is not on PATH; the webhook docs test needs it." >&2
		echo "ensure-deps: install it as root: apt-get install nodejs" >&2
	fi
fi

exit "$status"
