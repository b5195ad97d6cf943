"""The atlas-tasks commands, run in-process with typer's CliRunner (``--store URL``) on a memory and a file store.

Tests about the file layout itself (a corrupt task.json, a torn task.log, ``--home``) run on the file store only.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import Step, Task
from atlas_tasks._codec import encode_task, encode_workspace
from atlas_tasks.cli import _render as render
from atlas_tasks.cli import app
from atlas_tasks.store import Store
from store_kinds import cli_args

FIXTURES = Path(__file__).parent.parent / "fixtures" / "go"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BINARY = b"\x00\x01 raw \r\n bytes \xff\xfe\n"


STORE_KINDS = ("memory", "file")
#: For the tests where the backend matters (what the CLI reads and writes): PostgreSQL too.
ALL_KINDS = ("memory", "file", "postgres")


@pytest.fixture
def store(store: Store, home: Path) -> Store:
    """An empty store (for the file store the home directory exists: a missing one is warned about)."""
    home.mkdir(exist_ok=True)
    return store


@pytest.fixture
def filled(store: Store) -> dict[str, str]:
    """Workspace ``ws`` with an old finished-first-step task and a newer pending one; returns their ids."""
    store.create_workspace("ws", branch="feat/x")
    old = store.create(
        "ws",
        Task(
            template="bugfix",
            description="Fix the rounding of invoice totals",
            steps=[Step(name="analyze", type="ai"), Step(name="validate", type="validation")],
            created_at=T0,
        ),
    )

    def advance(task: Task) -> None:
        task.transition("running", "started by test", now=T0 + timedelta(seconds=1))
        task.steps[0].status = "success"
        task.steps[0].attempts = 1
        task.steps[0].started_at = T0 + timedelta(seconds=1)
        task.steps[0].completed_at = T0 + timedelta(minutes=2, seconds=13)
        task.steps[1].status = "failed"
        task.steps[1].error = "lint failed: 2 issues"
        task.current_step = 1

    store.modify("ws", old.id, advance)
    newer = Task(id="task-new", template="feature", description="Add refunds", created_at=T0 + timedelta(days=1))
    new = store.create("ws", newer)
    store.append_log("ws", old.id, {"level": "info", "event": "step started", "step_name": "analyze"})
    failed = {"level": "error", "event": "validation failed", "step_name": "validate", "error": "lint failed"}
    store.append_log("ws", old.id, failed)
    store.save_artifact("ws", old.id, "sdd/spec.md", "# Spec\n")
    store.save_versioned_artifact("ws", old.id, "validation.json", BINARY)
    return {"old": old.id, "new": new.id}


def run(store: Store, *args: str, **env: str) -> Result:
    """Run the CLI in-process against ``store``."""
    return CliRunner(env=env or None).invoke(app, [*cli_args(store), *args])


def assert_one_error_line(result: Result, *fragments: str) -> None:
    """Assert exit code 1, nothing on stdout, and exactly one ``error:`` line on stderr, without a traceback."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def corrupt(store: Store, workspace: str, task_id: str) -> None:
    """Replace a task's task.json with garbage, as a broken writer or disk would."""
    (store.task_path(workspace, task_id) / "task.json").write_bytes(b'{"id": "half-written')


# -- workspace ---------------------------------------------------------------------------------------------------


@pytest.mark.stores(*ALL_KINDS)
def test_workspace_create_stores_options_and_list_shows_it(store: Store, tmp_path: Path) -> None:
    """`workspace create` writes the branch and an absolute --path, and `workspace list` shows the workspace."""
    created = run(store, "workspace", "create", "payments", "--path", "repo", "--branch", "fix/rounding")
    assert created.exit_code == 0, created.output
    assert "created workspace payments" in created.stdout
    ws = store.get_workspace("payments")
    assert ws.branch == "fix/rounding" and Path(ws.path).is_absolute() and ws.path.endswith("repo")

    listed = run(store, "workspace", "list")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[0].split() == ["NAME", "STATUS", "BRANCH", "TASKS", "PATH", "CREATED"]
    assert listed.stdout.splitlines()[1].split()[:3] == ["payments", "active", "fix/rounding"]


