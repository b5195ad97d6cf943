"""L, lifecycle under kill -9: run, retry from a step, fork and cancel, with real runners killed by SIGKILL.

Each round takes a fresh home on the file store (a workspace with a real worktree directory) and one operation,
chosen by a seeded PRNG:

* **run**: a runner child runs a task of :data:`STEPS` steps and is SIGKILLed (once or twice) at a random moment
  of its run or a moment into a chosen step's command; ``recover`` records the crash and a fresh runner completes
  the task.
* **retry**: a task fails at step f (a flag file), the flag goes, and a child calls ``retry_from`` at a step j <= f
  and runs; it is SIGKILLed at a random moment; after ``recover`` a fresh child retries again if the reset never
  happened (its reason is unique to the round) and runs the task to the end.
* **fork**: a finished or failed task is forked at step j by a child that then runs the fork; the child is SIGKILLed
  at a random moment (half of them inside the build's milliseconds) or dies (``os._exit``) at one of
  ``rewind.CRASH_POINTS``; now and then a second forker of the same source races it. After
  ``recover`` every fork left is run to the end (or the task is forked again when none is), and so is the source.
* **cancel**: a runner child runs a task with one long step while a canceller child calls ``cancel``; the runner,
  the canceller, both or neither are SIGKILLed at random moments; after ``recover`` a fresh runner completes it.

Every step's command is a small Python script (:data:`STEP_SCRIPT`) that appends ``start`` and ``end`` lines to a
journal (one O_APPEND write each) and, at its start, reads its task's stored task.json: a success result for its
own step that no retry has reset since means the step runs again after its success was durably checkpointed
(``DUPLICATE``); an earlier step not recorded done means the runner started it before its predecessor's success
was durable (``EARLY``). After each kill the parent waits for the killed runner's step commands to be gone (their
supervisors kill them), reads the store, checks that every step the runner had moved past is recorded done, then
recovers and runs the doctor. At the end of a round every task (and every fork) must be completed with every step
done, each done step's last journal start must have its end, and every fork must be whole (the source's artifacts,
byte for byte, and its ``forked from`` log line) and not marked incomplete; every audit trail must be one chain of
moves Go allows, no run lease may be left held, and the doctor must find nothing.

Found with it: a lease probe took the lease's flock, so a concurrent probe (or a runner taking the lease) saw a
runner where there was none, and a racing forker was refused with ``TaskRunningError`` ("pid ? on ?"); probes now
take a shared lock and lease takers wait them out (tests/fs/test_lease_probes.py). And a race of the campaign's
own: a SIGKILL that lands after the run has written its task completed (between the last checkpoint and the exit)
is a kill like any other, so the next kill round started a run of a completed task and the store rightly refused it
(``NotRunnableError``, reported as a failed operation, 1 round in 300). A round now checks the task before each
further run it plans.

The children poll for a cancel every :data:`QUICK_POLL` seconds instead of every second (only how soon a cancel is
seen changes, not what a run does), so that a round takes tenths of a second.

Negative controls (reliability/weaken.py, applied in every child): ``no-step-checkpoint`` (a run writes the task
only when it starts and ends), ``resume-from-start`` (a resumed run starts again at the first step) and
``fork-no-marker`` (forks are created without their incomplete marker, so recover keeps a half-built one).
"""

# ruff: noqa: S311 - seeded PRNGs make the rounds reproducible; nothing here is secret
# ruff: noqa: BLE001 - a child reports any failure to the parent, which counts it

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import sys
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore, Task
from atlas_tasks.errors import AtlasTasksError, CannotCancelError, StepFailedError
from atlas_tasks.models import Step
from reliability import weaken
from reliability.forkserver import ForkServer
from reliability.invariants import check_doctor, check_readers
from reliability.outcome import Outcome, Scale, Verdict, timed
from reliability.scratch import scratch
from reliability.view import leftovers

