"""N, names and paths: nothing outside the home is ever written, and every refused name is an InvalidNameError.

1. Hostile names (an adversarial corpus, Hypothesis, and a seeded fuzzer: 10^5 per kind at full scale) go through
   the store's public API as workspace names, task ids and artifact paths. Each call succeeds or raises
   InvalidNameError (an artifact path in the way of an earlier one of the same task, ``d`` beside ``d/x``, may
   instead raise StorageError EISDIR/ENOTDIR naming it: counted apart, and only where that conflict is real);
   every filesystem call it makes stays below the home (checked by an ops hook on the path, and by the digest of
   the canary tree around the home).
2. A symlink is planted at every position of the layout (the real subtree moved outside and linked back), with a
   fresh store and with one that has already worked on the home; every operation then runs, and the outside tree
   must not change.
3. A thread swaps directories of the store with symlinks to outside copies while the main thread writes.
"""

# ruff: noqa: BLE001, S311 - an untyped error is a finding to record; seeded PRNGs make the fuzzing reproducible

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import string
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from atlas_tasks import FileStore, InvalidNameError, StorageError, TaskIdRetiredError
from atlas_tasks._fs import ops
from atlas_tasks.errors import AtlasTasksError
from reliability import weaken
from reliability.outcome import Outcome, Scale, Verdict, timed
from reliability.scratch import scratch
from reliability.view import tree_digest
from reliability.workload import OPS, WS, make_base, task

PIECES = [
    *"./\\\x00\n\r\t :*?<>|~$%",
    *string.ascii_letters[:8],
    *"0129_-+=@,",
    "..",
    "../",
    "/..",
    "%2e%2e",
    "%2f",
    "\uff0e",
    "\uff0f",
    "\u2215",
    "\u202e",
    "\u200b",
    "\ufeff",
    "ü",
    "é",
    "\ud800",
    "con",
    "NUL",
    "lpt1",
    "aux.txt",
    ".json",
    ".1",
    ".tmp",
    "task-",
]
LONG = [127, 128, 129, 200, 237, 238, 240, 250, 253, 254, 255, 256, 300, 4096]


def corpus(outside: Path) -> list[object]:
    """Names that have broken path handling somewhere: traversal, absolute, encodings, devices, lengths."""
    names: list[object] = [
        "",
        ".",
        "..",
        "...",
        "./x",
        "../x",
        "../../outside",
        "a/../../b",
        "/etc/passwd",
        str(outside / "pwned"),
        f"../../{outside.name}/pwned",
        "a//b",
        "a/./b",
        "a\\..\\b",
        "x\x00y",
        "x\n",
        " x",
        "x ",
        ".hidden",
        "trailing.",
        "con",
        "CON.txt",
        "nul.json",
        "com1",
        "%2e%2e%2fetc",
        "\uff0e\uff0e\uff0fx",
        "\u202egnp.exe",
        "ü",
        "a" * 300,
        "sub/" * 9 + "x",
        "sub/x",
        "x.1.json",
        "x.0.json",
        "validation.json",
        ".task.json.abc.tmp",
        None,
        1,
        b"bytes",
        ["list"],
        "a:b",
        "a*b",
        "task-20250101-000000",
    ]
    for n in LONG:
        names += ["a" * n, "a" * (n - 5) + ".json", "d/" + "a" * n]
    return names


