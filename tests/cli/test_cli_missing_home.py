"""A store directory that does not exist is named in a warning, never shown silently as an empty store."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from atlas_tasks import FileStore
from atlas_tasks.cli import app


def cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={"ATLAS_STORE_URL": None, "ATLAS_HOME": None, **(env or {})})


def test_list_with_a_missing_home_warns_and_exits_zero(tmp_path: Path) -> None:
    """`--home` naming no directory: `list` prints one warning naming the path, and still exits 0."""
    typo = tmp_path / "typo"
    result = cli("--home", str(typo), "list")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: no store at {typo} (the directory does not exist; named by --home): check the path, "
        "or create a workspace there with `atlas-tasks workspace create NAME`"
    ]
    assert not typo.exists()


def test_atlas_home_naming_no_directory_is_named_in_the_warning(tmp_path: Path) -> None:
    """A missing $ATLAS_HOME is reported as such before `workspace list`'s own note."""
    result = cli("workspace", "list", env={"ATLAS_HOME": str(tmp_path / "typo")})
    assert result.exit_code == 0
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"warning: no store at {tmp_path / 'typo'} ") and "$ATLAS_HOME" in first


def test_a_failing_read_command_warns_before_its_error(tmp_path: Path) -> None:
    """`show` in a missing home: the warning, then the one error line; exit code 1 as before."""
    result = cli("--home", str(tmp_path / "typo"), "show", "ws", "task-1")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["warning", "error"]


def test_workspace_create_in_a_missing_home_just_creates_it(tmp_path: Path) -> None:
    """`workspace create` makes the home it names, without a warning."""
    home = tmp_path / "new-home"
    result = cli("--home", str(home), "workspace", "create", "ws")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    assert [ws.name for ws in FileStore(home).list_workspaces()] == ["ws"]


def test_an_existing_empty_home_gets_no_warning(tmp_path: Path) -> None:
    """A home that exists (even empty) is a store: no warning."""
    result = cli("--home", str(tmp_path), "list")
    assert result.exit_code == 0 and "warning" not in result.stderr


def test_the_default_home_not_created_yet_gets_no_warning(tmp_path: Path) -> None:
    """Before the first workspace, the default ~/.atlas is simply not there yet: the usual note, no warning."""
    result = cli("list", env={"HOME": str(tmp_path)})
    assert result.exit_code == 0
    assert "warning" not in result.stderr and "no tasks" in result.stderr
