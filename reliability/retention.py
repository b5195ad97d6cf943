"""R, retention under kill -9: gc and import, with real children killed by SIGKILL (their whole process group).

Each round takes fresh homes on the file store and one kind of operation, chosen by a seeded PRNG:

* **gc**: a store of random tasks (terminal or not, old or recent, some pinned, some with several artifacts, a
  multi-line log and the Go ATLAS's hook files ``hook.json``/``HOOK.md``) is fingerprinted: every file of every
  task directory, byte for byte, and what ``get``/``read_log``/``get_artifact`` return. A child runs
  ``retention.gc.collect(store, older_than=30 days)`` and is SIGKILLed at a random moment (now and then a second
  collector races it and one of the two is killed; the loser of the lock exits with ``CollectorBusyError``). The
  killed child deletes in groups of 1, 3, 5 or 64 tasks (``FileStore.delete_group``: one fsync of the tombstone
  directory per group, then one of the tasks directory and the trash), and aimed kills land inside a group.
  BEFORE any repair: every task directory under ``workspaces/<ws>/tasks/`` is whole (its fingerprint unchanged)
  or absent, only eligible tasks (terminal, old, unpinned) may be absent, and ``list``/``get`` show only whole
  tasks. Leftovers in ``.atlas-tasks/trash/`` are allowed (that is the protocol). Then ``doctor --fix`` and a
  second, full collection: exactly the eligible set is gone, the trash is empty, workspace.json's refs follow the
  store's ``task_refs`` mode (each round picks the mode the tasks are created in and the one doctor runs in: the
  refs name exactly the task directories if either is "all", else none), every remaining task is byte-identical,
  and the doctor finds nothing.
* **import**: a few tasks of a source home are exported to one bundle; a child imports it into a target store
  (which already holds a task of its own), with or without ``as_new_id``, and is SIGKILLed at a random moment.
  Each bundle task in the target is absent, an invisible incomplete directory (no ``task.json``: what the file
  store's ``import_task`` leaves when cut short), or whole: task.json byte-identical to the source's but for
  ``metadata.imported_from`` (and the id, with ``as_new_id``), log lines and artifacts byte for byte, hook files
  too; ``list``/``get`` show no partial task and the target's own task is untouched. Then the recovery the docs
  give (docs/retention.md, "Export and import"): ``doctor --fix``, which must remove every interrupted import
  (a directory left by hand is a violation), then the same import again, which must not be refused (it keeps
  what the bundle already put there; with ``as_new_id`` it makes fresh copies, and the killed run's copies are
  deleted by their ids). At the
  end every bundle task is in the target exactly once, whole.

Counts: rounds per kind, kills, tasks deleted and imported, half-deleted and half-imported tasks found (must be 0).

Negative controls (reliability/weaken.py, applied in the child only): ``delete-in-place`` (the file store deletes a
task by removing its files where they are instead of renaming the directory into the trash first),
``import-in-place`` (the file store imports a task by writing task.json first, then its log and artifacts one by
one, into the final directory) and ``import-no-marker`` (the file store imports without marking the directory it
fills, so doctor --fix cannot tell an interrupted import from a damaged task and keeps it).
"""

# ruff: noqa: S311 - seeded PRNGs make the rounds reproducible; nothing here is secret

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore
from atlas_tasks._codec import decode_task, encode_task
from atlas_tasks.backends.file._layout import IMPORT_MARKER
from atlas_tasks.backends.file._workspaces import TASK_REFS, TaskRefs
from atlas_tasks.errors import (
    AtlasTasksError,
    BundleError,
    CollectorBusyError,
    IncompleteTaskError,
    TaskNotFoundError,
)
from atlas_tasks.models import TaskStatus, Transition, utcnow
from atlas_tasks.testing.conformance import sample_task
from reliability import weaken
from reliability.forkserver import ForkServer
from reliability.outcome import Outcome, Scale, Verdict, timed
from reliability.scratch import scratch

