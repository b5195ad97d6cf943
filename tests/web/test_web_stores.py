"""``serve --all-repos``: one server over every store under a home, each store's dashboard under /stores/<key>/."""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_cli import cli_app
from serve_process import serving
from starlette.testclient import TestClient
from test_web_live import stream
from typer.testing import CliRunner, Result
from web_data import BASE_URL, FAST, awaiting

from atlas_tasks import FileStore, Task, TaskStatus
from atlas_tasks.cli._everywhere import label_of
from atlas_tasks.repos import ScopedHome
from atlas_tasks.web._stores import create_stores_app, discover_home

TOKEN = "stores-token-0123456789"


def go_key(path: Path) -> str:
    """The Go tool's key of a repository: sha256 of its resolved path, first 12 hex digits."""
    return hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:12]


def repo_store(home: Path, repo: Path, workspace: str) -> FileStore:
    """A repository's store as the Go tool lays it out: repos/<key>/, its workspace.json naming the repository."""
    (repo / ".git").mkdir(parents=True, exist_ok=True)
    store = FileStore(home / "repos" / go_key(repo))
    store.create_workspace(workspace)
    path = store.home / "workspaces" / workspace / "workspace.json"
    document = json.loads(path.read_text())
    path.write_text(json.dumps(document | {"repo_path": str(repo)}))
    return store


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with a legacy workspace and two repositories, each with a workspace named 'api' and its own task."""
    home = tmp_path / "home"
    legacy = FileStore(home)
    legacy.create_workspace("old")
    legacy.create("old", Task(id="task-legacy", description="from the legacy tree"))
    one = repo_store(home, tmp_path / "one", "api")
    one.create("api", Task(id="task-one", description="only in repository one"))
    two = repo_store(home, tmp_path / "two", "api")
    two.create("api", Task(id="task-two", description="only in repository two", status="rejected"))
    return home


def _open(scoped: ScopedHome) -> FileStore:
    return FileStore(scoped.path)


def make_client(home: Path, *, allow_actions: bool = False, token: str | None = None) -> TestClient:
    """A TestClient on the all-stores server of ``home``, its stores found as ``serve --all-repos`` finds them."""
    discover = discover_home(home, label_of, _open)
    app = create_stores_app(discover, home_label=str(home), allow_actions=allow_actions, token=token, live=FAST)
    return TestClient(app, base_url=BASE_URL)


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    with make_client(home) as client:
        yield client


def _keys(client: TestClient) -> dict[str, str]:
    """label -> key of every store the API lists."""
    return {item["label"]: item["key"] for item in client.get("/api/stores").json()["stores"]}


def test_index_lists_every_store_with_labels_and_counts(client: TestClient, home: Path, tmp_path: Path) -> None:
    """The index names the legacy tree and each repository by its path, with workspaces and tasks by status."""
    page = client.get("/")
    assert page.status_code == 200
    assert f"legacy ({home / 'workspaces'})" in page.text
    for repo in ("one", "two"):
        assert f'<a href="/stores/{go_key(tmp_path / repo)}/">{tmp_path / repo}</a>' in page.text
    stores = {item["label"]: item for item in client.get("/api/stores").json()["stores"]}
    two = stores[str(tmp_path / "two")]
    assert (two["key"], two["workspaces"], two["tasks"], two["by_status"]) == (
        go_key(tmp_path / "two"),
        1,
        1,
        {"rejected": 1},
    )
    assert two["path"] == str(home / "repos" / two["key"]) and two["url"] == f"/stores/{two['key']}/"
    assert stores[f"legacy ({home / 'workspaces'})"]["key"] == "legacy"


def test_same_workspace_name_in_two_repositories_stays_apart(client: TestClient, tmp_path: Path) -> None:
    """Two 'api' workspaces: each store's pages and API show only that store's task."""
    for mine, theirs in (("one", "two"), ("two", "one")):
        prefix = f"/stores/{go_key(tmp_path / mine)}"
        listing = client.get(f"{prefix}/workspaces/api").text
        assert f"task-{mine}" in listing and f"task-{theirs}" not in listing
        everything = client.get(f"{prefix}/tasks").text
        assert f"task-{mine}" in everything and f"task-{theirs}" not in everything
        api = client.get(f"{prefix}/api/workspaces/api/tasks").json()
        assert [t["id"] for t in api["tasks"]] == [f"task-{mine}"]
        assert client.get(f"{prefix}/workspaces/api/tasks/task-{theirs}").status_code == 404


def test_mounted_pages_link_under_their_prefix(client: TestClient, tmp_path: Path) -> None:
    """Every link, form, script and event stream of a mounted page starts with the store's prefix."""
    prefix = f"/stores/{go_key(tmp_path / 'one')}"
    pages = [
        client.get(f"{prefix}/").text,
        client.get(f"{prefix}/tasks").text,
        client.get(f"{prefix}/workspaces/api/tasks/task-one").text,
    ]
    for html in pages:
        targets = re.findall(r'(?:href|src|action|data-live-task|data-live-rows|data-base)="(/[^"]*)"', html)
        assert targets
        assert [t for t in targets if not t.startswith(prefix + "/") and t != "/"] == []
        assert 'href="/">All stores</a>' in html
    task = pages[2]
    assert f'data-live-task="{prefix}/workspaces/api/tasks/task-one/events"' in task
    assert f'href="{prefix}/api/workspaces/api/tasks/task-one"' in task
    assert client.get(f"{prefix}/static/live.js").status_code == 200


