"""The only place the file backend touches the operating system.

Every call that changes or reads the store goes through a function here, relative to a directory file descriptor.
That makes this module one seam for the reliability campaigns: a hook installed with :func:`set_hook` sees each
call (its operation name and the path it concerns) *before* it happens, and may raise an ``OSError`` (fault
injection), record it (power-loss model) or end the process (crash-point enumeration).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import sys
from collections.abc import Callable, Iterator

Hook = Callable[[str, str], None]
"""Called as ``hook(op, path)`` before each filesystem call; may raise OSError."""

_hook: Hook | None = None

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK on every open of an existing file: opening a FIFO planted in the store (or a device) would otherwise
# wait forever for a writer. It changes nothing for a regular file ("no effect for regular files and block
# devices", open(2)), and anything else is refused right after the open (see require_regular).
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
APPEND_FLAGS = (
    os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
)  # read too: the torn-tail check preads the last byte
FILE_MODE = 0o600
DIR_MODE = 0o750


def set_hook(hook: Hook | None) -> Hook | None:
    """Install ``hook`` (or remove it with None) and return the previous one."""
    global _hook
    previous = _hook
    _hook = hook
    return previous


class NotRegularFileError(OSError):
    """A file the store reads or writes is a FIFO, socket, device or directory: refused, never opened for I/O.

    ``kind`` says what it is, in words ("a FIFO (named pipe)").
    """

    kind: str = "not a regular file"


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFLNK: "a symlink",
}


def kind_of(mode: int) -> str:
    """What a file of ``mode`` is, in words (for messages)."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def require_regular(st: os.stat_result, path: str) -> None:
    """Refuse anything but a regular file (``st`` is the fstat of the descriptor just opened)."""
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(kind_of(st.st_mode), path)


def _not_regular(kind: str, path: str) -> NotRegularFileError:
    exc = NotRegularFileError(errno.EINVAL, f"{kind} where the store keeps a regular file; refused", path)
    exc.kind = kind
    exc.atlas_op = "open"  # type: ignore[attr-defined]
    return exc


def _unopenable(exc: OSError, name: str, dir_fd: int | None, path: str) -> OSError:
    """ENXIO from open is a socket (or a device without a driver): say so, as for any other special file."""
    if exc.errno != errno.ENXIO:
        return exc
    try:
        kind = kind_of(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        kind = "a socket or a device"
    return _not_regular(kind, path)


def set_blocking(fd: int, flags: int, path: str) -> None:
    """Clear O_NONBLOCK from a descriptor opened with ``flags`` (one fcntl: F_SETFL keeps only the status flags).

    Not needed for reading a regular file (open(2): no effect there); done for descriptors the store writes
    through, so a filesystem that passes the flag on to its server (FUSE) never sees a non-blocking write.
    """
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK & (os.O_APPEND | _NOATIME))
    except OSError as exc:
        _blame(exc, "open", path)
        raise


def _see(op: str, path: str) -> None:
    if _hook is not None:
        _hook(op, path)


def _blame(exc: OSError, op: str, path: str) -> None:
    """Record which operation failed on which store path (dir_fd calls only know the last component)."""
    exc.filename = path
    if not hasattr(exc, "atlas_op"):
        exc.atlas_op = op  # type: ignore[attr-defined]


def open_dir(name: str, dir_fd: int | None, path: str) -> int:
    """Open a directory without following a symlink in its last component."""
    try:
        _see("open_dir", path)
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        _blame(exc, "open directory", path)
        raise


def mkdir(name: str, dir_fd: int, path: str, mode: int = DIR_MODE) -> None:
    try:
        _see("mkdir", path)
        os.mkdir(name, mode, dir_fd=dir_fd)
    except OSError as exc:
        _blame(exc, "mkdir", path)
        raise


def rmdir(name: str, dir_fd: int, path: str) -> None:
    try:
        _see("rmdir", path)
        os.rmdir(name, dir_fd=dir_fd)
    except OSError as exc:
        _blame(exc, "rmdir", path)
        raise


def open_file(name: str, flags: int, dir_fd: int, path: str, mode: int = FILE_MODE) -> int:
    try:
        _see("open", path)
        return os.open(name, flags, mode, dir_fd=dir_fd)
    except OSError as exc:
        refused = _unopenable(exc, name, dir_fd, path)
        if refused is not exc:
            raise refused from None
        _blame(exc, "open", path)
        raise


