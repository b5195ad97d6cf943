"""Open a store from a URL: ``file:///abs/path`` (the file store) or ``postgresql://…`` (PostgreSQL).

    store = open_store()                                   # $ATLAS_STORE_URL, else the file store in $ATLAS_HOME
    store = open_store("postgresql://atlas@db:5432/atlas")

Backends are imported only when asked for, so ``import atlas_tasks`` never imports psycopg.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.store import Store

#: The environment variable naming the default store.
STORE_URL_ENV = "ATLAS_STORE_URL"

_POSTGRES_SCHEMES = ("postgresql", "postgres")


class MissingExtraError(AtlasTasksError, ImportError):
    """A backend needs packages of an optional extra that are not installed.

    Attributes: ``extra`` (e.g. ``"postgres"``), ``feature`` and ``reason`` (the import error).
    """

    extra: str
    feature: str
    reason: str

    def __init__(self, extra: str, feature: str, reason: BaseException | str) -> None:
        super().__init__(
            f"{feature} needs the optional '{extra}' dependencies ({reason}); install them with: "
            f"pip install 'atlas-tasks[{extra}]'",
            extra=extra,
            feature=feature,
            reason=str(reason),
        )


def open_store(url: str | None = None, **kwargs: Any) -> Store:
    """Open the store a URL names.

    Args:
        url: ``file:///absolute/path`` for a file store at that home, ``postgresql://…`` (or ``postgres://…``) for
            PostgreSQL, where a ``schema=NAME`` query parameter picks the PostgreSQL schema (the others go to
            libpq: ``?sslmode=require``); ``None``: ``$ATLAS_STORE_URL``, and if that is unset or empty the file
            store at its default home (``$ATLAS_HOME`` or ``~/.atlas``).
        **kwargs: passed to the store's constructor (``lock_timeout``, ``id_style``; ``schema``, ``pool`` … for
            PostgreSQL).

    Returns:
        A FileStore or a PostgresStore. Nothing is created or connected until the first operation.

    Raises:
        ValueError: a URL of another scheme, or a file URL that is not an absolute local path.
        MissingExtraError: a PostgreSQL URL without the ``postgres`` extra installed.
    """
    if url is None:
        url = os.environ.get(STORE_URL_ENV) or None
    if url is None:
        return _file_store(None, kwargs)
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return _file_store(file_url_path(url), kwargs)
    if scheme in _POSTGRES_SCHEMES:
        return _postgres_store(url, kwargs)
    raise ValueError(
        f"unsupported store URL {_redact(url)!r}: use file:///absolute/path or postgresql://user@host:port/database"
    )


def file_url_path(url: str) -> str:
    """The directory a ``file:///absolute/path`` URL names.

    Raises:
        ValueError: a host other than localhost, a relative path, a query or a fragment.
    """
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"file store URL {url!r} names a host; use file:///absolute/path (a local directory)")
    path = unquote(parts.path)
    if not path.startswith("/") or parts.query or parts.fragment:
        raise ValueError(f"file store URL {url!r} must be file:///absolute/path, without query or fragment")
    return path


def _file_store(home: str | None, kwargs: dict[str, Any]) -> Store:
    from atlas_tasks.backends.file import FileStore

    return FileStore(home, **kwargs)


def _postgres_store(url: str, kwargs: dict[str, Any]) -> Store:
    try:
        from atlas_tasks.backends.postgres import PostgresStore
    except ImportError as exc:
        if isinstance(exc, MissingExtraError):
            raise
        if exc.name in ("psycopg", "psycopg_pool"):
            raise MissingExtraError("postgres", "a postgresql:// store", exc) from exc
        raise
    url, schema = _split_schema(url)
    if schema is not None:
        if "schema" in kwargs and kwargs["schema"] != schema:
            raise ValueError(f"the store URL names schema {schema!r} and the caller schema {kwargs['schema']!r}")
        kwargs = {**kwargs, "schema": schema}
    return PostgresStore(url, **kwargs)


def _split_schema(url: str) -> tuple[str, str | None]:
    # `schema` is ours, not libpq's (libpq refuses parameters it does not know): take it out of the URL.
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in params if key == "schema"]
    if not schemas:
        return url, None
    if len(schemas) > 1:
        raise ValueError(f"store URL {_redact(url)!r} names more than one schema")
    rest = urlencode([(key, value) for key, value in params if key != "schema"])
    return parts._replace(query=rest).geturl(), schemas[0]


def _redact(url: str) -> str:
    # Never echo a password back into an error message or a log.
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


__all__ = ["STORE_URL_ENV", "MissingExtraError", "file_url_path", "open_store"]
