"""Conformance tests for the parts of the Store contract beyond StoreTests, and for the optional capabilities.

Mix them into a backend's test class beside :class:`~atlas_tasks.testing.StoreTests`::

    class TestMyStore(StoreTests, ListingTests, LogTailTests, ArtifactSizeTests, RunLeaseTests, StampTests, UrlTests):
        @pytest.fixture
        def store_factory(self): ...

``ListingTests``, ``LogTailTests``, ``ArtifactSizeTests`` and ``UrlTests`` check methods every store has.
``RunLeaseTests`` and ``StampTests`` check a capability (:class:`~atlas_tasks.store.RunLeases`,
:class:`~atlas_tasks.store.ChangeStamps`) and skip, saying so, on a store that does not claim it.

One hook is out of band (it must not use the store's own methods): :meth:`ListingTests.damage_task` makes a stored
task unreadable, so the suite can check that listings report it instead of dropping it. Its default skips; a backend
overrides it to write bad bytes where that backend keeps the task.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest

from atlas_tasks.errors import (
    ArtifactNotFoundError,
    AtlasTasksError,
    CorruptTaskError,
    TaskExistsError,
    TaskIdRetiredError,
    TaskNotFoundError,
    TaskRunningError,
    WorkspaceNotFoundError,
)
from atlas_tasks.models import Task, format_time, parse_time
from atlas_tasks.store import Store
from atlas_tasks.store.capabilities import ChangeStamps, Importable, RunLeases, Tombstones
from atlas_tasks.store.types import Tombstone
from atlas_tasks.testing.conformance import StoreFixtures, sample_task

#: A generous bound for anything that waits on another thread (never a speed assertion).
WAIT = 60.0

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@runtime_checkable
class _Closable(Protocol):
    def close(self) -> None: ...


def require(store: Store, capability: type) -> None:
    """Skip the calling test unless ``store`` has ``capability`` (a runtime-checkable protocol)."""
    if not isinstance(store, capability):
        pytest.skip(f"{type(store).__name__} does not have the {capability.__name__} capability")


def _ids(tasks: Any) -> list[str]:
    return [t.id for t in tasks]


def _fill(store: Store, ws: str, count: int, *, same_time: bool = False) -> list[str]:
    """Create ``count`` tasks in shuffled creation order; return their ids newest first (the listing order)."""
    made: list[Task] = []
    for i in (3, 0, 4, 1, 2, *range(5, count)) if count >= 5 else range(count):
        created = T0 if same_time else T0 + timedelta(minutes=i)
        made.append(store.create(ws, sample_task(id=f"task-{i:03d}", created_at=created)))
    made.sort(key=lambda t: (t.created_at, t.id), reverse=True)
    return _ids(made)


class ListingTests(StoreFixtures):
    """``list(limit=)``, ``iter_tasks`` and ``list_summaries`` agree with ``list()``."""

    def damage_task(self, store: Store, workspace: str, task_id: str) -> None:
        """Make the stored task unreadable behind the store's back (bad bytes where it keeps the task)."""
        pytest.skip(f"{type(self).__name__} has no out-of-band damage_task hook")

    @pytest.mark.parametrize("limit", [0, 1, 2, 5, 7, 100])
    def test_list_limit_is_newest_n(self, store: Store, ws: str, limit: int) -> None:
        """``list(limit=n)`` is exactly the first n tasks of ``list()`` (newest first by created_at)."""
        newest_first = _fill(store, ws, 7)
        assert _ids(store.list(ws)) == newest_first
        assert _ids(store.list(ws, limit=limit)) == newest_first[:limit]

    @pytest.mark.parametrize("limit", [1, 3])
    def test_list_limit_breaks_ties_by_id(self, store: Store, ws: str, limit: int) -> None:
        """Tasks created at the same instant are ordered by id descending, with and without a limit."""
        newest_first = _fill(store, ws, 5, same_time=True)
        assert _ids(store.list(ws)) == newest_first
        assert _ids(store.list(ws, limit=limit)) == newest_first[:limit]

    def test_list_limit_after_update_keeps_order(self, store: Store, ws: str) -> None:
        """Updating an old task does not move it: the order is by creation time, not by last write."""
        newest_first = _fill(store, ws, 5)
        oldest = store.get(ws, newest_first[-1])
        oldest.description = "changed"
        store.update(ws, oldest)
        assert _ids(store.list(ws, limit=2)) == newest_first[:2]
        assert _ids(store.list(ws)) == newest_first

    def test_iter_tasks_yields_every_task(self, store: Store, ws: str) -> None:
        """``iter_tasks`` yields each task of the workspace once, as ``get`` returns it."""
        newest_first = _fill(store, ws, 6)
        errors: list[AtlasTasksError] = []
        got = {t.id: t for t in store.iter_tasks(ws, errors=errors)}
        assert sorted(got) == sorted(newest_first)
        assert len(list(store.iter_tasks(ws))) == len(newest_first)
        assert errors == []
        for task_id, task in got.items():
            assert task == store.get(ws, task_id)

    def test_list_summaries_agree_with_list(self, store: Store, ws: str) -> None:
        """``list_summaries`` has one row per task of ``list()``, in the same order, with the same fields."""
        _fill(store, ws, 6)
        task = store.list(ws)[2]
        task.transition("validating", "checks")
        store.update(ws, task)
        tasks, summaries = store.list(ws), store.list_summaries(ws)
        assert [s.id for s in summaries] == _ids(tasks)
        for summary, full in zip(summaries, tasks, strict=True):
            assert summary.workspace == ws
            assert (summary.status, summary.template, summary.description) == (
                str(full.status),
                full.template,
                full.description,
            )
            assert (summary.current_step, summary.total_steps) == (full.current_step, len(full.steps))
            assert (summary.created_at, summary.updated_at, summary.revision) == (
                full.created_at,
                full.updated_at,
                full.revision,
            )
        assert summaries.errors == []

    def test_damaged_task_reported_by_every_listing(self, store: Store, ws: str) -> None:
        """An unreadable task is reported by list, list_summaries and iter_tasks(errors=) and never dropped."""
        newest_first = _fill(store, ws, 4)
        bad = newest_first[1]
        self.damage_task(store, ws, bad)
        good = [i for i in newest_first if i != bad]
        listed = store.list(ws)
        assert _ids(listed) == good
        assert [e.task_id for e in listed.errors if isinstance(e, CorruptTaskError)] == [bad]
        summaries = store.list_summaries(ws)
        assert [s.id for s in summaries] == good
        assert [e.task_id for e in summaries.errors if isinstance(e, CorruptTaskError)] == [bad]
        errors: list[AtlasTasksError] = []
        assert sorted(_ids(store.iter_tasks(ws, errors=errors))) == sorted(good)
        assert [e.task_id for e in errors if isinstance(e, CorruptTaskError)] == [bad]

    def test_iter_tasks_without_errors_raises_damaged(self, store: Store, ws: str) -> None:
        """Without an ``errors`` list, ``iter_tasks`` raises the unreadable task's CorruptTaskError."""
        newest_first = _fill(store, ws, 3)
        self.damage_task(store, ws, newest_first[0])
        with pytest.raises(CorruptTaskError) as info:
            list(store.iter_tasks(ws))
        assert info.value.task_id == newest_first[0]

    def test_list_limit_with_damaged_task(self, store: Store, ws: str) -> None:
        """A damaged task never takes a place in ``list(limit=)``; the readable newest still fill it."""
        newest_first = _fill(store, ws, 5)
        self.damage_task(store, ws, newest_first[0])
        limited = store.list(ws, limit=2)
        assert set(_ids(limited)) <= set(newest_first[1:])
        assert _ids(limited) == [i for i in _ids(store.list(ws)) if i in _ids(limited)]


