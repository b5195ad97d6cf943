"""Shared fixtures: a fresh store with one workspace, on the file store or on each backend a test module asks for.

A test module that is about behaviour every store shares sets ``STORE_KINDS = ("memory", "file")`` (add
``"postgres"`` where the backend matters); a single test can narrow or widen that with
``@pytest.mark.stores("file")``. Its ``store`` fixture is then a fresh store of each kind in turn (test ids end in
``[memory]``, ``[file]``, ``[postgres]``), as dbos runs its whole suite once per system database. Modules that set
nothing get the file store, as before.

* memory: a :class:`MemoryStore` under a random ``memory://`` name, so a CLI run in this process (``--store
  store.url``) opens the very same store;
* file: a :class:`FileStore` in a temporary home (``store.home``);
* postgres: a :class:`PostgresStore` in a fresh random schema (dropped afterwards) of the session's throwaway server
  (tests/pg_server.py: it fails loudly, never skips, when no server can be started).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlas_tasks import Task
from atlas_tasks.store import Store
from atlas_tasks.testing.conformance import sample_task
from store_kinds import KINDS, drop_schema, open_kind


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stores(*kinds): run this test's store on these backends (memory/file/postgres)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parameterise ``store_kind`` from the test's ``stores`` mark, else its module's ``STORE_KINDS``."""
    if "store_kind" not in metafunc.fixturenames:
        return
    if any("store_kind" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")):
        return  # the test lists its kinds itself (to mark one of them)
    marker = metafunc.definition.get_closest_marker("stores")
    kinds = marker.args if marker is not None else getattr(metafunc.module, "STORE_KINDS", None)
    if kinds is None:
        return
    unknown = set(kinds) - set(KINDS)
    assert not unknown, f"unknown store kinds {sorted(unknown)} (known: {KINDS})"
    metafunc.parametrize("store_kind", [k for k in KINDS if k in kinds])


@pytest.fixture
def store_kind() -> str:
    """The backend of this test's ``store``: its parameter, or ``file`` where the module asks for none."""
    return "file"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def make_any_store(request: pytest.FixtureRequest, home: Path) -> Iterator[dict[str, Store]]:
    """The stores :func:`store_kinds.open_kind` made for this test, by kind; closed and dropped after it."""
    made: dict[str, Store] = {}
    yield made
    for kind, store in made.items():
        if kind == "memory":
            from atlas_tasks.backends.memory import MemoryStore

            assert isinstance(store, MemoryStore)
            MemoryStore._named.pop(store.name, None)  # the registry would keep every test's tasks alive
        elif kind == "postgres":
            from atlas_tasks.backends.postgres import PostgresStore

            assert isinstance(store, PostgresStore)
            schema = store.schema
            store.close()
            drop_schema(request, schema)


@pytest.fixture
def store(request: pytest.FixtureRequest, store_kind: str, home: Path, make_any_store: dict[str, Store]) -> Store:
    """A fresh, empty store of this test's kind (the file store unless the module parameterises it)."""
    return open_kind(store_kind, request, home, make_any_store)


@pytest.fixture
def ws(store: Store) -> str:
    name = f"ws-{secrets.token_hex(3)}"
    store.create_workspace(name)
    return name


@pytest.fixture
def task(store: Store, ws: str) -> Task:
    return store.create(ws, sample_task())
