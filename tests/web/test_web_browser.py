"""A real browser on a real run: headless Chromium watches a runner process move a task along, live.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``; the Makefile
installs them before the tests). A machine without them FAILS this test, loudly, instead of skipping it: CI must
never pass without having looked at the page in a browser.

Set ``ATLAS_TASKS_SCREENSHOTS=docs/img`` to refresh the README's screenshot (``docs/img/dashboard.png``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from atlas_tasks import FileStore, Step, Task
from atlas_tasks.web import create_app
from atlas_tasks.web._live import LiveSettings

pytestmark = pytest.mark.browser

INSTALL_HINT = (
    "the browser test needs Chromium and its driver: `apt-get install -y chromium chromium-driver` (as root; "
    "`make test` does it), or point $CHROMIUM and $CHROMEDRIVER at them"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",  # offline machines: no update checks, no component downloads
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1500",
]


def _binaries() -> tuple[str, str]:
    """Chromium and ChromeDriver, or a failed test that says how to install them."""
    browser = os.environ.get("CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
    )
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail(f"Chromium not found ({browser=}, {driver=}): {INSTALL_HINT}")
    return browser, driver


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless Chromium driven by selenium, with a fresh profile, never reaching the network."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:  # a test dependency: failing says what is missing
        pytest.fail(f"selenium is not installed ({exc}): pip install selenium")
    chromium, chromedriver = _binaries()
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must never try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(store: FileStore) -> Iterator[str]:
    """The dashboard of ``store`` under uvicorn in a thread, on a free localhost port; yields its base URL."""
    with _uvicorn(create_app(store, live=LiveSettings(poll=0.2, lifetime=120.0))) as url:
        yield url


@contextmanager
def _uvicorn(app: Any) -> Iterator[str]:
    """``app`` under uvicorn in a thread, on a free localhost port; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
        sock.close()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for: {what}")


def _task(store: FileStore) -> str:
    """A task of three command steps; the middle one takes two seconds, so the browser can see it running."""
    worktree = store.home.parent / "demo-worktree"  # where the commands run
    worktree.mkdir(exist_ok=True)
    store.create_workspace("demo", branch="fix/rounding", worktree_path=str(worktree))
    steps = [
        Step(name="analyze", type="validation", commands=["sh -c 'echo reading the invoice code'"]),
        Step(name="build", type="validation", commands=["sh -c 'sleep 2; echo built 12 modules'"]),
        Step(name="test", type="validation", commands=["sh -c 'sleep 0.5; echo 42 tests passed'"]),
    ]
    task = Task(template="bugfix", description="Fix rounding in invoice totals", steps=steps)
    return store.create("demo", task).id


def _step_class(driver: Any, index: int) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, f'#steps li[data-step="{index}"]').get_attribute("class"))


def _log_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "log").text)


def _status(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, 'h1 [data-field="status"]').text)


def _save(driver: Any, tmp_path: Path, name: str) -> Path:
    target_dir = Path(os.environ.get("ATLAS_TASKS_SCREENSHOTS") or tmp_path)
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / name
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    return path


def test_browser_sees_a_real_run_live(browser: Any, server: str, store: FileStore, home: Path, tmp_path: Path) -> None:
    """A step turns from running to success and new log lines appear in the open page, with no reload."""
    task_id = _task(store)
    browser.get(f"{server}/workspaces/demo/tasks/{task_id}")
    assert _status(browser) == "pending" and "st-pending" in _step_class(browser, 1)
    browser.execute_script("window.__sameDocument = 'no reload happened'")
    wait_for("the live feed to connect", lambda: "live" in browser.find_element("id", "live-status").text)

    runner = subprocess.Popen(
        [sys.executable, "-m", "atlas_tasks", "--home", str(home), "run", "demo", task_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for("step 2 (build) to show as running", lambda: "st-running" in _step_class(browser, 1))
        assert _status(browser) == "running"
        wait_for("the log line of step 2 starting", lambda: "build step started" in _log_text(browser))
        time.sleep(0.8)  # let the running step's duration count up, for the picture
        shot = _save(browser, tmp_path, "dashboard.png")
        wait_for("step 2 (build) to turn success", lambda: "st-success" in _step_class(browser, 1))
        wait_for("the log line of step 2 succeeding", lambda: "build step success" in _log_text(browser))
        wait_for("the task to complete", lambda: _status(browser) == "completed")
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 0, output
    assert browser.execute_script("return window.__sameDocument") == "no reload happened"
    assert all("st-success" in _step_class(browser, i) for i in range(3))
    assert "test step success" in _log_text(browser)
    assert shot.stat().st_size > 10_000
    _save(browser, tmp_path, "dashboard-completed.png")


def test_browser_sees_a_run_live_on_a_mounted_store_page(browser: Any, home: Path, tmp_path: Path) -> None:
    """Under ``serve --all-repos`` a repository's task page, at /stores/<key>/, styles itself and follows a real
    run live: its script, stylesheet and event stream all load from under the prefix."""
    from atlas_tasks.cli._everywhere import label_of
    from atlas_tasks.web._stores import create_stores_app, discover_home

    key = "0123456789ab"  # any 12 hex digits: a repo-scoped store's directory
    (home / "repos").mkdir(parents=True)
    store = FileStore(home / "repos" / key)
    task_id = _task(store)
    FileStore(home).create_workspace("demo")  # the same name in the legacy tree: never shown on this page
    discover = discover_home(home, label_of, lambda scoped: FileStore(scoped.path))
    app = create_stores_app(discover, home_label=str(home), live=LiveSettings(poll=0.2, lifetime=120.0))
    with _uvicorn(app) as url:
        browser.get(f"{url}/")
        browser.find_element("css selector", f'tr[data-store="{key}"] a').click()
        browser.find_element("link text", "demo").click()
        browser.find_element("link text", task_id).click()
        assert browser.current_url == f"{url}/stores/{key}/workspaces/demo/tasks/{task_id}"
        display = browser.execute_script("return getComputedStyle(document.querySelector('header.top')).display")
        assert display == "flex", "the stylesheet under the prefix did not load"
        wait_for("the live feed to connect", lambda: "live" in browser.find_element("id", "live-status").text)
        runner = subprocess.Popen(
            [sys.executable, "-m", "atlas_tasks", "--home", str(store.home), "run", "demo", task_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for("step 2 (build) to show as running", lambda: "st-running" in _step_class(browser, 1))
            wait_for("the log line of step 2 succeeding", lambda: "build step success" in _log_text(browser))
            wait_for("the task to complete", lambda: _status(browser) == "completed")
            output, _ = runner.communicate(timeout=60)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
    assert runner.returncode == 0, output
