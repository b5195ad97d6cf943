"""The dashboard stands on the shared view layer, never on the CLI (which would load typer and the commands)."""

from __future__ import annotations

import json
import subprocess
import sys


def _loaded_after(statement: str) -> list[str]:
    """The modules a fresh interpreter has loaded after running ``statement``."""
    script = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_web_app_imports_nothing_of_the_cli() -> None:
    """Importing the dashboard loads neither typer nor any module of atlas_tasks.cli."""
    loaded = _loaded_after("import atlas_tasks.web.app")
    assert "atlas_tasks.web.app" in loaded
    assert [m for m in loaded if m == "typer" or m.startswith(("typer.", "atlas_tasks.cli"))] == []


def test_view_layer_is_presentation_neutral() -> None:
    """The view layer loads no terminal or web framework (rich, typer, starlette, jinja2)."""
    loaded = _loaded_after("import atlas_tasks.views.documents, atlas_tasks.views.queries, atlas_tasks.views.text")
    assert "atlas_tasks.views.queries" in loaded
    heavy = ("rich", "typer", "starlette", "jinja2")
    assert [m for m in loaded if m.split(".")[0] in heavy] == []


def test_a_store_without_local_files_is_named_by_its_url() -> None:
    """The page header names a store that has no home directory by its URL (asked of the store, not probed)."""
    from atlas_tasks.store.urls import open_store
    from atlas_tasks.web.app import describe

    assert describe(open_store("memory://web-layers")) == "memory://web-layers"
