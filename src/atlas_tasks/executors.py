"""Step executors: what actually happens for each step type when a task runs from the CLI.

* validation, git, ci, sdd, verify, loop steps with commands: run the step's ``commands`` one by one (no shell
  unless the step says ``"shell": true``) within its ``timeout_seconds``; stdout, stderr and exit codes go into a
  versioned artifact (``validation.N.json`` for validation steps, ``<step>.N.json`` otherwise) and a summary into
  the log; the first failing command fails the step. A validation step without commands runs the task's
  ``config.validation_commands``.
* human: stop the run at awaiting_approval (``approve``/``reject`` continue it).
* ai, and sdd/verify without commands: the AI command from ``config.variables["ai_command"]`` or
  ``$ATLAS_TASKS_AI_COMMAND``, with the prompt on stdin; without one, the step fails saying how to configure it.

Where commands run (:func:`resolve_workdir`): in the ``workdir`` the caller passes, else in the workspace's
``worktree_path`` (else its ``path``). A configured directory that is missing, an unreadable workspace, or a
workspace with neither and no ``workdir`` fails the step before anything runs: never the runner's current
directory by accident.

How they run (docs/runs.md): each command under a small supervisor process (:mod:`atlas_tasks._supervisor`) that
kills the command's whole process tree when the command's main process has exited (after a short grace for its
output), when the step times out, and when the runner dies however it dies. Output is read as it comes: the last
1 MiB of each stream is kept for the artifact and batches of it go to the task log while the step runs.

Each command's environment holds ``ATLAS_HOME``, ``ATLAS_WORKSPACE``, ``ATLAS_TASK_ID``, ``ATLAS_STEP_NAME``,
``ATLAS_TASK_DESCRIPTION`` (at most 16 KiB of it), ``ATLAS_TASK_DESCRIPTION_FILE`` (the full text) and
``ATLAS_USAGE_FILE`` (a fresh private path per command where it may report the tokens and cost it used; see
:mod:`atlas_tasks.lifecycle.budgets`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import selectors
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from atlas_tasks.errors import AtlasTasksError, WorkdirError
from atlas_tasks.lifecycle import budgets
from atlas_tasks.lifecycle.budgets import USAGE_FILE_ENV
from atlas_tasks.models import Step, Task, utcnow
from atlas_tasks.runs import POLL_EVERY, Run, StepContext, StepStopped

if TYPE_CHECKING:
    from atlas_tasks.lifecycle import Stop

COMMAND_TYPES = frozenset({"validation", "git", "ci", "sdd", "verify", "loop"})
AI_TYPES = frozenset({"ai", "sdd", "verify"})
_OUTPUT_LIMIT = 1 << 20  # bytes of stdout/stderr kept per command in the artifact (the tail)
DESCRIPTION_ENV_LIMIT = 16 << 10  # bytes of the description in ATLAS_TASK_DESCRIPTION (one env string: < 128 KiB)
PIPE_GRACE = 1.0  # seconds the output pipes may stay open after the command's main process exited
KILL_GRACE = 5.0  # seconds, after a kill, to wait for the tree to die and the pipes to close
LOG_EVERY = 0.5  # seconds between output batches written to the task log (per stream)
LOG_ENTRY_LIMIT = 64 << 10  # bytes of output in one log entry; more in one batch is counted as omitted
LOG_BUDGET = 8 << 20  # bytes of one command's output (per stream) that go to the task log at most
TICK_EVERY = 1.0  # seconds between "running" progress callbacks
_SUPERVISOR = str(Path(__file__).with_name("_supervisor.py"))

Progress = Callable[[StepContext, str], None]


_LAST_WORDS = 200  # characters of a failed command's last line kept in the step's error


class StepError(Exception):
    """A step's work failed; the message is what the task records as the step's error."""


def resolve_workdir(store: Any, workspace: str, workdir: str | os.PathLike[str] | None = None) -> Path:
    """The directory a task's commands run in: ``workdir`` if given, else the workspace's worktree, else its path.

    Never the current directory by default: a workspace with neither needs an explicit ``workdir`` (``"."`` is
    fine when that is what you mean).

    Raises:
        WorkdirError: the directory does not exist or is not a directory, the workspace cannot be read, or the
            workspace names no directory and ``workdir`` is None. The message names the path and the fix.
    """
    fix_flag = "pass --workdir DIR to `atlas-tasks run` (or workdir= to run_task)"
    if workdir is not None:
        path, source = Path(workdir).expanduser().absolute(), "--workdir"
    else:
        try:
            ws = store.get_workspace(workspace)
        except AtlasTasksError as exc:
            raise WorkdirError(workspace, "", f"its workspace.json cannot be read ({exc.message})") from None
        except (OSError, ValueError) as exc:
            raise WorkdirError(workspace, "", f"its workspace.json cannot be read ({exc})") from None
        configured = [(p, name) for p, name in ((ws.worktree_path, "worktree"), (ws.path, "path")) if p]
        if not configured:
            raise WorkdirError(
                workspace,
                "",
                "it has no worktree or path, and no working directory was given; say where they run: "
                f"{fix_flag} (`--workdir .` for the current directory), or create the workspace with --worktree",
            )
        raw, kind = configured[0]
        if not Path(raw).is_absolute():
            raise WorkdirError(
                workspace, raw, f"its {kind} {raw!r} is a relative path (it would depend on where you run from)"
            )
        path, source = Path(raw), f"its {kind}"
    if not path.is_dir():
        state = "is not a directory" if path.exists() else "does not exist"
        hint = (
            "create it (e.g. `git worktree add`) or " + fix_flag
            if source != "--workdir"
            else "give an existing directory"
        )
        raise WorkdirError(workspace, str(path), f"{source} {str(path)!r} {state}; {hint}")
    return path


def needs_workdir(task: Task, step: Step) -> bool:
    """Whether running ``step`` starts processes (a command step with commands, or an AI step)."""
    kind = str(step.type)
    return (kind in COMMAND_TYPES and bool(_commands_for(task, step))) or kind in AI_TYPES


def _utf8_head(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore"), True  # "ignore" drops a character cut in half


@contextlib.contextmanager
def _environment(run: Run, step: Step) -> Iterator[dict[str, str]]:
    """The commands' environment; the full description is in a private temp file that lives as long as the step."""
    task = run.task
    for what, value in (("the task description", task.description), (f"step name {step.name!r}", step.name)):
        if "\0" in value:
            raise StepError(f"{what} contains a NUL byte, which cannot be passed to a command; remove it")
    head, cut = _utf8_head(task.description, DESCRIPTION_ENV_LIMIT)
    fd, name = tempfile.mkstemp(prefix="atlas-task-description-", suffix=".txt")
    usage_dir = ""
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(task.description.encode("utf-8", "surrogatepass"))
        # Usage files live in a directory only we (and our commands) can enter: mkdtemp makes it 0700.
        usage_dir = tempfile.mkdtemp(prefix="atlas-task-usage-")
        env = dict(os.environ)
        env.update(
            {
                "ATLAS_WORKSPACE": run.workspace,
                "ATLAS_TASK_ID": task.id,
                "ATLAS_TASK_DESCRIPTION": head,
                "ATLAS_TASK_DESCRIPTION_FILE": name,
                "ATLAS_TASK_DESCRIPTION_TRUNCATED": "1" if cut else "0",
                "ATLAS_STEP_NAME": step.name,
                USAGE_FILE_ENV: str(Path(usage_dir) / "usage-0.json"),  # a fresh one per command: _usage_file
            }
        )
        from atlas_tasks.store.capabilities import LocalFiles

        if isinstance(run.store, LocalFiles):
            env["ATLAS_HOME"] = str(run.store.home)
        yield env
    finally:
        with contextlib.suppress(OSError):
            Path(name).unlink()
        if usage_dir:
            shutil.rmtree(usage_dir, ignore_errors=True)


