"""The test suite's PostgreSQL server, shared by tests/postgres and the conformance run on PostgreSQL.

$ATLAS_TEST_PG_URL if set, else a throwaway server started once per session (installed first with the repository's
scripts/system-deps.sh if its binaries are missing). If none can be started the fixtures fail, never skip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from atlas_tasks.backends.postgres.testing import shared_server_url, stop_shared_server

SYSTEM_DEPS = Path(__file__).resolve().parents[1] / "scripts" / "system-deps.sh"


def install_server() -> None:
    """Install PostgreSQL's server binaries (apt on Debian) with the script `make test` runs."""
    subprocess.run(["sh", str(SYSTEM_DEPS), "postgres"], check=True, timeout=900)


def server_url(request: pytest.FixtureRequest) -> str:
    """The server's URL; it is stopped when the test session ends."""
    request.config.add_cleanup(stop_shared_server)
    return shared_server_url(install=install_server)