@pytest.mark.stores(*ALL_KINDS)
def test_workspace_create_existing_is_an_error_unless_exist_ok(store: Store) -> None:
    """Creating a workspace twice is one error line, and succeeds untouched with --exist-ok."""
    store.create_workspace("ws")
    assert_one_error_line(run(store, "workspace", "create", "ws"), "already exists")
    again = run(store, "workspace", "create", "ws", "--exist-ok")
    assert again.exit_code == 0 and "already exists" in again.stdout


@pytest.mark.stores(*ALL_KINDS)
def test_workspace_list_json_has_documented_shape(store: Store) -> None:
    """`workspace list --json` prints {"workspaces": [workspace.json documents], "errors": [], "task_counts": [n]}."""
    store.create_workspace("a")
    store.create_workspace("b", branch="main")
    store.create("b", Task(description="one"))
    result = run(store, "workspace", "list", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert list(document) == ["workspaces", "errors", "task_counts"]
    assert document["workspaces"] == [json.loads(encode_workspace(store.get_workspace(n))) for n in ("a", "b")]
    assert document["errors"] == []
    assert document["task_counts"] == [0, 1]


@pytest.mark.stores("file")
def test_workspace_list_counts_task_directories_not_refs(store: Store) -> None:
    """TASKS counts the file store's task directories: tasks without a workspace.json ref count, stale refs do not."""
    store.create_workspace("ws")
    for i in range(3):
        store.create("ws", Task(description=f"t{i}"))
    path = store.workspace_path("ws") / "workspace.json"  # type: ignore[attr-defined]
    path.write_text(json.dumps(json.loads(path.read_text()) | {"tasks": [{"id": "task-gone", "status": "pending"}]}))
    table = run(store, "workspace", "list")
    assert table.stdout.splitlines()[1].split()[:4] == ["ws", "active", "-", "3"]
    assert json.loads(run(store, "workspace", "list", "--json").stdout)["task_counts"] == [3]


@pytest.mark.stores("file")
def test_workspace_list_reports_an_unreadable_workspace(store: Store) -> None:
    """A corrupt workspace.json is a warning on stderr and an entry under "errors", not a failure."""
    store.create_workspace("good")
    store.create_workspace("bad")
    (store.workspace_path("bad") / "workspace.json").write_text("not json")
    table = run(store, "workspace", "list")
    assert table.exit_code == 0
    assert "good" in table.stdout and "bad" not in table.stdout
    assert table.stderr.startswith("warning: workspace 'bad'")
    errors = json.loads(run(store, "workspace", "list", "--json").stdout)["errors"]
    assert [(e["workspace"], e["error"]) for e in errors] == [("bad", "CorruptWorkspaceError")]
    assert set(errors[0]) == {"workspace", "path", "reason", "error", "message"}


def test_workspace_list_on_an_empty_home_says_how_to_start(store: Store) -> None:
    """An empty store lists nothing on stdout and a hint on stderr."""
    result = run(store, "workspace", "list")
    assert result.exit_code == 0 and result.stdout == ""
    assert "workspace create" in result.stderr


# -- list --------------------------------------------------------------------------------------------------------


def test_list_shows_tasks_newest_first_with_progress(store: Store, filled: dict[str, str]) -> None:
    """`list` prints one row per task, newest first, with status, template and the current step as `2/2 name`.

    The older task says running but no live runner holds it, so it shows as interrupted (crashed).
    """
    result = run(store, "list", "ws")
    assert result.exit_code == 0, result.output
    header, first, second = result.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "TEMPLATE", "STEP", "CREATED", "UPDATED", "DESCRIPTION"]
    assert first.split()[:4] == ["task-new", "pending", "feature", "-"]
    assert second.split()[:6] == [filled["old"], "interrupted", "(crashed)", "bugfix", "2/2", "validate"]
    assert "Fix the rounding of invoice totals" in second
    assert result.stderr == ""