class LogTailTests(StoreFixtures):
    """``tail_log`` windows and positions, and ``follow_log``."""

    @staticmethod
    def _log(store: Store, ws: str, task_id: str, count: int, start: int = 0) -> list[int]:
        for n in range(start, start + count):
            store.append_log(ws, task_id, {"level": "info", "event": f"entry {n}", "n": n})
        return list(range(start, start + count))

    @staticmethod
    def _ns(entries: Any) -> list[int]:
        return [e["n"] for e in entries]

    @pytest.mark.parametrize("lines", [0, 1, 4, 10, 50])
    def test_tail_is_last_entries(self, store: Store, ws: str, task: Task, lines: int) -> None:
        """``tail_log(n)`` holds the last n entries of ``read_log``, in order, one position each."""
        written = self._log(store, ws, task.id, 10)
        tail = store.tail_log(ws, task.id, lines)
        assert self._ns(tail) == written[len(written) - min(lines, 10) :]
        assert self._ns(tail) == self._ns(store.read_log(ws, task.id))[len(written) - min(lines, 10) :]
        assert len(tail.positions) == len(tail)
        assert tail.more is False

    def test_tail_of_empty_log(self, store: Store, ws: str, task: Task) -> None:
        """A task with no log has an empty tail; following on from its end yields the first entries."""
        tail = store.tail_log(ws, task.id, 5)
        assert list(tail) == []
        self._log(store, ws, task.id, 2)
        assert self._ns(store.tail_log(ws, task.id, 5, after=tail.end)) == [0, 1]

    @pytest.mark.parametrize("window", [1, 3, 7, 30])
    def test_windows_from_end_never_repeat_or_skip(self, store: Store, ws: str, task: Task, window: int) -> None:
        """Reading windows of ``after=`` each previous ``.end`` from 0 gives every entry exactly once."""
        written = self._log(store, ws, task.id, 20)
        seen: list[int] = []
        position = 0
        for _ in range(100):
            page = store.tail_log(ws, task.id, window, after=position)
            seen += self._ns(page)
            assert len(page) <= window
            assert page.end >= position
            position = page.end
            if not page.more:
                break
        assert seen == written
        assert list(store.tail_log(ws, task.id, window, after=position)) == []

    def test_continuing_from_end_sees_new_entries_only(self, store: Store, ws: str, task: Task) -> None:
        """After a tail, ``after=tail.end`` gives exactly the entries appended since, as more are appended."""
        self._log(store, ws, task.id, 5)
        position = store.tail_log(ws, task.id, 3).end
        seen: list[int] = []
        for start in (5, 8, 9):
            expected = self._log(store, ws, task.id, 3 if start != 8 else 1, start)
            page = store.tail_log(ws, task.id, 100, after=position)
            assert self._ns(page) == expected
            seen += self._ns(page)
            position = page.end
        assert seen == list(range(5, 12))

    def test_each_position_continues_after_its_entry(self, store: Store, ws: str, task: Task) -> None:
        """``positions[i]`` handed back as ``after`` continues with entry i + 1: positions are increasing."""
        written = self._log(store, ws, task.id, 6)
        tail = store.tail_log(ws, task.id, 6)
        assert tail.positions == sorted(set(tail.positions))
        assert tail.positions[-1] <= tail.end
        for i, position in enumerate(tail.positions):
            assert self._ns(store.tail_log(ws, task.id, 100, after=position)) == written[i + 1 :]

    def test_full_window_says_more(self, store: Store, ws: str, task: Task) -> None:
        """A window that stops before the end of the log says ``more``; the last one does not."""
        self._log(store, ws, task.id, 5)
        first = store.tail_log(ws, task.id, 3, after=0)
        assert (self._ns(first), first.more) == ([0, 1, 2], True)
        rest = store.tail_log(ws, task.id, 3, after=first.end)
        assert (self._ns(rest), rest.more) == ([3, 4], False)

    def _follow(
        self, store: Store, ws: str, task_id: str, writer: Callable[[], object], *, after: int = 0
    ) -> list[int]:
        """Follow the log while ``writer`` runs in a thread; stop once it is done. Returns the ``n`` seen."""
        done = threading.Event()
        failure: list[BaseException] = []

        def write() -> None:
            try:
                writer()
            except BaseException as exc:  # noqa: BLE001 - reported to the test below
                failure.append(exc)
            finally:
                done.set()

        deadline = time.monotonic() + WAIT
        thread = threading.Thread(target=write, daemon=True)
        seen: list[int] = []

        def until() -> bool:
            return done.is_set() or time.monotonic() > deadline

        followed: Iterator[dict[str, Any]] = store.follow_log(
            ws, task_id, until=until, poll=0.02, after=after, on_listen=thread.start
        )
        for entry in followed:
            seen.append(entry["n"])
        thread.join(WAIT)
        assert not failure, failure
        assert done.is_set(), "the writer did not finish in time"
        return seen

    def test_follow_yields_old_and_appended_entries(self, store: Store, ws: str, task: Task) -> None:
        """``follow_log`` yields what was there, then every entry appended while it follows, once each, in order."""
        self._log(store, ws, task.id, 3)

        def writer() -> None:
            for n in range(3, 13):
                self._log(store, ws, task.id, 1, n)
                time.sleep(0.01)

        assert self._follow(store, ws, task.id, writer) == list(range(13))

    def test_follow_after_position(self, store: Store, ws: str, task: Task) -> None:
        """``follow_log(after=tail.end)`` yields only the entries appended after that tail."""
        self._log(store, ws, task.id, 4)
        end = store.tail_log(ws, task.id, 2).end
        assert self._follow(store, ws, task.id, lambda: self._log(store, ws, task.id, 3, 4), after=end) == [4, 5, 6]

    def test_follow_stops_when_until_is_true(self, store: Store, ws: str, task: Task) -> None:
        """With ``until`` already true, ``follow_log`` yields the entries there and returns."""
        self._log(store, ws, task.id, 3)
        got = [e["n"] for e in store.follow_log(ws, task.id, until=lambda: True, poll=0.01)]
        assert got == [0, 1, 2]


