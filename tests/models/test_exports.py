"""The package's public names: the lazy table and the type checkers' imports list the same names, and all load."""

from __future__ import annotations

import ast
from pathlib import Path

import atlas_tasks


def _type_checking_names() -> dict[str, str]:
    tree = ast.parse(Path(atlas_tasks.__file__).read_text())
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    names.update({alias.name: stmt.module for alias in stmt.names})
    return names


def test_type_checking_imports_match_the_lazy_table() -> None:
    """Every lazily exported name is imported for type checkers from the same module, and nothing else is."""
    assert _type_checking_names() == atlas_tasks._EXPORTS


def test_every_export_loads() -> None:
    """Each name in __all__ resolves to an object of the module the table names."""
    for name in atlas_tasks.__all__:
        value = getattr(atlas_tasks, name)
        assert value is not None, name


def test_contract_names_are_exported() -> None:
    """open_store and the contract's value types are importable from the top level (documented entry points)."""
    from atlas_tasks import LogEntry, MemoryStore, SummaryList, TaskSummary, open_store

    assert callable(open_store) and MemoryStore.__name__ == "MemoryStore"
    assert {TaskSummary.__name__, SummaryList.__name__} == {"TaskSummary", "SummaryList"} and LogEntry is not None
