"""``serve --all-repos``: one server over every store under a home, each store's dashboard under its own prefix.

::

    GET  /                          the stores: label, directory, workspaces and tasks by status, a link to each
    GET  /api/stores                the same as JSON
    *    /stores/{key}/...          that store's whole dashboard (pages, events, actions, /api/...)

``key`` is the repository's 12-hex key (its directory under ``<home>/repos/``), or ``legacy`` for the legacy tree.
The stores are found by a ``discover`` callable, asked again on every index page and API listing and whenever a
request names a key not seen yet: a repository the Go tool starts using later appears without a restart.

Security sits above the mounts: the one :class:`~atlas_tasks.web._security.SecurityMiddleware` of this
application checks the Host of every request and holds the one token and CSRF cookie; the mounted dashboards are
built without their own middleware but share its :class:`~atlas_tasks.web._security.Security`, so every action
under every prefix needs the same token and passes the same CSRF check.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.repos import ScopedHome
from atlas_tasks.runs import LeasingStore
from atlas_tasks.store import Store
from atlas_tasks.web import _live, _views
from atlas_tasks.web._index import index_for
from atlas_tasks.web._security import Security, SecurityMiddleware, hosts_for
from atlas_tasks.web.app import (
    HERE,
    STORES_ROOT,
    Dashboard,
    Runner,
    _environment,
    dashboard_app,
    error_handlers,
    json_response,
    page,
)

log = logging.getLogger("atlas_tasks.web")

#: The key of the legacy ``<home>/workspaces`` tree; every other key is a repository's 12 hex digits.
LEGACY = "legacy"
_KEY_RE = re.compile(r"[0-9a-f]{12}|legacy")


@dataclass(frozen=True)
class StoreEntry:
    """One store under the home, as ``discover`` reports it.

    Attributes:
        key: ``legacy``, or the repository's 12-hex key: the store's prefix is ``/stores/<key>/``.
        label: where its tasks live, for people (the repository's path, ``repos/<key>``, or the legacy tree).
        path: the store's directory.
        store: the opened store (the same object each time for the same key: its dashboard is kept).
    """

    key: str
    label: str
    path: Path
    store: LeasingStore


Discover = Callable[[], Sequence[StoreEntry]]


def discover_home(
    base: Path,
    label_of: Callable[[Store, ScopedHome], str],
    open_store: Callable[[ScopedHome], LeasingStore],
) -> Discover:
    """A ``discover`` of the stores under ``base``: a scan of the directory each time it is asked (cheap: one
    ``scandir`` of ``repos/`` and the ``workspace.json`` files that name a repository), each store opened once.

    Args:
        label_of: How ``--all-repos`` labels a store's rows (``""`` for the legacy tree): the CLI's, so the
            dashboard and ``list --all-repos`` name a store alike.
        open_store: Opens the store of one directory (kept, and closed by whoever opened it).
    """
    from atlas_tasks.repos import scoped_homes

    opened: dict[Path, LeasingStore] = {}
    lock = threading.Lock()

    def discover() -> list[StoreEntry]:
        entries = []
        with lock:  # two index pages at once must not open one store twice
            for scoped in scoped_homes(base):
                store = opened.get(scoped.path)
                if store is None:
                    store = opened[scoped.path] = open_store(scoped)
                label = label_of(store, scoped) or f"legacy ({base / 'workspaces'})"
                entries.append(StoreEntry(scoped.key or LEGACY, label, scoped.path, store))
        return entries

    return discover


class StoreSet:
    """The stores under the home and one dashboard application for each, found again on :meth:`refresh`."""

    def __init__(
        self,
        discover: Discover,
        *,
        security: Security,
        live: _live.LiveSettings,
        runner_for: Callable[[LeasingStore], Runner | None],
        home_label: str,
    ) -> None:
        self._discover = discover
        self.security = security
        self.templates = _environment()
        self.store_label = home_label  # the index page's header: the home
        self._live = live
        self._runner_for = runner_for
        self._lock = threading.Lock()
        self._mounted: dict[str, tuple[StoreEntry, Dashboard, Starlette]] = {}

    def refresh(self) -> list[tuple[StoreEntry, Dashboard]]:
        """Ask ``discover`` again: new stores get a dashboard, vanished ones lose theirs, labels follow the stores.

        Returns the stores in ``discover``'s order (the legacy tree first, then by key).
        """
        entries = list(self._discover())
        with self._lock:
            keep: dict[str, tuple[StoreEntry, Dashboard, Starlette]] = {}
            for entry in entries:
                known = self._mounted.get(entry.key)
                if known is not None and known[0].store is entry.store:
                    dashboard, app = known[1], known[2]
                    dashboard.store_label = entry.label
                else:
                    dashboard, app = self._build(entry)
                keep[entry.key] = (entry, dashboard, app)
            gone = [dash for key, (_, dash, _) in self._mounted.items() if key not in keep or keep[key][1] is not dash]
            self._mounted = keep
        for dashboard in gone:  # outside the lock: closing may wait for log followers
            dashboard.close()
        return [(entry, dash) for entry, dash, _ in keep.values()]

    def app_for(self, key: str) -> Starlette | None:
        """The dashboard application of ``key``, looking the home over again when the key is new."""
        with self._lock:
            known = self._mounted.get(key)
        if known is None and _KEY_RE.fullmatch(key):  # only a well-formed key is worth a scan
            self.refresh()
            with self._lock:
                known = self._mounted.get(key)
        return None if known is None else known[2]

    def dashboards(self) -> list[Dashboard]:
        with self._lock:
            return [dash for _, dash, _ in self._mounted.values()]

    def warm_up(self) -> None:
        """Read every store's workspaces once (see :meth:`Dashboard.warm_up`)."""
        for dashboard in self.dashboards():
            dashboard.warm_up()

    def close(self) -> None:
        """Stop what every dashboard runs in the background."""
        for dashboard in self.dashboards():
            dashboard.close()

    def _build(self, entry: StoreEntry) -> tuple[Dashboard, Starlette]:
        dashboard = Dashboard(
            store=entry.store,
            index=index_for(entry.store),
            source=_live.source_for(entry.store),
            security=self.security,  # shared: one token and one CSRF cookie for every store
            templates=self.templates,
            live=self._live,
            runner=self._runner_for(entry.store),
            store_label=entry.label,
        )
        return dashboard, dashboard_app(dashboard)  # no middleware of its own: the set's applies above it


class _StoreMount:
    """The ASGI application at ``/stores/{key}``: hands the request to that store's dashboard."""

    def __init__(self, stores: StoreSet) -> None:
        self.stores = stores

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = scope["path_params"]["key"]
        app = await run_in_threadpool(self.stores.app_for, key)
        if app is None:
            raise HTTPException(404, f"no store {key!r} under this home: the index page lists the stores")
        # The dashboard sees itself as an application mounted at /stores/<key>: its own router and path
        # parameters (url_for builds its own links under the prefix), and where the index of the stores is.
        child = dict(scope)
        child["router"] = app.router
        child["app_root_path"] = scope["root_path"]
        child["path_params"] = {}
        child[STORES_ROOT] = str(scope.get("app_root_path", "")).rstrip("/")
        await app(child, receive, send)


def _counts(dashboard: Dashboard) -> dict[str, Any]:
    """A store's workspaces and tasks by status (crashed runs apart), or the error that kept it from being read."""
    try:
        listing = _views.task_list_page(dashboard.index, dashboard.store, None, per_page=1)
        workspaces = len(dashboard.index.workspace_names())
    except (AtlasTasksError, OSError) as exc:  # one unreadable store must not hide the others
        return {"workspaces": None, "tasks": None, "by_status": {}, "error": str(exc)}
    by_status = {status: count for status, count in listing.counts.items() if count}
    return {"workspaces": workspaces, "tasks": listing.total, "by_status": by_status, "error": None}


def _stores(request: Request) -> StoreSet:
    stores: StoreSet = request.app.state.chrome
    return stores


async def stores_page(request: Request) -> HTMLResponse:
    """The index: every store under the home with its counts and a link to its dashboard."""
    stores = _stores(request)
    found = await run_in_threadpool(lambda: [(entry, _counts(dash)) for entry, dash in stores.refresh()])
    return page(request, "stores.html", stores=found, statuses=_views.STATUS_FILTERS)


async def api_stores(request: Request) -> Response:
    """``GET /api/stores``: key, label, path, prefix and counts of every store."""
    stores = _stores(request)
    found = await run_in_threadpool(lambda: [(entry, _counts(dash)) for entry, dash in stores.refresh()])
    root = str(request.scope.get("root_path", "")).rstrip("/")
    document = [
        {"key": entry.key, "label": entry.label, "path": str(entry.path), "url": f"{root}/stores/{entry.key}/"} | counts
        for entry, counts in found
    ]
    return json_response({"stores": document})


def create_stores_app(
    discover: Discover,
    *,
    home_label: str,
    allow_actions: bool = False,
    token: str | None = None,
    bind_host: str = "127.0.0.1",
    live: _live.LiveSettings | None = None,
    runner_for: Callable[[LeasingStore], Runner | None] = lambda store: None,
) -> Starlette:
    """One application over every store ``discover`` reports, each store's dashboard under ``/stores/<key>/``.

    Args:
        discover: Lists the stores under the home (asked at start, on each index page and for an unknown key);
            it should return the same store object for the same key, so that key's dashboard is kept.
        home_label: How the index page's header names the home.
        allow_actions, token, bind_host, live: as for :func:`~atlas_tasks.web.create_app`, for every store.
        runner_for: The runner that continues a run after an approval, per store (``None``: leave it).
    """
    security = Security(allow_actions=allow_actions, allowed_hosts=hosts_for(bind_host))
    if token is not None:
        security.token = token
    stores = StoreSet(
        discover, security=security, live=live or _live.LiveSettings(), runner_for=runner_for, home_label=home_label
    )
    stores.refresh()
    app = Starlette(
        routes=[
            Route("/", stores_page, name="stores"),
            Route("/api/stores", api_stores),
            Mount("/stores/{key}", app=_StoreMount(stores)),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(SecurityMiddleware, security=security)],
        exception_handlers=error_handlers(),
    )
    app.state.chrome = stores
    app.state.stores = stores
    app.state.start_page = "stores"
    return app


__all__ = ["LEGACY", "Discover", "StoreEntry", "StoreSet", "create_stores_app", "discover_home"]
