"""Write locks: ``flock`` through the filelock library, re-entrant per thread, never deleted.

Why flock and not fcntl/lockf: a POSIX record lock silently vanishes when *any* descriptor of the file is closed
by the process, and threads share it. flock belongs to the open file description, so each acquisition (each new
descriptor) excludes every other one, across threads and processes alike — and it is what the Go ATLAS takes on
``task.json.lock``, so Go and Python writers exclude each other.

Lock files are never unlinked: deleting a lock file while another process waits on it lets two processes hold
"the" lock at once (one on the old inode, one on the new).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
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


class Lease:
    """An exclusive flock held for as long as a run lives; the OS releases it when the holder dies.

    The lease file is never deleted (see the module docstring); while held it contains the holder's description
    (pid, host, start time) so others can name it. The descriptor is close-on-exec, so commands a runner starts
    do not keep its lease alive after it died.
    """

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    def release(self) -> None:
        if self.fd >= 0:
            # Clear the holder description first so nobody reads a stale owner after we are gone.
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = -1


def _open_lease_file(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)


def try_lease(path: str, holder: bytes) -> Lease | None:
    """Take the lease on ``path`` and write ``holder`` into it; None (and no change) if someone holds it."""
    fd = _open_lease_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder, 0)
    except BaseException:
        os.close(fd)
        raise
    return Lease(fd, path)


def lease_holder(path: str) -> bytes | None:
    """The holder's description if the lease on ``path`` is held (by anyone, this process included), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 4096, 0) or b"{}"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
