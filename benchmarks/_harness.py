"""The runner's machinery: timing, statistics, rows, the scratch directory and what the machine is.

Timing rules (the same for every row):

* every candidate of a row (ours, and the floor or peer it is compared with) runs in the same process, in the same
  run, **interleaved** round by round (ours, floor, floor, ours, ...), so load from other processes on the machine
  lands on both sides of a ratio instead of on one;
* a few warm-up rounds are run and thrown away first;
* each row has a round count and a time budget: it stops at the round count, or when the budget is spent once the
  minimum number of rounds is in;
* figures are medians; p90/p99 are reported where there are enough rounds to mean something (p99 needs >= 100).
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import io
import math
import os
import platform
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float] | tuple[float, ...], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of already sorted values; q in [0, 100]."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class Stats:
    """Samples of one measured quantity (seconds unless a row says otherwise)."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: list[float] | tuple[float, ...]) -> Stats:
        return cls(tuple(sorted(samples)))

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p90(self) -> float:
        return percentile(self.samples, 90) if self.n >= 10 else math.nan

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99) if self.n >= 100 else math.nan

    @property
    def max(self) -> float:
        return self.samples[-1] if self.samples else math.nan

    @property
    def min(self) -> float:
        return self.samples[0] if self.samples else math.nan


def measure(
    candidates: dict[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 3,
    min_rounds: int = 5,
    budget: float = 10.0,
    setup: Callable[[], object] | None = None,
) -> dict[str, Stats]:
    """Time each candidate ``rounds`` times, interleaved, after ``warmup`` untimed rounds.

    The order alternates every round (A B, B A, ...). ``setup`` (untimed) runs before every round. The loop stops
    early once ``budget`` seconds are spent and ``min_rounds`` rounds are in.
    """
    names = list(candidates)
    min_rounds = min(min_rounds, rounds)
    for _ in range(warmup):
        if setup is not None:
            setup()
        for name in names:
            candidates[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    clock = time.perf_counter
    started = clock()
    for i in range(rounds):
        if setup is not None:
            setup()
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            fn = candidates[name]
            t0 = clock()
            fn()
            samples[name].append(clock() - t0)
        if i + 1 >= min_rounds and clock() - started > budget:
            break
    return {name: Stats.of(values) for name, values in samples.items()}


# ---------------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------------

OK = "ok"
MISSING_API = "missing API"
NOT_INSTALLED = "peer not installed"
ERROR = "error"
SKIPPED = "skipped"


@dataclass
class Row:
    """One line of the table: our figure, the floor or peer measured beside it, the ratio and the target."""

    key: str
    title: str
    target: str
    ours: Stats | None = None
    ref: Stats | None = None
    ref_label: str = ""
    ratio: float | None = None
    met: bool | None = None
    status: str = OK
    note: str = ""
    #: Overrides for rows whose figures are not a time (throughput, memory).
    ours_text: str | None = None
    ref_text: str | None = None
    #: A cProfile or import-time excerpt, filled in when the row misses its target (and profiling is on).
    profile: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def missing(self, what: str) -> Row:
        self.status = MISSING_API
        self.note = f"missing API: {what}"
        self.met = None
        return self


def fmt_time(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "–"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_ratio(ratio: float | None) -> str:
    return "–" if ratio is None or math.isnan(ratio) else f"{ratio:.2f}×"


def fmt_met(row: Row) -> str:
    if row.status == MISSING_API:
        return "missing API"
    if row.status == NOT_INSTALLED:
        return "peer not installed"
    if row.status == ERROR:
        return "ERROR"
    if row.status == SKIPPED:
        return "skipped"
    if row.met is None:
        return "(reported)"
    return "yes" if row.met else "**NO**"


def ours_cell(row: Row) -> str:
    if row.ours_text is not None:
        return row.ours_text
    return fmt_time(row.ours.median) if row.ours else "–"


def ref_cell(row: Row) -> str:
    if row.ref_text is not None:
        return row.ref_text
    if row.ref is None:
        return row.ref_label or "–"
    return f"{fmt_time(row.ref.median)} ({row.ref_label})" if row.ref_label else fmt_time(row.ref.median)


# ---------------------------------------------------------------------------------------------------------------
# Scale and context
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How big and how long: FULL is what ``make bench`` runs; QUICK keeps every code path alive in seconds."""

    name: str
    #: Multiplies every time budget.
    time_factor: float = 1.0
    #: Multiplies every round count (at least the minimum stays).
    round_factor: float = 1.0
    task_bytes: int = 10_000
    list_tasks: int = 10_000
    iter_small: int = 10_000
    iter_large: int = 100_000
    artifact_files: int = 1_000
    versions: int = 1_000
    writers: int = 8
    writer_ops: int = 40
    throughput_seconds: float = 3.0
    cli_tasks: int = 100
    cli_runs: int = 11
    peer_list: int = 10_000

    #: At most this many warm-up rounds (QUICK: 1).
    max_warmup: int = 50

    def rounds(self, n: int, minimum: int = 3) -> int:
        return max(minimum, int(n * self.round_factor))

    def warmup(self, n: int) -> int:
        return min(n, self.max_warmup)

    def budget(self, seconds: float) -> float:
        return seconds * self.time_factor


FULL = Scale("full")
QUICK = Scale(
    "quick",
    time_factor=0.02,
    round_factor=0.02,
    task_bytes=10_000,
    list_tasks=60,
    iter_small=20,
    iter_large=200,
    artifact_files=30,
    versions=30,
    writers=2,
    writer_ops=4,
    throughput_seconds=0.3,
    cli_tasks=5,
    cli_runs=1,
    peer_list=40,
    max_warmup=1,
)


class Context:
    """What every benchmark function gets: the scale, a scratch root on a real disk, shared fixtures, a logger."""

    def __init__(self, scale: Scale, root: Path, *, profile: bool = True, verbose: bool = True) -> None:
        self.scale = scale
        self.root = root
        self.profile = profile
        self.verbose = verbose
        self.fixtures: dict[str, Any] = {}
        self._counter = 0

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"  · {message}", file=sys.stderr, flush=True)

    def fresh_dir(self, name: str) -> Path:
        self._counter += 1
        path = self.root / f"{self._counter:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def maybe_profile(
        self,
        row: Row,
        fn: Callable[[], object],
        *,
        calls: int,
        budget: float = 4.0,
        force: bool = False,
        top: int = 14,
    ) -> None:
        """cProfile ``fn`` if the row missed its target; the excerpt goes into the report.

        At most ``calls`` calls and about ``budget`` seconds (cProfile roughly doubles Python time), at least one;
        a call much longer than the budget is not profiled unless ``force``.
        """
        if not self.profile or row.met is not False:
            return
        per_call = row.ours.median if row.ours is not None else 0.0
        if 2 * per_call > 3 * budget and not force:
            row.profile = f"not profiled here: {per_call:.1f} s per call is beyond this row's profiling budget"
            return
        if per_call > 0:
            calls = max(1, min(calls, int(budget / (2 * per_call))))
        row.profile = profile_text(fn, calls=calls, top=top)


def profile_text(fn: Callable[[], object], *, calls: int, top: int = 14) -> str:
    """The top functions by own time and by cumulative time of ``calls`` calls of ``fn``, as plain text."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    total = stats.total_tt  # type: ignore[attr-defined]
    out.write(f"{calls} calls, {total / calls * 1e3:.3f} ms/call under cProfile (cProfile inflates Python time)\n")
    out.write("-- by own time --\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write("-- by cumulative time --\n")
    stats.sort_stats("cumulative").print_stats(top)
    text = out.getvalue()
    # pstats prints a long preamble and absolute paths; keep the tables only.
    keep = [line.rstrip() for line in text.splitlines() if line.strip() and "Ordered by" not in line]
    return "\n".join(keep)


# ---------------------------------------------------------------------------------------------------------------
# Where to measure: a real disk, never tmpfs
# ---------------------------------------------------------------------------------------------------------------

MEMORY_FILESYSTEMS = {"tmpfs", "ramfs", "devtmpfs"}


def mount_of(path: Path) -> tuple[str, str, str]:
    """(mount point, filesystem type, device) of the filesystem holding ``path``, from /proc/mounts."""
    real = str(path.resolve())
    best = ("/", "?", "?")
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                device, mount, fstype, *_ = line.split()
                mount = mount.replace("\\040", " ")
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[0]):
                    best = (mount, fstype, device)
    except OSError:
        pass
    return best


def pick_root(requested: str | None) -> Path:
    """The parent directory for scratch homes: ``requested``, ``$ATLAS_BENCH_DIR`` or /var/tmp (disk-backed).

    Raises:
        SystemExit: the directory is on tmpfs/ramfs, where fsync costs nothing and every figure would lie.
    """
    parent = Path(requested or os.environ.get("ATLAS_BENCH_DIR") or "/var/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    _, fstype, _ = mount_of(parent)
    if fstype in MEMORY_FILESYSTEMS:
        raise SystemExit(
            f"benchmarks: {parent} is on {fstype}, where fsync is free; pass --dir on a disk-backed filesystem"
        )
    return parent


@contextlib.contextmanager
def scratch_root(parent: Path, *, keep: bool = False) -> Iterator[Path]:
    root = parent / f"atlas-bench-{os.getpid()}-{int(time.time())}"
    root.mkdir(mode=0o700)
    try:
        yield root
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# What the machine is
# ---------------------------------------------------------------------------------------------------------------

PACKAGES = (
    "atlas-tasks",
    "pydantic",
    "pydantic-core",
    "filelock",
    "typer",
    "rich",
    "langgraph-checkpoint-sqlite",
    "langgraph-checkpoint",
    "diskcache",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def memory_total() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    import sqlite3

    found["sqlite (library)"] = sqlite3.sqlite_version
    return found


def git_revision(repo: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip() or "?"


def machine(root: Path) -> dict[str, str]:
    mount, fstype, device = mount_of(root)
    uname = platform.uname()
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": memory_total(),
        "kernel": f"{uname.system} {uname.release} {uname.machine}",
        "filesystem": f"{fstype} on {device}, mounted at {mount} (scratch dir {root.parent})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
