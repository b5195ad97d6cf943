"""Reading an artifact of the file store as an open file: streamed in chunks, never held in memory whole."""

from __future__ import annotations

import os
import stat
import threading
import weakref
from collections.abc import Iterator

from atlas_tasks import names as N
from atlas_tasks._fs import ops
from atlas_tasks._fs.dirs import UnsafePathError, walk
from atlas_tasks.backends.file._layout import ARTIFACTS_DIR, Layout
from atlas_tasks.errors import ArtifactNotFoundError
from atlas_tasks.store.types import ArtifactReader


class OpenArtifact(ArtifactReader):
    """An artifact as an open descriptor, read with ``pread`` a chunk at a time."""

    def __init__(self, size: int, fd: int, path: str) -> None:
        super().__init__(size, lambda: b"")
        self._fetch = None
        self._fd: int | None = fd
        self._path = path
        # Closed by close() (a response ended, however) or, failing that, when collected.
        self._closer = weakref.finalize(self, os.close, fd)
        # A streamed read may run in a worker thread that a client's disconnect does not stop: reading and closing
        # take turns, so a descriptor is never closed under a read (nor read after its number was reused).
        self._lock = threading.Lock()

    def chunks(self) -> Iterator[bytes]:
        """Its bytes in pieces of :attr:`CHUNK` (at most ``size`` in all; less if it was cut short meanwhile)."""
        try:
            offset = 0
            while offset < self.size:
                with self._lock:
                    if self._fd is None:
                        return  # closed: the reader is done with it
                    chunk = ops.pread(self._fd, min(self.CHUNK, self.size - offset), offset, self._path)
                if not chunk:
                    break
                offset += len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """Close the descriptor, once (later calls and the finalizer do nothing)."""
        with self._lock:
            self._closer()
            self._fd = None


def open_artifact(layout: Layout, workspace: str, task_id: str, name: str) -> OpenArtifact:
    """Open an artifact by the symlink-free walk beneath the task; ArtifactNotFoundError if it is not a file."""
    parts = N.artifact_parts(name)
    fd = None
    with layout.task_dir(workspace, task_id) as task:  # a missing workspace or task is said as such
        path = f"{task.path}/{ARTIFACTS_DIR}/{name}"
        try:
            with walk(task, [ARTIFACTS_DIR, *parts[:-1]]) as folder:
                # O_NONBLOCK: a FIFO planted in the store must not hang the reader (it is refused just below).
                fd = ops.open_file(parts[-1], ops.READ_FLAGS | os.O_NONBLOCK, folder.fd, path)
            info = ops.fstat(fd)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, UnsafePathError):
            info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        if fd is not None:
            ops.close(fd)
        raise ArtifactNotFoundError(workspace, task_id, name, path)
    assert fd is not None
    return OpenArtifact(info.st_size, fd, path)


__all__ = ["OpenArtifact", "open_artifact"]