class ArtifactSizeTests(StoreFixtures):
    """``artifact_sizes`` is the length of each artifact, by the names and in the order of ``list_artifacts``."""

    def test_sizes_match_contents(self, store: Store, ws: str, task: Task) -> None:
        """Each size is ``len(get_artifact(name))``: plain, nested, empty, binary, replaced and versioned."""
        store.save_artifact(ws, task.id, "report.json", '{"ok": true}')
        store.save_artifact(ws, task.id, "sdd/spec.md", "# Spec\n\nünïcode\n")
        store.save_artifact(ws, task.id, "empty.txt", b"")
        store.save_artifact(ws, task.id, "blob.bin", bytes(range(256)) * 3)
        store.save_artifact(ws, task.id, "report.json", '{"ok": false, "longer": 1}')
        store.save_versioned_artifact(ws, task.id, "validation.json", b"{}")
        store.save_versioned_artifact(ws, task.id, "validation.json", b'{"second": 2}')
        sizes = store.artifact_sizes(ws, task.id)
        names = store.list_artifacts(ws, task.id)
        assert list(sizes) == names
        assert sizes == {name: len(store.get_artifact(ws, task.id, name)) for name in names}
        assert sizes["empty.txt"] == 0
        assert sizes["report.json"] == len(b'{"ok": false, "longer": 1}')

    def test_no_artifacts(self, store: Store, ws: str, task: Task) -> None:
        """A task without artifacts has no sizes."""
        assert store.artifact_sizes(ws, task.id) == {}

    def test_open_artifact_reads_whole_and_in_chunks(self, store: Store, ws: str, task: Task) -> None:
        """``open_artifact`` gives the size first, then the same bytes whole or in chunks no bigger than CHUNK."""
        data = bytes(range(256)) * 2000  # 512,000 bytes: more than one chunk
        store.save_artifact(ws, task.id, "sub/blob.bin", data)
        with store.open_artifact(ws, task.id, "sub/blob.bin") as opened:
            assert opened.size == len(data)
            pieces = list(opened.chunks())
        assert b"".join(pieces) == data and max(len(p) for p in pieces) <= opened.CHUNK and len(pieces) > 1
        assert store.open_artifact(ws, task.id, "sub/blob.bin").read() == data
        assert (
            store.open_artifact(ws, task.id, "sub/blob.bin").size == store.artifact_sizes(ws, task.id)["sub/blob.bin"]
        )

    def test_open_missing_artifact_raises(self, store: Store, ws: str, task: Task) -> None:
        """Opening an artifact, task or workspace that does not exist raises the usual not-found error."""
        with pytest.raises(ArtifactNotFoundError):
            store.open_artifact(ws, task.id, "nope.txt")
        with pytest.raises(TaskNotFoundError):
            store.open_artifact(ws, "task-20990101-000000", "nope.txt")
        with pytest.raises(WorkspaceNotFoundError):
            store.open_artifact("ws-missing-" + ws, task.id, "nope.txt")


