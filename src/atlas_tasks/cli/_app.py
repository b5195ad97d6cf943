"""The ``atlas-tasks`` application: global options, and where every command group is registered.

To add a command group, write a module with its commands (see :mod:`atlas_tasks.cli._tasks`) and register it below;
output belongs in :mod:`atlas_tasks.cli._render`, and errors need no handling (see :mod:`atlas_tasks.cli._errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from atlas_tasks.cli import _db, _runs, _serve, _tasks, _workspace
from atlas_tasks.cli._errors import AtlasGroup
from atlas_tasks.cli._state import State

app = typer.Typer(
    name="atlas-tasks",
    cls=AtlasGroup,
    help="Run and inspect durable, crash-safe multi-step agent tasks.",
    no_args_is_help=True,
    # Plain click help and usage errors: rich's help formatter alone would double the start-up time.
    rich_markup_mode=None,
    # Library errors are handled by AtlasGroup; anything else is a bug and gets Python's plain traceback.
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from atlas_tasks import __version__

        typer.echo(f"atlas-tasks {__version__}")
        raise typer.Exit()


HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        metavar="DIR",
        help="The file store's directory (with a database --store: where user templates live). "
        "Default: $ATLAS_HOME, or ~/.atlas.",
        show_default=False,
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="The store: file:///abs/path or postgresql://user@host:port/db. Default: $ATLAS_STORE_URL, "
        "else the file store at --home.",
        show_default=False,
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]
VersionOpt = Annotated[
    bool,
    typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
]


@app.callback()
def root(
    ctx: typer.Context,
    home: HomeOpt = None,
    store: StoreOpt = None,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Run and inspect durable, crash-safe multi-step agent tasks."""
    if home is not None and store and "://" in store and store.lower().startswith("file:"):
        raise typer.BadParameter("give either --store file:///… or --home, not both", param_hint="--store")
    state = State(home=home, store_url=store or None, debug=debug)
    ctx.obj = state
    ctx.call_on_close(state.close)


app.add_typer(_workspace.app, name="workspace")
app.command("list")(_tasks.list_tasks)
app.command("show")(_tasks.show)
app.command("logs")(_tasks.logs)
app.command("artifacts")(_tasks.artifacts)
app.command("new")(_runs.new)
app.command("run")(_runs.run)
app.command("resume", help="Same as `run`: continue a task from where it stopped.")(_runs.run)
app.command("approve")(_runs.approve)
app.command("reject")(_runs.reject)
app.command("abandon")(_runs.abandon)
app.command("recover")(_runs.recover)
app.command("doctor")(_runs.doctor)
app.command("templates")(_runs.templates)
app.command("serve")(_serve.serve)
app.command("migrate-db")(_db.migrate_db)
app.command("migrate")(_db.migrate)
