"""A throwaway PostgreSQL server for tests: a fresh cluster in a temporary directory, on a free port.

    with TemporaryServer() as server:
        store = PostgresStore(server.url)

``initdb`` and ``postgres`` refuse to run as root, so as root they run as the unprivileged ``postgres`` user that
Debian's package creates (the data directory is handed to that user). The cluster trusts local connections and runs
with ``fsync=off``: it exists for the length of a test session and is deleted afterwards, so durability of the
server itself is not what is being tested.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

#: Server settings that make a disposable cluster fast; never use them for data you want to keep.
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")
#: Attempts at starting on a free port (another process may take the port between our probe and the server's bind).
_START_ATTEMPTS = 3


class ServerError(RuntimeError):
    """The throwaway server could not be found, initialised or started (the message says why and what to do)."""


def find_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, else Debian's newest ``/usr/lib/postgresql/<v>/bin``."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: _version_key(p.parent.parent))
    return versions[-1].parent if versions else None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split(".") if part.isdigit())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TemporaryServer:
    """A PostgreSQL cluster in a temporary directory, started on a free port and deleted on ``stop``.

    Args:
        bin_dir: where ``initdb`` and ``pg_ctl`` are; default :func:`find_bin_dir`.
        run_as: the user that runs the server when this process is root (default ``postgres``).
    """

    def __init__(self, bin_dir: Path | None = None, *, run_as: str = "postgres") -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise ServerError(
                "no PostgreSQL server binaries (initdb, pg_ctl) found on PATH or in /usr/lib/postgresql/*/bin; "
                "install them (Debian: apt-get install -y postgresql; in a checkout: scripts/system-deps.sh postgres)"
            )
        self.bin_dir = found
        self.run_as = run_as if os.geteuid() == 0 else None
        self.port = 0
        self.root: Path | None = None

    @property
    def url(self) -> str:
        """The connection URL (superuser ``postgres``, database ``postgres``, trust authentication)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        """Initialise and start the cluster; return its URL.

        Raises:
            ServerError: initdb or the server failed; the message holds their output.
        """
        self.root = Path(tempfile.mkdtemp(prefix="atlas-pg-", dir=self._temp_parent()))
        self._hand_over(self.root)
        data, sockets = self.root / "data", self.root / "sock"
        sockets.mkdir()
        self._hand_over(sockets)
        self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port = free_port()
            options = [f"-p {self.port}", f"-k {sockets}", "-c listen_addresses=127.0.0.1"]
            options += [f"-c {setting}" for setting in _FAST_SETTINGS]
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(data),
                    "-l",
                    str(self.root / "server.log"),
                    "-o",
                    " ".join(options),
                    "-w",
                    "start",
                )
                break
            except ServerError:
                if attempt == _START_ATTEMPTS or "could not bind" not in self.log():
                    raise
        return self.url

    def _temp_parent(self) -> str | None:
        # The server's user must be able to reach its directory: a root-only $TMPDIR will not do, /tmp will.
        parent = tempfile.gettempdir()
        if self.run_as is not None and not Path(parent).stat().st_mode & 0o001:
            return "/tmp"  # noqa: S108 - world-traversable by definition; the cluster dir inside is private
        return parent

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory; safe to call twice."""
        if self.root is None:
            return
        root, self.root = self.root, None
        with contextlib.suppress(ServerError):
            self._run("pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)

    def log(self) -> str:
        """The server's log so far (for failure messages)."""
        if self.root is None:
            return ""
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _hand_over(self, path: Path) -> None:
        # initdb insists on owning the data directory's parent chain it writes to; as root, give it to run_as.
        if self.run_as is not None:
            user = pwd.getpwnam(self.run_as)
            os.chown(path, user.pw_uid, user.pw_gid)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/", timeout=120)
        if done.returncode != 0:
            raise ServerError(
                f"{tool} failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}\n{self.log()}"
            )

    def __enter__(self) -> TemporaryServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_shared: TemporaryServer | None = None


def shared_server_url(env: str = "ATLAS_TEST_PG_URL", install: Callable[[], None] | None = None) -> str:
    """The URL of one server for a whole test session: ``$ATLAS_TEST_PG_URL`` if set, else a throwaway one.

    The throwaway server is started on the first call and stopped by :func:`stop_shared_server`.

    Args:
        env: the environment variable that names an existing server.
        install: called when no server binaries are found (e.g. to install them with apt), before giving up.

    Raises:
        ServerError: no server could be started (never a reason to skip: the backend would go untested).
    """
    global _shared
    given = os.environ.get(env)
    if given:
        return given
    if _shared is None:
        if find_bin_dir() is None and install is not None:
            install()
        server = TemporaryServer()
        server.start()
        _shared = server
    return _shared.url


def stop_shared_server() -> None:
    """Stop the session's throwaway server, if one was started (safe to call more than once)."""
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


__all__ = ["ServerError", "TemporaryServer", "find_bin_dir", "free_port", "shared_server_url", "stop_shared_server"]