def test_list_status_filter_keeps_matching_tasks(store: Store, filled: dict[str, str]) -> None:
    """`--status` keeps only tasks in that status, and may be repeated (the crashed run is interrupted)."""
    interrupted = run(store, "list", "ws", "--status", "interrupted")
    assert [line.split()[0] for line in interrupted.stdout.splitlines()[1:]] == [filled["old"]]
    both = run(store, "list", "ws", "-s", "crashed", "-s", "pending", "--json")
    assert [t["id"] for t in json.loads(both.stdout)["tasks"]] == ["task-new", filled["old"]]
    none = run(store, "list", "ws", "--status", "completed")
    assert none.exit_code == 0 and none.stdout == "" and "no tasks with status completed" in none.stderr


def test_list_rejects_an_unknown_status(store: Store, filled: dict[str, str]) -> None:
    """An unknown --status value is a usage error (exit code 2)."""
    assert run(store, "list", "ws", "--status", "sleeping").exit_code == 2


@pytest.mark.stores(*ALL_KINDS)
def test_list_json_holds_the_stored_task_documents(store: Store, filled: dict[str, str]) -> None:
    """`list --json`: {"workspace", "tasks": [task.json documents, newest first], "errors", "workspaces", ...}."""
    result = run(store, "list", "ws", "--json")
    document = json.loads(result.stdout)
    assert list(document) == ["workspace", "tasks", "errors", "workspaces", "interrupted", "runners", "pinned"]
    assert document["workspace"] == "ws" and document["errors"] == []
    assert document["workspaces"] == ["ws", "ws"]
    assert document["interrupted"] == [{"workspace": "ws", "task_id": filled["old"]}]
    expected = [json.loads(encode_task(store.get("ws", i))) for i in (filled["new"], filled["old"])]
    assert document["tasks"] == expected


def test_list_truncates_a_long_description(store: Store) -> None:
    """A long or multi-line description is cut to one line with an ellipsis in the table, but kept whole in JSON."""
    store.create_workspace("ws")
    text = "word " * 40 + "\nsecond line"
    store.create("ws", Task(description=text))
    header, row = run(store, "list", "ws").stdout.splitlines()
    shown = row[header.index("DESCRIPTION") :]
    assert shown.startswith("word word") and shown.endswith("…") and len(shown) <= render.DESCRIPTION_WIDTH
    assert json.loads(run(store, "list", "ws", "--json").stdout)["tasks"][0]["description"] == text


@pytest.mark.stores("file")
def test_list_warns_about_a_corrupt_task_and_keeps_the_others(store: Store, filled: dict[str, str]) -> None:
    """A corrupt task.json is a warning on stderr and an "errors" entry; the readable tasks are still listed."""
    corrupt(store, "ws", filled["old"])
    table = run(store, "list", "ws")
    assert table.exit_code == 0
    assert "task-new" in table.stdout and filled["old"] not in table.stdout
    warnings = table.stderr.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: ") and filled["old"] in warnings[0]

    document = json.loads(run(store, "list", "ws", "--json").stdout)
    assert [t["id"] for t in document["tasks"]] == ["task-new"]
    (error,) = document["errors"]
    assert error["task_id"] == filled["old"] and error["error"] == "CorruptTaskError"
    assert error["path"].endswith(f"{filled['old']}/task.json") and "invalid JSON" in error["reason"]


def test_list_of_an_empty_workspace_says_so(store: Store) -> None:
    """A workspace without tasks prints nothing on stdout and a note on stderr."""
    store.create_workspace("ws")
    result = run(store, "list", "ws")
    assert result.exit_code == 0 and result.stdout == "" and "no tasks in workspace ws" in result.stderr


# -- show --------------------------------------------------------------------------------------------------------


