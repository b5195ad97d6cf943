"""``atlas-tasks pin``, ``unpin`` and ``gc``: keep a task for good, and delete the finished tasks a store no longer
needs. The library side is :mod:`atlas_tasks.retention` (docs/retention.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from atlas_tasks.cli._errors import error, note
from atlas_tasks.cli._options import JsonOpt, TaskArg, WorkspaceArg
from atlas_tasks.cli._state import state
from atlas_tasks.views.text import size as _size


def pin(
    ctx: typer.Context,
    workspace: WorkspaceArg,
    task_id: TaskArg,
    reason: Annotated[str, typer.Option("--reason", "-r", metavar="TEXT", help="Why it is kept.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Pin a task: `gc` never deletes it, whatever its age. Refused while a runner holds the task."""
    from atlas_tasks.retention.pins import pin as pin_task
    from atlas_tasks.retention.pins import pin_of

    task = pin_task(state(ctx).store(), workspace, task_id, reason)
    if as_json:
        sys.stdout.write(json.dumps({"workspace": workspace, "id": task.id, "pinned": pin_of(task)}) + "\n")
    else:
        typer.echo(f"pinned {task.id}" + (f": {reason}" if reason else ""))


def unpin(ctx: typer.Context, workspace: WorkspaceArg, task_id: TaskArg, as_json: JsonOpt = False) -> None:
    """Remove a task's pin (`gc` may then delete it like any other)."""
    from atlas_tasks.retention.pins import unpin as unpin_task

    task = unpin_task(state(ctx).store(), workspace, task_id)
    if as_json:
        sys.stdout.write(json.dumps({"workspace": workspace, "id": task.id, "pinned": None}) + "\n")
    else:
        typer.echo(f"unpinned {task.id}")


def gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be deleted; delete nothing.")] = False,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", metavar="DURATION", help="Only tasks finished longer ago (30d, 12h, 90m)."),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Collect these statuses (repeatable; default: completed, rejected, "
            "abandoned; failure statuses only when named).",
        ),
    ] = None,
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", metavar="N", min=0, help="Keep the N newest finished per workspace.")
    ] = None,
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", metavar="WORKSPACE", help="Only this workspace.")
    ] = None,
    include_forked: Annotated[
        bool, typer.Option("--include-forked", help="Also delete tasks that forks still name as their source.")
    ] = False,
    archive: Annotated[
        Path | None,
        typer.Option(
            "--archive",
            metavar="DIR",
            help="First write each task to its own bundle in DIR (restore with `import`); a task whose bundle "
            "cannot be written is kept.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Read retention settings from FILE (default: config.yaml in the store's Go home, ~/.atlas).",
        ),
    ] = None,
    no_config: Annotated[bool, typer.Option("--no-config", help="Ignore retention settings in files.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete finished tasks no longer needed: never a running, pinned or unfinished one (see docs/retention.md).

    Ages come from --older-than, else from the retention settings in the config file (`retention:` and the Go
    tool's `hooks.retention.*`); with neither, and no --keep-last, gc refuses. A real run asks for confirmation on
    a terminal unless --yes; --dry-run reports exactly what a real run would delete.
    """
    from atlas_tasks.errors import GuardValueError
    from atlas_tasks.lifecycle.deadlines import parse_duration
    from atlas_tasks.retention import gc as collector
    from atlas_tasks.retention.config import RetentionPolicy, load_policy
    from atlas_tasks.store.capabilities import LocalFiles

    try:
        age = parse_duration(older_than) if older_than is not None else None
    except GuardValueError as exc:
        raise typer.BadParameter(exc.reason, param_hint="--older-than") from None
    store = state(ctx).store()
    if no_config:
        policy = RetentionPolicy()
    elif config is not None:
        policy = load_policy(config, required=True)
    else:  # the config.yaml of this store's Go home (a file store), else the Go tool's own
        policy = load_policy(store.go_home / "config.yaml" if isinstance(store, LocalFiles) else None)
    # Options given win; what they leave open comes from the settings.
    ages = policy.ages if age is None else {}
    if status and ages:
        ages = {s: a for s, a in ages.items() if s in status}
        missing = [s for s in status if s not in ages]
        if missing and keep_last is None and policy.keep_last is None:
            error(
                f"no age for status {', '.join(missing)}: give --older-than, or set it under retention: in "
                f"{policy.path}"
            )
            raise typer.Exit(2)
    keep = keep_last if keep_last is not None else policy.keep_last
    if age is None and not ages and keep is None:
        where = f" (none in {policy.path})" if not no_config else ""
        error(
            "gc needs --older-than or --keep-last, or retention settings in the config file"
            f"{where} (it never deletes every finished task at once)"
        )
        raise typer.Exit(2)
    criteria: dict[str, Any] = {
        "workspace": workspace,
        "older_than": age,
        "older_than_by_status": ages or None,
        "statuses": status or None,
        "keep_last": keep,
        "include_forked": include_forked,
    }
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            error("not collecting: nobody to confirm it (stdin is not a terminal); add --yes, or try --dry-run")
            raise typer.Exit(1)
        preview = collector.plan(store, **criteria)
        total = sum(item.bytes for item in preview.delete)
        if not preview.delete:
            note("nothing to collect")
        elif not typer.confirm(f"delete {len(preview.delete)} task(s), {_size(total)}?", default=False, err=True):
            note("nothing deleted")
            raise typer.Exit(1)

    def progress(done: int, total: int, item: collector.GcItem) -> None:
        if not as_json and sys.stderr.isatty():
            sys.stderr.write(f"\r{done}/{total} {item.workspace}/{item.id}\033[K")
            if done == total:
                sys.stderr.write("\n")

    report = collector.collect(store, dry_run=dry_run, progress=progress, archive=archive, **criteria)
    if as_json:
        document = report.document()
        document["settings"] = None if policy.empty else policy.document()
        sys.stdout.write(json.dumps(document) + "\n")
        return
    used = {policy.sources[s] for s in ages}
    if keep_last is None and policy.keep_last is not None:
        used.add(policy.sources["keep_last"])
    if used:
        note("retention settings: " + "; ".join(sorted(used)))
    verb = "would delete" if dry_run else "deleted"
    for item in report.deleted:
        archived = f" -> {item.archive}" if item.archive else ""
        typer.echo(f"{verb} {item.workspace}/{item.id} ({item.status}, {_size(item.bytes)}){archived}")
    for skip in report.skipped:
        typer.echo(
            f"kept {skip.workspace}/{skip.id} ({skip.status}): {skip.reason}"
            + (f", {skip.detail}" if skip.detail else "")
        )
    for problem in report.errors:
        note(f"not read: {problem}")
    typer.echo(f"{verb} {len(report.deleted)} task(s), {_size(report.bytes_freed)}; kept {len(report.skipped)}")
