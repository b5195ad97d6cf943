"""Task templates: the built-in step lists of the Go ATLAS, and user templates under ``<home>/templates/``.

A user template is a JSON file ``<home>/templates/<name>.json``::

    {"description": "lint and test", "validation_commands": ["make lint", "make test"],
     "steps": [{"name": "build", "type": "validation", "commands": ["make build"], "timeout_seconds": 600},
               {"name": "review", "type": "human", "prompt": "Look at the build"}]}

Step fields are those of :class:`atlas_tasks.models.Step` (plus ``"shell": true`` to run commands through
``/bin/sh``). A user template with the name of a built-in one replaces it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas_tasks.errors import GuardValueError, TemplateError
from atlas_tasks.models import Step, Task, TaskConfig
from atlas_tasks.names import check_template_name

_GIT_COMMIT = {
    "name": "git_commit",
    "type": "git",
    "description": "Commit the changes",
    "timeout_seconds": 60,
    "shell": True,
    "commands": ['git add -A && git commit -m "$ATLAS_TASK_DESCRIPTION"'],
}
_GIT_PUSH = {
    "name": "git_push",
    "type": "git",
    "description": "Push the branch",
    "timeout_seconds": 120,
    "commands": ["git push -u origin HEAD"],
}
_GIT_PR = {
    "name": "git_pr",
    "type": "git",
    "description": "Open a pull request",
    "timeout_seconds": 120,
    "commands": ["gh pr create --fill"],
}
_CI_WAIT = {
    "name": "ci_wait",
    "type": "ci",
    "description": "Wait for CI",
    "timeout_seconds": 1800,
    "commands": ["gh pr checks --watch"],
}
_VALIDATE = {
    "name": "validate",
    "type": "validation",
    "description": "Run format, lint and test commands",
    "timeout_seconds": 600,
}

BUILTIN: dict[str, dict[str, Any]] = {
    "bugfix": {
        "description": "Fix a reported bug: analysis, implementation, validation, PR, CI, review",
        "steps": [
            {
                "name": "analyze",
                "type": "ai",
                "description": "Analyze the bug report and find the root cause",
                "timeout_seconds": 900,
            },
            {"name": "implement", "type": "ai", "description": "Implement the fix", "timeout_seconds": 1800},
            _VALIDATE,
            _GIT_COMMIT,
            _GIT_PUSH,
            _GIT_PR,
            _CI_WAIT,
            {
                "name": "review",
                "type": "human",
                "description": "Human review of the fix",
                "prompt": "Review the fix and approve or reject",
            },
        ],
    },
    "feature": {
        "description": "Develop a feature with spec-driven development",
        "steps": [
            {"name": "specify", "type": "sdd", "description": "Write the specification", "timeout_seconds": 1200},
            {
                "name": "review_spec",
                "type": "human",
                "description": "Review the specification",
                "prompt": "Review the specification and approve or request changes",
            },
            {"name": "plan", "type": "sdd", "description": "Write the implementation plan", "timeout_seconds": 900},
            {"name": "tasks", "type": "sdd", "description": "Break the plan into tasks", "timeout_seconds": 900},
            {"name": "implement", "type": "sdd", "description": "Implement the feature", "timeout_seconds": 2700},
            {
                "name": "verify",
                "type": "verify",
                "description": "AI verification of the implementation",
                "timeout_seconds": 600,
            },
            _VALIDATE,
            {
                "name": "checklist",
                "type": "sdd",
                "description": "Check the implementation against the checklist",
                "timeout_seconds": 600,
            },
            _GIT_COMMIT,
            _GIT_PUSH,
            _GIT_PR,
            _CI_WAIT,
            {
                "name": "review",
                "type": "human",
                "description": "Human review of the feature",
                "prompt": "Review the feature and approve or reject",
            },
        ],
    },
    "commit": {
        "description": "Analyze the working tree and commit it",
        "steps": [
            {
                "name": "analyze_changes",
                "type": "ai",
                "description": "Analyze the changes, spot garbage files",
                "timeout_seconds": 300,
            },
            {**_GIT_COMMIT, "name": "smart_commit"},
            _GIT_PUSH,
        ],
    },
}


@dataclass
class Template:
    """A named list of steps (plus default validation commands) that new tasks are made from."""

    name: str
    description: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    validation_commands: list[str] = field(default_factory=list)
    source: str = "built-in"
    #: The task default retry policy (``metadata.retry_policy``); see :mod:`atlas_tasks.lifecycle.retries`.
    retry: dict[str, Any] | None = None
    #: Seconds from the first run's start to the run's deadline (``metadata.deadline_seconds`` until then).
    deadline_seconds: float | None = None
    #: Crash resumes in a row without progress before runs are refused (``metadata.recovery.limit``).
    crash_limit: int | None = None
    #: The ``budget`` of the tasks made from it (``metadata.budget``; see docs/runs.md, "Budgets and usage").
    budget: dict[str, Any] | None = None

    def new_task(
        self, description: str, *, validation_commands: list[str] | None = None, config: TaskConfig | None = None
    ) -> Task:
        """A new pending task from this template (not stored yet)."""
        cfg = config.model_copy() if config else TaskConfig()
        commands = validation_commands if validation_commands is not None else self.validation_commands
        if commands:
            cfg.validation_commands = list(commands)
        metadata: dict[str, Any] = {}
        if self.retry is not None:
            metadata["retry_policy"] = dict(self.retry)
        if self.deadline_seconds is not None:
            metadata["deadline_seconds"] = self.deadline_seconds
        if self.crash_limit is not None:
            metadata["recovery"] = {"crash_resumes": 0, "limit": self.crash_limit}
        if self.budget:
            metadata["budget"] = copy.deepcopy(self.budget)
        return Task(
            description=description,
            template=self.name,
            config=cfg,
            steps=[Step.model_validate(dict(s)) for s in self.steps],
            metadata=metadata,
        )


def _budget(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The template's ``budget``, checked (an InvalidValueError is a ValueError: the template is invalid)."""
    if "budget" not in doc:
        return None
    from atlas_tasks.lifecycle.budgets import validated

    return validated(doc["budget"])


