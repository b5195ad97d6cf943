"""What the CLI and the dashboard show, built once for both: presentation-neutral, no rich, typer or starlette.

- :mod:`~atlas_tasks.views.documents`: the JSON documents of ``--json`` and ``/api/``;
- :mod:`~atlas_tasks.views.text`: times, durations, sizes, step progress and log lines as text;
- :mod:`~atlas_tasks.views.display`: a task's display state (a run whose runner died is *crashed*);
- :mod:`~atlas_tasks.views.queries`: the task listing with its crash flags, and artifact listings.

They ask the store only through :class:`atlas_tasks.store.Store` and the capabilities of
:mod:`atlas_tasks.store.capabilities`, so every backend is shown the same way.
"""
