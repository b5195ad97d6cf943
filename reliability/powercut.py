"""T1c, real power cuts: loop-mounted ext4, xfs and btrfs images shut down mid-workload, remounted, checked.

A child process runs an agent's loop on the mounted store (create a task, then per step: a log line, a versioned
artifact, a checkpoint, and every third step a bump of an older task). After each store call *returns* it reads
CLOCK_MONOTONIC and appends ``{op, ..., t}`` to an ack file on another filesystem. At a random moment the parent
reads the same clock (``cut_ns``) and then cuts the power itself with FS_IOC_SHUTDOWN and the log-not-flushed flag
(the ioctl ``xfs_io -x -c shutdown`` issues; EXT4_GOING_FLAGS_NOLOGFLUSH / XFS_FSOP_GOING_FLAGS_NOLOGFLUSH: whatever
the filesystem has not made durable is lost, the xfstests power-cut method). It SIGKILLs the child, unmounts and
remounts (journal replay), and checks that every task reads, the doctor cleans every leftover, and every
acknowledged item is there. The store keeps growing through the next cuts on the same filesystem.

**Acknowledged** means: the call returned before the cut began (``t < cut_ns``; ``t`` is read after the return, so
the order is certain). A call still in flight when the cut lands is not acknowledged, whatever it returns: after a
shutdown without log flush a call can finish from cached state, and a real power cut would have killed the caller
before it saw that success. Such late returns are counted apart, split by whether they came while the ioctl ran or
after it had returned, with how many of them the cut undid. (An earlier version of this campaign counted them as
acknowledged and reported "losses" on ext4 and xfs. With the store as it was then, xfs: 100 cuts, 12,079 calls
acknowledged, 0 lost; 12 late returns, 3 of them undone: an artifact and two checkpoints, each ending in a
directory fsync.)

One late return is not an artefact: on xfs a directory fsync issued after the shutdown returns 0
(``xfs_dir_fsync`` forces the log only while the inode is pinned, and the shutdown unpinned it), and the rename it
was to make durable is gone after remount. xfs also shuts itself down on a metadata or log I/O error, and then the
caller lives on and believes it. The store fstat()s after every fsync (xfs getattr fails with EIO once shut down);
test_regressions.py cuts the power exactly there on each filesystem.

FS_IOC_SHUTDOWN keeps everything the filesystem had already sent to the device, flushed or not: it models a disk
whose write cache survives. ext4 and xfs therefore run a second time with their image in a file on an ext4
filesystem whose power is cut instead (``(volatile cache)``): the inner device loses what it had not flushed (its
writes sit in the outer page cache, or in outer blocks not yet committed, until a flush/FUA makes the loop driver
fsync the image file), and keeps an arbitrary part of the rest, as a disk with a volatile write cache does. btrfs
gained FS_IOC_SHUTDOWN only after Linux 6.18; where the ioctl is missing, btrfs is only cut this way. Where there is
no root, no loop device or no mount, the campaign is skipped with the reason, and not counted as passed.
"""

# ruff: noqa: S311 - seeded PRNGs make the cuts reproducible; nothing here is secret

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore
from atlas_tasks.errors import AtlasTasksError
from reliability import weaken
from reliability.forkserver import ForkServer
from reliability.invariants import check_doctor, check_readers
from reliability.outcome import Outcome, Scale, Verdict, timed
from reliability.scratch import scratch
from reliability.storm import Acks
from reliability.view import leftovers
from reliability.workload import WS, task

FILESYSTEMS = ("ext4", "xfs", "btrfs")
# Each filesystem cut by its own FS_IOC_SHUTDOWN, then ext4 and xfs again on a disk with a volatile write cache.
TARGETS = (("ext4", False), ("xfs", False), ("btrfs", False), ("ext4", True), ("xfs", True))
VOLATILE_SUFFIX = " (volatile cache)"
SIZES = {"ext4": "128M", "xfs": "320M", "btrfs": "256M"}
FS_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
NOLOGFLUSH = 2
CONTROLS = ("no-fsync",)


class Unavailable(Exception):
    """This machine cannot run the campaign here (the message says why)."""


