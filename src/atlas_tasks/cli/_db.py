"""The store-to-store commands: ``migrate-db`` (PostgreSQL schema migrations) and ``migrate`` (copy a whole store).

Both import their backends, rich and the copier inside the command, so start-up never loads psycopg or rich.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from atlas_tasks.cli._errors import EXIT_ERROR, error, note, warn
from atlas_tasks.cli._options import JsonOpt
from atlas_tasks.cli._state import State, state

if TYPE_CHECKING:
    from atlas_tasks.migrate import CopyProgress, CopyReport
    from atlas_tasks.store import Store


def _emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def migrate_db(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Bring a PostgreSQL store's tables up to date (the store given by --store or $ATLAS_STORE_URL).

    Applies the schema migrations the database lacks, in order, once even if many processes start together. A
    database laid out by a newer atlas-tasks is refused and left unchanged. Stores also migrate on first use; run
    this to do it ahead of the agents, or with a role that may create tables.
    """
    current = state(ctx)
    if current.is_file_store():
        error(
            "migrate-db applies PostgreSQL schema migrations, and the file store has none; name a PostgreSQL store "
            "with --store postgresql://user@host:port/db or $ATLAS_STORE_URL"
        )
        raise typer.Exit(EXIT_ERROR)
    store: Any = current.store()
    before = store.schema_version()
    applied = store.migrate()
    after = store.schema_version()
    if as_json:
        from atlas_tasks.cli import _render

        _render.write_json(
            {"store": store.where, "schema": store.schema, "from": before, "to": after, "applied": applied}
        )
        return
    where = f"{store.where} (schema {store.schema})"
    if applied:
        _emit(f"migrated {where} from version {before} to {after} (applied {', '.join(map(str, applied))})")
    else:
        _emit(f"{where} is up to date (schema version {after})")


FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="URL",
        help="The store to copy: file:///abs/path, a directory, or postgresql://… (default: the global store).",
        show_default=False,
    ),
]
ToOpt = Annotated[
    str,
    typer.Option(
        "--to", metavar="URL", help="The store to copy into: postgresql://user@host:port/db.", show_default=False
    ),
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace destination tasks that differ from the source (default: report).")
]
NoVerifyOpt = Annotated[bool, typer.Option("--no-verify", help="Skip the final comparison of both stores.")]