def fuzz(rng: random.Random, n: int) -> Iterator[str]:
    """``n`` seeded random names built from hostile pieces, with long runs mixed in."""
    for _ in range(n):
        if rng.random() < 0.08:
            length = rng.choice(LONG) + rng.randint(-3, 3)
            yield rng.choice(["a", "task-", "x/"]) * max(1, length // 2) + rng.choice(["", ".json", ".md"])
            continue
        yield "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))


class Sandbox:
    """A home with a canary tree around it, a hook that checks every ops path, and fresh targets on demand."""

    def __init__(self, root: Path) -> None:
        self.root, self.home, self.outside = root, root / "home", root / "outside"
        (self.outside / "dir").mkdir(parents=True)
        (self.outside / "canary.txt").write_text("canary")
        self.store = FileStore(self.home, lock_timeout=5)
        self.digest = tree_digest(self.root, skip="home")
        self.escapes: list[str] = []
        self.conflicts = 0
        self.batch = 0
        self._fresh_targets()

    def _fresh_targets(self) -> None:
        """New workspaces/tasks every few thousand names, so no directory grows without bound."""
        self.batch += 1
        self.ws = f"n{self.batch}"
        self.long_ws = f"{'L' * 120}{self.batch:08d}"
        for ws in (self.ws, self.long_ws):
            self.store.create_workspace(ws)
        self.task = self.store.create(self.ws, task(description="names")).id

    def hook(self, op: str, path: str) -> None:
        if not os.path.normpath(path).startswith(f"{self.home}/") and os.path.normpath(path) != str(self.home):
            self.escapes.append(f"{op} {path}")

    def outside_changed(self) -> bool:
        return tree_digest(self.root, skip="home") != self.digest


def _workspace_name(box: Sandbox, name: Any) -> None:
    box.store.create_workspace(name, exist_ok=True)
    box.store.get_workspace(name)


def _task_id(box: Sandbox, name: Any) -> None:
    ws = box.long_ws if zlib.crc32(repr(name).encode("utf-8", "surrogatepass")) % 2 else box.ws
    # model_copy, not Task(id=...): the model would refuse a non-string itself, before the store sees it.
    try:
        box.store.create(ws, task(description="hostile id").model_copy(update={"id": name}))
    except TaskIdRetiredError:
        return  # a valid name tried (and deleted) before: a deleted id is never handed out again
    box.store.append_log(ws, name, {"event": "x"})
    box.store.delete(ws, name)


def _artifact_path(box: Sandbox, name: Any) -> None:
    with contextlib.suppress(InvalidNameError):  # versioned-looking names are refused for plain saves only
        box.store.save_artifact(box.ws, box.task, name, b"plain")
    saved = box.store.save_versioned_artifact(box.ws, box.task, name, b"versioned")
    box.store.get_artifact(box.ws, box.task, saved)


KINDS: dict[str, Callable[[Sandbox, Any], None]] = {
    "workspace name": _workspace_name,
    "task id": _task_id,
    "artifact path": _artifact_path,
}


def _conflict(box: Sandbox, name: Any, exc: StorageError) -> bool:
    """A valid artifact path refused because an earlier one of the same task is in the way: ``d`` when ``d/x``
    exists (EISDIR), or ``d/x`` when the file ``d`` exists (ENOTDIR). A state conflict, not a name problem."""
    if not isinstance(name, str) or exc.errno not in (errno.EISDIR, errno.ENOTDIR):
        return False
    existing = box.store.list_artifacts(box.ws, box.task)
    parts = name.split("/")
    under = any(a.startswith(name + "/") for a in existing)
    over = any("/".join(parts[:i]) in existing for i in range(1, len(parts)))
    return under if exc.errno == errno.EISDIR else over


def _try(box: Sandbox, kind: str, name: Any, verdict: Verdict) -> None:
    box.escapes.clear()
    try:
        KINDS[kind](box, name)
    except InvalidNameError:
        pass
    except StorageError as exc:
        if kind == "artifact path" and _conflict(box, name, exc):
            box.conflicts += 1
        else:
            verdict.add(f"{kind} refused without InvalidNameError", f"{name!r:.80}: {exc!r:.200}")
    except Exception as exc:  # the finding: a refusal that is not an InvalidNameError
        verdict.add(f"{kind} refused without InvalidNameError", f"{name!r:.80}: {exc!r:.200}")
    if box.escapes:
        verdict.add("filesystem call outside the home", f"{kind} {name!r:.80}: {box.escapes[0]}")


def _hypothesis(box: Sandbox, kind: str, n: int, verdict: Verdict) -> int:
    count = [0]
    names = st.one_of(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), st.text(max_size=40))

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(names)
    def probe(name: str) -> None:
        count[0] += 1
        _try(box, kind, name, verdict)

    probe()
    return count[0]