def test_show_renders_header_steps_transitions_artifacts_and_log(store: Store, filled: dict[str, str]) -> None:
    """`show` prints the header, a step timeline with durations and errors, transitions, artifacts and log count."""
    result = run(store, "show", "ws", filled["old"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        f"task            {filled['old']}",
        "status          interrupted (crashed)",
        "template        bugfix",
        "description     Fix the rounding of invoice totals",
        "step            2/2 validate",
        "revision        2",
        "schema_version  1.0",
        "Steps (2)",
        "Transitions (1)",
        "pending → running",
        "started by test",
        "Artifacts (2)",
        "sdd/spec.md",
        "validation.1.json",
        "Log: 2 lines",
    ):
        assert expected in out, expected
    analyze = next(line for line in out.splitlines() if " analyze " in line)
    assert analyze.split()[1:] == ["analyze", "ai", "success", "1", "2m12s"]
    validate = next(line for line in out.splitlines() if " validate " in line and "validation" in line)
    assert validate.lstrip().startswith(">") and validate.endswith("lint failed: 2 issues")
    assert not any(line != line.rstrip() for line in out.splitlines()), "no trailing padding in a pipe"


@pytest.mark.stores(*ALL_KINDS)
def test_show_json_has_documented_shape(store: Store, filled: dict[str, str]) -> None:
    """`show --json` prints {"workspace", "task": task.json document, "artifacts", "log", "crashed",
    "display_status", "runner", "lifecycle"}."""
    document = json.loads(run(store, "show", "ws", filled["old"], "--json").stdout)
    assert list(document) == [
        "workspace",
        "task",
        "artifacts",
        "log",
        "crashed",
        "display_status",
        "runner",
        "lifecycle",
    ]
    assert document["lifecycle"] == {}, "a task nothing controls has an empty lifecycle object"
    assert document["task"] == json.loads(encode_task(store.get("ws", filled["old"])))
    assert document["artifacts"] == [
        {"name": "sdd/spec.md", "size": 7, "step": None},
        {"name": "validation.1.json", "size": len(BINARY), "step": None},
    ]
    assert document["log"] == {"lines": 2, "skipped": 0, "torn_tail": False, "errors": []}


@pytest.mark.stores("file")
def test_show_of_a_corrupt_task_is_one_error_line(store: Store, filled: dict[str, str]) -> None:
    """`show` of a task whose task.json is garbage prints one `error:` line naming it and exits 1."""
    corrupt(store, "ws", filled["old"])
    assert_one_error_line(run(store, "show", "ws", filled["old"]), filled["old"], "unreadable")
    assert_one_error_line(run(store, "show", "ws", filled["old"], "--json"), filled["old"])


def test_show_escapes_control_characters(store: Store) -> None:
    """Terminal escape sequences in stored text are shown escaped, never passed to the terminal."""
    store.create_workspace("ws")
    task = store.create("ws", Task(description="evil \x1b[2J\x1b]0;pwned\x07 text", steps=[Step(name="a\rb")]))
    out = run(store, "show", "ws", task.id).stdout + run(store, "list", "ws").stdout
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "evil \\x1b[2J\\x1b]0;pwned\\x07 text" in out and "a\\rb" in out


def test_human_output_has_no_colour_codes_when_piped(store: Store, filled: dict[str, str]) -> None:
    """Tables written to a non-terminal carry no ANSI escape sequences."""
    for args in (("list", "ws"), ("show", "ws", filled["old"]), ("logs", "ws", filled["old"]), ("workspace", "list")):
        assert "\x1b[" not in run(store, *args).output


# -- logs --------------------------------------------------------------------------------------------------------


def test_logs_prints_ts_level_step_event_then_other_keys(store: Store, filled: dict[str, str]) -> None:
    """`logs` prints `ts level step_name event key=value`, leaving out the keys that repeat the task shown."""
    result = run(store, "logs", "ws", filled["old"])
    assert result.exit_code == 0
    first, second = result.stdout.splitlines()
    ts, rest = first.split(" ", 1)
    assert datetime.fromisoformat(ts.replace("Z", "+00:00")).tzinfo is not None
    assert rest == "info  analyze step started"
    assert second.split(" ", 1)[1] == 'error validate validation failed error="lint failed"'


@pytest.mark.stores(*ALL_KINDS)
def test_logs_json_prints_the_json_lines(store: Store, filled: dict[str, str]) -> None:
    """`logs --json` prints JSON Lines: one compact object per entry, equal to what read_log returns."""
    result = run(store, "logs", "ws", filled["old"], "--json")
    lines = result.stdout.splitlines()
    assert [json.loads(line) for line in lines] == list(store.read_log("ws", filled["old"]))
    assert all(": " not in line for line in lines)


@pytest.mark.stores("file")
def test_logs_reports_damaged_and_torn_lines_on_stderr(store: Store, filled: dict[str, str]) -> None:
    """A damaged middle line and a torn last line are skipped from stdout and each reported on stderr."""
    log = store.log_path("ws", filled["old"])
    with log.open("ab") as f:
        f.write(b"garbage\n")
        f.write(b'{"level": "info", "event": "after"}\n')
        f.write(b'{"level": "info", "ev')
    for args in ((), ("--json",)):
        result = run(store, "logs", "ws", filled["old"], *args)
        assert result.exit_code == 0
        assert len(result.stdout.splitlines()) == 3
        warnings = result.stderr.splitlines()
        assert len(warnings) == 2 and all(w.startswith("warning: ") for w in warnings)
        assert "line 3" in warnings[0] and "incomplete line" in warnings[1]
    summary = json.loads(run(store, "show", "ws", filled["old"], "--json").stdout)["log"]
    assert summary["lines"] == 3 and summary["skipped"] == 2 and summary["torn_tail"] is True
    assert [e["line"] for e in summary["errors"]] == [3]


def test_logs_of_a_task_without_log_says_so(store: Store, filled: dict[str, str]) -> None:
    """A task that has no log yet prints nothing on stdout and a note on stderr."""
    result = run(store, "logs", "ws", "task-new")
    assert result.exit_code == 0 and result.stdout == "" and "no log entries" in result.stderr
    assert run(store, "logs", "ws", "task-new", "--json").stdout == ""


# -- artifacts ---------------------------------------------------------------------------------------------------


@pytest.mark.stores(*ALL_KINDS)
def test_artifacts_lists_names_and_sizes(store: Store, filled: dict[str, str]) -> None:
    """`artifacts` prints each artifact's relative name, size and producing step (`-`: none recorded)."""
    result = run(store, "artifacts", "ws", filled["old"])
    assert result.exit_code == 0
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["NAME", "SIZE", "STEP"],
        ["sdd/spec.md", "7", "B", "-"],
        ["validation.1.json", str(len(BINARY)), "B", "-"],
    ]


