"""Cold start of ``atlas-tasks list`` on 100 tasks against ``python -c pass`` plus the same command run warm.

"The same work in-process" is the very command, run in this (warm) process the way the ``atlas-tasks`` entry
point runs it (:func:`atlas_tasks.cli.main`: the fast path of :mod:`atlas_tasks.cli._fast` when it answers, else
the typer app), with its output captured: the listing, the crash check of each task and the rendering, without
interpreter start-up and imports. So the target reads: start-up + imports may cost at most what the interpreter
start and the work cost. Both sides run the same code: a cheaper in-process path lowers the floor too.

Beside the row: the full typer command in-process (the floor's work before the fast path existed), and the cold
start when the fast path cannot answer (its cache removed before each run: the first ``list`` after a change).
"""

from __future__ import annotations

import compileall
import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from atlas_tasks import FileStore
from benchmarks import fixtures
from benchmarks._harness import ERROR, Context, Row, Stats, fmt_time, measure


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("atlas-tasks")
    return [str(script)] if script.exists() else [sys.executable, "-m", "atlas_tasks"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env["COLUMNS"] = "160"
    return env


def _compile_package() -> None:
    """Write the package's bytecode, as installing a wheel does (pip compiles what it installs).

    An editable install (this checkout) has none, and with ``PYTHONDONTWRITEBYTECODE`` set (as on these machines)
    none is ever written, so every cold start would also compile ~60 modules (~60 ms): a cost users of an installed
    package never pay. The dependencies in site-packages were compiled when pip installed them.
    """
    import atlas_tasks

    compileall.compile_dir(str(Path(atlas_tasks.__file__).parent), quiet=1)


def bench_cli_cold_start(ctx: Context) -> Row:
    s = ctx.scale
    _compile_package()
    home = ctx.fresh_dir("cli")
    store = FileStore(home)
    fixtures.seed_workspace(store, "ws", s.cli_tasks, fixtures.sample_task(s.task_bytes))
    argv = ["--home", str(home), "list", "ws"]
    command = [*_cli_command(), *argv]
    env = _env()

    def cold() -> None:
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)

    def bare() -> None:
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)

    from atlas_tasks.cli import _fast
    from atlas_tasks.cli._app import app

    def warm() -> None:  # as main() runs it: the fast path when it answers, else the app
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if _fast.run(argv) is None:
                app(argv, standalone_mode=False)

    def warm_full() -> None:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            app(argv, standalone_mode=False)

    cache = home / ".atlas-tasks" / "cli-list"

    def cold_miss() -> None:  # the fast path's cache gone: the full command answers (and writes the cache again)
        shutil.rmtree(cache, ignore_errors=True)
        cold()

    stats = measure(
        {"cold": cold, "bare": bare, "warm": warm, "warm_full": warm_full, "cold_miss": cold_miss},
        rounds=s.cli_runs,
        warmup=s.warmup(2),
        min_rounds=min(s.cli_runs, 5),
        budget=s.budget(30),
    )
    floor = stats["bare"].median + stats["warm"].median
    row = Row(
        "cli_cold",
        f"`atlas-tasks list` cold start, {s.cli_tasks} tasks — without the fast path's cache (the first list "
        f"after a change) {fmt_time(stats['cold_miss'].median)}; the full typer command in-process "
        f"{fmt_time(stats['warm_full'].median)}",
        "≤ 2× (python -c pass + same work in-process)",
        ours=stats["cold"],
        ref=Stats.of([floor]),
        ref_label=f"python -c pass {fmt_time(stats['bare'].median)} + in-process {fmt_time(stats['warm'].median)}",
    )
    row.ratio = stats["cold"].median / floor
    row.met = row.ratio <= 2
    check = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if check.returncode != 0 or fixtures.task_id_at(s.cli_tasks - 1) not in check.stdout:
        row.status, row.met = ERROR, False
        row.note = f"the command failed or did not list the tasks: {check.stderr.strip()[:200]}"
    if ctx.profile and row.met is False:
        row.profile = import_profile(command, env)
    return row


def import_profile(command: list[str], env: dict[str, str], top: int = 18) -> str:
    """Where start-up goes: ``-X importtime`` of the command, cumulative time per top-level package."""
    python = [sys.executable, "-X", "importtime"]
    if command[0] != sys.executable:
        python += ["-m", "atlas_tasks", *command[1:]]
    else:
        python += command[1:]
    t0 = time.perf_counter()
    out = subprocess.run(python, capture_output=True, text=True, env=env, check=False)
    total = time.perf_counter() - t0
    per_package: dict[str, int] = defaultdict(int)
    slowest: list[tuple[int, str]] = []
    for line in out.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        self_us, cumulative_us, name = int(parts[0]), int(parts[1]), parts[2]
        module = name.strip()
        per_package[module.split(".")[0]] += self_us
        if not name.startswith("  "):  # top level (nested imports are indented further)
            slowest.append((cumulative_us, module))
    lines = [f"python -X importtime: whole command {fmt_time(total)} (import tracing adds overhead)"]
    lines.append("-- self time by top-level package (all imports) --")
    for name, us in sorted(per_package.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{us / 1000:9.1f} ms  {name}")
    lines.append("-- slowest top-level imports (cumulative) --")
    for us, name in sorted(slowest, reverse=True)[:top]:
        lines.append(f"{us / 1000:9.1f} ms  {name}")
    return "\n".join(lines)
