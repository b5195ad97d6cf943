"""``--all-repos``: every file store under one home at once (the legacy tree and each repository's repos/<key>).

The current Go ATLAS keeps each repository's tasks in a store of its own; a person sharing a home with it wants to
see all of them in one listing, each row saying where it lives. Workspaces are never merged across stores: the same
name in two repositories stays two rows, labelled by their store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from atlas_tasks.cli._state import state

if TYPE_CHECKING:
    from atlas_tasks.cli._state import CliStore
    from atlas_tasks.store import Store


def every_store(ctx: typer.Context) -> list[tuple[str, CliStore]]:
    """``(label, store)`` for every store under the home: ``""`` for the legacy tree, else the repository's path
    (from its workspaces' ``repo_path``) or ``repos/<key>``.

    Raises:
        typer.BadParameter: a database store, or ``--repo``, was named (there is only one store then).
    """
    from atlas_tasks.backends.file import FileStore
    from atlas_tasks.repos import default_home, scoped_homes

    current = state(ctx)
    if current.url() is not None or current.repo is not None:
        raise typer.BadParameter("--all-repos lists the file stores under one home; drop --store/--repo")
    base = current.home.expanduser().absolute() if current.home is not None else default_home()
    found: list[tuple[str, CliStore]] = []
    for scoped in scoped_homes(base):
        store = FileStore(scoped.path)
        store.go_home = base
        current.track(store)
        found.append(("" if scoped.key is None else _repo_label(store, scoped.label), store))  # type: ignore[arg-type]
    return found


def _repo_label(store: Store, fallback: str) -> str:
    # The Go tool records the repository in every workspace.json it writes (repo_path); any one names it.
    for workspace in store.list_workspaces():
        if workspace.repo_path:
            return workspace.repo_path
    return fallback


AllReposOpt = Annotated[
    bool,
    typer.Option(
        "--all-repos",
        help="Every store under the home: the legacy one and each repository's (repos/<key>), each row saying which.",
    ),
]