def _sh(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Unavailable(f"`{' '.join(args[:3])}` failed: {(done.stderr or done.stdout).strip()[:200]}")
    return done.stdout.strip()


def shutdown(mnt: Path) -> None:
    """Cut the power of the filesystem at ``mnt``: FS_IOC_SHUTDOWN, log not flushed (``xfs_io -x -c shutdown``).

    Issued from this process, so that nothing (no fork/exec of xfs_io) lies between reading the clock and the cut.
    """
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", NOLOGFLUSH))
    finally:
        os.close(fd)


def _supports_shutdown(mnt: Path) -> bool:
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # Asking with an invalid flag: EINVAL means the ioctl exists, ENOTTY that the filesystem lacks it.
        fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", 0xFF))
    except OSError as exc:
        return exc.errno != errno.ENOTTY
    finally:
        os.close(fd)
    return True


def _require(fs: str) -> None:
    if os.geteuid() != 0:
        raise Unavailable("needs root for loop devices and mount")
    for tool in ("losetup", "mount", "umount", f"mkfs.{fs}"):
        if not shutil.which(tool):
            raise Unavailable(f"{tool} is not installed")
    with open("/proc/filesystems") as known:
        if fs not in known.read().split():
            raise Unavailable(f"the kernel has no {fs}")


class Disk:
    """A filesystem image on a loop device, with a power switch."""

    def __init__(self, root: Path, fs: str) -> None:
        self.fs, self.image, self.mnt = fs, root / f"{fs}.img", root / f"{fs}-mnt"
        self.mounted = False

    def make(self) -> None:
        _require(self.fs)
        self.mnt.mkdir(exist_ok=True)
        _sh("truncate", "-s", SIZES[self.fs], str(self.image))
        _sh(f"mkfs.{self.fs}", *_MKFS_QUIET[self.fs], str(self.image))
        self.mount()

    def mount(self) -> None:
        _sh("mount", "-o", "loop", str(self.image), str(self.mnt))
        self.mounted = True

    def unmount(self) -> None:
        if self.mounted:
            _sh("umount", str(self.mnt))
            self.mounted = False

    def cut(self) -> None:
        shutdown(self.mnt)


_MKFS_QUIET = {"ext4": ["-q", "-F"], "xfs": ["-q", "-f"], "btrfs": ["-q", "-f"]}


class NestedDisk(Disk):
    """A btrfs image inside an ext4 filesystem: the power is cut on the ext4, under the btrfs loop device."""

    def __init__(self, root: Path, fs: str) -> None:
        super().__init__(root, fs)
        self.outer = Disk(root, "ext4")
        self.outer.image, self.outer.mnt = root / "outer.img", root / "outer-mnt"
        self.loop = ""

    def make(self) -> None:
        _require(self.fs)
        _require("ext4")
        self.outer.mnt.mkdir(exist_ok=True)
        self.mnt.mkdir(exist_ok=True)
        _sh("truncate", "-s", "400M", str(self.outer.image))
        _sh("mkfs.ext4", "-q", "-F", str(self.outer.image))
        self.outer.mount()
        self.image = self.outer.mnt / f"{self.fs}.img"
        _sh("truncate", "-s", SIZES[self.fs], str(self.image))
        _sh(f"mkfs.{self.fs}", *_MKFS_QUIET[self.fs], str(self.image))
        self._attach()

    def _attach(self) -> None:
        self.loop = _sh("losetup", "-f", "--show", str(self.image))
        _sh("mount", self.loop, str(self.mnt))
        self.mounted = True

    def mount(self) -> None:
        self.outer.mount()
        self._attach()

    def unmount(self) -> None:
        if self.mounted:
            _sh("umount", str(self.mnt))
            self.mounted = False
        if self.loop:  # detach before the outer unmount: the loop device holds the image file open
            _sh("losetup", "-d", self.loop)
            self.loop = ""
        self.outer.unmount()

    def cut(self) -> None:
        shutdown(self.outer.mnt)


def open_disk(root: Path, fs: str, *, volatile: bool = False) -> tuple[Disk, str]:
    """Make and mount a disk for ``fs``; (disk, how the power is cut). Raises Unavailable with the reason.

    ``volatile``: the image inside an ext4 whose power is cut (a disk with a volatile write cache), even where
    ``fs`` has FS_IOC_SHUTDOWN of its own.
    """
    if not volatile:
        disk = Disk(root, fs)
        disk.make()
        if _supports_shutdown(disk.mnt):
            return disk, "FS_IOC_SHUTDOWN"
        disk.unmount()
    nested = NestedDisk(root, fs)
    try:
        nested.make()
    except Unavailable as exc:
        with contextlib.suppress(Unavailable):
            nested.unmount()
        why = "" if volatile else f"{fs} has no FS_IOC_SHUTDOWN on this kernel, and "
        raise Unavailable(f"{why}{exc}") from None
    return nested, "FS_IOC_SHUTDOWN of the ext4 holding its image (unflushed writes lost)"


# -- the workload (child) ---------------------------------------------------------------------------------------------
class TimedAcks(Acks):
    """Acks stamped with CLOCK_MONOTONIC (one clock for all processes), read after the store call returned."""

    def __call__(self, **record: Any) -> None:
        super().__call__(t=time.monotonic_ns(), **record)


def job_agent(job: dict[str, Any]) -> int:
    """Child: one agent run (create, then steps of log line, artifact, checkpoint) until the power goes."""
    weaken.apply(job.get("weaken"))
    store = FileStore(job["home"], lock_timeout=5)
    acks = TimedAcks(job["ack"])
    try:
        _agent_steps(store, acks, job)
    except AtlasTasksError:
        return 3  # the filesystem went down under us (EIO): the parent cut the power
    return 0


def _agent_steps(store: FileStore, acks: Acks, job: dict[str, Any]) -> None:
    rng = random.Random(job["seed"])
    tid = store.create(WS, task(description=f"cut {job['round']}")).id
    acks(op="create", id=tid)
    for step in range(1, 10_000):
        store.append_log(WS, tid, {"event": "step", "step": step})
        acks(op="log", id=tid, step=step)
        data = rng.randbytes(rng.randint(100, 20_000))
        name = store.save_versioned_artifact(WS, tid, "step.bin", data)
        acks(op="artifact", id=tid, name=name, sha=hashlib.sha256(data).hexdigest())
        store.modify(WS, tid, lambda t, step=step: t.metadata.__setitem__("done", step))
        acks(op="checkpoint", id=tid, step=step)
        if job["older"] and step % 3 == 0:
            old = rng.choice(job["older"])
            bumped = store.modify(WS, old, lambda t: t.metadata.__setitem__("bumps", t.metadata.get("bumps", 0) + 1))
            acks(op="bump", id=old, bumps=bumped.metadata["bumps"])


# -- the parent -------------------------------------------------------------------------------------------------------
def read_acks(ack: Path, cut_ns: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The child's acks split into (returned before the cut began, returned after it: not acknowledged)."""
    before, late = [], []
    for line in ack.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line the SIGKILL cut short: written after the cut, so not an acknowledgement
            continue
        (before if record["t"] < cut_ns else late).append(record)
    return before, late


def present(store: FileStore, r: dict[str, Any]) -> bool:
    """Is the item of ack record ``r`` on the remounted disk?"""
    try:
        if r["op"] == "create":
            store.get(WS, r["id"])
        elif r["op"] == "log":
            return r["step"] in {x.get("step") for x in store.read_log(WS, r["id"])}
        elif r["op"] == "artifact":
            return bool(hashlib.sha256(store.get_artifact(WS, r["id"], r["name"])).hexdigest() == r["sha"])
        elif r["op"] in ("checkpoint", "bump"):
            key, want = ("done", r["step"]) if r["op"] == "checkpoint" else ("bumps", r["bumps"])
            return bool(store.get(WS, r["id"]).metadata.get(key, 0) >= want)
    except AtlasTasksError:
        return False
    return True


class Ledger:
    """Everything acknowledged so far, across all cuts; and the late returns (not acknowledged) for the record."""

    def __init__(self) -> None:
        self.tasks: list[str] = []
        self.logs: dict[str, set[int]] = defaultdict(set)
        self.artifacts: dict[str, dict[str, str]] = defaultdict(dict)
        self.done: dict[str, int] = defaultdict(int)
        self.bumps: dict[str, int] = defaultdict(int)
        self.acked = 0
        self.late: Counter[str] = Counter()
        self.late_lost: Counter[str] = Counter()

    def take(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            self.acked += 1
            if r["op"] == "create":
                self.tasks.append(r["id"])
            elif r["op"] == "log":
                self.logs[r["id"]].add(r["step"])
            elif r["op"] == "artifact":
                self.artifacts[r["id"]][r["name"]] = r["sha"]
            elif r["op"] == "checkpoint":
                self.done[r["id"]] = max(self.done[r["id"]], r["step"])
            elif r["op"] == "bump":
                self.bumps[r["id"]] = max(self.bumps[r["id"]], r["bumps"])

    def note_late(self, store: FileStore, late: list[dict[str, Any]], cut_done_ns: int) -> None:
        """Calls that returned success after the cut began: not acknowledged, but how many did the cut undo?

        Counted by when they returned: while the shutdown ioctl ran, or after it had returned (the filesystem was
        down by then, so a success then came from state the cut was discarding).
        """
        for r in late:
            when = "during the ioctl" if r["t"] < cut_done_ns else "after the ioctl"
            self.late[when] += 1
            if not present(store, r):
                self.late_lost[f"{r['op']} {when}"] += 1

    def verify(self, store: FileStore, v: Verdict) -> None:
        """Every acknowledged task, checkpoint, log line and artifact is on the remounted disk.

        A loss is counted once: the ledger then forgets the lost item (and lowers a lost checkpoint to what
        survived), so later cuts check only what is really on disk.
        """
        for tid in list(self.tasks):
            try:
                t = store.get(WS, tid)
            except AtlasTasksError as exc:
                v.add("acknowledged task unreadable or lost", repr(exc))
                v.lost += 1
                self.tasks.remove(tid)
                continue
            v.lost += self._missing(store, tid, t.metadata, v)

    def _missing(self, store: FileStore, tid: str, meta: dict[str, Any], v: Verdict) -> int:
        lost = 0
        for key, acked in (("done", self.done), ("bumps", self.bumps)):
            if meta.get(key, 0) < acked[tid]:
                v.add("acknowledged checkpoint lost", f"{tid}: {key} {meta.get(key, 0)} < {acked[tid]}")
                acked[tid] = meta.get(key, 0)
                lost += 1
        steps = {r.get("step") for r in store.read_log(WS, tid)}
        for step in sorted(self.logs[tid] - steps):
            v.add("acknowledged log line lost", f"{tid} step {step}")
            self.logs[tid].discard(step)
            lost += 1
        for name, sha in list(self.artifacts[tid].items()):
            try:
                ok = hashlib.sha256(store.get_artifact(WS, tid, name)).hexdigest() == sha
            except AtlasTasksError:
                ok = False
            if not ok:
                v.add("acknowledged artifact lost or damaged", f"{tid} {name}")
                del self.artifacts[tid][name]
                lost += 1
        return lost


def _one_cut(disk: Disk, server: ForkServer, ledger: Ledger, job: dict[str, Any], rng: random.Random) -> Verdict:
    ack = Path(job["ack"])
    ack.unlink(missing_ok=True)
    pid = server.start(job | {"older": ledger.tasks[-5:]})
    deadline = time.monotonic() + 60  # a loaded machine may take a while to fork and create; not a measurement
    while time.monotonic() < deadline and not (ack.exists() and ack.stat().st_size):
        time.sleep(0.002)
    time.sleep(rng.uniform(0.01, 0.35))
    cut_ns = time.monotonic_ns()  # every call that returned before this instant is acknowledged
    disk.cut()
    cut_done_ns = time.monotonic_ns()
    server.kill(pid)
    server.wait(pid)
    disk.unmount()
    disk.mount()
    verdict = Verdict()
    acked, late = read_acks(ack, cut_ns)
    ledger.take(acked)
    home = disk.mnt / "home"
    store = FileStore(home, lock_timeout=5)
    ledger.verify(store, verdict)
    ledger.note_late(store, late, cut_done_ns)
    check_readers(store, verdict)
    check_doctor(store, home, leftovers(home), verdict)
    return verdict


def _counts(counter: Counter[str]) -> str:
    return "; ".join(f"{n} {what}" for what, n in sorted(counter.items())) or "0"


def run_fs(fs: str, cuts: int, variant: str | None, seed: int = 3, *, volatile: bool = False) -> Outcome:
    """``cuts`` power cuts on one filesystem (``volatile``: on a disk with a volatile write cache)."""
    outcome = Outcome(f"T1c {fs}{VOLATILE_SUFFIX if volatile else ''}", variant or "store", unit="power cuts")
    rng = random.Random(seed)
    with timed(outcome), scratch(f"t1c-{fs}", fast_fs=False) as root, ForkServer() as server:
        disk: Disk | None = None
        try:
            disk, how = open_disk(root, fs, volatile=volatile)
            inside = " in a 400M ext4 image" if isinstance(disk, NestedDisk) else ""
            outcome.details["disk"] = f"{SIZES[fs]} {fs} image{inside} on a loop device"
            outcome.details["cut"] = how
            FileStore(disk.mnt / "home").create_workspace(WS)
            ledger = Ledger()
            for i in range(cuts):
                job = {"kind": "agent", "home": str(disk.mnt / "home"), "ack": str(root / "ack"), "round": i}
                job |= {"seed": seed * 1000 + i, "weaken": variant}
                outcome.verdict.merge(_one_cut(disk, server, ledger, job, rng), f"{fs} cut {i}")
                outcome.runs += 1
            outcome.details |= {
                "acknowledged calls": ledger.acked,
                "acknowledged steps": sum(ledger.done.values()),
                "tasks on the disk at the end": len(ledger.tasks),
                "late returns (success after the cut began: not acknowledged)": _counts(ledger.late),
                "late returns the cut undid": _counts(ledger.late_lost),
            }
        except Unavailable as exc:
            outcome.skipped = str(exc)
        finally:
            if disk is not None:
                with contextlib.suppress(Unavailable):
                    disk.unmount()
    return outcome


def run(scale: Scale = "full", variant: str | None = None) -> list[Outcome]:
    """Every target: 100 cuts each at full scale (20 for a negative control), 3 in the fast subset."""
    cuts = 3 if scale == "fast" else (100 if variant is None else 20)
    return [run_fs(fs, cuts, variant, volatile=volatile) for fs, volatile in TARGETS]
