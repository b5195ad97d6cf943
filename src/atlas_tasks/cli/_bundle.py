"""``atlas-tasks export`` and ``atlas-tasks import``: whole tasks to and from one portable bundle file. The
library side is :mod:`atlas_tasks.retention.bundle`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from atlas_tasks.cli._options import JsonOpt, WorkspaceArg
from atlas_tasks.cli._state import state


def export(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="TASK...",
            help="Tasks to export: full ids, unique fragments, or `latest`.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="The bundle to write (.tar, or .tar.gz/.tgz to compress).",
            show_default=False,
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Write tasks with their logs, artifacts and Go hook files to one bundle file (a tar laid out like the Go
    home, with a manifest of SHA-256 checksums); `atlas-tasks import` reads it into any store."""
    from atlas_tasks.cli._ids import resolve_task_id
    from atlas_tasks.retention.bundle import export_tasks

    store = state(ctx).store()
    ids = [resolve_task_id(store, workspace, given) for given in task_ids]
    report = export_tasks(store, workspace, ids, output)
    if as_json:
        sys.stdout.write(json.dumps(report.document()) + "\n")
        return
    for warning in report.warnings:
        from atlas_tasks.cli._errors import warn

        warn(warning)
    noun = "task" if len(ids) == 1 else "tasks"
    typer.echo(f"exported {len(ids)} {noun} ({report.files} files, {report.bundle_bytes} bytes) to {output}")


def import_(
    ctx: typer.Context,
    bundle: Annotated[Path, typer.Argument(metavar="FILE", help="A bundle written by `atlas-tasks export`.")],
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", metavar="WS", help="Import into this workspace (default: the bundle's)."),
    ] = None,
    as_new_id: Annotated[
        bool, typer.Option("--as-new-id", help="Give every task a fresh id (else an existing id is refused).")
    ] = False,
    max_size: Annotated[
        str,
        typer.Option(
            "--max-size",
            metavar="SIZE",
            help="Refuse a bundle holding more content than this, uncompressed (default 2GiB; checked before reading).",
        ),
    ] = "2GiB",
    as_json: JsonOpt = False,
) -> None:
    """Import the tasks of a bundle, checking every file's SHA-256 first; ids, revisions and times are kept and
    metadata.imported_from says where each task came from."""
    from atlas_tasks.retention.bundle import import_bundle
    from atlas_tasks.retention.config import parse_size

    try:
        limit = parse_size(max_size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-size") from None
    store = state(ctx).store()
    report = import_bundle(store, bundle, workspace=workspace, as_new_id=as_new_id, max_bytes=limit)
    if as_json:
        sys.stdout.write(json.dumps(report.document()) + "\n")
        return
    for item in report.tasks:
        renamed = f" (was {item['original_id']})" if item["id"] != item["original_id"] else ""
        done = "already imported from this bundle:" if item.get("already_imported") else "imported"
        typer.echo(f"{done} {item['id']}{renamed} into workspace {report.workspace}")