def _usage_file(env: dict[str, str], number: int) -> tuple[dict[str, str], str]:
    """The environment of a step's command ``number``, with a fresh ``ATLAS_USAGE_FILE`` path in the step's private
    usage directory (nothing there yet), and that path."""
    path = str(Path(env[USAGE_FILE_ENV]).parent / f"usage-{number}.json")
    return {**env, USAGE_FILE_ENV: path}, path


def _reported(ctx: StepContext, path: str, command: str) -> dict[str, Any] | None:
    """What a command wrote to its usage file; a file we cannot read is a warning in the log, never a failure."""
    usage, problem = budgets.read_usage_file(path)
    if problem:
        ctx.log("usage file ignored", level="warn", command=command, reason=problem)
    return usage


class _Stream:
    """One output stream of a command: a bounded tail for the artifact, and batches for the task log."""

    def __init__(self, name: str, log: Callable[..., None] | None) -> None:
        self.name = name
        self.tail = bytearray()
        self.total = 0
        self.log = log
        self.pending = bytearray()
        self.omitted = 0
        self.logged = 0
        self.last_flush = time.monotonic()

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        self.tail += data
        if len(self.tail) > 2 * _OUTPUT_LIMIT:  # amortised: trim only once it holds twice the limit
            del self.tail[: len(self.tail) - _OUTPUT_LIMIT]
        if self.log is None or self.logged >= LOG_BUDGET:
            return
        self.pending += data
        if len(self.pending) > 2 * LOG_ENTRY_LIMIT:
            drop = len(self.pending) - LOG_ENTRY_LIMIT
            del self.pending[:drop]
            self.omitted += drop

    def flush(self, *, final: bool = False) -> None:
        now = time.monotonic()
        if self.log is None or not (final or now - self.last_flush >= LOG_EVERY):
            return
        self.last_flush = now
        if not self.pending and not (final and self.omitted):
            return
        cut = len(self.pending) if final else self.pending.rfind(b"\n") + 1 or len(self.pending)
        chunk = bytes(self.pending[:cut])
        del self.pending[:cut]
        if len(chunk) > LOG_ENTRY_LIMIT:
            self.omitted += len(chunk) - LOG_ENTRY_LIMIT
            chunk = chunk[-LOG_ENTRY_LIMIT:]
        fields: dict[str, Any] = {"stream": self.name, "text": chunk.decode("utf-8", "replace")}
        if self.omitted:
            fields["omitted_bytes"], self.omitted = self.omitted, 0
        self.logged += len(chunk)
        if self.logged >= LOG_BUDGET:
            fields["note"] = "log budget used up: the rest of this stream is only in the artifact (its tail)"
            self.pending.clear()
        self.log("output", **fields)

    def text(self) -> str:
        return bytes(self.tail[-_OUTPUT_LIMIT:]).decode("utf-8", "replace")