def run_names(
    box: Sandbox, scale: Scale, verdict: Verdict, details: dict[str, int | str], kinds: tuple[str, ...]
) -> int:
    """Each kind of name through the corpus, Hypothesis and the fuzzer; returns how many names were tried."""
    per_kind = 1_000 if scale == "fast" else 100_000
    hyp = 200 if scale == "fast" else 10_000
    rng = random.Random(17)
    total = 0
    previous = ops.set_hook(box.hook)
    try:
        for kind in kinds:
            tried = 0
            for name in corpus(box.outside):
                _try(box, kind, name, verdict)
                tried += 1
            tried += _hypothesis(box, kind, hyp, verdict)
            for name in fuzz(rng, per_kind - tried):
                _try(box, kind, name, verdict)
                tried += 1
                if tried % 5000 == 0:
                    box._fresh_targets()
            details[kind] = tried
            total += tried
        if box.conflicts:
            details["artifact paths in the way of an earlier one (typed StorageError EISDIR/ENOTDIR)"] = box.conflicts
    finally:
        ops.set_hook(previous)
    if box.outside_changed():
        verdict.add("file created or changed outside the home", str(box.outside))
    return total


# -- planted symlinks -------------------------------------------------------------------------------------------------
TASK = "workspaces/w/tasks/task-a"
POSITIONS = [
    "workspaces",
    "workspaces/w",
    "workspaces/w/tasks",
    TASK,
    f"{TASK}/artifacts",
    f"{TASK}/artifacts/notes",
    f"{TASK}/task.json",
    f"{TASK}/task.log",
    f"{TASK}/task.json.lock",
    f"{TASK}/artifacts/validation.1.json",
    "workspaces/w/workspace.json",
    "workspaces/w/workspace.json.lock",
    ".atlas-tasks",
    ".atlas-tasks/locks",
    ".atlas-tasks/locks/w",
    ".atlas-tasks/locks/w/task-a.lock",
    ".atlas-tasks/trash",
    ".atlas-tasks/leases",
    ".atlas-tasks/leases/w",
]
# Run leases are taken outside the OPS catalog (they write no task state), so the symlink runs add them here.
EXTRA_OPS: dict[str, Callable[[FileStore, dict[str, Any]], object]] = {
    "acquire_lease": lambda s, c: s.acquire_lease(WS, "task-a", {"pid": os.getpid()}).release(),
}


def plant(home: Path, outside: Path, position: str) -> None:
    """Move the real thing at ``position`` outside the home and leave a symlink to it in its place."""
    inside = home / position
    moved = outside / position.replace("/", "__")
    if inside.exists() or inside.is_symlink():
        shutil.move(str(inside), str(moved))
        # Lock and lease files carry no data: without them, one opened through the symlink appears as a new file.
        if moved.is_dir():
            for stale in [*moved.rglob("*.lock"), *moved.rglob("*.lease")]:
                stale.unlink()
    else:
        moved.mkdir()
        inside.parent.mkdir(parents=True, exist_ok=True)
    inside.symlink_to(moved)


def _all_ops(store: FileStore, verdict: Verdict, where: str) -> int:
    ran = 0
    for name, op in (OPS | EXTRA_OPS).items():
        ran += 1
        try:
            op(store, {})
        except AtlasTasksError:
            pass
        except Exception as exc:  # a symlink must give a typed error, never a crash
            verdict.add("untyped error from a planted symlink", f"{where} {name}: {exc!r:.200}")
    return ran


def run_symlinks(root: Path, verdict: Verdict, positions: list[str]) -> int:
    """Plant a symlink at each position, with a fresh and with a warmed-up store; run every operation."""
    runs = 0
    for position in positions:
        for warm in (False, True):
            case = root / f"plant-{runs}"
            home, outside = case / "home", case / "outside"
            make_base(home)
            outside.mkdir()
            store = FileStore(home, lock_timeout=2)
            if warm:  # a long-lived store that has already opened (and cached) its lock directories
                store.modify(WS, "task-a", lambda t: None)
                store.append_log(WS, "task-d", {"event": "warm"})
                EXTRA_OPS["acquire_lease"](store, {})
            plant(home, outside, position)
            before = tree_digest(outside)
            where = f"symlink at {position} ({'warm' if warm else 'fresh'} store)"
            runs += _all_ops(store, verdict, where)
            if tree_digest(outside) != before:
                changed = sorted(set(tree_digest(outside).items()) ^ set(before.items()))[:2]
                verdict.add("write outside the home through a planted symlink", f"{where}: {changed}")
            shutil.rmtree(case)
    return runs