class RunLeaseTests(StoreFixtures):
    """The :class:`~atlas_tasks.store.RunLeases` capability: one live runner per task."""

    HOLDER: ClassVar[dict[str, Any]] = {"pid": 4242, "host": "conformance-host", "started_at": "2026-01-02T03:04:05Z"}

    def test_acquire_shows_holder_until_release(self, store: Store, ws: str, task: Task) -> None:
        """While a lease is held ``lease_holder`` shows its holder; after ``release`` it shows None."""
        require(store, RunLeases)
        assert isinstance(store, RunLeases)
        assert store.lease_holder(ws, task.id) is None
        lease = store.acquire_lease(ws, task.id, self.HOLDER)
        try:
            holder = store.lease_holder(ws, task.id)
            assert holder is not None
            assert {k: holder.get(k) for k in self.HOLDER} == self.HOLDER
        finally:
            lease.release()
        assert store.lease_holder(ws, task.id) is None

    def test_second_acquire_refused_naming_holder(self, store: Store, ws: str, task: Task) -> None:
        """A held lease refuses another taker with TaskRunningError naming the holder; freed, it can be taken."""
        require(store, RunLeases)
        assert isinstance(store, RunLeases)
        lease = store.acquire_lease(ws, task.id, self.HOLDER)
        try:
            with pytest.raises(TaskRunningError) as info:
                store.acquire_lease(ws, task.id, {**self.HOLDER, "pid": 1})
            assert info.value.holder.get("pid") == self.HOLDER["pid"]
            assert (info.value.workspace, info.value.task_id) == (ws, task.id)
        finally:
            lease.release()
        again = store.acquire_lease(ws, task.id, self.HOLDER)
        again.release()

    def test_leases_are_per_task(self, store: Store, ws: str, task: Task) -> None:
        """Holding one task's lease leaves another task of the workspace free."""
        require(store, RunLeases)
        assert isinstance(store, RunLeases)
        other = store.create(ws, sample_task())
        lease = store.acquire_lease(ws, task.id, self.HOLDER)
        try:
            assert store.lease_holder(ws, other.id) is None
            second = store.acquire_lease(ws, other.id, self.HOLDER)
            second.release()
        finally:
            lease.release()

    def test_lease_on_missing_task_or_workspace(self, store: Store, ws: str) -> None:
        """Taking the lease of a task or workspace that does not exist raises the usual not-found errors."""
        require(store, RunLeases)
        assert isinstance(store, RunLeases)
        with pytest.raises(TaskNotFoundError):
            store.acquire_lease(ws, "task-20200101-000000", self.HOLDER)
        with pytest.raises(WorkspaceNotFoundError):
            store.acquire_lease(f"{ws}-missing", "task-20200101-000000", self.HOLDER)

    def test_delete_while_holding_the_lease(self, store: Store, ws: str, task: Task) -> None:
        """``delete`` works while the caller holds the task's run lease (as ``atlas-tasks delete`` does)."""
        require(store, RunLeases)
        assert isinstance(store, RunLeases)
        lease = store.acquire_lease(ws, task.id, {**self.HOLDER, "deleting": True})
        try:
            store.delete(ws, task.id)
        finally:
            lease.release()
        with pytest.raises(TaskNotFoundError):
            store.get(ws, task.id)

    def test_candidates_include_every_held_lease(self, store: Store, ws: str, task: Task) -> None:
        """``lease_candidates`` is None or a superset of the ids whose lease is held."""
        require(store, RunLeases)
        assert isinstance(store, RunLeases)
        others = [store.create(ws, sample_task()) for _ in range(3)]
        held = [store.acquire_lease(ws, t.id, self.HOLDER) for t in (task, others[1])]
        try:
            candidates = store.lease_candidates(ws)
            assert candidates is None or {task.id, others[1].id} <= candidates
        finally:
            for lease in held:
                lease.release()
        for t in (task, *others):
            assert store.lease_holder(ws, t.id) is None


