"""The dashboard's ASGI application: pages, the JSON API, live events and the two actions.

Build it with :func:`create_app` around any store that holds run leases (``lease_holder``): the file store or
PostgresStore. ``atlas-tasks serve`` runs it under uvicorn.

Routes (``{name:path}`` is an artifact path such as ``sdd/spec.md``)::

    GET  /                                         workspaces
    GET  /tasks                                    tasks of every workspace   ?status=..&q=..&page=..&per_page=..
    GET  /workspaces/{ws}                          tasks of one workspace     (same parameters)
    GET  /workspaces/{ws}/tasks/{id}               one task: header, steps, transitions, artifacts, log
    GET  /workspaces/{ws}/tasks/{id}/artifacts/{name:path}   an artifact shown (JSON, Markdown, text)
    GET  /workspaces/{ws}/tasks/{id}/raw/{name:path}         its bytes, with a safe content type (?download=1)
    GET  /workspaces/{ws}/tasks/{id}/events        Server-Sent Events of the task page
    GET  /events/tasks?t={ws}/{id}...              Server-Sent Events of a listing page
    POST /workspaces/{ws}/tasks/{id}/approve|reject|cancel     with --allow-actions, the token and CSRF
    GET  /api/...                                  the CLI's --json documents (see docs/web.md)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from atlas_tasks.errors import (
    AtlasTasksError,
    ConflictError,
    CorruptTaskError,
    CorruptWorkspaceError,
    InvalidNameError,
    InvalidTransitionError,
    LockTimeoutError,
    SchemaVersionError,
    StorageError,
    TaskRunningError,
)
from atlas_tasks.runs import LeasingStore, NotRunnableError, approve, ready_to_continue, reject
from atlas_tasks.store import Store
from atlas_tasks.views import documents as _docs
from atlas_tasks.views import text as _text
from atlas_tasks.web import _content, _live, _views
from atlas_tasks.web._index import PagedIndex, TaskIndex, index_for
from atlas_tasks.web._security import (
    RAW_CSP,
    SECURITY_HEADERS,
    Forbidden,
    Security,
    SecurityMiddleware,
    check_action,
    check_before_body,
    hosts_for,
)

log = logging.getLogger("atlas_tasks.web")

HERE = Path(__file__).parent
#: How many tasks one listing page can ask the live feed about.
MAX_LIVE_ROWS = 200
MAX_QUERY = 200
MAX_FORM_BYTES = 16 * 1024
MAX_REASON = 1000

Runner = Callable[[str, str], None]


class BadRequest(Exception):
    """A query parameter or form field that makes no sense (400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Dashboard:
    """Everything the routes share: the store and its index and live source, security, templates, settings."""

    store: LeasingStore
    index: TaskIndex
    source: _live.LiveSource
    security: Security
    templates: jinja2.Environment
    live: _live.LiveSettings
    runner: Runner | None
    store_label: str

    def close(self) -> None:
        """Stop what the live source runs in the background (PostgreSQL log followers and their connections)."""
        close = getattr(self.source, "close", None)
        if close is not None:
            close()

    def warm_up(self) -> None:
        """Build every workspace's first listing page once, so the first page a person opens finds its index warm
        (summaries loaded, the running tasks and the newest page read)."""
        try:
            for name in self.index.workspace_names():
                _views.task_list_page(self.index, self.store, name)
                if isinstance(self.index, PagedIndex):
                    self.index.workspace_info(name)  # the page's header: workspace.json decoded once
        except (AtlasTasksError, OSError) as exc:  # the pages will show the problem; warming is only an optimisation
            log.warning("warming up the task index failed: %s", exc)


def _dash(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.dashboard
    return dash


# -- rendering ------------------------------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: stored text is hostile
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        ago=_text.ago,
        iso=_text.iso,
        when=_text.when,
        size=_text.size,
        step_progress=_text.step_progress,
        truncate=_text.truncate,
        status_class=_views.status_class,
        display_status=_views.display_status,
        path=_quote_path,
        description_width=_text.DESCRIPTION_WIDTH,
    )
    return env


def _quote_path(name: str) -> str:
    return quote(name, safe="/")


class Chrome(Protocol):
    """What every page's frame needs: the templates, the security settings and the name of what is shown."""

    templates: jinja2.Environment
    security: Security
    store_label: str


def root_of(request: Request) -> str:
    """The path this application is mounted at (``""`` at the top; ``/stores/<key>`` under ``serve --all-repos``).

    Every link, form and event stream a page holds starts with it, so a dashboard works wherever it is mounted.
    """
    return str(request.scope.get("root_path", "")).rstrip("/")


def route_path(request: Request) -> str:
    """The request's path inside this application (its mount prefix removed)."""
    path, root = request.url.path, root_of(request)
    return (path[len(root) :] or "/") if root and path.startswith(root) else path


#: The scope key under which ``serve --all-repos`` passes a mounted dashboard the path of the stores' index.
STORES_ROOT = "atlas_tasks.stores_root"


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with what every page needs (actions, CSRF value, the store's name, the mount prefix)."""
    chrome: Chrome = request.app.state.chrome
    state = request.scope.get("state", {})
    stores_root = request.scope.get(STORES_ROOT)
    html = chrome.templates.get_template(template).render(
        request_path=request.url.path,
        root=root_of(request),
        stores_link=None if stores_root is None else stores_root + "/",
        now=datetime.now(UTC),
        allow_actions=chrome.security.allow_actions,
        authenticated=bool(state.get("authenticated")),
        csrf=state.get("csrf", ""),
        store_label=chrome.store_label,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def json_response(document: Any, status: int = 200) -> Response:
    """A JSON document written as the CLI writes it (UTF-8, 2-space indent)."""
    return Response(_docs.dumps(document, indent=2) + b"\n", status, media_type="application/json")


# -- query parameters -----------------------------------------------------------------------------------------------


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"{name} must be a whole number, not {raw!r}")
    return min(max(int(raw), low), high)


def _statuses(request: Request) -> list[str]:
    wanted = [s for s in request.query_params.getlist("status") if s]
    for status in wanted:
        if status not in _views.STATUS_FILTERS:
            raise BadRequest(f"unknown status {status!r}: use one of {', '.join(_views.STATUS_FILTERS)}")
    return list(dict.fromkeys(wanted))


def _query(request: Request) -> str:
    text = request.query_params.get("q", "")
    if len(text) > MAX_QUERY:
        raise BadRequest(f"the search text is longer than {MAX_QUERY} characters")
    return text


# -- pages ----------------------------------------------------------------------------------------------------------


def workspaces_page(request: Request) -> HTMLResponse:
    """The workspaces, each with its task counts (crashed runs counted apart)."""
    dash = _dash(request)
    found = dash.store.list_workspaces()
    summaries = []
    for ws in found:
        listing = _views.task_list_page(dash.index, dash.store, ws.name, per_page=1)
        summaries.append((ws, listing))
    errors = [_docs.workspace_error_document(exc) for exc in found.errors]
    return page(request, "workspaces.html", summaries=summaries, errors=errors)


def _listing(request: Request, workspace: str | None) -> HTMLResponse:
    dash = _dash(request)
    listing = _views.task_list_page(
        dash.index,
        dash.store,
        workspace,
        statuses=_statuses(request),
        query=_query(request),
        page=_int_param(request, "page", 1, 1, 10**9),
        per_page=_int_param(request, "per_page", _views.PER_PAGE, 1, _views.MAX_PER_PAGE),
    )
    info = None
    if workspace is not None:
        index = dash.index
        info = index.workspace_info(workspace) if isinstance(index, PagedIndex) else dash.store.get_workspace(workspace)
    return page(
        request,
        "tasks.html",
        listing=listing,
        workspace=info,
        filters=_views.STATUS_FILTERS,
        link=_list_link(request.url.path, listing),
        live_keys=[f"{row.workspace}/{row.task.id}" for row in listing.rows][:MAX_LIVE_ROWS],
    )


def _list_link(base: str, listing: _views.ListPage) -> Callable[..., str]:
    """Build listing URLs that keep the current filters, changing some of them."""

    def link(**change: Any) -> str:
        params: dict[str, Any] = {"status": listing.statuses, "q": listing.query, "page": listing.page}
        if listing.per_page != _views.PER_PAGE:
            params["per_page"] = listing.per_page
        params.update(change)
        pairs = [(k, v) for k, values in params.items() for v in (values if isinstance(values, list) else [values])]
        query = urlencode([(k, v) for k, v in pairs if v not in ("", None) and not (k == "page" and v == 1)])
        return base + (f"?{query}" if query else "")

    return link


def all_tasks_page(request: Request) -> HTMLResponse:
    """The tasks of every workspace."""
    return _listing(request, None)


def workspace_page(request: Request) -> HTMLResponse:
    """The tasks of one workspace."""
    return _listing(request, request.path_params["ws"])


def task_page(request: Request) -> HTMLResponse:
    """One task: header, steps timeline with attempts, transitions, artifacts and the log (live with JS).

    Only the log's last :data:`_views.LOG_TAIL` lines are read (``tail_log``), whatever the log's length; the
    live stream continues from the position just after them.
    """
    dash = _dash(request)
    ws, task_id = request.path_params["ws"], request.path_params["task_id"]
    task = dash.store.get(ws, task_id)
    state = _views.task_state(dash.store, ws, task)
    window = _live.log_window(dash.store, ws, task_id, _views.LOG_TAIL)
    return page(
        request,
        "task.html",
        ws=ws,
        task=task,
        state=state,
        results=[_views.step_results(task, i) for i in range(len(task.steps))],
        log=_views.log_lines(window, ws, task_id),
        log_count=len(window),
        log_from=window.end,
        log_hidden=window.start > 0,
        log_skipped=window.skipped,
        log_errors=[exc.message for exc in window.errors],
        can_run_on=dash.runner is not None,
        go_hook=_go_hook_text(dash.store, ws, task_id),
        control=_control_lines(task),
        pinned=_pin_line(task),
    )


def _pin_line(task: Any) -> str | None:
    """The task's pin (reason, who, when) for the header, or None: ``show``'s pinned line."""
    from atlas_tasks.retention.pins import describe_pin

    return describe_pin(task)


def _control_lines(task: Any) -> list[tuple[str, str]]:
    """What controls the run (stop reason, cancel, deadline, budget and spend, lineage): ``show``'s Control lines."""
    from atlas_tasks import lifecycle

    return lifecycle.describe(task)


def _go_hook_text(store: Any, ws: str, task_id: str) -> str:
    """One line about the Go ATLAS's hook of the task (its recovery advice), or empty when it has none."""
    from atlas_tasks.go_hooks import describe, hook_for

    hook = hook_for(store, ws, task_id)
    return "" if hook is None else describe(hook)


def artifact_page(request: Request) -> HTMLResponse:
    """An artifact: JSON pretty-printed, Markdown rendered (no raw HTML), text as is, anything else downloadable.

    One over the preview limit is judged "too large" from its size: its bytes are not read.
    """
    dash = _dash(request)
    ws, task_id, name = request.path_params["ws"], request.path_params["task_id"], request.path_params["name"]
    artifact = _content.open_artifact(dash.store, ws, task_id, name)
    if artifact.size > _content.PREVIEW_LIMIT:
        artifact.close()
        shown = _content.Preview("too_large")
    else:
        shown = _content.preview(name, artifact.read())
    return page(request, "artifact.html", ws=ws, task_id=task_id, name=name, length=artifact.size, preview=shown)


def artifact_raw(request: Request) -> Response:
    """An artifact's bytes: text/plain or octet-stream, nosniff, sandboxed; a download unless readable text.

    One over the preview limit is streamed in chunks as an octet-stream download, never read whole.
    """
    dash = _dash(request)
    ws, task_id, name = request.path_params["ws"], request.path_params["task_id"], request.path_params["name"]
    download = request.query_params.get("download") == "1"
    artifact = _content.open_artifact(dash.store, ws, task_id, name)
    if artifact.size <= _content.PREVIEW_LIMIT:
        return raw_response(name, artifact.read(), download=download)
    headers = {
        "content-security-policy": RAW_CSP,
        "x-content-type-options": "nosniff",
        "content-disposition": _content.content_disposition(name),
        "content-length": str(artifact.size),
    }
    return _ClosingStream(artifact.chunks(), artifact.close, media_type=_content.BINARY_TYPE, headers=headers)


class _ClosingStream(StreamingResponse):
    """A streamed body that gives back what it reads from (an open artifact) however the response ends.

    A client that leaves mid-download cancels the response: the body's generator is then only suspended, and
    would keep its file open until garbage collection.
    """

    def __init__(self, content: Iterator[bytes], close: Callable[[], None], **options: Any) -> None:
        super().__init__(content, **options)
        self._close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._close()


def raw_response(name: str, data: bytes, *, download: bool) -> Response:
    """Bytes that no browser will run: a safe content type, nosniff, a sandboxing CSP, attachment when binary."""
    media_type = _content.safe_content_type(data)
    headers = {"content-security-policy": RAW_CSP, "x-content-type-options": "nosniff"}
    if download or media_type == _content.BINARY_TYPE:
        headers["content-disposition"] = _content.content_disposition(name)
    return Response(data, media_type=media_type, headers=headers)


# -- live events ----------------------------------------------------------------------------------------------------

_SSE_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


async def task_events(request: Request) -> Response:
    """The task page's event stream (``task``, ``log``, ``end``) from the log position ``Last-Event-ID`` or
    ``log_from`` (the page passes the end of the lines it shows); without either, from the page's last lines."""
    dash = _dash(request)
    ws, task_id = request.path_params["ws"], request.path_params["task_id"]
    await run_in_threadpool(dash.store.get, ws, task_id)  # a 404 before the stream starts, not inside it
    resume = request.headers.get("last-event-id") or request.query_params.get("log_from")
    if resume is None:  # neither: begin where the task page's log begins (its last lines), not at the first line
        start = (await run_in_threadpool(_live.log_window, dash.store, ws, task_id, _views.LOG_TAIL)).start
    elif not resume.isascii() or not resume.isdigit() or len(resume) > 20:
        raise BadRequest(f"log_from must be a whole number, not {resume!r}")
    else:
        start = int(resume)
    stream = _live.task_events(request, dash.store, dash.source, ws, task_id, start, dash.live)
    return StreamingResponse(stream, media_type="text/event-stream", headers=_SSE_HEADERS)


async def row_events(request: Request) -> Response:
    """A listing page's event stream: ``row`` events for the listed tasks (``?t=ws/id``, repeated)."""
    dash = _dash(request)
    keys: list[tuple[str, str]] = []
    for item in request.query_params.getlist("t")[:MAX_LIVE_ROWS]:
        ws, slash, task_id = item.partition("/")
        if not slash:
            raise BadRequest(f"t must be workspace/task-id, not {item!r}")
        from atlas_tasks import names

        keys.append((names.check_workspace_name(ws), names.check_task_id(task_id)))
    stream = _live.row_events(request, dash.store, dash.source, keys, dash.live)
    return StreamingResponse(stream, media_type="text/event-stream", headers=_SSE_HEADERS)


# -- actions --------------------------------------------------------------------------------------------------------


class TooLarge(Exception):
    """A request body over the limit (413); refused before it is read, or as soon as the limit is passed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _body(request: Request, limit: int) -> bytes:
    """The request body, read chunk by chunk and given up on as soon as it passes ``limit`` bytes.

    A ``Content-Length`` over the limit is refused before any of the body is read. Without one (a chunked body),
    at most ``limit`` bytes plus one chunk are ever held: the server never buffers what a client chooses to send.
    """
    declared = request.headers.get("content-length")
    too_large = f"the form is larger than {limit} bytes"
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def _form(request: Request) -> dict[str, str]:
    # URL-encoded forms only, parsed here: no multipart parser (and no extra dependency) for two small fields.
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request, MAX_FORM_BYTES)
    if not body:
        return {}
    if content_type != "application/x-www-form-urlencoded":
        raise BadRequest("send the form as application/x-www-form-urlencoded")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"unreadable form: {exc}") from None
    return {key: values[0] for key, values in fields.items()}


async def _decide(request: Request, decide: Callable[[LeasingStore, str, str, str], Any], default: str) -> Any:
    dash = _dash(request)
    ws, task_id = request.path_params["ws"], request.path_params["task_id"]
    # Who may act is decided from the headers first: a refused request is answered without reading its body.
    check_before_body(request, dash.security)
    form = await _form(request)
    check_action(request, dash.security, form)
    reason = (form.get("reason") or "").strip()[:MAX_REASON] or default
    task = await run_in_threadpool(decide, dash.store, ws, task_id, reason)
    if ready_to_continue(task) and dash.runner is not None and form.get("run", "1") == "1":
        await run_in_threadpool(dash.runner, ws, task_id)  # what `atlas-tasks approve` does: continue the run
    return task


async def approve_action(request: Request) -> Response:
    """Approve a task waiting for a human, then show it again (303, so a reload does not post twice)."""
    await _decide(request, approve, "approved in the dashboard")
    return RedirectResponse(request.url_for("task", **request.path_params).path, status_code=303)


async def reject_action(request: Request) -> Response:
    """Reject a task waiting for a human."""
    await _decide(request, reject, "rejected in the dashboard")
    return RedirectResponse(request.url_for("task", **request.path_params).path, status_code=303)


def _cancel_from_dashboard(store: LeasingStore, workspace: str, task_id: str, reason: str) -> Any:
    import os
    import socket

    from atlas_tasks.lifecycle.cancel import cancel

    by = {"user": "dashboard", "host": socket.gethostname(), "pid": os.getpid()}
    return cancel(store, workspace, task_id, reason=reason, by=by)


async def cancel_action(request: Request) -> Response:
    """Ask a running task's runner to stop (what `atlas-tasks cancel --no-wait` does), then show the task again."""
    dash = _dash(request)
    ws, task_id = request.path_params["ws"], request.path_params["task_id"]
    check_before_body(request, dash.security)  # the same gate as approve/reject: actions on, token, CSRF
    form = await _form(request)
    check_action(request, dash.security, form)
    reason = (form.get("reason") or "").strip()[:MAX_REASON] or "cancelled in the dashboard"
    await run_in_threadpool(_cancel_from_dashboard, dash.store, ws, task_id, reason)
    return RedirectResponse(request.url_for("task", **request.path_params).path, status_code=303)


async def api_approve(request: Request) -> Response:
    """``POST /api/.../approve``: the task document after the decision."""
    return json_response(_docs.task_document(await _decide(request, approve, "approved through the API")))


async def api_reject(request: Request) -> Response:
    """``POST /api/.../reject``: the task document after the decision."""
    return json_response(_docs.task_document(await _decide(request, reject, "rejected through the API")))


# -- the JSON API: the CLI's --json documents -----------------------------------------------------------------------


def api_workspaces(request: Request) -> Response:
    """``workspace list --json``."""
    store = _dash(request).store
    found = store.list_workspaces()
    counts = [_docs.workspace_task_count(store, ws) for ws in found]
    return json_response(_docs.workspace_list_document(found, found.errors, counts))


def api_workspace(request: Request) -> Response:
    """``workspace show NAME --json``."""
    return json_response(_docs.workspace_document(_dash(request).store.get_workspace(request.path_params["ws"])))


def api_tasks(request: Request) -> Response:
    """``list [WS] [--status S]... --json`` (every workspace at /api/tasks)."""
    dash = _dash(request)
    workspace = request.path_params.get("ws")
    return json_response(_views.list_document(dash.index, dash.store, workspace, _statuses(request)))


def api_task(request: Request) -> Response:
    """``show WS TASK --json``."""
    dash = _dash(request)
    ws, task_id = request.path_params["ws"], request.path_params["task_id"]
    return json_response(_views.show_document(dash.store, ws, task_id))


def api_artifacts(request: Request) -> Response:
    """``artifacts WS TASK --json``."""
    dash = _dash(request)
    ws, task_id = request.path_params["ws"], request.path_params["task_id"]
    return json_response(_views.artifacts_document(dash.store, ws, task_id))


def api_log(request: Request) -> Response:
    """``logs WS TASK --json``: JSON Lines, one compact entry per line, read and sent a window at a time."""
    dash = _dash(request)
    ws, task_id = request.path_params["ws"], request.path_params["task_id"]
    first = _live.log_window(dash.store, ws, task_id, _live.LOG_BATCH, after=0)  # a 404 before the stream starts

    def body() -> Iterator[bytes]:
        window = first
        while True:
            yield b"".join(_docs.dumps(record, separators=(",", ":")) + b"\n" for record in window)
            if not window.more:
                return
            window = _live.log_window(dash.store, ws, task_id, _live.LOG_BATCH, after=window.end)

    return StreamingResponse(body(), media_type="application/x-ndjson")


# -- errors ---------------------------------------------------------------------------------------------------------

_STATUS_OF: list[tuple[type[BaseException], int, str]] = [
    (InvalidNameError, 400, "Invalid name"),
    (BadRequest, 400, "Bad request"),
    (Forbidden, 403, "Not allowed"),
    (TooLarge, 413, "Too large"),
    (LookupError, 404, "Not found"),  # WorkspaceNotFoundError, TaskNotFoundError, ArtifactNotFoundError
    (InvalidTransitionError, 409, "Not possible now"),
    (NotRunnableError, 409, "Not possible now"),
    (TaskRunningError, 409, "A runner holds this task"),
    (ConflictError, 409, "Changed meanwhile"),
    (CorruptTaskError, 500, "Unreadable task"),
    (CorruptWorkspaceError, 500, "Unreadable workspace"),
    (SchemaVersionError, 500, "Newer format"),
    (LockTimeoutError, 503, "Busy"),
    (StorageError, 503, "Storage error"),
    (AtlasTasksError, 500, "Error"),
]


def _classify(exc: BaseException) -> tuple[int, str, str]:
    for kind, status, title in _STATUS_OF:
        if isinstance(exc, kind):
            message = getattr(exc, "message", None) or getattr(exc, "reason", None) or str(exc)
            return status, title, message
    return 500, "Internal error", "something went wrong in atlas-tasks; the server's output has the details"


def error_response(request: Request, status: int, title: str, message: str, kind: str) -> Response:
    """A JSON error under /api/, an HTML error page elsewhere; never a traceback."""
    if route_path(request).startswith("/api/"):
        response = json_response({"error": kind, "status": status, "title": title, "message": message}, status)
    else:
        try:
            start_page = getattr(request.app.state, "start_page", "workspaces")
            response = page(
                request, "error.html", status, title=title, message=message, status=status, start_page=start_page
            )
        except Exception:  # the error page itself failed: still no traceback for the browser
            log.exception("rendering the error page failed")
            response = Response(f"{status} {title}: {message}\n", status, media_type="text/plain")
    # A 500 is answered outside the security middleware: the headers go on here too.
    response.headers.update(SECURITY_HEADERS)
    return response


async def handle_error(request: Request, exc: Exception) -> Response:
    """Known errors become 400/403/404/409/5xx pages that say what is wrong; anything else a plain 500."""
    status, title, message = _classify(exc)
    if status == 500 and not isinstance(exc, AtlasTasksError):
        log.error("unexpected error serving %s", request.url.path, exc_info=exc)
    return error_response(request, status, title, message, type(exc).__name__)


async def handle_http(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) as the same pages."""
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    # An unknown route says "Not Found"; a 404 raised with its own detail (an unknown store) keeps it.
    message = "no such page" if exc.status_code == 404 and exc.detail == "Not Found" else str(exc.detail)
    title = titles.get(exc.status_code, "Error")
    response = error_response(request, exc.status_code, title, message, "HTTPException")
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def error_handlers() -> dict[Any, Any]:
    """The handlers that turn exceptions into error pages (or JSON under /api/)."""
    # Exception goes to Starlette's outermost handler (which also logs it); the others answer normally.
    handlers: Mapping[Any, Any] = {
        AtlasTasksError: handle_error,
        BadRequest: handle_error,
        Forbidden: handle_error,
        TooLarge: handle_error,
        HTTPException: handle_http,
        Exception: handle_error,
    }
    return dict(handlers)


# -- the application ------------------------------------------------------------------------------------------------


def _routes() -> list[Route | Mount]:
    task = "/workspaces/{ws}/tasks/{task_id}"
    api_task_path = "/api/workspaces/{ws}/tasks/{task_id}"
    return [
        Route("/", workspaces_page, name="workspaces"),
        Route("/tasks", all_tasks_page, name="all_tasks"),
        Route("/workspaces/{ws}", workspace_page, name="workspace"),
        Route(task, task_page, name="task"),
        Route(task + "/artifacts/{name:path}", artifact_page, name="artifact"),
        Route(task + "/raw/{name:path}", artifact_raw, name="artifact_raw"),
        Route(task + "/events", task_events, name="task_events"),
        Route(task + "/approve", approve_action, methods=["POST"], name="approve"),
        Route(task + "/reject", reject_action, methods=["POST"], name="reject"),
        Route(task + "/cancel", cancel_action, methods=["POST"], name="cancel"),
        Route("/events/tasks", row_events, name="row_events"),
        Route("/api/workspaces", api_workspaces),
        Route("/api/workspaces/{ws}", api_workspace),
        Route("/api/tasks", api_tasks),
        Route("/api/workspaces/{ws}/tasks", api_tasks),
        Route(api_task_path, api_task),
        Route(api_task_path + "/artifacts", api_artifacts),
        Route(api_task_path + "/artifacts/{name:path}", artifact_raw),
        Route(api_task_path + "/log", api_log),
        Route(api_task_path + "/approve", api_approve, methods=["POST"]),
        Route(api_task_path + "/reject", api_reject, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def describe(store: Store) -> str:
    """How the page header names the store: its home for a store of local files, else its URL without a password
    (``postgresql://user@host:port/db, schema team``)."""
    from urllib.parse import parse_qsl, urlsplit

    from atlas_tasks.store.capabilities import LocalFiles

    if isinstance(store, LocalFiles):
        return str(store.home)
    parts = urlsplit(store.url)
    netloc = parts.netloc
    if parts.password is not None:  # never shown, not even masked
        netloc = netloc.replace(f":{parts.password}@", "@", 1)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    shown = parts._replace(netloc=netloc, query=urlencode([(k, v) for k, v in query if k != "schema"])).geturl()
    return f"{shown}, schema {schemas[0]}" if schemas else shown


def create_app(
    store: LeasingStore,
    *,
    allow_actions: bool = False,
    token: str | None = None,
    bind_host: str = "127.0.0.1",
    live: _live.LiveSettings | None = None,
    runner: Runner | None = None,
    index: TaskIndex | None = None,
    source: _live.LiveSource | None = None,
) -> Starlette:
    """The dashboard for ``store``.

    Args:
        store: Any Store with run leases (``lease_holder``); the file store gets a caching index and file watching.
        allow_actions: Turn approve/reject on (they still need ``token`` and pass a CSRF check).
        token: The action token; a random one by default (read it back from ``app.state.dashboard.security``).
        bind_host: The address the server listens on: loopback names (and this one) are the accepted ``Host``
            headers; bound to all interfaces, any.
        live: Polling interval and stream lifetime of the live events.
        runner: Called as ``runner(ws, task_id)`` to continue a run after an approval leaves steps to do (the
            CLI's ``approve`` does the same); ``None`` leaves the task for ``atlas-tasks run``.
        index, source: Override how tasks are listed and watched (tests; other backends).
    """
    security = Security(allow_actions=allow_actions, allowed_hosts=hosts_for(bind_host))
    if token is not None:
        security.token = token
    dashboard = Dashboard(
        store=store,
        index=index or index_for(store),
        source=source or _live.source_for(store),
        security=security,
        templates=_environment(),
        live=live or _live.LiveSettings(),
        runner=runner,
        store_label=describe(store),
    )
    return dashboard_app(dashboard, [Middleware(SecurityMiddleware, security=security)])


def dashboard_app(dashboard: Dashboard, middleware: Sequence[Middleware] = ()) -> Starlette:
    """The application of one dashboard, with ``middleware`` around it.

    ``create_app`` puts the security middleware here; ``serve --all-repos`` mounts several of these without it,
    under one application that has it (so one Host check, one token and one CSRF cookie cover every store).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(dashboard.close)

    app = Starlette(
        lifespan=lifespan,
        routes=_routes(),
        middleware=list(middleware),
        exception_handlers=error_handlers(),
    )
    app.state.dashboard = dashboard
    app.state.chrome = dashboard
    return app


__all__ = ["BadRequest", "Chrome", "Dashboard", "TooLarge", "create_app", "dashboard_app", "raw_response"]
