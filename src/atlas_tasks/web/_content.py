"""Showing artifacts safely: what a preview looks like, and which content type raw bytes are served with.

Artifacts are written by agents and by the commands they run, so they are hostile input. They are never served
as HTML, SVG or script: raw bytes go out as ``text/plain; charset=utf-8`` (valid UTF-8 without NUL) or
``application/octet-stream``, with ``nosniff``. Markdown is rendered with raw HTML disabled, so a ``<script>`` in
a spec is shown as text; markdown-it also refuses ``javascript:`` and similar link targets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

    from atlas_tasks.store import ArtifactReader, Store

#: Artifacts larger than this are offered as downloads only (a preview would make the page huge); their raw bytes
#: are streamed as application/octet-stream, never read whole (from a file store).
PREVIEW_LIMIT = 2 * 1024 * 1024
#: The size of each read (and write) of a streamed artifact.
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


def open_artifact(store: Store, workspace: str, task_id: str, name: str) -> ArtifactReader:
    """Open an artifact without reading it (``store.open_artifact``): its size first, its bytes only when needed, and
    a file store's huge artifact streamed in chunks, never held in memory whole.

    Raises:
        InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, ArtifactNotFoundError.
    """
    return store.open_artifact(workspace, task_id, name)


def content_disposition(name: str) -> str:
    """``attachment`` with the artifact's last path component as the file name (RFC 6266, UTF-8 form too)."""
    leaf = name.rsplit("/", 1)[-1]
    # Names are allowlisted by the store ([A-Za-z0-9._+=@,-]), so the quoted ASCII form is safe as it is.
    return f"attachment; filename=\"{leaf}\"; filename*=UTF-8''{quote(leaf)}"


__all__ = [
    "BINARY_TYPE",
    "PREVIEW_LIMIT",
    "TEXT_TYPE",
    "Preview",
    "content_disposition",
    "decode_text",
    "open_artifact",
    "preview",
    "render_markdown",
    "safe_content_type",
]