class StampTests(StoreFixtures):
    """The :class:`~atlas_tasks.store.ChangeStamps` capability: a stamp that changes exactly when a task is written."""

    def test_stamp_changes_on_update(self, store: Store, ws: str, task: Task) -> None:
        """A task's stamp differs after each update, and ``task_stamps`` agrees with ``task_stamp``."""
        require(store, ChangeStamps)
        assert isinstance(store, ChangeStamps)
        stamps = [store.task_stamp(ws, task.id)]
        current = task
        for n in range(3):
            current.description = f"edit {n}"
            current = store.update(ws, current)
            stamps.append(store.task_stamp(ws, task.id))
            assert store.task_stamps(ws).get(task.id) == stamps[-1]
        assert None not in stamps
        assert len(set(stamps)) == len(stamps)

    def test_stamp_stays_on_read(self, store: Store, ws: str, task: Task) -> None:
        """Reading a task (get, list, summaries, its log and artifacts) leaves its stamp as it was."""
        require(store, ChangeStamps)
        assert isinstance(store, ChangeStamps)
        before = store.task_stamp(ws, task.id)
        store.get(ws, task.id)
        store.list(ws)
        store.list_summaries(ws)
        store.read_log(ws, task.id)
        store.list_artifacts(ws, task.id)
        assert store.task_stamp(ws, task.id) == before
        assert store.task_stamps(ws)[task.id] == before

    def test_stamps_cover_every_task(self, store: Store, ws: str, task: Task) -> None:
        """``task_stamps`` has a stamp for every task; ``workspace_names`` lists the workspace, sorted."""
        require(store, ChangeStamps)
        assert isinstance(store, ChangeStamps)
        others = [store.create(ws, sample_task()) for _ in range(2)]
        stamps = store.task_stamps(ws)
        for t in (task, *others):
            assert stamps.get(t.id) is not None
        names = store.workspace_names()
        assert ws in names
        assert names == sorted(names)

    def test_deleted_task_has_no_stamp(self, store: Store, ws: str, task: Task) -> None:
        """Once a task is deleted its stamp is None and ``task_stamps`` gives it none."""
        require(store, ChangeStamps)
        assert isinstance(store, ChangeStamps)
        store.delete(ws, task.id)
        assert store.task_stamp(ws, task.id) is None
        assert store.task_stamps(ws).get(task.id) is None