def test_single_store_links_stay_at_the_root(home: Path) -> None:
    """Without --all-repos nothing changes: the dashboard's links start at / and there is no stores link."""
    from atlas_tasks.web import create_app

    with TestClient(create_app(FileStore(home)), base_url=BASE_URL) as single:
        html = single.get("/workspaces/old/tasks/task-legacy").text
    assert 'href="/static/style.css"' in html and 'data-live-task="/workspaces/old/tasks/task-legacy/events"' in html
    assert 'href="/api/workspaces/old/tasks/task-legacy"' in html and "All stores" not in html


def test_a_repository_created_later_appears_without_a_restart(client: TestClient, home: Path, tmp_path: Path) -> None:
    """A store the Go tool starts after the server shows on the next index page and serves its tasks."""
    key = go_key(tmp_path / "three")
    assert client.get(f"/stores/{key}/").status_code == 404
    late = repo_store(home, tmp_path / "three", "api")
    late.create("api", Task(id="task-three", description="arrived later"))
    assert str(tmp_path / "three") in client.get("/").text
    assert "task-three" in client.get(f"/stores/{key}/workspaces/api").text


def test_a_store_is_reachable_before_the_index_sees_it(client: TestClient, home: Path, tmp_path: Path) -> None:
    """A link to a new store's page works at once: an unknown key makes the server look the home over again."""
    late = repo_store(home, tmp_path / "four", "api")
    late.create("api", Task(id="task-four", description="linked directly"))
    assert "task-four" in client.get(f"/stores/{go_key(tmp_path / 'four')}/workspaces/api/tasks/task-four").text


