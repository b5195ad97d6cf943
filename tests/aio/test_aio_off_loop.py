"""The event loop thread never touches the file store's files: every open happens on another thread.

Checked with an audit hook (``open`` is raised for ``open()`` and ``os.open``; directory listings and renames have
their own events), in a child interpreter because audit hooks cannot be removed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, threading
    from atlas_tasks import FileStore, Step, Task, aio

    WATCHED = {"open", "os.listdir", "os.scandir", "os.rename", "os.replace", "os.remove", "os.mkdir", "os.unlink"}
    on_loop = []
    loop_thread = None

    def hook(event, args):
        if event in WATCHED and threading.get_ident() == loop_thread:
            on_loop.append((event, str(args[0])[-60:]))

    async def work(astore):
        global loop_thread
        loop_thread = threading.get_ident()
        if sys.argv[2] == "sync":  # the negative control: the sync store called from the loop
            astore.sync_store.create_workspace("direct")
        await astore.create_workspace("ws")
        steps = [Step(name=n, type="validation") for n in ("a", "b")]
        tasks = await asyncio.gather(*(astore.create("ws", Task(description="x", steps=steps)) for _ in range(4)))

        async def one(task_id):
            async with astore.run("ws", task_id) as run:
                async for step in run.remaining_steps():
                    async with run.step(step) as ctx:
                        await ctx.log("hi")
                        await ctx.artifact("r.txt", "data", versioned=True)

        await asyncio.gather(*(one(t.id) for t in tasks))
        async with astore.edit("ws", tasks[0].id) as t:
            t.description = "edited"
        await astore.list("ws")
        await astore.list_summaries("ws")
        [e async for e in astore.iter_log("ws", tasks[0].id)]
        [t async for t in astore.iter_tasks("ws")]
        [e async for e in astore.follow_log("ws", tasks[0].id, until=lambda: True, poll=0.01)]
        reader = await astore.open_artifact("ws", tasks[0].id, "r.1.txt")
        await reader.read()
        await astore.delete("ws", tasks[1].id)
        loop_thread = None

    async def main():
        async with aio.wrap(FileStore(sys.argv[1])) as astore:
            await work(astore)

    sys.addaudithook(hook)
    asyncio.run(main())
    print(len(on_loop), on_loop[:5])
    """
)


def _on_loop(home: Path, mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(home), mode], capture_output=True, text=True, timeout=120, check=True
    )
    return int(done.stdout.split()[0])


def test_the_loop_thread_opens_no_file(tmp_path: Path) -> None:
    """Runs, steps, logs, artifacts, edits, listings, iterators and deletes open nothing on the loop thread (the
    control, one sync call made from the loop, does)."""
    assert _on_loop(tmp_path / "async", "async") == 0
    assert _on_loop(tmp_path / "control", "sync") > 0
