"""`atlas-tasks budget`, `new --budget-tokens/--budget-cost` and a template's `budget`: set, shown, enforced, raised.

The AI command is a small script of our own that writes its usage to $ATLAS_USAGE_FILE.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks.cli import app
from atlas_tasks.store import Store
from store_kinds import cli_args

ALL_KINDS = ("memory", "file", "postgres")

AGENT = (
    "import json, os, sys\nsys.stdin.read()\n"
    "open(os.environ['COUNTER'], 'a').write(os.environ['ATLAS_STEP_NAME'] + '\\n')\n"
    "usage = {'input_tokens': 70, 'output_tokens': 30, 'cost_usd': 0.01}\n"
    "json.dump(usage, open(os.environ['ATLAS_USAGE_FILE'], 'w'))\n"
)


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


@pytest.fixture
def store(store: Store, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The store, with workspace `w` and a user template `think` of three AI steps with a token budget."""
    (tmp_path / "worktree").mkdir()
    store.create_workspace("w", worktree_path=str(tmp_path / "worktree"))
    (home / "templates").mkdir(parents=True)
    steps = [{"name": f"think{i}", "type": "ai"} for i in range(3)]
    template = {"description": "think", "steps": steps, "budget": {"tokens": {"soft": 100, "hard": 150}}}
    (home / "templates" / "think.json").write_text(json.dumps(template))
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    monkeypatch.setenv("ATLAS_TASKS_AI_COMMAND", f"{sys.executable} {agent}")
    monkeypatch.setenv("COUNTER", str(tmp_path / "runs"))
    return store


def new(store: Store, *extra: str) -> str:
    result = cli(store, "new", "w", "-t", "think", "-d", "think hard", "--json", *extra)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["id"])


def ran(tmp_path: Path) -> list[str]:
    path = tmp_path / "runs"
    return path.read_text().split() if path.exists() else []


@pytest.mark.stores("memory", "file")
def test_new_takes_the_template_budget_and_options_override_it_limit_by_limit(store: Store) -> None:
    """The template's budget is the task's; --budget-tokens replaces both token limits, --budget-cost adds a hard."""
    plain = new(store)
    assert store.get("w", plain).metadata["budget"] == {"tokens": {"soft": 100, "hard": 150}}
    given = new(store, "--budget-tokens", "1000:2000", "--budget-cost", "0.5")
    assert store.get("w", given).metadata["budget"] == {
        "tokens": {"soft": 1000, "hard": 2000},
        "cost_usd": {"hard": 0.5},
    }
    soft_only = new(store, "--budget-tokens", "120:")
    assert store.get("w", soft_only).metadata["budget"] == {"tokens": {"soft": 120, "hard": 150}}


@pytest.mark.stores("memory", "file")
@pytest.mark.parametrize("value", ["abc", "5:x", "0", ":", "-3", "900:100", "300:"])
def test_new_refuses_a_bad_budget_and_creates_nothing(store: Store, value: str) -> None:
    """Not SOFT:HARD / HARD of positive numbers, or soft above hard (the template's hard 150 for "300:"): a usage
    error naming the option, and no task."""
    result = cli(store, "new", "w", "-t", "think", "-d", "x", "--budget-tokens", value)
    assert result.exit_code == 2 and "--budget-tokens" in result.stderr
    assert list(store.list("w")) == []


@pytest.mark.stores("file")
def test_a_template_with_a_bad_budget_is_refused(store: Store, home: Path) -> None:
    """A template whose budget has a negative limit is an invalid template: one error line, no task."""
    doc = {"steps": [{"name": "a", "type": "ai"}], "budget": {"tokens": {"hard": -5}}}
    (home / "templates" / "broken.json").write_text(json.dumps(doc))
    result = cli(store, "new", "w", "-t", "broken", "-d", "x")
    assert result.exit_code == 1 and result.stderr.startswith("error: template 'broken'")
    assert "a limit must be a positive number" in result.stderr and result.stderr.count("\n") == 1
    assert list(store.list("w")) == []


