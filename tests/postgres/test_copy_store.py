"""copy_store: a whole file home into PostgreSQL, as is, resumable, verified by counts and sha256."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atlas_tasks import FileStore, TaskIdRetiredError, TaskStatus
from atlas_tasks._codec import encode_task
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.migrate import CopyProgress, copy_store
from atlas_tasks.testing.conformance import sample_task

GO_FIXTURES = Path(__file__).parent.parent / "fixtures" / "go"
WORKSPACES, PER_WORKSPACE = 4, 50  # the 200-task home
SMALL = 10  # tasks per workspace of the small home (2 workspaces), for behaviour that needs no volume


def build_home(home: Path, workspaces: int = WORKSPACES, per_workspace: int = PER_WORKSPACE) -> FileStore:
    """A home of ``workspaces`` workspaces of ``per_workspace`` tasks each: logs, artifacts, updates, odd content.

    Made with task_refs="all": its workspace.json lists every task, as an older home does, so the refs a copy
    carries over can be compared."""
    store = FileStore(home, lock_timeout=30, task_refs="all")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for w in range(workspaces):
        ws = f"team-{w}"
        store.create_workspace(ws, path=f"/repo/{w}", branch="main", metadata={"owner": f"o{w}"})
        for i in range(per_workspace):
            created_at = base + timedelta(minutes=w * per_workspace + i) if i % 5 else None
            extra = {"i": i, "nul": "a\x00b", "float": 1e20, "text": "ünïcode <&>"}
            task = store.create(ws, sample_task(created_at=created_at, metadata=extra))
            for k in range(8):
                store.append_log(ws, task.id, {"event": "step", "k": k, "step_name": "analyze"})
            store.save_artifact(ws, task.id, "commit-message.md", f"fix: task {i}")
            store.save_artifact(ws, task.id, "sdd/spec.md", bytes(range(256)) * 4)
            store.save_versioned_artifact(ws, task.id, "validation.json", b'{"passed": false}')
            store.save_versioned_artifact(ws, task.id, "validation.json", b'{"passed": true}')
            _advance(store, ws, task.id, i)
    return store


def _advance(store: FileStore, ws: str, task_id: str, i: int) -> None:
    if i % 3 == 0:
        task = store.get(ws, task_id)
        for status in (TaskStatus.VALIDATING, TaskStatus.AWAITING_APPROVAL, TaskStatus.COMPLETED):
            task.transition(status, "copy test")
        store.update(ws, task)
    elif i % 3 == 1:
        store.modify(ws, task_id, lambda t: t.metadata.update(touched=True))


@pytest.fixture(scope="module")
def big_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("copy") / "home"
    build_home(home)
    return home


@pytest.fixture(scope="module")
def small_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("copy-small") / "home"
    build_home(home, workspaces=2, per_workspace=SMALL)
    return home


@pytest.fixture
def big(big_home: Path) -> FileStore:
    """The 200-task home (read only: copy_store never writes to its source)."""
    return FileStore(big_home, lock_timeout=30)


@pytest.fixture
def source(small_home: Path, tmp_path: Path) -> FileStore:
    """A private copy of the small home (these tests change it)."""
    return FileStore(shutil.copytree(small_home, tmp_path / "home"), lock_timeout=30)


@pytest.fixture
def target(make_store: Callable[..., PostgresStore], fresh_schema: str) -> PostgresStore:
    return make_store(schema=fresh_schema, lock_timeout=30)


def test_copy_200_task_home(big: FileStore, target: PostgresStore) -> None:
    """Every workspace, task, log line and artifact arrives as is, and the final comparison finds them all equal."""
    report = copy_store(big, target)
    total = WORKSPACES * PER_WORKSPACE
    assert report.ok, report.problems
    assert (report.workspaces_copied, report.tasks_copied, report.tasks_skipped) == (WORKSPACES, total, 0)
    assert (report.log_lines, report.artifacts) == (total * 8, total * 4)
    assert (report.verified_tasks, report.verified_log_lines, report.verified_artifacts) == (
        total,
        total * 8,
        total * 4,
    )
    print(
        f"\ncopy_store file->postgres: {total} tasks in {report.seconds_copy:.2f}s = {report.tasks_per_second:.0f} "
        f"tasks/s (verify {report.seconds_verify:.2f}s)"
    )


def test_copy_keeps_ids_revisions_times_and_order(source: FileStore, target: PostgresStore) -> None:
    """Ids, revisions, timestamps, documents (byte for byte), list order and workspace refs are those of the source."""
    copy_store(source, target)
    for ws in ("team-0", "team-1"):
        src, dst = source.list(ws), target.list(ws)
        assert [t.id for t in dst] == [t.id for t in src]
        for a, b in zip(src, dst, strict=True):
            assert encode_task(a) == encode_task(b)
            assert (a.revision, a.created_at, a.updated_at) == (b.revision, b.created_at, b.updated_at)
        src_refs = [r.model_dump() for r in source.get_workspace(ws).tasks]
        assert [r.model_dump() for r in target.get_workspace(ws).tasks] == src_refs
    assert target.get_workspace("team-1").metadata == {"owner": "o1"}


def test_copied_versions_continue_upward(source: FileStore, target: PostgresStore) -> None:
    """After the copy, the next version of a copied artifact is numbered after the copied ones."""
    copy_store(source, target)
    task = target.list("team-1")[0]
    assert target.save_versioned_artifact("team-1", task.id, "validation.json", b"3rd") == "validation.3.json"


def test_second_copy_skips_everything(big: FileStore, target: PostgresStore) -> None:
    """Running the copy again copies nothing: every task is already there and identical."""
    copy_store(big, target, verify=False)
    again = copy_store(big, target, verify=False)
    assert again.ok, again.problems
    assert (again.tasks_copied, again.tasks_skipped, again.workspaces_skipped) == (0, 200, WORKSPACES)


def test_interrupted_copy_resumes(big: FileStore, target: PostgresStore) -> None:
    """A copy stopped after 30 tasks resumes on the next run: those 30 are skipped, the rest copied."""

    class Stop(Exception):
        pass

    def stop_after_30(event: CopyProgress) -> None:
        if event.done == 30:
            raise Stop

    with pytest.raises(Stop):
        copy_store(big, target, progress=stop_after_30)
    resumed = copy_store(big, target)
    assert resumed.ok, resumed.problems
    assert (resumed.tasks_skipped, resumed.tasks_copied) == (30, 170)


def test_changed_source_is_reported_then_overwritten(source: FileStore, target: PostgresStore) -> None:
    """A task changed in the source after a copy is reported as differing, and replaced only with overwrite=True."""
    copy_store(source, target)
    task = source.list("team-0")[0]
    source.append_log("team-0", task.id, {"event": "late"})
    report = copy_store(source, target)
    assert not report.ok and any(task.id in p and "differs" in p for p in report.problems)
    replaced = copy_store(source, target, overwrite=True)
    assert replaced.ok, replaced.problems
    assert replaced.tasks_replaced == 1
    assert target.read_log("team-0", task.id)[-1]["event"] == "late"


def test_unreadable_source_task_is_a_problem(source: FileStore, target: PostgresStore) -> None:
    """A corrupt task in the source is reported (the copy is not ok) while every other task is copied."""
    broken = source.list("team-1")[0]
    (source.task_path("team-1", broken.id) / "task.json").write_text("{ not json")
    report = copy_store(source, target)
    assert not report.ok and any(broken.id in p for p in report.problems)
    assert report.tasks_copied == report.verified_tasks == 2 * SMALL - 1


def test_odd_entries_and_deep_log_lines_do_not_stop_the_copy(source: FileStore, target: PostgresStore) -> None:
    """A symlinked task.json, a task.log that is a directory and a deep log line: reported; the rest is copied."""
    linked, log_dir, deep = source.list("team-1")[:3]
    task_json = source.task_path("team-1", linked.id) / "task.json"
    task_json.unlink()
    task_json.symlink_to("/etc/hostname")
    task_log = source.task_path("team-1", log_dir.id) / "task.log"
    task_log.unlink()
    task_log.mkdir()
    with (source.task_path("team-1", deep.id) / "task.log").open("a") as f:
        f.write("[" * 5000 + "]" * 5000 + "\n")
    report = copy_store(source, target)
    assert not report.ok
    assert [p for p in report.problems if linked.id in p] and [p for p in report.problems if log_dir.id in p]
    assert any(deep.id in w for w in report.warnings)
    assert report.tasks_copied == report.verified_tasks == 2 * SMALL - 2


def test_destination_tasks_not_in_source_are_left_alone(source: FileStore, target: PostgresStore) -> None:
    """Tasks only the destination has are listed in extra_in_destination, untouched, without failing the copy."""
    target.import_workspace(source.get_workspace("team-0"))
    mine = target.create("team-0", sample_task(description="made in postgres"))
    report = copy_store(source, target)
    assert report.ok, report.problems
    assert report.extra_in_destination == [f"team-0/{mine.id}"]
    assert target.get("team-0", mine.id).description == "made in postgres"


@pytest.mark.parametrize("home", ["story-home", "head-home"])
def test_go_homes_copy_exactly(home: str, tmp_path: Path, target: PostgresStore) -> None:
    """Homes written by the Go ATLAS copy with their Go key names and documents intact."""
    source = FileStore(shutil.copytree(GO_FIXTURES / home, tmp_path / home))
    report = copy_store(source, target)
    assert report.ok, report.problems
    for workspace in source.list_workspaces():
        for task in source.list(workspace.name):
            copied = target.get(workspace.name, task.id)
            assert copied.key_style == task.key_style
            assert encode_task(copied) == encode_task(task)


def test_destination_must_import_as_is(source: FileStore) -> None:
    """Copying into a store without import_task is refused up front with TypeError."""
    with pytest.raises(TypeError, match="import"):
        copy_store(source, object())  # type: ignore[arg-type]


def test_file_store_destination_gets_an_exact_copy(source: FileStore, tmp_path: Path) -> None:
    """A file store imports tasks as they are too (bundles need it), so a copy into one verifies equal."""
    report = copy_store(source, FileStore(tmp_path / "other"))
    assert report.ok, report.problems
    assert report.tasks_copied == report.verified_tasks > 0


def test_deleted_ids_stay_retired_in_the_copy(source: FileStore, target: PostgresStore) -> None:
    """The source's tombstones are copied: a deleted id cannot be created in the destination, and a rerun skips them."""
    doomed = [task.id for task in source.list("team-0")[:2]]
    source.delete_many("team-0", doomed, reason="gc")
    report = copy_store(source, target)
    assert report.ok, report.problems
    assert (report.tombstones_copied, report.verified_tombstones) == (2, 2)
    for task_id in doomed:
        assert target.tombstone("team-0", task_id) == source.tombstone("team-0", task_id)
        with pytest.raises(TaskIdRetiredError):
            target.create("team-0", sample_task(id=task_id))
    again = copy_store(source, target)
    assert again.ok, again.problems
    assert (again.tombstones_copied, again.tombstones_skipped) == (0, 2)


def test_destination_task_under_a_deleted_id_is_a_problem(source: FileStore, target: PostgresStore) -> None:
    """A destination task whose id the source deleted is left alone, and the copy says it is incomplete."""
    victim = source.list("team-1")[0]
    target.import_workspace(source.get_workspace("team-1"))
    target.import_task("team-1", victim)
    source.delete("team-1", victim.id)
    report = copy_store(source, target)
    assert not report.ok
    assert any(victim.id in p and "deleted" in p for p in report.problems)
    assert target.get("team-1", victim.id).id == victim.id
    assert target.tombstone("team-1", victim.id) is None
