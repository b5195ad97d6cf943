"""The fast path of ``atlas-tasks list`` (and ``--version``): the same bytes as the full CLI, or the full CLI itself.

Every comparison runs real processes on a real home: the full command (its cache removed first, so the typer app
answers and writes the cache), then the same command again, which the fast path answers. Both must write the same
stdout and stderr and exit alike; and the modules each loaded say which path answered.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Task, TaskStatus
from atlas_tasks.backends import _file_light
from atlas_tasks.backends.file import _layout
from atlas_tasks.cli import _listcache, _listview, _render
from atlas_tasks.models import Step

FIXTURES = Path(__file__).parent.parent / "fixtures" / "go"
# Writes the modules the process loaded to $MODULES at exit, then runs the CLI as the console script does.
_WRAPPER = (
    "import atexit, os, sys\n"
    "atexit.register(lambda: open(os.environ['MODULES'], 'w').write('\\n'.join(sys.modules)))\n"
    "sys.argv[0] = 'atlas-tasks'\n"
    "from atlas_tasks.cli import main\n"
    "main()\n"
)


class Outcome:
    """What one CLI process did: exit code, stdout, stderr, and whether the typer app (the full CLI) answered."""

    def __init__(self, result: subprocess.CompletedProcess[bytes], modules: set[str]) -> None:
        self.code, self.out, self.err = result.returncode, result.stdout, result.stderr
        self.full = "typer" in modules
        self.modules = modules
        self.heavy = {name for name in modules if name.split(".")[0] in ("typer", "pydantic", "rich")}

    def same_as(self, other: Outcome) -> bool:
        return (self.code, self.out, self.err) == (other.code, other.out, other.err)


def cli(tmp_path: Path, *args: str, **env: str) -> Outcome:
    """Run ``atlas-tasks ARGS`` as a process (clean environment, output into pipes)."""
    modules = tmp_path / f"modules-{random.randrange(1 << 30)}.txt"
    environ = {k: v for k, v in os.environ.items() if k not in ("ATLAS_HOME", "ATLAS_STORE_URL", "FORCE_COLOR")}
    environ |= {"MODULES": str(modules), "COLUMNS": "100"} | env
    result = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *args], capture_output=True, env=environ, timeout=60, check=False, cwd=tmp_path
    )
    return Outcome(result, set(modules.read_text().split("\n")) if modules.exists() else set())


def full_then_fast(tmp_path: Path, home: Path, *args: str) -> tuple[Outcome, Outcome]:
    """The command answered by the full CLI (no cache), then again once a plain ``list`` has filled the cache
    (``list -n 2`` reads, and so caches, only 2 tasks)."""
    shutil.rmtree(home / ".atlas-tasks" / "cli-list", ignore_errors=True)
    first = cli(tmp_path, "--home", str(home), *args)
    cli(tmp_path, "--home", str(home), "list")
    return first, cli(tmp_path, "--home", str(home), *args)


def backdate(home: Path, recent: dict[str, timedelta] | None = None) -> None:
    """Give every task times the listing shows the same for minutes (a date; ``recent``: that long ago), so that
    two runs a second apart print the same bytes (a hand edit, as a restore or the Go ATLAS could leave)."""
    now = datetime.now(UTC)
    for index, path in enumerate(sorted((home / "workspaces").glob("*/tasks/*/task.json"))):
        doc = json.loads(path.read_text())
        doc["created_at"] = (datetime(2025, 3, 1, tzinfo=UTC) + timedelta(hours=index)).isoformat()
        ago = (recent or {}).get(doc["id"])
        doc["updated_at"] = (now - ago if ago is not None else datetime(2025, 4, 1, tzinfo=UTC)).isoformat()
        path.write_text(json.dumps(doc))


def _step(name: str, status: str = "pending") -> Step:
    return Step(name=name, type="ai", status=status)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Two workspaces of tasks in many states: crashed runs, approved and waiting, incomplete forks, Go-style."""
    store = FileStore(tmp_path / "home")
    store.create_workspace("ws")
    store.create_workspace("other")
    steps = [_step("plan", "completed"), _step("implement", "running"), _step("review")]
    store.create("ws", Task(id="task-done", template="bugfix", description="Done [red]x[/red]", status="completed"))
    store.create("ws", Task(id="task-crashed", template="feature", description="Died\nmid-run", steps=steps))
    crashed = store.get("ws", "task-crashed")
    crashed.transition(TaskStatus.RUNNING)
    store.update("ws", crashed)
    approved = store.create("ws", Task(id="task-approved", steps=[_step("a", "completed"), _step("b")]))
    approved.transition(TaskStatus.RUNNING)
    approved.transition(TaskStatus.VALIDATING)
    approved.transition(TaskStatus.AWAITING_APPROVAL)
    approved.transition(TaskStatus.RUNNING)
    approved.current_step = 1
    store.update("ws", approved)
    store.create("ws", Task(id="task-fork", description="a" * 80, metadata={"fork_incomplete": True}))
    go = Task(id="task-go", template="docs", description="Go wrote me", status="pending").with_key_style("go")
    store.create("other", go)
    live = store.get("other", "task-go")
    live.transition(TaskStatus.RUNNING)
    store.update("other", live.with_key_style("go"))
    store.create("other", Task(id="task-plain", description="  padded  "))
    store.create("other", Task(id="task-stale", template="docs").with_key_style("go"))
    stale = store.get("other", "task-stale")
    stale.transition(TaskStatus.RUNNING)
    store.update("other", stale.with_key_style("go"))
    backdate(store.home, {"task-go": timedelta(minutes=2, seconds=30), "task-stale": timedelta(minutes=10, seconds=30)})
    return store.home


