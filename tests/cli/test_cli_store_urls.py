"""Every way of naming a store on the command line goes through one opener (atlas_tasks.store.urls)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from atlas_tasks import Task
from atlas_tasks.cli import app
from atlas_tasks.store.urls import file_url, open_store


def test_memory_store_url_works_in_process() -> None:
    """`--store memory://NAME` opens the in-memory store of that name, the one this process filled."""
    store = open_store("memory://cli-store-urls")
    store.create_workspace("ws")
    task = store.create("ws", Task(description="in memory"))
    result = CliRunner().invoke(app, ["--store", "memory://cli-store-urls", "list", "ws", "--json"])
    assert result.exit_code == 0, result.output
    assert [t["id"] for t in json.loads(result.stdout)["tasks"]] == [task.id]


def test_home_and_its_file_url_open_the_same_store(tmp_path: Path) -> None:
    """`--home DIR` and `--store file:///DIR` list the same tasks, in the same document."""
    home = tmp_path / "home"
    store = open_store(file_url(home))
    store.create_workspace("ws")
    store.create("ws", Task(description="on disk"))
    by_home = CliRunner().invoke(app, ["--home", str(home), "list", "--json"])
    by_url = CliRunner().invoke(app, ["--store", file_url(home), "list", "--json"])
    assert by_home.exit_code == 0, by_home.output
    assert by_home.stdout == by_url.stdout
    assert len(json.loads(by_home.stdout)["tasks"]) == 1
