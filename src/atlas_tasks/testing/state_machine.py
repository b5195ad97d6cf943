"""A Hypothesis state machine that drives a Store and a plain in-memory model side by side.

After every step the store must agree with the model: the same task ids, descriptions, statuses and revisions,
the same log lines, the same artifact names and bytes. Conflicts are exercised too: an update from a stale copy
must raise ConflictError in the store exactly when the model says the copy is stale.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from atlas_tasks.errors import ConflictError
from atlas_tasks.models import Task, TaskStatus
from atlas_tasks.store import Store
from atlas_tasks.transitions import allowed_from

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@dataclass
class _ModelTask:
    description: str
    status: str
    revision: int = 1
    log: list[str] = field(default_factory=list)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)


def make_state_machine(store_factory: Callable[[], Store]) -> type[RuleBasedStateMachine]:
    """Build the state machine class for a backend; run it with ``run_state_machine_as_test``."""

    class StoreMachine(RuleBasedStateMachine):
        tasks = Bundle("tasks")

        def __init__(self) -> None:
            super().__init__()
            self.store = store_factory()
            self.ws = f"ws-{secrets.token_hex(4)}"
            self.store.create_workspace(self.ws)
            self.model: dict[str, _ModelTask] = {}
            self.stale: dict[str, Task] = {}

        @rule(target=tasks, description=_text)
        def create(self, description: str) -> str:
            created = self.store.create(self.ws, Task(description=description, status=TaskStatus.RUNNING))
            assert created.id not in self.model
            self.model[created.id] = _ModelTask(description=description, status="running")
            self.stale[created.id] = created
            return created.id

        @rule(task_id=tasks, description=_text)
        def update_description(self, task_id: str, description: str) -> None:
            if task_id not in self.model:
                return
            task = self.store.get(self.ws, task_id)
            task.description = description
            stored = self.store.update(self.ws, task)
            entry = self.model[task_id]
            entry.description, entry.revision = description, entry.revision + 1
            assert stored.revision == entry.revision

        @rule(task_id=tasks, data=st.data())
        def transition(self, task_id: str, data: st.DataObject) -> None:
            if task_id not in self.model:
                return
            task = self.store.get(self.ws, task_id)
            options = allowed_from(task.status)
            if not options:
                return
            target = data.draw(st.sampled_from(options))
            task.transition(target, "state machine")
            self.store.update(self.ws, task)
            entry = self.model[task_id]
            entry.status, entry.revision = str(target), entry.revision + 1

        @rule(task_id=tasks)
        def stale_update(self, task_id: str) -> None:
            if task_id not in self.model:
                return
            old = self.stale[task_id]
            old.description = "from a stale copy"
            fresh = old.revision == self.model[task_id].revision
            try:
                stored = self.store.update(self.ws, old)
            except ConflictError:
                assert not fresh
                return
            assert fresh
            entry = self.model[task_id]
            entry.description, entry.revision = old.description, entry.revision + 1
            self.stale[task_id] = stored

        @rule(task_id=tasks, event=_text)
        def append_log(self, task_id: str, event: str) -> None:
            if task_id not in self.model:
                return
            self.store.append_log(self.ws, task_id, {"event": event})
            self.model[task_id].log.append(event)

        @rule(task_id=tasks, base=st.sampled_from(["validation.json", "notes", "sdd/spec.md"]), data=st.binary())
        def save_version(self, task_id: str, base: str, data: bytes) -> None:
            if task_id not in self.model:
                return
            name = self.store.save_versioned_artifact(self.ws, task_id, base, data)
            entry = self.model[task_id]
            entry.versions[base] = entry.versions.get(base, 0) + 1
            assert name.endswith(f".{entry.versions[base]}" + (base[base.rfind(".") :] if "." in base else ""))
            entry.artifacts[name] = data

        @rule(task_id=tasks, name=st.sampled_from(["commit-message.md", "pr/description.md"]), data=st.binary())
        def save_plain(self, task_id: str, name: str, data: bytes) -> None:
            if task_id not in self.model:
                return
            self.store.save_artifact(self.ws, task_id, name, data)
            self.model[task_id].artifacts[name] = data

        @rule(task_id=consumes(tasks))
        def delete(self, task_id: str) -> None:
            if task_id not in self.model:
                return
            self.store.delete(self.ws, task_id)
            del self.model[task_id]

        @invariant()
        def agrees_with_model(self) -> None:
            listed = self.store.list(self.ws, strict=True)
            assert sorted(t.id for t in listed) == sorted(self.model)
            for task in listed:
                entry = self.model[task.id]
                assert (task.description, str(task.status), task.revision) == (
                    entry.description,
                    entry.status,
                    entry.revision,
                )
                assert [line["event"] for line in self.store.read_log(self.ws, task.id)] == entry.log
                assert sorted(self.store.list_artifacts(self.ws, task.id)) == sorted(entry.artifacts)
                for name, data in entry.artifacts.items():
                    assert self.store.get_artifact(self.ws, task.id, name) == data

    return StoreMachine