@pytest.mark.parametrize(
    "args",
    [
        ("list", "ws"),
        ("list",),
        ("ls", "ws"),
        ("list", "-a"),
        ("list", "ws", "--all-workspaces"),
        ("list", "ws", "-n", "2"),
        ("list", "--limit=1"),
        ("list", "-s", "crashed"),
        ("list", "ws", "--status", "INTERRUPTED", "-s", "pending"),
        ("list", "other", "-s", "running"),
        ("list", "ws", "-s", "rejected"),
    ],
)
def test_fast_list_writes_what_the_full_list_writes(tmp_path: Path, home: Path, args: tuple[str, ...]) -> None:
    """The fast path answers a listing of unchanged tasks, with the full CLI's exact stdout, stderr and exit code."""
    full, fast = full_then_fast(tmp_path, home, *args)
    assert full.full and not fast.full
    assert fast.heavy == set()
    assert fast.same_as(full), (full.out, full.err, fast.out, fast.err)


def test_go_written_store_lists_alike(tmp_path: Path) -> None:
    """A home written by the Go ATLAS (its key spelling, its times) lists the same through both paths."""
    home = tmp_path / "go-home"
    shutil.copytree(FIXTURES / "story-home", home)
    full, fast = full_then_fast(tmp_path, home, "list", "payments")
    assert b"2/3 implement" in full.out
    assert full.full and not fast.full and fast.same_as(full)


def test_non_ascii_cells_are_laid_out_by_rich(tmp_path: Path) -> None:
    """Wide and combining characters make the fast path hand the table to rich, which lays it out as before."""
    store = FileStore(tmp_path / "home")
    store.create_workspace("ws")
    store.create("ws", Task(id="task-wide", description="修正 invoice totals " * 4, template="e\u0301t\u00e9"))
    backdate(store.home)
    full, fast = full_then_fast(tmp_path, store.home, "list", "ws")
    assert not fast.full and "rich" in {m.split(".")[0] for m in fast.heavy}
    assert fast.same_as(full)


def test_a_changed_task_sends_list_to_the_full_cli(tmp_path: Path, home: Path) -> None:
    """After a task changes, the next list is the full CLI's (showing the change); the one after is fast again."""
    cli(tmp_path, "--home", str(home), "list", "ws")
    store = FileStore(home)
    task = store.get("ws", "task-done")
    task.description = "changed behind the cache"
    store.update("ws", task)
    backdate(home, {"task-go": timedelta(minutes=2, seconds=30), "task-stale": timedelta(minutes=10, seconds=30)})
    changed = cli(tmp_path, "--home", str(home), "list", "ws")
    again = cli(tmp_path, "--home", str(home), "list", "ws")
    assert changed.full and b"changed behind the cache" in changed.out
    assert not again.full and again.same_as(changed)


def test_new_and_deleted_tasks_and_workspaces_are_seen(tmp_path: Path, home: Path) -> None:
    """A task or workspace created or deleted since the last full list sends the next list to the full CLI."""
    cli(tmp_path, "--home", str(home), "list")
    store = FileStore(home)
    store.create("ws", Task(id="task-new"))
    created = cli(tmp_path, "--home", str(home), "list")
    store.create_workspace("third")
    store.create("third", Task(id="task-third"))
    third = cli(tmp_path, "--home", str(home), "list")
    store.delete("ws", "task-new")
    deleted = cli(tmp_path, "--home", str(home), "list")
    assert created.full and b"task-new" in created.out
    assert third.full and b"task-third" in third.out
    # A delete may leave every remaining entry vouched for (no workspace.json ref to drop since task_refs
    # "existing"): whichever path answers, the deleted task is gone and the others are there.
    assert b"task-new" not in deleted.out and b"task-done" in deleted.out and b"task-third" in deleted.out
    assert not cli(tmp_path, "--home", str(home), "list").full


