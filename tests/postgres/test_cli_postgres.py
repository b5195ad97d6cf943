"""The CLI on a PostgreSQL store where it differs from the others: $ATLAS_STORE_URL, lease refusals, usage errors,
migrate-db, migrate, logs --follow across processes.

The commands themselves (workspace, list/show/logs/artifacts, new/run/approve/abandon/recover/doctor) run on
PostgreSQL with the parameterised suites in tests/cli (``[postgres]`` ids). A real server (see conftest.py); the
follow and migrate tests run the CLI as real subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import FileStore, Step, Task
from atlas_tasks.backends.postgres import SCHEMA_VERSION, PostgresStore
from atlas_tasks.backends.postgres.testing import free_port
from atlas_tasks.cli import app

ATLAS = [sys.executable, "-m", "atlas_tasks"]


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@pytest.fixture
def url(pg_url: str, fresh_schema: str) -> str:
    """A store URL of its own (a fresh PostgreSQL schema) for each test."""
    return with_schema(pg_url, fresh_schema)


@pytest.fixture
def store(pg_url: str, fresh_schema: str, tmp_path: Path) -> Iterator[PostgresStore]:
    """The same store as `url`, opened by the test to look at what the CLI did."""
    with PostgresStore(pg_url, schema=fresh_schema) as opened:
        opened.create_workspace("w", worktree_path=str(tmp_path))  # where its commands run
        yield opened


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A directory with a user template `checks`: two command steps, a review, one more step."""
    home = tmp_path / "home"
    (home / "templates").mkdir(parents=True)
    steps = [
        {"name": "lint", "type": "validation", "commands": ["echo lint ok"]},
        {"name": "test", "type": "validation", "commands": ["echo tests ok"]},
        {"name": "review", "type": "human", "prompt": "look at it"},
        {"name": "ship", "type": "git", "commands": ["true"]},
    ]
    (home / "templates" / "checks.json").write_text(json.dumps({"description": "checks", "steps": steps}))
    return home


