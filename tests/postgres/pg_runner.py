"""A runner process for the lease tests: runs one task on PostgreSQL through the library, as an agent would.

    python pg_runner.py URL SCHEMA WS TASK_ID

Prints ``{"pid": …}`` once its lease is held, then runs the task's remaining steps; exits 0 when the run ends.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.executors import run_task


def main() -> None:
    url, schema, ws, task_id = sys.argv[1:5]
    with PostgresStore(url, schema=schema) as store, store.run(ws, task_id) as run:
        print(json.dumps({"pid": os.getpid()}), flush=True)
        run_task(run, workdir=tempfile.gettempdir())  # commands run where we say, never in a guessed cwd


if __name__ == "__main__":
    main()
