"""docs/cli.md documents every command of ``atlas-tasks``, and every command has help text (sqlite-utils style).

The command tree is walked through click (the root group, its lazily built commands, and each group's
subcommands), so a command added to the CLI without a line in docs/cli.md fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from atlas_tasks.cli._app import ALIASES, app

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def command_tree() -> list[tuple[str, Any]]:
    """(full name such as ``workspace create``, click command) for every visible command and subcommand."""
    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, group: Any) -> None:
        ctx = group.context_class(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            full = f"{prefix} {name}".strip()
            found.append((full, command))
            if hasattr(command, "list_commands"):
                walk(full, command)

    walk("", root)
    return found


COMMANDS = command_tree()


def documented_commands() -> set[str]:
    """Every command named at the start of a backticked span in a ``###`` heading of docs/cli.md."""
    names: set[str] = set()
    for heading in re.findall(r"^### (.+)$", CLI_MD.read_text(encoding="utf-8"), re.M):
        for span in re.findall(r"`([^`]+)`", heading):
            words = []
            for word in span.split():
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                words.append(word)
            names.update(" ".join(words[:n]) for n in range(1, len(words) + 1))
    return names


def test_tree_found() -> None:
    """The walk finds the top-level commands and the groups' subcommands (so the tests below test something)."""
    names = [name for name, _ in COMMANDS]
    assert {"list", "show", "run", "workspace", "workspace create", "templates", "templates show"} <= set(names)


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_command_in_docs(name: str) -> None:
    """Each command and subcommand has a ``###`` heading in docs/cli.md naming it."""
    assert name in documented_commands(), f"docs/cli.md has no '### `{name} ...`' heading"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_command_has_help(name: str, command: Any) -> None:
    """Each command and subcommand has non-empty help text and a one-line summary for ``--help``."""
    assert (command.help or "").strip(), f"`atlas-tasks {name}` has no help text"
    assert command.get_short_help_str(limit=200).strip(), f"`atlas-tasks {name}` has no short help"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_options_have_help(name: str, command: Any) -> None:
    """Each option of each command says what it does in ``--help``."""
    missing = [
        param.opts[0]
        for param in command.params
        if param.param_type_name == "option" and not (param.help or "").strip() and not param.hidden
    ]
    assert missing == [], f"`atlas-tasks {name}` options without help: {missing}"


def test_aliases_in_docs() -> None:
    """Each command alias (``ls``) is mentioned in docs/cli.md."""
    text = CLI_MD.read_text(encoding="utf-8")
    for alias in ALIASES:
        assert f"`{alias}`" in text, f"docs/cli.md does not mention the alias {alias!r}"