def check_guards(doc: dict[str, Any]) -> None:
    """Validate a template's retry, deadline and crash-limit keys (GuardValueError says which and why)."""
    from atlas_tasks.lifecycle.recovery import check_limit
    from atlas_tasks.lifecycle.retries import RetryPolicy

    if doc.get("retry") is not None:
        RetryPolicy.from_dict(doc["retry"], source="task")
    for step in doc.get("steps") or []:
        if isinstance(step, dict) and step.get("retry") is not None:
            RetryPolicy.from_dict(step["retry"])
    seconds = doc.get("deadline_seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0):
        raise GuardValueError("deadline_seconds", seconds, "must be a number of seconds > 0")
    if doc.get("crash_limit") is not None:
        check_limit(doc["crash_limit"])


def _user_dir(home: Path) -> Path:
    return home / "templates"


def load_template(home: Path, name: str) -> Template:
    """The user template ``<home>/templates/<name>.json`` if present, else the built-in one.

    Raises:
        TemplateError: unknown name, or an unreadable user template.
    """
    check_template_name(name)  # the plain-name rule of workspaces: a template name is a file name
    path = _user_dir(home) / f"{name}.json"
    if path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            steps = doc["steps"]
            for step in steps:
                Step.model_validate(step)
            check_guards(doc)
            budget = _budget(doc)
        except GuardValueError as exc:
            raise TemplateError(name, f"{path}: {exc.message}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise TemplateError(name, f"{path} is not a valid template ({exc})") from None
        except RecursionError:
            # json.loads gives up on deep nesting with RecursionError, not ValueError: still just an invalid file.
            raise TemplateError(name, f"{path} is not a valid template (JSON nested too deeply)") from None
        return Template(
            name,
            doc.get("description", ""),
            steps,
            list(doc.get("validation_commands", [])),
            str(path),
            retry=doc.get("retry"),
            deadline_seconds=doc.get("deadline_seconds"),
            crash_limit=doc.get("crash_limit"),
            budget=budget,
        )
    if name in BUILTIN:
        spec = BUILTIN[name]
        return Template(name, spec["description"], [dict(s) for s in spec["steps"]])
    known = ", ".join(sorted({*BUILTIN, *(p.stem for p in _user_dir(home).glob("*.json"))}))
    raise TemplateError(name, f"no such template (known: {known}); add one as {path}")


def template_names(home: Path) -> list[str]:
    """The names of every template available under ``home`` (built-in and user ones), sorted."""
    return sorted({*BUILTIN, *(p.stem for p in _user_dir(home).glob("*.json"))})


def list_templates(home: Path) -> list[Template]:
    """Every template available under ``home``: built-ins, replaced or joined by user templates."""
    return [load_template(home, n) for n in template_names(home)]


# -- What a template's steps will do (for `atlas-tasks templates`) ---------------------------------------------------


@dataclass(frozen=True)
class StepPlan:
    """What running one step from the CLI will do, decided as :func:`atlas_tasks.executors.execute` decides it.

    Attributes:
        action: ``"commands"`` (the step's own commands), ``"validation_commands"`` (a validation step without
            commands: the task's validation commands, from ``new --validate`` or the template's
            ``validation_commands``), ``"ai"`` (the configured AI command, prompt on stdin), ``"human"`` (the run
            stops at awaiting_approval) or ``"nothing"`` (the step has nothing to run and will fail).
        commands: The exact commands run, in order (for ``"validation_commands"``: the template's defaults, which
            ``new --validate`` replaces).
        shell: Whether the commands run through ``/bin/sh`` (else they are split like a shell would, and run
            without one).
        prompt: For an AI step, the text piped into the AI command (``<the task's description>`` stands for the
            task's own); for a human step, what the person is asked.
    """

    action: str
    commands: list[str]
    shell: bool
    prompt: str


TASK_DESCRIPTION_PLACEHOLDER = "<the task's description>"


def plan_step(step: dict[str, Any], validation_commands: list[str]) -> StepPlan:
    """What the step ``step`` (a template's step document) will do when a task made from the template runs.

    Args:
        step: One entry of :attr:`Template.steps`.
        validation_commands: The template's default validation commands.
    """
    from atlas_tasks.executors import AI_TYPES, COMMAND_TYPES

    kind = str(step.get("type", ""))
    shell = bool(step.get("shell", False))
    own = [str(c) for c in step.get("commands") or []]
    description = str(step.get("description", ""))
    if kind == "human":
        return StepPlan("human", [], False, str(step.get("prompt") or description or "waiting for approval"))
    if kind in COMMAND_TYPES and own:
        return StepPlan("commands", own, shell, "")
    if kind == "validation":
        return StepPlan("validation_commands", list(validation_commands), shell, "")
    if kind in AI_TYPES:
        prompt = str(step.get("prompt") or f"{description}\n\nTask: {TASK_DESCRIPTION_PLACEHOLDER}\n")
        return StepPlan("ai", [], False, prompt)
    return StepPlan("nothing", [], shell, "")


def programs(commands: list[str], *, shell: bool) -> list[str]:
    """The programs ``commands`` start (``git``, ``gh`` …), in order of first appearance.

    For shell commands every part of a ``&&``/``||``/``;``/``|`` chain counts; this is for showing people what a
    template runs, not a shell parser.
    """
    import re
    import shlex

    found: list[str] = []
    for command in commands:
        parts = re.split(r"&&|\|\||[;|]", command) if shell else [command]
        for part in parts:
            try:
                words = shlex.split(part)
            except ValueError:
                words = part.split()
            if words and words[0] not in found:
                found.append(words[0])
    return found
