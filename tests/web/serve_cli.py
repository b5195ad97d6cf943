"""``atlas-tasks`` with the ``serve`` command, for tests that run before ``cli/_app.py`` registers it.

Once the command is registered this is exactly ``python -m atlas_tasks``.
"""

from __future__ import annotations

import sys

import typer

from atlas_tasks.cli import _app, _serve, _tasks
from atlas_tasks.cli._errors import AtlasGroup


def cli_app() -> typer.Typer:
    """The real app if it has ``serve``; else a copy of its root (global options) with only ``serve``."""
    if "serve" in _app.COMMANDS:  # registered by name, built when it runs (see cli/_app.py)
        return _app.app
    app = typer.Typer(cls=AtlasGroup, rich_markup_mode=None, pretty_exceptions_enable=False)
    app.callback()(_app.root)
    app.command("serve")(_serve.serve)
    app.command("list")(_tasks.list_tasks)  # a second command, so `serve` stays a subcommand
    return app


if __name__ == "__main__":
    sys.argv[0] = "atlas-tasks"
    cli_app()()
