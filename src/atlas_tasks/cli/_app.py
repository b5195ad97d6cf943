"""The ``atlas-tasks`` application: global options, and where every command is registered.

To add a command group, write a module with its commands (see :mod:`atlas_tasks.cli._tasks`) and list them in
:data:`COMMANDS` (or :data:`GROUPS`) below; output belongs in :mod:`atlas_tasks.cli._render`, and errors need no
handling (see :mod:`atlas_tasks.cli._errors`).

Commands are registered by name and built on first use: running one command imports its own module only (``list``
never loads the code of ``serve``, ``run`` or ``migrate``), and typer turns only that function's signature into
click parameters. ``--help``, shell completion and the "did you mean" of a mistyped command see every name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Annotated, Any

import typer

from atlas_tasks.cli._errors import AtlasGroup
from atlas_tasks.cli._state import State

#: Every command, in the order ``--help`` lists them: name -> (module in this package, function, help text if it
#: is not the function's docstring).
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "list": ("_tasks", "list_tasks", None),
    "show": ("_tasks", "show", None),
    "logs": ("_tasks", "logs", None),
    "artifacts": ("_tasks", "artifacts", None),
    "new": ("_runs", "new", None),
    "run": ("_runs", "run", None),
    "resume": ("_runs", "run", "Same as `run`: continue a task from where it stopped."),
    "approve": ("_runs", "approve", None),
    "reject": ("_runs", "reject", None),
    "abandon": ("_runs", "abandon", None),
    "cancel": ("_cancel", "cancel", None),
    "retry": ("_rewind", "retry", None),
    "fork": ("_rewind", "fork", None),
    "set": ("_edit", "set_task", None),
    "delete": ("_edit", "delete", None),
    "export": ("_bundle", "export", None),
    "import": ("_bundle", "import_", None),
    "recover": ("_runs", "recover", None),
    "pin": ("_gc", "pin", None),
    "unpin": ("_gc", "unpin", None),
    "gc": ("_gc", "gc", None),
    "compact": ("_compact", "compact", None),
    "deadline": ("_guards", "deadline", None),
    "budget": ("_budgets", "budget", None),
    "doctor": ("_runs", "doctor", None),
    "serve": ("_serve", "serve", None),
    "migrate-db": ("_db", "migrate_db", None),
    "migrate": ("_db", "migrate", None),
}
#: Short names for commands: alias -> command. Hidden from ``--help``; the command's own help applies.
ALIASES: dict[str, str] = {"ls": "list"}
#: Command groups (a typer app of their own), listed after the commands: name -> (module, its typer app).
GROUPS: dict[str, tuple[str, str]] = {
    "workspace": ("_workspace", "app"),
    "templates": ("_templates", "app"),
}

# Shared by the root app and the apps each command is built in, so a command is built exactly as typer would
# build it registered on the root: plain click help and usage errors (rich's help formatter alone would double the
# start-up time), and no pretty tracebacks (library errors are handled by AtlasGroup; anything else is a bug and
# gets Python's plain traceback).
_TYPER_SETTINGS: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False}


def build_command(name: str) -> Any:
    """Import the module of the command (or group) ``name`` and build its click command, as typer builds it.

    Returns a click command (typed ``Any``: click lives in a private module of typer, ``typer._click``).

    Raises:
        KeyError: no such command.
    """
    holder = typer.Typer(**_TYPER_SETTINGS)
    if name in ALIASES:
        module, attribute, help_text = COMMANDS[ALIASES[name]]
        holder.command(name, help=help_text, hidden=True)(_load(module, attribute))
    elif name in GROUPS:
        module, attribute = GROUPS[name]
        holder.add_typer(_load(module, attribute), name=name)
    else:
        module, attribute, help_text = COMMANDS[name]
        holder.command(name, help=help_text)(_load(module, attribute))
    return typer.main.get_group(holder).commands[name]


def _load(module: str, attribute: str) -> Any:
    # `from atlas_tasks.cli import <module>`, spelled so that `python -X importtime` still shows the module
    # (importlib.import_module bypasses its accounting).
    package = __import__(__package__, fromlist=[module])
    return getattr(getattr(package, module), attribute)


class LazyCommands(MutableMapping[str, Any]):
    """The root group's commands: every name is known at once, each command is built when first looked up.

    Click and typer reach a group's commands through ``group.commands`` (``get``, ``keys``, ``items``), so this
    mapping is all it takes to make them lazy; iteration keeps the order of :data:`COMMANDS` then :data:`GROUPS`.
    """

    def __init__(
        self,
        names: list[str],
        build: Callable[[str], Any],
        built: MutableMapping[str, Any],
        *,
        aliases: list[str] | None = None,
    ) -> None:
        self._names = [*built, *(name for name in names if name not in built)]
        # Aliases can be looked up and run, but iteration (help, completion, "did you mean") shows only real names.
        self._aliases = list(aliases or [])
        self._build = build
        self._built = dict(built)

    def __getitem__(self, name: str) -> Any:
        command = self._built.get(name)
        if command is None:
            if name not in self:
                raise KeyError(name)
            command = self._built[name] = self._build(name)
        return command

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names or name in self._aliases


class RootGroup(AtlasGroup):
    """The ``atlas-tasks`` group: :class:`AtlasGroup`'s error handling, with the commands of :data:`COMMANDS` and
    :data:`GROUPS` built on demand."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands([*COMMANDS, *GROUPS], build_command, self.commands, aliases=list(ALIASES))


app = typer.Typer(
    name="atlas-tasks",
    cls=RootGroup,
    help="Run and inspect durable, crash-safe multi-step agent tasks.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    **_TYPER_SETTINGS,
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
        help="The store: file:///abs/path or postgresql://user@host:port/db. Default: the file store at --home "
        "if given, else $ATLAS_STORE_URL, else the file store at $ATLAS_HOME or ~/.atlas.",
        show_default=False,
    ),
]
RepoOpt = Annotated[
    Path | None,
    typer.Option(
        "--repo",
        metavar="PATH",
        help="Use the store the Go ATLAS keeps for this git repository: <home>/repos/<key>. Default: the "
        "current repository's, when it has one and neither --home nor --store is given.",
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
    repo: RepoOpt = None,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Run and inspect durable, crash-safe multi-step agent tasks."""
    if home is not None and store and "://" in store and store.lower().startswith("file:"):
        raise typer.BadParameter("give either --store file:///… or --home, not both", param_hint="--store")
    if repo is not None and store:
        raise typer.BadParameter("give either --store or --repo, not both", param_hint="--repo")
    state = State(home=home, store_url=store or None, debug=debug, repo=repo)
    ctx.obj = state
    ctx.call_on_close(state.close)
