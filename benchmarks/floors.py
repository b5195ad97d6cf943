"""The floors: the least a program must do to get the same durable effect, written as plainly as Python allows.

They run in the same process as the store's operation they are compared with, interleaved round by round.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path
from typing import Any

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def durable_replace(directory: str, name: str, data: bytes) -> None:
    """write + fsync + rename + directory fsync: the durable update floor."""
    tmp = f"{directory}/.{name}.tmp"
    fd = os.open(tmp, _NEW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, f"{directory}/{name}")
    dfd = os.open(directory, _DIR)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def durable_append(path: str, line: bytes) -> None:
    """open O_APPEND + one write + fdatasync (what the store calls) + close: the log floor."""
    fd = os.open(path, _APPEND, 0o600)
    try:
        os.write(fd, line)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def read_json(path: str | Path) -> Any:
    """open + read + json.loads (the stdlib parser)."""
    with open(path, "rb") as f:
        return json.loads(f.read())


def read_all_tasks(tasks_dir: str) -> int:
    """scandir of the tasks directory, then read + json.loads of every task.json: the listing floor."""
    count = 0
    for entry in os.scandir(tasks_dir):
        if entry.name.startswith("."):
            continue
        with open(f"{tasks_dir}/{entry.name}/task.json", "rb") as f:
            json.loads(f.read())
        count += 1
    return count


def load_all_tasks(tasks_dir: str) -> list[Any]:
    """The listing floor: scandir, then read + json.loads of every task.json, keeping the documents.

    A listing hands back what it read, so the floor keeps its parsed documents too, and pauses the cyclic collector
    while it builds them exactly as the store's list does (otherwise its growing list is walked by collection after
    collection and the floor, not the store, pays for it). ``read_all_tasks`` is the same reading, discarding.
    """
    docs: list[Any] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for entry in os.scandir(tasks_dir):
            if entry.name.startswith("."):
                continue
            with open(f"{tasks_dir}/{entry.name}/task.json", "rb") as f:
                docs.append(json.loads(f.read()))
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
    return docs


def newest_n(tasks_dir: str, n: int) -> int:
    """scandir of the task ids + read + json.loads of the n newest (ids sort by creation time here)."""
    names = sorted((e.name for e in os.scandir(tasks_dir) if not e.name.startswith(".")), reverse=True)
    for name in names[:n]:
        read_json(f"{tasks_dir}/{name}/task.json")
    return min(n, len(names))


def scandir_sorted(directory: str) -> list[str]:
    """os.scandir + sort: the list_artifacts floor."""
    return sorted(e.name for e in os.scandir(directory) if not e.name.startswith("."))