class TombstoneTests(StoreFixtures):
    """A deleted id is never handed out again (the :class:`~atlas_tasks.store.capabilities.Tombstones` capability)."""

    def test_delete_leaves_a_tombstone(self, store: Store, ws: str, task: Task) -> None:
        """``delete`` records the id's tombstone: when, the task's created_at, and the reason given."""
        require(store, Tombstones)
        assert isinstance(store, Tombstones)
        assert store.tombstone(ws, task.id) is None
        store.delete(ws, task.id, reason="gc")
        stone = store.tombstone(ws, task.id)
        assert stone is not None
        assert (stone.workspace, stone.id, stone.created_at) == (ws, task.id, format_time(task.created_at))
        deleted_at = parse_time(stone.deleted_at)
        assert deleted_at is not None and task.created_at is not None and deleted_at >= task.created_at
        assert stone.info["reason"] == "gc"
        assert store.tombstones(ws) == [stone]

    def test_delete_many_deletes_each_with_its_tombstone(self, store: Store, ws: str, task: Task) -> None:
        """``delete_many`` removes every task named, tombstones each, and reports a missing id instead of raising."""
        require(store, Tombstones)
        assert isinstance(store, Tombstones)
        others = [store.create(ws, sample_task(description=f"doomed {n}")) for n in range(3)]
        keep = store.create(ws, sample_task(description="kept"))
        doomed = [task.id] + [t.id for t in others]
        failed = store.delete_many(ws, [*doomed, "task-20990101-000000"], reason="gc")
        assert list(failed) == ["task-20990101-000000"]
        assert isinstance(failed["task-20990101-000000"], TaskNotFoundError)
        assert _ids(store.list(ws)) == [keep.id]
        assert sorted(s.id for s in store.list_summaries(ws)) == [keep.id]
        stones = {stone.id: stone for stone in store.tombstones(ws)}
        assert sorted(stones) == sorted(doomed)
        assert all(stone.info["reason"] == "gc" for stone in stones.values())

    def test_get_of_a_deleted_task_says_when_it_was_deleted(self, store: Store, ws: str, task: Task) -> None:
        """``get`` of a deleted id raises TaskNotFoundError carrying the tombstone's ``deleted_at``."""
        require(store, Tombstones)
        assert isinstance(store, Tombstones)
        store.delete(ws, task.id)
        stone = store.tombstone(ws, task.id)
        assert stone is not None
        with pytest.raises(TaskNotFoundError) as info:
            store.get(ws, task.id)
        assert info.value.context["deleted_at"] == stone.deleted_at
        assert f"deleted at {stone.deleted_at}" in str(info.value)

    def test_tombstone_blocks_an_explicit_recreate(self, store: Store, ws: str, task: Task) -> None:
        """``create`` with a deleted task's id raises TaskIdRetiredError naming the id, and stores nothing."""
        require(store, Tombstones)
        store.delete(ws, task.id)
        with pytest.raises(TaskIdRetiredError) as info:
            store.create(ws, sample_task(id=task.id, description="a second life"))
        assert (info.value.workspace, info.value.task_id) == (ws, task.id)
        assert task.id in str(info.value) and "--as-new-id" in str(info.value)
        with pytest.raises(TaskNotFoundError):
            store.get(ws, task.id)
        assert _ids(store.list(ws)) == []

    def test_generated_ids_skip_tombstoned_ones(self, store: Store, ws: str) -> None:
        """With the clock stepped back to a deleted task's second, ``create`` hands out a different id."""
        require(store, Tombstones)
        store.id_clock = lambda: T0  # type: ignore[attr-defined]  # BaseStore's clock for timestamp ids
        first = store.create(ws, sample_task())
        assert first.id == "task-20260102-030405"
        store.delete(ws, first.id)
        again = store.create(ws, sample_task())
        assert again.id != first.id
        assert again.id.startswith("task-20260102-030405-")

    def test_restoring_the_deleted_task_lifts_its_tombstone(self, store: Store, ws: str, task: Task) -> None:
        """``import_task`` of the very task deleted (same id and created_at) brings it back and lifts the tombstone."""
        require(store, Tombstones)
        require(store, Importable)
        assert isinstance(store, Importable) and isinstance(store, Tombstones)
        store.append_log(ws, task.id, {"event": "before"})
        saved, log = store.get(ws, task.id), list(store.read_log(ws, task.id))
        store.delete(ws, task.id)
        restored = store.import_task(ws, saved, log_lines=log, artifacts={"notes.md": b"n"})
        assert (restored.id, restored.created_at, restored.revision) == (saved.id, saved.created_at, saved.revision)
        assert store.tombstone(ws, task.id) is None
        assert store.get_artifact(ws, task.id, "notes.md") == b"n"

    def test_importing_another_task_under_a_retired_id_is_refused(self, store: Store, ws: str, task: Task) -> None:
        """``import_task`` of a different task (another created_at) under a deleted id is refused; nothing lands."""
        require(store, Tombstones)
        require(store, Importable)
        assert isinstance(store, Importable) and isinstance(store, Tombstones)
        store.delete(ws, task.id)
        other = sample_task(id=task.id, created_at=T0, updated_at=T0, revision=3)
        with pytest.raises(TaskIdRetiredError):
            store.import_task(ws, other, artifacts={"x.md": b"x"})
        with pytest.raises(TaskNotFoundError):
            store.get(ws, task.id)
        assert store.tombstone(ws, task.id) is not None

    def test_replacing_on_import_leaves_no_tombstone(self, store: Store, ws: str, task: Task) -> None:
        """``import_task(replace=True)`` over a live task replaces it: the id stays in use, no tombstone."""
        require(store, Tombstones)
        require(store, Importable)
        assert isinstance(store, Importable) and isinstance(store, Tombstones)
        other = sample_task(id=task.id, created_at=T0, updated_at=T0, revision=7)
        store.import_task(ws, other, replace=True)
        assert store.get(ws, task.id).revision == 7
        assert store.tombstone(ws, task.id) is None

    def test_import_tombstone_retires_the_id(self, store: Store, ws: str) -> None:
        """``import_tombstone`` keeps a tombstone as given, ``create`` of its id is refused, and a second is ignored."""
        require(store, Tombstones)
        require(store, Importable)
        assert isinstance(store, Importable) and isinstance(store, Tombstones)
        stone = Tombstone(ws, "task-20250101-000000", "2026-01-02T03:04:05Z", "2025-01-01T00:00:00Z", {"pid": 7})
        assert store.import_tombstone(stone) is True
        assert store.tombstone(ws, stone.id) == stone
        later = Tombstone(ws, stone.id, "2026-02-02T00:00:00Z", "", {"reason": "again"})
        assert store.import_tombstone(later) is False
        assert store.tombstones(ws) == [stone]
        with pytest.raises(TaskIdRetiredError):
            store.create(ws, sample_task(id=stone.id))
        with pytest.raises(TaskNotFoundError):
            store.get(ws, stone.id)

    def test_import_tombstone_refuses_an_id_in_use(self, store: Store, ws: str, task: Task) -> None:
        """A tombstone for the id of a live task is refused with TaskExistsError; the task stays, unretired."""
        require(store, Tombstones)
        require(store, Importable)
        assert isinstance(store, Importable) and isinstance(store, Tombstones)
        with pytest.raises(TaskExistsError):
            store.import_tombstone(Tombstone(ws, task.id, "2026-01-02T03:04:05Z"))
        assert store.tombstone(ws, task.id) is None
        assert store.get(ws, task.id).revision == task.revision
        store.update(ws, store.get(ws, task.id))  # still writable: nothing was left holding the id

    def test_import_tombstone_without_its_workspace(self, store: Store) -> None:
        """A tombstone of a workspace that does not exist is kept: tombstones outlive their workspaces."""
        require(store, Tombstones)
        require(store, Importable)
        assert isinstance(store, Importable) and isinstance(store, Tombstones)
        stone = Tombstone("ws-long-gone", "task-20250101-000000", "2026-01-02T03:04:05Z")
        assert store.import_tombstone(stone) is True
        assert store.tombstones("ws-long-gone") == [stone]

    def test_no_tombstones_in_an_unknown_workspace(self, store: Store) -> None:
        """A workspace that never existed has no tombstones (tombstones outlive workspaces, so this is no error)."""
        require(store, Tombstones)
        assert isinstance(store, Tombstones)
        assert store.tombstones("ws-never-made") == []
        assert store.tombstone("ws-never-made", "task-20260102-030405") is None


class UrlTests(StoreFixtures):
    """``open_store(store.url)`` opens the same store again."""

    def test_url_opens_same_store(self, store: Store, ws: str, task: Task) -> None:
        """A store opened from ``store.url`` sees the workspace and task, and what it writes is seen back."""
        from atlas_tasks.store.urls import open_store

        again = open_store(store.url)
        try:
            assert again.get(ws, task.id) == store.get(ws, task.id)
            assert ws in [w.name for w in again.list_workspaces()]
            made = again.create(ws, sample_task(description="written through the URL"))
            assert store.get(ws, made.id).description == "written through the URL"
        finally:
            if isinstance(again, _Closable):  # the PostgreSQL store owns a pool when opened from a URL
                again.close()


__all__ = [
    "ArtifactSizeTests",
    "ListingTests",
    "LogTailTests",
    "RunLeaseTests",
    "StampTests",
    "UrlTests",
    "require",
]
