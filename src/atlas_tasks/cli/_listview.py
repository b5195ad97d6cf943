"""The ``list`` table's cells, and the table as rich writes it into a pipe, without rich or pydantic.

:func:`atlas_tasks.cli._render.print_task_list` (the full command) and :mod:`atlas_tasks.cli._fast` (the fast
path) both build the table's cells here, so they cannot disagree on what a row says. Into a pipe or a file the
table is written by :func:`plain_table` when it is sure to write what rich would (and rich writes it otherwise):
loading rich was about a quarter of a cold ``list``'s time. Only the standard library and
:mod:`atlas_tasks.views.text` are imported here.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime

from atlas_tasks.views.text import DESCRIPTION_WIDTH, ago, printable, step_progress, truncate

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the fast path's start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from atlas_tasks.views.display import DisplayState

#: The rich style of each stored status in a table.
STATUS_STYLES = {
    "pending": "dim",
    "running": "cyan",
    "validating": "cyan",
    "awaiting_approval": "magenta",
    "completed": "green",
    "success": "green",
    "no_changes": "green",
    "skipped": "dim",
    "abandoned": "dim",
    "interrupted": "yellow",
    "ci_timeout": "yellow",
    "validation_failed": "red",
    "rejected": "red",
    "gh_failed": "red",
    "ci_failed": "red",
    "failed": "red",
}

# Characters rich draws one cell wide and writes unchanged in a table cell (tests/cli/test_cli_fast.py checks each
# against rich.cells): printable ASCII, the ellipsis truncate() adds, and the Latin-1 letters.
_ONE_CELL = frozenset(chr(code) for code in [*range(0x20, 0x7F), 0x2026, *range(0xC0, 0x100)])


def status_text(state: DisplayState) -> tuple[str, str]:
    """A display state's status as (text, rich style): ``interrupted (crashed)`` in bold red for a dead run."""
    if state.crashed:
        return state.label, "bold red"
    text = printable(str(state.task.status))
    return text, STATUS_STYLES.get(text, "")


def list_cells(
    states: Sequence[DisplayState], now: datetime, *, workspaces: Sequence[str] | None = None
) -> tuple[list[dict[str, str]], list[str]]:
    """The ``list`` table's rows (column name -> text, in column order) and each row's status style."""
    rows: list[dict[str, str]] = []
    styles: list[str] = []
    for index, state in enumerate(states):
        task = state.task
        row: dict[str, str] = {"WORKSPACE": printable(workspaces[index])} if workspaces is not None else {}
        status, style = status_text(state)
        styles.append(style)
        row |= {
            "ID": printable(task.id),
            "STATUS": status,
            "TEMPLATE": printable(task.template) or "-",
            "STEP": step_progress(task),
            "CREATED": ago(task.created_at, now),
            "UPDATED": ago(task.updated_at, now),
            # A fork whose build has not finished (or whose builder died) must not pass for a task to run.
            "DESCRIPTION": truncate(
                ("[incomplete fork] " if task.metadata.get("fork_incomplete") else "") + task.description,
                DESCRIPTION_WIDTH,
            ),
        }
        rows.append(row)
    return rows, styles


def plain_stdout() -> bool:
    """Whether rich would take stdout for no terminal (no colour, no width limit): a pipe or a file, nothing forced
    by rich's environment variables."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return False  # rich's own overrides: let rich decide
    try:
        return not sys.stdout.isatty()
    except ValueError:
        return False


def plain_table(rows: Sequence[Mapping[str, str]]) -> str | None:
    """The table as rich writes it into a pipe (see :class:`atlas_tasks.cli._render._Output`); None when unsure.

    Into a pipe the table is a header line and one line per row: each cell left-aligned in its column's width (its
    widest cell or header), two spaces between columns, trailing spaces stripped. That is exact only when every
    character is one cell wide and no cell starts or ends with a space (rich's measuring and cropping then change
    nothing); otherwise None, and the caller renders with rich.
    """
    headers = list(rows[0]) if rows else []
    for row in rows:
        for cell in row.values():
            if cell != cell.strip(" ") or not _ONE_CELL.issuperset(cell):
                return None
    widths = [max([len(name), *(len(row[name]) for row in rows)]) for name in headers]
    lines = ["  ".join(name.ljust(width) for name, width in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(row[name].ljust(width) for name, width in zip(headers, widths, strict=True)).rstrip())
    return "".join(line + "\n" for line in lines)


__all__ = ["STATUS_STYLES", "list_cells", "plain_stdout", "plain_table", "status_text"]
