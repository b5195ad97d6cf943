"""FileStore.tail_log: a window of task.log read from its end or from a byte offset, never the whole file."""

from __future__ import annotations

import tracemalloc

import log_tail_cases as cases
import pytest

from atlas_tasks import FileStore, Task
from atlas_tasks.backends.file import LOG_WINDOW_BYTES


@pytest.fixture
def ws(store: FileStore) -> str:
    store.create_workspace("ws")
    return "ws"


def test_tails_match_read_log(store: FileStore, ws: str) -> None:
    """The last n entries, for n below, at and above the log's length, are read_log's last n."""
    cases.check_tails_match_read_log(store, ws)


def test_forward_windows_cover_the_log(store: FileStore, ws: str) -> None:
    """Following ``end`` from offset 0 in windows of 64 lines yields every entry once, in order."""
    cases.check_forward_windows_cover_the_log(store, ws)


def test_tail_then_follow(store: FileStore, ws: str) -> None:
    """From the end of a tail, the next call returns exactly the lines appended since."""
    cases.check_tail_then_follow(store, ws)


def test_position_past_the_end_starts_over(store: FileStore, ws: str) -> None:
    """An offset beyond the file (the task was re-created) starts again from its first line."""
    cases.check_position_past_the_end_starts_over(store, ws)


def test_offset_inside_a_line_continues_at_the_next(store: FileStore, ws: str) -> None:
    """An offset in the middle of a line (a made-up Last-Event-ID) never yields half a line."""
    task_id = cases.fill(store, ws, 3)
    window = store.tail_log(ws, task_id, 5, after=3)
    assert [entry["event"] for entry in window] == ["line 1", "line 2"] and window.skipped == 0


def test_torn_tail_is_reported_and_not_followed(store: FileStore, ws: str) -> None:
    """Bytes after the last newline count as one skipped line; following from the end finds nothing more."""
    task_id = cases.fill(store, ws, 3)
    with open(store.log_path(ws, task_id), "ab") as log:
        log.write(b'{"event": "cut sho')
    window = store.tail_log(ws, task_id, 2)
    assert [entry["event"] for entry in window] == ["line 1", "line 2"]
    assert window.torn_tail and window.skipped == 1
    after = store.tail_log(ws, task_id, 10, after=window.end)
    assert list(after) == [] and not after.more


def test_tail_reads_only_the_end_of_a_big_log(store: FileStore, ws: str) -> None:
    """The last 10 lines of a 20 MB task.log cost a few blocks of memory, not the file."""
    task_id = store.create(ws, Task(template="t", description="big")).id
    line = b'{"event":"' + b"x" * 1000 + b'"}\n'
    with open(store.log_path(ws, task_id), "wb") as log:
        log.write(line * 20_000)
    tracemalloc.start()
    try:
        window = store.tail_log(ws, task_id, 10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(window) == 10 and window.start == len(line) * 19_990
    assert peak < 1024 * 1024, f"{peak} bytes allocated for the last 10 lines"


def test_missing_log_is_an_empty_window(store: FileStore, ws: str) -> None:
    """A task without a task.log has an empty window at position 0."""
    task_id = store.create(ws, Task(template="t", description="quiet")).id
    window = store.tail_log(ws, task_id, 10)
    assert list(window) == [] and window.start == window.end == 0


def test_window_never_reads_more_than_its_byte_limit(store: FileStore, ws: str) -> None:
    """2,000 lines of 10 KB (20 MB) give a tail of fewer, whole lines: the last ones, within 8 MiB."""
    task_id = store.create(ws, Task(template="t", description="wide")).id
    with open(store.log_path(ws, task_id), "wb") as log:
        for i in range(2000):
            log.write(b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * 10_000))
    window = store.tail_log(ws, task_id, 2000)
    assert 0 < len(window) < 2000 and window.start > 0
    assert [entry["n"] for entry in window] == list(range(2000 - len(window), 2000))
    assert window.end - window.start <= LOG_WINDOW_BYTES


def test_a_line_longer_than_a_window_is_stepped_over(store: FileStore, ws: str) -> None:
    """Following past a 9 MB line counts it as skipped and goes on with the lines after it."""
    task_id = store.create(ws, Task(template="t", description="huge line")).id
    with open(store.log_path(ws, task_id), "wb") as log:
        log.write(b'{"event":"before"}\n{"event":"' + b"x" * (9 * 1024 * 1024) + b'"}\n{"event":"after"}\n')
    first = store.tail_log(ws, task_id, 10, after=0)
    assert [entry["event"] for entry in first] == ["before"] and first.more
    huge = store.tail_log(ws, task_id, 10, after=first.end)
    assert list(huge) == [] and huge.skipped == 1 and huge.more
    rest = store.tail_log(ws, task_id, 10, after=huge.end)
    assert [entry["event"] for entry in rest] == ["after"] and not rest.more