WS = "w"
STEPS = 4
OPS = ("run", "retry", "fork", "cancel")
#: Rounds per scale; a negative control only has to be caught, so it runs fewer.
ROUNDS = {"fast": 20, "full": 300}
CONTROL_ROUNDS = 8
#: The operations whose weakness a control concerns (others: all of them).
CONTROL_OPS = {"fork-no-marker": ("fork",), "no-step-checkpoint": ("run", "retry", "cancel")}
QUICK_POLL = 0.05
#: Seconds a killed runner's step commands may outlive it (their supervisor kills them at once; this is a bound).
ORPHAN_BOUND = 10.0
FORK_CRASH_ENV = "ATLAS_TASKS_FORK_CRASH"  # rewind's test-only crash injection (see rewind.CRASH_POINTS)

STEP_SCRIPT = r"""
import json, os, sys, time
from datetime import datetime

journal, flags, index, sleep_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
task_id = os.environ["ATLAS_TASK_ID"]
fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def note(event):
    line = f"{os.environ.get('L_RUNNER', '?')} {task_id} {index} {event} {os.getpid()}\n"
    os.write(fd, line.encode())


def when(text):
    head, dot, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + (dot + frac[:6] if dot else ""))


note("start")
path = os.path.join(os.environ["ATLAS_HOME"], "workspaces", os.environ["ATLAS_WORKSPACE"], "tasks", task_id)
with open(os.path.join(path, "task.json"), "rb") as f:
    task = json.load(f)
meta = task.get("metadata") or {}
reset = meta.get("retried_from") or {}
reset_at = when(reset["at"]) if reset.get("at") and int(reset.get("step_index", 1 << 30)) <= index else None
for result in task.get("step_results") or []:
    if result.get("step_index") == index and result.get("status") == "success":
        if reset_at is None or when(result["completed_at"]) > reset_at:
            note("DUPLICATE")
            break
if any(s.get("status") not in ("success", "skipped") for s in task["steps"][:index]):
    note("EARLY")
time.sleep(sleep_ms / 1000)
if os.path.exists(os.path.join(flags, f"fail-{task_id}-{index}")):
    note("fail")
    sys.exit(1)
note("end")
"""

DONE = ("success", "skipped")


# -- child side ------------------------------------------------------------------------------------------------------
def _run_to_end(store: FileStore, ws: str, task_id: str) -> None:
    from atlas_tasks import executors

    with store.run(ws, task_id) as live:
        executors.run_task(live)


def job_lifecycle(job: dict[str, Any]) -> int:
    """Child: the round's actions in order (retry, fork, cancel, run) on one task; exit 2 for an expected step
    failure or cancel refusal, 1 (with the error in the round's error file) for anything else."""
    from atlas_tasks import executors, runs
    from atlas_tasks.lifecycle import cancel, rewind

    weaken.apply(job.get("weaken"))
    runs.POLL_EVERY = executors.TICK_EVERY = QUICK_POLL
    os.environ["L_RUNNER"] = job["runner"]
    if job.get("fork_crash"):
        os.environ[FORK_CRASH_ENV] = job["fork_crash"]
    store = FileStore(job["home"], lock_timeout=30)
    task_id: str = job["task"]
    try:
        for action in job["actions"]:
            what = action[0]
            if what == "retry":
                rewind.retry_from(store, WS, task_id, action[1] + 1, reason=action[2])
            elif what == "fork":
                task_id = rewind.fork(store, WS, task_id, action[1] + 1, reason=action[2]).id
            elif what == "cancel":
                cancel.cancel(store, WS, task_id, reason=action[1], grace=action[2])
            else:
                _run_to_end(store, WS, task_id)
    except (StepFailedError, CannotCancelError) as exc:
        if job.get("expect") == type(exc).__name__:
            return 2
        _report(job, exc)
        return 1
    except BaseException as exc:
        _report(job, exc)
        return 1
    return 0


def _report(job: dict[str, Any], exc: BaseException) -> None:
    text = f"{job['runner']} {job['actions']}: {exc!r}\n{traceback.format_exc()}"
    fd = os.open(job["errors"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps({"runner": job["runner"], "error": text}) + "\n").encode())
    finally:
        os.close(fd)


# -- parent side -----------------------------------------------------------------------------------------------------
@dataclass
class Event:
    """One journal line: which runner's command wrote it, for which task and step, and what."""

    runner: str
    task: str
    index: int
    what: str
    pid: int


