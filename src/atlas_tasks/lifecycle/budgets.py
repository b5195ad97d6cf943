"""Token and cost budgets per task: usage reported by AI steps, soft and hard limits (see docs/runs.md, "Budgets").

How usage is learnt (:func:`step_usage`): every step command gets ``ATLAS_USAGE_FILE``, a fresh private path, where
it may write ``{"input_tokens", "output_tokens", ...}`` (one object, or JSON lines that are summed); an AI step's
stdout is also read when it is the JSON document of a known agent CLI (Claude Code, OpenAI Codex, Gemini CLI). A
shape we do not recognise means "no usage", never an error: usage is bookkeeping, the step's work matters more.

Where it goes: the step's ``StepResult.metadata.usage`` and the task total ``metadata.usage``, both set in memory
while the step ends and written by the one checkpoint that records the step, so a step's usage counts exactly once
(a run killed before that checkpoint counts none of that attempt; the step runs again and counts its own).

Limits: ``metadata.budget = {"tokens": {"soft", "hard"}, "cost_usd": {"soft", "hard"}}`` (any subset). A soft limit
crossed is logged once (``metadata.budget_warnings``); a hard limit reached stops the run at the next step boundary
(:func:`at_boundary`, status ``interrupted``) and keeps it from starting again (:func:`gate`) until
:func:`set_budget` raises it.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atlas_tasks.errors import BudgetExceededError, InvalidValueError, TaskRunningError
from atlas_tasks.lifecycle import Stop
from atlas_tasks.models import utcnow

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.runs import LeasingStore, Run, StepContext

#: The environment variable naming the file a step command may write its usage to.
USAGE_FILE_ENV = "ATLAS_USAGE_FILE"
#: ``metadata`` keys (documented in docs/runs.md).
USAGE = "usage"
BUDGET = "budget"
WARNINGS = "budget_warnings"
CHANGES = "budget_changes"
#: The key a fork carries its source's ``usage`` under (a fork's own spend starts at zero).
INHERITED = "inherited_usage"

#: The limits, in the order they are checked and shown: ``metadata.budget`` key -> what the task total counts.
LIMITS = {"tokens": "total_tokens", "cost_usd": "cost_usd"}
_WORDS = {"tokens": "token", "cost_usd": "cost"}
_OPTIONS = {"tokens": "--tokens-hard", "cost_usd": "--cost-hard"}
_TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "total_tokens")
_USAGE_FILE_LIMIT = 1 << 20  # bytes of a usage file read at most (a runaway writer does not fill the runner's memory)


# -- reading usage ---------------------------------------------------------------------------------------------------


def _count(value: Any) -> int | None:
    """A token count: a non-negative int (bools and fractions are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _money(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0:
        return None
    return value if isinstance(value, int) else number  # a whole number stays one (token limits read as 100, not 100.0)


def normalise(raw: Any) -> dict[str, Any] | None:
    """One usage report in our shape (``input_tokens``, ``output_tokens``, ``cache_read_tokens``, ``total_tokens``,
    ``cost_usd``, ``model``), or None when it reports nothing we can use. Unknown keys are ignored."""
    if not isinstance(raw, dict):
        return None
    usage: dict[str, Any] = {}
    for key in _TOKEN_KEYS:
        count = _count(raw.get(key))
        if count is not None:
            usage[key] = count
    cost = _money(raw.get("cost_usd"))
    if cost is not None:
        usage["cost_usd"] = cost
    if not usage:
        return None
    if "total_tokens" not in usage:
        usage["total_tokens"] = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
    model = raw.get("model")
    if isinstance(model, str) and model:
        usage["model"] = model[:200]
    return usage


def add(total: dict[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    """Two usage reports summed (the model is kept when both name the same one)."""
    if not total:
        return dict(more)
    out = dict(total)
    for key in (*_TOKEN_KEYS, "cost_usd"):
        if key in more:
            out[key] = out.get(key, 0) + more[key]
    if "cost_usd" in out:
        out["cost_usd"] = round(float(out["cost_usd"]), 10)  # keep float noise out of what people read
    if out.get("model") != more.get("model"):
        out.pop("model", None)
    return out


def inherited(source: Task) -> dict[str, Any] | None:
    """What a fork of ``source`` inherits as ``metadata.inherited_usage``: the source's own spend plus what it had
    inherited itself (a fork of a fork carries the whole line's spend), or None when there was none."""
    total: dict[str, Any] | None = None
    reported = 0
    for key in (INHERITED, USAGE):
        part = source.metadata.get(key)
        if isinstance(part, dict) and part:
            total = add(total, part)
            count = part.get("steps_reported")
            reported += count if isinstance(count, int) and not isinstance(count, bool) else 0
    if total is None:
        return None
    total["steps_reported"] = reported
    return total


def read_usage_file(path: str | Path) -> tuple[dict[str, Any] | None, str]:
    """The usage a command wrote to its ``ATLAS_USAGE_FILE``: ``(usage or None, problem or "")``.

    No file, or an empty one: ``(None, "")``. A document that is not JSON (or an object we cannot read): ``(None,
    the problem)``, for a warning in the log; the step goes on either way.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(_USAGE_FILE_LIMIT + 1)
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"cannot read it ({exc.strerror or exc})"
    if len(data) > _USAGE_FILE_LIMIT:
        return None, f"it is larger than {_USAGE_FILE_LIMIT} bytes"
    text = data.decode("utf-8", "replace").strip()
    if not text:
        return None, ""
    try:
        docs = [json.loads(text)]
    except ValueError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            return None, f"it is neither a JSON object nor JSON lines ({exc})"
    total: dict[str, Any] | None = None
    for doc in docs:
        usage = normalise(doc)
        if usage is None:
            return None, "a line is not an object with input_tokens/output_tokens/total_tokens/cost_usd"
        total = add(total, usage)
    return total, ""


def _claude(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Claude Code's ``--output-format json`` result (and the last line of ``stream-json``): ``usage`` with the
    Anthropic API's four counts, plus ``total_cost_usd``. Cache reads and writes are input tokens too."""
    usage = doc.get("usage")
    cost = _money(doc.get("total_cost_usd"))
    if not isinstance(usage, dict) and cost is None:
        return None
    raw: dict[str, Any] = {}
    if isinstance(usage, dict):
        parts = [_count(usage.get(k)) for k in ("input_tokens", "cache_creation_input_tokens")]
        cached = _count(usage.get("cache_read_input_tokens"))
        output = _count(usage.get("output_tokens"))
        if any(p is not None for p in (*parts, cached)):
            raw["input_tokens"] = sum(p or 0 for p in parts) + (cached or 0)
        if cached is not None:
            raw["cache_read_tokens"] = cached
        if output is not None:
            raw["output_tokens"] = output
    if cost is not None:
        raw["cost_usd"] = cost
    model = doc.get("model")
    if isinstance(model, str):
        raw["model"] = model
    return normalise(raw)


def _codex(events: list[Any]) -> dict[str, Any] | None:
    """OpenAI Codex ``exec --json``: every ``turn.completed`` event has ``usage`` {input_tokens (cached ones
    included), cached_input_tokens, output_tokens}; a run's usage is the sum over its turns."""
    total: dict[str, Any] | None = None
    for event in events:
        if not isinstance(event, dict) or event.get("type") != "turn.completed":
            continue
        usage = event.get("usage")
        if not isinstance(usage, dict):
            continue
        one = normalise(
            {
                "input_tokens": usage.get("input_tokens"),
                "output_tokens": usage.get("output_tokens"),
                "cache_read_tokens": usage.get("cached_input_tokens"),
            }
        )
        if one is not None:
            total = add(total, one)
    return total


def _gemini(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Gemini CLI ``--output-format json``: ``stats.models.<name>.tokens`` {prompt, candidates, total, cached,
    thoughts, ...} per model; summed over the models."""
    stats = doc.get("stats")
    models = stats.get("models") if isinstance(stats, dict) else None
    if not isinstance(models, dict):
        return None
    total: dict[str, Any] | None = None
    for name, model in models.items():
        tokens = model.get("tokens") if isinstance(model, dict) else None
        if not isinstance(tokens, dict):
            continue
        prompt, candidates = _count(tokens.get("prompt")), _count(tokens.get("candidates"))
        thoughts = _count(tokens.get("thoughts")) or 0
        raw: dict[str, Any] = {"model": name, "cache_read_tokens": tokens.get("cached")}
        if prompt is not None:
            raw["input_tokens"] = prompt
        if candidates is not None:
            raw["output_tokens"] = candidates + thoughts
        raw["total_tokens"] = tokens.get("total")
        one = normalise(raw)
        if one is not None:
            total = add(total, one)
    return total


def parse_agent_output(stdout: str) -> tuple[dict[str, Any] | None, str]:
    """The usage an agent CLI printed in its JSON output mode: ``(usage, "claude"|"codex"|"gemini")``, or
    ``(None, "")`` for any output we do not recognise (plain text included)."""
    text = stdout.strip()
    if not text or text[0] not in "{[":
        return None, ""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        if whole.get("type") == "result" or "total_cost_usd" in whole:
            usage = _claude(whole)
            return (usage, "claude") if usage else (None, "")
        usage = _gemini(whole)
        return (usage, "gemini") if usage else (None, "")
    if whole is not None:
        return None, ""
    events: list[Any] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a stray non-JSON line (a warning printed by the CLI) does not hide the rest
    results = [e for e in events if isinstance(e, dict) and e.get("type") == "result"]
    if results:  # Claude Code stream-json: the final result line carries the whole call's usage and cost
        usage = _claude(results[-1])
        return (usage, "claude") if usage else (None, "")
    usage = _codex(events)
    return (usage, "codex") if usage else (None, "")


# -- recording usage -------------------------------------------------------------------------------------------------


def record(ctx: StepContext, usage: dict[str, Any] | None, source: str) -> None:
    """Add a step's usage to its StepResult (``ctx.metadata["usage"]``) and to the task total, in memory.

    Call it as the step's work ends, before it returns or raises: :meth:`~atlas_tasks.runs.Run.step` then writes
    both in the checkpoint that records the step. A soft limit crossed here is logged (once per limit value) and
    listed in ``metadata.budget_warnings`` in that same checkpoint.
    """
    if not usage:
        return
    step_usage = dict(usage, source=source)
    ctx.metadata[USAGE] = step_usage
    task = ctx.run.task
    before = task.metadata.get(USAGE)
    total = {k: v for k, v in add(before if isinstance(before, dict) else None, usage).items() if k != "model"}
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        total.setdefault(key, 0)
    total.setdefault("cost_usd", 0.0)
    previous = before.get("steps_reported", 0) if isinstance(before, dict) else 0
    total["steps_reported"] = (previous if isinstance(previous, int) else 0) + 1
    task.metadata[USAGE] = total
    _warn_soft(ctx, total)


def _warn_soft(ctx: StepContext, total: dict[str, Any]) -> None:
    task = ctx.run.task
    warnings = task.metadata.get(WARNINGS)
    if not isinstance(warnings, list):
        warnings = []
    for limit, counted in LIMITS.items():
        soft = limits(task).get(limit, {}).get("soft")
        used = total.get(counted, 0)
        if soft is None or used < soft:
            continue
        if any(isinstance(w, dict) and w.get("limit") == limit and w.get("soft") == soft for w in warnings):
            continue  # once per limit value: a raised soft limit warns again when it is crossed in turn
        warning = {"limit": limit, "soft": soft, "used": used, "step_name": ctx.step.name, "at": utcnow().isoformat()}
        ctx.log(
            "budget soft limit crossed",
            level="warn",
            limit=limit,
            soft=soft,
            used=used,
            message=f"{_WORDS[limit]} budget: used {_show(limit, used)} of soft limit {_show(limit, soft)}",
        )
        warnings.append(warning)
    if warnings:
        task.metadata[WARNINGS] = warnings


# -- limits ----------------------------------------------------------------------------------------------------------


def limits(task: Task) -> dict[str, dict[str, float]]:
    """The task's budget, the well-formed parts only (a hand-edited value that is not a number is ignored)."""
    raw = task.metadata.get(BUDGET)
    out: dict[str, dict[str, float]] = {}
    if not isinstance(raw, dict):
        return out
    for limit in LIMITS:
        part = raw.get(limit)
        if not isinstance(part, dict):
            continue
        good = {k: v for k in ("soft", "hard") if (v := _money(part.get(k))) is not None}
        if good:
            out[limit] = good
    return out


def spend(task: Task) -> dict[str, Any]:
    """The task total of ``metadata.usage`` (zeros when no step reported usage)."""
    raw = task.metadata.get(USAGE)
    usage = raw if isinstance(raw, dict) else {}
    out: dict[str, Any] = {k: _count(usage.get(k)) or 0 for k in ("input_tokens", "output_tokens", "total_tokens")}
    out["cost_usd"] = _money(usage.get("cost_usd")) or 0.0
    out["steps_reported"] = _count(usage.get("steps_reported")) or 0
    return out


def exceeded(task: Task) -> tuple[str, float, float] | None:
    """The first hard limit the task's spend has reached: ``(limit, used, hard)``, or None."""
    used = spend(task)
    for limit, counted in LIMITS.items():
        hard = limits(task).get(limit, {}).get("hard")
        if hard is not None and used[counted] >= hard:
            return limit, used[counted], hard
    return None


def _show(limit: str, value: float) -> str:
    if limit == "cost_usd":
        return f"${value:.4f}".rstrip("0").rstrip(".") if value else "$0"
    return str(int(value))


def _exceeded_reason(limit: str, used: float, hard: float) -> str:
    return f"{_WORDS[limit]} budget exceeded: used {_show(limit, used)} of hard limit {_show(limit, hard)}"


def gate(store: LeasingStore, workspace: str, task: Task, *, now: datetime | None = None) -> None:
    """Refuse to start a run while the task's spend is at or over a hard limit."""
    over = exceeded(task)
    if over is None:
        return
    limit, used, hard = over
    raise BudgetExceededError(
        workspace,
        task.id,
        str(task.status),
        limit,
        used,
        hard,
        f"{_exceeded_reason(limit, used, hard)}; raise it with `atlas-tasks budget {workspace} {task.id} "
        f"{_OPTIONS[limit]} N --reason WHY`, then run it again",
    )


def at_boundary(run: Run) -> Stop | None:
    """Stop before the next step once a hard limit is reached (usage is known only when a command ends, so a step
    that crosses the limit finishes; the run stops after it)."""
    over = exceeded(run.task)
    if over is None:
        return None
    return Stop("budget_exceeded", _exceeded_reason(*over))


# -- changing the budget ---------------------------------------------------------------------------------------------


def check_limit(what: str, value: float | None) -> None:
    """Refuse a limit that is not a positive finite number (``what`` names it, e.g. ``--tokens-hard``)."""
    if value is None:
        return
    if not math.isfinite(value) or value <= 0:
        raise InvalidValueError(what, str(value), "a limit must be a positive number")


def merge(budget: Any, **given: float | None) -> dict[str, dict[str, float]]:
    """``budget`` with the given limits (``tokens_soft=…, cost_hard=…``; None: unchanged) set.

    Raises:
        InvalidValueError: a limit that is not positive, or a soft limit above its hard limit.
    """
    out: dict[str, dict[str, float]] = {}
    if isinstance(budget, dict):
        for limit in LIMITS:
            part = budget.get(limit)
            if isinstance(part, dict):
                out[limit] = {k: v for k in ("soft", "hard") if (v := _money(part.get(k))) is not None}
    for name, value in given.items():
        limit, _, kind = name.rpartition("_")
        limit = "cost_usd" if limit == "cost" else limit
        if limit not in LIMITS or kind not in ("soft", "hard"):
            raise TypeError(f"unknown budget limit {name!r}")
        check_limit(f"--{name.replace('_', '-')}", value)
        if value is not None:
            out.setdefault(limit, {})[kind] = int(value) if limit == "tokens" else float(value)
    for limit, part in out.items():
        if "soft" in part and "hard" in part and part["soft"] > part["hard"]:
            flag = "tokens" if limit == "tokens" else "cost"
            raise InvalidValueError(
                f"--{flag}-soft",
                str(part["soft"]),
                f"the soft limit is above the hard limit {part['hard']}; give a soft limit at most the hard one",
            )
    return {k: v for k, v in out.items() if v}


def validated(budget: Any, what: str = "budget") -> dict[str, dict[str, float]]:
    """A budget document (a template's ``budget``, ``metadata.budget``) checked and normalised.

    Raises:
        InvalidValueError: not an object of ``tokens``/``cost_usd`` parts, each of ``soft``/``hard`` positive
            numbers with soft at most hard.
    """
    if not isinstance(budget, dict) or not set(budget) <= set(LIMITS):
        raise InvalidValueError(
            what,
            json.dumps(budget, default=str),
            'give an object like {"tokens": {"soft": N, "hard": N}, "cost_usd": {"soft": X, "hard": X}} (any subset)',
        )
    given: dict[str, float | None] = {}
    for limit, part in budget.items():
        if not isinstance(part, dict) or not set(part) <= {"soft", "hard"}:
            raise InvalidValueError(f"{what}.{limit}", json.dumps(part, default=str), 'give {"soft": N, "hard": N}')
        for kind, value in part.items():
            if _money(value) is None:
                raise InvalidValueError(f"{what}.{limit}.{kind}", str(value), "a limit must be a positive number")
            given[f"{'cost' if limit == 'cost_usd' else limit}_{kind}"] = value
    return merge({}, **given)


def set_budget(
    store: LeasingStore,
    workspace: str,
    task_id: str,
    *,
    tokens_soft: int | None = None,
    tokens_hard: int | None = None,
    cost_soft: float | None = None,
    cost_hard: float | None = None,
    reason: str = "",
) -> Task:
    """Raise (or lower) a task's budget as a recorded change: ``metadata.budget``, an entry in
    ``metadata.budget_changes`` ({at, reason, before, after}) and a log line, in one revision-checked write.

    A warning already given for a soft limit is kept; a new soft limit warns again when it is crossed.

    Raises:
        TaskRunningError: a live runner holds the task (its next checkpoint would conflict); change it after the
            run stops, e.g. when the hard limit stopped it.
        InvalidValueError: a limit that is not positive, or soft above hard.
        TaskNotFoundError, WorkspaceNotFoundError: as ``get``.
    """
    given = {"tokens_soft": tokens_soft, "tokens_hard": tokens_hard, "cost_soft": cost_soft, "cost_hard": cost_hard}
    merge({}, **given)  # refuse bad values before touching anything
    holder = store.lease_holder(workspace, task_id)
    if holder is not None:
        raise TaskRunningError(workspace, task_id, holder)
    change: dict[str, Any] = {}

    def apply(task: Task) -> None:
        current = store.lease_holder(workspace, task_id)
        if current is not None:
            raise TaskRunningError(workspace, task_id, current)
        before = limits(task)
        after = merge(task.metadata.get(BUDGET), **given)
        entry = {"at": utcnow().isoformat(), "reason": reason, "before": before, "after": after}
        changes = task.metadata.get(CHANGES)
        task.metadata[CHANGES] = [*(changes if isinstance(changes, list) else []), entry]
        task.metadata[BUDGET] = after
        change.update(entry)

    task = store.modify(workspace, task_id, apply)
    store.append_log(
        workspace,
        task_id,
        {
            "level": "info",
            "event": "budget changed",
            "step_name": "",
            "reason": reason,
            "before": change["before"],
            "after": change["after"],
        },
    )
    return task


# -- show ------------------------------------------------------------------------------------------------------------


def _limit_text(task: Task, limit: str, counted: str) -> str:
    """``"1000 used (soft 500, hard 1000)"``: the spend against the limits that are set."""
    part = limits(task).get(limit, {})
    shown = ", ".join(f"{kind} {_show(limit, part[kind])}" for kind in ("soft", "hard") if kind in part)
    return f"{_show(limit, spend(task)[counted])} used" + (f" ({shown})" if shown else "")


def describe(task: Task) -> list[tuple[str, str]]:
    """``show``'s lines: spend, the budget against it, soft warnings and a reached hard limit."""
    lines: list[tuple[str, str]] = []
    used = spend(task)
    budget = limits(task)
    if used["steps_reported"] or budget:
        tokens = (
            f"{used['total_tokens']} tokens (in {used['input_tokens']}, out {used['output_tokens']}), "
            f"{_show('cost_usd', used['cost_usd'])}, from {used['steps_reported']} step(s)"
        )
        lines.append(("usage", tokens))
    for limit, counted in LIMITS.items():
        if limit in budget:
            lines.append((f"{_WORDS[limit]} budget", _limit_text(task, limit, counted)))
    warnings = task.metadata.get(WARNINGS)
    for warning in warnings if isinstance(warnings, list) else []:
        if isinstance(warning, dict) and warning.get("limit") in LIMITS:
            limit = warning["limit"]
            lines.append(
                (
                    "budget warning",
                    f"{_WORDS[limit]} soft limit {_show(limit, warning.get('soft') or 0)} crossed "
                    f"(used {_show(limit, warning.get('used') or 0)}, step {warning.get('step_name', '')!r})",
                )
            )
    over = exceeded(task)
    stop = task.metadata.get("stop_reason")
    stopped_for_it = isinstance(stop, dict) and stop.get("kind") == "budget_exceeded"
    if over is not None and not stopped_for_it:  # the "stopped" line says it already
        lines.append(("budget exceeded", _exceeded_reason(*over)))
    inherited = task.metadata.get(INHERITED)
    if isinstance(inherited, dict):
        lines.append(("inherited usage", f"{inherited.get('total_tokens', 0)} tokens before the fork"))
    return lines


def document(task: Task) -> dict[str, Any]:
    """``show --json``'s ``lifecycle.usage`` and ``lifecycle.budget`` (only for a task with usage or a budget)."""
    used = spend(task)
    budget = limits(task)
    if not used["steps_reported"] and not budget:
        return {}
    over = exceeded(task)
    warnings = task.metadata.get(WARNINGS)
    doc: dict[str, Any] = {
        "usage": used,
        "budget": {
            "limits": budget,
            "warnings": warnings if isinstance(warnings, list) else [],
            "exceeded": None if over is None else {"limit": over[0], "used": over[1], "hard": over[2]},
        },
    }
    return doc


__all__ = [
    "BUDGET",
    "CHANGES",
    "INHERITED",
    "LIMITS",
    "USAGE",
    "USAGE_FILE_ENV",
    "WARNINGS",
    "at_boundary",
    "describe",
    "document",
    "exceeded",
    "gate",
    "limits",
    "merge",
    "normalise",
    "parse_agent_output",
    "read_usage_file",
    "record",
    "set_budget",
    "spend",
    "validated",
]