def parse_command(command: str, shell: bool) -> list[str]:
    """The supervisor's arguments for ``command``; ValueError (``cannot parse command ...``, ``contains a NUL
    byte``) for one that cannot run."""
    if "\0" in command:
        raise ValueError("contains a NUL byte")
    if shell:
        return ["shell", command]
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"cannot parse command: {exc}") from None
    if not argv:
        raise ValueError("cannot parse command: it is empty")
    return ["exec", *argv]


class _Wiring:
    """The plumbing of one command under its supervisor: stdin, the output pipes and the control socket, and the
    supervisor's command line. Whichever driver starts the supervisor (:func:`subprocess.Popen` here,
    :func:`asyncio.create_subprocess_exec` in :mod:`atlas_tasks.aio`) passes it :attr:`spawn`."""

    def __init__(self, stack: contextlib.ExitStack, spec: list[str], stdin: bytes | None) -> None:
        stdin_file: Any = subprocess.DEVNULL
        if stdin is not None:
            stdin_file = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - closed by the stack
            stdin_file.write(stdin)
            stdin_file.seek(0)
        self.ctl, self._theirs = socket.socketpair()
        stack.callback(self.ctl.close)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.readers = {out_r: "stdout", err_r: "stderr"}
        self._writers = (out_w, err_w)
        self.argv = [sys.executable, "-I", "-S", _SUPERVISOR, str(self._theirs.fileno()), *spec]
        self.spawn: dict[str, Any] = {
            "stdin": stdin_file,
            "stdout": out_w,
            "stderr": err_w,
            "pass_fds": (self._theirs.fileno(),),
            "start_new_session": True,  # Ctrl-C at the terminal reaches the runner only; it stops the tree itself
        }

    def started(self) -> None:
        """The supervisor has its ends: close ours of them (the pipes then end when the tree is gone)."""
        for fd in self._writers:
            os.close(fd)
        self._theirs.close()

    def failed(self) -> None:
        """The supervisor did not start: close every end."""
        self.started()
        for fd in self.readers:
            os.close(fd)


def _prepared(command: str, shell: bool) -> tuple[dict[str, Any], Any, list[str] | None]:
    """The command's artifact entry, when it started, and the supervisor's arguments (None: it cannot run, and the
    entry says why)."""
    started = utcnow()
    entry: dict[str, Any] = {"command": command, "started_at": started.isoformat()}
    try:
        return entry, started, parse_command(command, shell)
    except ValueError as exc:
        entry.update(success=False, exit_code=-1, stdout="", stderr="", error=str(exc))
        return _finish(entry, started), started, None


def _not_started(entry: dict[str, Any], started: Any, exc: BaseException) -> dict[str, Any]:
    entry.update(success=False, exit_code=-1, stdout="", stderr="", error=f"cannot start: {exc}")
    return _finish(entry, started)


