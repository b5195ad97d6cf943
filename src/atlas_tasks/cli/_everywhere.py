"""``--all-repos``: every file store under one home at once (the legacy tree and each repository's repos/<key>).

The current Go ATLAS keeps each repository's tasks in a store of its own; a person sharing a home with it wants to
see all of them in one listing, each row saying where it lives. Workspaces are never merged across stores: the same
name in two repositories stays two rows, labelled by their store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from atlas_tasks.cli._state import state

if TYPE_CHECKING:
    from atlas_tasks.cli._state import CliStore
    from atlas_tasks.repos import ScopedHome
    from atlas_tasks.store import Store


def every_store(ctx: typer.Context) -> list[tuple[str, CliStore]]:
    """``(label, store)`` for every store under the home: ``""`` for the legacy tree, else the repository's path
    (from its workspaces' ``repo_path``) or ``repos/<key>``.

    Raises:
        typer.BadParameter: a database store, or ``--repo``, was named (there is only one store then).
    """
    from atlas_tasks.repos import scoped_homes

    base = all_repos_home(ctx)
    found: list[tuple[str, CliStore]] = []
    for scoped in scoped_homes(base):
        store = open_scoped(ctx, base, scoped)
        found.append((label_of(store, scoped), store))
    return found


def all_repos_home(ctx: typer.Context, home: Path | None = None, store_url: str | None = None) -> Path:
    """The home whose stores ``--all-repos`` covers: ``home`` (a command's own ``--home``), else the global one.

    Raises:
        typer.BadParameter: a database store, or ``--repo``, was named (there is only one store then).
    """
    from atlas_tasks.repos import default_home

    current = state(ctx)
    if store_url is not None or current.url() is not None or current.repo is not None:
        raise typer.BadParameter("--all-repos lists the file stores under one home; drop --store/--repo")
    if home is not None:
        return home.expanduser().absolute()
    return current.home.expanduser().absolute() if current.home is not None else default_home()


def open_scoped(ctx: typer.Context, base: Path, scoped: ScopedHome) -> CliStore:
    """The file store of one store under ``base``, closed when the command ends."""
    from atlas_tasks.backends.file import FileStore

    store = FileStore(scoped.path)
    store.go_home = base  # the Go tool's hook files stay in the legacy tree of this home
    state(ctx).track(store)
    return store  # type: ignore[return-value]


def label_of(store: Store, scoped: ScopedHome) -> str:
    """Where a store's rows live, for people: ``""`` for the legacy tree, else its repository's path or
    ``repos/<key>``."""
    if scoped.key is None:
        return ""
    # The Go tool records the repository in every workspace.json it writes (repo_path); any one names it.
    for workspace in store.list_workspaces():
        if workspace.repo_path:
            return workspace.repo_path
    return scoped.label


AllReposOpt = Annotated[
    bool,
    typer.Option(
        "--all-repos",
        help="Every store under the home: the legacy one and each repository's (repos/<key>), each row saying which.",
    ),
]
