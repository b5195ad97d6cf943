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
def hold(
    path: str,
    what: str,
    timeout: float,
    *,
    dir_fd: int | None = None,
    fair: bool = False,
    keep: KeptLocks | None = None,
) -> Iterator[None]:
    """Hold the flock on ``path`` (created 0600 if missing) for the block; re-entrant within one thread.

    The uncontended path is one open and one non-blocking flock (filelock's ``lock_descriptor``): a few
    microseconds, where a ``FileLock`` object costs 150-250 us per acquisition, most of a durable update's budget.

    With ``fair``, waiters are served first come, first served (see :class:`_Queue`); the flock on ``path`` is
    still what excludes, so the queue decides only the order. Only for lock files of our own (it adds files beside
    ``path``), never for the Go ATLAS's.

    With ``keep``, the descriptor is not closed on release but unlocked and kept in that table for the next hold
    of ``path`` (see :class:`KeptLocks`): the next uncontended hold is a ``stat`` and a ``flock`` instead
    of walking to the lock's directory and opening the file. ``path`` must then be the file's absolute path.

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
    kept = _take_kept(keep, path, fair) if keep is not None else None
    if kept is not None:
        counts[path] = 1
        try:
            yield
        finally:
            del counts[path]
            _release_kept(keep, path, kept)  # type: ignore[arg-type]
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
        if not (keep is not None and _keep(keep, path, fd)):
            os.close(fd)  # closing the only descriptor of this open file description releases the flock
        if queue is not None:
            queue.leave()  # after the lock: our successor wakes to a free lock


# -- kept descriptors ---------------------------------------------------------------------------------------------
#
# A lock held with ``keep`` leaves its descriptor open, unlocked, in its owner's table (one per store):
# path -> (fd, st_dev, st_ino). Why it still excludes exactly as a fresh open would:
# * a descriptor is taken *out* of the table for as long as it is used and put back only once unlocked: flock
#   belongs to the open file description, so two threads using one descriptor at once would both "hold" the lock;
#   one after the other is as good as two opens.
# * checked on every use: ``stat(path)`` (no symlink followed in the last component) must still name the kept
#   inode, otherwise the lock file was removed or replaced (a home deleted and made again, say) and the descriptor
#   is closed and forgotten: locking an orphaned inode would exclude nobody. The stat and the flock race with a
#   replacement exactly as an open and a flock do; our lock files are never removed (module docstring).
# * not across fork: a child shares its parent's open file descriptions, so it would "hold" whatever the parent
#   holds. After a fork the child empties the table it inherited and opens its own.
# * only the uncontended case: a kept descriptor that finds the lock taken (or, with ``fair``, others queued)
#   goes back unlocked and the hold takes the ordinary path with a fresh descriptor (queue, wait, timeout), so the
#   abandoned-waiter hand-over above never concerns a kept descriptor.
# * released by LOCK_UN, which releases the lock whatever other descriptors of the description exist.
# The table's descriptors are closed by ``close()`` (FileStore.close) or when the table is collected with its store:
# until then the lock files stay open (a filesystem holding them cannot be unmounted).

_KEEP_MAX = 64
_generation = 0


def _next_generation() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_next_generation)

_Entry = tuple[int, int, int]  # fd, st_dev, st_ino


class KeptLocks:
    """Lock descriptors kept open between holds (``hold(keep=...)``); one table per store, shared by its threads."""

    __slots__ = ("_entries", "_generation", "_mutex")

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._generation = _generation
        self._mutex = threading.Lock()

    def _current(self) -> dict[str, _Entry]:
        if self._generation != _generation:  # a forked child: what it inherited is its parent's
            self._mutex = threading.Lock()  # possibly held by a parent thread at the fork
            inherited, self._entries, self._generation = self._entries, {}, _generation
            _close_all(inherited)
        return self._entries

    def take(self, path: str) -> _Entry | None:
        """The idle descriptor kept for ``path``, out of the table (the caller owns it until ``put``)."""
        entries = self._current()
        with self._mutex:
            return entries.pop(path, None)

    def put(self, path: str, entry: _Entry) -> None:
        """Keep an unlocked descriptor for ``path`` (closed instead if one is kept already)."""
        entries = self._current()
        extra: list[_Entry] = []
        with self._mutex:
            if path in entries:
                extra.append(entry)
            else:
                while len(entries) >= _KEEP_MAX:
                    extra.append(entries.pop(next(iter(entries))))  # the oldest
                entries[path] = entry
        _close_all({str(i): e for i, e in enumerate(extra)})

    def close(self) -> None:
        """Close every idle kept descriptor (those in use are closed by their holder's release as usual)."""
        with self._mutex:
            entries, self._entries = self._entries, {}
        if self._generation == _generation:
            _close_all(entries)

    def __del__(self) -> None:
        # Also after a fork: closing the child's copy never releases a lock its parent holds (the parent's
        # descriptor keeps the description open), and kept descriptors are unlocked anyway.
        _close_all(self._entries)


def _close_all(entries: dict[str, _Entry]) -> None:
    for fd, _, _ in entries.values():
        with contextlib.suppress(OSError):
            os.close(fd)


def _take_kept(keep: KeptLocks, path: str, fair: bool) -> _Entry | None:
    """The kept descriptor of ``path``, locked; None when the ordinary path must take the lock."""
    entry = keep.take(path)
    if entry is None:
        return None
    fd, dev, ino = entry
    try:
        st = os.stat(path, follow_symlinks=False)  # noqa: PTH116 - a Path costs more than the stat
        same = st.st_ino == ino and st.st_dev == dev
    except OSError:
        same = False
    if not same:
        os.close(fd)  # removed or replaced: forgotten
        return None
    try:
        if not filelock.lock_descriptor(fd, blocking=False):
            keep.put(path, entry)
            return None  # taken: wait the ordinary way, on a fresh descriptor
        if fair and _Queue.busy(fd, path, None):
            fcntl.flock(fd, fcntl.LOCK_UN)  # free, but others queued first: queue behind them the ordinary way
            keep.put(path, entry)
            return None
    except BaseException:
        os.close(fd)  # whatever state it is in, closing releases it
        raise
    return entry


class _KeptHold:
    """A lock taken through a kept descriptor (see :func:`hold_kept`); released when the block ends."""

    __slots__ = ("_entry", "_keep", "_path")

    def __init__(self, keep: KeptLocks, path: str, entry: _Entry) -> None:
        self._keep, self._path, self._entry = keep, path, entry
        _counts()[path] = 1

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        del _counts()[self._path]
        _release_kept(self._keep, self._path, self._entry)


def hold_kept(path: str, keep: KeptLocks, *, fair: bool = False) -> contextlib.AbstractContextManager[None] | None:
    """The lock on ``path`` taken now through a descriptor kept in ``keep`` (for a ``with``), or None.

    None when there is no usable kept descriptor, the lock is taken, others are queued (``fair``) or this thread
    holds it already: the caller then opens the lock's directory and calls :func:`hold` with ``keep``.
    """
    if _counts().get(path):
        return None
    entry = _take_kept(keep, path, fair)
    return None if entry is None else _KeptHold(keep, path, entry)


def _release_kept(keep: KeptLocks, path: str, entry: _Entry) -> None:
    try:
        fcntl.flock(entry[0], fcntl.LOCK_UN)
    except BaseException:
        os.close(entry[0])  # not unlocked: closing the only descriptor of its description releases the lock
        raise
    keep.put(path, entry)


def _keep(keep: KeptLocks, path: str, fd: int) -> bool:
    """Unlock ``fd`` and keep it for ``path``; False (the caller closes it) if it cannot be kept."""
    try:
        st = os.fstat(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        return False
    keep.put(path, (fd, st.st_dev, st.st_ino))
    return True


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
