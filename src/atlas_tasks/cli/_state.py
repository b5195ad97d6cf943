"""The global options, shared by every command through ``ctx.obj``, and how a command opens the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from atlas_tasks.backends.file import FileStore


@dataclass(frozen=True)
class State:
    """What the root callback parsed: where the store lives and whether to show tracebacks.

    Attributes:
        home: The store's root from ``--home``; ``None`` means ``$ATLAS_HOME`` or ``~/.atlas``.
        debug: Whether ``--debug`` was given.
    """

    home: Path | None = None
    debug: bool = False

    def store(self) -> FileStore:
        """Open the file store at :attr:`home` (importing it, and pydantic, only now)."""
        from atlas_tasks.backends.file import FileStore

        return FileStore(self.home)


def state(ctx: typer.Context) -> State:
    """Return the :class:`State` the root callback stored (a default one if a command is invoked on its own).

    Args:
        ctx: Any command's context; the state lives on the root context.
    """
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()
