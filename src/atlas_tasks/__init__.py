"""atlas-tasks: durable, crash-safe state for long-running multi-step tasks.

    from atlas_tasks import FileStore, Task

Names are loaded lazily (PEP 562), so ``import atlas_tasks`` — and the CLI's start-up — stays fast: pydantic and
the store are imported on first use.
"""

from __future__ import annotations

# Neither importlib nor typing at import time: `atlas-tasks list` and `--version` start with this module, and typing
# alone is ~4 ms of a ~30 ms cold start (see atlas_tasks.cli._fast). TYPE_CHECKING spelled as typing defines it.
TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "FileStore": "atlas_tasks.backends.file",
    "MemoryStore": "atlas_tasks.backends.memory",
    "BaseStore": "atlas_tasks.store.base",
    "open_store": "atlas_tasks.store.urls",
    "LogEntry": "atlas_tasks.store",
    "LogTail": "atlas_tasks.store",
    "TaskSummary": "atlas_tasks.store",
    "SummaryList": "atlas_tasks.store",
    "CheckReport": "atlas_tasks.store",
    "RunLeases": "atlas_tasks.store",
    "ChangeStamps": "atlas_tasks.store",
    "CollectorLocks": "atlas_tasks.store",
    "Repairable": "atlas_tasks.store",
    "Importable": "atlas_tasks.store",
    "LocalFiles": "atlas_tasks.store",
    "Tombstone": "atlas_tasks.store",
    "Tombstones": "atlas_tasks.store",
    "RepoNotFoundError": "atlas_tasks.repos",
    "Store": "atlas_tasks.store",
    "TaskList": "atlas_tasks.store",
    "WorkspaceList": "atlas_tasks.store",
    "LogLines": "atlas_tasks.store",
    "Task": "atlas_tasks.models",
    "Step": "atlas_tasks.models",
    "StepResult": "atlas_tasks.models",
    "Transition": "atlas_tasks.models",
    "TaskConfig": "atlas_tasks.models",
    "Workspace": "atlas_tasks.models",
    "TaskRef": "atlas_tasks.models",
    "TaskStatus": "atlas_tasks.models",
    "StepStatus": "atlas_tasks.models",
    "StepType": "atlas_tasks.models",
    "WorkspaceStatus": "atlas_tasks.models",
    "AtlasTasksError": "atlas_tasks.errors",
    "BundleError": "atlas_tasks.errors",
    "ConfigError": "atlas_tasks.errors",
    "ArtifactNotFoundError": "atlas_tasks.errors",
    "ConflictError": "atlas_tasks.errors",
    "CorruptLogError": "atlas_tasks.errors",
    "CorruptTaskError": "atlas_tasks.errors",
    "CorruptWorkspaceError": "atlas_tasks.errors",
    "IncompleteTaskError": "atlas_tasks.errors",
    "InvalidLogEntryError": "atlas_tasks.errors",
    "InvalidNameError": "atlas_tasks.errors",
    "InvalidTransitionError": "atlas_tasks.errors",
    "LockTimeoutError": "atlas_tasks.errors",
    "SchemaVersionError": "atlas_tasks.errors",
    "StepFailedError": "atlas_tasks.errors",
    "StorageError": "atlas_tasks.errors",
    "TaskRunningError": "atlas_tasks.errors",
    "StoreUnavailableError": "atlas_tasks.errors",
    "TaskExistsError": "atlas_tasks.errors",
    "TaskIdRetiredError": "atlas_tasks.errors",
    "TaskNotFoundError": "atlas_tasks.errors",
    "WorkspaceExistsError": "atlas_tasks.errors",
    "WorkspaceNotFoundError": "atlas_tasks.errors",
    "NotAwaitingApprovalError": "atlas_tasks.errors",
    "CannotAbandonError": "atlas_tasks.errors",
    "CannotCancelError": "atlas_tasks.errors",
    "CollectorBusyError": "atlas_tasks.errors",
    "TaskFinishedError": "atlas_tasks.errors",
    "IncompleteConfigError": "atlas_tasks.errors",
    "InvalidValueError": "atlas_tasks.errors",
    "AmbiguousTaskIdError": "atlas_tasks.errors",
    "UnsafeTaskFileError": "atlas_tasks.errors",
    "WorkdirError": "atlas_tasks.errors",
    "MissingExtraError": "atlas_tasks.errors",
    "NotRunnableError": "atlas_tasks.errors",
    "DeadlinePassedError": "atlas_tasks.errors",
    "CrashLoopError": "atlas_tasks.errors",
    "GuardValueError": "atlas_tasks.errors",
    "BudgetExceededError": "atlas_tasks.errors",
    "RewindError": "atlas_tasks.errors",
    "TemplateError": "atlas_tasks.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'atlas_tasks' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


# For type checkers only; tests/models/test_exports.py keeps this list and _EXPORTS in step.
if TYPE_CHECKING:
    from atlas_tasks.backends.file import FileStore
    from atlas_tasks.backends.memory import MemoryStore
    from atlas_tasks.errors import (
        AmbiguousTaskIdError,
        ArtifactNotFoundError,
        AtlasTasksError,
        BudgetExceededError,
        BundleError,
        CannotAbandonError,
        CannotCancelError,
        CollectorBusyError,
        ConfigError,
        ConflictError,
        CorruptLogError,
        CorruptTaskError,
        CorruptWorkspaceError,
        CrashLoopError,
        DeadlinePassedError,
        GuardValueError,
        IncompleteConfigError,
        IncompleteTaskError,
        InvalidLogEntryError,
        InvalidNameError,
        InvalidTransitionError,
        InvalidValueError,
        LockTimeoutError,
        MissingExtraError,
        NotAwaitingApprovalError,
        NotRunnableError,
        RewindError,
        SchemaVersionError,
        StepFailedError,
        StorageError,
        StoreUnavailableError,
        TaskExistsError,
        TaskFinishedError,
        TaskIdRetiredError,
        TaskNotFoundError,
        TaskRunningError,
        TemplateError,
        UnsafeTaskFileError,
        WorkdirError,
        WorkspaceExistsError,
        WorkspaceNotFoundError,
    )
    from atlas_tasks.models import (
        Step,
        StepResult,
        StepStatus,
        StepType,
        Task,
        TaskConfig,
        TaskRef,
        TaskStatus,
        Transition,
        Workspace,
        WorkspaceStatus,
    )
    from atlas_tasks.repos import RepoNotFoundError
    from atlas_tasks.store import (
        ChangeStamps,
        CheckReport,
        CollectorLocks,
        Importable,
        LocalFiles,
        LogEntry,
        LogLines,
        LogTail,
        Repairable,
        RunLeases,
        Store,
        SummaryList,
        TaskList,
        TaskSummary,
        Tombstone,
        Tombstones,
        WorkspaceList,
    )
    from atlas_tasks.store.base import BaseStore
    from atlas_tasks.store.urls import open_store