def test_workspace_directories_without_or_with_a_bad_workspace_json(tmp_path: Path, home: Path) -> None:
    """A workspace directory without workspace.json lists (and caches) as the full CLI lists it; one whose
    workspace.json is unreadable is left out by both; a change to either is seen."""
    bare = home / "workspaces" / "bare" / "tasks"
    bare.mkdir(parents=True)
    shutil.copytree(home / "workspaces" / "ws" / "tasks" / "task-done", bare / "task-done")
    broken = home / "workspaces" / "broken"
    broken.mkdir()
    (broken / "workspace.json").write_text("{not json")
    full, fast = full_then_fast(tmp_path, home, "list")
    assert b"bare " in full.out and b"broken" not in full.out
    assert full.full and not fast.full and fast.same_as(full)
    (broken / "workspace.json").write_text('{"name": "broken"}')
    repaired = cli(tmp_path, "--home", str(home), "list")
    assert repaired.full and not cli(tmp_path, "--home", str(home), "list").full


def test_unreadable_tasks_always_go_to_the_full_cli(tmp_path: Path, home: Path) -> None:
    """A corrupt task is never cached: every list reports it as the full CLI does (warning on stderr, exit 0)."""
    (home / "workspaces" / "ws" / "tasks" / "task-done" / "task.json").write_text('{"id": "task-done", "steps": 7}')
    first, second = full_then_fast(tmp_path, home, "list", "ws")
    assert first.full and second.full
    assert b"warning:" in first.err and second.same_as(first)


def test_a_lease_file_sends_list_to_the_full_cli(tmp_path: Path, home: Path) -> None:
    """A running task a runner of ours holds is probed by the full CLI, which shows its live runner."""
    store = FileStore(home)
    store.create("ws", Task(id="task-live", steps=[_step("only")]))
    with store.run("ws", "task-live") as run, run.step():
        first, second = full_then_fast(tmp_path, home, "list", "ws")
    assert first.full and second.full
    assert b"task-live" in second.out and b"crashed" not in second.out.split(b"task-live")[1].split(b"\n")[0]


@pytest.mark.parametrize(
    "args",
    [
        ("list", "ws", "--json"),
        ("list", "missing"),
        ("list", "bad/name"),
        ("list", ".."),
        ("list", "has space"),
        ("list", "ws", "-n", "0"),
        ("list", "ws", "-s", "sleeping"),
        ("list", "ws", "-s", "failed"),
        ("list", "ws", "extra"),
        ("list", "--help"),
        ("--debug", "list", "ws"),
    ],
)
def test_other_forms_are_the_full_clis(tmp_path: Path, home: Path, args: tuple[str, ...]) -> None:
    """--json, errors, usage errors, help and unknown forms are answered by the full CLI, the same every time."""
    first, second = full_then_fast(tmp_path, home, *args)
    assert first.full and second.full and second.same_as(first)


def test_missing_and_empty_homes(tmp_path: Path) -> None:
    """A home that does not exist, or has no workspaces, gets the full CLI's warning or note."""
    missing = cli(tmp_path, "--home", str(tmp_path / "nowhere"), "list")
    FileStore(tmp_path / "empty").create_workspace("ws")
    empty = cli(tmp_path, "--debug", "--home", str(tmp_path / "empty"), "list", "ws")  # --debug: the full CLI
    fast = cli(tmp_path, "--home", str(tmp_path / "empty"), "list", "ws")
    assert missing.full and b"warning: no store at" in missing.err
    assert empty.full and not fast.full and fast.same_as(empty)
    assert b"no tasks in workspace ws (0 in all)" in fast.err


def test_version_is_answered_without_typer(tmp_path: Path) -> None:
    """``--version`` prints what the typer app prints, without loading it."""
    fast = cli(tmp_path, "--version")
    full = cli(tmp_path, "--debug", "--version")
    assert not fast.full and full.full and fast.same_as(full)


