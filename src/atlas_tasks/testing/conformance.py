"""The Store conformance suite: the contract of :class:`atlas_tasks.store.Store`, as tests.

Usage, in a backend's test module::

    class TestMyStore(StoreTests):
        @pytest.fixture
        def store_factory(self, tmp_path_factory):
            return lambda: MyStore(...)

Every test uses fresh random workspace names, so a backend may share one server between tests.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from atlas_tasks.errors import (
    ArtifactNotFoundError,
    AtlasTasksError,
    ConflictError,
    InvalidLogEntryError,
    InvalidNameError,
    InvalidTransitionError,
    TaskExistsError,
    TaskIdRetiredError,
    TaskNotFoundError,
    WorkspaceExistsError,
    WorkspaceNotFoundError,
)
from atlas_tasks.models import Step, StepResult, Task, TaskConfig, TaskStatus
from atlas_tasks.store import Store
from atlas_tasks.testing.state_machine import make_state_machine

STORY_ID = re.compile(r"task-\d{8}-\d{6}(-\d{3})?")

BAD_NAMES = [
    "",
    ".",
    "..",
    "../escape",
    "a/b",
    "/abs",
    "a\\b",
    "a\x00b",
    "nul",
    "CON",
    ".hidden",
    " lead",
    "tab\there",
    "ünïcode",
    "x" * 200,
    "trailing.",
]

BAD_ARTIFACTS = [
    "",
    "../x.json",
    "/etc/passwd",
    "a/../../b",
    "a//b",
    ".hidden",
    "a\\b.json",
    "x\x00.json",
    "sub/",
    "./x.json",
    "a/./b",
]


def _ws() -> str:
    return f"ws-{secrets.token_hex(4)}"


def _keeps_every_ref(store: Store) -> bool:
    """Whether the store's workspace refs list every task: all stores but a file store in its default
    ``task_refs="existing"`` mode, which (as the current Go ATLAS) adds no ref on create."""
    # Told by the URL, which carries the mode (file:///…?task_refs=all), so a wrapper of a file store (the async
    # store's sync facade) answers as the store it wraps.
    url = store.url
    return not url.startswith("file:") or "task_refs=all" in url


def sample_task(**overrides: Any) -> Task:
    """A realistic task (three steps, config, metadata), not yet stored."""
    fields: dict[str, Any] = {
        "description": "Fix the null pointer in the payment handler",
        "template": "bugfix",
        "status": TaskStatus.RUNNING,
        "steps": [
            Step(name="analyze", type="ai", description="Analyze the bug"),
            Step(name="validate", type="validation", commands=["make lint", "make test"]),
            Step(name="commit", type="git"),
        ],
        "config": TaskConfig(model="claude-sonnet", max_turns=10, timeout=timedelta(minutes=30)),
        "metadata": {"branch": "fix/npe", "nested": {"a": [1, 2, 3]}},
    }
    fields.update(overrides)
    return Task(**fields)


class StoreFixtures:
    """The fixtures every conformance class shares: ``store`` (from ``store_factory``), a fresh ``ws``, a ``task``."""

    @pytest.fixture
    def store(self, store_factory: Callable[[], Store]) -> Store:
        return store_factory()

    @pytest.fixture
    def ws(self, store: Store) -> str:
        name = _ws()
        store.create_workspace(name)
        return name

    @pytest.fixture
    def task(self, store: Store, ws: str) -> Task:
        return store.create(ws, sample_task())


class StoreTests(StoreFixtures):
    """Conformance tests every Store backend must pass. Subclasses provide ``store_factory``."""

    # -- workspaces ---------------------------------------------------------------------------------------------
    def test_create_workspace_then_get(self, store: Store) -> None:
        """A created workspace reads back with its fields, status active and no tasks."""
        name = _ws()
        created = store.create_workspace(name, path="/repo", branch="main", metadata={"k": "v"})
        got = store.get_workspace(name)
        assert (got.name, got.path, got.branch, str(got.status), got.tasks) == (
            name,
            "/repo",
            "main",
            "active",
            [],
        )
        assert got.metadata == {"k": "v"}
        assert got.created_at == created.created_at

    def test_create_workspace_twice_raises(self, store: Store, ws: str) -> None:
        """Creating an existing workspace raises WorkspaceExistsError unless exist_ok is set."""
        with pytest.raises(WorkspaceExistsError):
            store.create_workspace(ws)
        assert store.create_workspace(ws, exist_ok=True).name == ws

    def test_list_workspaces_sorted(self, store: Store) -> None:
        """list_workspaces returns every workspace sorted by name."""
        names = sorted(_ws() for _ in range(3))
        for name in reversed(names):
            store.create_workspace(name)
        listed = [w.name for w in store.list_workspaces() if w.name in names]
        assert listed == names

    def test_get_missing_workspace_raises(self, store: Store) -> None:
        """A missing workspace raises WorkspaceNotFoundError, which is a LookupError naming the fix."""
        with pytest.raises(WorkspaceNotFoundError) as info:
            store.get_workspace(_ws())
        assert isinstance(info.value, LookupError)
        assert "create" in str(info.value)

    @pytest.mark.parametrize("bad", BAD_NAMES)
    def test_invalid_workspace_name_rejected(self, store: Store, bad: str) -> None:
        """Bad workspace names raise InvalidNameError (a ValueError) and create nothing."""
        with pytest.raises(InvalidNameError) as info:
            store.create_workspace(bad)
        assert isinstance(info.value, ValueError)
        assert bad not in [w.name for w in store.list_workspaces()]

    # -- create -------------------------------------------------------------------------------------------------
    def test_create_assigns_story_id(self, store: Store, ws: str) -> None:
        """A task without an id gets task-YYYYMMDD-HHMMSS (UTC), the story's format."""
        before = datetime.now(UTC).replace(microsecond=0)
        created = store.create(ws, sample_task())
        assert STORY_ID.fullmatch(created.id)
        stamp = datetime.strptime(created.id[5:20], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
        assert before <= stamp <= datetime.now(UTC)

    def test_create_sets_store_fields(self, store: Store, ws: str) -> None:
        """create sets revision 1, schema_version, workspace_name and both timestamps."""
        created = store.create(ws, sample_task())
        assert created.revision == 1
        assert created.schema_version == "1.0"
        assert created.workspace_name == ws
        assert created.created_at is not None and created.updated_at is not None
        assert created.created_at.tzinfo is not None

    def test_create_leaves_argument_alone(self, store: Store, ws: str) -> None:
        """The task passed to create is not modified."""
        original = sample_task()
        snapshot = original.model_dump()
        store.create(ws, original)
        assert original.model_dump() == snapshot

    def test_create_keeps_explicit_id(self, store: Store, ws: str) -> None:
        """An explicit id is used as given."""
        created = store.create(ws, sample_task(id="my-custom-id"))
        assert created.id == "my-custom-id"
        assert store.get(ws, "my-custom-id").description == created.description

    def test_create_existing_id_raises(self, store: Store, ws: str, task: Task) -> None:
        """An explicit id that is taken raises TaskExistsError and leaves the stored task unchanged."""
        with pytest.raises(TaskExistsError):
            store.create(ws, sample_task(id=task.id, description="other"))
        assert store.get(ws, task.id).description == task.description

    def test_create_in_missing_workspace_raises(self, store: Store) -> None:
        """create in a workspace that does not exist raises WorkspaceNotFoundError."""
        with pytest.raises(WorkspaceNotFoundError):
            store.create(_ws(), sample_task())

    @pytest.mark.parametrize("bad", BAD_NAMES[1:])
    def test_create_invalid_id_rejected(self, store: Store, ws: str, bad: str) -> None:
        """A bad explicit task id raises InvalidNameError and stores nothing."""
        with pytest.raises(InvalidNameError):
            store.create(ws, sample_task(id=bad))
        assert list(store.list(ws)) == []

    def test_fifty_creates_get_unique_story_ids(self, store: Store, ws: str) -> None:
        """Fifty quick creates get fifty distinct ids, all in the story-era pattern the Go ATLAS lists."""
        ids = [store.create(ws, sample_task()).id for _ in range(50)]
        assert len(set(ids)) == 50
        assert all(STORY_ID.fullmatch(i) for i in ids), ids

    def test_concurrent_creates_never_share_an_id(self, store: Store, ws: str) -> None:
        """Threads creating at once each get their own id and their own task."""
        results: list[Task] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            for k in range(5):
                created = store.create(ws, sample_task(description=f"w{n}-{k}"))
                with lock:
                    results.append(created)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({t.id for t in results}) == 40
        for created in results:
            assert store.get(ws, created.id).description == created.description

    # -- get ----------------------------------------------------------------------------------------------------
    def test_get_round_trips_every_field(self, store: Store, ws: str) -> None:
        """get returns exactly what create stored, nested steps, config and metadata included."""
        created = store.create(ws, sample_task())
        got = store.get(ws, created.id)
        assert got.model_dump() == created.model_dump()
        assert got.config.timeout == timedelta(minutes=30)
        assert got.steps[1].commands == ["make lint", "make test"]

    def test_get_missing_task_raises(self, store: Store, ws: str) -> None:
        """A missing task raises TaskNotFoundError, which is also a LookupError."""
        with pytest.raises(TaskNotFoundError) as info:
            store.get(ws, "task-20000101-000000")
        assert isinstance(info.value, LookupError)
        assert info.value.task_id == "task-20000101-000000"

    @pytest.mark.parametrize("bad", ["../../etc", "a/b", "", ".."])
    def test_get_invalid_id_rejected(self, store: Store, ws: str, bad: str) -> None:
        """get with a traversal id raises InvalidNameError instead of reading anything."""
        with pytest.raises(InvalidNameError):
            store.get(ws, bad)

    # -- update -------------------------------------------------------------------------------------------------
    def test_update_persists_and_bumps_revision(self, store: Store, ws: str, task: Task) -> None:
        """update stores the change and returns the stored copy with revision + 1."""
        task.description = "changed"
        stored = store.update(ws, task)
        assert stored.revision == task.revision + 1
        assert store.get(ws, task.id).description == "changed"
        assert stored.updated_at is not None and task.updated_at is not None
        assert stored.updated_at >= task.updated_at

    def test_update_leaves_argument_alone(self, store: Store, ws: str, task: Task) -> None:
        """The task passed to update keeps its revision; the returned copy is independent of it."""
        task.metadata["x"] = 1
        stored = store.update(ws, task)
        assert task.revision == 1
        stored.metadata["x"] = 2
        assert task.metadata["x"] == 1

    def test_stale_update_raises_conflict(self, store: Store, ws: str, task: Task) -> None:
        """An update from a stale copy raises ConflictError and loses nothing of the newer save."""
        first = store.get(ws, task.id)
        second = store.get(ws, task.id)
        first.description = "first"
        store.update(ws, first)
        second.description = "second"
        with pytest.raises(ConflictError) as info:
            store.update(ws, second)
        assert (info.value.expected, info.value.found) == (1, 2)
        assert store.get(ws, task.id).description == "first"

    def test_update_missing_task_raises(self, store: Store, ws: str) -> None:
        """update of a task that was never created raises TaskNotFoundError."""
        with pytest.raises(TaskNotFoundError):
            store.update(ws, sample_task(id="task-20000101-000000"))

    def test_status_change_without_transition_refused(self, store: Store, ws: str, task: Task) -> None:
        """Setting status directly (no recorded transition) raises InvalidTransitionError."""
        task.status = TaskStatus.COMPLETED
        with pytest.raises(InvalidTransitionError):
            store.update(ws, task)
        assert store.get(ws, task.id).status == TaskStatus.RUNNING

    def test_transition_chain_saved(self, store: Store, ws: str, task: Task) -> None:
        """Several transitions between two saves are accepted and kept as the audit trail."""
        task.transition(TaskStatus.VALIDATING, "checks")
        task.transition(TaskStatus.AWAITING_APPROVAL, "ready")
        stored = store.update(ws, task)
        assert stored.status == TaskStatus.AWAITING_APPROVAL
        assert [(t.from_status, t.to_status) for t in stored.transitions[-2:]] == [
            ("running", "validating"),
            ("validating", "awaiting_approval"),
        ]

    def test_invalid_transition_raises(self, store: Store, ws: str, task: Task) -> None:
        """task.transition refuses an edge outside the table with InvalidTransitionError."""
        with pytest.raises(InvalidTransitionError):
            task.transition(TaskStatus.COMPLETED)

    def test_terminal_status_sets_completed_at(self, store: Store, ws: str, task: Task) -> None:
        """Reaching a terminal status sets completed_at, and it is stored."""
        task.transition(TaskStatus.ABANDONED, "gave up")
        stored = store.update(ws, task)
        assert stored.completed_at is not None
        assert store.get(ws, task.id).completed_at == stored.completed_at

    def test_step_checkpoint_round_trip(self, store: Store, ws: str, task: Task) -> None:
        """A step result and current_step saved by update are read back exactly (the per-step checkpoint)."""
        now = datetime.now(UTC)
        task.steps[0].status = "success"
        task.steps[0].attempts = 1
        task.step_results.append(
            StepResult(
                step_index=0,
                step_name="analyze",
                status="success",
                started_at=now,
                completed_at=now,
                duration_ms=12,
                output="ok",
                files_changed=["a.py"],
            )
        )
        task.current_step = 1
        store.update(ws, task)
        got = store.get(ws, task.id)
        assert got.current_step == 1
        assert got.step_results[0].files_changed == ["a.py"]
        assert got.steps[0].attempts == 1

    # -- edit / modify ------------------------------------------------------------------------------------------
    def test_modify_applies_and_bumps_revision(self, store: Store, ws: str, task: Task) -> None:
        """modify runs the function on the current task under the lock and saves the result."""
        stored = store.modify(ws, task.id, lambda t: t.metadata.update(seen=True))
        assert stored.revision == 2
        assert store.get(ws, task.id).metadata["seen"] is True

    def test_edit_that_raises_saves_nothing(self, store: Store, ws: str, task: Task) -> None:
        """An exception inside edit's block propagates unchanged and nothing is saved."""

        def half_done() -> None:
            with store.edit(ws, task.id) as editing:
                editing.description = "half done"
                raise KeyError("boom")

        with pytest.raises(KeyError):
            half_done()
        assert store.get(ws, task.id).description == task.description
        assert store.get(ws, task.id).revision == 1

    def test_concurrent_modify_loses_nothing(self, store: Store, ws: str, task: Task) -> None:
        """Eight threads incrementing one counter through modify lose no increment."""

        def bump(t: Task) -> None:
            t.metadata["n"] = t.metadata.get("n", 0) + 1

        def worker() -> None:
            for _ in range(10):
                store.modify(ws, task.id, bump)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = store.get(ws, task.id)
        assert got.metadata["n"] == 80
        assert got.revision == 81

    # -- list ---------------------------------------------------------------------------------------------------
    def test_list_newest_first(self, store: Store, ws: str) -> None:
        """list orders tasks by created_at, newest first."""
        base = datetime(2026, 1, 1, tzinfo=UTC)
        for offset in (2, 0, 1):
            store.create(ws, sample_task(id=f"t-{offset}", created_at=base + timedelta(hours=offset)))
        assert [t.id for t in store.list(ws)] == ["t-2", "t-1", "t-0"]

    def test_list_empty_workspace(self, store: Store, ws: str) -> None:
        """A workspace without tasks lists as empty, with no errors."""
        listed = store.list(ws)
        assert list(listed) == []
        assert listed.errors == []

    def test_list_missing_workspace_raises(self, store: Store) -> None:
        """Listing a workspace that does not exist raises WorkspaceNotFoundError."""
        with pytest.raises(WorkspaceNotFoundError):
            store.list(_ws())

    # -- delete -------------------------------------------------------------------------------------------------
    def test_delete_removes_everything(self, store: Store, ws: str, task: Task) -> None:
        """After delete the task, its log and artifacts are gone."""
        store.append_log(ws, task.id, {"event": "x"})
        store.save_artifact(ws, task.id, "notes.md", b"n")
        store.delete(ws, task.id)
        with pytest.raises(TaskNotFoundError):
            store.get(ws, task.id)
        assert [t.id for t in store.list(ws)] == []

    def test_delete_missing_raises(self, store: Store, ws: str) -> None:
        """Deleting a task that does not exist raises TaskNotFoundError."""
        with pytest.raises(TaskNotFoundError):
            store.delete(ws, "task-20000101-000000")

    def test_no_recreate_after_delete(self, store: Store, ws: str, task: Task) -> None:
        """A deleted task's id is never free again: ``create`` with it raises TaskIdRetiredError (a TaskExistsError)."""
        store.save_versioned_artifact(ws, task.id, "validation.json", b"1")
        store.delete(ws, task.id)
        with pytest.raises(TaskExistsError) as info:
            store.create(ws, sample_task(id=task.id, description="again"))
        assert isinstance(info.value, TaskIdRetiredError)
        fresh = store.create(ws, sample_task(description="again"))
        assert fresh.id != task.id
        assert store.list_artifacts(ws, fresh.id) == []

    def test_workspace_refs_follow_create_and_delete(self, store: Store, ws: str) -> None:
        """The task refs gain a created task and lose a deleted one; a file store in its default
        ``task_refs="existing"`` mode (as the current Go ATLAS) adds none on create."""
        a = store.create(ws, sample_task())
        b = store.create(ws, sample_task())
        every = _keeps_every_ref(store)
        assert {r.id for r in store.get_workspace(ws).tasks} == ({a.id, b.id} if every else set())
        store.delete(ws, a.id)
        assert [r.id for r in store.get_workspace(ws).tasks] == ([b.id] if every else [])

    def test_workspace_ref_follows_terminal_status(self, store: Store, ws: str, task: Task) -> None:
        """A task reaching a terminal status updates its ref's status (a file store in its default mode keeps
        no ref for a task it created, and adds none then)."""
        task.transition(TaskStatus.ABANDONED)
        store.update(ws, task)
        refs = [r for r in store.get_workspace(ws).tasks if r.id == task.id]
        assert [r.status for r in refs] == (["abandoned"] if _keeps_every_ref(store) else [])

    # -- logs ---------------------------------------------------------------------------------------------------
    def test_append_and_read_log(self, store: Store, ws: str, task: Task) -> None:
        """Appended entries read back in order, with ts, workspace_name and task_id filled in."""
        for i in range(5):
            store.append_log(ws, task.id, {"event": f"e{i}", "level": "info", "step_name": "analyze"})
        lines = store.read_log(ws, task.id)
        assert [line["event"] for line in lines] == [f"e{i}" for i in range(5)]
        assert lines[0]["task_id"] == task.id and lines[0]["workspace_name"] == ws
        assert "ts" in lines[0]
        assert lines.skipped == 0 and lines.errors == []

    def test_append_json_text(self, store: Store, ws: str, task: Task) -> None:
        """A str or bytes entry that is one line of JSON is stored as that line."""
        store.append_log(ws, task.id, '{"event": "text"}')
        store.append_log(ws, task.id, b'{"event": "bytes"}\n')
        assert [line["event"] for line in store.read_log(ws, task.id)] == ["text", "bytes"]

    @pytest.mark.parametrize("entry", ['{"a": 1}\n{"b": 2}', "not json", '{"a": "x\r"}\r', b'{"a": 1}\x00'])
    def test_bad_log_entry_refused(self, store: Store, ws: str, task: Task, entry: str | bytes) -> None:
        """Multi-line, non-JSON or NUL-carrying entries raise InvalidLogEntryError and write nothing."""
        with pytest.raises(InvalidLogEntryError) as info:
            store.append_log(ws, task.id, entry)
        assert isinstance(info.value, ValueError)
        assert list(store.read_log(ws, task.id)) == []

    def test_log_of_missing_task_raises(self, store: Store, ws: str) -> None:
        """Appending to a task that does not exist raises TaskNotFoundError."""
        with pytest.raises(TaskNotFoundError):
            store.append_log(ws, "task-20000101-000000", {"event": "x"})

    def test_concurrent_appends_all_kept(self, store: Store, ws: str, task: Task) -> None:
        """Lines appended by eight threads at once are all kept, whole."""

        def worker(n: int) -> None:
            for k in range(20):
                store.append_log(ws, task.id, {"event": "w", "n": n, "k": k, "pad": "x" * 500})

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lines = store.read_log(ws, task.id)
        assert sorted((line["n"], line["k"]) for line in lines) == [(n, k) for n in range(8) for k in range(20)]
        assert lines.skipped == 0

    # -- artifacts ----------------------------------------------------------------------------------------------
    def test_artifact_round_trip(self, store: Store, ws: str, task: Task) -> None:
        """save_artifact then get_artifact returns the same bytes; str data is stored as UTF-8."""
        store.save_artifact(ws, task.id, "commit-message.md", "fix: ünïcode")
        store.save_artifact(ws, task.id, "blob.bin", bytes(range(256)))
        assert store.get_artifact(ws, task.id, "commit-message.md") == "fix: ünïcode".encode()
        assert store.get_artifact(ws, task.id, "blob.bin") == bytes(range(256))

    def test_save_artifact_replaces(self, store: Store, ws: str, task: Task) -> None:
        """Saving a plain artifact again replaces its content."""
        store.save_artifact(ws, task.id, "pr-description.md", b"old")
        store.save_artifact(ws, task.id, "pr-description.md", b"new")
        assert store.get_artifact(ws, task.id, "pr-description.md") == b"new"

    def test_versioned_artifacts_number_upward(self, store: Store, ws: str, task: Task) -> None:
        """validation.json is saved as validation.1.json, .2, .3, each keeping its own content."""
        names = [store.save_versioned_artifact(ws, task.id, "validation.json", f"{i}") for i in range(3)]
        assert names == ["validation.1.json", "validation.2.json", "validation.3.json"]
        assert [store.get_artifact(ws, task.id, n) for n in names] == [b"0", b"1", b"2"]

    @pytest.mark.parametrize(
        ("base", "first"),
        [("notes", "notes.1"), ("archive.tar.gz", "archive.tar.1.gz"), ("sdd/spec.md", "sdd/spec.1.md")],
    )
    def test_versioned_name_forms(self, store: Store, ws: str, task: Task, base: str, first: str) -> None:
        """Versions go before the last extension (as in the Go ATLAS), also inside subdirectories."""
        assert store.save_versioned_artifact(ws, task.id, base, b"x") == first

    def test_list_artifacts_natural_order(self, store: Store, ws: str, task: Task) -> None:
        """list_artifacts is recursive and natural: validation.10.json comes after validation.9.json."""
        for _ in range(11):
            store.save_versioned_artifact(ws, task.id, "validation.json", b"{}")
        store.save_artifact(ws, task.id, "sdd/spec.md", b"# spec")
        listed = store.list_artifacts(ws, task.id)
        assert listed == [*[f"validation.{i}.json" for i in range(1, 12)], "sdd/spec.md"] or listed == [
            "sdd/spec.md",
            *[f"validation.{i}.json" for i in range(1, 12)],
        ]
        assert listed.index("validation.9.json") < listed.index("validation.10.json")

    def test_list_artifacts_empty(self, store: Store, ws: str, task: Task) -> None:
        """A task without artifacts lists none."""
        assert store.list_artifacts(ws, task.id) == []

    def test_get_missing_artifact_raises(self, store: Store, ws: str, task: Task) -> None:
        """A missing artifact raises ArtifactNotFoundError (a LookupError)."""
        with pytest.raises(ArtifactNotFoundError) as info:
            store.get_artifact(ws, task.id, "nope.json")
        assert isinstance(info.value, LookupError)

    @pytest.mark.parametrize("bad", BAD_ARTIFACTS)
    def test_bad_artifact_names_refused(self, store: Store, ws: str, task: Task, bad: str) -> None:
        """Traversal, absolute, hidden and malformed artifact names raise InvalidNameError for every call."""
        with pytest.raises(InvalidNameError):
            store.save_artifact(ws, task.id, bad, b"x")
        with pytest.raises(InvalidNameError):
            store.save_versioned_artifact(ws, task.id, bad, b"x")
        with pytest.raises(InvalidNameError):
            store.get_artifact(ws, task.id, bad)
        assert store.list_artifacts(ws, task.id) == []

    def test_plain_save_of_versioned_name_refused(self, store: Store, ws: str, task: Task) -> None:
        """save_artifact refuses a versioned-looking name, so a write-once version cannot be overwritten."""
        name = store.save_versioned_artifact(ws, task.id, "validation.json", b"attempt 1")
        with pytest.raises(InvalidNameError):
            store.save_artifact(ws, task.id, name, b"overwrite")
        assert store.get_artifact(ws, task.id, name) == b"attempt 1"

    def test_concurrent_versioned_saves_never_collide(self, store: Store, ws: str, task: Task) -> None:
        """Eight threads saving ten versions each get eighty distinct names, each holding its own payload."""
        saved: dict[str, bytes] = {}
        lock = threading.Lock()

        def worker(n: int) -> None:
            for k in range(10):
                payload = f"{n}:{k}".encode()
                name = store.save_versioned_artifact(ws, task.id, "validation.json", payload)
                with lock:
                    assert name not in saved
                    saved[name] = payload

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(saved) == 80
        assert sorted(saved) == sorted(f"validation.{i}.json" for i in range(1, 81))
        for name, payload in saved.items():
            assert store.get_artifact(ws, task.id, name) == payload

    def test_artifact_of_missing_task_raises(self, store: Store, ws: str) -> None:
        """Saving an artifact for a task that does not exist raises TaskNotFoundError."""
        with pytest.raises(TaskNotFoundError):
            store.save_artifact(ws, "task-20000101-000000", "x.md", b"x")

    # -- errors -------------------------------------------------------------------------------------------------
    def test_errors_share_a_base(self, store: Store, ws: str) -> None:
        """Every error raised by the store is an AtlasTasksError with a message naming what failed."""
        with pytest.raises(AtlasTasksError) as info:
            store.get(ws, "task-20000101-000000")
        assert "task-20000101-000000" in str(info.value) and ws in str(info.value)

    # -- the model-based state machine --------------------------------------------------------------------------
    def test_state_machine_matches_model(self, store_factory: Callable[[], Store]) -> None:
        """Random sequences of operations leave the store agreeing with a plain in-memory model."""
        machine = make_state_machine(store_factory)
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=25,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )
