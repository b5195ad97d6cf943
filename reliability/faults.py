"""F, fault injection: disk full, I/O errors, quota, permissions and read-only filesystems, injected and real.

Injected: every ``_fs.ops`` call of every operation fails in turn with ENOSPC, EIO, EDQUOT, EACCES or EROFS, once or
from then on (persistent). The operation must raise a typed error that carries the errno and names a path inside
the home, or succeed only if the failed call could not affect what it acknowledges; the old state must stay intact
and readable (or be the new one, when the fault hit after the commit point); a failed fsync is never retried; the
same store object then works normally, reading fresh state from disk.

Real: a 1 MiB tmpfs filled until ENOSPC, a child process under RLIMIT_FSIZE (EFBIG), and a tmpfs remounted
read-only (EROFS). Skipped, with the reason, where the machine cannot mount.
"""

# ruff: noqa: BLE001, S607 - an untyped error is a finding to record, not to let through; mount/umount come from PATH like any admin tool

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore, StorageError
from atlas_tasks._fs import ops
from atlas_tasks.backends.file import _workspaces
from atlas_tasks.errors import AtlasTasksError
from reliability import weaken
from reliability.forkserver import ForkServer
from reliability.invariants import check_home
from reliability.outcome import Outcome, Scale, Verdict, timed
from reliability.scratch import scratch
from reliability.view import View, leftovers, take_view
from reliability.workload import BASES, CORE_OPS, OP_BASE, OPS, WS, make_base, task

ERRNOS = {name: getattr(errno, name) for name in ("ENOSPC", "EIO", "EDQUOT", "EACCES", "EROFS")}
# Calls whose failure must never end in an acknowledgement: the data path of every protocol.
DATA_PATH = {"write", "fsync", "fdatasync", "rename", "link", "mkdir", "open", "ftruncate", "fchmod", "rmtree"}
CONTROLS = ("fsync-retry", "in-place-write")


class Injector:
    """An ops hook that fails call number ``at`` (and, if persistent, every later call of the same kind)."""

    def __init__(self, at: int, err: int, persistent: bool) -> None:
        self.at, self.err, self.persistent = at, err, persistent
        self.n = 0
        self.failed: tuple[str, str] | None = None
        self.in_refs = False
        self.failed_in_refs = False
        self.retried = False

    def __call__(self, op: str, path: str) -> None:
        i, self.n = self.n, self.n + 1
        if self.failed is not None and op in ("fsync", "fdatasync") and self.failed == (op, path):
            self.retried = True
        if i == self.at or (self.persistent and self.failed is not None and op == self.failed[0]):
            if self.failed is None:
                self.failed, self.failed_in_refs = (op, path), self.in_refs
            raise OSError(self.err, os.strerror(self.err))


@contextlib.contextmanager
def _tracking_refs(injector: Injector) -> Iterator[None]:
    """Tell the injector when a call belongs to the workspace.json refs update (allowed to fail after a commit)."""
    real = _workspaces.edit_refs  # looked up on the module at each call by sync_ref, drop_ref and doctor

    def edit_refs(*args: Any, **kwargs: Any) -> None:
        injector.in_refs = True
        try:
            real(*args, **kwargs)
        finally:
            injector.in_refs = False

    _workspaces.edit_refs = edit_refs
    try:
        yield
    finally:
        _workspaces.edit_refs = real


def _count_calls(base: Path, root: Path, name: str) -> list[str]:
    home = root / "ref" / "home"
    shutil.copytree(base, home, symlinks=True)
    calls: list[str] = []
    previous = ops.set_hook(lambda op, path: calls.append(op))
    try:
        OPS[name](FileStore(home, lock_timeout=5), {})
    finally:
        ops.set_hook(previous)
        shutil.rmtree(home.parent)
    return calls


class _Target:
    """One operation under fault: its base home, its old and new views and its calls."""

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root
        self.base = root / "bases" / OP_BASE[name] / "home"
        if not self.base.exists():
            BASES[OP_BASE[name]](self.base)
        self.old = take_view(FileStore(self.base))
        self.known = [key.split("/", 1)[1] for key in self.old["tasks"]]
        self.calls = _count_calls(self.base, root, name)
        ref = root / "ref" / "home"
        shutil.copytree(self.base, ref, symlinks=True)
        OPS[name](FileStore(ref), {})
        self.new = take_view(FileStore(ref), self.known)
        shutil.rmtree(ref.parent)

    def inject(self, at: int, err: int, persistent: bool) -> Verdict:
        home = self.root / "run" / "home"
        shutil.rmtree(home.parent, ignore_errors=True)
        shutil.copytree(self.base, home, symlinks=True)
        store = FileStore(home, lock_timeout=5)
        injector = Injector(at, err, persistent)
        verdict = Verdict()
        previous = ops.set_hook(injector)
        try:
            with _tracking_refs(injector):
                returned = self._call(store, injector, err, home, verdict)
        finally:
            ops.set_hook(previous)
        self._judge(returned, injector, verdict)
        acked = self.new if returned else self.old
        verdict.merge(
            check_home(
                home,
                [self.old, self.new],
                acked,
                in_flight=None if returned else self.new,
                known_ids=self.known,
                outside={},
            )
        )
        _follow_up(store, verdict)
        return verdict

    def _call(self, store: FileStore, injector: Injector, err: int, home: Path, verdict: Verdict) -> bool:
        try:
            OPS[self.name](store, {})
        except StorageError as exc:
            if exc.errno != err:
                verdict.add("error does not carry the injected errno", repr(exc))
            if not str(exc.path).startswith(str(home)):
                verdict.add("error does not name a path in the store", repr(exc))
            return False
        except AtlasTasksError:
            return False
        except Exception as exc:  # the point of the campaign: anything untyped is a finding
            verdict.add("untyped error escaped", repr(exc))
            return False
        return True

    def _judge(self, returned: bool, injector: Injector, verdict: Verdict) -> None:
        if injector.retried:
            verdict.add("failed fsync retried", str(injector.failed))
        if injector.failed is None or not returned or self.name == "check_fix":
            return
        op, path = injector.failed
        if op in DATA_PATH and not injector.failed_in_refs:
            verdict.add("acknowledged although a data-path call failed", f"{op} {path}")


def _follow_up(store: FileStore, verdict: Verdict) -> None:
    """The store object that saw the fault must work normally afterwards, from what is on disk."""
    try:
        before = store.get(WS, "task-a").revision
        after = store.modify(WS, "task-a", lambda t: t.metadata.__setitem__("after_fault", True)).revision
    except AtlasTasksError as exc:
        verdict.add("store unusable after a fault", repr(exc))
        return
    if after != before + 1:
        verdict.add("store wrote from a stale state after a fault", f"revision {before} -> {after}")


def run_injected(scale: Scale, variant: str | None, names: tuple[str, ...] = ()) -> Outcome:
    """Fail each call of each operation (``names``: some only) with each errno, once and persistently."""
    outcome = Outcome("F", variant or "store", unit="injected faults")
    names = names or (CORE_OPS if scale == "fast" else tuple(OPS))
    errnos = ["ENOSPC", "EIO"] if scale == "fast" else list(ERRNOS)
    modes = [False] if scale == "fast" else [False, True]
    with timed(outcome), scratch("f") as root, weaken.weakened(variant):
        for name in names:
            target = _Target(name, root)
            for at, call in enumerate(target.calls):
                if scale == "fast" and call not in DATA_PATH:
                    continue
                for err_name in errnos:
                    for persistent in modes:
                        where = f"{name} call {at} ({call}) {err_name}{' persistent' if persistent else ''}"
                        outcome.verdict.merge(target.inject(at, ERRNOS[err_name], persistent), where)
                        outcome.runs += 1
    return outcome


# -- real faults ----------------------------------------------------------------------------------------------------
def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` at ``path``; the reason if this machine refuses."""
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs"
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else f"mount -t tmpfs refused: {done.stderr.strip()}"


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _fill_step(store: FileStore, i: int, ids: list[str]) -> None:
    """One write of a workload that grows the store: artifacts, checkpoints, log lines and new tasks."""
    kind = i % 4
    if kind == 0:
        store.save_versioned_artifact(WS, ids[-1], "out.bin", os.urandom(48 * 1024))
    elif kind == 1:
        store.modify(WS, ids[-1], lambda t: setattr(t, "description", "x" * (24 * 1024 + i)))
    elif kind == 2:
        store.append_log(WS, ids[-1], {"event": "step", "i": i, "pad": "y" * 6000})
    else:
        ids.append(store.create(WS, task(description=f"t{i}")).id)


def _after_failure(store: FileStore, home: Path, acked: View, exc: AtlasTasksError, verdict: Verdict) -> None:
    if not isinstance(exc, StorageError) or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        verdict.add("disk full raised something else", repr(exc))
    elif not str(exc.path).startswith(str(home)):
        verdict.add("error does not name a path in the store", repr(exc))
    try:
        found = take_view(FileStore(home))
    except AtlasTasksError as err:
        verdict.add("store unreadable on a full disk", repr(err))
        return
    if found != acked:
        verdict.add("previous state changed by a failed write", str(exc))
    if stray := {p for p in leftovers(home) if p.rsplit("/", 1)[-1].startswith(".")}:
        verdict.add("temp file left by a failed write", str(sorted(stray)[:2]))


def run_disk_full(root: Path, failures: int, outcome: Outcome) -> None:
    """Fill a 1 MiB tmpfs: every ENOSPC must leave the last acknowledged state intact."""
    mnt = root / "full"
    reason = _mount_tmpfs(mnt, "1m")
    if reason:
        outcome.details["tmpfs ENOSPC"] = f"skipped: {reason}"
        return
    try:
        home, seen, i = mnt / "home", 0, 0
        store = FileStore(home, lock_timeout=5)
        store.create_workspace(WS)
        ids = [store.create(WS, task(description="first")).id]
        acked = take_view(store)
        while seen < failures and i < 20 * failures + 200:
            i += 1
            try:
                _fill_step(store, i, ids)
                acked = take_view(store)
            except AtlasTasksError as exc:
                seen += 1
                _after_failure(store, home, acked, exc, outcome.verdict)
                if len(ids) > 1:  # make a little room, as an operator would, and go on
                    with contextlib.suppress(AtlasTasksError):
                        store.delete(WS, ids.pop(0))
                    acked = take_view(store)
            outcome.runs += 1
        outcome.details["tmpfs ENOSPC"] = f"{seen} disk-full failures in {i} writes"
    finally:
        _umount(mnt)


def run_read_only(root: Path, outcome: Outcome) -> None:
    """Remount a tmpfs read-only under a store: every write raises EROFS naming a path, reads keep working."""
    mnt = root / "ro"
    reason = _mount_tmpfs(mnt, "8m")
    if reason:
        outcome.details["tmpfs EROFS"] = f"skipped: {reason}"
        return
    try:
        home = mnt / "home"
        make_base(home)
        before = take_view(FileStore(home))
        done = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            outcome.details["tmpfs EROFS"] = f"skipped: remount,ro refused: {done.stderr.strip()}"
            return
        store = FileStore(home, lock_timeout=5)
        for name in CORE_OPS:
            outcome.runs += 1
            try:
                OPS[name](store, {})
                outcome.verdict.add("write acknowledged on a read-only filesystem", name)
            except StorageError as exc:
                if exc.errno != errno.EROFS or not str(exc.path).startswith(str(home)):
                    outcome.verdict.add("read-only filesystem raised something else", repr(exc))
            except AtlasTasksError as exc:
                outcome.verdict.add("read-only filesystem raised something else", repr(exc))
        if take_view(FileStore(home)) != before:
            outcome.verdict.add("state changed on a read-only filesystem", str(home))
        outcome.details["tmpfs EROFS"] = f"{len(CORE_OPS)} writes refused"
    finally:
        _umount(mnt)


def job_fsize(job: dict[str, Any]) -> int:
    """Child: under RLIMIT_FSIZE, writes that would pass the limit must fail with EFBIG and change nothing."""
    weaken.apply(job.get("weaken"))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
    limit = int(job["limit"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    home = Path(job["home"])
    store = FileStore(home, lock_timeout=5)
    results: list[dict[str, Any]] = []
    for size in job["sizes"]:
        for name, write in _fsize_writes(size).items():
            results.append(_fsize_try(store, home, name, size, write))
    Path(job["result"]).write_text(json.dumps(results))
    return 0


def _fsize_writes(size: int) -> dict[str, Callable[[FileStore], object]]:
    return {
        "update": lambda s: s.modify(WS, "task-a", lambda t: setattr(t, "description", "d" * size)),
        "save_artifact": lambda s: s.save_artifact(WS, "task-a", "big.bin", b"b" * size),
        "save_versioned_artifact": lambda s: s.save_versioned_artifact(WS, "task-a", "big.json", b"v" * size),
        "append_log": lambda s: s.append_log(WS, "task-a", {"pad": "l" * size}),
    }


def _fsize_try(
    store: FileStore, home: Path, name: str, size: int, write: Callable[[FileStore], object]
) -> dict[str, Any]:
    before = take_view(store)
    result: dict[str, Any] = {"op": name, "size": size}
    try:
        write(store)
        result["ok"] = True
    except AtlasTasksError as exc:
        result["error"] = repr(exc)
        result["errno"] = getattr(exc, "errno", None)
        result["named"] = str(getattr(exc, "path", "")).startswith(str(home))
        result["unchanged"] = take_view(store) == before
    return result


def run_fsize(root: Path, server: ForkServer, variant: str | None, outcome: Outcome) -> None:
    """Writes past RLIMIT_FSIZE in a child: EFBIG, typed and named, and the state is unchanged."""
    home = root / "fsize" / "home"
    make_base(home)
    result = root / "fsize-result.json"
    job = {"kind": "fsize", "home": str(home), "limit": 16384, "sizes": [2000, 15000, 40000], "weaken": variant}
    job["result"] = str(result)
    status = server.run(job)
    if status != {"exit": 0}:
        outcome.verdict.add("RLIMIT_FSIZE child failed", str(status))
        return
    refused = 0
    for r in json.loads(result.read_text()):
        outcome.runs += 1
        if r.get("ok"):
            continue
        refused += 1
        if r["errno"] != errno.EFBIG or not r["named"]:
            outcome.verdict.add("file size limit raised something else", r["error"])
        if not r["unchanged"]:
            outcome.verdict.add("previous state changed by a failed write", f"{r['op']} {r['size']} bytes")
    verdict = check_home(home, [take_view(FileStore(home))], take_view(FileStore(home)), outside={})
    outcome.verdict.merge(verdict, "after the RLIMIT_FSIZE child")
    outcome.details["RLIMIT_FSIZE"] = f"{refused} writes refused with EFBIG"


def run_real(scale: Scale, variant: str | None) -> Outcome:
    """Real disk-full, file-size-limit and read-only faults."""
    outcome = Outcome("F-real", variant or "store", unit="real faulty writes")
    with timed(outcome), scratch("freal") as root, ForkServer() as server:
        run_fsize(root, server, variant, outcome)
        with weaken.weakened(variant):
            run_disk_full(root, 6 if scale == "fast" else 40, outcome)
            if scale == "full":
                run_read_only(root, outcome)
    return outcome
