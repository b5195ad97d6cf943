"""Command and AI steps from a coroutine: each command's supervisor is a child process the event loop watches (its
output pipes, its control socket and a pidfd for its exit), and every store call goes through the
:class:`~atlas_tasks.aio.AsyncRun`.

No thread per run: a thousand runs waiting on their commands cost a thousand pipe readers on the loop. The work of
a step (which commands, the environment, the report artifact, the usage, retries and their backoff, what a failure
or a stop means) is the sync runner's own (:mod:`atlas_tasks.executors`); only the waiting is written again here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import random
import subprocess
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from atlas_tasks import executors, lifecycle, runs
from atlas_tasks.aio._offload import call_in, complete, settle
from atlas_tasks.aio._runs import AsyncRun, AsyncStepContext, cancelled_stop
from atlas_tasks.models import Task

if TYPE_CHECKING:
    from atlas_tasks.aio._store import AsyncStore

T = TypeVar("T")
Tick = Callable[[], Awaitable[lifecycle.Stop | None]]


class _Cancelled:
    """The first cancellation of the coroutine that a command absorbed (to kill its tree and record the step);
    :func:`run_task` raises it once the run is recorded and its lease released."""

    def __init__(self) -> None:
        self.exc: asyncio.CancelledError | None = None


async def _sure(run: AsyncRun, fn: Callable[[], T]) -> T:
    """``run._call(fn)`` carried out even if the coroutine is cancelled while it waits for the task's lock; the
    cancellation is raised after it (a step's report and retry records are written, never half-decided)."""
    return await complete(asyncio.ensure_future(run._call(fn)))


async def _supervise(
    watch: executors._Watch,
    pipes: dict[int, executors._Stream],
    tick: Tick | None,
    flush: Callable[[], Awaitable[None]],
    cancelled: _Cancelled,
) -> dict[str, Any]:
    """The loop's side of one command: readers on its pipes and control socket feed the streams and the watch;
    this coroutine acts on what is due, writes the output batches to the log and ticks about once a second.

    A cancellation kills the tree at once (no SIGTERM grace: the coroutine's owner wants it gone now), lets the
    pipes drain, and returns the entry of a command stopped by :func:`cancelled_stop`.
    """
    loop = asyncio.get_running_loop()
    ctl = watch.ctl
    ctl.setblocking(False)
    open_fds = set(pipes)
    waiter: asyncio.Future[None] | None = None

    def wake() -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_pipe(fd: int) -> None:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            pipes[fd].feed(data)
        else:
            loop.remove_reader(fd)
            open_fds.discard(fd)
        wake()

    def on_ctl() -> None:
        try:
            data = ctl.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(ctl.fileno())
        watch.heard(data)
        wake()

    async def pump(ticking: bool) -> None:
        nonlocal waiter
        while (wait := watch.due(bool(open_fds))) is not None:
            waiter = loop.create_future()
            timer = loop.call_later(wait, wake)
            try:
                await waiter
            finally:
                timer.cancel()
                waiter = None
            for stream in pipes.values():
                stream.flush()
            await flush()
            if ticking and tick is not None and watch.tick_due():
                watch.told(await tick())

    for fd in pipes:
        os.set_blocking(fd, False)
        loop.add_reader(fd, on_pipe, fd)
    loop.add_reader(ctl.fileno(), on_ctl)
    try:
        try:
            await pump(True)
        except asyncio.CancelledError as exc:
            cancelled.exc = cancelled.exc or exc
            if watch.halted is None:
                watch.halted = cancelled_stop()
                watch.error = watch.halted.reason
            watch.stop()  # end of file on the control socket: the supervisor SIGKILLs the tree now
            with contextlib.suppress(asyncio.CancelledError):  # a second cancellation: run_task raises the first
                await complete(asyncio.ensure_future(pump(False)))
    finally:
        for fd in open_fds:
            loop.remove_reader(fd)
        with contextlib.suppress(ValueError, OSError):  # ValueError: the socket is already closed
            loop.remove_reader(ctl.fileno())
        watch.close()
        for fd in pipes:
            with contextlib.suppress(OSError):
                os.close(fd)
    return watch.outcome()


async def _exited(proc: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds (None: as long as it takes) for ``proc`` to exit, reaping it; False if it is
    still there.

    The loop watches a pidfd of the process (Linux 5.3+; a short poll elsewhere): no thread waits for it. asyncio's
    own child watching on Python 3.11 (``ThreadedChildWatcher``, its default) parks one thread per child in
    ``waitpid`` for the child's whole life, which is the thread per run this module exists to avoid.
    """
    loop = asyncio.get_running_loop()
    if proc.poll() is not None:
        return True
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd on this platform or kernel
        end = None if timeout is None else loop.time() + timeout
        while proc.poll() is None:
            if end is not None and loop.time() >= end:
                return False
            await asyncio.sleep(0.02)
        return True
    readable: asyncio.Future[None] = loop.create_future()

    def exited() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(pidfd, exited)
    try:
        await asyncio.wait_for(readable, timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    proc.wait()  # it has exited: this only reaps it
    return True


async def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Wait for the supervisor to exit (it does right after it killed the tree); a stuck one is killed."""
    if not await _exited(proc, executors.KILL_GRACE):
        proc.kill()
        await _exited(proc, None)


def _spawn(wiring: executors._Wiring, cwd: os.PathLike[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(wiring.argv, cwd=cwd, env=env, **wiring.spawn)


async def _command(
    actx: AsyncStepContext,
    command: str,
    *,
    shell: bool,
    timeout: float | None,
    env: dict[str, str],
    cwd: os.PathLike[str],
    stdin: bytes | None,
    tagged: bool,
    tick: Tick,
    cancelled: _Cancelled,
) -> dict[str, Any]:
    """Run one command under its supervisor, a child process the loop watches; the same entry as the sync
    runner's ``_run_command``. Output batches go to the task log as they come (``command=`` on each one when
    ``tagged``)."""
    entry, started, spec = executors._prepared(command, shell)
    if spec is None:
        return entry
    pending: list[tuple[str, dict[str, Any]]] = []

    def log(event: str, **fields: Any) -> None:
        pending.append((event, {"command": command, **fields} if tagged else fields))

    async def flush() -> None:
        if pending:
            batch = pending[:]
            pending.clear()
            sync = actx.sync

            def write() -> None:
                for event, fields in batch:
                    sync.log(event, **fields)

            await actx.run._call(write)

    streams = {"stdout": executors._Stream("stdout", log), "stderr": executors._Stream("stderr", log)}
    with contextlib.ExitStack() as stack:
        wiring = executors._Wiring(stack, spec, stdin)
        # Started in the store's pool, not on the loop: Popen returns once the supervisor has exec'd, and under a
        # busy GIL each of its waits costs a switch interval (asyncio.create_subprocess_exec forks on the loop:
        # 8 ms a start at the median, 80 ms at worst, measured with 64 runs). A cancellation meanwhile is kept
        # until the start is over, then kills what started.
        starting = call_in(actx.run.store._pool, _spawn, wiring, cwd, env)
        interrupted = await settle(starting)
        failed = starting.exception()
        if isinstance(failed, OSError | ValueError):
            wiring.failed()
            if interrupted is not None:
                raise interrupted
            return executors._not_started(entry, started, failed)
        if failed is not None:
            wiring.failed()
            raise failed
        proc = starting.result()
        wiring.started()
        try:
            pipes = {fd: streams[name] for fd, name in wiring.readers.items()}
            watch = executors._Watch(wiring.ctl, timeout)
            if interrupted is not None:
                cancelled.exc = cancelled.exc or interrupted
                watch.halted = cancelled_stop()
                watch.error = watch.halted.reason
                watch.stop()
            outcome = await _supervise(watch, pipes, tick, flush, cancelled)
        finally:
            try:
                await complete(asyncio.ensure_future(_reap(proc)))
            except asyncio.CancelledError as exc:
                cancelled.exc = cancelled.exc or exc
    if cancelled.exc is not None and outcome["stop"] is None:
        # Cancelled after the command ended (while its supervisor was reaped): the step stops here all the same.
        stop = cancelled_stop()
        outcome["stop"], outcome["error"] = stop, outcome["error"] or stop.reason
    entry = executors._completed(entry, started, streams, outcome)
    await complete(asyncio.ensure_future(flush()))
    return entry


def _ticker(actx: AsyncStepContext, on_step: executors.Progress | None) -> Tick:
    """What a running command awaits about once a second: progress for the caller, then whether the run must stop
    (cancel request, deadline, budget)."""

    async def tick() -> lifecycle.Stop | None:
        if on_step is not None:
            on_step(actx.sync, "running")
        return await actx.run.poll()

    return tick


async def _run_commands(
    actx: AsyncStepContext,
    commands: list[str],
    workdir: str | os.PathLike[str] | None,
    on_step: executors.Progress | None,
    cancelled: _Cancelled,
) -> None:
    """As :func:`atlas_tasks.executors.run_commands`: the commands in order, the report, the first failure fails."""
    run, ctx, step = actx.run, actx.sync, actx.step
    shell = bool((step.model_extra or {}).get("shell", False))
    cwd = await run._call(lambda: executors._cwd(ctx, workdir))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + step.timeout_seconds if step.timeout_seconds else None
    results: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None
    with executors._environment(run.sync, step) as env:
        for number, command in enumerate(commands):
            left = None if deadline is None else max(0.1, deadline - loop.time())
            await actx.log("command started", command=command, cwd=str(cwd))
            own_env, usage_path = executors._usage_file(env, number)
            result = await _command(
                actx,
                command,
                shell=shell,
                timeout=left,
                env=own_env,
                cwd=cwd,
                stdin=None,
                tagged=True,
                tick=_ticker(actx, on_step),
                cancelled=cancelled,
            )
            results.append(result)

            done = functools.partial(executors._command_done, ctx, command, result, usage_path, usage)
            usage = await _sure(run, done)
            if not result["success"]:
                break
    await _sure(run, lambda: executors._commands_outcome(ctx, results, usage))


async def _run_ai(
    actx: AsyncStepContext,
    workdir: str | os.PathLike[str] | None,
    on_step: executors.Progress | None,
    cancelled: _Cancelled,
) -> None:
    """As :func:`atlas_tasks.executors.run_ai`: the AI command with the prompt on stdin, its answer an artifact."""
    run, ctx, step = actx.run, actx.sync, actx.step
    command = executors._configured_ai_command(run.task, step)
    cwd = await run._call(lambda: executors._cwd(ctx, workdir))
    await actx.log("ai command started", command=command, cwd=str(cwd))
    with executors._environment(run.sync, step) as env:
        own_env, usage_path = executors._usage_file(env, 0)
        result = await _command(
            actx,
            command,
            shell=False,
            timeout=step.timeout_seconds or None,
            env=own_env,
            cwd=cwd,
            stdin=executors.ai_prompt(run.task, step).encode("utf-8", "surrogatepass"),
            tagged=False,
            tick=_ticker(actx, on_step),
            cancelled=cancelled,
        )
        usage = await _sure(run, lambda: executors._reported(ctx, usage_path, command))
    await _sure(run, lambda: executors._ai_outcome(ctx, command, result, usage))


async def _execute(
    actx: AsyncStepContext,
    workdir: str | os.PathLike[str] | None,
    on_step: executors.Progress | None,
    cancelled: _Cancelled,
) -> None:
    work, commands = executors.plan(actx.sync)
    if work == "human":
        actx.await_approval(actx.step.prompt or actx.step.description or "waiting for approval")
    elif work == "commands":
        await _run_commands(actx, commands, workdir, on_step, cancelled)
    else:
        await _run_ai(actx, workdir, on_step, cancelled)


async def _backoff(run: AsyncRun, seconds: float, clock: executors.Clock | None) -> lifecycle.Stop | None:
    """As the sync runner's backoff: wait ``seconds``, asking ``run.poll`` at least once a second; the Stop that
    ended the wait early, or None. On the loop's clock unless ``clock`` is given (its ``sleep`` may be async)."""
    now = clock.now if clock is not None else asyncio.get_running_loop().time
    end = now() + seconds
    while True:
        stop = await run.poll(force=True)
        if stop is not None:
            return stop
        left = end - now()
        if left <= 0:
            return None
        if clock is None:
            await asyncio.sleep(min(left, runs.POLL_EVERY))
        else:
            slept: Any = getattr(clock, "sleep")(min(left, runs.POLL_EVERY))  # noqa: B009 - a sync or async sleep
            if inspect.isawaitable(slept):
                await slept


async def drive(
    run: AsyncRun,
    on_step: executors.Progress | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
    clock: executors.Clock | None = None,
    rng: random.Random | None = None,
) -> Task:
    """Execute every remaining step of a live async run, as :func:`atlas_tasks.executors.run_task` does for a sync
    one (same steps, artifacts, log lines, retries and errors); see :func:`run_task`."""
    from atlas_tasks.errors import StepFailedError

    cancelled = _Cancelled()
    rng = rng or random.Random()  # noqa: S311 - backoff jitter, not a secret
    sync = run.sync
    async with contextlib.aclosing(run.remaining_steps()) as steps:
        async for step in steps:
            index = run.task.current_step
            try:
                async with run.step(step) as actx:
                    ctx = actx.sync
                    while True:
                        if on_step:
                            on_step(ctx, "started")
                        try:
                            await _execute(actx, workdir, on_step, cancelled)
                            break
                        except executors.StepError as exc:
                            delay = await _sure(run, functools.partial(executors._retry_later, sync, ctx, exc, rng))
                            if delay is None:
                                raise
                        if on_step:
                            on_step(ctx, "retrying")
                        stop = await _backoff(run, delay, clock)
                        if stop is not None:
                            raise runs.StepStopped(stop)
                        executors._reset(ctx)
                        fresh = await run._call(functools.partial(sync._begin, index))  # the next attempt, checkpointed
                        ctx.step = fresh.step
            except runs.StepStopped:
                if on_step:
                    on_step(runs.StepContext(sync, index), "stopped")
                break  # recorded by the step's block: the task is in the stop's status, with the reason
            except executors.StepError as exc:
                if on_step:
                    on_step(runs.StepContext(sync, index), "failed")
                raise StepFailedError(
                    sync.workspace, sync.task.id, step.name, str(sync.task.status), str(exc)
                ) from None
            if on_step:
                on_step(ctx, ctx.outcome)
    if cancelled.exc is not None:
        raise cancelled.exc
    return run.task


async def run_task(
    store: AsyncStore,
    workspace: str,
    task_id: str,
    on_step: executors.Progress | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
    clock: executors.Clock | None = None,
    rng: random.Random | None = None,
) -> Task:
    """Run every remaining step of a task: ``async with store.run(ws, id) as run`` and the steps' work, as
    :func:`atlas_tasks.executors.run_task` does from a thread (same artifacts, log lines, retries, errors).

    Each command runs under its supervisor (:mod:`atlas_tasks._supervisor`), a child process the event loop watches:
    its output is read on the loop and written to the task log in batches as it comes. No thread per run (the
    store's calls use its pool as any other call), and every store call goes through the async store, so it works
    on every backend (native async PostgreSQL included). ``on_step`` is called on the loop (``"started"``,
    ``"running"`` about once a second, the outcome): keep it quick.

    Cancelling the awaiting coroutine (``task.cancel()``, a task group's shutdown, ``asyncio.timeout``) kills the
    running command's process tree at once (SIGKILL, no grace), records the step as stopped with what the command
    wrote so far in its artifact, ends the task ``interrupted`` (``metadata.stop_reason.kind == "cancelled"``),
    releases the lease, and then raises the CancelledError: what ``run_task`` does next resumes it.

    Returns the task as the run left it (completed, awaiting_approval, interrupted by a stop).

    Raises:
        What ``store.run`` raises (TaskRunningError, NotRunnableError ...), StepFailedError for a failed step.
    """
    async with store.run(workspace, task_id) as run:
        return await drive(run, on_step, workdir=workdir, clock=clock, rng=rng)


__all__ = ["drive", "run_task"]
