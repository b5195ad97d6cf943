"""Scratch directories for the campaigns.

Campaigns that model crashes (rather than measure a disk) run on tmpfs when there is one: their fsyncs cost nothing
there and the crash states they check are made by the model or by killing processes, not by the disk. Campaigns
that contend on real locks and appends use the ordinary temp directory (a real disk). ``RELIABILITY_TMP`` overrides
both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SHM = Path("/dev/shm")  # noqa: S108 - a tmpfs we only create private mkdtemp directories in


def _base(fast_fs: bool) -> str | None:
    chosen = os.environ.get("RELIABILITY_TMP")
    if chosen:
        return chosen
    if fast_fs and SHM.is_dir() and os.access(SHM, os.W_OK):
        return str(SHM)
    return None


@contextmanager
def scratch(prefix: str, *, fast_fs: bool = True) -> Iterator[Path]:
    """A fresh directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"atlas-rel-{prefix}-", dir=_base(fast_fs)))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fs_type(path: Path) -> str:
    """The filesystem type holding ``path`` (from /proc/mounts), for the report."""
    best, kind = "", "?"
    target = str(path.resolve())
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                inside = len(fields) > 2 and (target == fields[1] or target.startswith(fields[1].rstrip("/") + "/"))
                if inside and len(fields[1]) > len(best):
                    best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind
