"""One way to open a store: a URL, looked up in a registry of schemes.

    open_store()                                   # $ATLAS_STORE_URL, else the file store in $ATLAS_HOME or ~/.atlas
    open_store("file:///srv/atlas")                # a file store at that home
    open_store("file:///srv/atlas?task_refs=all")  # the same, keeping a workspace.json ref for every task
    open_store("postgresql://atlas@db:5432/atlas?schema=team")
    open_store("memory://scratch")                 # an in-memory store, shared by name within this process

Every store knows its own URL (``store.url``), so a store can be handed to another process (the dashboard's runner)
as a string. ``--home``, ``--store``, ``$ATLAS_STORE_URL`` and ``serve`` all come through here. A new backend adds
itself with :func:`register_scheme`. Backends are imported only when asked for, so ``import atlas_tasks`` never
imports psycopg.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from atlas_tasks.errors import MissingExtraError

if TYPE_CHECKING:
    from atlas_tasks.store import Store

#: The environment variable naming the default store.
STORE_URL_ENV = "ATLAS_STORE_URL"
#: The environment variable naming the file store's default home.
HOME_ENV = "ATLAS_HOME"

Opener = Callable[[str, dict[str, Any]], "Store"]
_SCHEMES: dict[str, Opener] = {}


def register_scheme(scheme: str, opener: Opener) -> None:
    """Make ``open_store`` open URLs of ``scheme`` with ``opener(url, kwargs)``."""
    _SCHEMES[scheme.lower()] = opener


def default_home() -> Path:
    """The file store's default home: ``$ATLAS_HOME`` (``~`` expanded) or ``~/.atlas``, absolute."""
    value = os.environ.get(HOME_ENV) or "~/.atlas"
    return Path(value).expanduser().absolute()


def file_url(home: str | os.PathLike[str]) -> str:
    """The URL of the file store at ``home`` (made absolute, ``~`` expanded)."""
    return "file://" + quote(str(Path(home).expanduser().absolute()))


def open_store(url: str | None = None, **kwargs: Any) -> Store:
    """Open the store a URL names.

    Args:
        url: ``file:///absolute/path`` for a file store at that home (``?task_refs=all``: the file store's
            ``task_refs`` mode, see :class:`~atlas_tasks.backends.file.FileStore`), ``postgresql://…`` (or
            ``postgres://…``) for PostgreSQL, where a ``schema=NAME`` query parameter picks the PostgreSQL schema
            (the others go to libpq: ``?sslmode=require``), ``memory://NAME`` for an in-memory store of this
            process; ``None``: ``$ATLAS_STORE_URL``, and if that is unset or empty the file store at its default
            home (``$ATLAS_HOME`` or ``~/.atlas``).
        **kwargs: passed to the store's constructor (``lock_timeout``, ``id_style``; ``schema``, ``pool`` … for
            PostgreSQL).

    Returns:
        The store. Nothing is created or connected until the first operation.

    Raises:
        ValueError: a URL of an unknown scheme, or a file URL that is not an absolute local path.
        MissingExtraError: a PostgreSQL URL without the ``postgres`` extra installed.
    """
    if url is None:
        url = os.environ.get(STORE_URL_ENV) or None
    if url is None:
        return _open_file(None, kwargs)
    scheme = urlsplit(url).scheme.lower()
    opener = _SCHEMES.get(scheme)
    if opener is None:
        raise ValueError(
            f"unsupported store URL {redact(url)!r}: use file:///absolute/path, postgresql://user@host:port/database "
            "or memory://name"
        )
    return opener(url, kwargs)


def file_url_path(url: str) -> str:
    """The directory a ``file:///absolute/path`` URL names (its ``task_refs`` option aside).

    Raises:
        ValueError: a host other than localhost, a relative path, a fragment, or a query other than one
            ``task_refs=existing|all``.
    """
    return _file_url(url)[0]


def _file_url(url: str) -> tuple[str, dict[str, Any]]:
    """The directory a file URL names and the FileStore keywords its query gives (``task_refs``)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"file store URL {url!r} names a host; use file:///absolute/path (a local directory)")
    path = unquote(parts.path)
    if not path.startswith("/") or parts.fragment:
        raise ValueError(f"file store URL {url!r} must be file:///absolute/path, without a fragment")
    params = parse_qsl(parts.query, keep_blank_values=True)
    if any(key != "task_refs" for key, _ in params) or len(params) > 1:
        raise ValueError(
            f"file store URL {url!r}: the only query a file URL takes is one ?task_refs=existing or ?task_refs=all"
        )
    options: dict[str, Any] = {}
    if params:
        from atlas_tasks.backends.file._workspaces import check_mode

        try:
            options["task_refs"] = check_mode(params[0][1])
        except ValueError:
            raise ValueError(f"file store URL {url!r}: task_refs must be 'existing' or 'all'") from None
    return path, options


def _open_file_url(url: str, kwargs: dict[str, Any]) -> Store:
    path, options = _file_url(url)
    for key, value in options.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(f"the store URL says {key}={value!r} and the caller {key}={kwargs[key]!r}")
    return _open_file(path, {**kwargs, **options})


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: never echo one into a message or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def split_schema(url: str) -> tuple[str, str | None]:
    """A PostgreSQL URL without its ``schema=`` parameter (ours, not libpq's), and that schema (or None)."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in params if key == "schema"]
    if not schemas:
        return url, None
    if len(schemas) > 1:
        raise ValueError(f"store URL {redact(url)!r} names more than one schema")
    rest = urlencode([(key, value) for key, value in params if key != "schema"])
    rebuilt = parts._replace(query=rest).geturl()
    # urllib drops an empty authority ("postgresql://?host=…" or "postgresql:///db" would lose their "//"), which
    # libpq then refuses: put it back.
    lead = f"{parts.scheme}:"
    if url.startswith(lead + "//") and not rebuilt.startswith(lead + "//"):
        rebuilt = lead + "//" + rebuilt[len(lead) :]
    return rebuilt, schemas[0]


def _open_file(home: str | None, kwargs: dict[str, Any]) -> Store:
    from atlas_tasks.backends.file import FileStore

    return FileStore(home, **kwargs)


def _open_postgres(url: str, kwargs: dict[str, Any]) -> Store:
    try:
        from atlas_tasks.backends.postgres import PostgresStore
    except ImportError as exc:
        if isinstance(exc, MissingExtraError):
            raise
        if exc.name in ("psycopg", "psycopg_pool"):
            raise MissingExtraError("postgres", "a postgresql:// store", exc) from exc
        raise
    url, schema = split_schema(url)
    if schema is not None:
        if "schema" in kwargs and kwargs["schema"] != schema:
            raise ValueError(f"the store URL names schema {schema!r} and the caller schema {kwargs['schema']!r}")
        kwargs = {**kwargs, "schema": schema}
    return PostgresStore(url, **kwargs)


def _open_memory(url: str, kwargs: dict[str, Any]) -> Store:
    from atlas_tasks.backends.memory import MemoryStore

    return MemoryStore.named(urlsplit(url).netloc or unquote(urlsplit(url).path.lstrip("/")), **kwargs)


register_scheme("file", _open_file_url)
register_scheme("postgresql", _open_postgres)
register_scheme("postgres", _open_postgres)
register_scheme("memory", _open_memory)


__all__ = [
    "HOME_ENV",
    "STORE_URL_ENV",
    "default_home",
    "file_url",
    "file_url_path",
    "open_store",
    "redact",
    "register_scheme",
    "split_schema",
]
