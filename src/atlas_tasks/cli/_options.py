"""Arguments and options shared by several commands, declared once so every command spells them the same way."""

from __future__ import annotations

from typing import Annotated

import typer

WorkspaceArg = Annotated[
    str,
    typer.Argument(metavar="WS", help="Workspace name (`atlas-tasks workspace list` shows them).", show_default=False),
]
TaskArg = Annotated[
    str, typer.Argument(metavar="TASK", help="Task id (`atlas-tasks list WS` shows them).", show_default=False)
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document (its shape is in docs/cli.md).", show_default=False),
]
