"""The ``serve`` command: the live web dashboard of a store.

It needs the optional ``web`` extra (starlette, jinja2, uvicorn), imported only here, inside the command, so every
other command (and ``--help``) starts as fast as before and works without it.
"""

from __future__ import annotations

import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from atlas_tasks.cli._errors import note, warn
from atlas_tasks.cli._state import state
from atlas_tasks.errors import AtlasTasksError

if TYPE_CHECKING:
    from atlas_tasks.backends.file import FileStore

DEFAULT_PORT = 8700

HostOpt = Annotated[
    str, typer.Option("--host", metavar="ADDR", help="Address to listen on (0.0.0.0: every interface).")
]
PortOpt = Annotated[int, typer.Option("--port", metavar="PORT", min=0, max=65535, help="Port (0: any free one).")]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", metavar="URL", help="The store, as file:///absolute/path.", show_default=False),
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
) -> None:
    """Serve the live web dashboard: workspaces, tasks, steps, artifacts and logs, updated as runs progress.

    Listens on 127.0.0.1 unless --host says otherwise. Read-only unless --allow-actions; then approve and reject
    need the token printed at start. A JSON API under /api/ gives the CLI's --json documents.
    """
    try:
        import uvicorn

        from atlas_tasks.web import create_app
        from atlas_tasks.web._runner import runner_for
    except ImportError as exc:
        from atlas_tasks.open import MissingExtraError

        raise MissingExtraError("web", "atlas-tasks serve", exc) from exc

    store = _open_store(ctx, store_url, home)
    sock = _listen(host, port)
    app = create_app(store, allow_actions=allow_actions, bind_host=host, runner=runner_for(store.home))
    dashboard = app.state.dashboard
    url = _url(host, sock.getsockname()[1])
    _announce(store, host, url, dashboard.security.token if allow_actions else None)
    # Read every workspace once in the background, so the first page a person opens is already fast.
    threading.Thread(target=dashboard.warm_up, name="atlas-tasks-warm-up", daemon=True).start()
    if open_browser:
        target = f"{url}?token={dashboard.security.token}" if allow_actions else url
        threading.Timer(0.5, webbrowser.open, (target,)).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


def _open_store(ctx: typer.Context, store_url: str | None, home: Path | None) -> FileStore:
    from atlas_tasks.backends.file import FileStore

    if store_url is not None and home is not None:
        raise typer.BadParameter("give --store or --home, not both", param_hint="--store")
    if store_url is None:
        return FileStore(home if home is not None else state(ctx).home)
    from urllib.parse import urlsplit

    from atlas_tasks.open import open_store

    if urlsplit(store_url).scheme.lower() != "file":
        raise typer.BadParameter(
            "only file:///absolute/path stores can be served for now (the dashboard of a PostgreSQL store is not "
            "built yet); use --home DIR or --store file:///DIR",
            param_hint="--store",
        )
    try:
        store = open_store(store_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--store") from None
    assert isinstance(store, FileStore)
    return store


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


def _announce(store: FileStore, host: str, url: str, token: str | None) -> None:
    from atlas_tasks.web._security import is_loopback

    note(f"atlas-tasks dashboard of {store.home}")
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