@pytest.mark.stores(*ALL_KINDS)
def test_over_budget_run_stops_is_refused_then_raised_and_continues(store: Store, tmp_path: Path) -> None:
    """Hard 150 at 100 tokens a step: 2 steps run; `run` is refused with the fix; `budget --tokens-hard` lifts it."""
    task_id = new(store)
    cli(store, "run", "w", task_id)
    assert ran(tmp_path) == ["think0", "think1"]
    assert store.get("w", task_id).metadata["stop_reason"]["reason"] == (
        "token budget exceeded: used 200 of hard limit 150"
    )
    refused = cli(store, "run", "w", task_id)
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: ") and "used 200 of hard limit 150" in refused.stderr
    assert f"atlas-tasks budget w {task_id} --tokens-hard N" in refused.stderr and "Traceback" not in refused.stderr
    raised = cli(store, "budget", "w", task_id, "--tokens-hard", "1000", "--reason", "worth it", "--json")
    assert raised.exit_code == 0, raised.output
    doc = json.loads(raised.stdout)
    assert doc["changed"] is True and doc["budget"] == {"tokens": {"soft": 100, "hard": 1000}}
    assert doc["changes"][-1]["reason"] == "worth it" and doc["exceeded"] is None
    assert cli(store, "run", "w", task_id).exit_code == 0
    assert ran(tmp_path) == ["think0", "think1", "think2"]
    assert str(store.get("w", task_id).status) == "completed"


@pytest.mark.stores("memory", "file")
def test_budget_without_limits_shows_budget_and_spend(store: Store) -> None:
    """`budget WS ID` prints usage, limits, the soft warning and how to raise a reached hard limit; changes nothing."""
    task_id = new(store)
    cli(store, "run", "w", task_id)
    revision = store.get("w", task_id).revision
    shown = cli(store, "budget", "w", task_id)
    assert shown.exit_code == 0, shown.output
    assert "usage:          200 tokens (in 140, out 60), $0.02, from 2 step(s)" in shown.stdout
    assert "token budget:   200 used (soft 100, hard 150)" in shown.stdout
    assert "token soft limit 100 crossed (used 100, step 'think0')" in shown.stdout
    assert f"raise it with `atlas-tasks budget w {task_id} --tokens-hard N`" in shown.stdout
    assert store.get("w", task_id).revision == revision


@pytest.mark.stores("memory", "file")
def test_budget_refuses_a_bad_limit_with_one_error_line(store: Store) -> None:
    """A soft limit above the hard one is one `error:` line naming the option; the task is unchanged."""
    task_id = new(store)
    revision = store.get("w", task_id).revision
    result = cli(store, "budget", "w", task_id, "--tokens-soft", "500")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: invalid --tokens-soft '500'") and "hard limit 150" in result.stderr
    assert store.get("w", task_id).revision == revision


@pytest.mark.stores("memory", "file")
def test_spend_is_in_show_json_and_list_json(store: Store) -> None:
    """`show --json` has lifecycle.usage and lifecycle.budget; `list --json` carries metadata.usage per task."""
    task_id = new(store)
    cli(store, "run", "w", task_id)
    shown = json.loads(cli(store, "show", "w", task_id, "--json").stdout)
    assert shown["lifecycle"]["usage"] == {
        "input_tokens": 140,
        "output_tokens": 60,
        "total_tokens": 200,
        "cost_usd": 0.02,
        "steps_reported": 2,
    }
    assert shown["lifecycle"]["budget"]["exceeded"] == {"limit": "tokens", "used": 200, "hard": 150}
    listed = json.loads(cli(store, "list", "w", "--json").stdout)
    (row,) = [t for t in listed["tasks"] if t["id"] == task_id]
    assert row["metadata"]["usage"]["total_tokens"] == 200
    text = cli(store, "show", "w", task_id).stdout
    assert "200 tokens (in 140, out 60)" in text and "budget_exceeded: token budget exceeded" in text


@pytest.mark.stores("memory", "file")
def test_a_run_stopped_by_the_budget_says_why_and_what_to_run(store: Store) -> None:
    """The run's last line names the stop (the spend against the limit) and the `budget` command that lifts it;
    the exit code is 1."""
    task_id = new(store)
    result = cli(store, "run", "w", task_id)
    assert result.exit_code == 1, "a stopped run is not a finished one"
    last = result.stdout.strip().splitlines()[-1]
    assert f"task {task_id} is interrupted (token budget exceeded: used 200 of hard limit 150)" in last, last
    assert f"atlas-tasks budget w {task_id} --tokens-hard N" in last, last