def _completed(
    entry: dict[str, Any], started: Any, streams: dict[str, _Stream], outcome: dict[str, Any]
) -> dict[str, Any]:
    """The command's artifact entry from what its supervision saw (exit code, error, stop) and its streams."""
    for stream in streams.values():
        stream.flush(final=True)
    stopped = outcome.pop("stop", None)
    entry.update(outcome)
    if stopped is not None:
        entry["stopped"] = {"kind": stopped.kind, "reason": stopped.reason}
        entry["_stop"] = stopped
    for name, stream in streams.items():
        entry[name] = stream.text()
        entry[f"{name}_bytes"] = stream.total
        entry[f"{name}_truncated"] = stream.total > _OUTPUT_LIMIT
    entry["success"] = entry["exit_code"] == 0 and not entry.get("error")
    return _finish(entry, started)


def _run_command(
    command: str,
    *,
    shell: bool,
    timeout: float | None,
    env: dict[str, str],
    cwd: str | os.PathLike[str] | None,
    stdin: bytes | None = None,
    log: Callable[..., None] | None = None,
    tick: Callable[[], Stop | None] | None = None,
) -> dict[str, Any]:
    """Run one command under a supervisor; read its output as it comes; kill its tree when it is over.

    Returns the artifact's entry for the command: exit code, success, the tails of stdout/stderr, their sizes and
    whether they were cut, and an ``error`` for a timeout or a command that could not start. ``tick`` is called
    about once a second; when it returns a :class:`~atlas_tasks.lifecycle.Stop` the command's tree is terminated
    (SIGTERM, SIGKILL after the stop's grace) and the entry carries ``"stopped": {"kind", "reason"}``.
    """
    entry, started, spec = _prepared(command, shell)
    if spec is None:
        return entry
    streams = {"stdout": _Stream("stdout", log), "stderr": _Stream("stderr", log)}
    with contextlib.ExitStack() as stack:
        wiring = _Wiring(stack, spec, stdin)
        try:
            proc = subprocess.Popen(wiring.argv, cwd=cwd, env=env, **wiring.spawn)
        except (OSError, ValueError) as exc:
            wiring.failed()
            return _not_started(entry, started, exc)
        wiring.started()
        stack.callback(_reap, proc)
        pipes = {fd: streams[name] for fd, name in wiring.readers.items()}
        outcome = _supervise(_Watch(wiring.ctl, timeout), pipes, tick)
    return _completed(entry, started, streams, outcome)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    # The supervisor exits right after it killed the tree; if it is stuck, do not wait for it forever.
    try:
        proc.wait(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Watch:
    """The decisions about one supervised command, whichever loop reads its pipes and control socket (the selector
    loop of :func:`_supervise`, or asyncio's in :mod:`atlas_tasks.aio`): when to tell the supervisor to stop, when
    the command is over, and what its entry says about how it ended."""

    def __init__(self, ctl: socket.socket, timeout: float | None) -> None:
        self.ctl = ctl
        self.timeout = timeout
        now = time.monotonic()
        self.deadline = None if timeout is None else now + timeout
        self.exited_at: float | None = None  # when the command's main process exited
        self.stop_at: float | None = None  # when we told the supervisor to kill the tree
        self.next_tick = now + TICK_EVERY
        self.exit_code: int | None = None
        self.error = ""
        self.halted: Stop | None = None  # the run was told to stop (cancel, deadline, budget)
        self.supervisor_gone = False
        self._messages = b""

    def heard(self, data: bytes) -> None:
        """What the supervisor said on the control socket; ``b""``: it closed it (it is gone)."""
        if not data:
            self.supervisor_gone = True
            return
        self._messages += data
        while b"\n" in self._messages:
            line, _, self._messages = self._messages.partition(b"\n")
            kind, _, rest = line.decode("utf-8", "replace").partition(" ")
            if kind == "exit":
                self.exit_code, self.exited_at = int(rest), time.monotonic()
            elif kind == "error":
                self.error, self.exit_code, self.exited_at = rest, -1, time.monotonic()

    def stop(self, grace: float = 0.0) -> None:
        """Tell the supervisor to kill the tree (SIGTERM first and SIGKILL after ``grace`` seconds, if any)."""
        if self.stop_at is None:
            # The KILL_GRACE wait for the tree to be gone starts after the SIGTERM grace.
            self.stop_at = time.monotonic() + grace
            with contextlib.suppress(OSError):
                if grace > 0:
                    self.ctl.sendall(f"term {grace:.3f}\n".encode("ascii"))  # SIGTERM first, SIGKILL after grace
                self.ctl.shutdown(socket.SHUT_WR)  # end of file: the supervisor kills the tree, says done, exits

    def due(self, pipes_open: bool) -> float | None:
        """Act on what is due now; None when the command is over, else the seconds to wait for news at most."""
        now = time.monotonic()
        if self.stop_at is None:
            if self.deadline is not None and now >= self.deadline:
                self.error = f"timed out after {self.timeout:.3g}s"
                self.stop()
            elif self.exited_at is not None and (not pipes_open or now >= self.exited_at + PIPE_GRACE):
                self.stop()  # a step's leftovers do not outlive it
            elif self.supervisor_gone:
                self.stop()
        if self.stop_at is not None and ((self.supervisor_gone and not pipes_open) or now >= self.stop_at + KILL_GRACE):
            return None
        waits = [self.next_tick, now + LOG_EVERY]
        if self.stop_at is not None:
            waits.append(self.stop_at + KILL_GRACE)
        elif self.exited_at is not None:
            waits.append(self.exited_at + PIPE_GRACE)
        if self.deadline is not None and self.stop_at is None:
            waits.append(self.deadline)
        return max(0.0, min(waits) - now)

    def tick_due(self) -> bool:
        """Whether the about-once-a-second tick is due (and if so, the next one is a second away)."""
        now = time.monotonic()
        if now < self.next_tick:
            return False
        self.next_tick = now + TICK_EVERY
        return True

    def told(self, stop: Stop | None) -> None:
        """The tick's answer: a Stop terminates the tree (once) and is recorded as why the command ended."""
        if stop is not None and self.stop_at is None and self.halted is None:
            self.halted, self.error = stop, stop.reason
            self.stop(stop.grace)

    def close(self) -> None:
        """However the driver leaves (done, timeout, Ctrl-C, a cancelled coroutine, an error), the supervisor is
        told to kill the tree."""
        with contextlib.suppress(OSError):
            self.ctl.shutdown(socket.SHUT_WR)

    def outcome(self) -> dict[str, Any]:
        exit_code, error = self.exit_code, self.error
        if exit_code is None:
            exit_code = -1
            error = error or "the command's supervisor ended before the command (killed?)"
        return {"exit_code": exit_code, "error": error, "stop": self.halted}


def _supervise(
    watch: _Watch,
    pipes: dict[int, _Stream],
    tick: Callable[[], Stop | None] | None,
) -> dict[str, Any]:
    """The runner's side of one command: a select loop over its output pipes and the supervisor's messages."""
    ctl = watch.ctl
    sel = selectors.DefaultSelector()
    try:
        for fd in pipes:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        sel.register(ctl, selectors.EVENT_READ)
        while (wait := watch.due(any(sel.get_map().get(fd) is not None for fd in pipes))) is not None:
            for key, _ in sel.select(wait):
                if key.fileobj is ctl:
                    try:
                        data = ctl.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(ctl)
                    watch.heard(data)
                else:
                    fd = int(key.fd)
                    try:
                        data = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if data:
                        pipes[fd].feed(data)
                    else:
                        sel.unregister(fd)
            for stream in pipes.values():
                stream.flush()
            if tick is not None and watch.tick_due():
                watch.told(tick())
    finally:
        watch.close()
        sel.close()
        for fd in pipes:
            with contextlib.suppress(OSError):
                os.close(fd)
    return watch.outcome()


def _finish(entry: dict[str, Any], started: Any) -> dict[str, Any]:
    done = utcnow()
    entry["completed_at"] = done.isoformat()
    entry["duration_ms"] = int((done - started).total_seconds() * 1000)
    if not entry.get("error"):
        entry.pop("error", None)
    return entry


def _commands_for(task: Task, step: Step) -> list[str]:
    if step.commands:
        return list(step.commands)
    if str(step.type) == "validation":
        return list(task.config.validation_commands)
    return []


def _ticker(ctx: StepContext, on_step: Progress | None) -> Callable[[], Stop | None]:
    """What a running command calls about once a second: progress for the caller, then whether the run must stop
    (:meth:`atlas_tasks.runs.Run.poll`: cancel, deadline, budget)."""

    def tick() -> Stop | None:
        if on_step is not None:
            on_step(ctx, "running")
        return ctx.run.poll()

    return tick


def _cwd(ctx: StepContext, workdir: str | os.PathLike[str] | None) -> Path:
    try:
        return resolve_workdir(ctx.run.store, ctx.run.workspace, workdir)
    except WorkdirError as exc:
        raise StepError(exc.message) from None


def run_commands(
    ctx: StepContext,
    commands: list[str],
    *,
    workdir: str | os.PathLike[str] | None = None,
    on_step: Progress | None = None,
) -> None:
    """Run ``commands`` in order for the step; record them in a versioned artifact; fail on the first failure."""
    run, step = ctx.run, ctx.step
    shell = bool((step.model_extra or {}).get("shell", False))
    cwd = _cwd(ctx, workdir)
    deadline = time.monotonic() + step.timeout_seconds if step.timeout_seconds else None
    results: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None
    with _environment(run, step) as env:
        for number, command in enumerate(commands):
            left = None if deadline is None else max(0.1, deadline - time.monotonic())
            ctx.log("command started", command=command, cwd=str(cwd))
            own_env, usage_path = _usage_file(env, number)
            result = _run_command(
                command,
                shell=shell,
                timeout=left,
                env=own_env,
                cwd=cwd,
                log=lambda event, _c=command, **f: ctx.log(event, command=_c, **f),
                tick=_ticker(ctx, on_step),
            )
            results.append(result)
            usage = _command_done(ctx, command, result, usage_path, usage)
            if not result["success"]:
                break
    _commands_outcome(ctx, results, usage)


def _command_done(
    ctx: StepContext, command: str, result: dict[str, Any], usage_path: str, usage: dict[str, Any] | None
) -> dict[str, Any] | None:
    """After one command of a step, whichever driver ran it: what it reported in its usage file (a warning in the
    log if unreadable) added to the step's usage, which this returns, and the "command finished" log line."""
    reported = _reported(ctx, usage_path, command)
    if reported is not None:
        usage = budgets.add(usage, reported)
    ctx.log(
        "command finished",
        level="info" if result["success"] else "error",
        command=command,
        exit_code=result["exit_code"],
        duration_ms=result["duration_ms"],
    )
    return usage


def _commands_outcome(ctx: StepContext, results: list[dict[str, Any]], usage: dict[str, Any] | None) -> None:
    """What a command step's results mean, whichever driver ran them (this thread or asyncio subprocesses): the
    usage recorded, the versioned report artifact, the step's output, and StepStopped / StepError to raise."""
    step = ctx.step
    # Before anything below can raise: the step's checkpoint (success or failure) then records it with the step.
    budgets.record(ctx, usage, "usage_file")
    success = all(r["success"] for r in results)
    report = {
        "success": success,
        "step_name": step.name,
        "results": results,
        "duration_ms": sum(r["duration_ms"] for r in results),
    }
    if str(step.type) == "validation":
        report["failed_step"] = "" if success else results[-1]["command"]
    stop = results[-1].pop("_stop", None) if results else None
    base = "validation.json" if str(step.type) == "validation" else f"{step.name}.json"
    saved = ctx.artifact(base, json.dumps(report, indent=2, ensure_ascii=False), versioned=True)
    ctx.output = f"{len(results)} command(s), " + ("all passed" if success else f"failed: {results[-1]['command']}")
    if stop is not None:
        raise StepStopped(stop)
    if not success:
        last = results[-1]
        detail = last.get("error") or f"exit code {last['exit_code']}"
        said = _last_words(last)
        why = f": {said}" if said else ""
        raise StepError(f"`{last['command']}` failed ({detail}){why}; its output is in artifacts/{saved}")


def ai_command(task: Task) -> str:
    """The command AI steps of ``task`` run: ``config.variables["ai_command"]`` or ``$ATLAS_TASKS_AI_COMMAND``."""
    return str(task.config.variables.get("ai_command") or os.environ.get("ATLAS_TASKS_AI_COMMAND", ""))


def ai_prompt(task: Task, step: Step) -> str:
    """The prompt an AI step sends on stdin: the step's prompt, else its description and the task's."""
    return step.prompt or f"{step.description}\n\nTask: {task.description}\n"


def _last_words(result: dict[str, Any]) -> str:
    """The last non-blank line a failed command wrote (stderr first), cut short: why it failed, in its own words
    (git's "nothing to commit, working tree clean"), so the step's error says it without opening the artifact."""
    for stream in ("stderr", "stdout"):
        lines = [line.strip() for line in str(result.get(stream) or "")[-4096:].splitlines() if line.strip()]
        if lines:
            return lines[-1] if len(lines[-1]) <= _LAST_WORDS else lines[-1][: _LAST_WORDS - 1] + "…"
    return ""


def _configured_ai_command(task: Task, step: Step) -> str:
    """The AI command ``step`` runs; StepError saying how to configure one when there is none."""
    command = ai_command(task)
    if not command:
        raise StepError(
            f"step {step.name!r} is an AI step and no AI command is configured: set the task's "
            "config.variables['ai_command'] (e.g. `atlas-tasks new ... --ai-command 'claude -p'`) "
            "or the ATLAS_TASKS_AI_COMMAND environment variable"
        )
    return command


def run_ai(ctx: StepContext, *, workdir: str | os.PathLike[str] | None = None, on_step: Progress | None = None) -> None:
    """Run the configured AI command with the prompt on stdin; its output becomes a versioned artifact."""
    run, step = ctx.run, ctx.step
    command = _configured_ai_command(run.task, step)
    cwd = _cwd(ctx, workdir)
    ctx.log("ai command started", command=command, cwd=str(cwd))
    with _environment(run, step) as env:
        own_env, usage_path = _usage_file(env, 0)
        result = _run_command(
            command,
            shell=False,
            timeout=step.timeout_seconds or None,
            env=own_env,
            cwd=cwd,
            stdin=ai_prompt(run.task, step).encode("utf-8", "surrogatepass"),
            log=ctx.log,
            tick=_ticker(ctx, on_step),
        )
        usage = _reported(ctx, usage_path, command)
    _ai_outcome(ctx, command, result, usage)


def _ai_outcome(ctx: StepContext, command: str, result: dict[str, Any], usage: dict[str, Any] | None) -> None:
    """What an AI command's result means, whichever driver ran it: the usage (its file, else its output), the
    versioned answer artifact, the step's output, and StepStopped / StepError to raise."""
    step = ctx.step
    source = "usage_file"
    if usage is None:
        # The command said nothing in the file: the usage its agent CLI printed, if its output is such a document
        # (of a cut output only whole lines count: the final result line or turn events are at its end).
        stdout = result["stdout"]
        if result.get("stdout_truncated"):
            stdout = stdout.partition("\n")[2]
        usage, source = budgets.parse_agent_output(stdout)
    budgets.record(ctx, usage, source)  # before anything below can raise: recorded with the step, exactly once
    stop = result.pop("_stop", None)
    ctx.artifact(f"{step.name}.md", result["stdout"], versioned=True)
    ctx.output = result["stdout"][-2000:]
    if stop is not None:
        raise StepStopped(stop)
    if not result["success"]:
        raise StepError(
            f"AI command `{command}` failed ({result.get('error') or 'exit ' + str(result['exit_code'])})"
            + (f": {result['stderr'].strip()[-500:]}" if result["stderr"].strip() else "")
        )


def execute(
    ctx: StepContext, *, workdir: str | os.PathLike[str] | None = None, on_step: Progress | None = None
) -> None:
    """Do the step's work according to its type (see the module docstring).

    ``workdir``: where commands run (see :func:`resolve_workdir`); ``on_step(ctx, "running")`` is called about
    once a second while a command runs.
    """
    work, commands = plan(ctx)
    if work == "human":
        ctx.await_approval(ctx.step.prompt or ctx.step.description or "waiting for approval")
    elif work == "commands":
        run_commands(ctx, commands, workdir=workdir, on_step=on_step)
    else:
        run_ai(ctx, workdir=workdir, on_step=on_step)


def plan(ctx: StepContext) -> tuple[str, list[str]]:
    """What the step's work is, for any driver: ``("human", [])``, ``("commands", commands)`` or ``("ai", [])``;
    StepError for a step with nothing to run."""
    kind = str(ctx.step.type)
    if kind == "human":
        return "human", []
    commands = _commands_for(ctx.run.task, ctx.step)
    if kind in COMMAND_TYPES and commands:
        return "commands", commands
    if kind in AI_TYPES:
        return "ai", []
    where = (
        "the step's commands or the task's validation commands (`new --validate CMD`)"
        if kind == "validation"
        else "the step's commands in the template"
    )
    raise StepError(f"step {ctx.step.name!r} ({kind}) has no commands to run; configure {where}")


class Clock(Protocol):
    """What the retry loop waits with: ``now()`` in seconds (monotonic), ``sleep(seconds)``."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """The wall: :func:`time.monotonic` and :func:`time.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _backoff(run: Run, seconds: float, clock: Clock) -> Stop | None:
    """Wait ``seconds`` before a retry, asking :meth:`Run.poll` at least once a second so a cancel (or a deadline)
    stops the run during the wait too; returns that Stop, or None when the wait is over."""
    end = clock.now() + seconds
    while True:
        stop = run.poll(force=True)
        if stop is not None:
            return stop
        left = end - clock.now()
        if left <= 0:
            return None
        clock.sleep(min(left, POLL_EVERY))


def _last_command(run: Run, ctx: StepContext) -> dict[str, Any] | None:
    """The last command's entry in the attempt's artifact (its exit code, error, output tails), if it wrote one."""
    if not ctx.artifact_path:
        return None
    try:
        raw = run.store.get_artifact(run.workspace, run.task.id, ctx.artifact_path.removeprefix("artifacts/"))
        results = json.loads(raw).get("results") or []
    except (AtlasTasksError, ValueError, AttributeError):
        return None
    last = results[-1] if results else None
    return last if isinstance(last, dict) else None


def _retry_later(run: Run, ctx: StepContext, exc: StepError, rng: random.Random) -> float | None:
    """Whether this failed attempt gets another one; if so record it (its own StepResult) and return the wait."""
    from atlas_tasks.lifecycle import retries

    step = run.task.steps[ctx.index]  # the checkpointed copy (ctx.step may be an older one)
    policy = retries.policy_for(run.task, step)
    kind, code, retry_after = retries.classify(_last_command(run, ctx), str(exc))
    delay = retries.next_delay(policy, step.attempts, kind, code, retry_after, rng)
    if delay is None:
        return None
    ctx.metadata.update(attempt=step.attempts, retry_in=delay, failure=kind)
    if retry_after is not None:
        ctx.metadata["retry_after"] = retry_after
    ctx.log("step failed", level="warn", error=str(exc), attempt=step.attempts)
    run._result(ctx, "failed", str(exc))
    # Pending while it waits: the task stays running (a status Go knows); a crash now resumes the step as a new
    # attempt, and the attempts so far are in the checkpoint.
    step.status = "pending"
    run.checkpoint()
    # Only now the announcement: a crash can no longer lose the attempt this line says will be retried.
    ctx.log(f"retrying in {delay:g}s", attempt=step.attempts, retry_in=delay)
    return delay


def _reset(ctx: StepContext) -> None:
    ctx.output, ctx.files_changed, ctx.metadata, ctx.artifact_path, ctx.outcome = "", [], {}, "", "success"


def run_task(
    run: Run,
    on_step: Progress | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> Task:
    """Execute every remaining step of a live run; a failing step is recorded and re-raised as StepFailedError.

    ``on_step(ctx, what)`` hears ``"started"``, ``"running"`` (about once a second during a command), and the
    step's outcome (``"success"``, ``"awaiting_approval"`` ...) or ``"failed"``. ``workdir``: where the commands
    run when the workspace has no worktree/path (or to override it); see :func:`resolve_workdir`.

    A step with a retry policy (:mod:`atlas_tasks.lifecycle.retries`) that fails retryably runs again after a
    backoff waited on ``clock`` (default: the real one); each attempt is its own StepResult. ``rng`` draws the
    jitter (default: a fresh ``random.Random()``).
    """
    from atlas_tasks.errors import StepFailedError

    clock = clock or RealClock()
    rng = rng or random.Random()  # noqa: S311 - backoff jitter, not a secret
    for step in run.remaining_steps():
        index = run.task.current_step
        try:
            with run.step(step) as ctx:
                while True:
                    if on_step:
                        on_step(ctx, "started")
                    try:
                        execute(ctx, workdir=workdir, on_step=on_step)
                        break
                    except StepError as exc:
                        delay = _retry_later(run, ctx, exc, rng)
                        if delay is None:
                            raise
                    if on_step:
                        on_step(ctx, "retrying")
                    stop = _backoff(run, delay, clock)
                    if stop is not None:
                        raise StepStopped(stop)
                    _reset(ctx)
                    fresh = run._begin(index)  # the next attempt: running, attempts + 1, checkpointed
                    ctx.step = fresh.step
        except StepStopped:
            if on_step:
                on_step(StepContext(run, index), "stopped")
            return run.task  # recorded by Run.step: the task is in the stop's status, with the reason
        except StepError as exc:
            if on_step:
                on_step(StepContext(run, index), "failed")
            raise StepFailedError(run.workspace, run.task.id, step.name, str(run.task.status), str(exc)) from None
        if on_step:
            on_step(ctx, ctx.outcome)
    return run.task
