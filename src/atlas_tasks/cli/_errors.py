"""Error handling for every command, in one place, and the one-line diagnostics written to stderr.

A library error (:class:`~atlas_tasks.errors.AtlasTasksError`) becomes exactly one ``error: <message>`` line and
exit code 1, worded for the command line (its ``cli_message``: the library's own message may suggest Python
code); ``--debug`` adds the traceback above it. Usage errors stay with typer/click (exit code 2), Ctrl-C
with typer's ``_main`` (exit code 130, quietly). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

# errors.py imports nothing but the standard library, so this costs nothing at start-up.
from atlas_tasks.cli._text import printable
from atlas_tasks.errors import AtlasTasksError

EXIT_ERROR = 1


class AtlasGroup(TyperGroup):
    """The root command group: runs the chosen command and turns a library error into one stderr line."""

    def invoke(self, ctx: Any) -> Any:
        """Invoke the command; an ``AtlasTasksError`` prints ``error: <message>`` and exits with code 1.

        ``ctx`` is typed ``Any`` because click's Context lives in a private module of typer (``typer._click``).
        """
        try:
            return super().invoke(ctx)
        except AtlasTasksError as exc:
            if ctx.params.get("debug"):
                traceback.print_exception(exc, file=sys.stderr)
            error(exc.cli_message)
            raise typer.Exit(EXIT_ERROR) from None


def error(message: str) -> None:
    """Write ``error: <message>`` to stderr as exactly one line."""
    _diagnostic("error", "31", message)


def warn(message: str) -> None:
    """Write ``warning: <message>`` to stderr as exactly one line."""
    _diagnostic("warning", "33", message)


def _diagnostic(label: str, colour: str, message: str) -> None:
    # One line whatever the message holds (scripts and people read stderr line by line), and no control characters
    # from a hostile directory name or log line.
    sys.stderr.write(f"{_coloured(label, colour)}: {printable(message)}\n")
    sys.stderr.flush()


def _coloured(label: str, colour: str) -> str:
    # Only the label is coloured, and only on a terminal; plain ANSI here so the error path never loads rich.
    if os.environ.get("NO_COLOR") or not sys.stderr.isatty():
        return label
    return f"\x1b[1;{colour}m{label}\x1b[0m"


def note(message: str) -> None:
    """Write an informational line (``no tasks ...``) to stderr, keeping stdout empty for pipes."""
    sys.stderr.write(f"{printable(message)}\n")
    sys.stderr.flush()