@pytest.mark.stores(*ALL_KINDS)
def test_artifacts_json_has_documented_shape(store: Store, filled: dict[str, str]) -> None:
    """`artifacts --json` prints {"workspace", "task_id", "artifacts": [{"name", "size", "step"}]}."""
    document = json.loads(run(store, "artifacts", "ws", filled["old"], "--json").stdout)
    assert document == {
        "workspace": "ws",
        "task_id": filled["old"],
        "artifacts": [
            {"name": "sdd/spec.md", "size": 7, "step": None},
            {"name": "validation.1.json", "size": len(BINARY), "step": None},
        ],
    }


@pytest.mark.stores(*ALL_KINDS)
def test_artifacts_get_prints_the_exact_bytes(store: Store, filled: dict[str, str]) -> None:
    """`artifacts --get NAME` writes the artifact's bytes to stdout unchanged (NUL, CR, invalid UTF-8 included)."""
    result = run(store, "artifacts", "ws", filled["old"], "--get", "validation.1.json")
    assert result.exit_code == 0 and result.stdout_bytes == BINARY
    nested = run(store, "artifacts", "ws", filled["old"], "--get", "sdd/spec.md")
    assert nested.stdout_bytes == b"# Spec\n"


def test_artifacts_get_of_a_missing_artifact_is_one_error_line(store: Store, filled: dict[str, str]) -> None:
    """`--get` of an unknown artifact, or of a path escaping the task, is one `error:` line and exit code 1."""
    assert_one_error_line(run(store, "artifacts", "ws", filled["old"], "--get", "nope.txt"), "nope.txt")
    assert_one_error_line(run(store, "artifacts", "ws", filled["old"], "--get", "../task.json"), "invalid")


