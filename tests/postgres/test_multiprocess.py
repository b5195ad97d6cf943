"""Eight OS processes writing one task at once: no lost update, no duplicate or overwritten artifact version.

A negative control runs the same harness with careless writers (no revision check, versions as count + 1 with
overwrite) and must see losses: the checks below can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.testing.conformance import sample_task

WORKER = Path(__file__).with_name("mp_worker.py")
PROCESSES, ROUNDS, CREATES = 8, 25, 10


def run_workers(url: str, schema: str, ws: str, task_id: str, mode: str) -> list[dict[str, Any]]:
    """Start the writer processes together and return their JSON summaries."""
    start_at = time.time() + 4.0  # after every process has imported, connected and warmed up
    procs = []
    for worker in range(PROCESSES):
        cfg = {"url": url, "schema": schema, "ws": ws, "task_id": task_id, "worker": worker, "mode": mode}
        cfg.update(start_at=start_at, rounds=ROUNDS, creates=CREATES)
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(cfg)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


def lost_and_duplicated(store: PostgresStore, ws: str, task_id: str, results: list[dict[str, Any]]) -> dict[str, int]:
    """Count increments lost and versions that two savers were told they own (or whose bytes are not theirs)."""
    task = store.get(ws, task_id)
    claimed = Counter(name for r in results for name in r["versions"])
    owners = {name: payload for r in results for name, payload in r["versions"].items()}
    overwritten = sum(
        1 for name, payload in owners.items() if store.get_artifact(ws, task_id, name) != payload.encode()
    )
    return {
        "lost_optimistic": PROCESSES * ROUNDS - task.metadata.get("optimistic", 0),
        "duplicate_versions": sum(n - 1 for n in claimed.values()),
        "overwritten_versions": overwritten,
    }


@pytest.mark.slow
def test_eight_processes_lose_nothing(pg_url: str, pg_schema: str, pg_store: PostgresStore, pg_ws: str) -> None:
    """Eight processes, 25 rounds each, of modify, optimistic update, versioned save, append and create lose nothing."""
    task = pg_store.create(pg_ws, sample_task())
    results = run_workers(pg_url, pg_schema, pg_ws, task.id, "store")
    final = pg_store.get(pg_ws, task.id)
    counts = lost_and_duplicated(pg_store, pg_ws, task.id, results)
    lost_locked = PROCESSES * ROUNDS - final.metadata["locked"]
    versions = sorted(name for r in results for name in r["versions"])
    log = [(line["w"], line["k"]) for line in pg_store.read_log(pg_ws, task.id)]
    created = [i for r in results for i in r["created"]]
    print(
        f"\n{PROCESSES} processes x {ROUNDS} rounds in {max(r['seconds'] for r in results):.2f}s: "
        f"lost updates {lost_locked} (modify) + {counts['lost_optimistic']} (update, "
        f"{sum(r['conflicts'] for r in results)} conflicts retried) of {2 * PROCESSES * ROUNDS}; "
        f"duplicate versions {counts['duplicate_versions']}, overwritten {counts['overwritten_versions']} of "
        f"{len(versions)}; log lines {len(set(log))}/{PROCESSES * ROUNDS}; created {len(set(created))} unique"
    )
    assert (lost_locked, counts["lost_optimistic"]) == (0, 0)
    assert final.revision == 1 + 2 * PROCESSES * ROUNDS
    assert (counts["duplicate_versions"], counts["overwritten_versions"]) == (0, 0)
    assert sorted(versions) == sorted(f"validation.{n}.json" for n in range(1, PROCESSES * ROUNDS + 1))
    assert sorted(log) == [(w, k) for w in range(PROCESSES) for k in range(ROUNDS)]
    assert len(set(created)) == PROCESSES * CREATES
    assert {t.id for t in pg_store.list(pg_ws)} == {task.id, *created}


@pytest.mark.slow
def test_harness_catches_careless_writers(pg_url: str, pg_schema: str, pg_store: PostgresStore, pg_ws: str) -> None:
    """Negative control: writers without revision checks or write-once versions do lose updates and versions."""
    task = pg_store.create(pg_ws, sample_task())
    results = run_workers(pg_url, pg_schema, pg_ws, task.id, "naive")
    counts = lost_and_duplicated(pg_store, pg_ws, task.id, results)
    print(f"\nnegative control (careless writers): {counts}")
    assert counts["lost_optimistic"] > 0
    assert counts["duplicate_versions"] + counts["overwritten_versions"] > 0
