"""``atlas-tasks compact``: drop a task's superseded artifact versions and rotate its log when it is too long.

The library side is :mod:`atlas_tasks.retention.compact` (docs/retention.md, "Compaction").
"""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated

import typer

from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._state import state
from atlas_tasks.views.text import size as _size

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}
_UNITS.update({"g": 1024**3, "gb": 1024**3, "gib": 1024**3})
_SIZE_RE = re.compile(r"\s*([0-9]+)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """``10MiB``, ``512k``, ``4096``: a size in bytes (units are powers of 1024). Raises ValueError."""
    match = _SIZE_RE.fullmatch(text)
    unit = match[2].lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: write bytes, or a number with K, M or G (e.g. 10M, 512KiB)")
    value = int(match[1]) * _UNITS[unit]
    if value < 1:
        raise ValueError("must be at least 1 byte")
    return value


def compact(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    keep_versions: Annotated[
        int,
        typer.Option(
            "--keep-versions", metavar="N", min=1, help="Keep the N newest versions of each artifact (at least 1)."
        ),
    ] = 3,
    max_log_size: Annotated[
        str,
        typer.Option(
            "--max-log-size", metavar="SIZE", help="Rotate task.log when it is larger (bytes, or 512K, 10M, 1G)."
        ),
    ] = "10M",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what a real run would do; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a task smaller without losing its newest state (see docs/retention.md, "Compaction").

    Drops artifact versions beyond the newest --keep-versions of each name, never one a step result points to;
    moves the older lines of a task.log over --max-log-size into artifacts/logs/task.log.N.gz (every line kept).
    Refused while a runner holds the task.
    """
    from atlas_tasks.retention.compact import compact as run_compaction

    try:
        max_bytes = parse_size(max_log_size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-log-size") from None
    report = run_compaction(
        state(ctx).store(),
        workspace,
        task_id,
        keep_versions=keep_versions,
        max_log_bytes=max_bytes,
        dry_run=dry_run,
    )
    if as_json:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
        return
    verb = "would drop" if dry_run else "dropped"
    for dropped in report.dropped:
        typer.echo(f"{verb} {dropped.name} ({_size(dropped.bytes)})")
    for name in report.kept_referenced:
        typer.echo(f"kept {name}: a step result points to it")
    log = report.log
    if log.resumed:
        typer.echo(
            f"{'would finish' if dry_run else 'finished'} an interrupted log rotation ({log.resumed_lines} lines)"
        )
    if log.segment:
        moved = "would move" if dry_run else "moved"
        typer.echo(
            f"{moved} {log.lines_moved} log lines ({_size(log.bytes_moved)}) to {log.segment} "
            f"({_size(log.segment_bytes)}); task.log keeps {log.kept_lines} lines"
        )
    freed = "would free" if dry_run else "freed"
    typer.echo(f"{verb} {len(report.dropped)} version(s); {freed} {_size(report.bytes_freed)}")
