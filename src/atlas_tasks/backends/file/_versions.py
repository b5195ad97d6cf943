"""Versioned artifacts: which name the next version claims (``name.N.ext``; the claim itself is link + EEXIST).

The version hint: an extended attribute of the directory holding the versions, ``user.atlas-tasks.v.<leaf>``, the
number of the last version saved there. Only a cache, never trusted: a save uses it only if that version exists
(one stat), and the version is still claimed with link() + EEXIST, so a stale, lost or planted hint costs a
rescan, never an overwrite. An attribute rather than a file: it is metadata of the directory the claim has just
changed anyway (no data block for the journal commit to flush, no file to list, copy or check), read and written
with one call on the walked directory's descriptor. Set without fsync (nothing is acknowledged on it) and with
plain os calls, outside the durable protocols the _fs.ops hooks watch; where attributes are unsupported (or the
name too long) there is no hint and a fresh store scans, as it always did.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from atlas_tasks import names as N
from atlas_tasks._fs import ops
from atlas_tasks._fs.dirs import Dir
from atlas_tasks.backends.file._layout import exists

HINT_PREFIX = "user.atlas-tasks.v."


def read_hint(d: Dir, leaf: str) -> int | None:
    """The hinted last version of ``leaf`` in ``d``, or None (no attribute, or not a positive number)."""
    try:
        raw = os.getxattr(d.fd, HINT_PREFIX + leaf)
    except (OSError, ValueError):
        return None
    if not (0 < len(raw) <= 20 and raw.isdigit()):
        return None
    version = int(raw)
    return version if version > 0 else None


def write_hint(d: Dir, leaf: str, version: int) -> None:
    """Record ``version`` as the last one of ``leaf`` in ``d`` (best effort)."""
    with contextlib.suppress(OSError, ValueError):
        os.setxattr(d.fd, HINT_PREFIX + leaf, b"%d" % version)


def candidates(adir: Dir, leaf: str, cached: int | None) -> Iterator[str]:
    """Names for the next version of ``leaf`` in ``adir``, first the likely one, then an endless fresh stream.

    ``cached`` is this process's next version number for it (None: not known here).
    """
    # O(1) per save: start from where this process left off. On a collision (another process saved, or the
    # process is new), scan once for the highest existing version, so a deleted number is never reused
    # below a higher one and retries stay bounded.
    if cached is None:
        # A fresh store (a resumed run, a CLI call): the hint left by the last save, validated the same way.
        hinted = read_hint(adir, leaf)
        cached = None if hinted is None else hinted + 1
    if cached is not None and exists(adir, N.versioned_name(leaf, cached - 1)):
        # One stat proves the cache still describes this directory (the task may have been deleted and
        # re-created under the same id since, by us or by another process).
        yield N.versioned_name(leaf, cached)
    highest = 0
    for entry in ops.scandir(adir.fd, adir.path):
        version = N.version_of(entry.name, leaf)
        if version is not None and version > highest:
            highest = version
    n = highest + 1
    while True:
        yield N.versioned_name(leaf, n)
        n += 1


__all__ = ["HINT_PREFIX", "candidates", "read_hint", "write_hint"]
