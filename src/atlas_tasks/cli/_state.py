"""The global options, shared by every command through ``ctx.obj``, and how a command opens the store."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from atlas_tasks.runs import LeasingStore, Run

    class CliStore(LeasingStore):
        """What the commands use of a store: the Store contract, run leases, runs and workspace status."""

        def run(self, workspace: str, task_id: str) -> AbstractContextManager[Run]: ...

        def set_workspace_status(self, name: str, status: str) -> Any: ...


#: The environment variable naming the store when neither --store nor --home is given.
STORE_URL_ENV = "ATLAS_STORE_URL"


@dataclass(frozen=True)
class State:
    """What the root callback parsed: which store to open and whether to show tracebacks.

    Attributes:
        home: The file store's root from ``--home``.
        store_url: The store's URL from ``--store`` (``file:///…`` or ``postgresql://…``).
        debug: Whether ``--debug`` was given.
        repo: The git repository from ``--repo``: the store is that repository's repo-scoped home.

    Which store a command opens: ``--store``, else ``--repo`` (``<home>/repos/<key>``, as the Go ATLAS lays it
    out), else ``--home``, else ``$ATLAS_STORE_URL``, else, inside a git repository whose repo-scoped home exists,
    that home (a note on stderr says so), else the file store at ``$ATLAS_HOME`` (or ``~/.atlas``). With a
    database ``--store``, ``--home`` names where user templates live; with a ``file:`` one it is a usage error.
    """

    home: Path | None = None
    store_url: str | None = None
    debug: bool = False
    repo: Path | None = None
    _opened: list[Any] = field(default_factory=list, repr=False, compare=False)

    def url(self) -> str | None:
        """The URL of the store to open, or None for the file store at :attr:`home` (or its default)."""
        if self.store_url:
            return self.store_url
        if self.home is not None or self.repo is not None:
            return None
        return os.environ.get(STORE_URL_ENV) or None

    def is_file_store(self) -> bool:
        """Whether the store is a file store (decided from the URL, without opening or importing anything)."""
        url = self.url()
        return url is None or url.lower().startswith("file:")

    def store(self, **kwargs: Any) -> CliStore:
        """Open the store (importing its backend, and pydantic, only now); it is closed when the command ends.

        Args:
            **kwargs: passed to the store's constructor (``id_style`` …).

        Raises:
            typer.BadParameter: a store URL of an unknown form (a usage error, exit code 2).
            MissingExtraError: a PostgreSQL URL without the ``postgres`` extra.
        """
        url = self.url()
        if url is None:
            from atlas_tasks.backends.file import FileStore

            store: Any = FileStore(self.file_home(), **kwargs)
        else:
            from atlas_tasks.open import open_store

            try:
                store = open_store(url, **kwargs)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=self._url_hint()) from None
        self.track(store)
        return store  # type: ignore[no-any-return]

    def file_home(self) -> Path | None:
        """The file store's directory when no database store is named (None: the default home).

        ``--repo`` names ``<home>/repos/<key>``. With neither ``--home`` nor ``--repo``, a command run inside a git
        repository uses that repository's repo-scoped home when it exists, as the Go ATLAS does, and says so on
        stderr, since nothing on the command line names it.

        Raises:
            RepoNotFoundError: ``--repo`` names no existing directory.
        """
        from atlas_tasks import repos

        if self.repo is not None:
            return repos.repo_home(self.repo, self.home)
        if self.home is not None:
            return self.home
        found = repos.find_repo()
        if found is None:
            return None
        with contextlib.suppress(repos.RepoNotFoundError):
            scoped = repos.repo_home(found)
            if scoped.is_dir():
                from atlas_tasks.cli._errors import note

                note(f"using the store of git repository {found} ({scoped}); --home DIR or --repo PATH for another")
                return scoped
        return None

    def track(self, store: Any) -> None:
        """Close ``store`` with the command, like the stores :meth:`store` opens."""
        self._opened.append(store)

    def _url_hint(self) -> str:
        return "--store" if self.store_url else f"${STORE_URL_ENV}"

    def templates_home(self) -> Path:
        """Where user templates live (``<home>/templates``): the file store's home, or for a database store the
        ``--home``/``$ATLAS_HOME``/``~/.atlas`` directory of this machine."""
        url = self.url()
        if url is not None and url.lower().startswith("file:"):
            from atlas_tasks.open import file_url_path

            try:
                return Path(file_url_path(url))
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=self._url_hint()) from None
        if self.home is not None:
            return self.home.expanduser().absolute()
        return Path(os.environ.get("ATLAS_HOME") or Path("~/.atlas").expanduser()).absolute()

    def close(self) -> None:
        """Close every store the command opened (a PostgreSQL store's connection pool); never raises."""
        while self._opened:
            close = getattr(self._opened.pop(), "close", None)
            if close is not None:
                # The command's own outcome is what matters now.
                with contextlib.suppress(Exception):
                    close()


def state(ctx: typer.Context) -> State:
    """Return the :class:`State` the root callback stored (a default one if a command is invoked on its own).

    Args:
        ctx: Any command's context; the state lives on the root context.
    """
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()
