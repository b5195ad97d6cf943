"""The live web dashboard of atlas-tasks (``atlas-tasks serve``; needs the ``web`` extra: starlette, jinja2,
uvicorn).

    from atlas_tasks import FileStore
    from atlas_tasks.web import create_app

    app = create_app(FileStore("./demo-home"))        # any ASGI server; `atlas-tasks serve` uses uvicorn

Server-rendered pages that work without JavaScript, live updates over Server-Sent Events, and a JSON API under
``/api/`` with the CLI's ``--json`` shapes. See docs/web.md.
"""

from __future__ import annotations

from atlas_tasks.web.app import create_app

__all__ = ["create_app"]
