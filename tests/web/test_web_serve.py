"""``atlas-tasks serve``: options, clear errors, the start-up banner, and a real server process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serve_cli import cli_app
from serve_process import serving
from typer.testing import CliRunner, Result

from atlas_tasks import FileStore
from atlas_tasks.cli import _serve

SERVE_CLI = str(Path(__file__).with_name("serve_cli.py"))


def serve(*args: str) -> Result:
    return CliRunner().invoke(cli_app(), list(args))


def test_store_url_of_unknown_kind_is_a_usage_error(home: Path) -> None:
    """A store URL that is neither file:// nor postgresql:// is refused, saying what works instead."""
    result = serve("serve", "--store", "s3://bucket/atlas")
    assert result.exit_code == 2 and "use file:///absolute/path, postgresql://" in result.output


def test_store_and_home_together_is_a_usage_error(home: Path) -> None:
    """``--store`` and ``--home`` name the same thing: giving both is an error."""
    result = serve("serve", "--store", f"file://{home}", "--home", str(home))
    assert result.exit_code == 2 and "not both" in result.output


def test_bad_file_url_is_a_usage_error() -> None:
    """A relative file URL is refused by the store opener's rule."""
    result = serve("serve", "--store", "file://relative/path")
    assert result.exit_code == 2 and "file:///absolute/path" in result.output


def test_taken_port_is_one_error_line(home: Path) -> None:
    """A port in use is exit code 1 with one ``error:`` line that says what to do."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = serve("--home", str(home), "serve", "--port", str(port))
    assert result.exit_code == 1
    assert re.fullmatch(r"error: cannot listen on 127\.0\.0\.1:\d+: .*--port.*\n", result.stderr)


def test_missing_web_extra_says_how_to_install(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the ``web`` extra the command fails with the pip line to fix it."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = serve("--home", str(home), "serve")
    assert result.exit_code == 1 and "pip install 'atlas-tasks[web]'" in result.stderr


def test_banner_warns_when_not_on_loopback(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Listening on every interface is announced as a warning; loopback says only this machine can connect."""
    _serve._announce(FileStore(home), "0.0.0.0", "http://127.0.0.1:8700/", None)
    wide = capsys.readouterr().err
    assert "warning: listening on 0.0.0.0: anyone who can reach this machine" in wide
    _serve._announce(FileStore(home), "127.0.0.1", "http://127.0.0.1:8700/", "tok")
    narrow = capsys.readouterr().err
    assert "listening on 127.0.0.1 only" in narrow and "http://127.0.0.1:8700/?token=tok" in narrow


def test_help_imports_no_web_package() -> None:
    """``serve --help`` (like every other command) loads neither starlette, jinja2 nor uvicorn."""
    code = (
        f"import sys, runpy; sys.argv = ['atlas-tasks', 'serve', '--help']\n"
        f"try:\n    runpy.run_path({SERVE_CLI!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('starlette', 'jinja2', 'uvicorn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "--allow-actions" in done.stdout and done.stdout.strip().endswith("[]")


def _wait_for_banner(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stderr is not None
    seen = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen += line
        if "Ctrl-C stops it." in line or not line:
            return seen
    raise AssertionError(f"no banner in time: {seen!r}")


def test_serve_process_serves_and_stops_on_ctrl_c(home: Path) -> None:
    """A real ``serve`` process prints its URL and token, serves pages and the API, and stops on Ctrl-C."""
    store = FileStore(home)
    store.create_workspace("ws")
    process = subprocess.Popen(
        [sys.executable, SERVE_CLI, "serve", "--store", f"file://{home}", "--port", "0", "--allow-actions"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        banner = _wait_for_banner(process, time.monotonic() + 60)
        match = re.search(r"(http://127\.0\.0\.1:\d+/)\?token=([\w-]+)", banner)
        assert match, banner
        url, token = match.groups()
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and b"<h1>Workspaces</h1>" in page.read()
        with urllib.request.urlopen(url + "api/workspaces", timeout=10) as api:
            assert [w["name"] for w in json.load(api)["workspaces"]] == ["ws"]
        request = urllib.request.Request(url + "api/workspaces/ws/tasks/task-x/approve", method="POST")
        request.add_header("authorization", f"Bearer {token}")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(request, timeout=10)
        missing.value.close()  # the error holds the response and its socket
        assert missing.value.code == 404  # authorised, and the task does not exist
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) in (0, 130)
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def test_serve_of_a_missing_home_warns_naming_it(tmp_path: Path) -> None:
    """``serve --home /missing`` starts, but first warns that there is no store at that path."""
    missing = tmp_path / "no-such-home"
    with serving("--home", str(missing), "serve") as server:
        banner = server.stderr
    assert f"warning: no store at {missing} (the directory does not exist)" in banner
    assert "Ctrl-C stops it." in banner


def test_serve_of_an_existing_store_does_not_warn(home: Path) -> None:
    """A home that exists (even without workspaces) gives no warning about a missing store."""
    home.mkdir()
    with serving("--home", str(home), "serve") as server:
        banner = server.stderr
    assert "no store at" not in banner and "Ctrl-C stops it." in banner
