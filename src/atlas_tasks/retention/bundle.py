"""Portable bundles of whole tasks: one tar file that carries tasks with their logs, artifacts and Go hook files
from any store to any other (file, PostgreSQL, memory).

    report = export_tasks(store, "payments", ["task-20251228-100000"], "payments.tar.gz")
    import_bundle(other_store, "payments.tar.gz", workspace="payments-archive")

Inside, the tar is laid out exactly like the Go ATLAS home (``workspaces/<ws>/workspace.json``,
``workspaces/<ws>/tasks/<id>/{task.json,task.log,artifacts/...,hook.json,HOOK.md}``), so ``tar -x`` of a bundle
is a home the Go tool can read. ``manifest.json`` lists every other member with its size and SHA-256; an export
writes it last (members are streamed into the tar as they are read, hashed on the way), and an import takes it
wherever it is (bundles written before streaming have it first). An import streams and checks the whole bundle
before it writes anything, so a tampered, truncated or padded bundle is refused with
:class:`~atlas_tasks.errors.BundleError` and the target store stays as it was; it then reads the bundle again and
writes it one task at a time. Neither side holds more than one task in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from atlas_tasks import names as N
from atlas_tasks._codec import decode_task, decode_workspace, encode_task, encode_workspace
from atlas_tasks.documents.logs import parse_line
from atlas_tasks.errors import (
    AtlasTasksError,
    BundleError,
    IncompleteTaskError,
    TaskExistsError,
    TaskNotFoundError,
    WorkspaceNotFoundError,
)
from atlas_tasks.ids import is_uuid_id, timestamp_candidates, uuid_id
from atlas_tasks.models import Task, Workspace
from atlas_tasks.store import Store
from atlas_tasks.store.base import BaseStore, restores
from atlas_tasks.store.capabilities import Importable, LocalFiles, Tombstones
from atlas_tasks.store.urls import redact

#: The ``format`` a manifest names, and the highest ``version`` of it this library reads (and the one it writes).
FORMAT = "atlas-tasks-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: The Go ATLAS's hook files of a task (never its ``hook.json.lock``).
HOOK_NAMES = ("hook.json", "HOOK.md")
_TASK_FILES = frozenset({"task.json", "task.log", *HOOK_NAMES})
_GZIP_SUFFIXES = (".tar.gz", ".tgz")


@dataclass
class ExportReport:
    """What :func:`export_tasks` wrote: the bundle's path, its tasks, member count and size, manifest checksum."""

    path: str
    workspace: str
    tasks: list[str]
    files: int = 0
    content_bytes: int = 0
    bundle_bytes: int = 0
    manifest_sha256: str = ""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The ``export --json`` document."""
        return {
            "path": self.path,
            "workspace": self.workspace,
            "tasks": self.tasks,
            "files": self.files,
            "content_bytes": self.content_bytes,
            "bundle_bytes": self.bundle_bytes,
            "manifest_sha256": self.manifest_sha256,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }


@dataclass
class ImportReport:
    """What :func:`import_bundle` wrote: the target workspace, each task's original and stored id."""

    path: str
    workspace: str
    source_workspace: str
    workspace_created: bool = False
    tasks: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    content_bytes: int = 0
    manifest_sha256: str = ""
    seconds: float = 0.0

    def document(self) -> dict[str, Any]:
        """The ``import --json`` document."""
        return {
            "path": self.path,
            "workspace": self.workspace,
            "source_workspace": self.source_workspace,
            "workspace_created": self.workspace_created,
            "tasks": self.tasks,
            "files": self.files,
            "content_bytes": self.content_bytes,
            "manifest_sha256": self.manifest_sha256,
            "seconds": round(self.seconds, 3),
        }


