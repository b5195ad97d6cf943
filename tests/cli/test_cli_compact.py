"""`atlas-tasks compact`: its --json document, its text report and its refusals."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks.cli import app
from atlas_tasks.store import RunLeases, Store
from atlas_tasks.testing.conformance import sample_task
from store_kinds import cli_args

ALL_KINDS = ("file", "memory", "postgres")


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


def versioned_task(store: Store, ws: str, versions: int = 5, log_lines: int = 0) -> str:
    task = store.create(ws, sample_task())
    for i in range(versions):
        store.save_versioned_artifact(ws, task.id, "report.json", f"{i}" * 100)
    for i in range(log_lines):
        store.append_log(ws, task.id, {"event": "line", "n": i, "pad": "z" * 50})
    return task.id


@pytest.mark.stores(*ALL_KINDS)
def test_compact_json_dry_run_then_real_run(store: Store, ws: str) -> None:
    """--dry-run --json lists what the real run then does, with the same bytes; versions and log lines move."""
    task_id = versioned_task(store, ws, versions=5, log_lines=100)
    args = ("compact", ws, task_id, "--keep-versions", "2", "--max-log-size", "2K", "--json")
    dry = cli(store, *args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert planned["dry_run"] is True and len(store.list_artifacts(ws, task_id)) == 5
    real = cli(store, *args)
    assert real.exit_code == 0, real.output
    done = json.loads(real.output)
    assert done == {**planned, "dry_run": False}
    assert [d["name"] for d in done["versions"]["dropped"]] == ["report.1.json", "report.2.json", "report.3.json"]
    assert done["log"]["rotated"] is True and done["log"]["segment"] == "logs/task.log.1.gz"
    assert done["bytes_freed"] > 300
    assert store.list_artifacts(ws, task_id) == ["logs/task.log.1.gz", "report.4.json", "report.5.json"]


@pytest.mark.stores("file")
def test_compact_text_report_says_what_moved(store: Store, ws: str) -> None:
    """The text report names each dropped version, the segment the log lines went to, and the bytes freed."""
    task_id = versioned_task(store, ws, versions=4, log_lines=100)
    result = cli(store, "compact", ws, task_id, "--keep-versions", "3", "--max-log-size", "2048")
    assert result.exit_code == 0, result.output
    assert "dropped report.1.json (100 B)" in result.output
    assert "log lines" in result.output and "to logs/task.log.1.gz" in result.output
    assert "dropped 1 version(s); freed" in result.output


@pytest.mark.stores(*ALL_KINDS)
def test_keep_versions_zero_is_a_usage_error(store: Store, ws: str) -> None:
    """--keep-versions 0 exits 2 naming the option (the newest version is always kept) and drops nothing."""
    task_id = versioned_task(store, ws, versions=3)
    result = cli(store, "compact", ws, task_id, "--keep-versions", "0")
    assert result.exit_code == 2 and "--keep-versions" in result.output
    assert len(store.list_artifacts(ws, task_id)) == 3


@pytest.mark.stores("file")
def test_a_bad_max_log_size_is_a_usage_error(store: Store, ws: str) -> None:
    """--max-log-size that is not a size exits 2 naming the option, and changes nothing."""
    task_id = versioned_task(store, ws, versions=4)
    result = cli(store, "compact", ws, task_id, "--max-log-size", "ten megs")
    assert result.exit_code == 2 and "--max-log-size" in result.output and "not a size" in result.output
    assert len(store.list_artifacts(ws, task_id)) == 4


@pytest.mark.stores(*ALL_KINDS)
def test_compact_is_refused_while_a_runner_holds_the_task(store: Store, ws: str) -> None:
    """A held run lease: one `error:` line naming the runner, exit 1, nothing dropped."""
    assert isinstance(store, RunLeases)
    task_id = versioned_task(store, ws, versions=5)
    lease = store.acquire_lease(ws, task_id, {"pid": 4242, "host": "builder"})
    try:
        result = cli(store, "compact", ws, task_id, "--keep-versions", "1")
    finally:
        lease.release()
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "already running" in errors[0] and "Traceback" not in result.output
    assert len(store.list_artifacts(ws, task_id)) == 5


@pytest.mark.stores(*ALL_KINDS)
def test_logs_all_prints_the_rotated_lines_first(store: Store, ws: str) -> None:
    """After a rotation `logs` shows the live lines only and `logs --all` every line in order."""
    task_id = versioned_task(store, ws, versions=0, log_lines=100)
    assert cli(store, "compact", ws, task_id, "--max-log-size", "2K").exit_code == 0
    live = cli(store, "logs", ws, task_id, "--json")
    whole = cli(store, "logs", ws, task_id, "--json", "--all")
    assert live.exit_code == 0 and whole.exit_code == 0, whole.output
    assert [json.loads(line)["n"] for line in whole.output.splitlines()] == list(range(100))
    assert 0 < len(live.output.splitlines()) < 100
    text = cli(store, "logs", ws, task_id, "--all")
    assert text.exit_code == 0 and "n=0" in text.output and "n=99" in text.output


@pytest.mark.stores("file")
def test_logs_all_with_follow_is_refused(store: Store, ws: str) -> None:
    """--all with --follow is a usage error naming both options."""
    task_id = versioned_task(store, ws, versions=0, log_lines=1)
    result = cli(store, "logs", ws, task_id, "--all", "--follow")
    assert result.exit_code == 2
    assert "--all" in result.output and "--follow" in result.output
