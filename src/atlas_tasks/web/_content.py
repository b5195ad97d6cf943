"""Showing artifacts safely: what a preview looks like, and which content type raw bytes are served with.

Artifacts are written by agents and by the commands they run, so they are hostile input. They are never served
as HTML, SVG or script: raw bytes go out as ``text/plain; charset=utf-8`` (valid UTF-8 without NUL) or
``application/octet-stream``, with ``nosniff``. Markdown is rendered with raw HTML disabled, so a ``<script>`` in
a spec is shown as text; markdown-it also refuses ``javascript:`` and similar link targets.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

    from atlas_tasks.store import Store
    from atlas_tasks.store.capabilities import LocalFiles

#: Artifacts larger than this are offered as downloads only (a preview would make the page huge); their raw bytes
#: are streamed as application/octet-stream, never read whole (from a file store).
PREVIEW_LIMIT = 2 * 1024 * 1024
#: The size of each read (and write) of a streamed artifact.
CHUNK = 256 * 1024
TEXT_TYPE = "text/plain; charset=utf-8"
BINARY_TYPE = "application/octet-stream"

PreviewKind = Literal["json", "markdown", "text", "binary", "too_large"]


@dataclass(frozen=True)
class Preview:
    """How an artifact is shown: its kind and, for the text kinds, the text (JSON pretty-printed) or HTML."""

    kind: PreviewKind
    text: str = ""
    html: str = ""


def decode_text(data: bytes) -> str | None:
    """The bytes as text if they are UTF-8 without NUL bytes (what people and browsers can read), else None."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def safe_content_type(data: bytes) -> str:
    """``text/plain; charset=utf-8`` for readable text, ``application/octet-stream`` for anything else."""
    return TEXT_TYPE if decode_text(data) is not None else BINARY_TYPE


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # "html": False is the point: raw HTML blocks and inline tags are escaped, never passed through.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def render_markdown(text: str) -> str:
    """Markdown as HTML, with raw HTML disabled (it shows up escaped, as text)."""
    html: str = _markdown().render(text)
    return html


def preview(name: str, data: bytes) -> Preview:
    """Decide how to show an artifact: JSON pretty-printed, Markdown rendered, text as is, others downloadable."""
    if len(data) > PREVIEW_LIMIT:
        return Preview("too_large")
    text = decode_text(data)
    if text is None:
        return Preview("binary")
    lower = name.lower()
    if lower.endswith(".json"):
        try:
            return Preview("json", json.dumps(json.loads(text), indent=2, ensure_ascii=False))
        except ValueError:
            return Preview("text", text)  # a .json that is not JSON: show what is there
    if lower.endswith((".md", ".markdown")):
        return Preview("markdown", text, render_markdown(text))
    return Preview("text", text)


class ArtifactFile:
    """An artifact opened for reading: its size known before any byte is read, its bytes read whole or in chunks.

    From a store of local files it is an open descriptor (reached by the same symlink-free directory walk the store
    uses, through its ``_fs`` seam). From any other store, a size from ``artifact_sizes`` and the bytes fetched
    whole through ``get_artifact`` (PostgreSQL: one ``bytea`` value) only when they are needed.
    """

    def __init__(
        self,
        size: int,
        fd: int | None = None,
        data: bytes | None = None,
        path: str = "",
        fetch: Callable[[], bytes] | None = None,
    ) -> None:
        self.size = size
        self._fd = fd
        self._data = data
        self._path = path
        self._fetch = fetch  # reads the bytes when first needed (a store that reports sizes without them)
        # The descriptor is closed by close() (the response ended, however) or, failing that, when collected.
        self._closer = weakref.finalize(self, os.close, fd) if fd is not None else None
        # A streamed read runs in a worker thread that a client's disconnect does not stop: reading and closing
        # take turns, so a descriptor is never closed under a read (nor read after its number was reused).
        self._lock = threading.Lock()

    def read(self) -> bytes:
        """All of it (callers check ``size`` first), then closed."""
        try:
            if self._data is None and self._fetch is not None:
                self._data = self._fetch()
            return self._data if self._data is not None else b"".join(self.chunks())
        finally:
            self.close()

    def chunks(self) -> Iterator[bytes]:
        """Its bytes in :data:`CHUNK`-sized pieces (at most ``size`` bytes in all), closed at the end."""
        from atlas_tasks._fs import ops

        try:
            if self._data is None and self._fetch is not None:
                self._data = self._fetch()
            if self._data is not None:
                for start in range(0, len(self._data), CHUNK):
                    yield self._data[start : start + CHUNK]
                return
            offset = 0
            while offset < self.size:
                with self._lock:
                    if self._fd is None:
                        return  # closed: the response ended
                    chunk = ops.pread(self._fd, min(CHUNK, self.size - offset), offset, self._path)
                if not chunk:
                    break  # cut short meanwhile: send what there is
                offset += len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._closer is not None:
                self._closer()  # os.close, once: later calls (and the finalizer) do nothing
            self._fd = None