# ============================================================================================================ export
def export_tasks(
    store: Store,
    workspace: str,
    task_ids: Sequence[str],
    out_path: str | os.PathLike[str],
    *,
    go_home: str | os.PathLike[str] | None = None,
) -> ExportReport:
    """Write the tasks of ``workspace`` named by ``task_ids`` (with logs, artifacts, hook files) to one bundle.

    The bundle is a tar (gzip-compressed when ``out_path`` ends in ``.tar.gz`` or ``.tgz``), written under a hidden
    temp name beside ``out_path``, fsynced, then renamed: a killed export never leaves a partial bundle under the
    final name. Hook files are read from ``go_home`` (default: the store's own, when it keeps files locally).

    Members are written as they are read, one task at a time, each artifact streamed through ``open_artifact`` in
    chunks and hashed on the way: memory holds one task's document and log and one chunk of an artifact, never the
    bundle. The manifest, which needs every member's hash, therefore comes last.

    Raises:
        WorkspaceNotFoundError, TaskNotFoundError: what to export is not there.
        BundleError: no task ids were given, or an artifact changed size while it was being read.
    """
    started = time.perf_counter()
    out = Path(out_path)
    ids = list(dict.fromkeys(task_ids))
    if not ids:
        raise BundleError(str(out), "no tasks to export: name at least one task id")
    ws = store.get_workspace(workspace)
    hooks_home = Path(go_home) if go_home is not None else (store.go_home if isinstance(store, LocalFiles) else None)
    report = ExportReport(path=str(out), workspace=workspace, tasks=ids)
    base = f"workspaces/{workspace}"
    task_versions: dict[str, str] = {}
    # The bundle's workspace document lists the refs of the exported tasks only.
    chosen = set(ids)
    ws_doc = ws.model_copy(update={"tasks": [ref for ref in ws.tasks if ref.id in chosen]})
    with _TarWriter(out) as writer:
        writer.add(f"{base}/workspace.json", encode_workspace(ws_doc))
        for task_id in ids:
            task = store.get(workspace, task_id)
            task_versions[task_id] = task.schema_version
            where = f"{base}/tasks/{task_id}"
            writer.add(f"{where}/task.json", encode_task(task))
            log = _export_log(store, workspace, task_id, report)
            if log:
                writer.add(f"{where}/task.log", log)
            for name in sorted(store.list_artifacts(workspace, task_id)):
                with store.open_artifact(workspace, task_id, name) as reader:
                    writer.add_stream(f"{where}/artifacts/{name}", reader.size, reader.chunks())
            if hooks_home is not None:
                for hook, data in _read_hooks(hooks_home, workspace, task_id):
                    writer.add(f"{where}/{hook}", data)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "atlas_tasks_version": _version(),
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "source": redact(store.url),
            "workspace": workspace,
            "tasks": ids,
            "schema_versions": {"workspace": ws.schema_version, "tasks": task_versions},
            "files": writer.listed,
        }
        manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        report.files = len(writer.listed)
        report.content_bytes = sum(entry["size"] for entry in writer.listed)
        writer.add(MANIFEST, manifest_bytes, listed=False)
    report.manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    report.bundle_bytes = out.stat().st_size
    report.seconds = time.perf_counter() - started
    return report


def _version() -> str:
    from atlas_tasks import __version__

    return __version__


def _export_log(store: Store, workspace: str, task_id: str, report: ExportReport) -> bytes:
    """The task's log lines as stored (Go's escaping kept), leaving out damaged or torn lines (reported)."""
    if isinstance(store, BaseStore):
        raw, _ = store._read_log(workspace, task_id)  # the exact bytes: re-encoding would change Go's lines
        lines = raw.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
    else:
        lines = [
            json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode()
            for e in store.iter_log(workspace, task_id)
        ]
    kept = [line for line in lines if parse_line(line)[0] is not None]
    if len(kept) != len(lines):
        report.warnings.append(
            f"task {task_id!r}: {len(lines) - len(kept)} damaged log line(s) left out (unreadable in the store too)"
        )
    return b"".join(line + b"\n" for line in kept)


def _read_hooks(home: Path, workspace: str, task_id: str) -> Iterator[tuple[str, bytes]]:
    folder = home / "workspaces" / workspace / "tasks" / task_id
    for name in HOOK_NAMES:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            yield name, path.read_bytes()


