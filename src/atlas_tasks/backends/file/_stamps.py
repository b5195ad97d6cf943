"""Change stamps (the ChangeStamps capability): a stat of task.json instead of a read.

task.json is only ever replaced by rename, so a changed task always has a new inode or mtime.
"""

from __future__ import annotations

import builtins
from collections.abc import Hashable

from atlas_tasks import names as N
from atlas_tasks._fs import ops
from atlas_tasks._fs.dirs import UnsafePathError, walk
from atlas_tasks.backends.file._layout import TASK_FILE, WORKSPACE_FILE, Layout
from atlas_tasks.errors import WorkspaceNotFoundError


def stat_stamp(relative: str, dir_fd: int) -> tuple[int, int, int, int] | None:
    """(inode, mtime_ns, ctime_ns, size) of a file beneath ``dir_fd``, or None if it cannot be stat'ed."""
    try:
        st = ops.stat_at(relative, dir_fd)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def workspace_names(layout: Layout) -> builtins.list[str]:
    """Workspace directories with valid names, sorted (no workspace.json is decoded)."""
    try:
        home = layout.open_home()
    except FileNotFoundError:
        return []
    with home:
        try:
            wdir = walk(home, ["workspaces"])
        except (FileNotFoundError, NotADirectoryError, UnsafePathError):
            return []
        with wdir:
            return sorted(
                e.name
                for e in ops.scandir(wdir.fd, wdir.path)
                if N.is_valid(N.check_workspace_name, e.name) and e.is_dir(follow_symlinks=False)
            )


def task_stamps(layout: Layout, workspace: str) -> dict[str, Hashable | None]:
    """One stamp per entry of the workspace's tasks directory (None: no task.json there now)."""
    with layout.ws_dir(workspace) as wsd:
        try:
            tasks = walk(wsd, ["tasks"])
        except FileNotFoundError:
            return {}  # a workspace without tasks yet
        with tasks:
            return {
                e.name: stat_stamp(f"{e.name}/{TASK_FILE}", tasks.fd)
                for e in ops.scandir(tasks.fd, tasks.path)
                if not e.name.startswith(".")
            }


def workspace_stamp(layout: Layout, workspace: str) -> Hashable | None:
    """The stamp of the workspace's workspace.json (replaced by rename on every write), None if it has none now."""
    N.check_workspace_name(workspace)
    try:
        with layout.ws_dir(workspace) as wsd:
            return stat_stamp(WORKSPACE_FILE, wsd.fd)
    except (WorkspaceNotFoundError, FileNotFoundError):
        return None


def task_stamp(layout: Layout, workspace: str, task_id: str) -> Hashable | None:
    """The stamp of one task as :func:`task_stamps` gives it (None if it has no task.json now)."""
    N.check_task_id(task_id)
    try:
        with layout.ws_dir(workspace) as wsd:
            return stat_stamp(f"tasks/{task_id}/{TASK_FILE}", wsd.fd)
    except (WorkspaceNotFoundError, FileNotFoundError):
        return None


__all__ = ["stat_stamp", "task_stamp", "task_stamps", "workspace_names", "workspace_stamp"]
