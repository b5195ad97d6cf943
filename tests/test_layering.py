"""The architecture's rules, checked on the source: front ends ask stores only through the contract.

* no ``getattr(store, …)``/``hasattr(store, …)`` probes and no ``isinstance(…, FileStore/PostgresStore)`` outside
  the backends: optional abilities are asked for with ``isinstance(store, <capability protocol>)``;
* the dashboard imports nothing from the CLI; the PostgreSQL backend nothing from the file backend;
* cli/ and web/ never open or stat a file of the file store's layout by path (they go through the store).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import atlas_tasks

SRC = Path(atlas_tasks.__file__).parent
_BACKENDS = SRC / "backends"
_CONCRETE = {"FileStore", "PostgresStore", "MemoryStore"}
_REGISTRY = SRC / "store" / "urls.py"


def _modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def _front_end_modules() -> list[Path]:
    return [p for p in _modules(SRC) if _BACKENDS not in p.parents and p.parent.name != "testing"]


def _probes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or not node.args:
            continue
        first = node.args[0]
        if node.func.id in ("getattr", "hasattr") and isinstance(first, ast.Name) and "store" in first.id:
            found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.func.id}({first.id}, …)")
        if node.func.id == "isinstance" and len(node.args) == 2:
            kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
            for kind in kinds:
                name = kind.attr if isinstance(kind, ast.Attribute) else getattr(kind, "id", "")
                if name in _CONCRETE:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} isinstance(…, {name})")
    return found


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_backend_probes_outside_the_backends() -> None:
    """Front ends use the contract and capability protocols, never getattr/hasattr on a store or a concrete class."""
    probes = [probe for path in _front_end_modules() for probe in _probes(path)]
    assert probes == []


def test_the_probe_check_can_fail(tmp_path: Path) -> None:
    """Negative control: the checker finds a planted probe of each kind."""
    planted = tmp_path / "planted.py"
    planted.write_text("x = getattr(store, 'home', None)\nif isinstance(store, FileStore):\n    pass\n")
    assert len(_probes_at(planted)) == 2


def _probes_at(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            first = node.args[0]
            if node.func.id == "getattr" and isinstance(first, ast.Name) and "store" in first.id:
                found.append("getattr")
            if node.func.id == "isinstance" and getattr(node.args[1], "id", "") in _CONCRETE:
                found.append("isinstance")
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("web", "atlas_tasks.cli"),
        ("views", "atlas_tasks.cli"),
        ("views", "atlas_tasks.web"),
        ("backends/postgres", "atlas_tasks.backends.file"),
        ("backends/postgres", "atlas_tasks.backends._file_check"),
        ("backends/postgres", "atlas_tasks.backends._summaries"),
        ("documents", "atlas_tasks.backends"),
        ("store", "atlas_tasks.backends.file"),
        ("store", "atlas_tasks.backends.postgres"),
    ],
)
def test_layer_imports(package: str, forbidden: str) -> None:
    """A layer never imports the layer above it (or a sibling backend)."""
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules(SRC / package)
        if path != _REGISTRY  # the scheme registry names each backend (imported only when its URL is opened)
        for name in _imports(path)
        if name == forbidden or name.startswith(forbidden + ".")
    ]
    assert bad == []


_LAYOUT_NAMES = ("task.json", "task.log", "workspace.json", "artifacts", ".atlas-tasks")


def test_front_ends_do_not_reach_into_the_file_layout() -> None:
    """cli/ and web/ build no path into the store's tree (task_path/log_path are for display only)."""
    found = []
    for package in ("cli", "web", "views"):
        for path in _modules(SRC / package):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                    right = node.right
                    if isinstance(right, ast.Constant) and right.value in _LAYOUT_NAMES:
                        found.append(f"{path.relative_to(SRC)}:{node.lineno} … / {right.value!r}")
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("lstat", "stat", "open", "read_bytes", "read_text")
                    and isinstance(node.func.value, ast.BinOp)
                ):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} path.{node.func.attr}()")
    assert found == []
