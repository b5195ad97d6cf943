"""Arguments and options shared by several commands, declared once so every command spells them the same way."""

from __future__ import annotations

from typing import Annotated

import typer

from atlas_tasks.cli._ids import complete_task, complete_workspace, task_callback

# Commands name this argument `workspace`: the TASK argument's callback reads the workspace from there.
WorkspaceArg = Annotated[
    str,
    typer.Argument(
        metavar="WS",
        help="Workspace name (`atlas-tasks workspace list` shows them).",
        show_default=False,
        autocompletion=complete_workspace,
    ),
]
#: A task id, resolved to the full id before the command runs: an exact id, `latest`, or an unambiguous start or
#: end of an id (see :mod:`atlas_tasks.cli._ids`). It must follow a WorkspaceArg named `workspace`.
TaskArg = Annotated[
    str,
    typer.Argument(
        metavar="TASK",
        help="Task id (`atlas-tasks list WS` shows them): the full id, `latest`, or a unique part of it "
        "(its start, or its end such as 052952).",
        show_default=False,
        callback=task_callback,
        autocompletion=complete_task,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document (its shape is in docs/cli.md).", show_default=False),
]
