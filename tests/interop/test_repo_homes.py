"""Repo-scoped homes as the current Go ATLAS lays them out: ``<home>/repos/<key>/workspaces/...`` per repository."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from atlas_tasks import FileStore, RepoNotFoundError
from atlas_tasks.repos import find_repo, repo_home, repo_key, scoped_homes
from atlas_tasks.testing.conformance import sample_task

FIXTURES = Path(__file__).parent.parent / "fixtures" / "go"
GO_TASK = "task-b7e4a2d9-1c3f-4a8e-9b5d-2e7f6c0d8a41"


def go_key(path: Path) -> str:
    """The Go tool's key, spelled out: sha256 of filepath.EvalSymlinks(repoPath), first 12 hex digits."""
    return hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:12]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "shop"
    (path / ".git").mkdir(parents=True)
    (path / "pkg" / "deep").mkdir(parents=True)
    return path


@pytest.fixture
def go_home(tmp_path: Path, repo: Path) -> Path:
    """A home where the Go tool stored workspace 'api' for ``repo`` (repo-scoped) and 'payments' in the legacy tree."""
    home = tmp_path / "home"
    shutil.copytree(FIXTURES / "head-home" / "workspaces", home / "repos" / go_key(repo) / "workspaces")
    shutil.copytree(FIXTURES / "story-home" / "workspaces", home / "workspaces")
    return home


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process, in ``cwd``, with no $ATLAS_HOME/$ATLAS_STORE_URL unless ``env`` gives them."""
    base = {k: v for k, v in os.environ.items() if k not in ("ATLAS_HOME", "ATLAS_STORE_URL", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "atlas_tasks", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_key_is_the_first_12_hex_of_sha256_of_the_path() -> None:
    """The key of a fixed path is pinned, so a change of the formula (a trailing slash, a longer key) is caught."""
    assert go_key(Path("/")) == hashlib.sha256(b"/").hexdigest()[:12]
    assert repo_key("/") == "8a5edab28263"


def test_key_resolves_symlinks(tmp_path: Path, repo: Path) -> None:
    """A repository reached through a symlink gets the key of its real path, as Go's EvalSymlinks gives."""
    link = tmp_path / "link-to-shop"
    link.symlink_to(repo)
    assert repo_key(link) == repo_key(repo) == go_key(repo)
    assert repo_home(link, tmp_path / "h") == tmp_path / "h" / "repos" / go_key(repo)


def test_for_repo_opens_the_repo_scoped_home(go_home: Path, repo: Path) -> None:
    """FileStore.for_repo reads the tasks the Go tool wrote for that repository."""
    store = FileStore.for_repo(repo, home=go_home)
    assert store.home == go_home / "repos" / go_key(repo)
    assert GO_TASK in [t.id for t in store.list("api")]


