"""Write locks: ``flock`` through the filelock library, re-entrant per thread, never deleted.

Why flock and not fcntl/lockf: a POSIX record lock silently vanishes when *any* descriptor of the file is closed
by the process, and threads share it. flock belongs to the open file description, so each acquisition (each new
descriptor) excludes every other one, across threads and processes alike — and it is what the Go ATLAS takes on
``task.json.lock``, so Go and Python writers exclude each other.

Lock files are never unlinked: deleting a lock file while another process waits on it lets two processes hold
"the" lock at once (one on the old inode, one on the new).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import filelock

from atlas_tasks.errors import LockTimeoutError

_held = threading.local()


def _counts() -> dict[str, int]:
    counts: dict[str, int] | None = getattr(_held, "counts", None)
    if counts is None:
        counts = _held.counts = {}
    return counts


@contextmanager
def hold(path: str, what: str, timeout: float, poll_interval: float = 0.002) -> Iterator[None]:
    """Hold the flock on ``path`` (created 0600 if missing) for the block; re-entrant within one thread.

    Raises:
        LockTimeoutError: not obtained within ``timeout`` seconds.
    """
    counts = _counts()
    if counts.get(path):
        counts[path] += 1
        try:
            yield
        finally:
            counts[path] -= 1
        return
    lock = filelock.FileLock(
        path,
        timeout=timeout,
        mode=0o600,
        fallback_to_soft=False,
        poll_interval=poll_interval,
    )
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockTimeoutError(what, path, timeout) from None
    counts[path] = 1
    try:
        yield
    finally:
        del counts[path]
        lock.release()


def try_hold_free(path: str) -> bool:
    """True if nobody holds the lock on ``path`` right now (it is taken and released at once)."""
    if _counts().get(path):
        return False
    lock = filelock.FileLock(path, timeout=0, mode=0o600, fallback_to_soft=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        return False
    lock.release()
    return True


def is_held_here(path: str) -> bool:
    """True if this thread holds the lock on ``path``."""
    return bool(_counts().get(path))
