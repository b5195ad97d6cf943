"""Turning a current database back into exactly what an older schema version laid out, to test upgrades.

Each entry undoes one migration of ``atlas_tasks.backends.postgres._schema`` (rows written by the current code keep
every column an older version had, with the same values: only what the migration added goes).
"""

from __future__ import annotations

from typing import Any

import psycopg

_UNDO: dict[int, tuple[str, ...]] = {
    3: ("DROP TABLE {s}.tombstones",),
    4: (
        "DROP TRIGGER tasks_summary_forget ON {s}.tasks",
        "DROP FUNCTION {s}.tasks_summary_forget()",
        "ALTER TABLE {s}.tasks DROP COLUMN summary, DROP COLUMN summary_revision",
        "ALTER TABLE {s}.tasks RESET (fillfactor)",
        "DROP INDEX {s}.tasks_newest_first",
        "CREATE INDEX tasks_newest_first ON {s}.tasks (workspace, created_at DESC, id DESC)",
    ),
}


def downgrade_to(conn: psycopg.Connection[Any], schema: str, version: int) -> None:
    """Undo every migration above ``version`` (newest first) and forget it in ``schema_migrations``."""
    s = f'"{schema}"'
    for undone in sorted((v for v in _UNDO if v > version), reverse=True):
        for statement in _UNDO[undone]:
            conn.execute(statement.format(s=s))
    conn.execute(f"DELETE FROM {s}.schema_migrations WHERE version > %s", [version])
