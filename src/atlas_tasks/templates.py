"""Task templates: the built-in step lists of the Go ATLAS, and user templates under ``<home>/templates/``.

A user template is a JSON file ``<home>/templates/<name>.json``::

    {"description": "lint and test", "validation_commands": ["make lint", "make test"],
     "steps": [{"name": "build", "type": "validation", "commands": ["make build"], "timeout_seconds": 600},
               {"name": "review", "type": "human", "prompt": "Look at the build"}]}

Step fields are those of :class:`atlas_tasks.models.Step` (plus ``"shell": true`` to run commands through
``/bin/sh``). A user template with the name of a built-in one replaces it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.models import Step, Task, TaskConfig
from atlas_tasks.names import check_workspace_name

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


class TemplateError(AtlasTasksError, LookupError):
    """A template that does not exist or cannot be read."""

    name: str
    reason: str

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"template {name!r}: {reason}", name=name, reason=reason)


@dataclass
class Template:
    """A named list of steps (plus default validation commands) that new tasks are made from."""

    name: str
    description: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    validation_commands: list[str] = field(default_factory=list)
    source: str = "built-in"

    def new_task(
        self, description: str, *, validation_commands: list[str] | None = None, config: TaskConfig | None = None
    ) -> Task:
        """A new pending task from this template (not stored yet)."""
        cfg = config.model_copy() if config else TaskConfig()
        commands = validation_commands if validation_commands is not None else self.validation_commands
        if commands:
            cfg.validation_commands = list(commands)
        return Task(
            description=description,
            template=self.name,
            config=cfg,
            steps=[Step.model_validate(dict(s)) for s in self.steps],
        )


def _user_dir(home: Path) -> Path:
    return home / "templates"


def load_template(home: Path, name: str) -> Template:
    """The user template ``<home>/templates/<name>.json`` if present, else the built-in one.

    Raises:
        TemplateError: unknown name, or an unreadable user template.
    """
    check_workspace_name(name)  # the same plain-name rule: a template name is a file name
    path = _user_dir(home) / f"{name}.json"
    if path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            steps = doc["steps"]
            for step in steps:
                Step.model_validate(step)
        except (ValueError, KeyError, TypeError) as exc:
            raise TemplateError(name, f"{path} is not a valid template ({exc})") from None
        except RecursionError:
            # json.loads gives up on deep nesting with RecursionError, not ValueError: still just an invalid file.
            raise TemplateError(name, f"{path} is not a valid template (JSON nested too deeply)") from None
        return Template(name, doc.get("description", ""), steps, list(doc.get("validation_commands", [])), str(path))
    if name in BUILTIN:
        spec = BUILTIN[name]
        return Template(name, spec["description"], [dict(s) for s in spec["steps"]])
    known = ", ".join(sorted({*BUILTIN, *(p.stem for p in _user_dir(home).glob("*.json"))}))
    raise TemplateError(name, f"no such template (known: {known}); add one as {path}")


def list_templates(home: Path) -> list[Template]:
    """Every template available under ``home``: built-ins, replaced or joined by user templates."""
    names = {*BUILTIN, *(p.stem for p in _user_dir(home).glob("*.json"))}
    return [load_template(home, n) for n in sorted(names)]
