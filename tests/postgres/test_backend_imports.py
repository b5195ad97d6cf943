"""The PostgreSQL backend stands on the shared contract and documents, never on the file backend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Modules that belong to the file backend (or to the file locks only it takes).
FILE_ONLY = ("filelock", "atlas_tasks.backends.file", "atlas_tasks.backends._file_check", "atlas_tasks._fs.locks")


def _modules_after(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_importing_the_postgres_backend_loads_no_file_backend_module() -> None:
    """`import atlas_tasks.backends.postgres` loads neither filelock, the file backend nor its lock module."""
    loaded = _modules_after(
        f"""
        import json, sys
        import atlas_tasks.backends.postgres
        print(json.dumps(sorted(m for m in sys.modules if m.startswith({FILE_ONLY!r}))))
        """
    )
    assert loaded == []


def test_opening_a_postgres_url_loads_no_file_backend_module() -> None:
    """open_store on a postgresql:// URL (no connection is made yet) loads none of the file backend either."""
    loaded = _modules_after(
        f"""
        import json, sys
        from atlas_tasks.store.urls import open_store
        store = open_store("postgresql://nobody@127.0.0.1:1/none?schema=s")
        assert type(store).__name__ == "PostgresStore"
        print(json.dumps(sorted(m for m in sys.modules if m.startswith({FILE_ONLY!r}))))
        """
    )
    assert loaded == []
