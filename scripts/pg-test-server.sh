#!/bin/sh
# Make sure PostgreSQL's server binaries (initdb, pg_ctl) are installed, for the test suite's throwaway server.
#
#   scripts/pg-test-server.sh install    install Debian's postgresql package if initdb/pg_ctl are missing
#
# The tests start and stop the server themselves (atlas_tasks.backends.postgres.testing); this script only installs.
# With ATLAS_TEST_PG_URL set the tests use that server instead, and nothing needs installing.
set -eu

have_server() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1
}

case "${1:-install}" in
install)
    if [ -n "${ATLAS_TEST_PG_URL:-}" ] || have_server; then
        exit 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "pg-test-server: no PostgreSQL server binaries and no apt-get; install PostgreSQL or set ATLAS_TEST_PG_URL" >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    echo "pg-test-server: installing Debian's postgresql package (for the test suite's throwaway server)" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
    have_server || { echo "pg-test-server: postgresql installed but initdb/pg_ctl not found" >&2; exit 1; }
    ;;
*)
    echo "usage: $0 install" >&2
    exit 2
    ;;
esac