# openat2(2) with RESOLVE_NO_SYMLINKS: the kernel resolves a whole relative path and refuses a symlink in *any*
# component, which is what walking it one O_NOFOLLOW component at a time guarantees, in one system call instead of
# an open and a close per component (and with no window between components). Linux >= 5.6; called through ctypes
# (loaded on first use) as Python has no wrapper. None until tried; False where unavailable (old kernel, seccomp).
_OPENAT2_NR = 437  # the same number on every Linux architecture (the generic syscall table)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_openat2: Callable[[int, bytes, bool], int] | bool | None = None if sys.platform.startswith("linux") else False
_NOATIME = getattr(os, "O_NOATIME", 0)


def _load_openat2() -> Callable[[int, bytes, bool], int] | bool:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return False

    class OpenHow(ctypes.Structure):
        _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))

    syscall.restype = ctypes.c_long
    syscall.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t)
    resolve = _RESOLVE_NO_SYMLINKS | _RESOLVE_BENEATH
    dir_how = OpenHow(os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, 0, resolve)
    # A file is opened for reading as open_file_noatime does (O_NOATIME: EPERM on a file that is not ours), and
    # non-blocking (a FIFO must not hang the open; read_all then refuses it).
    file_how = OpenHow(os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | _NOATIME, 0, resolve)
    dir_ref, file_ref, how_size = ctypes.byref(dir_how), ctypes.byref(file_how), ctypes.sizeof(dir_how)
    get_errno = ctypes.get_errno

    def openat2(dir_fd: int, relative: bytes, directory: bool) -> int:
        fd: int = syscall(_OPENAT2_NR, dir_fd, relative, dir_ref if directory else file_ref, how_size)
        if fd < 0:
            code = get_errno()
            raise OSError(code, os.strerror(code))
        return fd

    return openat2


def _beneath(relative: str, dir_fd: int, path: str, *, directory: bool) -> int | None:
    global _openat2
    if _openat2 is None:
        _openat2 = _load_openat2()
    if _openat2 is False:
        return None
    try:
        _see("open_dir" if directory else "open", path)
        return _openat2(dir_fd, relative.encode(), directory)  # type: ignore[operator]
    except OSError as exc:
        code = exc.errno
        # Not supported here (an old kernel, a seccomp filter): stop trying. A file's EPERM is O_NOATIME's.
        if code in (errno.ENOSYS, errno.EINVAL, errno.E2BIG) or (directory and code == errno.EPERM):
            _openat2 = False
            return None
        if code in _DECLINED:
            return None  # the path is not the plain one: the walk finds out which component and why
        _blame(exc, "open directory" if directory else "open", path)
        raise  # a real failure (EIO, EACCES, ENOMEM, ...): the same as the walk would meet


# What makes the one-call open decline rather than fail: something on the path is missing, a symlink, a file where a
# directory should be, or moved during the lookup; O_NOATIME refused (EPERM) on a file that is not ours; a socket
# (ENXIO), which the walk then names.
_DECLINED = frozenset({errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EXDEV, errno.EAGAIN, errno.EPERM, errno.ENXIO})


def open_dir_beneath(relative: str, dir_fd: int, path: str) -> int | None:
    """Open the directory ``relative`` (several components) below ``dir_fd`` following no symlink anywhere.

    Returns None when the fast path cannot answer (openat2 unavailable, a component missing, a symlink or a file
    on the way, a race with a rename): the caller then walks component by component, which gives the precise
    error or creates what is missing.
    """
    return _beneath(relative, dir_fd, path, directory=True)


def open_file_beneath(relative: str, dir_fd: int, path: str) -> int | None:
    """Open the file ``relative`` below ``dir_fd`` for reading, following no symlink anywhere; None as above.

    One call where the walk takes an open and a close per directory plus the file's own open.
    """
    return _beneath(relative, dir_fd, path, directory=False)


def read_file_beneath(relative: str, dir_fd: int, path: str) -> bytes | None:
    """The whole of the file ``relative`` below ``dir_fd`` (see :func:`open_file_beneath`); None if declined."""
    fd = open_file_beneath(relative, dir_fd, path)
    if fd is None:
        return None
    try:
        return read_all(fd, path)
    finally:
        close(fd)


def open_file_noatime(name: str, dir_fd: int, path: str) -> int:
    """Open for reading with O_NOATIME where allowed (the file's owner), so a read dirties no inode under relatime.

    A read of task.json just after it was replaced would otherwise update its atime, an inode change the next
    journal commit (an update's fsync) has to write. Not our file (EPERM): the plain open.
    """
    if _NOATIME:
        try:
            _see("open", path)
            return os.open(name, READ_FLAGS | _NOATIME, dir_fd=dir_fd)
        except PermissionError as exc:
            if exc.errno != errno.EPERM:
                _blame(exc, "open", path)
                raise
        except OSError as exc:
            refused = _unopenable(exc, name, dir_fd, path)
            if refused is not exc:
                raise refused from None
            _blame(exc, "open", path)
            raise
    return open_file(name, READ_FLAGS, dir_fd, path)


