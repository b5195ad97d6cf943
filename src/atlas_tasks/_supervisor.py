"""The per-command supervisor: it starts one step command and, when told to or when its runner dies, kills the
command's whole process tree, including descendants that left its process group or session.

It runs as its own small process (``python -I -S _supervisor.py CTL_FD MODE ARGS...``, standard library only, so
it starts fast and is unaffected by the user's PYTHONPATH) between the runner and the command:

* it makes itself a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): every descendant whose parent exits, even after
  ``setsid`` or a double fork, is re-parented to it instead of to init, so it stays findable;
* it starts the command in a new process group with ``PR_SET_PDEATHSIG`` (the command dies if the supervisor is
  itself SIGKILLed), and tells the runner over the control socket ``started PID`` and later ``exit CODE``;
* end of file on the control socket means "stop": the runner asked (the step ended, timed out or was interrupted)
  or the runner died, however it died (the kernel closes its end). The supervisor then SIGKILLs the command's
  process group and every process whose ancestry leads to it (found in /proc), reaps them, and repeats until it has
  no child left; then it says ``done`` and exits.
* a ``term SECONDS`` line before that end of file asks for a gentler stop (a cancelled run): the tree first gets
  SIGTERM and up to SECONDS to exit by itself; whatever is left after that is SIGKILLed as above.

Being a subreaper, "no child left" means "no descendant left": an orphan is re-parented to the supervisor, so a
descendant can only exist while the supervisor has a child.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
KILL_ROUNDS_FOR = 10.0  # seconds to keep killing before giving up on an unkillable process (D state, EPERM)


def _prctl(option: int, value: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _descendants(root: int) -> list[int]:
    """Every process whose parent chain leads to ``root`` (read from /proc; races are absorbed by repeating)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):  # noqa: PTH208 - pathlib is not worth its import here
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Supervisor:
    def __init__(self, ctl: socket.socket, argv: list[str]) -> None:
        self.ctl = ctl
        self.argv = argv
        self.pid = 0
        self.reported = False

    def say(self, line: str) -> None:
        # If the runner is gone there is nobody to tell; the tree is killed all the same.
        with contextlib.suppress(OSError):
            self.ctl.sendall(line.encode("utf-8", "replace") + b"\n")

    def start(self) -> bool:
        errors_r, errors_w = os.pipe()  # close-on-exec: the child writes to it only if exec fails
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, between fork and exec
            try:
                os.close(errors_r)
                os.setpgid(0, 0)
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                # Ignored signals stay ignored across exec: give the command the default dispositions back.
                for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGXFSZ):
                    signal.signal(sig, signal.SIG_DFL)
                signal.set_wakeup_fd(-1)
                os.execvp(self.argv[0], self.argv)  # noqa: S606 - the step's own command, as configured
            except BaseException as exc:  # noqa: BLE001 - anything: report it and never return into our code
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                os.write(errors_w, f"cannot start {self.argv[0]!r}: {reason}".encode("utf-8", "replace"))
            os._exit(127)
        os.close(errors_w)
        error = b""
        while chunk := os.read(errors_r, 4096):
            error += chunk
        os.close(errors_r)
        self.pid = pid
        if error:
            os.waitpid(pid, 0)
            self.say("error " + error.decode("utf-8", "replace").replace("\n", " "))
            return False
        self.say(f"started {pid}")
        return True

    def reap(self) -> bool:
        """Reap every exited child (the command, re-parented orphans); False once no child is left at all."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.pid and not self.reported:
                self.reported = True
                self.say(f"exit {os.waitstatus_to_exitcode(status)}")

    def terminate(self, grace: float) -> None:
        """SIGTERM the command's tree, then wait up to ``grace`` seconds for every descendant to exit."""
        me = os.getpid()
        if self.pid:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGTERM)
        for pid in _descendants(me):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        give_up = time.monotonic() + grace
        while self.reap() and time.monotonic() < give_up:
            time.sleep(0.02)

    def kill_all(self) -> bool:
        me = os.getpid()
        give_up = time.monotonic() + KILL_ROUNDS_FOR
        while True:
            if self.pid:
                with contextlib.suppress(OSError):
                    os.killpg(self.pid, signal.SIGKILL)
            for pid in _descendants(me):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if not self.reap():
                return True
            if time.monotonic() > give_up:
                return False
            time.sleep(0.01)


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    mode, args = sys.argv[2], sys.argv[3:]
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    # Ctrl-C at the terminal is the runner's business (it then tells us to stop); SIGTERM and SIGHUP mean stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    stop = []
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGHUP, lambda *_: stop.append(1))
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # a second way to learn that the runner died
    sup = Supervisor(ctl, ["/bin/sh", "-c", args[0]] if mode == "shell" else args)
    started = sup.start()
    # From here only the command's tree holds the runner's output pipes: their end of file ends the step's output.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    import select

    grace = 0.0
    pending = b""
    while started and not stop:
        ready, _, _ = select.select([ctl.fileno(), wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        sup.reap()
        if ctl.fileno() in ready:
            try:
                data = ctl.recv(4096)
            except OSError:
                data = b""
            if not data:
                break
            pending += data
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                kind, _, value = line.decode("ascii", "replace").partition(" ")
                if kind == "term":
                    with contextlib.suppress(ValueError):
                        grace = max(0.0, min(float(value), 3600.0))
    if started and grace > 0:
        sup.terminate(grace)
    clean = sup.kill_all()
    sup.say("done" if clean else "done leftovers")
    ctl.close()


if __name__ == "__main__":
    main()
