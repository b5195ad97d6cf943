"""T2, V1 and I1: many real processes (and threads) on the same tasks at once, some of them SIGKILLed.

Every worker records what the store acknowledged to it in an ack file (one ``write`` per line, so a kill cannot
tear it), and the parent compares the final store with those acknowledgements:

* T2 — 8 processes x 2 threads do locked read-modify-writes (each bumps its own counter and a shared one while it
  records the interval it held the lock), appends, versioned saves, creations and reads of the same tasks; two
  are SIGKILLed mid-run. 0 lost updates, 0 overlapping lock intervals, 0 duplicate ids or versions, 0 overwritten
  or partial artifacts, 0 torn or duplicate log lines, 0 partial reads, 0 stale locks.
* V1 — processes race to save versions of the same artifacts: every acknowledged name unique, every content intact.
* I1 — thousands of creations within one (frozen) second across processes: 0 collisions.
"""

# ruff: noqa: S311 - seeded PRNGs make the storms reproducible; nothing here is secret

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore
from atlas_tasks.backends import file as file_backend
from atlas_tasks.backends.file._layout import Layout
from atlas_tasks.errors import AtlasTasksError, IncompleteTaskError, LockTimeoutError
from reliability import weaken
from reliability.forkserver import ForkServer
from reliability.outcome import Outcome, Scale, Verdict, timed
from reliability.scratch import scratch
from reliability.workload import WS, task

FROZEN = datetime(2030, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)


# -- child side ------------------------------------------------------------------------------------------------------
class Acks:
    """Append-only ack file: one ``os.write`` of one line per acknowledgement (O_APPEND: never interleaved)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def __call__(self, **record: Any) -> None:
        os.write(self.fd, (json.dumps(record) + "\n").encode())


def _start(job: dict[str, Any]) -> tuple[FileStore, Acks]:
    """Weaken if asked, announce readiness, then wait for the parent's go so that all workers start together."""
    weaken.apply(job.get("weaken"))
    acks = Acks(job["ack"])
    acks(op="ready")
    go = Path(job["go"])
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    return FileStore(job["home"], lock_timeout=60, id_style=job.get("id_style", "auto")), acks


def _payload(who: str, seq: int, rng: random.Random) -> bytes:
    """Self-verifying artifact content: a reader can tell a whole payload from a partial or mixed one."""
    body = f"{who}|{seq}|".encode() + rng.randbytes(rng.randint(16, 12000)).hex().encode()
    return body + b"|" + hashlib.sha256(body).hexdigest().encode()


def intact(payload: bytes) -> bool:
    body, _, digest = payload.rpartition(b"|")
    return hashlib.sha256(body).hexdigest().encode() == digest


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


class _Worker:
    """One thread of a storm worker."""

    def __init__(self, store: FileStore, acks: Acks, job: dict[str, Any], thread: int) -> None:
        self.store, self.acks, self.job = store, acks, job
        self.who = f"p{job['n']}t{thread}"
        self.rng = random.Random(job["seed"] * 1000 + job["n"] * 10 + thread)
        self.seq = 0

    def run(self) -> None:
        actions: list[tuple[float, Callable[[str], None]]] = [
            (0.3, self.modify),
            (0.25, self.append),
            (0.2, self.version),
            (0.1, self.create),
            (0.15, self.read),
        ]
        for _ in range(self.job["ops"]):
            self.seq += 1
            target = self.rng.choice(self.job["tasks"])
            pick = self.rng.random()
            action = actions[-1][1]
            for weight, candidate in actions:
                pick -= weight
                if pick < 0:
                    action = candidate
                    break
            try:
                action(target)
            except AtlasTasksError as exc:  # under contention every operation must still succeed
                self.acks(op="violation", kind="operation failed under contention", detail=repr(exc))

    def modify(self, target: str) -> None:
        held: dict[str, Any] = {}

        def bump(t: Any) -> None:
            held["start"] = time.monotonic_ns()
            held["v"] = t.metadata.get(self.who, 0) + 1
            t.metadata[self.who] = held["v"]
            t.metadata["count"] = t.metadata.get("count", 0) + 1
            time.sleep(self.rng.random() * 0.002)  # widen the window a lost update needs; we hold the lock here
            held["end"] = time.monotonic_ns()

        self.store.modify(WS, target, bump)
        self.acks(op="modify", task=target, who=self.who, v=held["v"], iv=[held["start"], held["end"]])

    def append(self, target: str) -> None:
        pad = "x" * self.rng.randint(0, 3000)
        self.store.append_log(WS, target, {"who": self.who, "seq": self.seq, "pad": pad})
        self.acks(op="append", task=target, who=self.who, seq=self.seq)

    def version(self, target: str) -> None:
        data = _payload(self.who, self.seq, self.rng)
        name = self.store.save_versioned_artifact(WS, target, "out.json", data)
        self.acks(op="version", task=target, name=name, sha=_sha(data))

    def create(self, target: str) -> None:
        made = self.store.create(WS, task(description="storm", metadata={"creator": self.who, "seq": self.seq}))
        self.acks(op="create", id=made.id, who=self.who, seq=self.seq)

    def read(self, target: str) -> None:
        try:
            self.store.get(WS, target)
            log = self.store.read_log(WS, target)
            if log.errors or log.torn_tail:
                self.acks(op="violation", kind="reader saw a torn log line", detail=f"{target} {log.errors}")
            listed = self.store.list(WS)
            for err in listed.errors:
                if not isinstance(err, IncompleteTaskError):
                    self.acks(op="violation", kind="reader saw a partial task", detail=str(err))
            names = self.store.list_artifacts(WS, target)
            if names and not intact(self.store.get_artifact(WS, target, self.rng.choice(names))):
                self.acks(op="violation", kind="reader saw a partial artifact", detail=target)
        except AtlasTasksError as exc:
            self.acks(op="violation", kind="reader saw a partial task", detail=repr(exc))