# -- racing symlink swaps -------------------------------------------------------------------------------------------
SWAPPED = ["workspaces/w", TASK, ".atlas-tasks/locks/w"]


def _swapper(home: Path, copy: Path, position: str, stop: threading.Event, swaps: list[int]) -> None:
    """Keep replacing ``position`` by a symlink to ``copy`` (outside the home), and putting it back."""
    inside, parked = home / position, home / (position + ".parked")
    while not stop.is_set():
        with contextlib.suppress(OSError):
            inside.rename(parked)
            inside.symlink_to(copy)
            time.sleep(0.0002)
            inside.unlink()
            parked.rename(inside)
            swaps[0] += 1
        time.sleep(0.0001)


def run_races(root: Path, seconds: float, verdict: Verdict) -> int:
    """Write through the store while a thread swaps one directory with a symlink; the outside must not change."""
    runs = 0
    for position in SWAPPED:
        case = root / f"race-{position.replace('/', '_')}"
        home, outside = case / "home", case / "outside"
        make_base(home)
        outside.mkdir()
        store = FileStore(home, lock_timeout=2)
        store.modify(WS, "task-a", lambda t: None)  # warm: lock directories cached, as in a long-lived process
        copy = outside / position.replace("/", "__")
        # Without its lock files: a lock opened through the symlink then shows up as a new file outside.
        shutil.copytree(home / position, copy, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
        before = tree_digest(outside)
        stop, swaps = threading.Event(), [0]
        swapper = threading.Thread(target=_swapper, args=(home, copy, position, stop, swaps))
        swapper.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            runs += _race_round(store, runs)
        stop.set()
        swapper.join()
        if tree_digest(outside) != before:
            changed = sorted(set(tree_digest(outside).items()) ^ set(before.items()))[:2]
            verdict.add("write outside the home during a symlink swap", f"{position} ({swaps[0]} swaps): {changed}")
        shutil.rmtree(case)
    return runs


def _race_round(store: FileStore, i: int) -> int:
    writes: list[Callable[[], object]] = [
        lambda: store.modify(WS, "task-a", lambda t: t.metadata.__setitem__("i", i)),
        lambda: store.append_log(WS, "task-a", {"i": i}),
        lambda: store.save_artifact(WS, "task-a", "notes/race.md", b"r"),
        lambda: store.save_versioned_artifact(WS, "task-a", "race.json", b"r"),
        lambda: store.set_workspace_status(WS, "active"),
    ]
    for write in writes:
        with contextlib.suppress(AtlasTasksError):
            write()
    return len(writes)


def run(
    scale: Scale = "full",
    variant: str | None = None,
    kinds: tuple[str, ...] = tuple(KINDS),
    positions: list[str] | None = None,
    race_seconds: float | None = None,
) -> Outcome:
    """Names of each kind, planted symlinks (all positions by default) and racing swaps (full scale: 4 s each)."""
    outcome = Outcome("N", variant or "store", unit="names and operations")
    with timed(outcome), scratch("n") as root, weaken.weakened(variant):
        if kinds:
            box_root = root / "names"
            box_root.mkdir()
            outcome.runs += run_names(Sandbox(box_root), scale, outcome.verdict, outcome.details, kinds)
        outcome.runs += run_symlinks(root, outcome.verdict, POSITIONS if positions is None else positions)
        seconds = race_seconds if race_seconds is not None else (4.0 if scale == "full" else 0.0)
        if seconds:
            outcome.runs += run_races(root, seconds, outcome.verdict)
    return outcome
