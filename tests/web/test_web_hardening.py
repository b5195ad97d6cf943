"""The token login's redirect stays on this server, the Host check parses bracketed IPv6 strictly, forms are small."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient
from web_data import awaiting

from atlas_tasks.store import Store
from atlas_tasks.web._security import host_name
from atlas_tasks.web.app import MAX_FORM_BYTES

STORE_KINDS = ("memory", "file")

TOKEN = "secret-token"


@pytest.mark.parametrize("path", ["//evil.example/", "///evil.example/x", "/\\evil.example/"])
def test_token_login_never_redirects_to_another_host(make_client: Callable[..., TestClient], path: str) -> None:
    """``GET //evil.example/?token=…`` redirects to the local path ``/evil.example/``, never to ``//evil.example``."""
    client = make_client(allow_actions=True, token=TOKEN)
    response = client.get(f"http://127.0.0.1{path}?token={TOKEN}&q=1", follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert location.endswith(("evil.example/?q=1", "evil.example/x?q=1"))


@pytest.mark.parametrize(
    "header", ["[::1]evil.com", "[::1]:80evil", "[::1", "[::1]:", "localhost:80:80", "localhost:x"]
)
def test_malformed_host_header_gives_no_name(header: str) -> None:
    """A Host header that is not ``name[:port]`` or ``[ipv6][:port]`` yields no host name at all."""
    assert host_name(header) == ""


@pytest.mark.parametrize(
    ("header", "name"),
    [("[::1]", "::1"), ("[::1]:8700", "::1"), ("LocalHost:8700", "localhost"), ("127.0.0.1", "127.0.0.1")],
)
def test_well_formed_host_names_parse(header: str, name: str) -> None:
    """Ordinary Host headers, bracketed IPv6 with or without a port included, give their host name."""
    assert host_name(header) == name


def test_bracketed_host_with_trailing_name_is_refused(client: TestClient) -> None:
    """``Host: [::1]evil.com`` is answered 400, as any other foreign host."""
    assert client.get("/", headers={"host": "[::1]evil.com"}).status_code == 400


def test_authorised_form_over_the_limit_is_413(make_client: Callable[..., TestClient], store: Store) -> None:
    """Even with the right Bearer token, a form over 16 KiB is refused as too large (413), the task untouched."""
    store.create_workspace("ws")
    task_id = awaiting(store)
    client = make_client(allow_actions=True, token=TOKEN)
    response = client.post(
        f"/api/workspaces/ws/tasks/{task_id}/approve",
        content=b"reason=" + b"x" * (MAX_FORM_BYTES + 1),
        headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413 and response.json()["title"] == "Too large"
    assert store.get("ws", task_id).status == "awaiting_approval"