def cli(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["--store", url, *args], env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def test_environment_variable_names_the_store(url: str, store: PostgresStore, tmp_path: Path) -> None:
    """$ATLAS_STORE_URL is used when neither --store nor --home is given; --home wins over it."""
    store.create("w", Task(description="via env"))
    result = CliRunner().invoke(app, ["list", "w", "--json"], env={"ATLAS_STORE_URL": url})
    assert result.exit_code == 0, result.stderr
    assert [t["description"] for t in json.loads(result.stdout)["tasks"]] == ["via env"]
    FileStore(tmp_path / "h").create_workspace("w")
    local = CliRunner().invoke(app, ["--home", str(tmp_path / "h"), "list", "w"], env={"ATLAS_STORE_URL": url})
    assert local.exit_code == 0 and "no tasks" in local.stderr


def test_run_refuses_a_task_another_process_holds(url: str, store: PostgresStore) -> None:
    """`run` on a task whose lease another session holds is one error line naming the holder, exit 1."""
    task = store.create("w", Task(description="held", steps=[Step(name="a", type="ai")]))
    lease = store.acquire_lease("w", task.id, {"pid": 31337, "host": "machine-a"})
    try:
        result = cli(url, "run", "w", task.id)
    finally:
        lease.release()
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "pid 31337 on machine-a" in result.stderr


def test_store_usage_errors_exit_2(tmp_path: Path) -> None:
    """An unknown scheme, a bad schema name, or --store file:// together with --home are usage errors."""
    assert cli("mysql://x@y/z", "list").exit_code == 2
    assert cli("postgresql://x@127.0.0.1/db?schema=Bad-Name", "list").exit_code == 2
    both = CliRunner().invoke(app, ["--home", str(tmp_path), "--store", f"file://{tmp_path}", "list"])
    assert both.exit_code == 2 and "not both" in both.stderr


def test_unreachable_server_is_one_error_line_naming_it() -> None:
    """No server on the port: exit 1 and one line that says where it tried (and no password)."""
    port = free_port()
    result = cli(f"postgresql://atlas:secret@127.0.0.1:{port}/atlas", "list")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert f"127.0.0.1:{port}/atlas" in result.stderr and "secret" not in result.stderr


def imported_modules(*args: str) -> set[str]:
    """The modules ``python -X importtime -m atlas_tasks ARGS`` imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *ATLAS[1:], *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def test_file_store_commands_never_import_psycopg(tmp_path: Path) -> None:
    """Start-up, help and file-store commands do not load the PostgreSQL driver (nor rich for --help)."""
    FileStore(tmp_path).create_workspace("w")
    runs = [("--help",), ("migrate", "--help"), ("migrate-db", "--help"), ("--home", str(tmp_path), "list")]
    # Each run loads the code of the command(s) it involves (all of them for the top-level help, which lists them).
    loaded = ["_db", "_db", "_db", "_tasks"]
    for args, module in zip(runs, loaded, strict=True):
        modules = imported_modules(*args)
        assert f"atlas_tasks.cli.{module}" in modules, args
        assert not {m for m in modules if m.startswith(("psycopg", "atlas_tasks.backends.postgres"))}, args
        if "--help" in args:
            assert not {m for m in modules if m.startswith("rich")}, args


def test_file_url_store_works_like_home(tmp_path: Path) -> None:
    FileStore(tmp_path).create_workspace("w")
    FileStore(tmp_path).create("w", Task(description="on disk"))
    assert "on disk" in ok(cli(f"file://{tmp_path}", "list", "w")).stdout


# -- migrate-db -----------------------------------------------------------------------------------------------------
def test_migrate_db_applies_then_is_up_to_date(url: str, pg_url: str, fresh_schema: str) -> None:
    first = json.loads(ok(cli(url, "migrate-db", "--json")).stdout)
    assert (first["from"], first["to"], first["applied"]) == (0, SCHEMA_VERSION, list(range(1, SCHEMA_VERSION + 1)))
    again = ok(cli(url, "migrate-db")).stdout
    assert "up to date" in again and f"version {SCHEMA_VERSION}" in again


def test_migrate_db_refuses_a_newer_database(url: str, pg_url: str, fresh_schema: str) -> None:
    ok(cli(url, "migrate-db"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{fresh_schema}".schema_migrations (version, description, library_version)'
            " VALUES (%s, 'from the future', '99.0')",
            [SCHEMA_VERSION + 1],
        )
    result = cli(url, "migrate-db")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "newer" in result.stderr and "upgrade" in result.stderr


def test_migrate_db_on_a_file_store_says_what_it_needs(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "migrate-db"])
    assert result.exit_code == 1 and "postgresql://" in result.stderr


# -- migrate --------------------------------------------------------------------------------------------------------
def fill_home(home: Path, count: int) -> list[str]:
    """A file home with `count` tasks in two workspaces, each with log lines and artifacts (one versioned)."""
    store = FileStore(home)
    ids = []
    for ws in ("alpha", "beta"):
        store.create_workspace(ws, branch=f"b-{ws}")
    for i in range(count):
        ws = ("alpha", "beta")[i % 2]
        task = store.create(ws, Task(description=f"task {i}", steps=[Step(name="a", type="ai")]))
        store.append_log(ws, task.id, {"event": "step started", "i": i})
        store.append_log(ws, task.id, {"event": "step done", "i": i})
        store.save_artifact(ws, task.id, "sdd/spec.md", f"spec {i}\n")
        store.save_versioned_artifact(ws, task.id, "validation.json", json.dumps({"i": i}))
        ids.append(f"{ws}/{task.id}")
    return ids


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ATLAS, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_migrate_copies_verifies_and_resumes(tmp_path: Path, url: str, store: PostgresStore) -> None:
    """`migrate` (a real process) copies a home, verifies it, skips it all on a second run, reports a changed
    source task without overwriting it, and replaces it with --overwrite."""
    home = tmp_path / "home"
    ids = fill_home(home, 12)
    first = run_cli("migrate", "--from", f"file://{home}", "--to", url, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["ok"] and report["verified"]
    assert (report["tasks_copied"], report["verified_tasks"]) == (12, 12)
    assert (report["verified_log_lines"], report["verified_artifacts"]) == (24, 24)
    assert report["tasks_per_second"] > 0
    copied = {f"{ws}/{t.id}" for ws in ("alpha", "beta") for t in store.list(ws)}
    assert copied == set(ids)
    assert store.get_workspace("alpha").branch == "b-alpha"

    again = json.loads(run_cli("migrate", "--from", str(home), "--to", url, "--json").stdout)
    assert (again["tasks_copied"], again["tasks_skipped"], again["ok"]) == (0, 12, True)

    ws, task_id = ids[0].split("/")
    FileStore(home).modify(ws, task_id, lambda t: t.metadata.update(changed=True))
    differs = run_cli("migrate", "--from", str(home), "--to", url)
    assert differs.returncode == 1 and "differs in the destination" in differs.stderr
    assert "changed" not in store.get(ws, task_id).metadata
    replaced = run_cli("migrate", "--from", str(home), "--to", url, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert "replaced 1" in replaced.stdout and "tasks/s" in replaced.stdout and "verified 12 task(s)" in replaced.stdout
    assert store.get(ws, task_id).metadata["changed"] is True


def test_migrate_from_the_global_store_and_back_into_a_file_store(tmp_path: Path, url: str) -> None:
    """migrate copies the global store into PostgreSQL, and (the file store imports as is) back into files."""
    home = tmp_path / "home"
    fill_home(home, 2)
    result = CliRunner().invoke(app, ["--home", str(home), "migrate", "--to", url])
    assert result.exit_code == 0, result.stderr
    assert "copied 2 task(s)" in result.stdout and "verified 2 task(s)" in result.stdout
    back = CliRunner().invoke(app, ["--store", url, "migrate", "--to", f"file://{tmp_path / 'other'}"])
    assert back.exit_code == 0, back.stderr
    assert "copied 2 task(s)" in back.stdout and "verified 2 task(s)" in back.stdout


# -- logs --follow --------------------------------------------------------------------------------------------------
def test_logs_follow_streams_a_run_in_another_process(
    url: str, pg_url: str, store: PostgresStore, templates: Path
) -> None:
    """`logs --follow` (one process) waits for a pending task, prints every line another process's `run` writes,
    through LISTEN/NOTIFY, and ends when the run stops at the review."""
    home = ["--home", str(templates)]
    created = json.loads(ok(cli(url, *home, "new", "w", "-t", "checks", "-d", "follow me", "--json")).stdout)
    task_id = created["id"]
    follower = subprocess.Popen(
        [*ATLAS, "--store", url, "logs", "w", task_id, "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PGAPPNAME": "atlas-follow-test"},
    )
    try:
        # Start the runner once the follower listens (its first read of new lines comes after its LISTEN), so the
        # lines arrive while it follows.
        listening = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'atlas-follow-test' AND query LIKE 'SELECT l.seq, l.line%%'"
        )
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for _ in range(1200):
                if conn.execute(listening).fetchone() != (0,) or follower.poll() is not None:
                    break
                conn.execute("SELECT pg_sleep(0.05)")
            else:
                raise AssertionError("the follower never started listening")
        assert follower.poll() is None, follower.communicate()
        runner = run_cli("--store", url, *home, "run", "w", task_id, timeout=120)
        assert runner.returncode == 0, runner.stderr
        out, err = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, err
    events: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert events == list(store.read_log("w", task_id))  # every line, in order, nothing twice
    assert events[-1]["event"] == "step awaiting_approval"
