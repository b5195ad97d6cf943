"""open_store: one URL picks the backend; psycopg is imported only when PostgreSQL is asked for."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from atlas_tasks import FileStore
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.open import STORE_URL_ENV, MissingExtraError, open_store


def test_default_is_the_file_store_in_atlas_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a URL or $ATLAS_STORE_URL, the file store at $ATLAS_HOME is opened."""
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path / "home"))
    store = open_store()
    assert isinstance(store, FileStore) and store.home == tmp_path / "home"


def test_environment_names_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$ATLAS_STORE_URL is used when no URL is passed."""
    monkeypatch.setenv(STORE_URL_ENV, f"file://{tmp_path}/from%20env")
    store = open_store()
    assert isinstance(store, FileStore) and store.home == tmp_path / "from env"


def test_empty_environment_variable_means_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty $ATLAS_STORE_URL counts as unset."""
    monkeypatch.setenv(STORE_URL_ENV, "")
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path))
    assert isinstance(open_store(), FileStore)


def test_file_url_passes_options(tmp_path: Path) -> None:
    """file:///abs/path opens a FileStore there, with keyword arguments passed on."""
    store = open_store(f"file://{tmp_path}", lock_timeout=3)
    assert isinstance(store, FileStore) and store.home == tmp_path and store.lock_timeout == 3


@pytest.mark.parametrize("url", ["file://otherhost/x", "file:relative/path", "file:///x?q=1"])
def test_bad_file_urls_refused(url: str) -> None:
    """A file URL with a host, a relative path or a query is refused with ValueError."""
    with pytest.raises(ValueError, match="file:///"):
        open_store(url)


def test_unknown_scheme_refused_without_echoing_password() -> None:
    """Another scheme raises ValueError naming the supported ones, with any password masked."""
    with pytest.raises(ValueError, match="postgresql://") as info:
        open_store("mysql://root:hunter2@db/atlas")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_url_opens_a_working_store(scheme: str, pg_url: str, pg_schema: str) -> None:
    """postgresql:// and postgres:// URLs open a PostgresStore that works, keyword arguments included."""
    url = pg_url.replace("postgresql://", f"{scheme}://", 1)
    store = open_store(url, schema=pg_schema, lock_timeout=5)
    try:
        assert isinstance(store, PostgresStore) and store.schema == pg_schema and store.lock_timeout == 5
        store.create_workspace(f"ws-open-{scheme}")
        assert store.get_workspace(f"ws-open-{scheme}").name == f"ws-open-{scheme}"
    finally:
        store.close()


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False, timeout=60
    )


def test_missing_extra_says_what_to_install() -> None:
    """Without psycopg installed, a postgresql:// URL raises MissingExtraError naming the pip extra."""
    done = _run(
        """
        import sys
        sys.modules["psycopg"] = None  # as if it were not installed
        from atlas_tasks.open import MissingExtraError, open_store
        try:
            open_store("postgresql://localhost/atlas")
        except MissingExtraError as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'atlas-tasks[postgres]'" in done.stdout


def test_missing_extra_error_pickles() -> None:
    """MissingExtraError survives pickling with its attributes."""
    import pickle

    error = MissingExtraError("postgres", "PostgresStore", "No module named 'psycopg'")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.extra == "postgres"


@pytest.mark.parametrize(
    "module", ["atlas_tasks", "atlas_tasks.backends.file", "atlas_tasks.open", "atlas_tasks.migrate"]
)
def test_psycopg_not_imported_by_the_rest(module: str) -> None:
    """Importing the package, the file backend, open_store or copy_store never imports psycopg."""
    done = _run(
        f"""
        import sys, {module}
        from atlas_tasks.open import open_store
        open_store("file:///tmp/never-created")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("psycopg", "psycopg_pool")))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_schema_query_parameter_picks_the_schema(pg_url: str, pg_schema: str) -> None:
    """`?schema=NAME` is taken out of the URL (libpq would refuse it) and picks the PostgreSQL schema."""
    url = f"{pg_url}{'&' if '?' in pg_url else '?'}schema={pg_schema}"
    store = open_store(url)
    try:
        assert isinstance(store, PostgresStore) and store.schema == pg_schema
        store.list_workspaces()  # it connects: the rest of the URL reached libpq intact
    finally:
        store.close()
    with pytest.raises(ValueError, match="more than one schema"):
        open_store(f"{url}&schema=other")
    with pytest.raises(ValueError, match="names schema"):
        open_store(url, schema="another")