def _open(url: str, option: str) -> Store:
    from atlas_tasks.store.urls import file_url, open_store

    if "://" not in url:
        url = file_url(url)  # a plain directory: a file store's home
    try:
        return open_store(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def migrate(
    ctx: typer.Context,
    to: ToOpt,
    source: FromOpt = None,
    overwrite: OverwriteOpt = False,
    no_verify: NoVerifyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy a whole store into another: workspaces, tasks, logs and artifacts, exactly.

    Typically a file home into PostgreSQL: `atlas-tasks migrate --from file:///home/me/.atlas --to
    postgresql://atlas@db/atlas`. Each task is copied in one transaction, so an interrupted copy leaves every task
    whole or absent: run the same command again to resume (tasks already there and identical are skipped). At the
    end both stores are read again and compared (counts and sha256 of every document, log and artifact); exits 1
    if anything is missing or different. Stop the agents writing to the source first.
    """
    from atlas_tasks.migrate import copy_store
    from atlas_tasks.store.capabilities import Importable

    current: State = state(ctx)
    src = _open(source, "--from") if source else current.store()
    dst = _open(to, "--to")
    current.track(src)
    current.track(dst)
    if not isinstance(dst, Importable):
        raise typer.BadParameter(
            f"{dst!r} cannot take tasks as they are; copy into a file or PostgreSQL store", param_hint="--to"
        )
    if not as_json:
        note(f"copying {src!r} into {dst!r}")
    with _ProgressBar(enabled=not as_json, verify=not no_verify) as bar:
        report = copy_store(src, dst, progress=bar.update, overwrite=overwrite, verify=not no_verify)
    if as_json:
        _write_report(report, verified=not no_verify)
    else:
        _print_report(report, verified=not no_verify)
    if not report.ok:
        raise typer.Exit(EXIT_ERROR)


class _ProgressBar:
    """A rich progress bar on stderr: tasks done of all, tasks/s, time left, and the task at hand."""

    def __init__(self, *, enabled: bool, verify: bool) -> None:
        self.enabled = enabled
        self.verify = verify
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.table import Column

            self._progress = Progress(
                TextColumn("copying"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                # The task at hand takes what width is left, cut short rather than squeezing the counts.
                TextColumn(
                    "{task.fields[current]}", table_column=Column(no_wrap=True, overflow="ellipsis", max_width=32)
                ),
                console=Console(stderr=True),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("copy", total=None, rate="", current="")
        return self

    def update(self, step: CopyProgress) -> None:
        if self._progress is None:
            return
        elapsed = self._progress.tasks[0].elapsed or 0.0
        rate = f"{step.done / elapsed:.0f} tasks/s" if elapsed > 0 else ""
        self._progress.update(
            self._task,
            total=step.total,
            completed=step.done,
            rate=rate,
            current=f"{step.workspace}/{step.task_id} {step.action}",
        )
        if step.done == step.total and self.verify:
            # copy_store compares both stores next, without reporting progress: say so.
            self._progress.update(self._task, current="verifying (sha256) …")

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)


def _print_report(report: CopyReport, *, verified: bool) -> None:
    _emit(
        f"copied {report.tasks_copied} task(s) ({report.log_lines} log lines, {report.artifacts} artifacts, "
        f"{report.artifact_bytes} bytes), skipped {report.tasks_skipped} already there, replaced "
        f"{report.tasks_replaced}, in {report.seconds_copy:.1f}s ({report.tasks_per_second:.0f} tasks/s)"
    )
    if report.tombstones_copied or report.tombstones_skipped:
        _emit(
            f"copied {report.tombstones_copied} tombstone(s) of deleted task ids, skipped "
            f"{report.tombstones_skipped} already there"
        )
    if verified:
        _emit(
            f"verified {report.verified_tasks} task(s), {report.verified_log_lines} log lines and "
            f"{report.verified_artifacts} artifacts equal in both stores (sha256) in {report.seconds_verify:.1f}s"
        )
    for extra in report.extra_in_destination:
        note(f"in the destination only (left alone): {extra}")
    for text in report.warnings:
        warn(text)
    for text in report.problems:
        error(text)
    if report.problems:
        error(f"the copy is incomplete ({len(report.problems)} problem(s)); fix them and run the same command again")


def _write_report(report: CopyReport, *, verified: bool) -> None:
    from atlas_tasks.cli import _render

    _render.write_json(
        {
            "ok": report.ok,
            "verified": verified,
            "workspaces_copied": report.workspaces_copied,
            "workspaces_skipped": report.workspaces_skipped,
            "tasks_copied": report.tasks_copied,
            "tasks_skipped": report.tasks_skipped,
            "tasks_replaced": report.tasks_replaced,
            "log_lines": report.log_lines,
            "artifacts": report.artifacts,
            "artifact_bytes": report.artifact_bytes,
            "tombstones_copied": report.tombstones_copied,
            "tombstones_skipped": report.tombstones_skipped,
            "seconds_copy": round(report.seconds_copy, 3),
            "seconds_verify": round(report.seconds_verify, 3),
            "tasks_per_second": round(report.tasks_per_second, 1),
            "verified_tasks": report.verified_tasks,
            "verified_log_lines": report.verified_log_lines,
            "verified_artifacts": report.verified_artifacts,
            "verified_tombstones": report.verified_tombstones,
            "problems": report.problems,
            "warnings": report.warnings,
            "extra_in_destination": report.extra_in_destination,
        }
    )
