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

#: Commands for which a file store's home that does not exist yet is expected, so no warning: ``workspace create``
#: makes it, ``new`` fails anyway with an error naming the missing workspace directory, and ``serve`` reports its
#: store in its own start-up lines.
_MAY_START_EMPTY = frozenset({"workspace create", "new", "serve"})


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
    #: No notes or warnings on stderr (shell completion: whatever it prints lands in the user's prompt).
    quiet: bool = False
    _opened: list[Any] = field(default_factory=list, repr=False, compare=False)
    # The running command's name ("list", "workspace create"), as state() saw it; frozen fields, mutable contents.
    _command: list[str] = field(default_factory=list, repr=False, compare=False)
    _warned: list[Path] = field(default_factory=list, repr=False, compare=False)
    # Stores opened so far, by constructor arguments: the task-id callback and the command share one (one
    # connection pool, one "using the store of ..." note).
    _stores: dict[tuple[tuple[str, Any], ...], Any] = field(default_factory=dict, repr=False, compare=False)

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
        key = tuple(sorted(kwargs.items()))
        if key in self._stores:
            return self._stores[key]  # type: ignore[no-any-return]
        from atlas_tasks.store.capabilities import LocalFiles
        from atlas_tasks.store.urls import open_store

        url = self.url()
        if url is None:
            store: Any = self._file_store(**kwargs)
        else:
            try:
                store = open_store(url, **kwargs)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=self._url_hint()) from None
        self.track(store)
        self._stores[key] = store
        if isinstance(store, LocalFiles) and not (self._command and self._command[-1] in _MAY_START_EMPTY):
            self.warn_if_missing(store.home)
        return store  # type: ignore[no-any-return]

    def _file_store(self, **kwargs: Any) -> Any:
        """The file store when no database store is named: ``--repo``'s, ``--home``'s, else the current repository's
        repo-scoped home when it exists (as the Go ATLAS does, said on stderr since nothing on the command line names
        it), else the default home.

        Raises:
            RepoNotFoundError: ``--repo`` names no existing directory.
        """
        from atlas_tasks.store.urls import default_home, file_url, open_store

        repo = self.repo if self.repo is not None or self.home is not None else self._current_repo()
        if repo is not None:
            from atlas_tasks.backends.file import FileStore

            return FileStore.for_repo(repo, self.home, **kwargs)
        # --home DIR (or the default home) is the file store's URL: one way to open a store, as --store takes.
        return open_store(file_url(self.home if self.home is not None else default_home()), **kwargs)

    def _current_repo(self) -> Path | None:
        from atlas_tasks import repos

        found = repos.find_repo()
        if found is None:
            return None
        with contextlib.suppress(repos.RepoNotFoundError):
            scoped = repos.repo_home(found)
            if scoped.is_dir():
                if not self.quiet:
                    from atlas_tasks.cli._errors import note

                    note(f"using the store of git repository {found} ({scoped}); --home DIR or --repo PATH for another")
                return found
        return None

    def warn_if_missing(self, home: Path) -> None:
        """Warn once (on stderr) that the file store ``home`` does not exist, if the user named it.

        A mistyped ``--home`` or ``$ATLAS_HOME`` would otherwise look like an empty store. The default
        ``~/.atlas`` is left alone: before the first ``workspace create`` it is simply not there yet, and the
        commands' own notes ("no workspaces yet; create one with ...") say what to do.
        """
        source = self._home_source()
        if self.quiet or source is None or home in self._warned or home.exists():
            return
        from atlas_tasks.cli._errors import warn

        self._warned.append(home)
        warn(
            f"no store at {home} (the directory does not exist; named by {source}): check the path, or "
            "create a workspace there with `atlas-tasks workspace create NAME`"
        )

    def _home_source(self) -> str | None:
        # Where the file store's directory was named, mirroring url(); None for the default ~/.atlas.
        if self.store_url:
            return "--store"
        if self.repo is not None:
            return "--repo"
        if self.home is not None:
            return "--home"
        if os.environ.get(STORE_URL_ENV):
            return f"${STORE_URL_ENV}"
        if os.environ.get("ATLAS_HOME"):
            return "$ATLAS_HOME"
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
        from atlas_tasks.store.urls import default_home, file_url_path

        if url is not None and url.lower().startswith("file:"):
            try:
                return Path(file_url_path(url))
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=self._url_hint()) from None
        if self.home is not None:
            return self.home.expanduser().absolute()
        return default_home()

    def close(self) -> None:
        """Close every store the command opened (a PostgreSQL store's connection pool); never raises."""
        self._stores.clear()
        while self._opened:
            close = getattr(self._opened.pop(), "close", None)  # only some stores hold resources to give back
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
    current = obj if isinstance(obj, State) else State()
    # Note which command asks (its names below the root, "workspace create"): store() decides from it whether a
    # missing home deserves a warning.
    names: list[str] = []
    node: Any = ctx
    while node.parent is not None:
        names.append(node.info_name or "")
        node = node.parent
    current._command.append(" ".join(reversed(names)))
    return current
