"""The ``atlas-tasks`` command line: inspect workspaces, tasks, their logs and artifacts.

Start-up is kept fast: importing this package loads typer and the command definitions only. The store, pydantic and
rich are imported by the commands that need them, so ``atlas-tasks --help`` never loads them.
"""

from __future__ import annotations

import sys

from atlas_tasks.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Run the CLI with ``sys.argv`` and exit with its exit code (the ``atlas-tasks`` console script).

    Exit codes: 0 success, 1 a library error (one ``error:`` line on stderr), 2 a usage error, 130 Ctrl-C.
    """
    try:
        app()
    except KeyboardInterrupt:
        # typer turns Ctrl-C inside a command into exit code 130; this covers the moments around it.
        sys.exit(130)
