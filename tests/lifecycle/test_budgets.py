"""Token and cost budgets (atlas_tasks.lifecycle.budgets): usage reported by real step commands, recorded per step
and per task in the step's checkpoint; soft limits warn once; hard limits stop the run at the next step boundary and
keep it from starting until the budget is raised by a recorded change.

The AI command is a small Python script of our own (``agent.py``) that reports usage the ways real agent CLIs do:
through ``$ATLAS_USAGE_FILE``, or on stdout as a Claude-like JSON result, a Claude-like stream, Codex-like JSONL
events or a Gemini-like stats document. The documents are our own text, shaped as docs/runs.md describes.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from atlas_tasks import BudgetExceededError, Step, Task, TaskStatus, executors
from atlas_tasks.errors import InvalidValueError, StepFailedError, TaskRunningError
from atlas_tasks.lifecycle import budgets
from atlas_tasks.store import Store

ALL_KINDS = ("file", "memory", "postgres")

# argv: MODE TOKENS [COST]. Counts its runs in $COUNTER (one line per run, the step's name), then reports.
AGENT = textwrap.dedent(
    """
    import json, os, sys
    mode, tokens = sys.argv[1], int(sys.argv[2])
    cost = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    sys.stdin.read()
    with open(os.environ["COUNTER"], "a") as f:
        f.write(os.environ["ATLAS_STEP_NAME"] + "\\n")
    half = tokens // 2
    path = os.environ["ATLAS_USAGE_FILE"]
    if mode == "file":
        with open(path, "w") as f:
            json.dump({"input_tokens": half, "output_tokens": tokens - half, "cost_usd": cost,
                       "model": "toy-1", "colour": "ignored"}, f)
        print("did the work")
    elif mode == "lines":
        with open(path, "w") as f:
            f.write(json.dumps({"input_tokens": half, "output_tokens": 0}) + "\\n")
            f.write(json.dumps({"input_tokens": 0, "output_tokens": tokens - half, "cost_usd": cost}) + "\\n")
    elif mode == "bad":
        with open(path, "w") as f:
            f.write("{tokens: lots")
        print("did the work anyway")
    elif mode == "claude":
        print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "patched it",
                          "total_cost_usd": cost, "usage": {"input_tokens": half - 10,
                          "cache_creation_input_tokens": 4, "cache_read_input_tokens": 6,
                          "output_tokens": tokens - half}}))
    elif mode == "claude-stream":
        print(json.dumps({"type": "system", "subtype": "init", "model": "toy"}))
        print(json.dumps({"type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}}))
        print(json.dumps({"type": "result", "subtype": "success", "total_cost_usd": cost,
                          "usage": {"input_tokens": half, "output_tokens": tokens - half}}))
    elif mode == "codex":
        print(json.dumps({"type": "thread.started", "thread_id": "t-1"}))
        for part in (half, tokens - half):
            print(json.dumps({"type": "turn.started"}))
            print(json.dumps({"type": "item.completed", "item": {"type": "agent_message", "text": "ok"}}))
            print(json.dumps({"type": "turn.completed", "usage": {"input_tokens": part, "cached_input_tokens": 1,
                                                                  "output_tokens": 0}}))
    elif mode == "gemini":
        print(json.dumps({"response": "done", "stats": {"models": {"toy-pro": {"api": {"totalRequests": 1},
              "tokens": {"prompt": half, "candidates": tokens - half, "total": tokens, "cached": 3}}}}}))
    elif mode == "plain":
        print("no usage here, just prose")
    """
)


@pytest.fixture
def ws(store: Store, tmp_path: Path) -> str:
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    name = f"ws-{secrets.token_hex(3)}"
    store.create_workspace(name, worktree_path=str(worktree))
    return name


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs"
    monkeypatch.setenv("COUNTER", str(path))
    return path


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    path = tmp_path / "agent.py"
    path.write_text(AGENT)
    return path


def ai_task(store: Store, ws: str, agent: Path, args: tuple[str, ...], steps: int = 1, budget: Any = None) -> Task:
    """A task of ``steps`` AI steps, each running the agent with ``args`` (MODE TOKENS [COST])."""
    task = Task(description="spend tokens", steps=[Step(name=f"ai{i}", type="ai") for i in range(steps)])
    task.config.variables["ai_command"] = " ".join([sys.executable, str(agent), *args])
    if budget is not None:
        task.metadata["budget"] = budget
    return store.create(ws, task)


def run(store: Store, ws: str, task_id: str) -> Task:
    with store.run(ws, task_id) as live:  # type: ignore[attr-defined]
        return executors.run_task(live)


def ran(counter: Path) -> list[str]:
    return counter.read_text().split() if counter.exists() else []


def log_events(store: Store, ws: str, task_id: str, event: str) -> list[dict[str, Any]]:
    return [e for e in store.read_log(ws, task_id) if e.get("event") == event]  # type: ignore[attr-defined]


# -- usage recorded ----------------------------------------------------------------------------------------------


@pytest.mark.stores(*ALL_KINDS)
def test_usage_file_is_recorded_per_step_and_per_task(store: Store, ws: str, agent: Path, counter: Path) -> None:
    """Two AI steps write 300 tokens each to $ATLAS_USAGE_FILE: each StepResult has its 300, the task total 600."""
    task = ai_task(store, ws, agent, ("file", "300", "0.25"), 2)
    done = run(store, ws, task.id)
    assert done.status == TaskStatus.COMPLETED
    stored = store.get(ws, task.id)
    per_step = [r.metadata["usage"] for r in stored.step_results]
    assert (
        per_step
        == [
            {
                "input_tokens": 150,
                "output_tokens": 150,
                "total_tokens": 300,
                "cost_usd": 0.25,
                "model": "toy-1",
                "source": "usage_file",
            }
        ]
        * 2
    )
    assert stored.metadata["usage"] == {
        "input_tokens": 300,
        "output_tokens": 300,
        "total_tokens": 600,
        "cost_usd": 0.5,
        "steps_reported": 2,
    }


@pytest.mark.stores("file")
@pytest.mark.parametrize(
    ("mode", "source", "expected"),
    [
        ("lines", "usage_file", {"input_tokens": 50, "output_tokens": 50, "total_tokens": 100, "cost_usd": 0.1}),
        (
            "claude",
            "claude",
            {"input_tokens": 50, "output_tokens": 50, "total_tokens": 100, "cost_usd": 0.1, "cache_read_tokens": 6},
        ),
        ("claude-stream", "claude", {"input_tokens": 50, "output_tokens": 50, "total_tokens": 100, "cost_usd": 0.1}),
        ("codex", "codex", {"input_tokens": 100, "output_tokens": 0, "total_tokens": 100, "cache_read_tokens": 2}),
        (
            "gemini",
            "gemini",
            {"input_tokens": 50, "output_tokens": 50, "total_tokens": 100, "cache_read_tokens": 3, "model": "toy-pro"},
        ),
    ],
)
def test_each_reporting_shape_is_read(
    store: Store, ws: str, agent: Path, counter: Path, mode: str, source: str, expected: dict[str, Any]
) -> None:
    """JSON lines in the usage file are summed; Claude, Claude stream, Codex and Gemini stdout documents are read."""
    task = ai_task(store, ws, agent, (mode, "100", "0.1"))
    run(store, ws, task.id)
    stored = store.get(ws, task.id)
    assert stored.step_results[-1].metadata["usage"] == {**expected, "source": source}
    assert stored.metadata["usage"]["total_tokens"] == 100


@pytest.mark.stores(*ALL_KINDS)
def test_bad_usage_json_is_a_warning_and_the_step_still_succeeds(
    store: Store, ws: str, agent: Path, counter: Path
) -> None:
    """A usage file that is not JSON: a warn log line naming the problem; the step succeeds, no usage recorded."""
    task = ai_task(store, ws, agent, ("bad", "100"))
    done = run(store, ws, task.id)
    assert done.status == TaskStatus.COMPLETED
    stored = store.get(ws, task.id)
    assert stored.step_results[-1].status == "success" and "usage" not in stored.step_results[-1].metadata
    assert "usage" not in stored.metadata
    (warning,) = log_events(store, ws, task.id, "usage file ignored")
    assert warning["level"] == "warn" and "neither a JSON object nor JSON lines" in warning["reason"]


@pytest.mark.stores("file")
def test_output_that_is_not_a_known_document_means_no_usage(store: Store, ws: str, agent: Path, counter: Path) -> None:
    """Plain prose on stdout (no usage file) is no usage and no warning: the step succeeds as before."""
    task = ai_task(store, ws, agent, ("plain", "100"))
    assert run(store, ws, task.id).status == TaskStatus.COMPLETED
    stored = store.get(ws, task.id)
    assert "usage" not in stored.metadata and not log_events(store, ws, task.id, "usage file ignored")


@pytest.mark.stores("file")
def test_command_steps_get_a_fresh_private_usage_file_per_command(store: Store, ws: str, tmp_path: Path) -> None:
    """Each command of a step sees its own ATLAS_USAGE_FILE, absent at start, in a 0700 directory; both count."""
    seen = tmp_path / "seen"
    probe = (
        f'echo "$ATLAS_USAGE_FILE $(test -e "$ATLAS_USAGE_FILE" && echo exists || echo absent) '
        f'$(stat -c %a "$(dirname "$ATLAS_USAGE_FILE")")" >> {seen}; '
        'echo \'{"input_tokens": 7, "output_tokens": 3}\' > "$ATLAS_USAGE_FILE"'
    )
    step = Step(name="check", type="validation", commands=[probe, probe], shell=True)  # type: ignore[call-arg]
    task = store.create(ws, Task(description="probe", steps=[step]))
    run(store, ws, task.id)
    lines = [line.split() for line in seen.read_text().splitlines()]
    assert len(lines) == 2 and lines[0][0] != lines[1][0]
    assert [line[1:] for line in lines] == [["absent", "700"], ["absent", "700"]]
    assert not Path(lines[0][0]).parent.exists(), "the usage directory is removed with the step"
    assert store.get(ws, task.id).metadata["usage"]["total_tokens"] == 20


# -- soft and hard limits --------------------------------------------------------------------------------------------


@pytest.mark.stores(*ALL_KINDS)
def test_soft_limit_warns_once(store: Store, ws: str, agent: Path, counter: Path) -> None:
    """Three steps of 100 tokens against a soft limit of 150: one warning (after step 2), the run goes on."""
    task = ai_task(store, ws, agent, ("file", "100"), 3, budget={"tokens": {"soft": 150}})
    assert run(store, ws, task.id).status == TaskStatus.COMPLETED
    stored = store.get(ws, task.id)
    (warning,) = stored.metadata["budget_warnings"]
    assert (warning["limit"], warning["soft"], warning["used"], warning["step_name"]) == ("tokens", 150, 200, "ai1")
    (event,) = log_events(store, ws, task.id, "budget soft limit crossed")
    assert event["level"] == "warn" and event["message"] == "token budget: used 200 of soft limit 150"
    assert ("budget warning", "token soft limit 150 crossed (used 200, step 'ai1')") in budgets.describe(stored)


@pytest.mark.stores(*ALL_KINDS)
def test_hard_limit_stops_the_run_at_the_next_boundary(store: Store, ws: str, agent: Path, counter: Path) -> None:
    """Hard limit 250, 100 tokens a step: steps 1-3 run (3 crosses it), step 4 never runs; interrupted with why."""
    task = ai_task(store, ws, agent, ("file", "100"), 4, budget={"tokens": {"hard": 250}})
    done = run(store, ws, task.id)
    assert done.status == TaskStatus.INTERRUPTED
    assert ran(counter) == ["ai0", "ai1", "ai2"]
    stored = store.get(ws, task.id)
    reason = "token budget exceeded: used 300 of hard limit 250"
    assert stored.metadata["stop_reason"]["kind"] == "budget_exceeded"
    assert stored.metadata["stop_reason"]["reason"] == reason
    assert stored.transitions[-1].reason == reason and str(stored.transitions[-1].to_status) == "interrupted"
    assert [s.status for s in stored.steps] == ["success", "success", "success", "pending"]
    assert budgets.document(stored)["budget"]["exceeded"] == {"limit": "tokens", "used": 300, "hard": 250}


@pytest.mark.stores(*ALL_KINDS)
def test_run_is_refused_while_spend_is_at_the_hard_limit(store: Store, ws: str, agent: Path, counter: Path) -> None:
    """After a budget stop, `run` raises BudgetExceededError naming spend, limit and the command; nothing runs."""
    task = ai_task(store, ws, agent, ("claude", "100", "0.4"), 3, budget={"cost_usd": {"hard": 0.5}})
    run(store, ws, task.id)
    assert ran(counter) == ["ai0", "ai1"]
    revision = store.get(ws, task.id).revision
    with pytest.raises(BudgetExceededError) as caught:
        run(store, ws, task.id)
    err = caught.value
    assert (err.limit, err.used, err.hard) == ("cost_usd", 0.8, 0.5)
    assert "cost budget exceeded: used $0.8 of hard limit $0.5" in err.message
    assert f"atlas-tasks budget {ws} {task.id} --cost-hard N" in err.message
    assert ran(counter) == ["ai0", "ai1"] and store.get(ws, task.id).revision == revision


@pytest.mark.stores(*ALL_KINDS)
def test_raising_the_hard_limit_lets_the_run_continue_and_is_recorded(
    store: Store, ws: str, agent: Path, counter: Path
) -> None:
    """set_budget raises the limit with a reason (metadata.budget_changes + a log line); `run` then completes."""
    task = ai_task(store, ws, agent, ("file", "100"), 3, budget={"tokens": {"soft": 50, "hard": 100}})
    run(store, ws, task.id)
    assert ran(counter) == ["ai0"]
    budgets.set_budget(store, ws, task.id, tokens_hard=1000, reason="worth it")  # type: ignore[arg-type]
    assert run(store, ws, task.id).status == TaskStatus.COMPLETED
    assert ran(counter) == ["ai0", "ai1", "ai2"]
    stored = store.get(ws, task.id)
    assert stored.metadata["budget"] == {"tokens": {"soft": 50, "hard": 1000}}
    (change,) = stored.metadata["budget_changes"]
    assert change["reason"] == "worth it"
    assert change["before"] == {"tokens": {"soft": 50, "hard": 100}} and change["after"] == stored.metadata["budget"]
    (event,) = log_events(store, ws, task.id, "budget changed")
    assert event["reason"] == "worth it" and event["after"] == {"tokens": {"soft": 50, "hard": 1000}}


@pytest.mark.stores("file", "memory")
def test_set_budget_refuses_bad_limits_and_changes_nothing(store: Store, ws: str, agent: Path) -> None:
    """A negative limit, or a soft limit above the hard one, is refused before anything is written."""
    task = ai_task(store, ws, agent, ("file", "1"), budget={"tokens": {"hard": 100}})
    for given in ({"tokens_hard": -1}, {"tokens_soft": 500}, {"cost_soft": float("nan")}):
        with pytest.raises(InvalidValueError):
            budgets.set_budget(store, ws, task.id, **given)  # type: ignore[arg-type]
    assert store.get(ws, task.id).revision == task.revision


@pytest.mark.stores("file", "memory")
def test_set_budget_refuses_while_a_runner_holds_the_task(store: Store, ws: str, agent: Path) -> None:
    """Changing the budget under a live runner would make its next checkpoint conflict: refused, nothing written."""
    task = ai_task(store, ws, agent, ("file", "1"))
    with store.run(ws, task.id) as live:  # type: ignore[attr-defined]
        with pytest.raises(TaskRunningError):
            budgets.set_budget(store, ws, task.id, tokens_hard=5)  # type: ignore[arg-type]
        assert "budget" not in store.get(ws, task.id).metadata
        live.checkpoint()  # the runner's copy is still current


@pytest.mark.stores("file")
def test_failed_ai_step_still_counts_its_usage(store: Store, ws: str, tmp_path: Path) -> None:
    """An AI command that reports usage and then fails: the failed StepResult and the task total both count it."""
    script = tmp_path / "fail.py"
    script.write_text(
        "import json, os, sys\nsys.stdin.read()\n"
        "open(os.environ['ATLAS_USAGE_FILE'], 'w').write(json.dumps({'input_tokens': 40, 'output_tokens': 2}))\n"
        "sys.exit(3)\n"
    )
    task = Task(description="fail", steps=[Step(name="think", type="ai")])
    task.config.variables["ai_command"] = f"{sys.executable} {script}"
    task = store.create(ws, task)
    with pytest.raises(StepFailedError):
        run(store, ws, task.id)
    stored = store.get(ws, task.id)
    assert (
        stored.step_results[-1].status == "failed" and stored.step_results[-1].metadata["usage"]["total_tokens"] == 42
    )
    assert stored.metadata["usage"]["total_tokens"] == 42


# -- exactly once across a crash -------------------------------------------------------------------------------------

RUNNER = textwrap.dedent(
    """
    import sys
    from atlas_tasks import FileStore
    from atlas_tasks.executors import run_task
    store = FileStore(sys.argv[1])
    with store.run(sys.argv[2], sys.argv[3]) as run:
        run_task(run)
    """
)


@pytest.mark.stores("file")
def test_usage_counts_once_when_the_runner_is_killed_before_the_step_checkpoint(
    store: Store, ws: str, tmp_path: Path
) -> None:
    """kill -9 after a command reported usage but before its step's checkpoint: the resumed run counts it once."""
    marker, slow = tmp_path / "in-second-command", tmp_path / "slow"
    slow.touch()
    report = 'echo \'{"input_tokens": 60, "output_tokens": 40}\' > "$ATLAS_USAGE_FILE"'
    # The second command is slow only on the first attempt: it waits there to be killed with its runner.
    wait = f"if [ -e {slow} ]; then rm {slow}; touch {marker}; exec sleep 60; fi"
    step = Step(name="spend", type="validation", commands=[report, wait], shell=True)  # type: ignore[call-arg]
    task = store.create(
        ws, Task(description="crash", steps=[step, Step(name="after", type="validation", commands=["true"])])
    )
    child = subprocess.Popen([sys.executable, "-c", RUNNER, str(store.home), ws, task.id])  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and child.poll() is None, "the runner never reached the second command"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    assert "usage" not in store.get(ws, task.id).metadata, "nothing acknowledged before the step's checkpoint"
    resumed = subprocess.run([sys.executable, "-c", RUNNER, str(store.home), ws, task.id], timeout=60)  # type: ignore[attr-defined]
    assert resumed.returncode == 0
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.COMPLETED and stored.steps[0].attempts == 2
    assert stored.metadata["usage"]["total_tokens"] == 100 and stored.metadata["usage"]["steps_reported"] == 1


# -- the parsers, on documents they must not misread ----------------------------------------------------------------


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "[1, 2, 3]",
        '{"type": "result", "result": "no usage at all"}',
        '{"usage": "lots"}',
        '{"stats": {"models": {"m": {"tokens": "many"}}}}',
        '{"type": "turn.completed", "usage": {"input_tokens": -5}}\n',
        '{"type": "result", "usage": {"input_tokens": true}}',
        "{not json",
    ],
)
def test_unrecognised_output_is_no_usage(stdout: str) -> None:
    """Shapes we do not recognise (or values that are not counts) give no usage and raise nothing."""
    assert budgets.parse_agent_output(stdout) == (None, "")
