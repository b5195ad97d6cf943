"""MemoryStore: the Store contract in this process's memory: the reference backend, and a fast test fixture.

Nothing survives the process. It exists to show what a backend has to write (only the primitives of
:class:`~atlas_tasks.store.base.BaseStore`, about 250 lines) and to run the CLI, run and dashboard tests without a
disk or a server. It passes the same conformance suite as the file and PostgreSQL stores.

Stores opened by name (``open_store("memory://scratch")`` or :meth:`MemoryStore.named`) are shared within the
process, so a test and the code it drives see the same tasks. Run leases are held by this process: they die with it
like every other lease, and a second runner in the same process is refused.
"""

from __future__ import annotations

import builtins
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from atlas_tasks import names as N
from atlas_tasks._codec import decode_workspace, encode_task, encode_workspace
from atlas_tasks.documents.head import TaskHead
from atlas_tasks.documents.logs import encode_line, to_bytes
from atlas_tasks.errors import (
    ArtifactNotFoundError,
    AtlasTasksError,
    CollectorBusyError,
    TaskExistsError,
    TaskIdRetiredError,
    TaskNotFoundError,
    TaskRunningError,
    WorkspaceExistsError,
    WorkspaceNotFoundError,
)
from atlas_tasks.ids import IdStyle, resolve_style, timestamp_candidates, uuid_id
from atlas_tasks.models import Task, TaskRef, Workspace
from atlas_tasks.store.base import BaseStore, new_tombstone, refuse_import
from atlas_tasks.store.types import LogEntry, Tombstone, WorkspaceList
from atlas_tasks.transitions import is_terminal


@dataclass
class _Task:
    doc: bytes
    log: bytearray = field(default_factory=bytearray)
    artifacts: dict[str, bytes] = field(default_factory=dict)


@dataclass
class _Workspace:
    doc: bytes
    refs: dict[str, TaskRef] = field(default_factory=dict)
    tasks: dict[str, _Task] = field(default_factory=dict)


class _Slot:
    """A task held under the store's lock (the lock is taken by the caller)."""

    def __init__(self, item: _Task, path: str, workspace: str, task_id: str) -> None:
        self._item, self.path = item, path
        self._ws, self._id = workspace, task_id

    def read(self) -> bytes:
        return self._item.doc

    def head(self) -> TaskHead:
        return TaskHead.parse(self._item.doc, self._ws, self._id, self.path)

    def write(self, data: bytes) -> None:
        self._item.doc = bytes(data)


class _Lease:
    def __init__(self, store: MemoryStore, key: tuple[str, str]) -> None:
        self._store, self._key = store, key

    def release(self) -> None:
        with self._store._lock:
            self._store._leases.pop(self._key, None)


class _CollectorLock:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def release(self) -> None:
        with self._store._lock:
            self._store._collector = None


