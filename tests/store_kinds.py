"""The stores the parameterised suites run on, and how the CLI is pointed at one (used by tests/conftest.py).

Imported by test modules as ``from store_kinds import cli_args`` (tests/ is on the path, as for pg_server).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from atlas_tasks import FileStore
from atlas_tasks.store import Store

#: The kinds a parameterised module may list; the order of the test ids.
KINDS = ("memory", "file", "postgres")

# For a store that is not a file store: the test's home directory, where the CLI finds user templates (--home).
_TEMPLATE_HOMES: dict[str, Path] = {}


def open_kind(kind: str, request: pytest.FixtureRequest, home: Path, made: dict[str, Store]) -> Store:
    """A fresh, empty store of ``kind`` (one per test: asking twice returns the same store)."""
    if kind in made:
        return made[kind]
    store: Store
    if kind == "memory":
        from atlas_tasks.backends.memory import MemoryStore

        store = MemoryStore.named(f"test-{secrets.token_hex(6)}")
    elif kind == "file":
        store = FileStore(home, lock_timeout=5)
    elif kind == "postgres":
        from atlas_tasks.backends.postgres import PostgresStore
        from pg_server import server_url

        store = PostgresStore(server_url(request), schema=f"atlas_test_{secrets.token_hex(4)}", lock_timeout=30)
    else:
        raise AssertionError(f"unknown store kind {kind!r}")
    made[kind] = store
    if kind != "file":
        _TEMPLATE_HOMES[store.url] = home
    return store


def drop_schema(request: pytest.FixtureRequest, schema: str) -> None:
    import psycopg

    from pg_server import server_url

    with psycopg.connect(server_url(request), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def cli_args(store: Store) -> list[str]:
    """The global options that point an ``atlas-tasks`` run at ``store``: ``--store URL``, and for a store that is
    not a file store ``--home`` (the test's home, where user templates live)."""
    home = _TEMPLATE_HOMES.get(store.url)
    return ["--store", store.url, *(["--home", str(home)] if home is not None else [])]