def fchmod(fd: int, mode: int, path: str) -> None:
    try:
        _see("fchmod", path)
        os.fchmod(fd, mode)
    except OSError as exc:
        _blame(exc, "chmod", path)
        raise


def write_all(fd: int, data: bytes, path: str) -> None:
    """Write every byte; a short write (a nearly full disk, a size limit) continues where it stopped."""
    try:
        _see("write", path)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as exc:
        _blame(exc, "write", path)
        raise


def fsync(fd: int, path: str) -> None:
    try:
        _see("fsync", path)
        os.fsync(fd)
        # xfs: once the filesystem has shut down (an I/O error, or a cut), fsync of a directory returns 0 without
        # forcing the log, and the rename it was to make durable is gone after remount. getattr does check for a
        # shutdown (EIO), so this fstat, under a microsecond, keeps such an fsync from acknowledging a write.
        os.fstat(fd)
    except OSError as exc:
        _blame(exc, "fsync", path)
        raise


def fdatasync(fd: int, path: str) -> None:
    try:
        _see("fdatasync", path)
        os.fdatasync(fd)
    except OSError as exc:
        _blame(exc, "fdatasync", path)
        raise


def close(fd: int) -> None:
    os.close(fd)


def rename(src: str, dst: str, src_dir_fd: int, dst_dir_fd: int, path: str) -> None:
    try:
        _see("rename", path)
        os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    except OSError as exc:
        _blame(exc, "rename", path)
        raise


def link(src: str, dst: str, dir_fd: int, path: str) -> None:
    """Hard-link ``src`` to ``dst``; FileExistsError when ``dst`` is taken: how write-once names are claimed."""
    try:
        _see("link", path)
        os.link(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        _blame(exc, "link", path)
        raise


def unlink(name: str, dir_fd: int, path: str) -> None:
    try:
        _see("unlink", path)
        os.unlink(name, dir_fd=dir_fd)
    except OSError as exc:
        _blame(exc, "unlink", path)
        raise


def ftruncate(fd: int, size: int, path: str) -> None:
    try:
        _see("ftruncate", path)
        os.ftruncate(fd, size)
    except OSError as exc:
        _blame(exc, "truncate", path)
        raise


def read_all(fd: int, path: str) -> bytes:
    """The whole of an open file; NotRegularFileError (before any read) if it is not a regular file."""
    try:
        _see("read", path)
        st = os.fstat(fd)
        require_regular(st, path)
        size = st.st_size
        want = max(size, 1) + 1
        first = os.read(fd, want)
        if size <= len(first) < want:
            return first  # all of it, and short of what we asked: at the end (one read fewer per file)
        # Loop until EOF: the file grew since fstat (an append racing this read), or a short read.
        chunks = [first]
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    except OSError as exc:
        _blame(exc, "read", path)
        raise


def pread(fd: int, size: int, offset: int, path: str) -> bytes:
    try:
        _see("read", path)
        return os.pread(fd, size, offset)
    except OSError as exc:
        _blame(exc, "read", path)
        raise


def fstat(fd: int) -> os.stat_result:
    return os.fstat(fd)


def stat_at(name: str, dir_fd: int) -> os.stat_result:
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def scandir(fd: int, path: str) -> Iterator[os.DirEntry[str]]:
    """Entries of an open directory (os.scandir works on a duplicate of ``fd``, which stays open)."""
    try:
        _see("scandir", path)
        with os.scandir(fd) as entries:
            yield from entries
    except OSError as exc:
        _blame(exc, "list directory", path)
        raise


def list_dir(fd: int, path: str) -> list[os.DirEntry[str]]:
    """Entries of an open directory, all at once (:func:`scandir` without a generator step per entry)."""
    try:
        _see("scandir", path)
        with os.scandir(fd) as entries:
            return list(entries)
    except OSError as exc:
        _blame(exc, "list directory", path)
        raise


def rmtree(name: str, dir_fd: int, path: str) -> None:
    """Remove a directory tree without following symlinks (fd-based on Linux)."""
    try:
        _see("rmtree", path)
        shutil.rmtree(name, dir_fd=dir_fd)
    except OSError as exc:
        _blame(exc, "remove tree", path)
        raise
