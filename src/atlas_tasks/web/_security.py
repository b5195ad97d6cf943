"""Who may do what: security headers on every response, the Host check, the action token and CSRF.

* Reading needs nothing (the server binds to 127.0.0.1 unless told otherwise). Every response carries a strict
  Content-Security-Policy (``default-src 'self'``, no inline script or style), ``nosniff``, no framing and no
  referrer, so nothing stored in a task can run script in the page.
* The ``Host`` header must name this machine when bound to loopback: a page on another site cannot rebind its
  DNS name to 127.0.0.1 and read the dashboard.
* Actions (approve, reject) are off unless the server was started with ``--allow-actions``. Then each needs the
  token printed at start: ``Authorization: Bearer <token>`` (API clients; no cookie, so no CSRF), or the token
  from a ``?token=`` visit, kept in an HttpOnly SameSite=Strict cookie, plus a CSRF check: the form's ``csrf``
  field must equal the ``csrf`` cookie (double submit) and ``Origin``, when sent, must be this server.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: For raw artifact bytes: even if a browser rendered them, nothing could run or load.
RAW_CSP = "default-src 'none'; sandbox"
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass
class Security:
    """The server's security settings: whether actions are on, their token, and the names of its cookies.

    Cookies carry a per-server suffix: cookies do not separate ports, so two dashboards on one machine would
    otherwise overwrite each other's.
    """

    allow_actions: bool = False
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    allowed_hosts: frozenset[str] | None = LOOPBACK_NAMES  # None: any Host (bound to a public interface)
    suffix: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def auth_cookie(self) -> str:
        return f"atlas_tasks_auth_{self.suffix}"

    @property
    def csrf_cookie(self) -> str:
        return f"atlas_tasks_csrf_{self.suffix}"

    def token_ok(self, candidate: str | None) -> bool:
        """Whether ``candidate`` is the token (constant-time; never true while actions are off)."""
        if not self.allow_actions or not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())


def hosts_for(bind_host: str) -> frozenset[str] | None:
    """The Host names to accept: loopback names, plus the bound name; any when bound to all interfaces."""
    if bind_host in ("0.0.0.0", "::", ""):  # noqa: S104 - we are describing the bind, not binding
        return None
    return LOOPBACK_NAMES | {bind_host.lower().strip("[]")}


def host_name(header: str) -> str:
    """The host part of a Host header (``[::1]:8700`` -> ``::1``, ``Example:80`` -> ``example``).

    Strict: a bracketed IPv6 literal may be followed only by ``:port``; anything else after ``]`` (``[::1]evil``),
    a port that is not a number, or an unbracketed name with several colons gives ``""``, which no allowed name
    matches.
    """
    header = header.strip().lower()
    if header.startswith("["):
        literal, bracket, rest = header[1:].partition("]")
        if not bracket or not _port_ok(rest):
            return ""
        return literal
    name, colon, port = header.partition(":")
    if colon and not _port_ok(":" + port):
        return ""
    return name


def _port_ok(rest: str) -> bool:
    """Whether what follows the host is nothing or ``:`` and a port number."""
    if not rest:
        return True
    port = rest[1:]
    return rest[0] == ":" and port.isascii() and port.isdigit() and len(port) <= 5


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001, S112 - a malformed cookie header is ignored, like browsers do
                continue
    return {key: morsel.value for key, morsel in jar.items()}


def _cookie(name: str, value: str, *, http_only: bool) -> bytes:
    flags = "; HttpOnly" if http_only else ""
    return f"{name}={value}; Path=/; SameSite=Strict{flags}".encode("latin-1")


class SecurityMiddleware:
    """ASGI middleware: the Host check, ``?token=`` logins, the CSRF cookie and the security headers."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._host_ok(scope):
            await _plain(send, 400, "unexpected Host header: open the dashboard by the address it printed\n")
            return
        cookies = _cookies(scope)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        token = next((v for k, v in query if k == "token"), None)
        if token is not None:
            await self._login(scope, send, token, [(k, v) for k, v in query if k != "token"])
            return
        csrf = cookies.get(self.security.csrf_cookie) or secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf"] = csrf
        scope["state"]["authenticated"] = self.security.token_ok(cookies.get(self.security.auth_cookie))
        new_csrf = self.security.csrf_cookie not in cookies

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                if new_csrf:
                    headers.append((b"set-cookie", _cookie(self.security.csrf_cookie, csrf, http_only=True)))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _host_ok(self, scope: Scope) -> bool:
        allowed = self.security.allowed_hosts
        if allowed is None:
            return True
        host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
        return host_name(host) in allowed

    async def _login(self, scope: Scope, send: Send, token: str, rest: Iterable[tuple[str, str]]) -> None:
        # Like Jupyter: the token in the URL becomes a cookie, and the URL loses it (history, screenshots, referrers).
        if not self.security.token_ok(token):
            reason = "wrong token" if self.security.allow_actions else "actions are off (start with --allow-actions)"
            await _plain(send, 403, f"{reason}: open the dashboard with the URL `atlas-tasks serve` printed\n")
            return
        query = urlencode(list(rest))
        location = local_path(scope.get("path", "/")) + (f"?{query}" if query else "")
        headers = [
            (b"location", location.encode("latin-1", "replace")),
            (b"set-cookie", _cookie(self.security.auth_cookie, self.security.token, http_only=True)),
            *[(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()],
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def local_path(path: str) -> str:
    """``path`` as a redirect target that stays on this server: a single leading ``/`` (``//evil`` -> ``/evil``).

    A ``Location`` of ``//host/...`` (or ``/\\host``, which browsers read alike) would send the browser to
    another site; collapsing the leading slashes and backslashes keeps it a path here. Characters outside
    printable ASCII are percent-encoded, so the header holds only what it should.
    """
    from urllib.parse import quote

    return "/" + quote(path.lstrip("/\\"), safe="/:@!$&'()*+,;=-._~")


async def _plain(send: Send, status: int, text: str) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        *[(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()],
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode()})


class Forbidden(Exception):
    """An action was refused: actions are off, the token is missing or wrong, or the CSRF check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_before_body(request: Request, security: Security) -> bool:
    """Everything about a mutation that can be decided from its headers alone, before its body is read.

    Actions off, a wrong ``Authorization`` token, another origin or a cross-site fetch are refused here, so such a
    request never costs the server its body. Returns True when a valid Bearer token already authorises it (no
    CSRF check needed), False when the form's fields still have to be checked by :func:`check_action`.

    Raises:
        Forbidden: with the reason, shown on the 403 page.
    """
    if not security.allow_actions:
        raise Forbidden("actions are off: start the server with `atlas-tasks serve --allow-actions`")
    bearer = request.headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        if security.token_ok(bearer[7:].strip()):
            return True  # a header no other site can make a browser send: no CSRF check needed
        raise Forbidden("wrong token in the Authorization header")
    _check_origin(request)
    return False


def check_action(request: Request, security: Security, form: dict[str, str]) -> None:
    """Allow a mutation only with the token, and (unless it came as a header) a passing CSRF check.

    Raises:
        Forbidden: with the reason, shown on the 403 page.
    """
    if check_before_body(request, security):
        return
    cookie_token = request.cookies.get(security.auth_cookie)
    if not (security.token_ok(form.get("token")) or security.token_ok(cookie_token)):
        raise Forbidden("this needs the token `atlas-tasks serve` printed at start (open its URL, or enter it)")
    expected = request.cookies.get(security.csrf_cookie, "")
    given = form.get("csrf", "")
    if not (expected and given and hmac.compare_digest(expected.encode(), given.encode())):
        raise Forbidden("the form's CSRF check failed: reload the page and try again")


def _check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin.lower() != own.lower():
            raise Forbidden(f"a request from another origin ({origin}) cannot change tasks")
    elif origin == "null":
        raise Forbidden("a request from an opaque origin cannot change tasks")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise Forbidden(f"a {fetch_site} request cannot change tasks")


__all__ = [
    "CSP",
    "RAW_CSP",
    "SECURITY_HEADERS",
    "Forbidden",
    "Security",
    "SecurityMiddleware",
    "check_action",
    "check_before_body",
    "host_name",
    "hosts_for",
    "is_loopback",
    "local_path",
]
