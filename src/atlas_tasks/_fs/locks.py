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
import errno
import fcntl
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import filelock

from atlas_tasks._fs import ops
from atlas_tasks.errors import LockTimeoutError

_held = threading.local()


def _counts() -> dict[str, int]:
    counts: dict[str, int] | None = getattr(_held, "counts", None)
    if counts is None:
        counts = _held.counts = {}
    return counts


def _open_lock_file(path: str, dir_fd: int | None) -> int:
    """Open (creating) the lock file; with ``dir_fd``, its last component relative to that directory.

    The store always passes the descriptor of a directory it reached by walking from its home with O_NOFOLLOW, so
    a symlink planted at the lock's directory (or a directory swapped for one after the walk) cannot make us create
    a lock file outside the home; O_NOFOLLOW on the file itself refuses a symlinked lock file.
    """
    return _open_regular(path, os.O_RDWR | os.O_CREAT, dir_fd)


def _open_existing(path: str, dir_fd: int | None) -> int:
    return _open_regular(path, os.O_RDONLY, dir_fd)


def _open_regular(path: str, mode: int, dir_fd: int | None) -> int:
    """Open a lock or lease file without blocking on a FIFO or device planted there, and refuse anything irregular.

    O_NONBLOCK stays set: flock's waiting is chosen by LOCK_NB, not by the descriptor, and a regular file's
    pread/pwrite ignore the flag (open(2)).
    """
    flags = mode | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        if dir_fd is None:
            fd = os.open(path, flags, 0o600)
        else:
            fd = os.open(path.rpartition("/")[2], flags, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        exc.filename = path  # the error names the lock file's full path, not the name opened relative to dir_fd
        raise
    try:
        ops.require_regular(os.fstat(fd), path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _wait_in_kernel(fd: int, timeout: float, operation: int = fcntl.LOCK_EX) -> bool:
    """Block in flock(``operation``, LOCK_EX by default) on a helper thread for at most ``timeout`` seconds.

    True once the lock is ours.

    Why not a polling loop: sleeping between LOCK_NB attempts lets a releasing writer win again and again (the Go
    ATLAS measured p99 250 ms with 8 writers). A waiter blocked in the kernel is woken as soon as the lock is free.
    flock has no timeout, so the wait runs on a thread; if we give up first, the thread keeps waiting and releases
    (closes) the descriptor the moment it is granted, so an abandoned wait never holds the lock for long.
    """
    done = threading.Event()
    guard = threading.Lock()
    state: dict[str, Any] = {"abandoned": False, "error": None}

    def wait() -> None:
        try:
            fcntl.flock(fd, operation)
        except OSError as exc:
            state["error"] = exc
        with guard:
            if state["abandoned"]:
                os.close(fd)
                return
            done.set()

    threading.Thread(target=wait, name="atlas-tasks-lock-wait", daemon=True).start()
    finished = done.wait(timeout)
    with guard:
        if not finished and not done.is_set():
            state["abandoned"] = True  # the thread now owns fd and closes it
            return False
    if state["error"] is not None:
        raise state["error"]
    return True


@contextmanager
def hold(path: str, what: str, timeout: float, *, dir_fd: int | None = None, fair: bool = False) -> Iterator[None]:
    """Hold the flock on ``path`` (created 0600 if missing) for the block; re-entrant within one thread.

    The uncontended path is one open and one non-blocking flock (filelock's ``lock_descriptor``): a few
    microseconds, where a ``FileLock`` object costs 150-250 us per acquisition, most of a durable update's budget.

    With ``fair``, waiters are served first come, first served (see :class:`_Queue`); the flock on ``path`` is
    still what excludes, so the queue decides only the order. Only for lock files of our own (it adds files beside
    ``path``), never for the Go ATLAS's.

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
    fd = _open_lock_file(path, dir_fd)
    queue: _Queue | None = None
    remaining = timeout
    try:
        acquired = filelock.lock_descriptor(fd, blocking=False)
        if fair and (not acquired or _Queue.busy(fd, path, dir_fd)):
            if acquired:  # free, but others queued first: step back behind them
                fcntl.flock(fd, fcntl.LOCK_UN)
            deadline = time.monotonic() + timeout
            queue = _Queue.join(fd, path, dir_fd, what, timeout, deadline)
            acquired = filelock.lock_descriptor(fd, blocking=False)
            remaining = max(0.0, deadline - time.monotonic())
    except BaseException:
        if queue is not None:
            queue.leave()
        os.close(fd)
        raise
    if not acquired:
        try:
            granted = _wait_in_kernel(fd, remaining)
        except OSError:
            if queue is not None:
                queue.leave()
            os.close(fd)
            raise
        if not granted:
            if queue is not None:
                queue.leave()
            raise LockTimeoutError(what, path, timeout)  # fd now belongs to the abandoned waiter thread
    counts[path] = 1
    try:
        yield
    finally:
        del counts[path]
        os.close(fd)  # closing the only descriptor of this open file description releases the flock
        if queue is not None:
            queue.leave()  # after the lock: our successor wakes to a free lock


_TICKET = struct.Struct("<Q")


class _Queue:
    """First come, first served order among the waiters for one flock, without polling.

    Why: a released flock wakes every waiter and the first one scheduled wins, often the releasing process itself
    coming back for more; with 8 writers on one task some waited 50 times the median. Here each waiter takes a
    ticket and blocks on the flock of its predecessor's *slot* file, which the predecessor holds until it has
    released the lock: one waiter per file, woken in ticket order (a CLH queue lock made of flocks).

    Files beside the lock ``L``: ``L.q`` (held for a few microseconds while a ticket is drawn) and one slot per
    queued waiter, ``L.q<ticket>``, removed by its owner on release. The last ticket drawn is kept in ``L`` itself
    (8 bytes; lock files carry no other content), so the uncontended path only adds one ``pread`` and, while a
    ticket is out, one ``stat``: a taker who finds the lock free still steps back when somebody is queued.

    The queue never decides who holds the lock, only in which order it is asked for: a waiter killed in the queue
    frees its slot and its successor moves on to the flock itself, stale slots from a crash are cleaned by the
    next waiter, and a queue that cannot be used (say, a full disk) falls back to waiting on the flock alone.
    """

    __slots__ = ("_dir_fd", "_slot_fd", "_slot_name")

    def __init__(self, slot_fd: int, slot_name: str, dir_fd: int | None) -> None:
        self._slot_fd = slot_fd
        self._slot_name = slot_name
        self._dir_fd = dir_fd

    @staticmethod
    def _name(path: str, dir_fd: int | None) -> str:
        return path.rpartition("/")[2] if dir_fd is not None else path

    @staticmethod
    def _last_ticket(lock_fd: int) -> int:
        raw = os.pread(lock_fd, _TICKET.size, 0)
        return _TICKET.unpack(raw)[0] if len(raw) == _TICKET.size else 0

    @classmethod
    def busy(cls, lock_fd: int, path: str, dir_fd: int | None) -> bool:
        """True if somebody is queued: the slot of the last ticket drawn still exists."""
        last = cls._last_ticket(lock_fd)
        if not last:
            return False
        try:
            os.stat(f"{cls._name(path, dir_fd)}.q{last}", dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    @classmethod
    def join(
        cls, lock_fd: int, path: str, dir_fd: int | None, what: str, timeout: float, deadline: float
    ) -> _Queue | None:
        """Draw a ticket and wait until every earlier ticket holder has had the lock; None if queueing failed.

        Raises:
            LockTimeoutError: the deadline passed while waiting for the predecessor.
        """
        base = cls._name(path, dir_fd)
        try:
            guard = _open_lock_file(f"{path}.q", dir_fd)
        except OSError:
            return None
        try:
            if not filelock.lock_descriptor(guard, blocking=False):
                fd, guard = guard, -1
                if not _wait_in_kernel(fd, max(0.0, deadline - time.monotonic())):
                    raise LockTimeoutError(what, path, timeout)
                guard = fd
            ticket = cls._last_ticket(lock_fd) + 1
            slot_name = f"{base}.q{ticket}"
            slot = os.open(slot_name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
            try:
                if not filelock.lock_descriptor(slot, blocking=False):
                    raise BlockingIOError(errno.EWOULDBLOCK, "slot taken")  # not a state the queue produces
                os.pwrite(lock_fd, _TICKET.pack(ticket), 0)
            except BaseException:
                os.close(slot)
                raise
        except LockTimeoutError:
            raise
        except OSError:
            return None  # the queue is unusable here (a full disk, say): wait on the flock alone
        finally:
            if guard >= 0:
                os.close(guard)
        me = cls(slot, slot_name, dir_fd)
        try:
            me._wait_for(f"{base}.q{ticket - 1}", what, path, timeout, deadline)
        except BaseException:
            me.leave()
            raise
        return me

    def _wait_for(self, previous: str, what: str, path: str, timeout: float, deadline: float) -> None:
        try:
            # Non-blocking: a FIFO planted as a slot must not hang the open (flock works on it all the same).
            fd = os.open(previous, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self._dir_fd)
        except OSError:
            return  # gone: the predecessor is through (or there was none)
        if not filelock.lock_descriptor(fd, blocking=False) and not _wait_in_kernel(
            fd, max(0.0, deadline - time.monotonic())
        ):
            raise LockTimeoutError(what, path, timeout)  # fd belongs to the abandoned waiter thread
        try:
            # Its owner removes it on release; if it is still there, its owner died: clean up for it.
            os.unlink(previous, dir_fd=self._dir_fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def leave(self) -> None:
        """Give up our place (after the lock is released, or on failure); our successor moves on."""
        if self._slot_fd < 0:
            return
        with contextlib.suppress(OSError):
            os.unlink(self._slot_name, dir_fd=self._dir_fd)
        os.close(self._slot_fd)
        self._slot_fd = -1


@contextmanager
def hold_shared(path: str, what: str, timeout: float, *, dir_fd: int | None = None) -> Iterator[None]:
    """Hold a shared flock on ``path`` for the block: any number of holders at once, none while an exclusive one is.

    What a writer that works without the task lock (an artifact save) holds while its temp file exists, so that a
    sweep of temp files (:func:`try_hold_exclusive`) never removes one that is being written.

    Raises:
        LockTimeoutError: not obtained within ``timeout`` seconds (an exclusive holder kept it that long).
    """
    fd = _open_lock_file(path, dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            granted = _wait_in_kernel(fd, timeout, fcntl.LOCK_SH)
        except OSError:
            os.close(fd)
            raise
        if not granted:
            raise LockTimeoutError(what, path, timeout) from None  # fd now belongs to the abandoned waiter thread
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        os.close(fd)


@contextmanager
def try_hold_exclusive(path: str, *, dir_fd: int | None = None) -> Iterator[bool]:
    """Try once (never wait) for the exclusive flock on ``path``; yields whether it is held for the block."""
    fd = _open_lock_file(path, dir_fd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def try_hold_free(path: str, *, dir_fd: int | None = None) -> bool:
    """True if nobody holds the lock on ``path`` right now (it is taken and released at once)."""
    if _counts().get(path):
        return False
    try:
        fd = _open_existing(path, dir_fd)
    except FileNotFoundError:
        return True
    try:
        return bool(filelock.lock_descriptor(fd, blocking=False))
    finally:
        os.close(fd)


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


#: How long taking a lease waits out probes (``lease_holder`` holds a shared lock for microseconds) before it
#: reports the lease as held; a runner holds it exclusively for its whole run and is told apart at once.
PROBE_WAIT = 1.0


def _take_exclusive(fd: int) -> bool:
    """An exclusive flock on ``fd`` unless a holder has one: probes' shared locks are waited out (bounded)."""
    deadline = time.monotonic() + PROBE_WAIT
    while True:
        if filelock.lock_descriptor(fd, blocking=False):
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # an exclusive holder: a live runner (or a rival taking the lease right now)
        fcntl.flock(fd, fcntl.LOCK_UN)  # only probes hold it, and they let go at once
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)


def try_lease(path: str, holder: bytes, *, dir_fd: int | None = None) -> Lease | None:
    """Take the lease on ``path`` and write ``holder`` into it; None (and no change) if someone holds it."""
    fd = _open_lock_file(path, dir_fd)
    try:
        if not _take_exclusive(fd):
            os.close(fd)
            return None
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder, 0)
    except OSError as exc:
        os.close(fd)
        exc.filename = path  # say which lease could not be written (a full disk, say), not "?"
        raise
    except BaseException:
        os.close(fd)
        raise
    return Lease(fd, path)


def lease_holder(path: str, *, dir_fd: int | None = None) -> bytes | None:
    """The holder's description if the lease on ``path`` is held (by anyone, this process included), else None."""
    try:
        fd = _open_existing(path, dir_fd)
    except FileNotFoundError:
        return None
    try:
        # A shared lock: two probes at once never see each other as a runner (an exclusive probe lock did, and a
        # concurrent fork or run was refused by a phantom "pid ? on ?"). A runner holds the lease exclusively.
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 4096, 0) or b"{}"
        return None  # we got it, so no runner holds it; closing below releases it again
    finally:
        os.close(fd)
