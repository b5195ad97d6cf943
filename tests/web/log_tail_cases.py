"""``tail_log`` behaviours shared by the file store's and PostgreSQL's tests: windows agree with ``read_log``."""

from __future__ import annotations

from typing import Any

from atlas_tasks import Task


def fill(store: Any, ws: str, count: int) -> str:
    """A task in ``ws`` with ``count`` log lines of varied length; returns its id."""
    task = store.create(ws, Task(template="t", description="log"))
    for i in range(count):
        store.append_log(ws, task.id, {"event": f"line {i}", "pad": "x" * (i * 37 % 301)})
    return str(task.id)


def check_tails_match_read_log(store: Any, ws: str) -> None:
    """The last n entries, for n below, at and above the log's length, are read_log's last n."""
    task_id = fill(store, ws, 700)
    full = list(store.read_log(ws, task_id))
    for n in (1, 7, 699, 700, 2000):
        window = store.tail_log(ws, task_id, n)
        assert list(window) == full[-n:], n
        assert (window.start == 0) == (n >= 700), (n, window.start)
        assert window.positions[-1] == window.end


def check_forward_windows_cover_the_log(store: Any, ws: str) -> None:
    """Following ``end`` from position 0 in windows of 64 lines yields read_log's entries once each, in order."""
    task_id = fill(store, ws, 700)
    seen: list[dict[str, Any]] = []
    position = 0
    while True:
        window = store.tail_log(ws, task_id, 64, after=position)
        assert len(window) <= 64
        seen += window
        position = window.end
        if not window.more:
            break
    assert seen == list(store.read_log(ws, task_id))


def check_tail_then_follow(store: Any, ws: str) -> None:
    """From the end of a tail, the next call returns exactly the lines appended since."""
    task_id = fill(store, ws, 50)
    window = store.tail_log(ws, task_id, 10)
    store.append_log(ws, task_id, {"event": "after"})
    new = store.tail_log(ws, task_id, 100, after=window.end)
    assert [entry["event"] for entry in new] == ["after"] and not new.more


def check_position_past_the_end_starts_over(store: Any, ws: str) -> None:
    """A position beyond the log (the task was re-created) starts again from its first line."""
    task_id = fill(store, ws, 5)
    window = store.tail_log(ws, task_id, 2, after=10**12)
    assert [entry["event"] for entry in window] == ["line 0", "line 1"]