WS = "w"
KINDS = ("gc", "import")
ROUNDS = {"fast": 18, "full": 300}
#: A negative control only has to be caught: fewer rounds, and only of the kind it weakens.
CONTROL_ROUNDS = 16
#: A control whose fault shows only when a kill lands between two particular writes gets more rounds.
CONTROL_ROUNDS_BY_VARIANT = {"import-no-marker": 64}
CONTROL_KINDS = {"delete-in-place": ("gc",), "import-in-place": ("import",), "import-no-marker": ("import",)}
OLDER_THAN = timedelta(days=30)
TERMINAL = ("completed", "rejected", "abandoned")
STATUSES = (*TERMINAL, *TERMINAL, "interrupted", "running", "pending")
#: Exit codes of the child: done, another collector held the lock.
DONE, BUSY = 0, 3
#: What is not part of a task's content (a lock file any writer may create).
# Bookkeeping, not content: Go's lock file, and the marker import_task keeps in a directory while it fills it (an
# import killed after its task.json leaves it behind; doctor --fix removes it, which the end-of-round check sees).
NOT_CONTENT = frozenset({"task.json.lock", IMPORT_MARKER})
#: The import target's own task: an id no bundle task can have (those are made now).
OWN_ID = "task-20000101-000000"


# -- child side ------------------------------------------------------------------------------------------------------
def job_retention(job: dict[str, Any]) -> int:
    """Child: one collection or one import, in a process group of its own (the parent kills the whole group)."""
    from atlas_tasks.retention import bundle, gc

    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    weaken.apply(job.get("weaken"))
    store = FileStore(job["home"], lock_timeout=30)
    if job.get("group"):
        store.delete_group = job["group"]  # several groups per collection: kills land between groups too
    if job.get("aim"):
        # gc deletes through delete_many, a group of tasks per _delete_group call (tombstones, renames, removals).
        _announce(store, "_delete_group" if job["what"] == "gc" else "import_task", job)
    code = DONE
    if job["what"] == "gc":
        try:
            gc.collect(store, older_than=OLDER_THAN)
        except CollectorBusyError:
            code = BUSY
    else:
        bundle.import_bundle(store, job["bundle"], as_new_id=bool(job["as_new_id"]))
    # When it finished (CLOCK_MONOTONIC is one clock for every process): the parent learns how long a child runs.
    Path(job["ended"]).write_text(repr(time.monotonic()))
    return code


#: The audit events of filesystem changes (``sys.addaudithook``), and ``open`` for writing: the crash points.
FS_EVENTS = frozenset({"open", "os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.link", "os.truncate"})
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC


def _changes(event: str, args: tuple[Any, ...]) -> bool:
    """Whether an audit event is a filesystem change (an ``open`` only when it may write: reads are no change)."""
    if event not in FS_EVENTS:
        return False
    if event != "open":
        return True
    flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
    mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
    return bool(flags & _WRITING) or any(c in mode for c in "wax+")


