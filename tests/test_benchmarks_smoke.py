"""Every benchmark row still runs (tiny sizes, a round or two): keeps benchmarks/ from rotting.

No timing is asserted: figures from a smoke run mean nothing. A row may report "missing API" or "peer not
installed", but never an error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ sits beside tests/, not in src/

from benchmarks import run
from benchmarks._harness import ERROR, QUICK, Context, Row


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Context:
    return Context(QUICK, tmp_path_factory.mktemp("bench"), profile=False, verbose=False)


@pytest.mark.parametrize(("keys", "bench"), run.BENCHMARKS, ids=[",".join(keys) for keys, _ in run.BENCHMARKS])
def test_benchmark_runs(ctx: Context, keys: tuple[str, ...], bench: run.BenchFn) -> None:
    produced = bench(ctx)
    rows = produced if isinstance(produced, list) else [produced]
    assert [r.key for r in rows] == list(keys)
    for row in rows:
        assert row.status != ERROR, f"{row.key}: {row.note}"
        assert row.ours is not None or row.ours_text is not None or row.status != "ok", row.key


def test_report_renders(ctx: Context) -> None:
    rows = [
        Row("update", "durable update", "≤ 1.3× floor", ratio=1.1, met=True),
        Row("list_summaries", "summaries", "≤ 0.2 s").missing("FileStore.list_summaries"),
    ]
    doc = run.render_doc(rows, {"date": "today", "load": "0 / 0", "cpu": "x"}, {"atlas-tasks": "0"}, QUICK, 1.0)
    assert "| update |" in doc
    assert "missing API" in doc
