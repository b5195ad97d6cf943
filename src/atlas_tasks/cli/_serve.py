"""The ``serve`` command: the live web dashboard of a store.

It needs the optional ``web`` extra (starlette, jinja2, uvicorn), imported only here, inside the command, so every
other command (and ``--help``) starts as fast as before and works without it.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks.cli._errors import note, warn
from atlas_tasks.cli._everywhere import AllReposOpt
from atlas_tasks.cli._state import state
from atlas_tasks.errors import AtlasTasksError

if TYPE_CHECKING:
    from atlas_tasks.runs import LeasingStore
    from atlas_tasks.web._runner import RunnerLauncher

DEFAULT_PORT = 8700

HostOpt = Annotated[
    str, typer.Option("--host", metavar="ADDR", help="Address to listen on (0.0.0.0: every interface).")
]
PortOpt = Annotated[int, typer.Option("--port", metavar="PORT", min=0, max=65535, help="Port (0: any free one).")]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="The store: file:///abs/path or postgresql://user@host:port/db (as the global --store).",
        show_default=False,
    ),
]
ServeHomeOpt = Annotated[
    Path | None,
    typer.Option("--home", metavar="DIR", help="The store's directory (as the global --home).", show_default=False),
]
OpenOpt = Annotated[bool, typer.Option("--open", help="Open the dashboard in a browser.")]
ActionsOpt = Annotated[
    bool,
    typer.Option("--allow-actions", help="Allow approve/reject from the browser (with the token printed at start)."),
]


class ServeError(AtlasTasksError):
    """The dashboard cannot start: the address is taken, or the store cannot be served."""


def serve(
    ctx: typer.Context,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = DEFAULT_PORT,
    store_url: StoreOpt = None,
    home: ServeHomeOpt = None,
    open_browser: OpenOpt = False,
    allow_actions: ActionsOpt = False,
    all_repos: AllReposOpt = False,
) -> None:
    """Serve the live web dashboard: workspaces, tasks, steps, artifacts and logs, updated as runs progress.

    Listens on 127.0.0.1 unless --host says otherwise. Read-only unless --allow-actions; then approve and reject
    need the token printed at start. A JSON API under /api/ gives the CLI's --json documents.

    With --all-repos, one server over every store under the home (the legacy one and each repository's): an index
    page at / lists them, each store's dashboard is under /stores/<key>/, and a store that appears later shows up
    without a restart.
    """
    try:
        import uvicorn  # noqa: F401 - here only so a missing extra is one clear error before anything starts

        from atlas_tasks.web import create_app
        from atlas_tasks.web._runner import runner_for
    except ImportError as exc:
        from atlas_tasks.errors import MissingExtraError

        raise MissingExtraError("web", "atlas-tasks serve", exc) from exc

    if all_repos:
        _serve_all(ctx, host, port, store_url, home, open_browser, allow_actions)
        return
    store, runner = _open_store(ctx, store_url, home, runner_for)
    sock = _listen(host, port)
    _warn_if_no_store(store)  # after the port: a taken port stays the one line an error is
    app = create_app(store, allow_actions=allow_actions, bind_host=host, runner=runner)
    dashboard = app.state.dashboard
    url = _url(host, sock.getsockname()[1])
    token = dashboard.security.token if allow_actions else None
    _announce(store, host, url, token)
    _run(app, sock, url, dashboard.warm_up, dashboard.close, token, open_browser=open_browser)


def _run(
    app: Any,
    sock: socket.socket,
    url: str,
    warm_up: Callable[[], None],
    close: Callable[[], None],
    token: str | None,
    *,
    open_browser: bool = False,
) -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C, warming its indexes up in the background, then ``close``."""
    import uvicorn

    # Read every workspace once in the background, so the first page a person opens is already fast.
    threading.Thread(target=warm_up, name="atlas-tasks-warm-up", daemon=True).start()
    if open_browser:
        import webbrowser  # only for --open: every other command starts without it

        target = f"{url}?token={token}" if token is not None else url
        threading.Timer(0.5, webbrowser.open, (target,)).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        close()


def _serve_all(
    ctx: typer.Context,
    host: str,
    port: int,
    store_url: str | None,
    home: Path | None,
    open_browser: bool,
    allow_actions: bool,
) -> None:
    """``serve --all-repos``: the index of every store under the home, each store's dashboard under its prefix."""
    from atlas_tasks.cli._everywhere import all_repos_home, label_of, open_scoped
    from atlas_tasks.web._runner import runner_for
    from atlas_tasks.web._stores import create_stores_app, discover_home

    base = all_repos_home(ctx, home, store_url)
    # Asked again on every index page: a repository the Go tool starts using later shows up without a restart.
    discover = discover_home(base, label_of, lambda scoped: open_scoped(ctx, base, scoped))
    sock = _listen(host, port)
    if not base.is_dir():
        warn(f"no home at {base}; the index stays empty until a store is created there; check --home or $ATLAS_HOME")
    app = create_stores_app(
        discover,
        home_label=str(base),
        allow_actions=allow_actions,
        bind_host=host,
        runner_for=lambda store: runner_for(store_url=store.url),
    )
    stores = app.state.stores
    url = _url(host, sock.getsockname()[1])
    token = stores.security.token if allow_actions else None
    _announce(f"every store under {base} ({len(stores.dashboards())} now)", host, url, token)
    _run(app, sock, url, stores.warm_up, stores.close, token, open_browser=open_browser)


def _open_store(
    ctx: typer.Context,
    store_url: str | None,
    home: Path | None,
    runner_for: Callable[..., RunnerLauncher],
) -> tuple[LeasingStore, RunnerLauncher]:
    """The store to serve (``serve --store/--home``, else the global options, else $ATLAS_STORE_URL) and a
    launcher of runner processes for that same store (its ``store.url``)."""
    from atlas_tasks.store.urls import file_url, open_store

    if store_url is not None and home is not None:
        raise typer.BadParameter("give --store or --home, not both", param_hint="--store")
    if home is not None:
        store_url = file_url(home)
    if store_url is not None:
        try:
            store: LeasingStore = open_store(store_url)  # type: ignore[assignment]
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--home" if home is not None else "--store") from None
        state(ctx).track(store)  # closed (its connection pool) when the command ends
    else:
        store = state(ctx).store()
    return store, runner_for(store_url=store.url)


def _warn_if_no_store(store: LeasingStore) -> None:
    """Say so when a file store's home is missing: a mistyped --home must not look like an empty store.

    Only a warning: the dashboard of an empty store is valid (it shows workspaces as soon as one is created), so
    the server still starts.
    """
    from atlas_tasks.store.capabilities import LocalFiles

    if not isinstance(store, LocalFiles):
        return
    home = store.home
    if not home.exists():
        why = "the directory does not exist"
    elif not home.is_dir():
        why = "it is not a directory"
    else:
        return
    warn(
        f"no store at {home} ({why}); the dashboard stays empty until `atlas-tasks workspace create NAME` "
        "(or `make demo` in the source tree) creates it; check --home, --store or $ATLAS_HOME"
    )


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket here, so a taken port is one clear error line (and port 0 picks a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host!r}: {exc.strerror}; give --host an address of this machine") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another port with --port (0: any free one)"
        ) from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a URL to print, not a bind
    if ":" in shown:
        shown = "[::1]" if shown == "::" else f"[{shown}]"
    return f"http://{shown}:{port}/"


def _announce(what: LeasingStore | str, host: str, url: str, token: str | None) -> None:
    """Say what is served where, and how to unlock actions. ``what``: the store, or a description of the stores."""
    from atlas_tasks.web._security import is_loopback
    from atlas_tasks.web.app import describe

    note(f"atlas-tasks dashboard of {what if isinstance(what, str) else describe(what)}")
    note(f"  {url}")
    if is_loopback(host):
        note(f"listening on {host} only: other machines cannot connect (--host 0.0.0.0 would change that)")
    else:
        warn(f"listening on {host}: anyone who can reach this machine can read these tasks")
    if token is None:
        note("read-only: start with --allow-actions to approve or reject from the browser")
    else:
        note("actions are on: open this URL once to unlock them in your browser (keep the token private):")
        note(f"  {url}?token={token}")
        note(f"API clients send the header: Authorization: Bearer {token}")
    note("Ctrl-C stops it.")
    sys.stderr.flush()