def job_storm(job: dict[str, Any]) -> int:
    """Child: ``job["threads"]`` threads of mixed writes and reads on the shared tasks."""
    store, acks = _start(job)
    threads = [threading.Thread(target=_Worker(store, acks, job, t).run) for t in range(job["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


def job_versions(job: dict[str, Any]) -> int:
    """Child: save ``job["ops"]`` versions, alternating between two artifact names of one task."""
    store, acks = _start(job)
    rng = random.Random(job["seed"] * 100 + job["n"])
    for seq in range(job["ops"]):
        base = "validation.json" if seq % 2 else "reports/summary.md"
        data = _payload(f"p{job['n']}", seq, rng)
        name = store.save_versioned_artifact(WS, "task-v", base, data)
        acks(op="version", task="task-v", name=name, sha=_sha(data))
    return 0


def job_creator(job: dict[str, Any]) -> int:
    """Child: create ``job["ops"]`` tasks, with the clock frozen at one instant if asked."""
    if job.get("frozen"):
        real = file_backend.timestamp_candidates
        file_backend.timestamp_candidates = lambda now=None: real(FROZEN)  # type: ignore[assignment]
    store, acks = _start(job)
    who = f"p{job['n']}"
    for seq in range(job["ops"]):
        made = store.create(job["ws"], task(description="id", metadata={"creator": who, "seq": seq}))
        acks(op="create", id=made.id, who=who, seq=seq)
    return 0


# -- parent side -----------------------------------------------------------------------------------------------------
@dataclass
class Fleet:
    """Workers started through the fork server, their ack files, and which of them were killed."""

    server: ForkServer
    root: Path
    pids: list[int] = field(default_factory=list)
    acks: list[Path] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)

    def launch(self, jobs: list[dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        go = self.root / "go"
        for n, job in enumerate(jobs):
            ack = self.root / f"ack-{n}"
            self.acks.append(ack)
            self.pids.append(self.server.start(job | {"n": n, "ack": str(ack), "go": str(go)}))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(a.exists() and a.stat().st_size for a in self.acks):
            time.sleep(0.005)
        go.touch()

    def kill_some(self, victims: int, rng: random.Random, window: tuple[float, float]) -> None:
        """SIGKILL ``victims`` workers at random moments inside ``window`` seconds from now."""
        for n in sorted(rng.sample(range(len(self.pids)), victims)):
            time.sleep(rng.uniform(*window) / max(victims, 1))
            self.server.kill(self.pids[n])
            self.killed.add(n)

    def finish(self, verdict: Verdict) -> None:
        for n, pid in enumerate(self.pids):
            status = self.server.wait(pid)
            if n in self.killed:
                continue
            if status != {"exit": 0}:
                verdict.add("worker failed", f"worker {n}: {status}")

    def records(self) -> list[dict[str, Any]]:
        out = []
        for n, path in enumerate(self.acks):
            for line in path.read_text().splitlines():
                out.append(json.loads(line) | {"worker": n})
        return out


def _check_counters(
    store: FileStore, tasks: list[str], recs: list[dict[str, Any]], killed: set[str], v: Verdict
) -> None:
    acked: dict[tuple[str, str], int] = defaultdict(int)
    for r in recs:
        if r["op"] == "modify":
            acked[(r["task"], r["who"])] = max(acked[(r["task"], r["who"])], r["v"])
    for t in tasks:
        meta = store.get(WS, t).metadata
        whos = {w for (task_id, w) in acked if task_id == t} | {k for k in meta if k.startswith("p")}
        for who in whos:
            want, found = acked.get((t, who), 0), meta.get(who, 0)
            if found < want:
                v.add("lost update", f"{t} {who}: acknowledged {want}, stored {found}")
                v.lost += want - found
            elif found > want + (who.split("t")[0] in killed):
                v.add("update stored that nobody made", f"{t} {who}: acknowledged {want}, stored {found}")
        if meta.get("count", 0) != sum(meta.get(w, 0) for w in whos):
            v.add("lost update", f"{t}: shared counter {meta.get('count')} is not the sum of the per-writer ones")


def _check_intervals(recs: list[dict[str, Any]], v: Verdict) -> None:
    by_task: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in recs:
        if r["op"] == "modify":
            by_task[r["task"]].append((r["iv"][0], r["iv"][1]))
    for t, intervals in by_task.items():
        latest = 0
        for start, end in sorted(intervals):
            if start < latest:
                v.add("overlapping lock intervals", f"{t}: a holder entered {(latest - start) / 1e6:.3f} ms early")
            latest = max(latest, end)


def _check_logs(store: FileStore, tasks: list[str], recs: list[dict[str, Any]], v: Verdict) -> None:
    for t in tasks:
        log = store.read_log(WS, t)
        for err in log.errors:
            v.add("torn or damaged log line", str(err))
        if log.torn_tail:
            v.add("torn or damaged log line", f"{t}: torn tail")
        seen = Counter((r.get("who"), r.get("seq")) for r in log)
        for key, n in seen.items():
            if n > 1:
                v.add("duplicate log line", f"{t} {key} x{n}")
        for r in recs:
            if r["op"] == "append" and r["task"] == t and (r["who"], r["seq"]) not in seen:
                v.add("acknowledged log line lost", f"{t} {r['who']} {r['seq']}")
                v.lost += 1


def check_versions(store: FileStore, recs: list[dict[str, Any]], v: Verdict) -> None:
    """Acknowledged version names are unique, their content is what was acknowledged, every version is whole."""
    acked = [r for r in recs if r["op"] == "version"]
    names = Counter((r["task"], r["name"]) for r in acked)
    for key, n in names.items():
        if n > 1:
            v.add("duplicate version acknowledged", f"{key} x{n}")
    for r in acked:
        try:
            data = store.get_artifact(WS, r["task"], r["name"])
        except AtlasTasksError:
            v.add("acknowledged artifact lost", f"{r['task']} {r['name']}")
            v.lost += 1
            continue
        if _sha(data) != r["sha"]:
            v.add("overwritten or mismatched artifact", f"{r['task']} {r['name']}")
    for t in {r["task"] for r in acked}:
        for name in store.list_artifacts(WS, t):
            if not intact(store.get_artifact(WS, t, name)):
                v.add("partial artifact", f"{t} {name}")


def check_creations(store: FileStore, ws: str, recs: list[dict[str, Any]], v: Verdict) -> None:
    """Acknowledged ids are unique and each task is still the one its creator wrote."""
    made = [r for r in recs if r["op"] == "create"]
    for task_id, n in Counter(r["id"] for r in made).items():
        if n > 1:
            v.add("duplicate id", f"{task_id} handed out {n} times")
    for r in made:
        try:
            meta = store.get(ws, r["id"]).metadata
        except AtlasTasksError as exc:
            v.add("created task lost", repr(exc))
            v.lost += 1
            continue
        if (meta.get("creator"), meta.get("seq")) != (r["who"], r["seq"]):
            v.add("duplicate id", f"{r['id']} of {r['who']}#{r['seq']} holds {meta.get('creator')}#{meta.get('seq')}")


def _check_locks(store: FileStore, tasks: list[str], v: Verdict) -> None:
    """No lock outlives its holder: each is free now and a writer gets it at once."""
    quick = FileStore(store.home, lock_timeout=2)
    layout = Layout(store.home, lock_timeout=2, go_locks=True)
    for t in tasks:
        if not layout.lock_free(WS, t):
            v.add("stale lock", t)
        try:
            quick.modify(WS, t, lambda x: None)
        except LockTimeoutError as exc:
            v.add("stale lock", repr(exc))


def _check_doctor(store: FileStore, v: Verdict) -> None:
    report = store.check(fix=True)
    for f in report.findings:
        if f.kind not in ("incomplete_task", "missing_ref", "stale_ref", "temp_file"):
            v.add(f"doctor found {f.kind} after the storm", f"{f.path}: {f.detail}")
    for f in store.check().findings:
        v.add("finding left after fix", f"{f.kind} {f.path}")


def _setup(home: Path, tasks: list[str]) -> FileStore:
    store = FileStore(home, lock_timeout=30)
    store.create_workspace(WS)
    for t in tasks:
        store.create(WS, task(id=t, description="shared"))
    return store


def run_t2(scale: Scale = "full", variant: str | None = None, seed: int = 7) -> Outcome:
    """8 processes x 2 threads on three shared tasks, two processes SIGKILLed mid-run."""
    outcome = Outcome("T2", variant or "store", unit="acknowledged ops")
    ops, victims = (12, 1) if scale == "fast" else (60, 2)
    tasks = ["task-s1", "task-s2", "task-s3"]
    with timed(outcome), scratch("t2", fast_fs=scale == "fast") as root, ForkServer() as server:
        store = _setup(root / "home", tasks)
        fleet = Fleet(server, root / "fleet")
        base = {"kind": "storm", "home": str(root / "home"), "tasks": tasks, "ops": ops, "threads": 2}
        fleet.launch([base | {"seed": seed, "weaken": variant} for _ in range(8)])
        fleet.kill_some(victims, random.Random(seed), (0.05, 0.5 if scale == "fast" else 2.0))
        fleet.finish(outcome.verdict)
        recs = fleet.records()
        killed = {f"p{n}" for n in fleet.killed}
        for r in recs:
            if r["op"] == "violation":
                outcome.verdict.add(r["kind"], r["detail"])
        _check_counters(store, tasks, recs, killed, outcome.verdict)
        _check_intervals(recs, outcome.verdict)
        _check_logs(store, tasks, recs, outcome.verdict)
        check_versions(store, recs, outcome.verdict)
        check_creations(store, WS, recs, outcome.verdict)
        _check_locks(store, tasks, outcome.verdict)
        _check_doctor(store, outcome.verdict)
        outcome.runs = sum(1 for r in recs if r["op"] not in ("ready", "violation"))
        outcome.details |= {"processes": 8, "threads each": 2, "killed": len(fleet.killed)}
    return outcome


def run_v1(scale: Scale = "full", variant: str | None = None, seed: int = 11) -> Outcome:
    """P processes racing to save versions of the same two artifacts."""
    outcome = Outcome("V1", variant or "store", unit="versioned saves")
    procs, ops = (8, 16) if scale == "fast" else (8, 50)
    # On a real disk: its fsyncs make the window between choosing a name and taking it realistically wide.
    with timed(outcome), scratch("v1", fast_fs=False) as root, ForkServer() as server:
        store = _setup(root / "home", ["task-v"])
        fleet = Fleet(server, root)
        fleet.launch(
            [{"kind": "versions", "home": str(root / "home"), "ops": ops, "seed": seed, "weaken": variant}] * procs
        )
        fleet.finish(outcome.verdict)
        recs = [r for r in fleet.records() if r["op"] == "version"]
        check_versions(store, recs, outcome.verdict)
        for base, count in (("validation", procs * (ops // 2)), ("reports/summary", procs * (ops - ops // 2))):
            on_disk = [n for n in store.list_artifacts(WS, "task-v") if n.startswith(base + ".")]
            if len(on_disk) != count:
                outcome.verdict.add(
                    "versions on disk differ from saves acknowledged", f"{base}: {len(on_disk)} != {count}"
                )
        outcome.runs = len(recs)
        outcome.details |= {"processes": procs, "saves each": ops}
    return outcome


def run_i1(scale: Scale = "full", variant: str | None = None, seed: int = 13) -> Outcome:
    """Thousands of creations across processes within one frozen second (timestamp ids), then uuid ids."""
    outcome = Outcome("I1", variant or "store", unit="task creations")
    procs = 8
    rounds = [("timestamp", True, 40 if scale == "fast" else 125), ("uuid", False, 10 if scale == "fast" else 125)]
    with timed(outcome), scratch("i1") as root, ForkServer() as server:
        FileStore(root / "home").create_workspace(WS)
        for style, frozen, per in rounds:
            ws = f"ids-{style}"
            FileStore(root / "home").create_workspace(ws)
            fleet = Fleet(server, root / f"fleet-{style}")
            job = {"kind": "creator", "home": str(root / "home"), "ws": ws, "ops": per, "frozen": frozen}
            fleet.launch([job | {"id_style": style, "seed": seed, "weaken": variant}] * procs)
            fleet.finish(outcome.verdict)
            recs = [r for r in fleet.records() if r["op"] == "create"]
            check_creations(FileStore(root / "home"), ws, recs, outcome.verdict)
            on_disk = len(FileStore(root / "home").list(ws))
            if on_disk != len(recs):
                outcome.verdict.add("duplicate id", f"{ws}: {len(recs)} creations acknowledged, {on_disk} tasks stored")
            outcome.runs += len(recs)
            outcome.details[f"{style} ids{' (frozen clock)' if frozen else ''}"] = len(recs)
    return outcome
