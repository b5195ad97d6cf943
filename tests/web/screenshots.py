"""Take the README's screenshots of the dashboard in headless Chromium (not a test; run it by hand).

    .venv/bin/python tests/web/screenshots.py docs/img

Builds a store with tasks in every state people look for (a live run, a crashed one, one waiting for approval, a
failed validation, finished ones), starts a real runner process on one task, serves the dashboard with uvicorn and
saves ``dashboard.png`` (the task list) and ``task.png`` (the live run's page, mid-step).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from atlas_tasks import FileStore, Step, StepResult, Task
from atlas_tasks.models import utcnow
from atlas_tasks.web import create_app
from atlas_tasks.web._live import LiveSettings


def _steps(*names: str) -> list[Step]:
    kinds = {"analyze": "ai", "implement": "ai", "validate": "validation", "review": "human", "commit": "git"}
    return [
        Step(name=n, type=kinds.get(n, "validation"), commands=["make test"] if n == "validate" else []) for n in names
    ]


def _advance(store: FileStore, ws: str, task_id: str, done: int, final: str, reason: str) -> None:
    def move(task: Task) -> None:
        start = utcnow() - timedelta(minutes=40)
        task.transition("running", "run started", now=start)
        for i in range(done):
            step = task.steps[i]
            step.status, step.attempts = "success", 2 if step.name == "validate" else 1
            step.started_at = start + timedelta(minutes=4 * i)
            step.completed_at = step.started_at + timedelta(minutes=3, seconds=17 * (i + 1))
            task.step_results.append(
                StepResult(
                    step_index=i,
                    step_name=step.name,
                    status="success",
                    started_at=step.started_at,
                    completed_at=step.completed_at,
                )
            )
        task.current_step = done
        if final == "running":
            task.steps[done].status, task.steps[done].attempts = "running", 1
            task.steps[done].started_at = start + timedelta(minutes=4 * done)
            return
        if final in ("validation_failed", "awaiting_approval"):
            task.steps[done].status = "failed" if final == "validation_failed" else "awaiting_approval"
            task.steps[done].attempts = 1
            task.steps[done].error = reason if final == "validation_failed" else ""
            task.transition("validating", reason)
        if final == "completed":
            task.transition("validating", "checks")
            task.transition("awaiting_approval", "review")
        task.transition(final, reason)

    store.modify(ws, task_id, move)


def build(home: Path) -> tuple[FileStore, str]:
    store = FileStore(home)
    store.create_workspace("payments", branch="fix/rounding", worktree_path="~/src/shop")
    store.create_workspace("search", branch="feat/synonyms", worktree_path="~/src/search")
    plain = ("analyze", "implement", "validate", "review", "commit")
    specs = [
        ("search", "Index product synonyms for the search box", plain, 5, "completed", "approved and merged"),
        (
            "payments",
            "Retry webhook deliveries with exponential backoff",
            plain,
            2,
            "validation_failed",
            "make test: 3 failed, 118 passed",
        ),
        ("search", "Paginate the autocomplete endpoint", plain, 3, "awaiting_approval", "step 'review' waits"),
        ("payments", "Round invoice totals half-even, per line, then sum", plain, 2, "running", ""),
        ("payments", "Add a refunds ledger and its migration", plain, 5, "completed", "approved"),
        ("search", "Drop the legacy query parser", plain, 0, "pending", ""),
    ]
    for age, (ws, description, steps, done, final, reason) in zip(range(len(specs), 0, -1), specs, strict=True):
        created = utcnow() - timedelta(minutes=23 * age)
        task = Task(template="bugfix", description=description, steps=_steps(*steps), created_at=created)
        task = store.create(ws, task)
        if final != "pending":
            _advance(store, ws, task.id, done, final, reason)
    # The live one: a real runner process, its second step waiting for the screenshot to be taken.
    gate = home / "gate"
    live_steps = [
        Step(name="analyze", type="validation", commands=["sh -c 'echo reading billing/invoice.py'"]),
        Step(name="build", type="validation", commands=["sh -c 'echo compiling 12 modules'"]),
        Step(name="test", type="validation", commands=[f"sh -c 'while [ ! -e {gate} ]; do sleep 0.1; done; echo ok'"]),
        Step(name="lint", type="validation", commands=["sh -c 'echo lint clean'"]),
    ]
    live = store.create(
        "payments", Task(template="feature", description="Show VAT per line on invoices", steps=live_steps)
    )
    return store, live.id


def main(target: Path) -> None:
    import uvicorn

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="atlas-") as tmp:
        home = Path(tmp) / ".atlas"
        store, live_id = build(home)
        runner = subprocess.Popen(
            [sys.executable, "-m", "atlas_tasks", "--home", str(home), "run", "payments", live_id],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(
            uvicorn.Config(create_app(store, live=LiveSettings(poll=0.2)), log_level="warning", lifespan="off")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={tmp}/profile",
            "--force-device-scale-factor=1",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            time.sleep(2.5)  # the live runner reaches its third step
            driver.set_window_size(1400, 640)
            driver.get(f"{base}/tasks")
            time.sleep(1.0)
            driver.save_screenshot(str(target / "dashboard.png"))
            driver.set_window_size(1280, 1180)
            driver.get(f"{base}/workspaces/payments/tasks/{live_id}")
            time.sleep(1.5)
            driver.save_screenshot(str(target / "task.png"))
        finally:
            driver.quit()
            (home / "gate").touch()
            runner.wait(timeout=60)
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
    print(f"saved {target / 'dashboard.png'} and {target / 'task.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
