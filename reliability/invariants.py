"""The invariants every campaign checks after a crash, a power cut or a fault, with the real reader and doctor.

1. The store opens and every task loads (an incomplete creation is the only tolerated error, and only until fixed).
2. No log line is damaged, no temp file is listed as data, every listed artifact reads.
3. The doctor (``store.check``) reports every leftover found independently, ``fix=True`` repairs them all, and a
   second check finds nothing.
4. The state is one of the allowed views (the old or the new one), never a mix; acknowledged items are all there.
5. Nothing outside the home changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from atlas_tasks import FileStore
from atlas_tasks.errors import AtlasTasksError, IncompleteTaskError
from reliability.outcome import Verdict
from reliability.view import View, canonical, diff, leftovers, lost_items, take_view, tree_digest


def check_home(
    home: Path,
    allowed: Sequence[View],
    acked: View,
    *,
    in_flight: View | None = None,
    known_ids: Iterable[str] | None = None,
    outside: dict[str, str] | None = None,
) -> Verdict:
    """Check a home after a crash or fault; ``acked`` is the last acknowledged view, ``in_flight`` the next one."""
    verdict = Verdict()
    raw = leftovers(home)
    store = FileStore(home, lock_timeout=5)
    check_readers(store, verdict)
    check_doctor(store, home, raw, verdict)
    try:
        view = take_view(store, known_ids)
    except AtlasTasksError as exc:
        verdict.add("store unreadable after recovery", repr(exc))
        return verdict
    wanted = {canonical(v) for v in allowed}
    if canonical(view) not in wanted:
        closest = allowed[-1] if in_flight is not None else acked
        verdict.add("state is neither the old nor the new one", diff(closest, view))
    verdict.lost = lost_items(acked, view, in_flight)
    if verdict.lost:
        verdict.add("acknowledged data lost", diff(acked, view))
    if outside is not None and tree_digest(home.parent, skip=home.name) != outside:
        verdict.add("something outside the home changed", str(home.parent))
    return verdict


def check_readers(store: FileStore, verdict: Verdict) -> None:
    """Every workspace, task, log and artifact reads; only an incomplete creation may be reported."""
    try:
        listing = store.list_workspaces()
        for err in listing.errors:
            verdict.add("workspace unreadable", repr(err))
        for ws in listing:
            _check_workspace(store, ws.name, verdict)
    except AtlasTasksError as exc:
        verdict.add("reader raised", repr(exc))


def _check_workspace(store: FileStore, ws: str, verdict: Verdict) -> None:
    tasks = store.list(ws)
    for err in tasks.errors:
        if not isinstance(err, IncompleteTaskError):
            verdict.add("task unreadable", str(err))
    for task in tasks:
        try:
            log = store.read_log(ws, task.id)
            for err in log.errors:
                verdict.add("log line damaged", str(err))
            for name in store.list_artifacts(ws, task.id):
                if any(part.startswith(".") for part in name.split("/")):
                    verdict.add("temp file taken for data", name)
                store.get_artifact(ws, task.id, name)
        except AtlasTasksError as exc:
            verdict.add("reader raised", repr(exc))


def check_doctor(store: FileStore, home: Path, raw: set[str], verdict: Verdict) -> None:
    """The doctor reports each leftover in ``raw``, repairs all it reports, and then finds nothing."""
    prefix = str(store.home) + "/"
    try:
        report = store.check(fix=True)
    except AtlasTasksError as exc:
        verdict.add("doctor raised", repr(exc))
        return
    reported = {f.path.removeprefix(prefix) for f in report.findings}
    for item in sorted(raw - reported):
        verdict.add("leftover not reported by the doctor", item)
    for finding in report.findings:
        if not finding.fixed:
            verdict.add(f"doctor could not fix {finding.kind}", f"{finding.path}: {finding.detail}")
    try:
        again = store.check()
    except AtlasTasksError as exc:
        verdict.add("doctor raised", repr(exc))
        return
    for finding in again.findings:
        verdict.add("finding left after fix", f"{finding.kind} {finding.path}")
    for item in sorted(leftovers(home) - raw.difference(reported)):
        verdict.add("leftover remains after fix", item)
