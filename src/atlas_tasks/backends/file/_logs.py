"""Windows of task.log read by byte offsets (``tail_log``): the end of a long log without reading the rest."""

from __future__ import annotations

from atlas_tasks._fs import atomic, ops
from atlas_tasks.backends.file._layout import LOG_FILE, Layout, require_task_file
from atlas_tasks.documents import logs as doc_logs
from atlas_tasks.store.types import LogTail


def tail_log(layout: Layout, workspace: str, task_id: str, lines: int, after: int | None) -> LogTail:
    """See :meth:`atlas_tasks.backends.file.FileStore.tail_log`."""
    with layout.task_dir(workspace, task_id) as d:
        path = d.child(LOG_FILE)
        try:
            fd = ops.open_file_noatime(LOG_FILE, d.fd, path)
        except FileNotFoundError:
            require_task_file(d, workspace, task_id)
            return LogTail()
        try:
            info = ops.fstat(fd)
            ops.require_regular(info, path)  # opened without blocking: a FIFO or device is refused here
            size = info.st_size
            if after is None:
                return tail_window(fd, size, max(lines, 0), path)
            return forward_window(fd, size, max(after, 0), max(lines, 0), path)
        finally:
            ops.close(fd)


#: The most a ``tail_log`` window reads, whatever its line count: what one dashboard request may cost.
LOG_WINDOW_BYTES = 8 * 1024 * 1024
_BLOCK = 64 * 1024


def tail_window(fd: int, size: int, lines: int, path: str) -> LogTail:
    """The last ``lines`` whole lines (and a torn tail after them), read backwards block by block."""
    end = atomic.clean_end(fd, size, path)  # just after the last newline: beyond it only a torn tail
    blocks: list[bytes] = []
    pos, newlines, held = end, 0, 0
    # One newline more than lines: the one that ends the line before the window (unless the file begins first).
    while pos > 0 and lines > 0 and newlines <= lines and held < LOG_WINDOW_BYTES:
        take = min(_BLOCK, pos)
        pos -= take
        block = ops.pread(fd, take, pos, path)
        blocks.append(block)
        newlines += block.count(b"\n")
        held += len(block)
    raw = b"".join(reversed(blocks))
    blocks.clear()
    cut = 0
    if pos > 0:  # the first bytes belong to a line that began before the window: not a whole line
        cut = raw.find(b"\n") + 1 if b"\n" in raw else len(raw)
    extra = raw.count(b"\n", cut) - lines
    for _ in range(max(extra, 0)):
        cut = raw.index(b"\n", cut) + 1
    window = parse_window(raw[cut:], pos + cut)
    if pos > 0 and cut == len(raw) and end > 0 and lines > 0:
        window.skipped += 1  # one line longer than the window: left out
    if size > end:  # bytes after the last newline: an append cut short (as read_log reports it)
        window.torn_tail = True
        window.skipped += 1
    return window


def forward_window(fd: int, size: int, after: int, lines: int, path: str) -> LogTail:
    """Up to ``lines`` whole lines from byte ``after`` on, read forwards block by block."""
    if after > size:
        after = 0  # the log is shorter than the position: it was replaced (a task re-created): start over
    pos = after
    if pos > 0 and ops.pread(fd, 1, pos - 1, path) != b"\n":
        pos = next_line(fd, pos, size, path)  # inside a line: continue at the next whole one
    blocks: list[bytes] = []
    read, newlines, held = pos, 0, 0
    while read < size and newlines < lines and held < LOG_WINDOW_BYTES:
        block = ops.pread(fd, min(_BLOCK, size - read), read, path)
        if not block:
            break
        blocks.append(block)
        read += len(block)
        held += len(block)
        newlines += block.count(b"\n")
    raw = b"".join(blocks)
    blocks.clear()
    stop = 0
    for _ in range(min(newlines, lines)):
        stop = raw.index(b"\n", stop) + 1
    window = parse_window(raw[:stop], pos)
    # More after the window: a whole line was read past it, or reading stopped (lines or bytes) before the end.
    window.more = newlines > lines or (lines > 0 and read < size)
    if lines > 0 and newlines == 0 and held >= LOG_WINDOW_BYTES:  # one line longer than the window: step over it
        window.end = next_line(fd, pos, size, path)
        window.skipped += int(window.end > pos)
        window.more = window.end > pos
    return window


def next_line(fd: int, pos: int, size: int, path: str) -> int:
    """The offset just after the next newline at or after ``pos`` (``pos`` itself if there is none yet)."""
    at = pos
    while at < size:
        block = ops.pread(fd, min(_BLOCK, size - at), at, path)
        if not block:
            break
        found = block.find(b"\n")
        if found >= 0:
            return at + found + 1
        at += len(block)
    return pos


def parse_window(raw: bytes, start: int) -> LogTail:
    """Whole lines ``raw`` (each ending in a newline) found at byte ``start``: entries with their end offsets."""
    window = LogTail()
    window.start = window.end = start
    offset = start
    for line in raw.split(b"\n")[:-1] if raw else []:
        offset += len(line) + 1
        if not line.strip():
            continue
        record, _reason = doc_logs.parse_line(line)  # looked up at each call: a reliability control patches it
        if record is None:
            window.skipped += 1  # counted only: its line number is unknown without reading the lines before it
        else:
            window.append(record)
            window.positions.append(offset)
    window.end = offset
    return window


__all__ = ["LOG_WINDOW_BYTES", "forward_window", "tail_log", "tail_window"]
