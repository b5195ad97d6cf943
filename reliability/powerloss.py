"""T1b, the power-loss model (after ALICE and CrashMonkey): which states can a power cut leave, and are they all safe?

A scenario of store operations runs in-process on a real home while a recorder, installed in place of the ``os``
module that ``_fs.ops`` calls, turns every system call into a logical event: data writes and truncations of an
inode, directory entry changes (create, mkdir, link, unlink, rename), and fsyncs. The filesystem model is

* a file's data write or truncation becomes durable at the next fsync/fdatasync of that file;
* a directory entry change becomes durable at the next fsync of its directory (a rename: of both directories);
* anything not yet durable may or may not have reached the disk, in any combination; a lost write leaves the file
  shorter, or its size grown with zeros in place of the data (ext4's NUL tail), or only a prefix of the data.

After every event (a crash point), the pending events are enumerated (bounded: exhaustive up to a cap, then the
extreme and single-event combinations plus a seeded sample), each resulting state is materialized in a temp dir and
checked with the real reader, the doctor and the shared invariants. The state must be the one after the last
acknowledged operation, or the one after the operation in flight.
"""

# ruff: noqa: S311 - a seeded PRNG makes the sampled crash states reproducible

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import random
import shutil
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore
from atlas_tasks._fs import ops
from reliability import weaken
from reliability.invariants import check_home
from reliability.outcome import Outcome, Scale, timed
from reliability.scratch import scratch
from reliability.view import View, canonical, take_view
from reliability.workload import BASES, WS, task

CONTROLS = ("no-dir-fsync", "no-file-fsync", "naive-log-reader")
WRITE_FATES = ("keep", "drop", "zero", "torn", "torn+zero")


@dataclass
class Inode:
    kind: str  # "f" or "d"
    data: bytearray = field(default_factory=bytearray)
    entries: dict[str, int] = field(default_factory=dict)

    def copy(self) -> Inode:
        return Inode(self.kind, bytearray(self.data), dict(self.entries))


@dataclass(frozen=True)
class Event:
    """One recorded change. ``dirs`` are the directories whose entries it changes (rename: source, destination)."""

    kind: str  # write, trunc, link, unlink, rename, fsync
    ino: int
    dirs: tuple[int, ...] = ()
    name: str = ""
    dst: str = ""
    offset: int = 0
    data: bytes = b""
    op: int = 0


# -- recording -----------------------------------------------------------------------------------------------------
class Recorder:
    """Snapshot of a home (all durable) plus the events recorded since, with model inode numbers."""

    def __init__(self, home: Path) -> None:
        self.inodes: dict[int, Inode] = {}
        self._real: dict[tuple[int, int], int] = {}
        self.root = self._snapshot(home)
        self.events: list[Event] = []
        self.op = 0
        self.paused = False

    def _snapshot(self, path: Path) -> int:
        st = os.lstat(path)
        key = (st.st_dev, st.st_ino)
        if key in self._real:
            return self._real[key]
        if stat.S_ISDIR(st.st_mode):
            ino = self._new("d", key)
            for child in sorted(p.name for p in path.iterdir()):
                self.inodes[ino].entries[child] = self._snapshot(path / child)
            return ino
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"the power-loss model has no {path} kind of file")
        ino = self._new("f", key)
        self.inodes[ino].data = bytearray(path.read_bytes())
        return ino

    def _new(self, kind: str, key: tuple[int, int]) -> int:
        ino = len(self.inodes)
        self.inodes[ino] = Inode(kind)
        self._real[key] = ino  # replaces a stale number the kernel may have reused
        return ino

    def of_fd(self, fd: int) -> int:
        st = os.fstat(fd)
        return self._real[(st.st_dev, st.st_ino)]

    def of_name(self, name: str, dir_fd: int) -> int | None:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return self._real.get((st.st_dev, st.st_ino))

    def created(self, kind: str, name: str, dir_fd: int) -> int:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return self._new(kind, (st.st_dev, st.st_ino))

    def emit(self, kind: str, ino: int, **fields: Any) -> None:
        if self.paused:
            raise AssertionError(f"the store changed the disk ({kind}) while only reading")
        self.events.append(Event(kind, ino, op=self.op, **fields))