def test_for_repo_defaults_to_atlas_home(go_home: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without home=, for_repo uses $ATLAS_HOME, as the rest of atlas-tasks does."""
    monkeypatch.setenv("ATLAS_HOME", str(go_home))
    assert FileStore.for_repo(repo).home == go_home / "repos" / go_key(repo)


def test_task_created_with_for_repo_lands_where_go_looks(go_home: Path, repo: Path) -> None:
    """A task created through for_repo is at repos/<key>/workspaces/<ws>/tasks/<id>/task.json, Go's own path."""
    store = FileStore.for_repo(repo, home=go_home)
    created = store.create("api", sample_task())
    path = go_home / "repos" / go_key(repo) / "workspaces" / "api" / "tasks" / created.id / "task.json"
    assert json.loads(path.read_text())["id"] == created.id


def test_for_repo_of_a_missing_path_is_a_typed_error(tmp_path: Path) -> None:
    """A repository path that does not exist raises RepoNotFoundError naming it (never a store somewhere else)."""
    with pytest.raises(RepoNotFoundError, match="no-such-repo"):
        FileStore.for_repo(tmp_path / "no-such-repo", home=tmp_path)


def test_find_repo_walks_up_to_the_first_git_entry(tmp_path: Path, repo: Path) -> None:
    """find_repo stops at the nearest directory with a .git entry, a linked worktree's .git file included."""
    assert find_repo(repo / "pkg" / "deep") == repo
    worktree = repo / "pkg" / "wt"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /elsewhere\n")
    assert find_repo(worktree) == worktree
    outside = tmp_path / "plain"
    outside.mkdir()
    assert find_repo(outside) is None


def test_cli_repo_option_lists_the_go_tasks(go_home: Path, repo: Path, tmp_path: Path) -> None:
    """`--repo PATH` lists the tasks the Go tool stored for that repository, from any directory."""
    done = cli("--home", str(go_home), "--repo", str(repo), "list", "api", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert GO_TASK in [t["id"] for t in json.loads(done.stdout)["tasks"]]


def test_cli_inside_the_repo_uses_its_store_and_says_so(go_home: Path, repo: Path) -> None:
    """Run inside the repository with no --home/--repo, the CLI uses the repo-scoped store and names it on stderr."""
    done = cli("list", "api", "--json", cwd=repo / "pkg" / "deep", env={"ATLAS_HOME": str(go_home)})
    assert done.returncode == 0, done.stderr
    assert GO_TASK in [t["id"] for t in json.loads(done.stdout)["tasks"]]
    assert f"using the store of git repository {repo}" in done.stderr


def test_cli_explicit_home_is_not_overridden_by_the_repo(go_home: Path, repo: Path) -> None:
    """An explicit --home means that home: inside a repository the legacy tree is still what is listed."""
    done = cli("--home", str(go_home), "workspace", "list", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    names = [w["name"] for w in json.loads(done.stdout)["workspaces"]]
    assert names == ["payments"]
    assert "using the store of git repository" not in done.stderr


def test_cli_repo_without_a_scoped_home_keeps_the_default(tmp_path: Path, repo: Path) -> None:
    """Inside a repository the Go tool never used, the default home is used, with no note."""
    home = tmp_path / "fresh-home"
    shutil.copytree(FIXTURES / "story-home" / "workspaces", home / "workspaces")
    done = cli("workspace", "list", "--json", cwd=repo, env={"ATLAS_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert [w["name"] for w in json.loads(done.stdout)["workspaces"]] == ["payments"]
    assert "using the store" not in done.stderr


def test_cli_repo_and_store_together_is_a_usage_error(tmp_path: Path, repo: Path) -> None:
    """--repo with --store is refused as a usage error (exit 2), naming both options."""
    done = cli("--repo", str(repo), "--store", f"file://{tmp_path}", "list", cwd=tmp_path)
    assert done.returncode == 2
    assert "--repo" in done.stderr


def test_cli_repo_that_does_not_exist_is_one_error_line(tmp_path: Path) -> None:
    """--repo naming a missing directory is one `error:` line with exit code 1, no traceback."""
    done = cli("--repo", str(tmp_path / "nope"), "list", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: repository ")
    assert "Traceback" not in done.stderr


@pytest.fixture
def two_repos_home(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two repositories, each with a workspace named 'api' of its own tasks, plus Go's hook-only legacy dirs."""
    home, first, second = tmp_path / "home", tmp_path / "one", tmp_path / "two"
    for repo, task_file in ((first, GO_TASK), (second, "task-3f2b8c1e-9a4d-4e7b-8c21-5d6f0a9b7e13")):
        (repo / ".git").mkdir(parents=True)
        tasks = home / "repos" / go_key(repo) / "workspaces" / "api" / "tasks"
        source = FIXTURES / "head-home" / "workspaces" / "api"
        tasks.mkdir(parents=True)
        workspace = json.loads((source / "workspace.json").read_text())
        # As the current Go writes it: the repository it belongs to, and no task refs.
        workspace.update(repo_path=str(repo), tasks=[])
        (tasks.parent / "workspace.json").write_text(json.dumps(workspace))
        shutil.copytree(source / "tasks" / task_file, tasks / task_file)
        hook_only = home / "workspaces" / "api" / "tasks" / task_file
        hook_only.mkdir(parents=True)
        for name in ("hook.json", "HOOK.md", "hook.json.lock"):
            (hook_only / name).write_text("{}" if name == "hook.json" else "")
    return home, first, second


def test_same_workspace_name_in_two_repositories_never_mixes(two_repos_home: tuple[Path, Path, Path]) -> None:
    """Workspace 'api' of one repository lists its own task only, never the other repository's."""
    home, first, second = two_repos_home
    one = [t.id for t in FileStore.for_repo(first, home=home).list("api")]
    two = [t.id for t in FileStore.for_repo(second, home=home).list("api")]
    assert one == [GO_TASK]
    assert two == ["task-3f2b8c1e-9a4d-4e7b-8c21-5d6f0a9b7e13"]


def test_hook_only_directories_are_not_errors(two_repos_home: tuple[Path, Path, Path]) -> None:
    """The legacy tree's hook-only task directories are neither listing errors nor doctor findings."""
    home, _, _ = two_repos_home
    legacy = FileStore(home)
    listed = legacy.list("api")
    assert list(listed) == [] and listed.errors == []
    report = legacy.check()
    assert [f for f in report.findings if f.kind == "incomplete_task"] == []


def test_a_directory_without_task_json_and_with_other_files_is_still_reported(tmp_path: Path) -> None:
    """The control: a task directory with no task.json that holds something besides hook files stays a finding."""
    task_dir = tmp_path / "workspaces" / "api" / "tasks" / GO_TASK
    task_dir.mkdir(parents=True)
    (task_dir / "hook.json").write_text("{}")
    (task_dir / "notes.txt").write_text("mine")
    store = FileStore(tmp_path)
    assert [e.task_id for e in store.list("api").errors] == [GO_TASK]
    assert [f.kind for f in store.check().findings] == ["incomplete_task"]


def test_delete_takes_the_legacy_hook_files_with_the_task(two_repos_home: tuple[Path, Path, Path]) -> None:
    """Deleting a repo-scoped task removes its hook-only directory in the legacy tree, and nothing else there."""
    home, first, second = two_repos_home
    FileStore.for_repo(first, home=home).delete("api", GO_TASK)
    legacy_tasks = home / "workspaces" / "api" / "tasks"
    assert sorted(p.name for p in legacy_tasks.iterdir()) == ["task-3f2b8c1e-9a4d-4e7b-8c21-5d6f0a9b7e13"]
    assert [t.id for t in FileStore.for_repo(second, home=home).list("api")] == [
        "task-3f2b8c1e-9a4d-4e7b-8c21-5d6f0a9b7e13"
    ]


def test_scoped_homes_lists_legacy_then_each_repository(two_repos_home: tuple[Path, Path, Path]) -> None:
    """Every store under a home: the legacy tree first, then each repos/<key>, and nothing that is not a key."""
    home, first, second = two_repos_home
    (home / "repos" / "not-a-key").mkdir()
    (home / "repos" / "0123456789ab").symlink_to(home / "workspaces")
    found = scoped_homes(home)
    assert [h.label for h in found] == ["legacy", *sorted(f"repos/{go_key(r)}" for r in (first, second))]
    assert found[0].path == home
    assert {h.path for h in found[1:]} == {repo_home(first, home), repo_home(second, home)}


def test_scoped_homes_of_an_empty_home_is_the_legacy_tree(tmp_path: Path) -> None:
    """A home with no repos/ directory (or none at all) still has its legacy store."""
    assert [(h.key, h.path) for h in scoped_homes(tmp_path / "nothing")] == [(None, tmp_path / "nothing")]


def test_show_finds_the_hook_go_keeps_in_the_legacy_tree(two_repos_home: tuple[Path, Path, Path]) -> None:
    """`show` of a repo-scoped task reports the hook Go wrote under the legacy tree, in text and in --json."""
    home, first, _ = two_repos_home
    hook = {
        "state": "awaiting_human",
        "current_step": {"step_name": "review", "attempt": 1},
        "recovery": {"recommended_action": "manual", "reason": "needs a person"},
        "checkpoints": [{"checkpoint_id": "ckpt-0000abcd", "git_commit": "deadbeefcafe0123"}],
    }
    (home / "workspaces" / "api" / "tasks" / GO_TASK / "hook.json").write_text(json.dumps(hook))
    shown = cli("--home", str(home), "--repo", str(first), "show", "api", GO_TASK, "--json", cwd=first)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["go_hook"]["state"] == "awaiting_human"
    text = cli("--home", str(home), "--repo", str(first), "show", "api", GO_TASK, cwd=first)
    assert "state awaiting_human; step review (attempt 1); recovery manual: needs a person" in text.stdout
    assert "newest ckpt-0000abcd at commit deadbeefcafe" in text.stdout


def test_show_without_a_hook_has_no_hook_key(go_home: Path, repo: Path) -> None:
    """A task without Go hook files shows no hook (the key is absent, not null)."""
    shown = cli("--home", str(go_home), "--repo", str(repo), "show", "api", GO_TASK, "--json", cwd=repo)
    assert shown.returncode == 0, shown.stderr
    assert "go_hook" not in json.loads(shown.stdout)


def test_list_all_repos_shows_every_store_each_row_saying_where(two_repos_home: tuple[Path, Path, Path]) -> None:
    """`list --all-repos` lists the tasks of every store under the home; same-named workspaces stay apart."""
    home, first, second = two_repos_home
    for repo in (first, second):  # the repository each store belongs to, as Go records it in workspace.json
        path = repo_home(repo, home) / "workspaces" / "api" / "workspace.json"
        doc = json.loads(path.read_text())
        doc["repo_path"] = str(repo)
        path.write_text(json.dumps(doc))
    done = cli("--home", str(home), "list", "--all-repos", "--json", cwd=home)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    where = {t["id"]: s["repo"] for t, s in zip(document["tasks"], document["stores"], strict=True)}
    assert where == {GO_TASK: str(first), "task-3f2b8c1e-9a4d-4e7b-8c21-5d6f0a9b7e13": str(second)}
    assert document["errors"] == []
    table = cli("--home", str(home), "list", "--all-repos", cwd=home, env={"COLUMNS": "300"})
    assert f"api @ {first}" in table.stdout and f"api @ {second}" in table.stdout


def test_workspace_list_all_repos_names_each_repository(two_repos_home: tuple[Path, Path, Path]) -> None:
    """`workspace list --all-repos` shows both 'api' workspaces, each with the store that holds it."""
    home, first, second = two_repos_home
    done = cli("--home", str(home), "workspace", "list", "--all-repos", "--json", cwd=home)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [w["name"] for w in document["workspaces"]] == ["api", "api", "api"]
    stores = [s["store"] for s in document["stores"]]
    assert stores == [str(home), *sorted(str(repo_home(r, home)) for r in (first, second))]


def test_all_repos_with_a_database_store_is_a_usage_error(tmp_path: Path) -> None:
    """--all-repos is for the file stores under one home: with --store it is a usage error (exit 2)."""
    done = cli("--store", "postgresql://nobody@127.0.0.1:1/x", "list", "--all-repos", cwd=tmp_path)
    assert done.returncode == 2 and "--all-repos" in done.stderr


def test_dashboard_shows_the_go_hook_of_a_repo_task(two_repos_home: tuple[Path, Path, Path]) -> None:
    """The dashboard's task page and /api/ document show the Go hook, escaped, for a repo-scoped task."""
    from starlette.testclient import TestClient

    from atlas_tasks.web import create_app

    home, first, _ = two_repos_home
    hook = {"state": "recovering", "recovery": {"recommended_action": "retry_step", "reason": "<b>stale</b>"}}
    (home / "workspaces" / "api" / "tasks" / GO_TASK / "hook.json").write_text(json.dumps(hook))
    with TestClient(create_app(FileStore.for_repo(first, home=home)), base_url="http://127.0.0.1") as client:
        page = client.get(f"/workspaces/api/tasks/{GO_TASK}")
        assert page.status_code == 200
        assert "state recovering; recovery retry_step: &lt;b&gt;stale&lt;/b&gt;" in page.text
        assert client.get(f"/api/workspaces/api/tasks/{GO_TASK}").json()["go_hook"]["state"] == "recovering"


def test_doctor_all_repos_checks_every_store_and_says_where(two_repos_home: tuple[Path, Path, Path]) -> None:
    """`doctor --all-repos` finds damage in a repository's store (the plain doctor of the legacy home does not)."""
    home, first, _ = two_repos_home
    log = repo_home(first, home) / "workspaces" / "api" / "tasks" / GO_TASK / "task.log"
    log.write_bytes(b'{"event": "whole"}\n{"event": "torn')
    plain = cli("--home", str(home), "doctor", "--json", cwd=home)
    assert plain.returncode == 0 and json.loads(plain.stdout)["findings"] == []
    everywhere = cli("--home", str(home), "doctor", "--all-repos", "--json", cwd=home)
    assert everywhere.returncode == 1
    findings = json.loads(everywhere.stdout)["findings"]
    assert [(f["kind"], f["task_id"], f["repo"]) for f in findings] == [("torn_log", GO_TASK, str(first))]
    text = cli("--home", str(home), "doctor", "--all-repos", cwd=home)
    assert f"found: torn_log api/{GO_TASK} @ {first}" in text.stdout


def test_doctor_accepts_go_workspaces_without_refs(go_home: Path, repo: Path) -> None:
    """A workspace the current Go manages (no refs, uuid ids) has no missing_ref findings; it never records refs."""
    scoped = FileStore.for_repo(repo, home=go_home)
    path = scoped.workspace_path("api") / "workspace.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"tasks": []}))
    assert [f.kind for f in scoped.check().findings] == []


def test_doctor_still_reports_a_missing_ref_of_our_own_tasks(tmp_path: Path) -> None:
    """The control: with task_refs="all", a timestamp-id task missing from the refs is a missing_ref finding."""
    store = FileStore(tmp_path, id_style="timestamp", task_refs="all")
    store.create_workspace("ws")
    task = store.create("ws", sample_task())
    path = store.workspace_path("ws") / "workspace.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"tasks": []}))
    assert [(f.kind, f.task_id) for f in store.check().findings] == [("missing_ref", task.id)]


def test_cli_runs_and_deletes_a_repo_task_by_cwd_and_by_repo(go_home: Path, repo: Path, tmp_path: Path) -> None:
    """Inside the repository a task of its store runs to the end with no store option; --repo deletes it."""
    from atlas_tasks import Step, Task

    store = FileStore.for_repo(repo, home=go_home)
    store.create_workspace("local", worktree_path=str(repo))
    marker = repo / "ran.txt"
    task = store.create(
        "local", Task(description="d", steps=[Step(name="touch", type="validation", commands=[f"touch {marker}"])])
    )
    ran = cli("run", "local", task.id, cwd=repo / "pkg", env={"ATLAS_HOME": str(go_home)})
    assert ran.returncode == 0, ran.stderr
    assert marker.exists()
    assert store.get("local", task.id).status == "completed"
    deleted = cli("--home", str(go_home), "--repo", str(repo), "delete", "local", task.id, "--yes", cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert [t.id for t in store.list("local")] == []


def test_completion_inside_a_repository_is_silent(go_home: Path, repo: Path) -> None:
    """Shell completion uses the repository's store but writes nothing to stderr (it would land in the prompt)."""
    script = "import sys; sys.argv[0] = 'atlas-tasks'; from atlas_tasks.cli import main; main()"
    line = "atlas-tasks show "
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("ATLAS_HOME", "ATLAS_STORE_URL")},
        "ATLAS_HOME": str(go_home),
        "_ATLAS_TASKS_COMPLETE": "complete_bash",
        "COMP_WORDS": line,
        "COMP_CWORD": "2",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stdout.split() == ["api"]
    assert done.stderr == ""