def test_artifacts_get_with_json_is_a_usage_error(store: Store, filled: dict[str, str]) -> None:
    """`--get` and `--json` together are a usage error (exit code 2)."""
    result = run(store, "artifacts", "ws", filled["old"], "--get", "sdd/spec.md", "--json")
    assert result.exit_code == 2 and "--json" in result.stderr and result.stdout == ""


def test_artifacts_of_a_task_without_any_says_so(store: Store, filled: dict[str, str]) -> None:
    """A task without artifacts prints nothing on stdout and a note on stderr."""
    result = run(store, "artifacts", "ws", "task-new")
    assert result.exit_code == 0 and result.stdout == "" and "no artifacts" in result.stderr


# -- errors and global options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("list", "nows"), ("show", "nows", "task-x"), ("logs", "nows", "task-x"), ("artifacts", "nows", "task-x")],
)
def test_unknown_workspace_is_one_error_line(store: Store, args: tuple[str, ...]) -> None:
    """Every command given an unknown workspace prints one `error:` line naming it, exit code 1."""
    assert_one_error_line(run(store, *args), "workspace 'nows' does not exist")


@pytest.mark.parametrize("command", ["show", "logs", "artifacts"])
def test_unknown_task_is_one_error_line(store: Store, filled: dict[str, str], command: str) -> None:
    """Every task command given an unknown task id prints one `error:` line naming it, exit code 1."""
    assert_one_error_line(run(store, command, "ws", "task-nope"), "task 'task-nope'", "not found")


@pytest.mark.parametrize(
    "args",
    [
        ("list", "../x"),
        ("show", "../x", "task-x"),
        ("show", "ws", "../x"),
        ("logs", "ws", "a/b"),
        ("artifacts", "ws", ".."),
        ("workspace", "create", "../x"),
    ],
)
def test_invalid_name_is_one_error_line(
    store: Store, home: Path, filled: dict[str, str], args: tuple[str, ...]
) -> None:
    """A workspace name or task id that is not allowed is one `error: invalid ...` line, exit code 1."""
    assert_one_error_line(run(store, *args), "invalid")
    assert not (home / "x").exists()
    assert [w.name for w in store.list_workspaces()] == ["ws"]


def test_debug_adds_the_traceback(store: Store) -> None:
    """With --debug a library error prints its traceback, then the same single `error:` line, exit code 1."""
    result = CliRunner().invoke(app, ["--store", store.url, "--debug", "list", "nows"])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "WorkspaceNotFoundError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: workspace 'nows'")