def _exists(name: str, dir_fd: int | None) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


class RecordingOs:
    """Stands in for the ``os`` module inside ``_fs.ops``: does each call for real, then records what it changed."""

    def __init__(self, rec: Recorder) -> None:
        self._rec = rec

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        creating = bool(flags & os.O_CREAT) and not _exists(path, dir_fd)
        fd = os.open(path, flags, mode, dir_fd=dir_fd)
        if creating and dir_fd is not None:
            self._rec.emit("link", self._rec.created("f", path, dir_fd), dirs=(self._rec.of_fd(dir_fd),), name=path)
        elif flags & os.O_TRUNC:
            self._rec.emit("trunc", self._rec.of_fd(fd), offset=0)
        return fd

    def write(self, fd: int, data: bytes | memoryview) -> int:
        appending = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND
        offset = os.fstat(fd).st_size if appending else os.lseek(fd, 0, os.SEEK_CUR)
        written = os.write(fd, data)
        self._rec.emit("write", self._rec.of_fd(fd), offset=offset, data=bytes(data[:written]))
        return written

    def fsync(self, fd: int) -> None:
        os.fsync(fd)  # a failed fsync makes nothing durable: record only success
        self._rec.emit("fsync", self._rec.of_fd(fd))

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)
        self._rec.emit("fsync", self._rec.of_fd(fd))

    def ftruncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)
        self._rec.emit("trunc", self._rec.of_fd(fd), offset=size)

    def mkdir(self, path: str, mode: int = 0o777, *, dir_fd: int) -> None:
        os.mkdir(path, mode, dir_fd=dir_fd)
        self._rec.emit("link", self._rec.created("d", path, dir_fd), dirs=(self._rec.of_fd(dir_fd),), name=path)

    def rename(self, src: str, dst: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
        ino = self._rec.of_name(src, src_dir_fd)
        os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        if ino is not None:
            dirs = (self._rec.of_fd(src_dir_fd), self._rec.of_fd(dst_dir_fd))
            self._rec.emit("rename", ino, dirs=dirs, name=src, dst=dst)

    def link(self, src: str, dst: str, *, src_dir_fd: int, dst_dir_fd: int, follow_symlinks: bool = True) -> None:
        ino = self._rec.of_name(src, src_dir_fd)
        os.link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=follow_symlinks)
        if ino is not None:
            self._rec.emit("link", ino, dirs=(self._rec.of_fd(dst_dir_fd),), name=dst)

    def unlink(self, path: str, *, dir_fd: int) -> None:
        ino = self._rec.of_name(path, dir_fd)
        parent = self._rec.of_fd(dir_fd)
        os.unlink(path, dir_fd=dir_fd)
        if ino is not None:
            self._rec.emit("unlink", ino, dirs=(parent,), name=path)


def _removals(rec: Recorder, name: str, dir_fd: int) -> list[tuple[int, str, int]]:
    """(directory, name, inode) of everything under ``name``, children first: what rmtree unlinks, in order."""
    out: list[tuple[int, str, int]] = []
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        me = rec.of_fd(fd)
        for entry in sorted(os.listdir(fd)):  # noqa: PTH208 - listing by descriptor, which pathlib cannot
            st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                out += _removals(rec, entry, fd)
            else:
                ino = rec.of_name(entry, fd)
                if ino is not None:
                    out.append((me, entry, ino))
    finally:
        os.close(fd)
    out.append((rec.of_fd(dir_fd), name, me))
    return out


def install(rec: Recorder) -> weaken.Undo:
    """Route ``_fs.ops`` through the recorder (rmtree is recorded as the unlinks it makes)."""
    real_os, real_rmtree = ops.os, ops.rmtree

    def rmtree(name: str, dir_fd: int, path: str) -> None:
        removals = _removals(rec, name, dir_fd)
        real_rmtree(name, dir_fd, path)
        for parent, entry, ino in removals:
            rec.emit("unlink", ino, dirs=(parent,), name=entry)

    ops.os = RecordingOs(rec)  # type: ignore[assignment]
    ops.rmtree = rmtree

    def undo() -> None:
        ops.os = real_os
        ops.rmtree = real_rmtree

    return undo