def test_unknown_store_is_a_404_page(client: TestClient) -> None:
    """A key no store has is a 404 page saying so; a JSON 404 under a mounted /api/."""
    page = client.get("/stores/000000000000/")
    assert page.status_code == 404 and "no store" in page.text and "Back to the stores" in page.text
    missing = client.get("/stores/legacy/api/workspaces/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "WorkspaceNotFoundError"


@pytest.mark.parametrize("path", ["/", "/api/stores", "/stores/legacy/", "/stores/legacy/api/tasks"])
def test_a_foreign_host_is_refused_on_the_index_and_under_a_mount(client: TestClient, path: str) -> None:
    """The Host check guards the index and every mounted dashboard alike."""
    assert client.get(path).status_code == 200
    refused = client.get(path, headers={"host": "evil.example"})
    assert refused.status_code == 400 and "Host" in refused.text


@pytest.fixture
def actions(home: Path) -> Iterator[TestClient]:
    """The all-stores server with actions on and a known token."""
    with make_client(home, allow_actions=True, token=TOKEN) as client:
        yield client


@pytest.fixture
def waiting(home: Path, tmp_path: Path) -> tuple[FileStore, str, str]:
    """A task awaiting approval in repository one's 'api': (its store, its prefix, its id)."""
    store = FileStore(home / "repos" / go_key(tmp_path / "one"))
    return store, f"/stores/{go_key(tmp_path / 'one')}", awaiting(store, "api")


def _csrf(client: TestClient, path: str) -> str:
    client.get(path)
    return next(value for name, value in client.cookies.items() if name.startswith("atlas_tasks_csrf_"))


@pytest.mark.parametrize(
    ("fields", "says"),
    [({}, "needs the token"), ({"token": "wrong"}, "needs the token"), ({"token": TOKEN}, "CSRF check failed")],
)
def test_a_mounted_action_needs_the_token_and_csrf(
    actions: TestClient, waiting: tuple[FileStore, str, str], fields: dict[str, str], says: str
) -> None:
    """Approving through a mounted store without the token, or the CSRF value, is refused and changes nothing."""
    store, prefix, task_id = waiting
    _csrf(actions, f"{prefix}/")
    response = actions.post(f"{prefix}/workspaces/api/tasks/{task_id}/approve", data=fields)
    assert response.status_code == 403 and says in response.text
    assert store.get("api", task_id).status == TaskStatus.AWAITING_APPROVAL


def test_a_mounted_action_with_token_and_csrf_redirects_under_the_prefix(
    actions: TestClient, waiting: tuple[FileStore, str, str]
) -> None:
    """With the token and the CSRF cookie's value the approval goes through, and the answer stays in the store."""
    store, prefix, task_id = waiting
    csrf = _csrf(actions, "/")  # the index's cookie: one CSRF cookie for the whole server
    response = actions.post(
        f"{prefix}/workspaces/api/tasks/{task_id}/approve",
        data={"token": TOKEN, "csrf": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{prefix}/workspaces/api/tasks/{task_id}"
    assert store.get("api", task_id).status == TaskStatus.COMPLETED


def test_one_token_unlocks_every_store(actions: TestClient, home: Path, tmp_path: Path) -> None:
    """The token given once (?token=) is a cookie for the whole server: the API of any store accepts the Bearer."""
    login = actions.get(f"/?token={TOKEN}", follow_redirects=False)
    assert login.status_code == 303 and "Path=/" in login.headers["set-cookie"]
    store = FileStore(home / "repos" / go_key(tmp_path / "two"))
    task_id = awaiting(store, "api")
    response = actions.post(
        f"/stores/{go_key(tmp_path / 'two')}/api/workspaces/api/tasks/{task_id}/reject",
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200 and response.json()["status"] == "rejected"


def test_actions_are_off_under_every_mount_by_default(client: TestClient, waiting: tuple[FileStore, str, str]) -> None:
    """Without --allow-actions a mounted store refuses an approval whatever it carries."""
    store, prefix, task_id = waiting
    csrf = _csrf(client, "/")
    response = client.post(f"{prefix}/workspaces/api/tasks/{task_id}/approve", data={"token": TOKEN, "csrf": csrf})
    assert response.status_code == 403 and "--allow-actions" in response.text
    assert store.get("api", task_id).status == TaskStatus.AWAITING_APPROVAL


def test_live_events_under_a_prefix(client: TestClient, home: Path, tmp_path: Path) -> None:
    """The task page's event stream under /stores/<key>/ sends the task, then a log line appended meanwhile."""
    store = FileStore(home / "repos" / go_key(tmp_path / "one"))
    url = f"/stores/{go_key(tmp_path / 'one')}/workspaces/api/tasks/task-one/events"
    with stream(client, url) as received:
        first = next(received)
        assert first[0] == "task" and first[1]["status"] == "pending"
        store.append_log("api", "task-one", {"level": "info", "event": "arrived live"})
        logged = next((data for name, data, _ in received if name == "log"), None)
    assert logged is not None and "arrived live" in json.dumps(logged)


def test_row_events_under_a_prefix_see_only_their_store(client: TestClient, tmp_path: Path) -> None:
    """A listing's row stream under repository two, asked about api/task-one first, reports only two's task."""
    url = f"/stores/{go_key(tmp_path / 'two')}/events/tasks?t=api/task-one&t=api/task-two"
    with stream(client, url) as received:
        name, data, _ = next(received)
    assert name == "row" and data["key"] == "api/task-two" and data["status"] == "rejected"


def _cli(*args: str) -> Result:
    return CliRunner().invoke(cli_app(), list(args))


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--all-repos", "--store", "file:///tmp/elsewhere"),
        ("--store", "file:///tmp/elsewhere", "serve", "--all-repos"),
        ("--repo", ".", "serve", "--all-repos"),
    ],
)
def test_all_repos_with_store_or_repo_is_the_usage_error_of_the_other_commands(args: tuple[str, ...]) -> None:
    """``serve --all-repos`` with --store or --repo is refused (exit 2) with the same line as ``list --all-repos``."""
    listing = _cli("--store", "file:///tmp/elsewhere", "list", "--all-repos")
    served = _cli(*args)
    said = "--all-repos lists the file stores under one home; drop --store/--repo"
    assert (listing.exit_code, served.exit_code) == (2, 2)
    assert said in listing.output and said in served.output


def test_serve_all_repos_process_lists_stores_and_finds_a_new_one(home: Path, tmp_path: Path) -> None:
    """A real ``serve --all-repos`` serves the index, the mounted API, and a repository created after it started."""
    with serving("--home", str(home), "serve", "--all-repos") as server:
        assert f"dashboard of every store under {home} (3 now)" in server.stderr
        with urllib.request.urlopen(server.url + "api/stores", timeout=10) as answer:
            assert len(json.load(answer)["stores"]) == 3
        key = go_key(tmp_path / "one")
        with urllib.request.urlopen(f"{server.url}stores/{key}/api/workspaces/api/tasks", timeout=10) as answer:
            assert [t["id"] for t in json.load(answer)["tasks"]] == ["task-one"]
        repo_store(home, tmp_path / "later", "api").create("api", Task(id="task-later", description="new"))
        with urllib.request.urlopen(server.url, timeout=10) as page:
            assert str(tmp_path / "later") in page.read().decode()
    assert "Traceback" not in server.stderr
