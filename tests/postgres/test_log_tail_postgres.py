"""PostgresStore.tail_log: windows of a task's log read by the primary key, agreeing with read_log."""

from __future__ import annotations

import sys
from pathlib import Path

from atlas_tasks.backends.postgres import PostgresStore

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
import log_tail_cases as cases


def test_tails_match_read_log(pg_store: PostgresStore, pg_ws: str) -> None:
    """The last n entries, for n below, at and above the log's length, are read_log's last n."""
    cases.check_tails_match_read_log(pg_store, pg_ws)


def test_forward_windows_cover_the_log(pg_store: PostgresStore, pg_ws: str) -> None:
    """Following ``end`` from sequence 0 in windows of 64 lines yields every entry once, in order."""
    cases.check_forward_windows_cover_the_log(pg_store, pg_ws)


def test_tail_then_follow(pg_store: PostgresStore, pg_ws: str) -> None:
    """From the end of a tail, the next call returns exactly the lines appended since."""
    cases.check_tail_then_follow(pg_store, pg_ws)


def test_position_past_the_end_starts_over(pg_store: PostgresStore, pg_ws: str) -> None:
    """A sequence number beyond the log (the task was re-created) starts again from its first line."""
    cases.check_position_past_the_end_starts_over(pg_store, pg_ws)


def test_start_counts_the_lines_before_the_tail(pg_store: PostgresStore, pg_ws: str) -> None:
    """In PostgreSQL positions are line numbers: the tail of 10 of 50 lines starts at 40."""
    task_id = cases.fill(pg_store, pg_ws, 50)
    window = pg_store.tail_log(pg_ws, task_id, 10)
    assert window.start == 40 and window.end == 50 and window.positions == list(range(41, 51))