# -- crash states ---------------------------------------------------------------------------------------------------
def pending(events: Sequence[Event], k: int) -> list[int]:
    """Indices of the first ``k`` events that no later fsync (among the first ``k``) has made durable."""
    synced: set[int] = set()
    out: list[int] = []
    for i in range(k - 1, -1, -1):
        e = events[i]
        if e.kind == "fsync":
            synced.add(e.ino)
        elif e.kind in ("write", "trunc"):
            if e.ino not in synced:
                out.append(i)
        elif not all(d in synced for d in e.dirs):
            out.append(i)
    return out[::-1]


def fates(e: Event) -> tuple[str, ...]:
    if e.kind != "write":
        return ("keep", "drop")
    return WRITE_FATES if len(e.data) > 1 else ("keep", "drop", "zero")


def choices(events: Sequence[Event], idx: list[int], cap: int, rng: random.Random) -> Iterator[dict[int, str]]:
    """Fates for the pending events: all combinations up to ``cap``, else the extremes, each event alone, a sample."""
    options = [fates(events[i]) for i in idx]
    total = 1
    for o in options:
        total *= len(o)
    if total <= cap:
        for combo in itertools.product(*options):
            yield dict(zip(idx, combo, strict=True))
        return
    yield dict.fromkeys(idx, "keep")
    yield dict.fromkeys(idx, "drop")
    for i, opts in zip(idx, options, strict=True):
        for fate in opts[1:]:
            yield dict.fromkeys(idx, "keep") | {i: fate}
        yield dict.fromkeys(idx, "drop") | {i: "keep"}
    for _ in range(cap):
        yield {i: rng.choice(o) for i, o in zip(idx, options, strict=True)}


