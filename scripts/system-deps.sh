#!/bin/sh
# Install the system packages the test suite uses for real, if they are missing (Debian/apt, run as root or via sudo):
#   - PostgreSQL's server (initdb, pg_ctl): the tests start a throwaway server as the unprivileged `postgres` user;
#     skipped when $ATLAS_TEST_PG_URL points at a server of your own.
#   - Chromium and ChromeDriver: the dashboard's real-browser test.
#   - xfsprogs and btrfs-progs: the real power-cut tests format loop-mounted xfs and btrfs images (ext4 needs nothing).
# Already-installed packages cost nothing: this script only calls apt when something is missing.
#
#   scripts/system-deps.sh                  everything (what make test runs)
#   scripts/system-deps.sh postgres         only some groups: postgres, browser, powercut
set -eu

groups="${*:-postgres browser powercut}"
wants() { case " $groups " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

missing=""
if wants postgres && [ -z "${ATLAS_TEST_PG_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
    && ! command -v pg_ctl >/dev/null 2>&1; then
    missing="$missing postgresql"
fi
if wants browser; then
    if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
        missing="$missing chromium"
    fi
    if ! command -v chromedriver >/dev/null 2>&1 && [ -z "${CHROMEDRIVER:-}" ]; then
        missing="$missing chromium-driver"
    fi
fi
if wants powercut; then
    command -v mkfs.xfs >/dev/null 2>&1 || missing="$missing xfsprogs"
    command -v mkfs.btrfs >/dev/null 2>&1 || missing="$missing btrfs-progs"
fi
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing:$missing and no apt-get here; install them, or set ATLAS_TEST_PG_URL / CHROMIUM / CHROMEDRIVER" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "system-deps: installing$missing (apt)" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