@dataclass
class Stats:
    ops: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    canceller_kills: int = 0
    crash_exits: int = 0
    resets_before_kill: int = 0
    forks_discarded: int = 0
    forks_unlisted: int = 0
    steps_started: int = 0
    concurrent_forks: int = 0
    cancels_obeyed: int = 0
    cancels_refused: int = 0
    run_seconds: float = 0.4  # a running mean of an unkilled run's length: kill moments are drawn within it


class Round:
    """One round's home, journal and checks."""

    def __init__(
        self, server: ForkServer, root: Path, n: int, rng: random.Random, variant: str | None, stats: Stats
    ) -> None:
        self.server, self.n, self.rng, self.variant, self.stats = server, n, rng, variant, stats
        self.root = root / f"r{n}"
        self.home = self.root / "home"
        self.worktree = self.root / "worktree"
        self.flags = self.root / "flags"
        for d in (self.worktree, self.flags):
            d.mkdir(parents=True)
        self.journal = self.root / "journal"
        self.errors = self.root / "errors"
        self.script = root / "step.py"
        self.store = FileStore(self.home, lock_timeout=30)
        self.store.create_workspace(WS, worktree_path=str(self.worktree))
        self.verdict = Verdict()
        self.runners = 0
        # (journal offset, task, step) the store showed done after a kill; a later start needs a reset in between.
        self.seen_done: list[tuple[int, str, int]] = []
        # (journal offset, task, first step) of each retry reset that happened.
        self.resets: list[tuple[int, str, int]] = []

    # -- tasks and children ------------------------------------------------------------------------------------------
    def new_task(self, long_step: int | None = None) -> str:
        steps = []
        for i in range(STEPS):
            ms = self.rng.randint(300, 600) if i == long_step else self.rng.randint(0, 30)
            argv = [sys.executable, "-I", "-S", str(self.script), str(self.journal), str(self.flags), str(i), str(ms)]
            steps.append(Step(name=f"s{i}", type="validation", commands=[shlex.join(argv)]))
        return self.store.create(WS, Task(description=f"round {self.n}", steps=steps)).id

    def job(self, task_id: str, actions: list[list[Any]], **extra: Any) -> dict[str, Any]:
        self.runners += 1
        return {
            "kind": "lifecycle",
            "home": str(self.home),
            "task": task_id,
            "actions": actions,
            "runner": f"r{self.runners}",
            "errors": str(self.errors),
            "weaken": self.variant,
            **extra,
        }

    def offset(self) -> int:
        return len(self.events())

    def events(self) -> list[Event]:
        try:
            lines = self.journal.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            runner, task, index, what, pid = line.split()
            out.append(Event(runner, task, int(index), what, int(pid)))
        return out

    def finish(self, job: dict[str, Any], status: dict[str, Any], expect: int = 0) -> None:
        """A child that was not killed must have done its actions (``expect``: its exit code)."""
        if status != {"exit": expect}:
            said = [
                json.loads(line)["error"]
                for line in (self.errors.read_text().splitlines() if self.errors.exists() else [])
                if json.loads(line)["runner"] == job["runner"]
            ]
            self.verdict.add("operation failed", f"round {self.n} {job['actions']}: {status} {said[:1]}")

    def complete(self, task_id: str, actions: list[list[Any]] | None = None) -> None:
        """Run ``actions`` (default: run) in a child that is not killed; it must succeed."""
        if actions in (None, [["run"]]) and self.completed(task_id):
            return  # the killed child completed the task before its kill landed
        job = self.job(task_id, actions or [["run"]])
        started = time.monotonic()
        self.finish(job, self.server.run(job))
        if actions is None:
            self.stats.run_seconds = 0.8 * self.stats.run_seconds + 0.2 * (time.monotonic() - started)

    def killed_run(
        self,
        task_id: str,
        actions: list[list[Any]],
        delay: float,
        *,
        fork_crash: str = "",
        companion: dict[str, Any] | None = None,
        at_step: int | None = None,
    ) -> bool:
        """Run ``actions`` in a child, SIGKILL it after ``delay`` seconds; then check and recover. True if killed
        (or crashed at its fork crash point). With ``at_step`` the delay counts from the moment the child's
        command of that step (or a later one) started, so the runner has moved past the steps before. A
        ``companion`` job runs alongside, is not killed, and must succeed; it is waited for before the checks
        (recover is not raced against a live builder here)."""
        job = self.job(task_id, actions, fork_crash=fork_crash)
        pid = self.server.start(job)
        other = self.server.start(companion) if companion is not None else None
        if not fork_crash:  # a child with a crash point dies there by itself
            if at_step is not None:
                self.wait_for_start(job["runner"], at_step, pid)
            time.sleep(delay)
            self.server.kill(pid)
        status = self.server.wait(pid)
        if other is not None and companion is not None:
            self.finish(companion, self.server.wait(other))
        if status.get("signal") == 9:
            self.stats.kills += 1
        elif fork_crash and status == {"exit": 137}:
            self.stats.crash_exits += 1
        else:
            self.finish(job, status)  # it finished before the kill
            return False
        self.after_kill(job["runner"])
        return True

    def wait_for_start(self, runner: str, index: int, pid: int) -> None:
        """Until ``runner``'s command of step ``index`` or later has started (or the child is gone)."""
        deadline = time.monotonic() + ORPHAN_BOUND
        while time.monotonic() < deadline and _alive(pid):
            if any(e.runner == runner and e.what == "start" and e.index >= index for e in self.events()):
                return
            time.sleep(0.002)

    # -- checks ------------------------------------------------------------------------------------------------------
    def after_kill(self, runner: str) -> None:
        """Wait for the dead runner's step commands to be gone, check what the store holds, recover, run the doctor."""
        from atlas_tasks import runs

        self.wait_orphans(runner)
        events = self.events()
        ours = [e for e in events if e.runner == runner]
        for task in self.store.list(WS):
            done = {i for i, s in enumerate(task.steps) if str(s.status) in DONE}
            self.seen_done += [(len(events), task.id, i) for i in done]
            # A step whose command ended before the runner started a later step of the task was checkpointed done
            # before that start (the runner's step-by-step guarantee): it must be done now.
            moved_past = {
                e.index
                for k, e in enumerate(ours)
                if e.task == task.id
                and e.what == "end"
                and any(
                    later.task == task.id and later.index > e.index and later.what == "start" for later in ours[k + 1 :]
                )
            }
            for i in sorted(moved_past - done):
                self.verdict.add(
                    "a step the runner moved past was lost by the kill",
                    f"round {self.n} {task.id} step {i}: ended, a later step started, stored {task.steps[i].status}",
                )
                self.verdict.lost += 1
        runs.recover(self.store, WS)
        check_readers(self.store, self.verdict)
        check_doctor(self.store, self.home, leftovers(self.home), self.verdict)

    def wait_orphans(self, runner: str) -> None:
        ended: set[tuple[str, int, int]] = set()
        started: list[Event] = []
        for e in self.events():
            if e.runner != runner:
                continue
            if e.what == "start":
                started.append(e)
            elif e.what in ("end", "fail"):
                ended.add((e.task, e.index, e.pid))
        for e in started:
            if (e.task, e.index, e.pid) in ended:
                continue
            deadline = time.monotonic() + ORPHAN_BOUND
            while _alive(e.pid):
                if time.monotonic() > deadline:
                    self.verdict.add("a step's command outlived its killed runner", f"round {self.n} pid {e.pid}")
                    break
                time.sleep(0.002)

    def check_end(self, forks_of: dict[str, tuple[str, int, dict[str, bytes]]]) -> None:
        """Every task done, every done step's last start ended, no duplicate or early start, forks whole."""
        events = self.events()
        self.stats.steps_started += sum(e.what == "start" for e in events)
        for e in events:
            if e.what == "DUPLICATE":
                self.verdict.add("step ran again after its success was checkpointed", f"round {self.n} {e}")
            elif e.what == "EARLY":
                self.verdict.add("step started before its predecessor's success was durable", f"round {self.n} {e}")
        self.check_seen_done(events)
        by_key: dict[tuple[str, int], list[tuple[int, str]]] = defaultdict(list)
        for k, e in enumerate(events):
            by_key[(e.task, e.index)].append((k, e.what))
        listing = self.store.list(WS)
        for err in listing.errors:
            self.verdict.add("task unreadable", f"round {self.n} {err}")
        for task in listing:
            if str(task.status) != "completed" or any(str(s.status) != "success" for s in task.steps):
                self.verdict.add(
                    "task not completed after the round",
                    f"round {self.n} {task.id}: {task.status} {[str(s.status) for s in task.steps]}",
                )
                self.verdict.lost += sum(str(s.status) != "success" for s in task.steps)
            self.check_trail(task)
            if self.store.lease_holder(WS, task.id) is not None:
                self.verdict.add("run lease held after the round", f"round {self.n} {task.id}")
            source, at = task.id, 0
            if task.id in forks_of:
                source, at, _ = forks_of[task.id]
            for i, s in enumerate(task.steps):
                if str(s.status) != "success":
                    continue
                key = (source, i) if i < at else (task.id, i)
                seq = [what for _, what in by_key[key]]
                last = max((k for k, what in enumerate(seq) if what == "start"), default=None)
                if last is None or "end" not in seq[last:]:
                    self.verdict.add("step recorded done without its command ending", f"round {self.n} {key}")
        for fork_id, (source, _at, artifacts) in forks_of.items():
            self.check_fork(fork_id, source, artifacts)
        check_readers(self.store, self.verdict)
        check_doctor(self.store, self.home, leftovers(self.home), self.verdict)

    def check_trail(self, task: Task) -> None:
        """The audit trail is one unbroken chain of moves Go allows, ending at the task's status."""
        from atlas_tasks.transitions import can_transition

        status = "pending"
        for t in task.transitions:
            if str(t.from_status) != status or not can_transition(t.from_status, t.to_status):
                self.verdict.add(
                    "audit trail broken or not a Go move",
                    f"round {self.n} {task.id}: {status} then {t.from_status} -> {t.to_status} ({t.reason})",
                )
            status = str(t.to_status)
        if status != str(task.status):
            self.verdict.add("audit trail broken or not a Go move", f"round {self.n} {task.id}: ends at {status}")

    def check_seen_done(self, events: list[Event]) -> None:
        """A step the store showed done after a kill starts again only after a retry reset it."""
        for offset, task_id, index in self.seen_done:
            for k in range(offset, len(events)):
                e = events[k]
                if e.task != task_id or e.index != index or e.what != "start":
                    continue
                if not any(offset <= at <= k and t == task_id and first <= index for at, t, first in self.resets):
                    self.verdict.add("step shown done after a kill ran again", f"round {self.n} {task_id} step {index}")
                break

    def check_fork(self, fork_id: str, source: str, artifacts: dict[str, bytes]) -> None:
        from atlas_tasks.lifecycle import rewind

        task = self.store.get(WS, fork_id)
        if rewind.is_incomplete_fork(task):
            self.verdict.add("fork left incomplete after recover", f"round {self.n} {fork_id}")
        have = set(self.store.list_artifacts(WS, fork_id))
        missing = [
            n for n, data in artifacts.items() if n not in have or self.store.get_artifact(WS, fork_id, n) != data
        ]
        if missing:
            self.verdict.add("fork kept without its source's artifacts", f"round {self.n} {fork_id}: {missing}")
            self.verdict.lost += len(missing)
        log = self.store.read_log(WS, fork_id)
        if not log or "forked from" not in str(log[0].get("event", "")):
            self.verdict.add("fork kept without its lineage log line", f"round {self.n} {fork_id}")
        listed = {f.get("task_id") for f in self.store.get(WS, source).metadata.get(rewind.FORKS) or []}
        if fork_id not in listed:
            self.stats.forks_unlisted += 1  # a crash between the fork's last write and the source's: allowed

    # -- operations --------------------------------------------------------------------------------------------------
    def kill_moment(self) -> dict[str, Any]:
        """When to kill a runner: at a random moment of its run, or a moment into a chosen step's command."""
        if self.rng.random() < 0.5:
            return {"delay": self.delay()}
        return {"delay": self.rng.uniform(0.0, 0.03), "at_step": self.rng.randint(1, STEPS - 1)}

    def delay(self) -> float:
        return self.rng.uniform(0.0, 1.1 * self.stats.run_seconds)

    def op_run(self) -> dict[str, tuple[str, int, dict[str, bytes]]]:
        task_id = self.new_task()
        for _ in range(self.rng.choice((1, 1, 2))):
            if self.completed(task_id):
                break  # the last kill landed after the run had completed the task: nothing is left to run
            if not self.killed_run(task_id, [["run"]], **self.kill_moment()):
                break  # it finished before the kill
        self.complete(task_id)
        return {}

    def completed(self, task_id: str) -> bool:
        return str(self.store.get(WS, task_id).status) == "completed"

    def op_retry(self) -> dict[str, tuple[str, int, dict[str, bytes]]]:
        task_id = self.new_task()
        failing = self.rng.randint(1, STEPS - 1)
        flag = self.flags / f"fail-{task_id}-{failing}"
        flag.touch()
        job = self.job(task_id, [["run"]], expect="StepFailedError")
        self.finish(job, self.server.run(job), expect=2)
        flag.unlink()
        start = self.rng.randint(0, failing)
        token = f"round {self.n}: retry from step {start}"

        def actions() -> list[list[Any]]:
            return ([] if self.reset_done(task_id, token) else [["retry", start, token]]) + [["run"]]

        for _ in range(self.rng.choice((1, 1, 2))):
            if self.completed(task_id):
                break  # the last kill landed after the run had completed the task: nothing is left to run
            offset, planned = self.offset(), actions()
            killed = self.killed_run(task_id, planned, **self.kill_moment())
            if len(planned) == 2 and self.reset_done(task_id, token):
                self.resets.append((offset, task_id, start))
                self.stats.resets_before_kill += killed
            if not killed:
                return {}  # it finished before the kill
        offset, planned = self.offset(), actions()
        if len(planned) == 2:
            self.resets.append((offset, task_id, start))
        self.complete(task_id, planned)
        return {}

    def reset_done(self, task_id: str, token: str) -> bool:
        from atlas_tasks.lifecycle import rewind

        info = self.store.get(WS, task_id).metadata.get(rewind.RETRIED_FROM) or {}
        return bool(info.get("reason") == token)

    def op_fork(self) -> dict[str, tuple[str, int, dict[str, bytes]]]:
        from atlas_tasks.lifecycle import rewind

        source = self.new_task()
        failing = self.rng.choice((None, *range(1, STEPS)))
        if failing is not None:
            (self.flags / f"fail-{source}-{failing}").touch()
        job = self.job(source, [["run"]], expect="StepFailedError")
        self.finish(job, self.server.run(job), expect=0 if failing is None else 2)
        at = self.rng.randint(0, STEPS - 1 if failing is None else failing)
        artifacts = {n: self.store.get_artifact(WS, source, n) for n in self.store.list_artifacts(WS, source)}
        token = f"round {self.n}: fork from step {at}"
        crash = self.rng.choice(rewind.CRASH_POINTS) if self.rng.random() < 0.4 else ""
        # The build takes milliseconds: half the kills aim at it, half anywhere in the fork's run.
        delay = 0.0 if crash else self.rng.choice((self.rng.uniform(0, 0.03), self.delay()))
        # Now and then a second forker of the same source at the same time, not killed: both forks must be whole.
        companion = None
        if self.rng.random() < 0.3:
            companion = self.job(source, [["fork", at, f"{token} (concurrent)"], ["run"]])
            self.stats.concurrent_forks += 1
        self.killed_run(source, [["fork", at, token], ["run"]], delay, fork_crash=crash, companion=companion)
        forks = self.forks_of(source)
        if not forks:
            self.stats.forks_discarded += 1
            self.complete(source, [["fork", at, token], ["run"]])
            forks = self.forks_of(source)
        for fork_id in forks:
            if str(self.store.get(WS, fork_id).status) != "completed":
                self.complete(fork_id)
        if failing is not None:  # the source, too, is completed (a fork leaves it runnable)
            (self.flags / f"fail-{source}-{failing}").unlink()
            self.complete(source)
        return dict.fromkeys(forks, (source, at, artifacts))

    def forks_of(self, source: str) -> list[str]:
        from atlas_tasks.lifecycle import rewind

        return [
            t.id
            for t in self.store.list(WS)
            if isinstance(t.metadata.get(rewind.FORKED_FROM), dict)
            and t.metadata[rewind.FORKED_FROM].get("task_id") == source
        ]

    def op_cancel(self) -> dict[str, tuple[str, int, dict[str, bytes]]]:
        task_id = self.new_task(long_step=self.rng.randint(0, STEPS - 1))
        runner = self.job(task_id, [["run"]])
        grace = self.rng.choice((0.0, 0.2))
        canceller = self.job(task_id, [["cancel", f"round {self.n}", grace]], expect="CannotCancelError")
        run_pid = self.server.start(runner)
        # Mostly while it runs; now and then before it has started or after it finished (the cancel is refused).
        time.sleep(
            self.rng.choice((0.0, self.rng.uniform(0.0, self.stats.run_seconds + 0.8), self.delay(), self.delay()))
        )
        cancel_pid = self.server.start(canceller)
        victims = self.rng.choice(((), (), ("runner",), ("canceller",), ("runner", "canceller")))
        if "canceller" in victims:  # a cancel takes milliseconds: aim inside them
            time.sleep(self.rng.uniform(0.0, 0.01))
            self.server.kill(cancel_pid)
        if "runner" in victims:
            time.sleep(self.rng.uniform(0.0, 0.3))
            self.server.kill(run_pid)
        status = self.server.wait(cancel_pid)
        if status.get("signal") == 9:
            self.stats.canceller_kills += 1
        elif status == {"exit": 2}:
            self.stats.cancels_refused += 1  # pending (the runner had not started) or finished already
        else:
            self.finish(canceller, status)
        status = self.server.wait(run_pid)
        if status.get("signal") == 9:
            self.stats.kills += 1
            self.after_kill(runner["runner"])
        else:
            self.finish(runner, status)
        task = self.store.get(WS, task_id)
        self.stats.cancels_obeyed += any("cancelled by" in t.reason for t in task.transitions)
        self.complete(task_id)
        return {}


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has done all it will do)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def run(scale: Scale = "full", variant: str | None = None, seed: int = 17, rounds: int | None = None) -> Outcome:
    """``rounds`` rounds (default by scale; fewer for a control) of random lifecycle operations under kill -9."""
    outcome = Outcome("L", variant or "store", unit="rounds")
    count = rounds or (ROUNDS[scale] if variant is None else CONTROL_ROUNDS)
    ops = CONTROL_OPS.get(variant or "", OPS)
    rng = random.Random(seed)
    stats = Stats()
    with timed(outcome), scratch("l") as root, ForkServer() as server:
        (root / "step.py").write_text(STEP_SCRIPT)
        for n in range(count):
            op = rng.choice(ops)
            stats.ops[op] += 1
            rnd = Round(server, root, n, random.Random(rng.getrandbits(64)), variant, stats)
            try:
                forks = getattr(rnd, f"op_{op}")()
                rnd.check_end(forks)
            except AtlasTasksError as exc:
                rnd.verdict.add("store error", f"round {n} {op}: {exc!r}")
            outcome.verdict.merge(rnd.verdict)
            outcome.runs += 1
            shutil.rmtree(rnd.root, ignore_errors=True)
    outcome.details |= {
        "seed": seed,
        **{f"{op} rounds": stats.ops[op] for op in ops},
        "step commands run": stats.steps_started,
        "runner kills": stats.kills,
        "canceller kills": stats.canceller_kills,
        "cancels that stopped a run": stats.cancels_obeyed,
        "cancels refused (not started or finished)": stats.cancels_refused,
        "concurrent forks": stats.concurrent_forks,
        "fork crash points": stats.crash_exits,
        "retry resets before a kill": stats.resets_before_kill,
        "forks discarded by recover": stats.forks_discarded,
        "forks unlisted by their source": stats.forks_unlisted,
    }
    return outcome


CONTROLS = ("no-step-checkpoint", "resume-from-start", "fork-no-marker")