def open_artifact(store: Store, workspace: str, task_id: str, name: str) -> ArtifactFile:
    """Open an artifact without reading it: its size from ``store.artifact_sizes``, its bytes fetched through
    ``store.get_artifact`` only when they are needed; a store of local files' artifact as an open descriptor,
    so that a huge one is streamed in chunks, never held in memory whole.

    Raises:
        InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, ArtifactNotFoundError.
    """
    from atlas_tasks.store.capabilities import LocalFiles

    if isinstance(store, LocalFiles):
        return _open_local(store, workspace, task_id, name)
    size = store.artifact_sizes(workspace, task_id).get(name)
    if size is None:  # no such artifact (or one vanished meanwhile): get_artifact says which
        data = store.get_artifact(workspace, task_id, name)
        return ArtifactFile(len(data), data=data)
    return ArtifactFile(size, fetch=lambda: bytes(store.get_artifact(workspace, task_id, name)))


def _open_local(store: LocalFiles, workspace: str, task_id: str, name: str) -> ArtifactFile:
    # The Store contract has no streaming read (get_artifact returns the bytes whole), so a local store's artifact
    # is opened here, by the same symlink-free walk beneath its home that the store uses, through the _fs seam.
    # TODO(contract): an ``open_artifact`` primitive of the file backend would move this walk there.
    from atlas_tasks import names
    from atlas_tasks._fs import ops
    from atlas_tasks._fs.dirs import UnsafePathError, open_home, walk
    from atlas_tasks.backends.file import ARTIFACTS_DIR
    from atlas_tasks.errors import ArtifactNotFoundError

    parts = names.artifact_parts(name)
    names.check_workspace_name(workspace)
    names.check_task_id(task_id)
    route = ["workspaces", workspace, "tasks", task_id, ARTIFACTS_DIR, *parts[:-1]]
    fd = None
    try:
        with open_home(str(store.home), create=False) as home, walk(home, route) as folder:
            path = folder.child(parts[-1])
            # O_NONBLOCK: a FIFO planted in the store must not hang the request (it is refused just below).
            fd = ops.open_file(parts[-1], ops.READ_FLAGS | os.O_NONBLOCK, folder.fd, path)
        info = ops.fstat(fd)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, UnsafePathError):
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        if fd is not None:
            ops.close(fd)
        store.get(workspace, task_id)  # type: ignore[attr-defined]  # a missing workspace or task is said as such
        where = f"{store.task_path(workspace, task_id)}/{ARTIFACTS_DIR}/{name}"
        raise ArtifactNotFoundError(workspace, task_id, name, where)
    return ArtifactFile(info.st_size, fd=fd, path=path)


def content_disposition(name: str) -> str:
    """``attachment`` with the artifact's last path component as the file name (RFC 6266, UTF-8 form too)."""
    leaf = name.rsplit("/", 1)[-1]
    # Names are allowlisted by the store ([A-Za-z0-9._+=@,-]), so the quoted ASCII form is safe as it is.
    return f"attachment; filename=\"{leaf}\"; filename*=UTF-8''{quote(leaf)}"


__all__ = [
    "BINARY_TYPE",
    "CHUNK",
    "PREVIEW_LIMIT",
    "TEXT_TYPE",
    "ArtifactFile",
    "Preview",
    "content_disposition",
    "decode_text",
    "open_artifact",
    "preview",
    "render_markdown",
    "safe_content_type",
]