def test_the_default_home_and_a_repository_store(tmp_path: Path, home: Path) -> None:
    """$ATLAS_HOME is listed by the fast path; inside a git repository with its own store the full CLI answers."""
    cli(tmp_path, "list", "ws", ATLAS_HOME=str(home))
    by_env = cli(tmp_path, "list", "ws", ATLAS_HOME=str(home))
    (tmp_path / ".git").mkdir()
    from atlas_tasks.repos import repo_home

    scoped = repo_home(tmp_path, home)
    FileStore(scoped).create_workspace("ws")
    in_repo = cli(tmp_path, "list", "ws", ATLAS_HOME=str(home))
    assert not by_env.full and b"task-done" in by_env.out
    assert "atlas_tasks.repos" not in by_env.modules  # no repository above: its module is not even loaded
    assert in_repo.full and b"using the store of git repository" in in_repo.err


def test_a_task_changed_during_the_full_listing_is_not_cached(tmp_path: Path, home: Path) -> None:
    """A task whose task.json changed between the stamps taken before and after a listing gets no cache entry."""
    store = FileStore(home)
    before = _file_light.task_stamps(str(home), "ws")
    listed = store.list("ws")
    task = store.get("ws", "task-done")
    store.update("ws", task)  # a writer between the listing and the second stamp
    _listcache.remember_tasks(str(home), "ws", before, listed)
    cached = _listcache.load(str(home), "ws")
    assert "task-done" not in cached and "task-fork" in cached
    assert cli(tmp_path, "--home", str(home), "list", "ws").full


def test_a_torn_cache_file_is_ignored(tmp_path: Path, home: Path) -> None:
    """A cache file cut short (a crash while it was written: no fsync) is refused whole; list stays correct."""
    full = cli(tmp_path, "--home", str(home), "list", "ws")
    cache = home / ".atlas-tasks" / "cli-list" / "ws.cache"
    cache.write_bytes(cache.read_bytes()[:100])
    torn = cli(tmp_path, "--home", str(home), "list", "ws")
    assert torn.full and torn.same_as(full)


def test_a_damaged_cache_file_is_ignored(tmp_path: Path, home: Path) -> None:
    """A cache file with one byte changed fails its checksum and is refused whole; list stays correct."""
    full = cli(tmp_path, "--home", str(home), "list", "ws")
    cache = home / ".atlas-tasks" / "cli-list" / "ws.cache"
    data = bytearray(cache.read_bytes())
    data[len(data) // 2] ^= 0x01
    cache.write_bytes(bytes(data))
    damaged = cli(tmp_path, "--home", str(home), "list", "ws")
    assert damaged.full and damaged.same_as(full)


def test_layout_names_agree_with_the_file_store() -> None:
    """The light reader spells the file store's layout as the store does."""
    assert (_file_light.TASK_FILE, _file_light.WORKSPACE_FILE, _file_light.PRIVATE_DIR) == (
        _layout.TASK_FILE,
        _layout.WORKSPACE_FILE,
        _layout.PRIVATE_DIR,
    )


def test_one_cell_characters_are_one_cell_for_rich() -> None:
    """Every character the plain table lays out itself is one cell wide for rich."""
    from rich.cells import cell_len

    assert all(cell_len(char) == 1 for char in _listview._ONE_CELL)


_ALPHABET = "ab -_[]()/…éÀÿ\u00ad\u0301修"


@pytest.mark.parametrize("seed", range(40))
def test_plain_table_matches_rich(seed: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Random cells: whenever the plain table answers, it writes what rich writes into a pipe."""
    rng = random.Random(seed)
    headers = ["ID", "STATUS", "TEMPLATE", "STEP", "CREATED", "UPDATED", "DESCRIPTION"][: rng.randint(2, 7)]
    rows = [
        {name: "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 12))) or "-" for name in headers}
        for _ in range(rng.randint(1, 6))
    ]
    plain = _listview.plain_table(rows)
    _render.print_rich_list(rows, ["bold red"] * len(rows))
    if plain is not None:
        assert plain == capsys.readouterr().out


def test_plain_table_answers_for_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    """Printable ASCII (and the ellipsis) is laid out without rich, exactly as rich lays it out."""
    rows = [
        {"ID": "task-1", "STATUS": "interrupted (crashed)", "STEP": "-", "DESCRIPTION": "Fix the totals (half-e…"},
        {"ID": "task-22", "STATUS": "pending", "STEP": "2/3 implement", "DESCRIPTION": ""},
    ]
    plain = _listview.plain_table(rows)
    _render.print_rich_list(rows, ["bold red", "dim"])
    assert plain is not None and plain == capsys.readouterr().out
