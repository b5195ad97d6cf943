"""Repo-scoped homes: where the current Go ATLAS keeps a repository's workspaces and tasks.

The Go tool no longer writes new tasks under ``~/.atlas/workspaces/``: every command of its CLI and its daemon opens
``~/.atlas/repos/<key>/`` for the git repository it runs in, and lays out ``workspaces/<ws>/…`` below that exactly as
the legacy home does. ``<key>`` is the first 12 hex digits of the SHA-256 of the repository's path with every
symlink resolved (the bytes of the absolute path, no trailing slash), and the repository is the first directory
holding a ``.git`` entry (a directory, or the file of a linked worktree) on the way up from the current directory.

    store = FileStore.for_repo("~/src/shop")          # the store the Go tool uses for ~/src/shop
    repo_home("~/src/shop")                            # its directory: ~/.atlas/repos/3f2a9c01b7de

Nothing here opens a store or imports pydantic: the CLI calls :func:`find_repo` on every start-up.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from atlas_tasks.errors import AtlasTasksError

#: Hex digits of the SHA-256 the Go tool keeps in a repo-scoped home's directory name.
KEY_LENGTH = 12
_KEY_RE = re.compile(f"[0-9a-f]{{{KEY_LENGTH}}}")


class RepoNotFoundError(AtlasTasksError, FileNotFoundError):
    """A repository path given for a repo-scoped store does not exist (or is not a directory).

    Attributes: ``path``.
    """

    path: str

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"repository {path!r} {reason}: give the path of an existing git repository (--repo PATH)",
            path=path,
        )


def default_home() -> Path:
    """The home atlas-tasks uses when none is given: ``$ATLAS_HOME``, else ``~/.atlas``."""
    return Path(os.environ.get("ATLAS_HOME") or Path("~/.atlas").expanduser()).expanduser().absolute()


def resolve_repo(repo_path: str | os.PathLike[str]) -> Path:
    """The repository's path as the Go tool hashes it: absolute, with every symlink resolved.

    Raises:
        RepoNotFoundError: the path does not exist or is not a directory.
    """
    given = Path(repo_path).expanduser()
    try:
        resolved = Path(os.path.realpath(given, strict=True))
    except OSError as exc:
        raise RepoNotFoundError(str(given), f"cannot be resolved ({exc.strerror or exc})") from None
    if not resolved.is_dir():
        raise RepoNotFoundError(str(given), "is not a directory")
    return resolved


def repo_key(repo_path: str | os.PathLike[str]) -> str:
    """The 12 hex digits naming a repository's home under ``<home>/repos/`` (the Go tool's own key).

    Raises:
        RepoNotFoundError: the path does not exist or is not a directory.
    """
    resolved = os.fsencode(resolve_repo(repo_path))
    return hashlib.sha256(resolved).hexdigest()[:KEY_LENGTH]


def repo_home(repo_path: str | os.PathLike[str], home: str | os.PathLike[str] | None = None) -> Path:
    """The directory of a repository's store: ``<home>/repos/<key>`` (home: ``$ATLAS_HOME`` or ``~/.atlas``).

    Raises:
        RepoNotFoundError: the path does not exist or is not a directory.
    """
    base = default_home() if home is None else Path(home).expanduser().absolute()
    return base / "repos" / repo_key(repo_path)


@dataclass(frozen=True)
class ScopedHome:
    """One store under a home: the legacy tree (``key`` None) or a repository's ``repos/<key>/``.

    Attributes:
        key: the repository's 12-hex key, or None for the legacy ``<home>/workspaces/`` tree.
        path: the store's directory (what ``FileStore(path)`` opens).
        label: where its rows live, for people: ``legacy``, or ``repos/<key>``.
    """

    key: str | None
    path: Path

    @property
    def label(self) -> str:
        return "legacy" if self.key is None else f"repos/{self.key}"


def scoped_homes(home: str | os.PathLike[str] | None = None) -> list[ScopedHome]:
    """Every store under a home: the legacy tree first, then each repository's, in key order.

    Only directories that look like the Go tool's (a ``repos/<12 hex>`` directory, not a symlink) are listed;
    the legacy tree is listed whether or not it exists yet.
    """
    base = default_home() if home is None else Path(home).expanduser().absolute()
    found = [ScopedHome(None, base)]
    try:
        entries = sorted(os.scandir(base / "repos"), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        if _KEY_RE.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            found.append(ScopedHome(entry.name, base / "repos" / entry.name))
    return found


def find_repo(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The git repository ``start`` (default: the current directory) is in, found as the Go tool finds it.

    Walks up to the first directory that holds a ``.git`` entry (a directory, or a file in a linked worktree);
    ``None`` outside any repository, or when the current directory is gone.
    """
    try:
        here = Path(os.path.normpath(Path.cwd() if start is None else Path(start).absolute()))
    except OSError:
        return None
    for candidate in (here, *here.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None


__all__ = [
    "KEY_LENGTH",
    "RepoNotFoundError",
    "ScopedHome",
    "default_home",
    "find_repo",
    "repo_home",
    "repo_key",
    "resolve_repo",
    "scoped_homes",
]
