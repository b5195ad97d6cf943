"""The task lock's first-come, first-served queue (``locks.hold(fair=True)``), with real processes and signals.

The flock on the lock file is what excludes; the queue only orders the waiters. These tests pin both halves: the
order is the arrival order, and whatever happens to the queue (a waiter killed, a timeout, stale slots after a
crash), nobody gets the lock while somebody else holds it.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from atlas_tasks import LockTimeoutError
from atlas_tasks._fs import locks

WAITER = textwrap.dedent(
    """
    import os, sys, time
    from atlas_tasks import LockTimeoutError
    from atlas_tasks._fs import locks

    directory, name, timeout, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with locks.hold(f"{directory}/{name}", "test lock", timeout, dir_fd=fd, fair=True):
            with open(out, "a") as f:
                f.write(sys.argv[5] + "\\n")
            time.sleep(0.05)
    except LockTimeoutError:
        sys.exit(3)
    """
)

LOCK = "task.lock"


@contextmanager
def held(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with locks.hold(f"{directory}/{LOCK}", "test lock", 5.0, dir_fd=fd, fair=True):
            yield
    finally:
        os.close(fd)


def start_waiter(directory: Path, label: str, out: Path, *, timeout: float = 30.0) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WAITER, str(directory), LOCK, str(timeout), str(out), label])


def wait_for(predicate: object, what: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def slot(directory: Path, ticket: int) -> Path:
    return directory / f"{LOCK}.q{ticket}"


def test_waiters_get_the_lock_in_arrival_order(tmp_path: Path) -> None:
    """Five processes that queue one after another get the lock in that order when the holder lets go."""
    out = tmp_path / "order.txt"
    children = []
    with held(tmp_path):
        for ticket, label in enumerate("ABCDE", start=1):
            children.append(start_waiter(tmp_path, label, out))
            wait_for(slot(tmp_path, ticket).exists, f"waiter {label} to queue")
        time.sleep(0.2)
        assert not out.exists(), "a waiter got the lock while it was held"
    for child in children:
        assert child.wait(timeout=60) == 0
    assert out.read_text().split() == list("ABCDE")
    assert not list(tmp_path.glob(f"{LOCK}.q[0-9]*")), "every slot is removed by its owner"


def test_a_waiter_killed_in_the_queue_neither_blocks_nor_breaks_exclusion(tmp_path: Path) -> None:
    """SIGKILL the first waiter: the second moves on to the flock, but still only once the holder releases."""
    out = tmp_path / "order.txt"
    with held(tmp_path):
        first = start_waiter(tmp_path, "first", out)
        wait_for(slot(tmp_path, 1).exists, "the first waiter to queue")
        second = start_waiter(tmp_path, "second", out)
        wait_for(slot(tmp_path, 2).exists, "the second waiter to queue")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        time.sleep(0.5)
        assert not out.exists(), "the lock was handed on while its holder still held it"
    assert second.wait(timeout=30) == 0
    assert out.read_text().split() == ["second"]
    assert not list(tmp_path.glob(f"{LOCK}.q[0-9]*")), "the dead waiter's slot is cleaned up by its successor"


def test_a_waiter_that_times_out_leaves_the_queue(tmp_path: Path) -> None:
    """A queued waiter gives up after its timeout with LockTimeoutError; the one behind it is not stuck."""
    out = tmp_path / "order.txt"
    with held(tmp_path):
        impatient = start_waiter(tmp_path, "impatient", out, timeout=0.3)
        wait_for(slot(tmp_path, 1).exists, "the impatient waiter to queue")
        patient = start_waiter(tmp_path, "patient", out)
        wait_for(slot(tmp_path, 2).exists, "the patient waiter to queue")
        assert impatient.wait(timeout=30) == 3  # LockTimeoutError
        assert not slot(tmp_path, 1).exists()
        time.sleep(0.3)
        assert not out.exists()
    assert patient.wait(timeout=30) == 0
    assert out.read_text().split() == ["patient"]


def test_in_process_timeout_raises_the_typed_error(tmp_path: Path) -> None:
    """The timeout counts the whole wait (queue and flock) and names the lock file."""
    out = tmp_path / "order.txt"
    outcome: dict[str, object] = {}

    def attempt() -> None:  # another thread: the lock is re-entrant within the thread that holds it
        fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        started = time.monotonic()
        try:
            with locks.hold(f"{tmp_path}/{LOCK}", "test lock", 0.3, dir_fd=fd, fair=True):
                outcome["got"] = True
        except LockTimeoutError as exc:
            outcome["error"] = exc
        finally:
            outcome["waited"] = time.monotonic() - started
            os.close(fd)

    with held(tmp_path):
        # Another process queues first, so our attempt has to wait in the queue.
        other = start_waiter(tmp_path, "other", out)
        wait_for(slot(tmp_path, 1).exists, "the other waiter to queue")
        thread = threading.Thread(target=attempt)
        thread.start()
        thread.join(timeout=30)
    assert "got" not in outcome
    assert isinstance(outcome["error"], LockTimeoutError) and LOCK in str(outcome["error"])
    assert 0.25 < outcome["waited"] < 5  # type: ignore[operator]
    assert other.wait(timeout=30) == 0
    assert out.read_text().split() == ["other"]


def test_stale_slots_from_a_crash_are_cleaned_and_do_not_block(tmp_path: Path) -> None:
    """After a crash the lock file names ticket 5 and its slot is still there: the next taker is not held up."""
    (tmp_path / LOCK).write_bytes(struct.pack("<Q", 5))
    slot(tmp_path, 5).write_bytes(b"")
    started = time.monotonic()
    with held(tmp_path):
        pass
    assert time.monotonic() - started < 2
    assert not slot(tmp_path, 5).exists()
    assert not slot(tmp_path, 6).exists()


def test_uncontended_locking_creates_no_queue_files(tmp_path: Path) -> None:
    """With nobody waiting, taking the lock is the flock alone: no slot or guard files are made."""
    for _ in range(20):
        with held(tmp_path):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK]


def test_an_unusable_queue_falls_back_to_the_flock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the queue's files cannot be made (a full disk), waiters still wait on the flock and still exclude."""
    real_open = os.open

    def no_queue_files(path: str, *args: object, **kwargs: object) -> int:
        if ".q" in str(path):
            raise OSError(28, "No space left on device", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    outcome: dict[str, object] = {}

    def attempt(timeout: float) -> None:
        fd = real_open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with locks.hold(f"{tmp_path}/{LOCK}", "test lock", timeout, dir_fd=fd, fair=True):
                outcome["got"] = time.monotonic()
        except LockTimeoutError as exc:
            outcome["error"] = exc
        finally:
            os.close(fd)

    monkeypatch.setattr(os, "open", no_queue_files)
    with held(tmp_path):
        thread = threading.Thread(target=attempt, args=(0.3,))
        thread.start()
        thread.join(timeout=30)
        assert "got" not in outcome and isinstance(outcome["error"], LockTimeoutError)
        thread = threading.Thread(target=attempt, args=(30.0,))
        thread.start()
        time.sleep(0.3)
        assert "got" not in outcome
        released = time.monotonic()
    thread.join(timeout=30)
    assert outcome["got"] >= released  # type: ignore[operator]
    assert not list(tmp_path.glob(f"{LOCK}.q*"))
