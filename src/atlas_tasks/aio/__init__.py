"""The asyncio API: the Store contract and runs as coroutines, for orchestrators that run many tasks in one loop.

Names mirror the sync ones (as filelock's asyncio module does)::

    from atlas_tasks import aio

    async with aio.open_async_store("file:///srv/atlas") as astore:      # or aio.wrap(store) / AsyncStore.from_store
        task = await astore.create("payments", Task(description="..."))
        async with astore.run("payments", task.id) as run:               # the run lease, released however it ends
            async for step in run.remaining_steps():
                async with run.step(step) as ctx:
                    await ctx.log("compiling", files=3)
                    await ctx.artifact("report.json", data)
        await aio.run_task(astore, "payments", other.id)                 # command and AI steps, as subprocesses

How it works: the sync store's blocking calls run in a bounded thread pool (``max_threads``, default
:data:`DEFAULT_MAX_THREADS`), never on the event loop; calls about one task reach the store one at a time, in the
order they were issued; a call handed to a thread always completes, even when its coroutine is cancelled (the
cancellation is raised once it has). Cancelling a coroutine inside ``run.step()`` records the step as stopped and
the task as ``interrupted`` (``metadata.stop_reason.kind == "cancelled"``), releases the lease and re-raises:
``run`` resumes the task later, as after a ``cancel``.

Importing :mod:`atlas_tasks` does not import this package (nor asyncio).
"""

from __future__ import annotations

from atlas_tasks.aio._exec import drive, run_task
from atlas_tasks.aio._offload import DEFAULT_MAX_THREADS
from atlas_tasks.aio._runs import (
    CANCELLED_KIND,
    AsyncRun,
    AsyncStepContext,
    abandon,
    approve,
    cancelled_stop,
    is_interrupted,
    recover,
    reject,
)
from atlas_tasks.aio._store import (
    AsyncArtifactReader,
    AsyncChangeStamps,
    AsyncCollectorLocks,
    AsyncImportable,
    AsyncLeaseHandle,
    AsyncLocalFiles,
    AsyncRepairable,
    AsyncRunLeases,
    AsyncStore,
    AsyncTombstones,
    open_async_store,
    wrap,
)

__all__ = [
    "CANCELLED_KIND",
    "DEFAULT_MAX_THREADS",
    "AsyncArtifactReader",
    "AsyncChangeStamps",
    "AsyncCollectorLocks",
    "AsyncImportable",
    "AsyncLeaseHandle",
    "AsyncLocalFiles",
    "AsyncRepairable",
    "AsyncRun",
    "AsyncRunLeases",
    "AsyncStepContext",
    "AsyncStore",
    "AsyncTombstones",
    "abandon",
    "approve",
    "cancelled_stop",
    "drive",
    "is_interrupted",
    "open_async_store",
    "recover",
    "reject",
    "run_task",
    "wrap",
]
