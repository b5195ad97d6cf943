"""Retry policies per step: attempts, backoff, jitter, and which failures retry (see docs/runs.md, "Retries").

Where a step's policy comes from: the step's own ``retry`` object (a template key Go ignores; pydantic keeps it in
``step.model_extra``), else the task default ``metadata.retry_policy`` (set by ``new`` from the template's
top-level ``retry`` or ``--retries``/``--retry-delay``), else no retry (one attempt, as before).

Steps with external side effects (git steps, and the Go engine's non-idempotent steps ``implement``, ``commit``,
``pr``) retry only when their *own* policy says ``side_effects: true``: a task default never retries them.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from atlas_tasks.errors import GuardValueError

if TYPE_CHECKING:
    from atlas_tasks.models import Step, Task

#: ``metadata`` key: the task's default retry policy (a dict of :class:`RetryPolicy` fields).
TASK_POLICY = "retry_policy"
#: The Go engine's steps that are not safe to repeat (their side effects leave the machine).
NON_IDEMPOTENT = frozenset({"implement", "commit", "pr"})
#: Failure kinds a policy can name in ``retry_on``.
KINDS = ("failed", "timeout")

_RETRY_AFTER = re.compile(r"^\s*Retry-After:\s*(\d+(?:\.\d+)?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing step runs again, and how long it waits before each retry.

    The n-th retry (n = 1, 2, ...) waits ``min(max_delay, initial * factor**(n-1))``, then jitter spreads it by up
    to ``jitter`` (a fraction) either way, never below 0 nor above ``max_delay``.
    """

    max_attempts: int = 1
    initial: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1
    retry_on: tuple[str, ...] = ("failed", "timeout")
    exit_codes: tuple[int, ...] | None = None
    side_effects: bool = False
    #: Where the policy came from (``step`` or ``task``): only a step's own policy may retry side effects.
    source: str = field(default="step", compare=False)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> GuardValueError:
            return GuardValueError(f"retry.{name}", getattr(self, name), why)

        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise bad("max_attempts", "must be a whole number >= 1 (1: no retry)")
        for name in ("initial", "factor", "max_delay", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise bad(name, "must be a finite number >= 0")
        if self.factor < 1:
            raise bad("factor", "must be >= 1 (delays never shrink)")
        if self.jitter > 1:
            raise bad("jitter", "is a fraction of the delay: between 0 and 1")
        if not self.retry_on or any(kind not in KINDS for kind in self.retry_on):
            raise bad("retry_on", f"must list some of {', '.join(KINDS)}")
        if self.exit_codes is not None and any(isinstance(c, bool) or not isinstance(c, int) for c in self.exit_codes):
            raise bad("exit_codes", "must be a list of whole numbers")

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "step") -> RetryPolicy:
        """A policy from a template/task ``retry`` object (unknown keys are errors, so typos do not pass)."""
        if not isinstance(doc, dict):
            raise GuardValueError("retry", doc, 'must be an object such as {"max_attempts": 3, "initial": 5}')
        known = {f for f in cls.__dataclass_fields__ if f != "source"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise GuardValueError(
                "retry", doc, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        args = dict(doc)
        for key in ("retry_on", "exit_codes"):
            if key in args and args[key] is not None:
                if not isinstance(args[key], list | tuple):
                    raise GuardValueError(f"retry.{key}", args[key], "must be a list")
                args[key] = tuple(args[key])
        return cls(**args, source=source)

    def to_dict(self) -> dict[str, Any]:
        """The policy as stored in ``metadata.retry_policy`` (without its source)."""
        doc = asdict(self)
        doc.pop("source")
        doc["retry_on"] = list(self.retry_on)
        doc["exit_codes"] = None if self.exit_codes is None else list(self.exit_codes)
        return doc


def delays(policy: RetryPolicy, rng: random.Random | None = None) -> list[float]:
    """The wait before each retry (``max_attempts - 1`` of them); jitter drawn from ``rng`` (none: no jitter)."""
    out: list[float] = []
    for n in range(policy.max_attempts - 1):
        base = min(policy.max_delay, policy.initial * policy.factor**n)
        if rng is not None and policy.jitter:
            base *= 1 + policy.jitter * (2 * rng.random() - 1)
        out.append(round(min(policy.max_delay, max(0.0, base)), 3))
    return out


def has_side_effects(step: Step) -> bool:
    """A git step, or one of the Go engine's non-idempotent steps."""
    return str(step.type) == "git" or step.name in NON_IDEMPOTENT


def policy_for(task: Task, step: Step) -> RetryPolicy | None:
    """The policy in effect for ``step`` (None: it runs once). Side-effect steps only by their own policy."""
    own = (step.model_extra or {}).get("retry")
    if own is not None:
        policy = RetryPolicy.from_dict(own, source="step")
        if has_side_effects(step) and not policy.side_effects:
            return None
        return policy
    default = task.metadata.get(TASK_POLICY)
    if default is None or has_side_effects(step):
        return None
    return RetryPolicy.from_dict(default, source="task")


def classify(entry: dict[str, Any] | None, message: str) -> tuple[str, int | None, float | None]:
    """``(kind, exit_code, retry_after)`` of a failed attempt, from its last command's artifact entry (if any).

    ``timeout`` when the command's error says it timed out; a ``Retry-After: N`` line in its output (or a
    ``retry_after`` field of the entry) gives the least wait the service asked for.
    """
    entry = entry or {}
    error = str(entry.get("error") or "")
    kind = "timeout" if "timed out after" in (error or message) else "failed"
    code = entry.get("exit_code")
    exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    retry_after: float | None = None
    raw = entry.get("retry_after")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        retry_after = float(raw)
    else:
        text = "\n".join(str(entry.get(k) or "") for k in ("stdout", "stderr")) + "\n" + message
        found = _RETRY_AFTER.findall(text)
        if found:
            retry_after = float(found[-1])
    return kind, exit_code, retry_after


def next_delay(
    policy: RetryPolicy | None,
    attempt: int,
    kind: str,
    exit_code: int | None,
    retry_after: float | None,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before the next attempt, or None when this failure ends the step (``attempt`` just failed).

    ``Retry-After`` raises the delay to what the service asked for, still capped by ``max_delay`` (a service that
    asks for more than the policy allows gets the cap: the policy's owner decides how long a run may wait).
    """
    if policy is None or attempt >= policy.max_attempts or kind not in policy.retry_on:
        return None
    if policy.exit_codes is not None and kind == "failed" and exit_code not in policy.exit_codes:
        return None
    base = min(policy.max_delay, policy.initial * policy.factor ** max(0, attempt - 1))
    if policy.jitter:
        base *= 1 + policy.jitter * (2 * rng.random() - 1)
    if retry_after is not None:
        base = max(base, retry_after)
    return round(min(policy.max_delay, max(0.0, base)), 3)


def describe(task: Task) -> list[tuple[str, str]]:
    """The policy in effect for the current step, and the attempts it has left."""
    doc = document(task).get("retry")
    if not doc:
        return []
    left = doc["attempts_left"]
    return [("retry", f"step {doc['step']!r}: {doc['max_attempts']} attempt(s) ({doc['source']} policy), {left} left")]


def document(task: Task) -> dict[str, Any]:
    """``{"retry": {step, source, max_attempts, attempts, attempts_left, policy}}`` for the current step."""
    if task.current_step >= len(task.steps):
        return {}
    step = task.steps[task.current_step]
    try:
        policy = policy_for(task, step)
    except GuardValueError:
        return {}
    if policy is None:
        return {}
    return {
        "retry": {
            "step": step.name,
            "source": policy.source,
            "max_attempts": policy.max_attempts,
            "attempts": step.attempts,
            "attempts_left": max(0, policy.max_attempts - step.attempts),
            "policy": policy.to_dict(),
        }
    }


__all__ = [
    "NON_IDEMPOTENT",
    "TASK_POLICY",
    "RetryPolicy",
    "classify",
    "delays",
    "has_side_effects",
    "next_delay",
    "policy_for",
]