class _Chunks(io.RawIOBase):
    """A stream of chunks as a readable file for ``tarfile``, hashing and counting what passes through.

    ``tarfile`` copies a member in fixed-size reads and treats a short one as the end of the data, so ``readinto``
    fills the buffer whole from as many chunks as it takes (short only at the real end).
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self.sha256 = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(target):
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
                continue
            n = min(len(target) - filled, len(self._pending))
            target[filled : filled + n] = self._pending[:n]
            self.sha256.update(self._pending[:n])
            self._pending = self._pending[n:]
            filled += n
        self.count += filled
        return filled


class _TarWriter:
    """The bundle being written: a tar under a hidden temp name, renamed into place (and fsynced) on success only.

    ``listed`` collects the manifest's entries (path, size, SHA-256) of the members as they are added.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder = out.parent if str(out.parent) else Path()
        self.tmp = self.folder / f".{out.name}.{secrets.token_hex(6)}.tmp"
        self.listed: list[dict[str, Any]] = []
        self._mtime = int(time.time())
        self._handle: io.BufferedWriter | None = None
        self._tar: tarfile.TarFile | None = None

    def __enter__(self) -> _TarWriter:
        mode = "w:gz" if self.out.name.endswith(_GZIP_SUFFIXES) else "w"
        self._handle = open(self.tmp, "xb")  # closed in __exit__
        try:
            self._tar = tarfile.open(  # type: ignore[call-overload]
                fileobj=self._handle, mode=mode, format=tarfile.PAX_FORMAT, copybufsize=_CHUNK
            )
        except BaseException:
            self._discard()
            raise
        return self

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, self._mtime
        return info

    def add(self, name: str, data: bytes, *, listed: bool = True) -> None:
        """A member whose bytes are at hand (documents, the log, hook files, the manifest)."""
        assert self._tar is not None
        self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))
        if listed:
            self.listed.append({"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    def add_stream(self, name: str, size: int, chunks: Iterator[bytes]) -> None:
        """A member of known ``size`` copied from ``chunks`` (an artifact), hashed as it streams."""
        assert self._tar is not None
        source = _Chunks(chunks)
        try:
            self._tar.addfile(self._info(name, size), source)
        except OSError:
            if source.count >= size:
                raise
            # tarfile's "unexpected end of data": the artifact shrank while it was read.
            raise BundleError(
                str(self.out), f"changed while it was exported ({source.count} of {size} bytes): export again", name
            ) from None
        if source.count != size or next(chunks, None) is not None:
            raise BundleError(str(self.out), "changed while it was exported: export again", name)
        self.listed.append({"path": name, "size": size, "sha256": source.sha256.hexdigest()})

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._discard()
            return
        assert self._tar is not None and self._handle is not None
        try:
            self._tar.close()
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self.tmp.replace(self.out)
        except BaseException:
            self._discard()
            raise
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _discard(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


# ============================================================================================================ import
@dataclass
class _BundledTask:
    task: Task
    log_lines: list[bytes]
    artifacts: dict[str, bytes]
    hooks: dict[str, bytes]


@dataclass
class _Member:
    """One member as the first pass saw it: its position in the archive, size and SHA-256."""

    index: int
    size: int
    sha256: str


@dataclass
class _PlannedTask:
    """A task of the bundle as the first pass checked it: its members (archive order) and what the checks need."""

    id: str
    created_at: datetime | None
    members: list[str] = field(default_factory=list)
    contiguous: bool = True


@dataclass
class _Bundle:
    """What the first pass found and checked; the content itself is read again, task by task, by the second."""

    manifest: dict[str, Any]
    manifest_sha256: str
    workspace: Workspace
    tasks: list[_PlannedTask]
    members: dict[str, _Member]
    count: int
    files: int
    content_bytes: int


#: The most content an import reads (uncompressed, every member together) unless told otherwise: a small .tar.gz can
#: declare members of any size (a "gzip bomb"), and an import must not spend hours hashing one, nor fill the disk.
MAX_IMPORT_BYTES = 2 * 1024**3
#: The most members an import reads unless told otherwise.
MAX_IMPORT_MEMBERS = 200_000
#: Bytes read from the archive at a time while hashing.
_CHUNK = 1024 * 1024


def import_bundle(
    store: Store,
    path: str | os.PathLike[str],
    *,
    workspace: str | None = None,
    as_new_id: bool = False,
    max_bytes: int = MAX_IMPORT_BYTES,
    max_members: int = MAX_IMPORT_MEMBERS,
) -> ImportReport:
    """Import every task of a bundle into ``store`` (into ``workspace`` when given, else the bundle's own).

    The whole bundle is read and checked first (manifest, every member's size and SHA-256, no missing or extra
    members, only plain files at safe paths, every document decodable); nothing is written until all of it passes.
    That first pass streams the archive and keeps only hashes and the small documents. A second pass reads it again
    and writes one task at a time with ``import_task`` (id, revision and times kept), re-hashing every member it
    uses: a bundle changed between the passes is refused (BundleError) and nothing more is written. Memory holds
    one task's members at a time, never the bundle. ``metadata.imported_from`` records where a task came from. With
    ``as_new_id`` every task gets a fresh id (its ``id``, and ``task_id`` in its log lines, follow); otherwise an id
    already in the target workspace is refused.

    Raises:
        BundleError: the bundle is damaged, tampered or unsafe; an id clashes; the store cannot import as is.
    """
    started = time.perf_counter()
    where = str(path)
    try:
        # One open file for both passes: a bundle replaced under its name meanwhile is not read half old, half new.
        handle = open(where, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise BundleError(where, "no such file") from None
    except OSError as exc:
        raise BundleError(where, f"not a readable tar archive, or a truncated one ({exc})") from None
    with handle:
        bundle = _read_verified(where, handle, max_bytes=max_bytes, max_members=max_members)
        return _import_verified(store, where, handle, bundle, workspace, as_new_id, started)


def _import_verified(
    store: Store,
    where: str,
    handle: BinaryIO,
    bundle: _Bundle,
    workspace: str | None,
    as_new_id: bool,
    started: float,
) -> ImportReport:
    source_ws = bundle.workspace.name
    target = workspace or source_ws
    try:
        N.check_workspace_name(target)
    except AtlasTasksError as exc:
        raise BundleError(where, f"cannot import into workspace {target!r}: {exc}") from None
    if not isinstance(store, Importable):
        raise BundleError(
            where,
            f"the target store {redact(store.url)} cannot store tasks as they are (it has no import_task); "
            "import into a file, memory or PostgreSQL store",
        )
    # Tasks this very bundle already put here under their own ids (an import run again after it was killed or
    # failed half-way): kept, neither refused nor written again, so running the same import again finishes the job.
    # With as_new_id every run makes copies, as asked: the copies a killed run made are listed by their
    # metadata.imported_from.sha256.
    landed = {} if as_new_id else _already_imported(store, target, bundle.manifest_sha256)
    if not as_new_id:
        for planned in bundle.tasks:
            if planned.id not in landed and _exists(store, target, planned.id):
                raise BundleError(
                    where,
                    f"task {planned.id!r} already exists in workspace {target!r}; nothing was imported "
                    "(import with --as-new-id to give the bundle's tasks fresh ids)",
                )
            stone = store.tombstone(target, planned.id) if isinstance(store, Tombstones) else None
            # restores() looks at created_at only: the first pass kept just that of each task.
            if stone is not None and not restores(stone, Task.model_construct(created_at=planned.created_at)):
                # The same task coming back (an archive restored) is welcome; another one under a deleted id is not.
                raise BundleError(
                    where,
                    f"task {planned.id!r} was deleted from workspace {target!r} at {stone.deleted_at} and the "
                    "bundle's task is another one (its created_at differs), so its id is retired; nothing was "
                    "imported (import with --as-new-id to give the bundle's tasks fresh ids)",
                )
    report = ImportReport(
        path=where,
        workspace=target,
        source_workspace=source_ws,
        files=bundle.files,
        content_bytes=bundle.content_bytes,
        manifest_sha256=bundle.manifest_sha256,
    )
    ws_doc = bundle.workspace.model_copy(update={"name": target, "tasks": []})
    report.workspace_created = store.import_workspace(ws_doc)
    provenance = {
        "bundle": Path(where).name,
        "sha256": bundle.manifest_sha256,
        "source": bundle.manifest.get("source", ""),
        "exported_at": bundle.manifest.get("created_at", ""),
    }
    done: dict[str, dict[str, Any]] = {}
    for planned in bundle.tasks:
        if planned.id in landed:
            done[planned.id] = {"original_id": planned.id, "id": landed[planned.id], "already_imported": True}
    # One pass over the archive imports every task whose members lie together, each as soon as its last member is
    # read. A task whose members are spread among others' (a tar built by another tool) would make that pass hold
    # several tasks at once; each such task gets a pass of its own instead, so memory stays bounded by one task.
    todo = [planned for planned in bundle.tasks if planned.id not in done]
    passes = [{p.id for p in todo if p.contiguous}, *({p.id} for p in todo if not p.contiguous)]
    for wanted in passes:
        if not wanted:
            continue
        for item in _second_pass(where, handle, bundle, wanted):
            new_id = _import_one(store, target, source_ws, item, provenance, as_new_id=as_new_id, where=where)
            done[item.task.id] = {"original_id": item.task.id, "id": new_id}
            del item  # before the next task is read: one task in memory at a time
    report.tasks = [done[planned.id] for planned in bundle.tasks]
    report.seconds = time.perf_counter() - started
    return report


def _already_imported(store: Store, workspace: str, manifest_sha256: str) -> dict[str, str]:
    """The tasks of ``workspace`` imported from the bundle whose manifest has this hash: original id -> id."""
    found: dict[str, str] = {}
    try:
        tasks = list(store.iter_tasks(workspace, errors=[]))
    except WorkspaceNotFoundError:
        return found
    for task in tasks:
        origin = task.metadata.get("imported_from")
        if isinstance(origin, dict) and origin.get("sha256") == manifest_sha256 and origin.get("original_id"):
            found.setdefault(str(origin["original_id"]), task.id)
    return found


def _exists(store: Store, workspace: str, task_id: str) -> bool:
    try:
        store.get(workspace, task_id)
    except (TaskNotFoundError, WorkspaceNotFoundError):
        return False
    except IncompleteTaskError:
        return True  # a directory without task.json (an interrupted creation or import): the id is taken
    return True


def _import_one(
    store: Importable,
    target: str,
    source_ws: str,
    item: _BundledTask,
    provenance: dict[str, Any],
    *,
    as_new_id: bool,
    where: str,
) -> str:
    original = item.task.id
    retired: Callable[[str], bool] = (
        (lambda tid: store.tombstone(target, tid) is not None) if isinstance(store, Tombstones) else (lambda _: False)
    )
    candidates = _fresh_ids(original, retired) if as_new_id else iter([original])
    for task_id in candidates:
        if as_new_id and task_id == original:
            continue  # free in the target, maybe, but "a fresh id" must differ from the one in the bundle
        task = item.task.model_copy(deep=True)
        task.id = task_id
        if task.workspace_name:
            task.workspace_name = target
        task.metadata["imported_from"] = {**provenance, "original_id": original}
        lines = _relabel(item.log_lines, (source_ws, original), (target, task_id))
        # Hook files that live in the task's own directory (a file store whose home is the Go home) are written by
        # import_task before task.json, so the task never shows without them; elsewhere they follow it.
        in_task_dir = bool(item.hooks) and isinstance(store, LocalFiles) and store.go_home == store.home
        extra: dict[str, Any] = {"hook_files": item.hooks} if in_task_dir else {}
        try:
            store.import_task(target, task, log_lines=lines, artifacts=item.artifacts, **extra)
        except TaskExistsError as exc:
            if not as_new_id:
                # Taken since the check, or a directory an interrupted import left (the file store's doctor
                # reports it as incomplete_task).
                raise BundleError(where, f"{exc}; nothing more was imported (try again with --as-new-id)") from None
            continue  # another writer took this fresh id meanwhile: the next candidate
        if item.hooks and isinstance(store, LocalFiles) and not in_task_dir:
            _write_hooks(store.go_home, target, task_id, item.hooks)
        return task_id
    raise AssertionError("unreachable: fresh id candidates never run out")


def _fresh_ids(original: str, retired: Callable[[str], bool]) -> Iterator[str]:
    """Fresh ids in the original's style, as ``create`` makes them (uuid, or timestamp with a counter).

    Ids ``retired`` says were deleted in the target (tombstoned) are skipped, as ``create`` skips them; the import
    would refuse them anyway (TaskIdRetiredError), this just does not try.
    """
    while True:
        if is_uuid_id(original):
            candidates: Iterator[str] = iter([uuid_id()])
        else:
            candidates = timestamp_candidates()
        yield from (candidate for candidate in candidates if not retired(candidate))
        if not is_uuid_id(original):
            time.sleep(1.0 - (time.time() % 1.0))


def _relabel(lines: list[bytes], old: tuple[str, str], new: tuple[str, str]) -> list[bytes]:
    """Log lines with ``workspace_name``/``task_id`` moved to the new names (untouched lines stay byte-exact)."""
    if old == new:
        return lines
    out = []
    for line in lines:
        record, _ = parse_line(line)
        if record is None:
            out.append(line)
            continue
        changed = False
        for key, before, after in (("workspace_name", old[0], new[0]), ("task_id", old[1], new[1])):
            if record.get(key) == before and before != after:
                record[key], changed = after, True
        out.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() if changed else line)
    return out


def _write_hooks(go_home: Path, workspace: str, task_id: str, hooks: dict[str, bytes]) -> None:
    folder = go_home / "workspaces" / workspace / "tasks" / task_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in hooks.items():
        tmp = folder / f".tmp-{name}.{secrets.token_hex(4)}"
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(folder / name)


# ====================================================================================================== verifying
def _read_verified(
    where: str, handle: BinaryIO, *, max_bytes: int = MAX_IMPORT_BYTES, max_members: int = MAX_IMPORT_MEMBERS
) -> _Bundle:
    """The first pass: stream the archive, hash and check it; raise BundleError at the first thing wrong.

    Only manifest.json and workspace.json are kept; each task.json is decoded as it is read (its id and created_at
    kept, or why it does not decode) and each log read whole to check its lines, one member at a time; artifacts are
    hashed in chunks. What is wrong with a document is said only after the hashes matched the manifest (a tampered
    member is called that, not undecodable).
    """
    seen: dict[str, _Member] = {}
    documents: dict[str, bytes] = {}
    heads: dict[str, _Head] = {}
    bad_log_lines: dict[str, int] = {}
    total = count = 0
    for member, tar in _members(where, handle):
        name = member.name
        if name in seen:
            raise BundleError(where, "appears twice in the archive", name)
        # Refused from the member's header, before its content is read or decompressed.
        total += member.size
        if total > max_bytes:
            raise BundleError(
                where,
                f"holds more than {max_bytes:,} bytes of content: refused before reading it (import with "
                "a higher --max-size if you trust it)",
                name,
            )
        if count >= max_members:
            raise BundleError(where, f"holds more than {max_members:,} files: refused", name)
        leaf = name.rsplit("/", 1)[-1]
        keep = name == MANIFEST or (leaf in ("workspace.json", "task.json", "task.log") and "/artifacts/" not in name)
        digest, data = _read_member(where, tar, member, keep=keep)
        seen[name] = _Member(count, member.size, digest)
        count += 1
        if leaf == "task.log" and data is not None:
            lines = [line for line in data.split(b"\n") if line]
            bad = next((n for n, line in enumerate(lines, 1) if parse_line(line)[0] is None), None)
            if bad is not None:
                bad_log_lines[name] = bad
        elif leaf == "task.json" and data is not None:
            heads[name] = _head(name, data)
        elif data is not None:
            documents[name] = data
    raw_manifest = documents.pop(MANIFEST, None)
    if raw_manifest is None:
        raise BundleError(
            where,
            f"no {MANIFEST}: not an atlas-tasks bundle, or a truncated one (the manifest is the last member), or "
            "one whose manifest was removed",
        )
    manifest = _parse_manifest(where, raw_manifest)
    listed: dict[str, tuple[int, str]] = {}
    for entry in manifest["files"]:
        if not isinstance(entry, dict) or not {"path", "size", "sha256"} <= entry.keys():
            raise BundleError(where, "a manifest entry lacks path, size or sha256", MANIFEST)
        listed[str(entry["path"])] = (entry["size"], str(entry["sha256"]))
    members = {name: m for name, m in seen.items() if name != MANIFEST}
    for name in members:
        if name not in listed:
            raise BundleError(where, "not listed in the manifest (an extra file: the bundle was altered)", name)
    for name, (size, digest) in listed.items():
        got = members.get(name)
        if got is None:
            raise BundleError(where, "listed in the manifest but missing from the archive", name)
        if got.size != size:
            raise BundleError(where, f"size {got.size} bytes, the manifest says {size}", name)
        if got.sha256 != digest:
            raise BundleError(where, "SHA-256 differs from the manifest's (the file was altered)", name)
    bundle = _structure(where, members, documents, heads, bad_log_lines)
    bundle.manifest, bundle.manifest_sha256 = manifest, hashlib.sha256(raw_manifest).hexdigest()
    bundle.members, bundle.count = seen, count
    bundle.files, bundle.content_bytes = len(members), sum(m.size for m in members.values())
    return bundle


def _members(where: str, handle: BinaryIO) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Each member of the archive from its start, checked to be a plain file at a safe path."""
    try:
        handle.seek(0)
        with tarfile.open(fileobj=handle, mode="r:*") as tar:
            for member in tar:
                _check_member(where, member)
                yield member, tar
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BundleError(where, f"not a readable tar archive, or a truncated one ({exc})") from None


def _read_member(where: str, tar: tarfile.TarFile, member: tarfile.TarInfo, *, keep: bool) -> tuple[str, bytes | None]:
    """A member's SHA-256, hashed a chunk at a time, and its bytes when ``keep`` (else None)."""
    handle = tar.extractfile(member)
    if handle is None:  # pragma: no cover - regular files always have one
        raise BundleError(where, "unreadable member", member.name)
    digest = hashlib.sha256()
    kept = io.BytesIO() if keep else None
    if kept is not None and member.size:
        # Sized once up front and then filled: growing it chunk by chunk could copy it (twice the memory).
        kept.seek(member.size - 1)
        kept.write(b"\0")
        kept.seek(0)
    size = 0
    try:
        with handle:
            while chunk := handle.read(min(_CHUNK, member.size - size) or 1):
                size += len(chunk)
                if size > member.size:  # pragma: no cover - tarfile never reads past a member
                    break
                digest.update(chunk)
                if kept is not None:
                    kept.write(chunk)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BundleError(where, f"cut short (the archive is truncated: {exc})", member.name) from None
    if size != member.size:
        raise BundleError(where, "cut short (the archive is truncated)", member.name)
    # getvalue() hands over the buffer itself (no copy) once nothing else refers to it.
    return digest.hexdigest(), kept.getvalue() if kept is not None else None


def _second_pass(where: str, handle: BinaryIO, bundle: _Bundle, wanted: set[str]) -> Iterator[_BundledTask]:
    """The ``wanted`` tasks, read from the archive again, each yielded once its last member is read.

    Every member must be where and as the first pass saw it, and each member read must hash the same: anything else
    means the file changed between the passes, and is refused before the task it belongs to is written.
    """
    ws_name = bundle.workspace.name
    owner = {name: planned for planned in bundle.tasks if planned.id in wanted for name in planned.members}
    collecting: dict[str, dict[str, bytes]] = {}
    index = 0
    for member, tar in _members(where, handle):
        first = bundle.members.get(member.name)
        if first is None or first.index != index or first.size != member.size:
            raise BundleError(where, "the bundle changed while it was imported: nothing more was imported", member.name)
        index += 1
        planned = owner.get(member.name)
        if planned is None and member.name != MANIFEST:
            continue  # not needed by this pass: its place and size were checked, its content is not read
        digest, data = _read_member(where, tar, member, keep=True)
        if digest != first.sha256 or data is None:
            raise BundleError(
                where, "changed while it was imported (SHA-256 differs): nothing more was imported", member.name
            )
        if planned is None:
            continue  # the manifest, the same as the first pass read
        files = collecting.setdefault(planned.id, {})
        files[member.name.split("/", 4)[4]] = data
        if len(files) == len(planned.members):
            del collecting[planned.id]
            item = _bundled_task(where, ws_name, planned.id, files)
            # Only the task being written may hold its members: dropped here before the next task is read.
            del files, data
            yield item
            del item
    if index != bundle.count or collecting:
        raise BundleError(where, "the bundle changed while it was imported: nothing more was imported")


def _check_member(where: str, member: tarfile.TarInfo) -> None:
    name = member.name
    if not member.isreg():
        kind = "a symlink" if member.issym() else "a hard link" if member.islnk() else "not a regular file"
        raise BundleError(where, f"{kind}: bundles hold plain files only", name)
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise BundleError(where, "an unsafe path (absolute, empty or '..' parts): refused", name)


def _parse_manifest(where: str, raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise BundleError(where, f"invalid JSON ({exc})", MANIFEST) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(where, f"not an {FORMAT} manifest", MANIFEST)
    version = manifest.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BundleError(
            where, f"format version {version!r}; this atlas-tasks reads up to {FORMAT_VERSION}: upgrade it", MANIFEST
        )
    if not isinstance(manifest.get("files"), list):
        raise BundleError(where, "the manifest has no files list", MANIFEST)
    return manifest


def _structure(
    where: str,
    members: dict[str, _Member],
    documents: dict[str, bytes],
    heads: dict[str, _Head],
    bad_log_lines: dict[str, int],
) -> _Bundle:
    """The workspace and tasks the members make up, checking every path against the Go home's layout."""
    workspace_doc: str | None = None
    per_task: dict[str, _PlannedTask] = {}
    last_task: str | None = None
    ws_name: str | None = None
    for name in sorted(members, key=lambda n: members[n].index):
        parts = name.split("/")
        if len(parts) < 3 or parts[0] != "workspaces" or (ws_name is not None and parts[1] != ws_name):
            raise BundleError(where, "outside workspaces/<one workspace>/", name)
        ws_name = parts[1]
        rest = parts[2:]
        if rest == ["workspace.json"]:
            workspace_doc = name
        elif (
            len(rest) >= 3
            and rest[0] == "tasks"
            and ((len(rest) == 3 and rest[2] in _TASK_FILES) or (len(rest) >= 4 and rest[2] == "artifacts"))
        ):
            planned = per_task.setdefault(rest[1], _PlannedTask(rest[1], None))
            if planned.members and last_task != rest[1]:
                planned.contiguous = False  # another task's member came in between
            planned.members.append(name)
            last_task = rest[1]
        else:
            raise BundleError(where, "not a file of the Go home layout", name)
    if workspace_doc is None or ws_name is None:
        raise BundleError(where, "no workspaces/<ws>/workspace.json")
    try:
        N.check_workspace_name(ws_name)
        workspace = decode_workspace(documents[workspace_doc], path=workspace_doc)
    except (AtlasTasksError, ValueError) as exc:
        raise BundleError(where, f"unusable workspace: {exc}", workspace_doc) from None
    for planned in per_task.values():
        _check_task(where, ws_name, planned, heads, bad_log_lines)
    return _Bundle({}, "", workspace, list(per_task.values()), {}, 0, 0, 0)


def _check_task(
    where: str, ws_name: str, planned: _PlannedTask, heads: dict[str, _Head], bad_log_lines: dict[str, int]
) -> None:
    folder = f"workspaces/{ws_name}/tasks/{planned.id}/"
    doc_name = folder + "task.json"
    head = heads.get(doc_name)
    if head is None:
        raise BundleError(where, "a task directory without task.json", doc_name)
    try:
        N.check_task_id(planned.id)
        for name in planned.members:
            if name.startswith(folder + "artifacts/"):
                N.artifact_parts(name[len(folder + "artifacts/") :])
    except (AtlasTasksError, ValueError) as exc:
        raise BundleError(where, f"unusable task: {exc}", doc_name) from None
    if isinstance(head, str):
        raise BundleError(where, f"unusable task: {head}", doc_name)
    task_id, created_at = head
    if task_id != planned.id:
        raise BundleError(where, f"its id is {task_id!r}, not the directory's {planned.id!r}", doc_name)
    if folder + "task.log" in bad_log_lines:
        raise BundleError(
            where, f"log line {bad_log_lines[folder + 'task.log']} is not a JSON object", folder + "task.log"
        )
    planned.created_at = created_at


#: What the first pass keeps of a task.json: the task's id and created_at, or why the document does not decode.
_Head = tuple[str, datetime | None] | str


def _head(name: str, data: bytes) -> _Head:
    try:
        task = decode_task(data, path=name)
    except (AtlasTasksError, ValueError) as exc:
        return str(exc)
    return task.id, task.created_at


def _bundled_task(where: str, ws_name: str, task_id: str, files: dict[str, bytes]) -> _BundledTask:
    """A task's members, read again by the second pass (and checked by the first), as import_task wants them."""
    doc_name = f"workspaces/{ws_name}/tasks/{task_id}/task.json"
    try:
        task = decode_task(files.pop("task.json"), path=doc_name)
    except (AtlasTasksError, ValueError) as exc:  # pragma: no cover - decoded by the first pass, same bytes
        raise BundleError(where, f"unusable task: {exc}", doc_name) from None
    lines = [line for line in files.pop("task.log", b"").split(b"\n") if line]
    artifacts = {n[len("artifacts/") :]: d for n, d in files.items() if n.startswith("artifacts/")}
    hooks = {n: d for n, d in files.items() if n in HOOK_NAMES}
    return _BundledTask(task, lines, artifacts, hooks)


__all__ = ["FORMAT", "FORMAT_VERSION", "ExportReport", "ImportReport", "export_tasks", "import_bundle"]