def _announce(store: FileStore, method: str, job: dict[str, Any]) -> None:
    """Make the store's ``method`` say on the round's FIFO when its ``aim``-th call starts (so that the parent can
    aim its kill inside that call), and note how long the call took and how many filesystem calls it made. With
    ``crash_at`` the child instead SIGKILLs its own process group just before the ``crash_at``-th filesystem call
    of that call (a crash point). The store itself is not changed."""
    real = getattr(store, method)
    fifo = os.open(job["fifo"], os.O_WRONLY | os.O_NONBLOCK)
    calls, events, inside = [0], [0], [False]

    def audit(event: str, _args: tuple[Any, ...]) -> None:
        if inside[0] and _changes(event, _args):
            events[0] += 1
            if events[0] == job.get("crash_at"):
                # Its own group only (never the fork server's, should setpgid have failed).
                if os.getpgid(0) == os.getpid():
                    os.killpg(os.getpid(), signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(audit)

    def announcing(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] != job["aim"]:
            return real(*args, **kwargs)
        os.write(fifo, b"!")
        began = time.monotonic()
        inside[0] = True
        try:
            result = real(*args, **kwargs)
        finally:
            inside[0] = False
        Path(job["took"]).write_text(json.dumps({"seconds": time.monotonic() - began, "events": events[0]}))
        return result

    setattr(store, method, announcing)


# -- fingerprints ----------------------------------------------------------------------------------------------------
Files = dict[str, bytes]


def raw_files(task_dir: Path) -> Files:
    """Every file of a task directory (relative path -> bytes), lock files aside."""
    out: Files = {}
    for root, _dirs, files in os.walk(task_dir):
        for name in files:
            if name in NOT_CONTENT:
                continue
            path = Path(root, name)
            out[str(path.relative_to(task_dir))] = path.read_bytes()
    return out


def api_view(store: FileStore, task_id: str) -> tuple[bytes, str, Files]:
    """What the store's readers return for a task: its encoded document, its log records, its artifacts."""
    task = store.get(WS, task_id)
    log = json.dumps(list(store.read_log(WS, task_id)), sort_keys=True, default=str)
    artifacts = {name: store.get_artifact(WS, task_id, name) for name in store.list_artifacts(WS, task_id)}
    return encode_task(task), log, artifacts


@dataclass
class Stats:
    kinds: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    finished_before_kill: int = 0
    races: int = 0
    busy: int = 0
    deleted_by_killed: int = 0
    deleted: int = 0
    trash_left: int = 0
    imported_by_killed: int = 0
    imported: int = 0
    incomplete_left: int = 0
    incomplete_removed_by_hand: int = 0
    clash_reimports: int = 0
    half_deleted: int = 0
    half_imported: int = 0
    # Per kind, a running mean of an unkilled child's run: kill moments are drawn within it. It starts long, so the
    # first children finish and teach it their real length.
    child_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.1))
    # The same for the one call an aimed child announces (a delete, an import_task).
    op_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.004))
    # The most filesystem calls an aimed call was seen to make (crash points are drawn among them).
    op_events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 12))
    crash_points: int = 0


