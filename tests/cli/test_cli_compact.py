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


@pytest.mark.stores(*ALL_KINDS)
def test_compact_of_a_workspace_compacts_each_task_and_leaves_a_held_one(store: Store, ws: str) -> None:
    """`compact WS` compacts every task; the one a runner holds is named and left whole; the exit code is 0."""
    assert isinstance(store, RunLeases)
    first, second, held = (versioned_task(store, ws, versions=4) for _ in range(3))
    lease = store.acquire_lease(ws, held, {"pid": 4242, "host": "builder"})
    try:
        result = cli(store, "compact", ws, "--keep-versions", "1", "--no-config", "--json")
    finally:
        lease.release()
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert sorted(t["id"] for t in doc["tasks"]) == sorted([first, second])
    assert list(doc["running"]) == [held] and doc["failed"] == {}
    assert doc["bytes_freed"] == sum(t["bytes_freed"] for t in doc["tasks"]) == 2 * 3 * 100
    assert store.list_artifacts(ws, first) == store.list_artifacts(ws, second) == ["report.4.json"]
    assert len(store.list_artifacts(ws, held)) == 4


@pytest.mark.stores("file")
def test_compact_of_a_workspace_reports_an_unreadable_task_and_goes_on(store: Store, ws: str) -> None:
    """A task whose task.json is damaged is one `error:` line and exit 1; the other tasks are compacted."""
    good, bad = versioned_task(store, ws, versions=3), versioned_task(store, ws, versions=3)
    (store.home / "workspaces" / ws / "tasks" / bad / "task.json").write_text("{ not json")  # type: ignore[attr-defined]
    result = cli(store, "compact", ws, "--keep-versions", "1", "--no-config")
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith("error:") and bad in line]
    assert store.list_artifacts(ws, good) == ["report.3.json"]
    assert "1 of 1 task(s) changed" in result.output


@pytest.mark.stores("file")
def test_compact_takes_its_defaults_from_the_config_file(store: Store, ws: str) -> None:
    """retention.compact keys in the home's config.yaml set the defaults and are named; an option wins over one."""
    (store.go_home / "config.yaml").write_text(  # type: ignore[attr-defined]
        "retention:\n  completed: 30d\n  compact:\n    keep_versions: 2\n    max_log_size: 2K\n"
    )
    task_id = versioned_task(store, ws, versions=5, log_lines=100)
    doc = json.loads(cli(store, "compact", ws, task_id, "--dry-run", "--json").output)
    assert (doc["keep_versions"], doc["max_log_bytes"]) == (2, 2048)
    assert sorted(doc["settings"]) == ["keep_versions", "max_log_bytes"]
    assert "retention.compact.keep_versions" in doc["settings"]["keep_versions"]
    given = json.loads(cli(store, "compact", ws, task_id, "--dry-run", "--json", "--keep-versions", "4").output)
    assert given["keep_versions"] == 4 and list(given["settings"]) == ["max_log_bytes"]
    plain = json.loads(cli(store, "compact", ws, task_id, "--dry-run", "--json", "--no-config").output)
    assert (plain["keep_versions"], plain["max_log_bytes"], plain["settings"]) == (3, 10 * 1024 * 1024, {})


@pytest.mark.stores("file")
def test_a_bad_compact_setting_is_one_error_line(store: Store, ws: str) -> None:
    """retention.compact.keep_versions: 0 is exit 1 with one error line naming the key; nothing is dropped."""
    (store.go_home / "config.yaml").write_text("retention:\n  compact:\n    keep_versions: 0\n")  # type: ignore[attr-defined]
    task_id = versioned_task(store, ws, versions=5)
    result = cli(store, "compact", ws, task_id)
    assert result.exit_code == 1
    assert "retention.compact.keep_versions" in result.output and "Traceback" not in result.output
    assert len(store.list_artifacts(ws, task_id)) == 5