def test_ctrl_c_exits_130_quietly(store: Store, filled: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt during a command exits with code 130 and prints no traceback."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(type(store), "list", interrupted)
    result = run(store, "list", "ws")
    assert result.exit_code == 130 and "Traceback" not in result.output


def test_unknown_option_is_a_usage_error(store: Store) -> None:
    """An unknown option exits with code 2 (click's usage error), not 1."""
    assert run(store, "list", "ws", "--bogus").exit_code == 2


def test_no_command_prints_help() -> None:
    """Running without a command prints the help, listing every command, as a usage error (exit code 2)."""
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    for command in ("workspace", "list", "show", "logs", "artifacts"):
        assert command in result.output


def test_version_prints_the_package_version() -> None:
    """`--version` prints `atlas-tasks <version>` and exits 0."""
    from atlas_tasks import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"atlas-tasks {__version__}\n"


@pytest.mark.stores("file")
def test_atlas_home_is_the_default_home(store: Store, filled: dict[str, str]) -> None:
    """Without --home the store at $ATLAS_HOME is used."""
    result = CliRunner(env={"ATLAS_HOME": str(store.home)}).invoke(app, ["list", "ws", "--json"])
    assert [t["id"] for t in json.loads(result.stdout)["tasks"]] == ["task-new", filled["old"]]


def test_json_is_never_wrapped_or_cut(store: Store) -> None:
    """JSON output keeps long and non-ASCII strings whole on one line, whatever the terminal width."""
    store.create_workspace("ws")
    text = "Ünïcode & <markup> [bold]not markup[/bold] " * 20
    task = store.create("ws", Task(description=text))
    result = run(store, "show", "ws", task.id, "--json", COLUMNS="40")
    assert json.loads(result.stdout)["task"]["description"] == text
    assert any(len(line) > 400 for line in result.stdout.splitlines())


def test_go_atlas_store_is_readable(tmp_path: Path) -> None:
    """A store written by the Go ATLAS lists and shows, and its JSON keeps the Go key spelling."""
    home = tmp_path / "go-home"
    shutil.copytree(FIXTURES / "story-home", home)
    runner = CliRunner()
    listed = runner.invoke(app, ["--home", str(home), "list", "payments"])
    assert listed.exit_code == 0, listed.output
    assert "5/5" in listed.stdout and "2/3 implement" in listed.stdout
    shown = runner.invoke(app, ["--home", str(home), "show", "payments", "task-20251228-100000", "--json"])
    task = json.loads(shown.stdout)["task"]
    assert task["workspace_id"] == "payments" and "workspace_name" not in task
    assert task["description"] == "Fix rounding in <InvoiceTotal> when currency & locale differ"


# -- formatting helpers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=5), "5s ago"),
        (timedelta(minutes=5, seconds=59), "5m ago"),
        (timedelta(hours=3), "3h ago"),
        (timedelta(days=4), "4d ago"),
        (timedelta(days=40), "2025-01-20"),
        (timedelta(minutes=-5), "2025-03-01T12:05:00Z"),
    ],
)
def test_ago_is_relative_when_recent_and_a_date_when_old(delta: timedelta, expected: str) -> None:
    """Times are shown relative to now up to two weeks back, as a date beyond, and as ISO if in the future."""
    assert render.ago(T0 - delta, T0) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.42, "0.4s"), (42, "42s"), (132.5, "2m12s"), (4092, "1h08m"), (3 * 86400 + 4 * 3600, "3d04h")],
)
def test_duration_is_compact(seconds: float, expected: str) -> None:
    """Durations are shown in the two largest units."""
    assert render.duration(timedelta(seconds=seconds)) == expected


@pytest.mark.parametrize(("num", "expected"), [(None, "?"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB")])
def test_size_is_human_readable(num: int | None, expected: str) -> None:
    """Byte counts are shown in binary units, `?` when unknown."""
    assert render.size(num) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("plain", "plain"), ("two words", '"two words"'), ("", '""'), (3, "3"), ({"a": [1]}, '{"a": [1]}')],
)
def test_log_field_is_one_token(value: object, expected: str) -> None:
    """A log value is bare when it is one word, else JSON, so `key=value` pairs stay parseable."""
    assert render.log_field(value) == expected


def test_help_lists_every_command_in_order_with_its_help() -> None:
    """Commands are built on first use, yet `--help` lists all of them, in registration order, each with its help."""
    from atlas_tasks.cli._app import COMMANDS, GROUPS

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == [*COMMANDS, *GROUPS]
    rows = {line.split()[0]: line.split(None, 1)[1] for line in listed}
    assert rows["resume"] == "Same as `run`: continue a task from where it stopped."
    assert rows["show"] == "Show one task in detail."
    assert rows["workspace"] == "Create, list, show and close workspaces."


def test_a_mistyped_command_is_a_usage_error_naming_the_closest() -> None:
    """An unknown name is a usage error (exit code 2) that suggests the commands it resembles, built or not."""
    result = CliRunner().invoke(app, ["lsit"])
    assert result.exit_code == 2
    assert "No such command 'lsit'. Did you mean 'list'?" in result.output
    result = CliRunner().invoke(app, ["workspace", "lsit"])
    assert result.exit_code == 2 and "Did you mean 'list'?" in result.output