class MemoryStore(BaseStore):
    """Tasks, logs and artifacts in a dict of this process (see the module doc)."""

    _named: ClassVar[dict[str, MemoryStore]] = {}
    _named_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str = "", *, id_style: IdStyle = "auto") -> None:
        if id_style not in ("auto", "timestamp", "uuid"):
            raise ValueError(f"id_style must be 'auto', 'timestamp' or 'uuid', not {id_style!r}")
        self.name = name
        self.id_style = id_style
        self._lock = threading.RLock()
        self._workspaces: dict[str, _Workspace] = {}
        self._leases: dict[tuple[str, str], dict[str, Any]] = {}
        self._collector: dict[str, Any] | None = None
        self._versions: dict[tuple[str, str, str], int] = {}
        #: (workspace, id) -> the tombstone of a deleted task; kept when its workspace goes.
        self._tombstones: dict[tuple[str, str], Tombstone] = {}

    @classmethod
    def named(cls, name: str, **kwargs: Any) -> MemoryStore:
        """The store of this name in this process, made on first use (what ``memory://NAME`` opens).

        ``kwargs`` (``id_style``) apply to the store returned: a second opening with other options shares the same
        tasks, leases and locks but keeps its own options.
        """
        with cls._named_lock:
            store = cls._named.get(name)
            if store is None:
                store = cls._named[name] = cls(name, **kwargs)
                return store
        if not kwargs or all(getattr(store, key, None) == value for key, value in kwargs.items()):
            return store
        view = cls(name, **kwargs)
        view._lock, view._workspaces, view._leases, view._versions, view._tombstones = (
            store._lock,
            store._workspaces,
            store._leases,
            store._versions,
            store._tombstones,
        )
        return view

    def __repr__(self) -> str:
        return f"MemoryStore({self.name!r})" if self.name else "MemoryStore()"

    @property
    def url(self) -> str:
        """``memory://NAME``: the same store again, within this process (an unnamed store is registered on ask)."""
        if not self.name:
            with self._named_lock:
                self.name = f"store-{id(self):x}"
                self._named[self.name] = self
        return f"memory://{quote(self.name, safe='')}"

    # -- helpers ----------------------------------------------------------------------------------------------------
    def _where(self, workspace: str, task_id: str = "") -> str:
        return f"{self!r} {workspace}" + (f"/{task_id}" if task_id else "")

    def _ws(self, workspace: str) -> _Workspace:
        found = self._workspaces.get(workspace)
        if found is None:
            raise WorkspaceNotFoundError(workspace, self._where(workspace))
        return found

    def _task(self, workspace: str, task_id: str) -> _Task:
        found = self._ws(workspace).tasks.get(task_id)
        if found is None:
            raise TaskNotFoundError(workspace, task_id, self._where(workspace, task_id))
        return found

    def _workspace_of(self, name: str, entry: _Workspace) -> Workspace:
        ws = decode_workspace(entry.doc, path=self._where(name))
        ws.tasks = builtins.list(entry.refs.values())
        return ws

    # -- workspaces -------------------------------------------------------------------------------------------------
    def _insert_workspace(self, workspace: Workspace, *, exist_ok: bool) -> Workspace:
        with self._lock:
            existing = self._workspaces.get(workspace.name)
            if existing is not None:
                if exist_ok:
                    return self._workspace_of(workspace.name, existing)
                raise WorkspaceExistsError(workspace.name, self._where(workspace.name))
            self._workspaces[workspace.name] = _Workspace(encode_workspace(workspace))
            return self._workspace_of(workspace.name, self._workspaces[workspace.name])

    def _get_workspace(self, name: str) -> Workspace:
        with self._lock:
            return self._workspace_of(name, self._ws(name))

    def _list_workspaces(self) -> WorkspaceList:
        with self._lock:
            return WorkspaceList([self._workspace_of(n, self._workspaces[n]) for n in sorted(self._workspaces)])

    def _edit_workspace(self, name: str, change: Callable[[Workspace], None]) -> Workspace:
        with self._lock:
            entry = self._ws(name)
            ws = self._workspace_of(name, entry)
            change(ws)
            entry.doc = encode_workspace(ws)
            return self._workspace_of(name, entry)

    # -- tasks ------------------------------------------------------------------------------------------------------
    def _insert_task(
        self, workspace: str, task_id: str | None, build: Callable[[str], bytes]
    ) -> tuple[str, bytes, str]:
        while True:
            with self._lock:
                entry = self._ws(workspace)
                retired = {tid for ws, tid in self._tombstones if ws == workspace}
                if task_id is not None:
                    if task_id in entry.tasks:
                        raise TaskExistsError(workspace, task_id, self._where(workspace, task_id))
                    if task_id in retired:
                        stone = self._tombstones[(workspace, task_id)]
                        raise TaskIdRetiredError(workspace, task_id, stone.deleted_at, self._where(workspace, task_id))
                    chosen = task_id
                elif resolve_style(self.id_style, entry.tasks) == "uuid":
                    chosen = uuid_id()
                    if chosen in entry.tasks or chosen in retired:
                        continue
                else:
                    taken = entry.tasks.keys() | retired
                    chosen = next((c for c in timestamp_candidates(self._now()) if c not in taken), "")
                if chosen:
                    data = build(chosen)
                    entry.tasks[chosen] = _Task(data)
                    return chosen, data, self._where(workspace, chosen)
            # Over a thousand creations within one second in this workspace: wait for the next second.
            time.sleep(1.0 - (time.time() % 1.0))

    def _after_create(self, workspace: str, task: Task) -> None:
        self._set_ref(workspace, task)

    def _after_update(self, workspace: str, before: TaskHead, after: Task) -> None:
        if after.status != before.status and is_terminal(after.status):
            self._set_ref(workspace, after)

    def _set_ref(self, workspace: str, task: Task) -> None:
        ref = TaskRef(
            id=task.id,
            status=str(task.status),
            started_at=task.created_at,
            completed_at=task.completed_at if is_terminal(task.status) else None,
        )
        with self._lock:
            entry = self._workspaces.get(workspace)
            if entry is not None and task.id in entry.tasks:
                entry.refs[task.id] = ref

    def _read_task(self, workspace: str, task_id: str) -> tuple[bytes, str]:
        with self._lock:
            return self._task(workspace, task_id).doc, self._where(workspace, task_id)

    @contextlib.contextmanager
    def _locked_task(self, workspace: str, task_id: str) -> Iterator[_Slot]:
        with self._lock:
            yield _Slot(self._task(workspace, task_id), self._where(workspace, task_id), workspace, task_id)

    def _scan_tasks(self, workspace: str) -> Iterator[tuple[str, bytes, str] | AtlasTasksError]:
        with self._lock:
            items = [(tid, t.doc) for tid, t in self._ws(workspace).tasks.items()]
        for task_id, doc in items:
            yield task_id, doc, self._where(workspace, task_id)

    def _delete_task(self, workspace: str, task_id: str, info: Mapping[str, Any] | None) -> None:
        with self._lock:
            item = self._task(workspace, task_id)
            if info is not None:
                self._tombstones[(workspace, task_id)] = new_tombstone(workspace, task_id, item.doc, info)
            entry = self._ws(workspace)
            del entry.tasks[task_id]
            entry.refs.pop(task_id, None)
            for key in [k for k in self._versions if k[:2] == (workspace, task_id)]:
                del self._versions[key]

    def _get_tombstone(self, workspace: str, task_id: str) -> Tombstone | None:
        with self._lock:
            return self._tombstones.get((workspace, task_id))

    def _list_tombstones(self, workspace: str) -> builtins.list[Tombstone]:
        with self._lock:
            return [stone for (ws, _), stone in self._tombstones.items() if ws == workspace]

    # -- logs -------------------------------------------------------------------------------------------------------
    def _append_log_line(self, workspace: str, task_id: str, line: bytes) -> None:
        with self._lock:
            self._task(workspace, task_id).log += line

    def _read_log(self, workspace: str, task_id: str) -> tuple[bytes, str]:
        with self._lock:
            return bytes(self._task(workspace, task_id).log), self._where(workspace, task_id) + " log"

    # -- artifacts --------------------------------------------------------------------------------------------------
    def _put_artifact(self, workspace: str, task_id: str, parts: builtins.list[str], data: bytes) -> None:
        with self._lock:
            self._task(workspace, task_id).artifacts["/".join(parts)] = data

    def _put_versioned_artifact(self, workspace: str, task_id: str, parts: builtins.list[str], data: bytes) -> str:
        with self._lock:
            item = self._task(workspace, task_id)
            prefix, leaf = parts[:-1], parts[-1]
            key = (workspace, task_id, "/".join(parts))
            folder = "/".join(prefix)
            taken = [
                N.version_of(name.rpartition("/")[2], leaf)
                for name in item.artifacts
                if name.rpartition("/")[0] == folder
            ]
            version = max([self._versions.get(key, 0), *(v for v in taken if v is not None)]) + 1
            name = "/".join([*prefix, N.versioned_name(leaf, version)])
            item.artifacts[name] = data
            self._versions[key] = version
            return name

    def _get_artifact(self, workspace: str, task_id: str, parts: builtins.list[str]) -> bytes:
        name = "/".join(parts)
        with self._lock:
            found = self._task(workspace, task_id).artifacts.get(name)
        if found is None:
            raise ArtifactNotFoundError(workspace, task_id, name, self._where(workspace, task_id) + f" artifact {name}")
        return found

    def _artifact_names(self, workspace: str, task_id: str) -> builtins.list[str]:
        with self._lock:
            return builtins.list(self._task(workspace, task_id).artifacts)

    def artifact_sizes(self, workspace: str, task_id: str) -> dict[str, int]:
        """Each artifact's size (no copy is made)."""
        names = self.list_artifacts(workspace, task_id)
        with self._lock:
            artifacts = self._task(workspace, task_id).artifacts
            return {name: len(artifacts[name]) for name in names if name in artifacts}

    # -- compaction (primitives) ------------------------------------------------------------------------------------
    def _delete_artifact(self, workspace: str, task_id: str, parts: builtins.list[str]) -> None:
        name = "/".join(parts)
        with self._lock:
            if self._task(workspace, task_id).artifacts.pop(name, None) is None:
                where = self._where(workspace, task_id) + f" artifact {name}"
                raise ArtifactNotFoundError(workspace, task_id, name, where)

    def _drop_log_head(self, workspace: str, task_id: str, head: bytes) -> bool:
        with self._lock:  # the lock append_log takes
            item = self._task(workspace, task_id)
            if not bytes(item.log).startswith(head):
                return False
            item.log = item.log[len(head) :]
            return True

    # -- run leases (RunLeases) -------------------------------------------------------------------------------------
    def acquire_lease(self, workspace: str, task_id: str, holder: Mapping[str, Any]) -> _Lease:
        """Take the task's run lease in this process. Raises TaskRunningError if it is held."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._lock:
            self._task(workspace, task_id)  # no lease of a task that does not exist
            held = self._leases.get((workspace, task_id))
            if held is not None:
                raise TaskRunningError(workspace, task_id, held)
            self._leases[(workspace, task_id)] = dict(holder)
        return _Lease(self, (workspace, task_id))

    def lease_holder(self, workspace: str, task_id: str) -> dict[str, Any] | None:
        """Who holds the task's run lease, or None."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._lock:
            held = self._leases.get((workspace, task_id))
            return dict(held) if held is not None else None

    def lease_candidates(self, workspace: str) -> builtins.set[str] | None:
        """The ids whose lease is held now."""
        with self._lock:
            return {tid for ws, tid in self._leases if ws == workspace}

    def collector_lock(self, holder: Mapping[str, Any]) -> _CollectorLock:
        """Take this store's collector lock (one gc at a time). Raises CollectorBusyError if it is held."""
        with self._lock:
            if self._collector is not None:
                raise CollectorBusyError(self.url, dict(self._collector))
            self._collector = dict(holder)
        return _CollectorLock(self)

    # -- imports (Importable) ---------------------------------------------------------------------------------------
    def import_workspace(self, workspace: Workspace, *, replace: bool = False) -> bool:
        """Store a workspace as given (refs kept); True if it was not there before."""
        N.check_workspace_name(workspace.name)
        with self._lock:
            existing = self._workspaces.get(workspace.name)
            if existing is not None and not replace:
                return False
            entry = _Workspace(encode_workspace(workspace.model_copy(update={"tasks": []})))
            entry.refs = {ref.id: ref for ref in workspace.tasks}
            if existing is not None:
                entry.tasks = existing.tasks
            self._workspaces[workspace.name] = entry
            return existing is None

    def import_tombstone(self, tombstone: Tombstone) -> bool:
        """Record a tombstone as given (Importable); False if the id already has one."""
        N.check_workspace_name(tombstone.workspace)
        N.check_task_id(tombstone.id)
        key = (tombstone.workspace, tombstone.id)
        with self._lock:
            if key in self._tombstones:
                return False
            entry = self._workspaces.get(tombstone.workspace)
            if entry is not None and tombstone.id in entry.tasks:
                raise TaskExistsError(tombstone.workspace, tombstone.id, self._where(*key))
            self._tombstones[key] = Tombstone(*key, tombstone.deleted_at, tombstone.created_at, dict(tombstone.info))
            return True

    def import_task(
        self,
        workspace: str,
        task: Task,
        *,
        log_lines: Iterable[LogEntry] = (),
        artifacts: Mapping[str, bytes | str] | None = None,
        ref: TaskRef | None = None,
        replace: bool = False,
    ) -> Task:
        """Store a task exactly as given, with its log and artifacts, all at once."""
        N.check_workspace_name(workspace)
        task_id = N.check_task_id(task.id)
        log = bytearray()
        for line in log_lines:
            log += encode_line(workspace, task_id, line, fill_defaults=False)
        files = {"/".join(N.artifact_parts(name)): to_bytes(data) for name, data in (artifacts or {}).items()}
        data = encode_task(task)
        with self._lock:
            entry = self._ws(workspace)
            if task_id in entry.tasks and not replace:
                raise TaskExistsError(workspace, task_id, self._where(workspace, task_id))
            if task_id not in entry.tasks and refuse_import(
                self._tombstones.get((workspace, task_id)), task, self._where(workspace, task_id)
            ):
                del self._tombstones[(workspace, task_id)]  # the deleted task itself, restored
            entry.tasks[task_id] = _Task(data, log, files)
            if ref is not None:
                entry.refs[task_id] = ref
            else:
                entry.refs.pop(task_id, None)
                self._set_ref(workspace, task)
        return self.get(workspace, task_id)


__all__ = ["MemoryStore"]
