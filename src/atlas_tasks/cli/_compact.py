"""``atlas-tasks compact``: drop superseded artifact versions and rotate logs that grew too long.

One task (``compact WS TASK``) or every task of a workspace (``compact WS``). The library side is
:mod:`atlas_tasks.retention.compact` (docs/retention.md, "Compaction"); defaults come from ``retention.compact`` in
the config file (:func:`atlas_tasks.retention.config.load_compact_settings`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from atlas_tasks.cli._errors import error, note
from atlas_tasks.cli._options import JsonOpt, WorkspaceArg
from atlas_tasks.cli._state import state
from atlas_tasks.views.text import size as _size

if TYPE_CHECKING:
    from atlas_tasks.retention.compact import CompactionReport
    from atlas_tasks.retention.config import CompactSettings
    from atlas_tasks.store import Store


def compact(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: Annotated[
        str | None,
        typer.Argument(metavar="[TASK]", help="The task to compact; without it, every task of the workspace."),
    ] = None,
    keep_versions: Annotated[
        int | None,
        typer.Option(
            "--keep-versions",
            metavar="N",
            min=1,
            help="Keep the N newest versions of each artifact (at least 1; default: the config file's "
            "retention.compact.keep_versions, else 3).",
            show_default=False,
        ),
    ] = None,
    max_log_size: Annotated[
        str | None,
        typer.Option(
            "--max-log-size",
            metavar="SIZE",
            help="Rotate task.log when it is larger (bytes, or 512K, 10M, 1G; default: the config file's "
            "retention.compact.max_log_size, else 10M).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Read the defaults from FILE (default: config.yaml in the store's Go home, ~/.atlas).",
        ),
    ] = None,
    no_config: Annotated[bool, typer.Option("--no-config", help="Ignore settings in files.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what a real run would do; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make tasks smaller without losing their newest state (see docs/retention.md, "Compaction").

    Drops artifact versions beyond the newest --keep-versions of each name, never one a step result points to;
    moves the older lines of a task.log over --max-log-size into artifacts/logs/task.log.N.gz (every line kept;
    `logs --all` reads them). Without TASK, every task of the workspace; a task a runner holds is left alone.
    """
    from atlas_tasks.retention import compact as compaction
    from atlas_tasks.retention.config import CompactSettings, parse_size

    store = state(ctx).store()
    settings = CompactSettings() if no_config else _settings(store, config)
    try:
        max_bytes = parse_size(max_log_size) if max_log_size is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-log-size") from None
    keep = keep_versions or settings.keep_versions or compaction.DEFAULT_KEEP_VERSIONS
    max_bytes = max_bytes or settings.max_log_bytes or compaction.DEFAULT_MAX_LOG_BYTES
    used = dict(settings.sources)  # the file's settings that were used: an option given wins over its key
    if keep_versions is not None:
        used.pop("keep_versions", None)
    if max_log_size is not None:
        used.pop("max_log_bytes", None)
    if task_id is not None:
        report = compaction.compact(
            store, workspace, task_id, keep_versions=keep, max_log_bytes=max_bytes, dry_run=dry_run
        )
        if as_json:
            sys.stdout.write(json.dumps({**report.to_json(), "settings": used}) + "\n")
            return
        _settings_note(used)
        _print_report(report, dry_run=dry_run, prefix="")
        verb = "would drop" if dry_run else "dropped"
        freed = "would free" if dry_run else "freed"
        typer.echo(f"{verb} {len(report.dropped)} version(s); {freed} {_size(report.bytes_freed)}")
        return
    result = compaction.compact_workspace(
        store, workspace, keep_versions=keep, max_log_bytes=max_bytes, dry_run=dry_run
    )
    if as_json:
        sys.stdout.write(json.dumps({**result.to_json(), "settings": used}) + "\n")
    else:
        _settings_note(used)
        for report in result.changed:
            _print_report(report, dry_run=dry_run, prefix=f"{report.task_id}: ")
        for running_id in sorted(result.running):
            note(f"{running_id}: left alone, a runner holds it (compact it once the run ends)")
        freed = "would free" if dry_run else "freed"
        typer.echo(
            f"{len(result.changed)} of {len(result.reports)} task(s) {'would change' if dry_run else 'changed'}; "
            f"{freed} {_size(result.bytes_freed)}"
        )
    for what, failure in sorted(result.failed.items()):
        error(f"{what}: not compacted: {failure.message}")
    if result.failed:
        raise typer.Exit(1)


def _settings(store: Store, config: Path | None) -> CompactSettings:
    from atlas_tasks.retention.config import load_compact_settings
    from atlas_tasks.store.capabilities import LocalFiles

    if config is not None:
        return load_compact_settings(config, required=True)
    # The config.yaml of this store's Go home (a file store), else the Go tool's own.
    return load_compact_settings(store.go_home / "config.yaml" if isinstance(store, LocalFiles) else None)


def _settings_note(used: dict[str, str]) -> None:
    for name, source in sorted(used.items()):
        note(f"{name} from {source}")


def _print_report(report: CompactionReport, *, dry_run: bool, prefix: str) -> None:
    verb = "would drop" if dry_run else "dropped"
    for dropped in report.dropped:
        typer.echo(f"{prefix}{verb} {dropped.name} ({_size(dropped.bytes)})")
    for name in report.kept_referenced:
        typer.echo(f"{prefix}kept {name}: a step result points to it")
    log = report.log
    if log.resumed:
        typer.echo(
            f"{prefix}{'would finish' if dry_run else 'finished'} an interrupted log rotation ({log.resumed_lines} "
            "lines)"
        )
    if log.segment:
        moved = "would move" if dry_run else "moved"
        typer.echo(
            f"{prefix}{moved} {log.lines_moved} log lines ({_size(log.bytes_moved)}) to {log.segment} "
            f"({_size(log.segment_bytes)}); task.log keeps {log.kept_lines} lines"
        )
