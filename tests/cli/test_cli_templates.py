"""`atlas-tasks templates`: every template's steps with exactly what they run, before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks.cli import app

GIT_AND_GH = [
    'git add -A && git commit -m "$ATLAS_TASK_DESCRIPTION"',
    "git push -u origin HEAD",
    "gh pr create --fill",
    "gh pr checks --watch",
]


def cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--home", str(home), *args])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with one user template: a default validation command, a shell step and an AI step with a prompt."""
    home = tmp_path / "home"
    (home / "templates").mkdir(parents=True)
    template = {
        "description": "lint then ask",
        "validation_commands": ["make lint"],
        "steps": [
            {"name": "check", "type": "validation", "timeout_seconds": 30},
            {"name": "tag", "type": "git", "shell": True, "commands": ["git tag v1 && git push --tags"]},
            {"name": "ask", "type": "ai", "prompt": "Explain the diff"},
        ],
    }
    (home / "templates" / "mine.json").write_text(json.dumps(template))
    return home


def test_listing_shows_the_git_and_gh_commands_of_bugfix(home: Path) -> None:
    """The plain listing names every command the built-in bugfix template runs, and that it runs git and gh."""
    result = cli(home, "templates")
    assert result.exit_code == 0, result.output
    bugfix = result.stdout.split("\n\n")[0]
    assert bugfix.startswith("bugfix (built-in)")
    for command in GIT_AND_GH:
        assert f"$ {command}" in bugfix
    assert "runs: git, gh in the workspace's worktree" in bugfix


def test_listing_json_keeps_step_names_and_adds_what_each_step_runs(home: Path) -> None:
    """`templates --json` keeps `steps` (names) and adds `runs` and each step's action and commands."""
    documents = {t["name"]: t for t in json.loads(cli(home, "templates", "--json").stdout)["templates"]}
    bugfix = documents["bugfix"]
    assert bugfix["steps"][:3] == ["analyze", "implement", "validate"]
    assert bugfix["runs"] == ["git", "gh"]
    commands = [c for step in bugfix["step_actions"] for c in step["commands"]]
    assert commands == GIT_AND_GH
    assert [s["action"] for s in bugfix["step_actions"]][:3] == ["ai", "ai", "validation_commands"]


def test_show_json_gives_type_timeout_and_exact_commands(home: Path) -> None:
    """`templates show bugfix --json`: each step's type, timeout, action and exact commands."""
    result = cli(home, "templates", "show", "bugfix", "--json")
    assert result.exit_code == 0, result.output
    steps = {s["name"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps["git_push"] == {
        "name": "git_push",
        "type": "git",
        "description": "Push the branch",
        "timeout_seconds": 120,
        "action": "commands",
        "commands": ["git push -u origin HEAD"],
        "shell": False,
        "prompt": "",
    }
    assert steps["git_commit"]["shell"] is True
    assert steps["analyze"]["action"] == "ai" and "Task: <the task's description>" in steps["analyze"]["prompt"]
    assert steps["review"]["action"] == "human"


def test_show_text_prints_each_step_with_its_commands(home: Path) -> None:
    """`templates show` of a user template: timeouts, the default validation command, the shell, the AI prompt."""
    result = cli(home, "templates", "show", "mine")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"template mine ({home / 'templates' / 'mine.json'})" in out
    assert "1. check (validation, timeout 30s)" in out and "$ make lint" in out
    assert "2. tag (git, no timeout, through /bin/sh)" in out and "$ git tag v1 && git push --tags" in out
    assert "3. ask (ai, no timeout)" in out and "| Explain the diff" in out
    assert "runs: make, git in the workspace's worktree" in out


def test_show_of_an_unknown_template_is_one_error_line(home: Path) -> None:
    """An unknown name: one `error:` line listing the known templates, exit code 1."""
    result = cli(home, "templates", "show", "nope")
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: template 'nope': no such template (known: bugfix, commit, feature, mine)")


def test_stored_control_characters_are_escaped(home: Path) -> None:
    """A template's text cannot drive the terminal: control characters are shown escaped."""
    (home / "templates" / "evil.json").write_text(
        json.dumps({"description": "a\x1b[2Jb", "steps": [{"name": "x", "type": "git", "commands": ["echo \x1b]0;t"]}]})
    )
    out = cli(home, "templates", "show", "evil").stdout + cli(home, "templates").stdout
    assert "\x1b" not in out and "a\\x1b[2Jb" in out


def test_a_broken_user_template_does_not_hide_the_others(home: Path) -> None:
    """One unreadable template file is a warning (and a JSON error entry); the other templates are still listed."""
    (home / "templates" / "broken.json").write_text("{not json")
    result = cli(home, "templates")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("bugfix (built-in)") and "mine (" in result.stdout
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: template 'broken': ")
    document = json.loads(cli(home, "templates", "--json").stdout)
    assert [e["name"] for e in document["errors"]] == ["broken"]
    assert "mine" in [t["name"] for t in document["templates"]]


def test_atlas_home_with_a_tilde_finds_the_user_templates(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`$ATLAS_HOME=~/home` is the home under the user's home directory, as for the store, not a `~` directory."""
    monkeypatch.chdir(tmp_path)  # an unexpanded "~/home" would be looked for beneath the working directory
    monkeypatch.delenv("ATLAS_STORE_URL", raising=False)
    result = CliRunner().invoke(app, ["templates", "--json"], env={"HOME": str(tmp_path), "ATLAS_HOME": "~/home"})
    assert result.exit_code == 0, result.output
    assert "mine" in [t["name"] for t in json.loads(result.stdout)["templates"]]
