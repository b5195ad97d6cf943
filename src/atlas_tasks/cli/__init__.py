"""The ``atlas-tasks`` command line: inspect workspaces, tasks, their logs and artifacts.

Start-up is kept fast: importing this package loads nothing; :func:`main` first offers the command line to the fast
path (:mod:`atlas_tasks.cli._fast`: ``list`` answered from its cache, ``--version``, without typer or pydantic),
and only when that declines loads the typer application (:data:`app`, built on first access) and its command. The
store, pydantic and rich are imported by the commands that need them, so ``atlas-tasks --help`` never loads them.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the start-up path
if TYPE_CHECKING:
    from typing import Any

    from atlas_tasks.cli._app import app

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    # `from atlas_tasks.cli import app` keeps working; the import of typer happens only then (PEP 562).
    if name == "app":
        from atlas_tasks.cli._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Run the CLI with ``sys.argv`` and exit with its exit code (the ``atlas-tasks`` console script).

    Exit codes: 0 success, 1 a library error (one ``error:`` line on stderr), 2 a usage error, 130 Ctrl-C.
    """
    try:
        from atlas_tasks.cli._fast import run

        code = run(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        from atlas_tasks.cli._app import app

        app()
    except KeyboardInterrupt:
        # typer turns Ctrl-C inside a command into exit code 130; this covers the moments around it.
        sys.exit(130)