class Round:
    """One round's homes, tasks and checks."""

    def __init__(
        self, server: ForkServer, root: Path, n: int, rng: random.Random, variant: str | None, stats: Stats
    ) -> None:
        self.server, self.n, self.rng, self.variant, self.stats = server, n, rng, variant, stats
        self.root = root / f"r{n}"
        self.root.mkdir()
        self.verdict = Verdict()
        # Where an aimed child says "now" (a FIFO: the parent wakes within microseconds).
        self.fifo = self.root / "now"
        os.mkfifo(self.fifo)

    # -- building ----------------------------------------------------------------------------------------------------
    def build(
        self, home: Path, count: int, *, task_id: str = "", task_refs: TaskRefs = "existing"
    ) -> tuple[FileStore, set[str]]:
        """A store of ``count`` random tasks (the first with ``task_id`` when given); the ids gc may delete
        (terminal, finished long ago, unpinned)."""
        store = FileStore(home, lock_timeout=30, task_refs=task_refs)
        store.create_workspace(WS)
        eligible: set[str] = set()
        now = utcnow()
        for _ in range(count):
            status = self.rng.choice(STATUSES)
            old = self.rng.random() < 0.6
            pinned = self.rng.random() < 0.2
            when = now - (timedelta(days=60) if old else timedelta(days=1))
            meta: dict[str, Any] = {"round": self.n}
            if pinned:
                meta["pinned"] = {"at": now.isoformat(), "by": {"user": "r"}, "reason": "campaign"}
            fields: dict[str, Any] = {
                "status": TaskStatus(status),
                "transitions": [Transition(from_status="running", to_status=status, timestamp=when)],
                "metadata": meta,
            }
            if status in TERMINAL:
                fields["completed_at"] = when
            if task_id:
                fields["id"], task_id = task_id, ""
            task = store.create(WS, sample_task(**fields))
            for i in range(self.rng.randint(0, 5)):
                store.append_log(WS, task.id, {"event": f"line {i}", "message": f"round {self.n}\nsecond line {i}"})
            for i in range(self.rng.randint(0, 6)):
                name = self.rng.choice((f"out{i}.txt", f"sub/dir/a{i}.bin", f"report-{i}.json"))
                store.save_artifact(WS, task.id, name, self.rng.randbytes(self.rng.randint(1, 6000)))
            if self.rng.random() < 0.3:  # the Go ATLAS's hook files, which it keeps in the task directory
                d = store.task_path(WS, task.id)
                (d / "hook.json").write_bytes(b'{"task_id":"%s","state":"completed"}' % task.id.encode())
                (d / "HOOK.md").write_bytes(b"# hook\n\ncompleted\n")
            if status in TERMINAL and old and not pinned:
                eligible.add(task.id)
        return store, eligible

    def tasks_dir(self, home: Path) -> Path:
        return home / "workspaces" / WS / "tasks"

    # -- children ----------------------------------------------------------------------------------------------------
    def job(self, what: str, home: Path, **extra: Any) -> dict[str, Any]:
        tag = f"{what}-{self.rng.getrandbits(32)}"
        return {
            "kind": "retention",
            "what": what,
            "home": str(home),
            "weaken": self.variant,
            "ended": str(self.root / f"ended-{tag}"),
            "took": str(self.root / f"took-{tag}"),
            "fifo": str(self.fifo),
            **extra,
        }

    def aim(self, job: dict[str, Any], kind: str, call: int) -> None:
        """Where the kill lands: a quarter of the time anywhere in the child's run, a quarter at a random moment
        inside its ``call``-th delete or import_task, half at a crash point before one of that call's fs calls."""
        how = self.rng.choice((0, 1, 2, 2))
        if how:
            job["aim"] = call
        if how == 2:
            job["crash_at"] = self.rng.randint(1, self.stats.op_events[kind])
            self.stats.crash_points += 1

    def killed(self, jobs: list[dict[str, Any]], victim: int) -> list[dict[str, Any]]:
        """Start ``jobs`` together, SIGKILL the process group of ``jobs[victim]`` at a random moment of its run."""
        target = jobs[victim]
        kind = target["what"]
        # Opened before the children start (an aimed child opens the writing end at once), closed once they are gone.
        fifo = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            started = time.monotonic()
            pids = [self.server.start(job) for job in jobs]
            if target.get("aim") and not target.get("crash_at"):  # inside its aim-th call, once it says it began
                while _alive(pids[victim]) and time.monotonic() < started + 30:
                    if select.select([fifo], [], [], 0.005)[0] and os.read(fifo, 1):
                        # Anywhere in the call, or (as often) early in it, where a delete or import writes first.
                        _spin(self.rng.uniform(0.0, self.rng.choice((1.3, 0.3, 0.1)) * self.stats.op_seconds[kind]))
                        break
            elif not target.get("aim"):
                time.sleep(self.rng.uniform(0.0, 1.1 * self.stats.child_seconds[kind]))
            if not target.get("crash_at"):  # (one with a crash point dies there by its own SIGKILL, or finishes)
                try:
                    os.killpg(pids[victim], signal.SIGKILL)
                except ProcessLookupError:  # not yet its own group leader, or gone: the process alone
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pids[victim], signal.SIGKILL)
            statuses = [self.server.wait(pid) for pid in pids]
        finally:
            os.close(fifo)
        if statuses[victim].get("signal") == signal.SIGKILL:
            self.stats.kills += 1
        else:
            self.stats.finished_before_kill += 1
            with contextlib.suppress(FileNotFoundError):  # (a child that failed wrote nothing)
                if target.get("aim"):
                    took = json.loads(Path(target["took"]).read_text())
                    self.stats.op_seconds[kind] = 0.5 * self.stats.op_seconds[kind] + 0.5 * took["seconds"]
                    self.stats.op_events[kind] = max(self.stats.op_events[kind], int(took["events"]))
                else:
                    took = float(Path(target["ended"]).read_text()) - started
                    self.stats.child_seconds[kind] = 0.5 * self.stats.child_seconds[kind] + 0.5 * took
        for job, status in zip(jobs, statuses, strict=True):
            if status.get("signal") == signal.SIGKILL:
                continue
            if status == {"exit": BUSY} and job["what"] == "gc" and len(jobs) > 1:
                self.stats.busy += 1
            elif status != {"exit": DONE}:
                self.verdict.add("child failed", f"round {self.n} {job['what']}: {status}")
        return statuses

    # -- gc ----------------------------------------------------------------------------------------------------------
    def op_gc(self) -> None:
        home = self.root / "home"
        made_in, checked_in = self.rng.choice(TASK_REFS), self.rng.choice(TASK_REFS)
        _, eligible = self.build(home, self.rng.randint(6, 14), task_refs=made_in)
        store = FileStore(home, lock_timeout=30, task_refs=checked_in)
        tasks = self.tasks_dir(home)
        raw = {t: raw_files(tasks / t) for t in _names(tasks)}
        api = {t: api_view(store, t) for t in raw}
        race = self.rng.random() < 0.25
        jobs = [self.job("gc", home) for _ in range(2 if race else 1)]
        victim = self.rng.randrange(len(jobs))
        group = self.rng.choice((1, 3, 5, 64))
        jobs[victim]["group"] = group
        self.aim(jobs[victim], "gc", self.rng.randint(1, max(1, min(3, -(-len(eligible) // group)))))
        self.stats.races += race
        self.killed(jobs, victim)

        # Before any repair: whole or gone, only eligible ones gone, readers see only whole tasks.
        present = set(_names(tasks))
        for extra in sorted(present - set(raw)):
            self.verdict.add("unknown entry in tasks/ after a killed gc", f"round {self.n} {extra}")
        for task_id, files in raw.items():
            if task_id not in present:
                if task_id not in eligible:
                    self.verdict.add("non-eligible task deleted", f"round {self.n} {task_id}")
                    self.verdict.lost += 1
                else:
                    self.stats.deleted_by_killed += 1
                continue
            now_files = raw_files(tasks / task_id)
            if now_files != files:
                kind = "half-deleted task" if task_id in eligible else "non-eligible task touched"
                self.stats.half_deleted += task_id in eligible
                gone = sorted(set(files) - set(now_files))
                self.verdict.add(kind, f"round {self.n} {task_id}: missing {gone[:4]}, {len(now_files)} files left")
        self.check_readers(store, api)
        with contextlib.suppress(FileNotFoundError):
            self.stats.trash_left += len(_names(home / ".atlas-tasks" / "trash"))

        # Repair, collect again: exactly the eligible set gone, nothing else changed, nothing left behind.
        from atlas_tasks.retention import gc

        try:
            store.check(fix=True)
            report = gc.collect(store, older_than=OLDER_THAN)
        except AtlasTasksError as exc:
            self.verdict.add("repair or second collection raised", f"round {self.n} {exc!r}")
            return
        self.stats.deleted += len(eligible)
        if {i.id for i in report.deleted} - eligible:
            self.verdict.add("second collection deleted a non-eligible task", f"round {self.n}")
        present = set(_names(tasks))
        if present != set(raw) - eligible:
            self.verdict.add(
                "not exactly the eligible set gone after repair",
                f"round {self.n} left {sorted(present & eligible)[:3]}, "
                f"lost {sorted(set(raw) - eligible - present)[:3]}",
            )
        for task_id in present & set(raw):
            if raw_files(tasks / task_id) != raw[task_id]:
                self.verdict.add("kept task changed", f"round {self.n} {task_id}")
        trash = home / ".atlas-tasks" / "trash"
        if trash.exists() and _names(trash):
            self.verdict.add("trash not empty after repair", f"round {self.n} {_names(trash)[:3]}")
        refs = {ref.id for ref in store.get_workspace(WS).tasks}
        expected = present if "all" in (made_in, checked_in) else set()
        if refs != expected:
            self.verdict.add(
                "workspace refs not as the task_refs mode says",
                f"round {self.n} made {made_in}, checked {checked_in}: {sorted(refs ^ expected)[:3]}",
            )
        self.check_doctor_clean(store)

    # -- import ------------------------------------------------------------------------------------------------------
    def op_import(self) -> None:
        from atlas_tasks.retention import bundle

        src, _ = self.build(self.root / "src", self.rng.randint(2, 5))
        ids = sorted(_names(self.tasks_dir(src.home)))
        source = {t: raw_files(self.tasks_dir(src.home) / t) for t in ids}
        path = self.root / self.rng.choice(("b.tar", "b.tar.gz"))
        bundle.export_tasks(src, WS, ids, path)
        target_home = self.root / "dst"
        target, _ = self.build(target_home, 1, task_id=OWN_ID)
        tasks = self.tasks_dir(target_home)
        (own,) = _names(tasks)
        own_files = raw_files(tasks / own)
        as_new_id = self.rng.random() < 0.4
        job = self.job("import", target_home, bundle=str(path), as_new_id=as_new_id)
        self.aim(job, "import", self.rng.randint(1, len(ids)))
        self.killed([job], 0)

        # Before any repair: each bundle task absent, invisible (no task.json), or whole.
        landed = self.check_landed(target, source, own, as_new_id, where="after the kill")
        self.stats.imported_by_killed += len(landed)
        if raw_files(tasks / own) != own_files:
            self.verdict.add("target's own task touched by an import", f"round {self.n} {own}")
        self.check_readers(target, None)

        # Recovery as documented: doctor --fix, then the same import again. doctor removes what a killed import
        # left (its directory is marked); the re-run keeps what the bundle already put here and adds the rest.
        target.check(fix=True)
        for entry in sorted(_names(tasks)):
            if entry != own and not (tasks / entry / "task.json").exists():
                self.stats.incomplete_removed_by_hand += 1
                self.verdict.add("doctor --fix left an interrupted import", f"round {self.n} {entry}")
                shutil.rmtree(tasks / entry)
        try:
            bundle.import_bundle(target, path, as_new_id=as_new_id)
        except BundleError as exc:
            self.stats.clash_reimports += 1
            self.verdict.add("the same import run again was refused", f"round {self.n}: {exc}")
            for task_id in landed.values():
                target.delete(WS, task_id)
            bundle.import_bundle(target, path, as_new_id=as_new_id)
        if as_new_id and landed:  # the re-run gave the bundle's tasks fresh ids again: drop the first copies
            for task_id in landed.values():
                with contextlib.suppress(TaskNotFoundError):
                    target.delete(WS, task_id)
        final = self.check_landed(target, source, own, as_new_id, where="after recovery")
        if set(final) != set(source):
            self.verdict.add("bundle task missing after recovery", f"round {self.n} {sorted(set(source) - set(final))}")
            self.verdict.lost += len(set(source) - set(final))
        self.stats.imported += len(final)
        if raw_files(tasks / own) != own_files:
            self.verdict.add("target's own task touched by an import", f"round {self.n} {own}")
        self.check_doctor_clean(target)

    def check_landed(
        self, target: FileStore, source: dict[str, Files], own: str, as_new_id: bool, *, where: str
    ) -> dict[str, str]:
        """Bundle tasks visible in the target (original id -> id); each must be whole and there only once."""
        tasks = self.tasks_dir(target.home)
        landed: dict[str, str] = {}
        for entry in sorted(_names(tasks)):
            if entry == own:
                continue
            files = raw_files(tasks / entry)
            if "task.json" not in files:
                self.stats.incomplete_left += where == "after the kill"
                continue  # an import cut short: no task to any reader
            try:
                task = decode_task(files["task.json"])
            except ValueError as exc:
                self.stats.half_imported += 1
                self.verdict.add("half-imported task visible", f"round {self.n} {where} {entry}: {exc}")
                continue
            provenance = task.metadata.get("imported_from") or {}
            original = str(provenance.get("original_id", ""))
            if original not in source:
                self.verdict.add("unknown task in the target", f"round {self.n} {where} {entry}")
                continue
            if original in landed:
                self.verdict.add("bundle task imported twice", f"round {self.n} {where} {original}")
            landed[original] = entry
            problem = _differs(source[original], files, original, entry)
            if problem:
                self.stats.half_imported += 1
                self.verdict.add("half-imported task visible", f"round {self.n} {where} {entry}: {problem}")
            if entry != original and not as_new_id:
                self.verdict.add("import changed an id without as_new_id", f"round {self.n} {entry}")
        return landed

    # -- shared checks -----------------------------------------------------------------------------------------------
    def check_readers(self, store: FileStore, api: dict[str, tuple[bytes, str, Files]] | None) -> None:
        """``list`` and ``get`` return only whole tasks (equal to their fingerprint when one is given)."""
        try:
            listing = store.list(WS)
        except AtlasTasksError as exc:
            self.verdict.add("list raised", f"round {self.n} {exc!r}")
            return
        for err in listing.errors:
            if isinstance(err, IncompleteTaskError):
                continue  # a directory without task.json (an import cut short): reported, never shown as a task
            self.verdict.add("list reported a damaged task", f"round {self.n} {err}")
        for task in listing:
            try:
                view = api_view(store, task.id)
            except AtlasTasksError as exc:
                self.verdict.add("a listed task does not read whole", f"round {self.n} {task.id}: {exc!r}")
                continue
            if api is not None and api.get(task.id) != view:
                self.verdict.add("a listed task differs from before", f"round {self.n} {task.id}")

    def check_doctor_clean(self, store: FileStore) -> None:
        try:
            report = store.check()
        except AtlasTasksError as exc:
            self.verdict.add("doctor raised", f"round {self.n} {exc!r}")
            return
        for finding in report.findings:
            self.verdict.add(f"doctor finding after recovery: {finding.kind}", f"round {self.n} {finding.path}")


def _names(folder: Path) -> list[str]:
    """The names in a directory."""
    return [p.name for p in folder.iterdir()]


def _spin(seconds: float) -> None:
    """Wait ``seconds`` precisely (sub-millisecond: a sleep would overshoot the calls being aimed at)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has done all it will do)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _differs(source: Files, landed: Files, original: str, new_id: str) -> str:
    """Why an imported task is not its source (empty if whole): task.json but for provenance and id, log, files."""
    missing = sorted(set(source) - set(landed))
    extra = sorted(set(landed) - set(source))
    if missing or extra:
        return f"missing {missing[:4]} extra {extra[:4]}"
    task = decode_task(landed["task.json"])
    task.metadata.pop("imported_from", None)
    task.id = original
    if encode_task(task) != source["task.json"]:
        return "task.json differs"
    for name, data in source.items():
        if name == "task.json":
            continue
        got = landed[name]
        if name == "task.log" and new_id != original:
            got = got.replace(new_id.encode(), original.encode())
        if got != data:
            return f"{name} differs"
    return ""


def run(scale: Scale = "full", variant: str | None = None, seed: int = 18, rounds: int | None = None) -> Outcome:
    """``rounds`` rounds (default by scale; fewer for a control) of gc and import under kill -9."""
    outcome = Outcome("R", variant or "store", unit="rounds")
    count = rounds or (ROUNDS[scale] if variant is None else CONTROL_ROUNDS_BY_VARIANT.get(variant, CONTROL_ROUNDS))
    kinds = CONTROL_KINDS.get(variant or "", KINDS)
    rng = random.Random(seed)
    stats = Stats()
    with timed(outcome), scratch("r") as root, ForkServer() as server:
        for n in range(count):
            kind = rng.choice(kinds)
            stats.kinds[kind] += 1
            rnd = Round(server, root, n, random.Random(rng.getrandbits(64)), variant, stats)
            try:
                getattr(rnd, f"op_{kind}")()
            except AtlasTasksError as exc:
                rnd.verdict.add("store error", f"round {n} {kind}: {exc!r}")
            outcome.verdict.merge(rnd.verdict)
            outcome.runs += 1
            shutil.rmtree(rnd.root, ignore_errors=True)
    outcome.details |= {
        "seed": seed,
        **{f"mean {kind} child ms": round(1000 * stats.child_seconds[kind]) for kind in kinds},
        **{f"mean aimed {kind} call us": round(1e6 * stats.op_seconds[kind]) for kind in kinds},
        **{f"most fs calls in one {kind} call": stats.op_events[kind] for kind in kinds},
        **{f"{kind} rounds": stats.kinds[kind] for kind in kinds},
        "kills": stats.kills,
        "aimed at a crash point": stats.crash_points,
        "children done before the kill": stats.finished_before_kill,
        "racing collectors": stats.races,
        "collectors refused (busy)": stats.busy,
        "tasks deleted by killed collectors": stats.deleted_by_killed,
        "tasks deleted in all": stats.deleted,
        "parked in trash after a kill": stats.trash_left,
        "tasks landed by killed imports": stats.imported_by_killed,
        "tasks imported in all": stats.imported,
        "incomplete import dirs after a kill": stats.incomplete_left,
        "left by doctor --fix (violations)": stats.incomplete_removed_by_hand,
        "re-imports refused (violations)": stats.clash_reimports,
        "half-deleted found": stats.half_deleted,
        "half-imported found": stats.half_imported,
    }
    return outcome


CONTROLS = ("delete-in-place", "import-in-place", "import-no-marker")
