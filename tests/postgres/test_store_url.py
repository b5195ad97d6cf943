"""store.url round-trips: ``open_store(store.url)`` opens the same server, database and schema, however it was built."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.store.urls import open_store, redact


def _keyword_conninfo(url: str) -> str:
    """The same connection as a libpq ``key=value`` string (values quoted the libpq way)."""

    def quoted(value: Any) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{key}={quoted(value)}" for key, value in conninfo_to_dict(url).items() if value is not None)


def _assert_reopens(store: PostgresStore) -> None:
    """A workspace made through ``store`` is seen through ``open_store(store.url)``, in the same schema."""
    name = f"ws-url-{secrets.token_hex(4)}"
    store.create_workspace(name)
    again = open_store(store.url)
    try:
        assert isinstance(again, PostgresStore), redact(store.url)
        assert (again.where, again.schema) == (store.where, store.schema)
        assert again.get_workspace(name).name == name
        assert again.url == store.url  # stable: reopening again gives the very same URL
    finally:
        again.close()


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda url, schema, pool: PostgresStore(url, schema=schema), id="url"),
        pytest.param(lambda url, schema, pool: PostgresStore(_keyword_conninfo(url), schema=schema), id="conninfo"),
        pytest.param(lambda url, schema, pool: PostgresStore(pool=pool, schema=schema), id="callers-pool"),
    ],
)
def test_url_reopens_the_same_store(
    build: Callable[[str, str, ConnectionPool[Any]], PostgresStore],
    pg_url: str,
    pg_schema: str,
    pg_pool: ConnectionPool[Any],
) -> None:
    """open_store(store.url) reaches the same server, database and schema, from a URL, a conninfo or a pool."""
    store = build(pg_url, pg_schema, pg_pool)
    try:
        _assert_reopens(store)
    finally:
        store.close()


def test_url_keeps_a_schema_given_in_the_url(pg_url: str, pg_schema: str) -> None:
    """A store opened from a URL with ``?schema=`` gives back a URL naming that schema once, which reopens it."""
    url = f"{pg_url}{'&' if '?' in pg_url else '?'}schema={pg_schema}"
    store = open_store(url)
    try:
        assert isinstance(store, PostgresStore) and store.url.count("schema=") == 1
        _assert_reopens(store)
    finally:
        store.close()