def _write(node: Inode, e: Event, fate: str) -> None:
    n = len(e.data)
    keep = e.data if fate == "keep" else e.data[: n // 2] if fate.startswith("torn") else b""
    end = e.offset + (n if fate in ("zero", "torn+zero") else len(keep))
    if len(node.data) < end:
        node.data.extend(bytes(end - len(node.data)))
    node.data[e.offset : e.offset + len(keep)] = keep


def apply(rec: Recorder, k: int, chosen: dict[int, str]) -> dict[int, Inode]:
    """The disk after a crash at point ``k`` where pending event i met fate ``chosen[i]``."""
    nodes = {i: n.copy() for i, n in rec.inodes.items()}
    for i, e in enumerate(rec.events[:k]):
        fate = chosen.get(i, "keep")
        if fate == "drop" or e.kind == "fsync":
            continue
        if e.kind == "write":
            _write(nodes[e.ino], e, fate)
        elif e.kind == "trunc":
            del nodes[e.ino].data[e.offset :]
        elif e.kind == "link":
            nodes[e.dirs[0]].entries[e.name] = e.ino
        elif e.kind == "unlink":
            if nodes[e.dirs[0]].entries.get(e.name) == e.ino:
                del nodes[e.dirs[0]].entries[e.name]
        elif e.kind == "rename":
            source, target = nodes[e.dirs[0]], nodes[e.dirs[1]]
            if source.entries.get(e.name) == e.ino:
                del source.entries[e.name]
            target.entries[e.dst] = e.ino
    return nodes


def digest(nodes: dict[int, Inode], root: int) -> str:
    h = hashlib.sha256()

    def walk(ino: int, depth: int) -> None:
        node = nodes[ino]
        if node.kind == "f" or depth > 32:
            h.update(b"F%d:" % ino + hashlib.sha256(node.data).digest())
            return
        for name in sorted(node.entries):
            h.update(b"E" + name.encode() + b"/")
            walk(node.entries[name], depth + 1)
        h.update(b"D")

    walk(root, 0)
    return h.hexdigest()


def materialize(nodes: dict[int, Inode], root: int, dest: Path) -> None:
    """Write the modelled tree to ``dest`` (hard links stay hard links)."""
    placed: dict[int, Path] = {}

    def put(ino: int, path: Path) -> None:
        node = nodes[ino]
        if node.kind == "d":
            path.mkdir(mode=0o750)
            for name, child in sorted(node.entries.items()):
                put(child, path / name)
        elif ino in placed:
            os.link(placed[ino], path)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(node.data)
            placed[ino] = path

    put(root, dest)


# -- scenarios -------------------------------------------------------------------------------------------------------
Step = tuple[str, Callable[[FileStore, dict[str, Any]], object]]


def _agent_run() -> list[Step]:
    """A runner's life: create, log, validate, checkpoint, and the housekeeping operations around it."""
    return [
        ("create", lambda s, c: c.__setitem__("t", s.create(WS, task(description="run")).id)),
        ("append_log (creates the log)", lambda s, c: s.append_log(WS, c["t"], {"event": "start"})),
        ("save_versioned_artifact (new dir)", lambda s, c: s.save_versioned_artifact(WS, c["t"], "v.json", b"1")),
        ("modify (checkpoint)", lambda s, c: s.modify(WS, c["t"], lambda t: setattr(t, "current_step", 1))),
        ("append_log", lambda s, c: s.append_log(WS, c["t"], {"event": "step", "step": 1})),
        ("delete", lambda s, c: s.delete(WS, "task-d")),
        ("save_versioned_artifact", lambda s, c: s.save_versioned_artifact(WS, c["t"], "v.json", b"22")),
        ("save_artifact", lambda s, c: s.save_artifact(WS, c["t"], "notes/plan.md", b"# plan")),
        ("update", lambda s, c: s.update(WS, s.get(WS, c["t"]).model_copy(update={"description": "run 2"}))),
        ("save_artifact (replace)", lambda s, c: s.save_artifact(WS, "task-a", "notes/plan.md", b"# plan v2")),
        ("create_workspace", lambda s, c: s.create_workspace("w2")),
        ("set_workspace_status", lambda s, c: s.set_workspace_status(WS, "paused")),
    ]


def _recovery() -> list[Step]:
    """After earlier crashes: an append over a torn tail, the doctor's repairs, then a normal update."""
    return [
        ("append_log (cuts a torn tail)", lambda s, c: s.append_log(WS, "task-a", {"event": "after crash"})),
        ("check(fix=True)", lambda s, c: s.check(fix=True)),
        ("update", lambda s, c: s.update(WS, s.get(WS, "task-a").model_copy(update={"description": "A2"}))),
    ]


def _resume_loop() -> list[Step]:
    """Three steps of a resumed task (log, validation, checkpoint each), then a delete_many and the deleted task
    restored under its id (a deleted id comes back only that way: tombstones refuse a new task under it)."""
    steps: list[Step] = []
    for i in range(1, 4):
        steps += [
            (f"append_log {i}", lambda s, c, i=i: s.append_log(WS, "task-a", {"event": "step", "step": i})),
            (
                f"save_versioned_artifact {i}",
                lambda s, c, i=i: s.save_versioned_artifact(WS, "task-a", "validation.json", b"%d" % i),
            ),
            (f"modify {i}", lambda s, c, i=i: s.modify(WS, "task-a", lambda t: setattr(t, "current_step", i))),
        ]
    return [
        *steps,
        # delete_many's group path (what gc takes), where agent-run takes delete's.
        ("delete_many", lambda s, c: (c.update(d=s.get(WS, "task-d")), s.delete_many(WS, ["task-d"]))),
        ("import_task (the deleted task restored)", lambda s, c: s.import_task(WS, c["d"])),
        ("append_log (first)", lambda s, c: s.append_log(WS, "task-d", {"event": "start again"})),
    ]


SCENARIOS: dict[str, tuple[str, Callable[[], list[Step]]]] = {
    "agent-run": ("base", _agent_run),
    "recovery": ("dirty", _recovery),
    "resume-loop": ("base", _resume_loop),
}


@dataclass
class Trace:
    rec: Recorder
    views: list[View]  # views[j]: the state before step j (views[-1]: after the last step)
    ends: list[int]  # ends[j]: number of events when step j returned
    labels: list[str]


def record(home: Path, steps: list[Step]) -> Trace:
    """Run ``steps`` on ``home`` under the recorder; the view after each step is what it acknowledged."""
    rec = Recorder(home)
    views = [take_view(FileStore(home))]
    ends: list[int] = []
    undo = install(rec)
    try:
        store, ctx = FileStore(home, lock_timeout=5), {}
        for j, (_, step) in enumerate(steps):
            rec.op = j
            step(store, ctx)
            ends.append(len(rec.events))
            rec.paused = True
            views.append(take_view(FileStore(home)))
            rec.paused = False
    finally:
        undo()
    return Trace(rec, views, ends, [label for label, _ in steps])


def expectation(trace: Trace, k: int) -> tuple[list[View], View, View | None, str]:
    """(allowed views, last acknowledged view, in-flight view, where) for a crash after ``k`` events."""
    acked = sum(1 for end in trace.ends if end <= k)
    if acked == len(trace.ends) or (acked and trace.ends[acked - 1] == k):
        label = trace.labels[acked - 1] if acked else "start"
        return [trace.views[acked]], trace.views[acked], None, f"after {label} returned"
    label = trace.labels[acked]
    return [trace.views[acked], trace.views[acked + 1]], trace.views[acked], trace.views[acked + 1], f"in {label}"


def explore(trace: Trace, root: Path, cap: int, outcome: Outcome, seed: int = 5) -> None:
    """Check every distinct crash state of the trace (at most about ``cap`` per crash point)."""
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    events = trace.rec.events
    for k in range(1, len(events) + 1):
        allowed, acked, in_flight, where = expectation(trace, k)
        expect = canonical(acked) + (canonical(in_flight) if in_flight else "")
        idx = pending(events, k)
        outcome.details["crash points"] = int(outcome.details.get("crash points", 0)) + 1
        for chosen in choices(events, idx, cap, rng):
            nodes = apply(trace.rec, k, chosen)
            key = (digest(nodes, trace.rec.root), hashlib.sha256(expect.encode()).hexdigest())
            if key in seen:
                continue
            seen.add(key)
            _check_state(
                nodes, trace.rec.root, root, allowed, acked, in_flight, outcome, _describe(events, k, chosen, where)
            )


def _describe(events: Sequence[Event], k: int, chosen: dict[int, str], where: str) -> str:
    lost = [
        f"{events[i].kind} {events[i].name or events[i].dst}:{fate}" for i, fate in chosen.items() if fate != "keep"
    ]
    return f"crash {where}, after event {k} ({events[k - 1].kind}); unsynced changes lost: {lost or 'none'}"


def _check_state(
    nodes: dict[int, Inode],
    root_ino: int,
    root: Path,
    allowed: list[View],
    acked: View,
    in_flight: View | None,
    outcome: Outcome,
    where: str,
) -> None:
    state = root / "state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()
    materialize(nodes, root_ino, state / "home")
    verdict = check_home(state / "home", allowed, acked, in_flight=in_flight, outside={})
    outcome.verdict.merge(verdict, where)
    outcome.runs += 1


# The fast subset: the first steps of two scenarios (one with workspace.json writes, one without).
FAST = {"agent-run": 6, "resume-loop": 6}


def run(scale: Scale = "full", variant: str | None = None, scenarios: dict[str, int] | None = None) -> Outcome:
    """Record each scenario (``scenarios``: name -> how many of its steps) and check every crash state."""
    outcome = Outcome("T1b", variant or "store", unit="crash states")
    cap = 8 if scale == "fast" else 48
    chosen_scenarios = scenarios or (FAST if scale == "fast" else dict.fromkeys(SCENARIOS, 999))
    with timed(outcome), scratch("t1b") as root, weaken.weakened(variant):
        for name, count in chosen_scenarios.items():
            base, steps = SCENARIOS[name]
            chosen = steps()[:count]
            live = root / name / "home"
            BASES[base](live)
            trace = record(live, chosen)
            outcome.details[f"{name} events"] = len(trace.rec.events)
            explore(trace, root, cap, outcome)
    return outcome
